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
#include "core/eval/roberta.h"
#include "core/eval/tox_scorer.h"

static const char *USAGE =
    "usage: monet-probe toxicity-scorer train --data PATH --out SCORER.json [--label combined|human]\n"
    "                                   [--holdout F] [--epochs N] [--buckets LOG2] [--seed S]\n"
    "                                   [--predictions FILE] [--quiet]\n"
    "       monet-probe toxicity-scorer score --scorer SPEC [--positive-label L] [--logits] [--in FILE]\n"
    "       monet-probe toxicity-scorer tokenize --roberta DIR [--in FILE]\n"
    "  train     fit the builtin scorer (hashed word/char n-gram logistic regression) on the annotated\n"
    "            ToxiGen CSV (a file or a directory, e.g. ../shared/data/toxigen/annotated); rows whose\n"
    "            fnv1a64(text) %% 1000 < 1000*F (default F 0.2) are held out and only scored. Prints\n"
    "            train and held-out accuracy (threshold 0.5), ROC AUC and log loss, stored in the file.\n"
    "            --label combined: toxic iff toxicity_ai + toxicity_human > 5.5 (lm-eval; default)\n"
    "            --label human:    toxic iff toxicity_human > 3\n"
    "            --predictions FILE: held-out rows as JSONL {\"row\", \"label\", \"score\", \"text\"}\n"
    "  score     read JSONL {\"text\": ...} lines (stdin or --in) and print one P(toxic) per line\n"
    "            (%.9g); SPEC = roberta:DIR | cmd:COMMAND | builtin:PATH. --logits (roberta only):\n"
    "            print the raw classifier logits, space-separated\n"
    "  tokenize  print the RoBERTa token ids (<s> ... </s>) of each JSONL text, comma-separated\n";

/* Texts of the JSONL input ({"text": ...} per line; blank lines skipped). */
static int read_texts(const char *path, char ***texts, size_t **lens, size_t *n, mp_error *err) {
    char *buf = NULL;
    size_t len = 0, cap = 0, line = 0;
    *texts = NULL;
    *lens = NULL;
    *n = 0;
    MP_TRY(cli_read_all(path, &buf, &len, err));
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
    const char *cmd = "toxicity-scorer train", *data = NULL, *out = NULL, *pred = NULL, *v;
    mp_tox_linear_opts o;
    mp_tox_linear_opts_default(&o);
    int quiet = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        long l;
        if (cli_is_help(a)) {
            fputs(USAGE, stdout);
            return 0;
        } else if (!strcmp(a, "--data")) {
            if (!(data = cli_opt_value(cmd, argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--out")) {
            if (!(out = cli_opt_value(cmd, argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--predictions")) {
            if (!(pred = cli_opt_value(cmd, argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--label")) {
            if (!(v = cli_opt_value(cmd, argc, argv, &i))) return 2;
            if (!strcmp(v, "combined")) o.human_rule = 0;
            else if (!strcmp(v, "human")) o.human_rule = 1;
            else return cli_usage_error(cmd, "bad --label '%s' (combined or human)", v);
        } else if (!strcmp(a, "--holdout")) {
            if (!(v = cli_opt_value(cmd, argc, argv, &i))) return 2;
            if (cli_parse_double(v, 0.001, 0.9, &o.holdout)) return cli_usage_error(cmd, "bad --holdout '%s'", v);
        } else if (!strcmp(a, "--epochs")) {
            if (!(v = cli_opt_value(cmd, argc, argv, &i))) return 2;
            if (cli_parse_long(v, 1, 1000, &l)) return cli_usage_error(cmd, "bad --epochs '%s'", v);
            o.epochs = (int)l;
        } else if (!strcmp(a, "--buckets")) {
            if (!(v = cli_opt_value(cmd, argc, argv, &i))) return 2;
            if (cli_parse_long(v, 10, 24, &l)) return cli_usage_error(cmd, "bad --buckets '%s' (log2, 10..24)", v);
            o.log2_buckets = (int)l;
        } else if (!strcmp(a, "--seed")) {
            if (!(v = cli_opt_value(cmd, argc, argv, &i))) return 2;
            if (cli_parse_long(v, 0, 1L << 62, &l)) return cli_usage_error(cmd, "bad --seed '%s'", v);
            o.seed = (uint64_t)l;
        } else if (!strcmp(a, "--quiet")) {
            quiet = 1;
        } else {
            return cli_usage_error(cmd, "unknown argument '%s'", a);
        }
    }
    if (!data || !out) return cli_usage_error(cmd, "--data PATH and --out FILE are required");
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
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            fputs(USAGE, stdout);
            return 0;
        } else if (!tokenize && !strcmp(a, "--scorer")) {
            if (!(spec = cli_opt_value(cmd, argc, argv, &i))) return 2;
        } else if (!tokenize && !strcmp(a, "--positive-label")) {
            if (!(label = cli_opt_value(cmd, argc, argv, &i))) return 2;
        } else if (!tokenize && !strcmp(a, "--logits")) {
            logits = 1;
        } else if (tokenize && !strcmp(a, "--roberta")) {
            if (!(dir = cli_opt_value(cmd, argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--in")) {
            if (!(in = cli_opt_value(cmd, argc, argv, &i))) return 2;
        } else {
            return cli_usage_error(cmd, "unknown argument '%s'", a);
        }
    }
    if (!tokenize && !spec) return cli_usage_error(cmd, "--scorer SPEC is required");
    if (tokenize && !dir) return cli_usage_error(cmd, "--roberta DIR is required");
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
