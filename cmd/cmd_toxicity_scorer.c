/* cmd/cmd_toxicity_scorer.c — `monet-probe toxicity-scorer`: train the builtin
 * offline toxicity scorer on the annotated ToxiGen split (reporting held-out
 * accuracy and ROC AUC), score texts with any scorer, and show the RoBERTa
 * scorer's tokens (for parity checks). See core/eval/tox_scorer.h, docs/toxicity.md. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/util/readfile.h"
#include "core/eval/roberta.h"
#include "core/eval/tox_scorer.h"
#include "eval_opts.h"

static const char *USAGE =
    "usage: monet-probe toxicity-scorer train|score|tokenize [options]   (ACTION --help: its options)\n"
    "  train     fit the builtin scorer (hashed word/char n-gram logistic regression) on the annotated\n"
    "            ToxiGen CSV; report train and held-out accuracy, ROC AUC and log loss\n"
    "  score     print one P(toxic) per JSONL {\"text\": ...} line with any scorer\n"
    "  tokenize  print the RoBERTa token ids of each JSONL text (parity checks)\n";

static const char *TRAIN_ABOUT =
    "  Fit the builtin scorer (hashed word/char n-gram logistic regression) on the annotated ToxiGen\n"
    "  CSV (a file or a directory, e.g. ../shared/data/toxigen/annotated); rows whose\n"
    "  fnv1a64(text) % 1000 < 1000*F (--holdout F) are held out and only scored. Prints train and\n"
    "  held-out accuracy (threshold 0.5), ROC AUC and log loss, stored in the file.";
static const char *SCORE_ABOUT =
    "  Read JSONL {\"text\": ...} lines (stdin or --in) and print one P(toxic) per line (%.9g).";
static const char *TOKENIZE_ABOUT =
    "  Print the RoBERTa token ids (<s> ... </s>) of each JSONL {\"text\": ...} line, comma-separated.";

/* --in FILE: the JSONL input of score / tokenize */
#define OPT_IN(p) {"--in", NULL, CLI_STR, "FILE", (p), 0, 0, NULL, "JSONL input (default: stdin)", 0, NULL, 0}

/* Texts of the JSONL input ({"text": ...} per line; blank lines skipped). */
static int read_texts(const char *path, char ***texts, size_t **lens, size_t *n, mp_error *err) {
    char *buf = NULL;
    size_t len = 0, cap = 0, line = 0;
    *texts = NULL;
    *lens = NULL;
    *n = 0;
    MP_TRY(mp_read_file(path, &buf, &len, err));
    int rc = 0;
    for (char *p = buf; p < buf + len;) {
        char *e = memchr(p, '\n', (size_t)(buf + len - p));
        if (!e) e = buf + len;
        *e = '\0';
        line++;
        char *q = p;
        p = e + 1;
        while (*q == ' ' || *q == '\t' || *q == '\r') q++;
        if (!*q) continue;
        cJSON *o = cJSON_Parse(q);
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "text");
        if (!cJSON_IsString(t)) {
            cJSON_Delete(o);
            rc = mp_fail(err, MP_EINPUT, "%s:%zu: expected a JSON object with a string \"text\"", path, line);
            goto cleanup;
        }
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nt = realloc(*texts, cap * sizeof *nt);
            size_t *nl = realloc(*lens, cap * sizeof *nl);
            if (nt) *texts = nt;
            if (nl) *lens = nl;
            if (!nt || !nl) {
                cJSON_Delete(o);
                rc = mp_fail(err, MP_ENOMEM, "out of memory");
                goto cleanup;
            }
        }
        (*lens)[*n] = strlen(t->valuestring);
        (*texts)[*n] = strdup(t->valuestring);
        cJSON_Delete(o);
        if (!(*texts)[*n]) {
            rc = mp_fail(err, MP_ENOMEM, "out of memory");
            goto cleanup;
        }
        (*n)++;
    }
cleanup:
    free(buf);
    return rc;
}

static void free_texts(char **texts, size_t *lens, size_t n) {
    for (size_t i = 0; i < n; i++) free(texts[i]);
    free(texts);
    free(lens);
}

static void print_metrics(const char *name, const mp_tox_metrics *m) {
    printf("%-9s n %5zu  toxic %5zu  accuracy %.4f  AUC %.4f  log loss %.4f\n", name, m->n, m->positives, m->accuracy,
           m->auc, m->log_loss);
}

static int cmd_train(int argc, char **argv) {
    const char *cmd = "toxicity-scorer train", *data = NULL, *out = NULL, *pred = NULL;
    mp_tox_linear_opts o;
    mp_tox_linear_opts_default(&o);
    int quiet = 0, human = 0;
    long seed = (long)o.seed;
    const cli_opt opts[] = {
        {"--data", NULL, CLI_STR, "PATH", &data, 0, 0, NULL, "annotated ToxiGen CSV file or directory", CLI_REQUIRED,
         NULL, 0},
        CLI_OPT_OUT(&out, "SCORER.json", "the trained scorer (builtin:SCORER.json)", CLI_REQUIRED),
        {"--label", NULL, CLI_CHOICE, NULL, &human, 0, 0, "combined|human",
         "combined: toxic iff toxicity_ai + toxicity_human > 5.5 (lm-eval; default);\n"
         "human: toxic iff toxicity_human > 3", 0, NULL, 0},
        {"--holdout", NULL, CLI_DOUBLE, "F", &o.holdout, 0.001, 0.9, NULL, "share of rows held out (default 0.2)", 0,
         NULL, 0},
        {"--epochs", NULL, CLI_INT, "N", &o.epochs, 1, 1000, NULL, "training epochs (default 8)", 0, NULL, 0},
        {"--buckets", NULL, CLI_INT, "LOG2", &o.log2_buckets, 10, 24, NULL, "2^LOG2 hashed features (default 16)", 0,
         NULL, 0},
        {"--seed", NULL, CLI_LONG, "S", &seed, 0, 4.6e18, NULL, "shuffle seed (default 1)", 0, NULL, 0},
        {"--predictions", NULL, CLI_STR, "FILE", &pred, 0, 0, NULL,
         "held-out rows as JSONL {\"row\", \"label\", \"score\", \"text\"}", 0, NULL, 0},
        {"--quiet", NULL, CLI_FLAG, NULL, &quiet, 0, 0, NULL, "no report on stdout", 0, NULL, 0},
        CLI_OPT_END,
    };
    const cli_spec spec = {.cmd = cmd, .about = TRAIN_ABOUT, .opts = opts};
    CLI_PARSE_OR_RETURN(&spec, argc - 1, argv + 1);
    o.human_rule = human;
    o.seed = (uint64_t)seed;
    mp_error err;
    mp_error_clear(&err);
    mp_tox_rows rows = {0};
    mp_tox_linear *m = NULL;
    size_t *held = NULL, n_held = 0;
    int rc = 0;
    double t0 = mp_now();
    if ((rc = mp_tox_rows_load(data, &rows, &err)) < 0) goto cleanup;
    if ((rc = mp_tox_linear_train(&rows, data, &o, &m, &held, &n_held, &err)) < 0) goto cleanup;
    if ((rc = mp_tox_linear_save(m, out, &err)) < 0) goto cleanup;
    if (pred) {
        FILE *f = fopen(pred, "wb");
        if (!f) {
            rc = mp_fail(&err, MP_EIO, "%s: cannot create", pred);
            goto cleanup;
        }
        for (size_t k = 0; k < n_held; k++) {
            const mp_tox_row *r = &rows.rows[held[k]];
            fprintf(f, "{\"row\": %zu, \"label\": %d, \"score\": %.9g, \"text\": ", held[k],
                    mp_tox_row_label(r, o.human_rule), mp_tox_linear_prob(m, r->text, r->len));
            mp_tox_json_string(f, r->text, r->len);
            fputs("}\n", f);
        }
        if (fclose(f) != 0) {
            rc = mp_fail(&err, MP_EIO, "%s: write failed", pred);
            goto cleanup;
        }
    }
    if (!quiet) {
        printf("builtin toxicity scorer: %zu annotated rows from %s\n", rows.n, data);
        printf("label: %s\n", o.human_rule ? "toxicity_human > 3" : "toxicity_ai + toxicity_human > 5.5");
        printf("features: 2^%d hashed buckets; AdaGrad logistic regression, %d epochs, lr %g, l2 %g, seed %llu\n",
               o.log2_buckets, o.epochs, o.lr, o.l2, (unsigned long long)o.seed);
        print_metrics("train", &m->train);
        print_metrics("held-out", &m->heldout);
        printf("wrote %s (%.2f s)\n", out, mp_now() - t0);
    }
cleanup:
    free(held);
    mp_tox_linear_free(m);
    mp_tox_rows_free(&rows);
    return rc < 0 ? cli_exit_error(&err) : 0;
}

static int cmd_score(int argc, char **argv, int tokenize) {
    const char *cmd = tokenize ? "toxicity-scorer tokenize" : "toxicity-scorer score";
    const char *spec = NULL, *label = NULL, *in = "-", *dir = NULL;
    int logits = 0;
    const cli_opt score_opts[] = {
        EVAL_OPTS_SCORER(&spec, &label, CLI_REQUIRED),
        {"--logits", NULL, CLI_FLAG, NULL, &logits, 0, 0, NULL,
         "roberta only: print the raw classifier logits, space-separated", 0, NULL, 0},
        OPT_IN(&in),
        CLI_OPT_END,
    };
    const cli_opt tokenize_opts[] = {
        {"--roberta", NULL, CLI_STR, "DIR", &dir, 0, 0, NULL, "RoBERTa checkpoint folder", CLI_REQUIRED, NULL, 0},
        OPT_IN(&in),
        CLI_OPT_END,
    };
    const cli_spec cs = {.cmd = cmd, .about = tokenize ? TOKENIZE_ABOUT : SCORE_ABOUT,
                         .opts = tokenize ? tokenize_opts : score_opts};
    CLI_PARSE_OR_RETURN(&cs, argc - 1, argv + 1);
    if (logits && strncmp(spec, "roberta:", 8)) return cli_usage_error(cmd, "--logits needs a roberta: scorer");
    mp_error err;
    mp_error_clear(&err);
    char **texts = NULL;
    size_t *lens = NULL, n = 0;
    double *scores = NULL;
    mp_tox_scorer *s = NULL;
    mp_roberta *rb = NULL;
    float *lg = NULL;
    int rc = 0;
    if ((rc = read_texts(in, &texts, &lens, &n, &err)) < 0) goto cleanup;
    if (tokenize || logits) {
        if ((rc = mp_roberta_load(tokenize ? dir : spec + 8, &rb, &err)) < 0) goto cleanup;
        if (!(lg = malloc((size_t)mp_roberta_cfg(rb)->n_labels * sizeof *lg))) {
            rc = mp_fail(&err, MP_ENOMEM, "out of memory");
            goto cleanup;
        }
        for (size_t i = 0; i < n; i++) {
            int32_t *ids = NULL;
            size_t ni = 0;
            if ((rc = mp_roberta_encode(rb, texts[i], lens[i], &ids, &ni, &err)) < 0) goto cleanup;
            if (tokenize) {
                for (size_t k = 0; k < ni; k++) printf("%s%d", k ? "," : "", ids[k]);
                putchar('\n');
            } else {
                rc = mp_roberta_logits(rb, ids, ni, lg, &err);
                for (int k = 0; rc == 0 && k < mp_roberta_cfg(rb)->n_labels; k++) printf("%s%.9g", k ? " " : "", lg[k]);
                putchar('\n');
            }
            free(ids);
            if (rc < 0) goto cleanup;
        }
        goto cleanup;
    }
    if ((rc = mp_tox_scorer_open(spec, label, &s, &err)) < 0) goto cleanup;
    if (!(scores = malloc((n ? n : 1) * sizeof *scores))) {
        rc = mp_fail(&err, MP_ENOMEM, "out of memory");
        goto cleanup;
    }
    if ((rc = mp_tox_scorer_score(s, (const char *const *)texts, lens, n, scores, NULL, &err)) < 0) goto cleanup;
    for (size_t i = 0; i < n; i++) printf("%.9g\n", scores[i]);
cleanup:
    free(lg);
    mp_roberta_free(rb);
    mp_tox_scorer_close(s);
    free(scores);
    free_texts(texts, lens, n);
    return rc < 0 ? cli_exit_error(&err) : 0;
}

int cmd_toxicity_scorer(int argc, char **argv) {
    if (argc < 2 || cli_is_help(argv[1])) {
        fputs(USAGE, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "train")) return cmd_train(argc, argv);
    if (!strcmp(argv[1], "score")) return cmd_score(argc, argv, 0);
    if (!strcmp(argv[1], "tokenize")) return cmd_score(argc, argv, 1);
    return cli_usage_error("toxicity-scorer", "unknown action '%s' (train, score, tokenize)", argv[1]);
}
