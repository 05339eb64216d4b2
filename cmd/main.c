/* cmd/main.c — the monet-probe entry point: dispatches argv[1] through the
 * command table in commands.def. */
#include <stdio.h>
#include <string.h>

#define MP_COMMAND(name, fn, summary) int fn(int argc, char **argv);
#include "commands.def"
#undef MP_COMMAND

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command COMMANDS[] = {
#define MP_COMMAND(name, fn, summary) {name, fn, summary},
#include "commands.def"
#undef MP_COMMAND
};

static void usage(FILE *out) {
    fprintf(out,
            "monet-probe %s — interpretability workbench for Monet (Mixture of Monosemantic Experts) models\n\n"
            "usage: monet-probe <command> [options]   (monet-probe help <command> for details)\n\ncommands:\n",
            MP_VERSION);
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        fprintf(out, "  %-12s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "help") && argc >= 3) { /* help CMD [ACTION] = CMD [ACTION] --help */
        char *args[4] = {argv[2], argc >= 4 ? argv[3] : "--help", "--help", NULL};
        for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
            if (!strcmp(argv[2], COMMANDS[i].name)) return COMMANDS[i].run(argc >= 4 ? 3 : 2, args);
        fprintf(stderr, "monet-probe: help: unknown command '%s' (see: monet-probe --help)\n", argv[2]);
        return 2;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("monet-probe %s\n", MP_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        if (!strcmp(argv[1], COMMANDS[i].name)) return COMMANDS[i].run(argc - 1, argv + 1);
    fprintf(stderr, "monet-probe: unknown command '%s' (see: monet-probe --help)\n", argv[1]);
    return 2;
}
