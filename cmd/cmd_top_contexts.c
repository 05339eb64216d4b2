/* cmd/cmd_top_contexts.c — `monet-probe top-contexts`: an expert's top-K
 * contexts from a collect store, highest activation first, with the
 * document's labels and the detokenized window around the activating token. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analysis/context.h"
#include "cli.h"
#include "core/model/expert_addr.h"
#include "core/model/routing.h"
#include "core/store/collect.h"
#include "core/store/evidence_read.h"
#include "core/store/model_check.h"
#include "core/store/store.h"
#include "core/text/tokenizer.h"

static const char *ABOUT =
    "  An expert's top contexts, highest first: activation w_ij as a percentage (as the paper shows it;\n"
    "  it can exceed 100%: it sums over heads), the document's labels, and the text around the token\n"
    "  (bold on a terminal, [[token]] otherwise). Without R:, the expert in every router group.\n"
    "  --label F=V shows instead the expert's best documents of that label value (kept per\n"
    "  expert and value during collect, the best token of each document); --quantiles its\n"
    "  quantile samples, a few per octave of w (docs/store.md).";

/* A shown text already printed, and the rank that printed it. */
typedef struct seen_key {
    char *text;
    int rank;
} seen_key;

static void free_keys(seen_key *k, size_t n) {
    for (size_t i = 0; i < n; i++) free(k[i].text);
}

static int meta_int(mp_store *st, const char *key, long *v, mp_error *err) {
    char *s = NULL;
    int r = mp_store_meta_get(st, key, &s, err);
    if (r < 0) return r;
    if (r == 0 || cli_parse_long(s, 0, 1L << 40, v)) {
        free(s);
        return mp_fail(err, MP_EINPUT, "%s: corrupt store: bad metadata '%s'", mp_store_path(st), key);
    }
    free(s);
    return 0;
}

int cmd_top_contexts(int argc, char **argv) {
    const char *store = NULL, *expert = NULL, *model = NULL;
    const char *label = NULL;
    long show = 10, limit = -1;
    int json = 0, all_text = 0, quantiles = 0;
    const cli_opt opts[] = {
        CLI_OPT_STORE(&store, CLI_REQUIRED),
        CLI_OPT_EXPERT(&expert, CLI_STR, "the expert: R:I,J or R:ID (flat id I*E+J); without R:, every group",
                       CLI_REQUIRED),
        {"--context-tokens", "--window", CLI_LONG, "N", &show, 0, 1 << 20, NULL,
         "tokens shown on each side of the activating token (default 10; as browse)", 0, NULL, 0},
        {"--contexts", "--limit", CLI_LONG, "N", &limit, 1, 1 << 20, NULL,
         "contexts per group (default: all stored; as browse and effects)", 0, NULL, 0},
        {"--model", NULL, CLI_STR, "DIR", &model, 0, 0, NULL,
         "the model the store was collected with (checked): adds the expert's weight on\n"
         "every shown token of each context (one forward per context window)", 0, NULL, 0},
        {"--all-text", NULL, CLI_FLAG, NULL, &all_text, 0, 0, NULL,
         "print every context in full (default: a context whose shown text repeats an\n"
         "earlier one is one line naming that rank; --json marks it duplicate_of)", 0, NULL, 0},
        CLI_OPT_LABEL_SELECT(&label, "the expert's best documents whose label F is V (e.g. lang=PHP), from the\n"
                                     "store's label_topk, instead of its top contexts over the corpus"),
        {"--quantiles", NULL, CLI_FLAG, NULL, &quantiles, 0, 0, NULL,
         "the expert's quantile samples (a few per octave of w, highest first) instead", 0, NULL, 0},
        CLI_OPT_JSON(&json),
        CLI_OPT_END,
    };
    const cli_spec spec = {.cmd = "top-contexts", .about = ABOUT, .opts = opts};
    CLI_PARSE_OR_RETURN(&spec, argc, argv);
    if (label && quantiles) return cli_usage_error("top-contexts", "--label and --quantiles exclude each other");
    char lfield[256] = "", *lvalue = NULL;
    if (label) {
        const char *eq = strchr(label, '=');
        snprintf(lfield, sizeof lfield, "%.*s", (int)(eq - label < 255 ? eq - label : 255), label);
        lvalue = (char *)eq + 1;
    }
    mp_error err;
    mp_error_clear(&err);
    mp_store *st = NULL;
    mp_tokenizer *tok = NULL;
    void *tokbytes = NULL;
    size_t toklen = 0;
    mp_store_hit *hits = NULL;
    int *octave = NULL; /* --quantiles: each sample's octave of w */
    seen_key *keys = NULL;
    size_t n_keys = 0;
    mp_model *m = NULL;
    mp_engine *eng = NULL;
    mp_routing routing = {0};
    int rc = 0, g0, g1, is_tty = !json && isatty(STDOUT_FILENO);
    long E, n_groups, G, W, L, ei = 0, ej = 0;
    if ((rc = mp_store_open(store, MP_STORE_READ, &st, &err)) < 0) goto cleanup;
    if ((rc = meta_int(st, "moe_experts", &E, &err)) < 0 || (rc = meta_int(st, "n_groups", &n_groups, &err)) < 0 ||
        (rc = meta_int(st, "moe_groups", &G, &err)) < 0 || (rc = meta_int(st, "window", &W, &err)) < 0 ||
        (rc = meta_int(st, "n_layers", &L, &err)) < 0)
        goto cleanup;
    if (E < 1 || E > 65536 || n_groups < 1 || n_groups > 4096 || W < 1 || W > (1 << 20)) {
        rc = mp_fail(&err, MP_EINPUT,
                     "%s: corrupt store: bad shape metadata (moe_experts %ld, n_groups %ld, window %ld; limits 65536, "
                     "4096, 1048576)",
                     store, E, n_groups, W);
        goto cleanup;
    }
    int grp;
    mp_expert_addr addr;
    if ((rc = mp_expert_addr_parse(expert, (int)E, (int)n_groups, &addr, &err)) < 0) goto cleanup;
    grp = addr.group;
    ei = addr.i;
    ej = addr.j;
    if (model) {
        if ((rc = mp_store_check_model(st, model, &err)) < 0) goto cleanup;
        if ((rc = mp_model_load(model, &m, &err)) < 0 || (rc = mp_engine_create(m, MP_DEVICE_AUTO, (int)W, 0, &eng, &err)) < 0 ||
            (rc = mp_routing_init(&routing, &m->cfg, &err)) < 0)
            goto cleanup;
    }
    rc = mp_store_get_file(st, "tokenizer.model", &tokbytes, &toklen, &err);
    if (rc == 0) rc = mp_fail(&err, MP_EINPUT, "%s: corrupt store: no tokenizer.model in table files", store);
    if (rc < 0 || (rc = mp_tokenizer_load_from_memory(tokbytes, toklen, "tokenizer.model (in store)", &tok, &err)) < 0)
        goto cleanup;
    if (label && (rc = mp_store_label_known(st, lfield, lvalue, &err)) <= 0) {
        if (rc == 0) {
            char *t = cli_term_dup(label, 0);
            rc = mp_fail(&err, MP_EINPUT, "--label %.200s: no document of the store has that label", t ? t : "?");
            free(t);
        }
        goto cleanup;
    }
    rc = 0;
    g0 = grp >= 0 ? grp : 0;
    g1 = grp >= 0 ? grp : (int)n_groups - 1;
    uint32_t e = (uint32_t)(ei * E + ej);
    if (json) {
        printf("{\"store\": ");
        cli_json_str(stdout, store);
        printf(", \"expert\": {\"i\": %ld, \"j\": %ld, \"id\": %u}, \"groups\": [", ei, ej, e);
    }
    for (int g = g0; g <= g1; g++) {
        mp_expert_stat es;
        size_t n = 0;
        int have = mp_store_expert_stat(st, g, e, &es, &err);
        if ((rc = have) < 0) goto cleanup;
        if (label) rc = mp_store_label_topk(st, g, e, lfield, lvalue, &hits, &n, &err);
        else if (quantiles) rc = mp_store_qsamples(st, g, e, &hits, &n, &err);
        else rc = mp_store_topk(st, g, e, &hits, &n, &err);
        free(octave);
        octave = NULL;
        if (rc == 0 && quantiles && n) { /* rank becomes the row number; the octave is kept aside */
            if (!(octave = malloc(n * sizeof *octave))) rc = mp_fail(&err, MP_ENOMEM, "out of memory");
            for (size_t k = 0; rc == 0 && k < n; k++) octave[k] = hits[k].rank, hits[k].rank = (int)k;
        }
        if (rc < 0) goto cleanup;
        long first = g * G, last = first + G - 1 < L - 1 ? first + G - 1 : L - 1;
        if (json) {
            printf("%s{\"group\": %d, \"layers\": [%ld, %ld], \"n_active\": %llu, \"mean\": %.9g, \"max\": %.9g, %s",
                   g > g0 ? ", " : "", g, first, last, (unsigned long long)es.n, es.n ? es.sum / (double)es.n : 0.0,
                   (double)es.max, label || quantiles ? "" : "\"contexts\": [");
            if (label) {
                printf("\"label\": {\"field\": ");
                cli_json_str(stdout, lfield);
                printf(", \"value\": ");
                cli_json_str(stdout, lvalue);
                printf("}, \"contexts\": [");
            } else if (quantiles) {
                printf("\"quantiles\": true, \"contexts\": [");
            }
        } else {
            printf("expert %d:%ld,%ld (%d:#%u), group %d (layers %ld-%ld): ", g, ei, ej, g, e, g, first, last);
            if (es.n) printf("active on %llu tokens, mean %.2f%%, max %.2f%%\n", (unsigned long long)es.n,
                             100.0 * es.sum / (double)es.n, 100.0 * es.max);
            else printf("never active\n");
            if (label) {
                printf("  best documents with ");
                cli_term_str(stdout, label, 0);
                printf(" (the best token of each):\n");
            } else if (quantiles) {
                printf("  quantile samples (%d per octave of w, highest octave first):\n", MP_QSAMPLES);
            }
        }
        size_t shown = limit > 0 && (size_t)limit < n ? (size_t)limit : n;
        free_keys(keys, n_keys);
        n_keys = 0;
        if (shown && !(keys = realloc(keys, shown * sizeof *keys))) {
            rc = mp_fail(&err, MP_ENOMEM, "out of memory");
            goto cleanup;
        }
        for (size_t k = 0; k < shown; k++) {
            mp_context ct;
            char *labels = NULL, *source = NULL;
            int64_t line = 0;
            rc = mp_context_load(st, tok, (int)W, hits[k].doc, hits[k].pos, (int)show, &ct, &err);
            if (rc == 0 && mp_store_get_doc(st, hits[k].doc, &labels, &source, &line, &err) < 0) rc = -1;
            if (rc == 0 && eng) rc = mp_context_score(eng, &routing, &ct, g, (int)ei, (int)ej, &err);
            const size_t ti = ct.t - ct.from, ns = ct.to - ct.from;
            char *left = rc == 0 ? mp_context_join(&ct, 0, ti, !json) : NULL;
            char *tokt = rc == 0 ? mp_context_join(&ct, ti, ti + 1, !json) : NULL;
            char *right = rc == 0 ? mp_context_join(&ct, ti + 1, ns, !json) : NULL;
            if (rc == 0 && (!left || !tokt || !right)) rc = mp_fail(&err, MP_ENOMEM, "out of memory");
            int dup = -1; /* the same shown text as an earlier context (e.g. a repeated licence line) */
            if (rc == 0) {
                size_t kl = strlen(left) + strlen(tokt) + strlen(right) + 3;
                char *key = malloc(kl);
                if (!key) {
                    rc = mp_fail(&err, MP_ENOMEM, "out of memory");
                } else {
                    snprintf(key, kl, "%s\x01%s\x01%s", left, tokt, right);
                    for (size_t q = 0; q < n_keys && dup < 0; q++)
                        if (!strcmp(keys[q].text, key)) dup = keys[q].rank;
                    keys[n_keys++] = (seen_key){key, hits[k].rank};
                }
            }
            if (rc < 0) {
                mp_context_free(&ct), free(labels), free(source), free(left), free(tokt), free(right);
                rc = err.code ? err.code : MP_EINTERNAL;
                goto cleanup;
            }
            cJSON *lj = labels ? cJSON_Parse(labels) : NULL;
            if (!json && octave && (k == 0 || octave[k] != octave[k - 1])) {
                printf("   octave w in [%.2f%%, ", 100 * mp_hist_edge(2 * octave[k]));
                if (octave[k] + 1 < MP_QBINS) printf("%.2f%%):\n", 100 * mp_hist_edge(2 * octave[k] + 2));
                else printf("...):\n");
            }
            if (json) {
                printf("%s\n  {\"rank\": %d, \"w\": %.9g, \"percent\": \"%.2f%%\", \"doc\": %llu, \"pos\": %u, "
                       "\"source\": ",
                       k ? "," : "", hits[k].rank, hits[k].w, 100.0 * hits[k].w, (unsigned long long)hits[k].doc,
                       hits[k].pos);
                cli_json_str(stdout, source ? source : "");
                /* the labels re-serialized from their parse: a crafted store cannot inject JSON */
                char *lab = cJSON_IsObject(lj) ? cJSON_PrintUnformatted(lj) : NULL;
                printf(", \"line\": %lld, \"labels\": %s, \"left\": ", (long long)line, lab ? lab : "{}");
                free(lab);
                cli_json_str(stdout, left);
                printf(", \"token\": ");
                cli_json_str(stdout, tokt);
                printf(", \"right\": ");
                cli_json_str(stdout, right);
                if (dup >= 0) printf(", \"duplicate_of\": %d", dup);
                if (octave)
                    printf(", \"octave\": %d, \"w_range\": [%.9g, %.9g]", octave[k], mp_hist_edge(2 * octave[k]),
                           octave[k] + 1 < MP_QBINS ? mp_hist_edge(2 * octave[k] + 2) : -1.0);
                if (eng) { /* per-token weights of the shown tokens, first = the first of "left" */
                    printf(", \"tokens\": [");
                    for (size_t q = 0; q < ns; q++) {
                        printf("%s", q ? ", " : "");
                        cli_json_str(stdout, ct.pieces[q]);
                    }
                    printf("], \"scores\": [");
                    for (size_t q = 0; q < ns; q++) printf("%s%.9g", q ? ", " : "", ct.scores[q]);
                    printf("], \"token_index\": %zu", ti);
                }
                printf("}");
            } else if (dup >= 0 && !all_text) {
                printf("  %7.2f%%  doc %llu pos %u  same text as rank %d\n", 100.0 * hits[k].w,
                       (unsigned long long)hits[k].doc, hits[k].pos, dup);
            } else {
                printf("  %7.2f%%  doc %llu pos %u", 100.0 * hits[k].w, (unsigned long long)hits[k].doc, hits[k].pos);
                const cJSON *it;
                int nl = 0;
                cJSON_ArrayForEach(it, lj) {
                    if (!cJSON_IsString(it)) continue;
                    fputs(nl++ ? " " : "  [", stdout);
                    cli_term_str(stdout, it->string, 0);
                    putchar('=');
                    cli_term_str(stdout, it->valuestring, 0);
                }
                if (nl) printf("]");
                printf("\n           ");
                cli_term_str(stdout, left, 0);
                fputs(is_tty ? "\033[1m" : "[[", stdout);
                cli_term_str(stdout, tokt, 0);
                fputs(is_tty ? "\033[0m" : "]]", stdout);
                cli_term_str(stdout, right, 0);
                putchar('\n');
                if (eng) { /* the expert on the other shown tokens */
                    int any = 0;
                    for (size_t q = 0; q < ns; q++) {
                        if (q == ti || ct.scores[q] <= 0) continue;
                        char *one = mp_context_join(&ct, q, q + 1, 1);
                        printf("%s", any++ ? ", " : "           also active: ");
                        putchar('\'');
                        cli_term_str(stdout, one ? one : "", 0);
                        printf("' %.1f%%", 100 * ct.scores[q]);
                        free(one);
                    }
                    printf("%s", any ? "\n" : "           active on no other shown token\n");
                }
            }
            cJSON_Delete(lj);
            mp_context_free(&ct), free(labels), free(source), free(left), free(tokt), free(right);
        }
        if (json) printf("]}");
        else if (shown < n) printf("  ... %zu more (--limit)\n", n - shown);
        free(hits);
        hits = NULL;
    }
    if (json) printf("\n]}\n");
    rc = 0;
cleanup:
    free(hits);
    free(octave);
    free_keys(keys, n_keys);
    free(keys);
    mp_routing_free(&routing);
    mp_engine_free(eng);
    mp_model_free(m);
    free(tokbytes);
    mp_tokenizer_free(tok);
    mp_store_close(st);
    return rc < 0 ? cli_exit_error(&err) : 0;
}
