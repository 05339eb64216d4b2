/* cmd/cmd_find.c — `monet-probe find`: which experts fire on a token, from the
 * store's token index (token_index; docs/store.md). The token is given as a
 * vocabulary piece (--token), an id (--id) or text tokenized with the store's
 * own tokenizer (--text, every token of it looked up). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/store/evidence_read.h"
#include "core/store/store.h"
#include "core/text/tokenizer.h"

static const char *ABOUT =
    "  The experts a token activates, from the store's token index: per expert the number of\n"
    "  hits on that token with w >= 12.5% (weaker hits are not indexed) and the largest w,\n"
    "  most frequent first. --token takes a vocabulary piece ('$', 'def', or '\xe2\x96\x81" "def' for\n"
    "  the word-initial form; a piece without it is also tried with it); --text is tokenized with\n"
    "  the store's tokenizer and every token of it is looked up.";

/* The id of a vocabulary piece: exact, else with the word-start marker U+2581. */
static int piece_id(const mp_tokenizer *tok, const char *s) {
    char alt[512];
    snprintf(alt, sizeof alt, "\xe2\x96\x81%s", s);
    int nv = mp_tokenizer_vocab_size(tok), found = -1;
    for (int pass = 0; pass < 2 && found < 0; pass++)
        for (int id = 0; id < nv && found < 0; id++) {
            const char *p = mp_tokenizer_piece(tok, id);
            if (p && !strcmp(p, pass ? alt : s)) found = id;
        }
    return found;
}

static void print_token(const mp_tokenizer *tok, int32_t id, const mp_token_hit *rows, size_t n,
                        const mp_store_shape *sh, int json, int first) {
    const char *piece = mp_tokenizer_piece(tok, id);
    char text[256];
    int tl = mp_tokenizer_decode_piece(tok, -1, id, text, sizeof text);
    if (tl < 0) text[0] = '\0';
    if (json) {
        printf("%s\n  {\"id\": %d, \"piece\": ", first ? "" : ",", id);
        cli_json_str(stdout, piece ? piece : "");
        printf(", \"text\": ");
        cli_json_str(stdout, text);
        printf(", \"experts\": [");
    } else {
        printf("%stoken ", first ? "" : "\n");
        cli_term_str(stdout, piece ? piece : "", 0);
        printf(" (id %d): %zu expert%s with hits of w >= %.1f%%\n", id, n, n == 1 ? "" : "s", 100 * MP_TOKIDX_MIN_W);
        if (n) printf("  %-16s %-8s %10s %8s\n", "expert", "layers", "count", "max");
    }
    for (size_t k = 0; k < n; k++) {
        int g = rows[k].grp, i = (int)(rows[k].expert / (uint32_t)sh->E), j = (int)(rows[k].expert % (uint32_t)sh->E);
        int l0 = g * sh->moe_groups, l1 = l0 + sh->moe_groups - 1 < sh->n_layers - 1 ? l0 + sh->moe_groups - 1
                                                                                      : sh->n_layers - 1;
        if (json) {
            printf("%s{\"group\": %d, \"i\": %d, \"j\": %d, \"id\": %u, \"address\": \"%d:%d,%d\", \"layers\": [%d, %d], "
                   "\"count\": %llu, \"max\": %.9g}",
                   k ? ", " : "", g, i, j, rows[k].expert, g, i, j, l0, l1, (unsigned long long)rows[k].n, rows[k].max_w);
        } else {
            char addr[64], lay[32];
            snprintf(addr, sizeof addr, "%d:%d,%d", g, i, j);
            snprintf(lay, sizeof lay, "%d-%d", l0, l1);
            printf("  %-16s %-8s %10llu %7.2f%%\n", addr, lay, (unsigned long long)rows[k].n, 100 * rows[k].max_w);
        }
    }
    if (json) printf("]}");
}

int cmd_find(int argc, char **argv) {
    const char *store = NULL, *piece = NULL, *text = NULL;
    long id = -1, limit = 20;
    int json = 0, grp = -1;
    const cli_opt opts[] = {
        CLI_OPT_STORE(&store, CLI_REQUIRED),
        {"--token", NULL, CLI_STR, "PIECE", &piece, 0, 0, NULL, "a vocabulary piece, e.g. '$' (see above)", 0, NULL, 0},
        {"--text", NULL, CLI_STR, "TEXT", &text, 0, 0, NULL, "text: each of its tokens is looked up", 0, NULL, 0},
        {"--id", NULL, CLI_LONG, "N", &id, 0, 2147483647, NULL, "a token id", 0, NULL, 0},
        {"--group", NULL, CLI_INT, "R", &grp, 0, MP_STORE_MAX_GROUPS, NULL, "only router group R (default: all)", 0,
         NULL, 0},
        CLI_OPT_LIMIT(&limit, "experts listed per token (default 20; 0 = all)"),
        CLI_OPT_JSON(&json),
        CLI_OPT_END,
    };
    const cli_spec spec = {.cmd = "find", .about = ABOUT, .opts = opts};
    CLI_PARSE_OR_RETURN(&spec, argc, argv);
    mp_error err;
    mp_error_clear(&err);
    if (!!piece + !!text + (id >= 0) != 1) return cli_usage_error("find", "give exactly one of --token, --text, --id");
    mp_store *st = NULL;
    mp_tokenizer *tok = NULL;
    void *tokbytes = NULL;
    size_t toklen = 0, n_ids = 0;
    int32_t *ids = NULL;
    mp_token_hit *rows = NULL;
    mp_store_shape sh;
    int rc = 0;
    if ((rc = mp_store_open(store, MP_STORE_READ, &st, &err)) < 0 || (rc = mp_store_shape_read(st, &sh, &err)) < 0)
        goto cleanup;
    if (grp >= sh.n_groups) {
        rc = mp_fail(&err, MP_EINPUT, "--group %d: the store has router groups 0..%d", grp, sh.n_groups - 1);
        goto cleanup;
    }
    rc = mp_store_get_file(st, "tokenizer.model", &tokbytes, &toklen, &err);
    if (rc == 0) rc = mp_fail(&err, MP_EINPUT, "%s: corrupt store: no tokenizer.model in table files", store);
    if (rc < 0 || (rc = mp_tokenizer_load_from_memory(tokbytes, toklen, "tokenizer.model (in store)", &tok, &err)) < 0)
        goto cleanup;
    if (text) {
        if ((rc = mp_tokenizer_encode(tok, text, strlen(text), 0, &ids, &n_ids, &err)) < 0) goto cleanup;
        if (n_ids == 0) {
            rc = mp_fail(&err, MP_EINPUT, "--text: no tokens");
            goto cleanup;
        }
    } else {
        if (piece && (id = piece_id(tok, piece)) < 0) {
            char shown[80];
            char *t = cli_term_dup(piece, 0);
            snprintf(shown, sizeof shown, "%.60s", t ? t : "?");
            free(t);
            rc = mp_fail(&err, MP_EINPUT, "--token '%s': no such piece in the store's vocabulary (try --text)", shown);
            goto cleanup;
        }
        if (id >= mp_tokenizer_vocab_size(tok)) {
            rc = mp_fail(&err, MP_EINPUT, "--id %ld: the vocabulary has ids 0..%d", id, mp_tokenizer_vocab_size(tok) - 1);
            goto cleanup;
        }
        if (!(ids = malloc(sizeof *ids))) {
            rc = mp_fail(&err, MP_ENOMEM, "out of memory");
            goto cleanup;
        }
        ids[0] = (int32_t)id;
        n_ids = 1;
    }
    if (json) {
        printf("{\"store\": ");
        cli_json_str(stdout, store);
        printf(", \"min_w\": %g, \"tokens\": [", MP_TOKIDX_MIN_W);
    }
    for (size_t k = 0; k < n_ids; k++) {
        size_t n = 0;
        if ((rc = mp_store_find_token(st, ids[k], grp, limit, &rows, &n, &err)) < 0) goto cleanup;
        print_token(tok, ids[k], rows, n, &sh, json, k == 0);
        free(rows);
        rows = NULL;
    }
    if (json) printf("\n]}\n");
cleanup:
    free(rows);
    free(ids);
    free(tokbytes);
    mp_tokenizer_free(tok);
    mp_store_close(st);
    return rc < 0 ? cli_exit_error(&err) : 0;
}
