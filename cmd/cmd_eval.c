/* cmd/cmd_eval.c — `monet-probe eval <name>`: dispatches to the evaluations
 * listed in eval.def (MMLU, general suite, MULTIPL-E, toxicity, ppl). */
#include <stdio.h>
#include <string.h>

#include "cli.h"

#define MP_EVAL(name, fn, summary) int fn(int argc, char **argv);
#include "eval.def"
#undef MP_EVAL

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} eval_entry;

static const eval_entry EVALS[] = {
#define MP_EVAL(name, fn, summary) {name, fn, summary},
#include "eval.def"
#undef MP_EVAL
    {NULL, NULL, NULL}};

static void usage(FILE *out) {
    fprintf(out, "usage: monet-probe eval NAME [options]   (monet-probe eval NAME --help: its options)\n"
                 "  Evaluations of a checkpoint, optionally with an expert mask (--mask); --json OUT writes a\n"
                 "  result that `eval compare BASE.json MASKED.json` reads.\n"
                 "evaluations:\n");
    for (const eval_entry *e = EVALS; e->name; e++) fprintf(out, "  %-12s %s\n", e->name, e->summary);
}

int cmd_eval(int argc, char **argv) {
    if (argc < 2 || cli_is_help(argv[1])) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    char names[512];
    size_t n = 0;
    for (const eval_entry *e = EVALS; e->name; e++) {
        if (!strcmp(argv[1], e->name)) return e->run(argc - 1, argv + 1);
        n += (size_t)snprintf(names + n, n < sizeof names ? sizeof names - n : 0, "%s%s", n ? ", " : "", e->name);
    }
    return cli_usage_error("eval", "unknown evaluation '%s' (%s)", argv[1], names);
}
