/* cmd/cmd_tokenize.c — `monet-probe tokenize`: encode text with the model's
 * SentencePiece tokenizer, or decode ids back to text.
 *
 * Owns only argument handling and output formats; the tokenizer itself is
 * core/text/tokenizer.c. TEXT on the command line is one string (newlines in it
 * are encoded). `-` reads stdin line by line like spm_encode / spm_decode:
 * each line is one sentence without its '\n', and gives one output record
 * (one line with --ids / --json / --decode; a block ended by an empty line in
 * the default table). --whole makes stdin a single string instead.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/util/readfile.h"
#include "core/text/tokenizer.h"

static const char ABOUT[] =
    "  Encode TEXT (one string) or stdin ('-', line by line like spm_encode) with the\n"
    "  SentencePiece tokenizer DIR/tokenizer.model, or decode token ids with --decode.\n"
    "  Like spm_encode, no BOS unless --bos (model commands' --text prepend it by default).";
static const char FOOTER[] =
    "default output: one 'id<TAB>piece' line per token (control bytes in pieces\n"
    "escaped as \\xNN), an empty line after each stdin line.\n";

enum { OUT_TABLE, OUT_IDS, OUT_JSON };

typedef struct {
    const mp_tokenizer *tok;
    int format;
    int add_bos;
    FILE *out;
} tok_cli;

static void put_table_piece(FILE *out, const char *s) {
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7F) fprintf(out, "\\x%02X", c);
        else fputc(c, out);
    }
}

/* Fast decimal output for the --ids hot path. */
static size_t put_int(char *w, int32_t v) {
    char tmp[12];
    size_t n = 0;
    uint32_t u = v < 0 ? (uint32_t)(-(int64_t)v) : (uint32_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    size_t k = 0;
    if (v < 0) w[k++] = '-';
    while (n) w[k++] = tmp[--n];
    return k;
}

static int write_ids(FILE *out, const int32_t *ids, size_t n) {
    char buf[4096];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k > sizeof buf - 16) {
            fwrite(buf, 1, k, out);
            k = 0;
        }
        if (i) buf[k++] = ' ';
        k += put_int(buf + k, ids[i]);
    }
    buf[k++] = '\n';
    fwrite(buf, 1, k, out);
    return 0;
}

static int encode_one(tok_cli *c, const char *text, size_t len, int block_end, mp_error *err) {
    int32_t *ids = NULL;
    size_t n = 0;
    MP_TRY(mp_tokenizer_encode(c->tok, text, len, c->add_bos, &ids, &n, err));
    if (c->format == OUT_IDS) {
        write_ids(c->out, ids, n);
    } else if (c->format == OUT_JSON) {
        fputs("{\"ids\":[", c->out);
        for (size_t i = 0; i < n; i++) fprintf(c->out, i ? ",%d" : "%d", (int)ids[i]);
        fputs("],\"pieces\":[", c->out);
        for (size_t i = 0; i < n; i++) {
            const char *p = mp_tokenizer_piece(c->tok, ids[i]);
            if (i) fputc(',', c->out);
            cli_json_strn(c->out, p, strlen(p));
        }
        fputs("]}\n", c->out);
    } else {
        for (size_t i = 0; i < n; i++) {
            fprintf(c->out, "%d\t", (int)ids[i]);
            put_table_piece(c->out, mp_tokenizer_piece(c->tok, ids[i]));
            fputc('\n', c->out);
        }
        if (block_end) fputc('\n', c->out);
    }
    free(ids);
    return 0;
}

static int decode_one(tok_cli *c, const char *line, mp_error *err) {
    int32_t *ids = NULL;
    size_t n = 0;
    const char *p = line;
    while (*p == ' ' || *p == '\t' || *p == ',' || *p == '\r') p++;
    if (*p && cli_parse_ids(line, &ids, &n, err) < 0) return MP_EINPUT;
    char *text = NULL;
    size_t len = 0;
    int rc = mp_tokenizer_decode(c->tok, ids, n, &text, &len, err);
    free(ids);
    if (rc < 0) return rc;
    if (c->format == OUT_JSON) {
        fputs("{\"text\":", c->out);
        cli_json_strn(c->out, text, len);
        fputs("}\n", c->out);
    } else {
        fwrite(text, 1, len, c->out);
        fputc('\n', c->out);
    }
    free(text);
    return 0;
}

/* stdin line by line; errors are prefixed "<stdin>:LINE". */
static int run_lines(tok_cli *c, int decode, mp_error *err) {
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t got;
    int rc = 0;
    while ((got = getline(&line, &cap, stdin)) >= 0) {
        size_t len = (size_t)got;
        lineno++;
        if (len && line[len - 1] == '\n') line[--len] = '\0';
        rc = decode ? decode_one(c, line, err) : encode_one(c, line, len, 1, err);
        if (rc < 0) {
            mp_error_prefix(err, "<stdin>:%zu", lineno);
            break;
        }
    }
    if (rc == 0 && ferror(stdin)) rc = mp_fail(err, MP_EIO, "<stdin>: read error");
    free(line);
    return rc;
}

int cmd_tokenize(int argc, char **argv) {
    const char *cmd = "tokenize";
    const char *model_dir = NULL, *tok_file = NULL, *input = NULL;
    int decode = 0, whole = 0;
    tok_cli c = {NULL, OUT_TABLE, 0, stdout};
    int ids_out = 0, json_out = 0;
    const cli_opt opts[] = {
        {"--model", NULL, CLI_STR, "DIR", &model_dir, 0, 0, NULL, "model directory holding tokenizer.model", 0, NULL, 0},
        {"--tokenizer", NULL, CLI_STR, "FILE", &tok_file, 0, 0, NULL,
         "SentencePiece model file (overrides DIR/tokenizer.model)", 0, NULL, 0},
        {"--ids", NULL, CLI_FLAG, NULL, &ids_out, 0, 0, NULL,
         "print ids space-separated, one line per input line\n(same output as spm_encode --output_format=id)", 0,
         NULL, 0},
        {"--json", NULL, CLI_FLAG, NULL, &json_out, 0, 0, NULL,
         "one JSON object per input: {\"ids\":[...],\"pieces\":[...]}\n({\"text\":\"...\"} with --decode)", 0,
         NULL, 0},
        {"--bos", NULL, CLI_FLAG, NULL, &c.add_bos, 0, 0, NULL, "prepend the BOS id", 0, NULL, 0},
        {"--whole", NULL, CLI_FLAG, NULL, &whole, 0, 0, NULL, "with '-': encode all of stdin as one string", 0, NULL,
         0},
        {"--decode", NULL, CLI_FLAG, NULL, &decode, 0, 0, NULL,
         "input is token ids (space or comma separated); print text\n(same output as spm_decode --input_format=id)",
         0, NULL, 0},
        CLI_OPT_END,
    };
    const cli_spec spec = {.cmd = cmd, .synopsis = "(--model DIR | --tokenizer FILE) [options] (TEXT | -)",
                           .about = ABOUT, .opts = opts, .pos_name = "TEXT", .pos = &input, .pos_min = 0,
                           .pos_max = 1, .footer = FOOTER};
    CLI_PARSE_OR_RETURN(&spec, argc, argv);
    if (ids_out && json_out) return cli_usage_error(cmd, "choose one of --ids and --json");
    c.format = json_out ? OUT_JSON : ids_out ? OUT_IDS : OUT_TABLE;
    if (!model_dir && !tok_file) return cli_usage_error(cmd, "--model DIR or --tokenizer FILE is required");
    if (!input) return cli_usage_error(cmd, "no input: give TEXT or '-' for stdin");

    char path_buf[4096];
    if (!tok_file) {
        if ((size_t)snprintf(path_buf, sizeof path_buf, "%s/tokenizer.model", model_dir) >= sizeof path_buf)
            return cli_usage_error(cmd, "--model path too long");
        tok_file = path_buf;
    }
    mp_error err;
    mp_error_clear(&err);
    mp_tokenizer *tok = NULL;
    if (mp_tokenizer_load(tok_file, &tok, &err) < 0) return cli_exit_error(&err);
    c.tok = tok;

    static char out_buf[1 << 16];
    setvbuf(stdout, out_buf, _IOFBF, sizeof out_buf);
    int rc = 0;
    if (!strcmp(input, "-") && !whole) {
        rc = run_lines(&c, decode, &err);
    } else if (!strcmp(input, "-")) {
        char *buf = NULL;
        size_t len = 0;
        rc = mp_read_file("-", &buf, &len, &err);
        if (rc == 0) rc = decode ? decode_one(&c, buf, &err) : encode_one(&c, buf, len, 0, &err);
        free(buf);
    } else {
        rc = decode ? decode_one(&c, input, &err) : encode_one(&c, input, strlen(input), 0, &err);
    }
    mp_tokenizer_free(tok);
    if (fflush(stdout) != 0 && rc == 0) rc = mp_fail(&err, MP_EIO, "<stdout>: write error");
    return rc < 0 ? cli_exit_error(&err) : 0;
}
