/* analysis/context.c — load, score and render one store context (context.h). */
#include "analysis/context.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/text/utf8.h"

/* Byte-fallback tokens (<0xF0> ...) decode to single bytes of a multi-byte
 * character, so a piece on its own can be invalid UTF-8, which JSON output,
 * the browse site and terminals cannot carry. Each character goes to the token
 * that completes it (the tokens holding its first bytes show ""); bytes that
 * form no character within the shown range become U+FFFD. The pieces still
 * concatenate to the shown text wherever it is valid. */
static int pieces_to_utf8(mp_context *c) {
    char pending[4];
    size_t np = 0, count = c->to - c->from;
    for (size_t k = 0; k < count; k++) {
        size_t len = strlen(c->pieces[k]), n = np + len;
        char *in = malloc(n + 1), *out = malloc(3 * n + 4);
        if (!in || !out) {
            free(in);
            free(out);
            return -1;
        }
        memcpy(in, pending, np);
        memcpy(in + np, c->pieces[k], len);
        size_t i = 0, w = 0;
        np = 0;
        while (i < n) {
            size_t v = mp_utf8_check(in + i, n - i);
            memcpy(out + w, in + i, v);
            w += v;
            i += v;
            if (i == n) break;
            if (n - i <= 3 && mp_utf8_is_prefix(in + i, n - i)) { /* completed by a later token */
                np = n - i;
                memcpy(pending, in + i, np);
                break;
            }
            memcpy(out + w, "\xEF\xBF\xBD", 3);
            w += 3;
            i++;
        }
        if (k + 1 == count && np) { /* the shown range ends inside a character */
            memcpy(out + w, "\xEF\xBF\xBD", 3);
            w += 3;
        }
        out[w] = '\0';
        free(in);
        free(c->pieces[k]);
        c->pieces[k] = out;
    }
    return 0;
}

int mp_context_load(mp_store *st, const mp_tokenizer *tok, int W, uint64_t doc, uint32_t pos, int show,
                    mp_context *c, mp_error *err) {
    memset(c, 0, sizeof *c);
    if (W < 1) return mp_fail(err, MP_EINPUT, "%s: corrupt store: window %d", mp_store_path(st), W);
    uint32_t start = pos - pos % (uint32_t)W;
    int r = mp_store_get_window(st, doc, start, &c->ids, &c->n, err);
    if (r < 0) return r;
    if (r == 0 || pos - start >= c->n) {
        mp_context_free(c);
        return mp_fail(err, MP_EINPUT, "%s: corrupt store: no window for document %llu position %u",
                       mp_store_path(st), (unsigned long long)doc, pos);
    }
    c->t = pos - start;
    c->from = c->t > (size_t)show ? c->t - (size_t)show : 0;
    c->to = c->t + 1 + (size_t)show < c->n ? c->t + 1 + (size_t)show : c->n;
    c->pieces = calloc(c->to - c->from, sizeof *c->pieces);
    if (!c->pieces) {
        mp_context_free(c);
        return mp_fail(err, MP_ENOMEM, "out of memory");
    }
    for (size_t k = c->from; k < c->to; k++) {
        char piece[256];
        int n = mp_tokenizer_decode_piece(tok, k > 0 ? c->ids[k - 1] : -1, c->ids[k], piece, sizeof piece);
        if (n < 0) n = snprintf(piece, sizeof piece, "<%d>", c->ids[k]);
        char *p = malloc((size_t)n + 1);
        if (!p) {
            mp_context_free(c);
            return mp_fail(err, MP_ENOMEM, "out of memory");
        }
        memcpy(p, piece, (size_t)n);
        p[n] = '\0';
        c->pieces[k - c->from] = p;
    }
    if (pieces_to_utf8(c) < 0) {
        mp_context_free(c);
        return mp_fail(err, MP_ENOMEM, "out of memory");
    }
    return 0;
}

int mp_context_score(mp_engine *e, mp_routing *routing, mp_context *c, int g, int i, int j, mp_error *err) {
    if (!c->scores && !(c->scores = malloc((c->to - c->from) * sizeof *c->scores)))
        return mp_fail(err, MP_ENOMEM, "out of memory");
    mp_engine_reset(e);
    mp_routing_clear(routing);
    MP_TRY(mp_engine_forward(e, c->ids, c->n, NULL, 0, routing, err));
    if (g < 0 || g >= routing->n_groups)
        return mp_fail(err, MP_EINPUT, "router group %d: the model has %d", g, routing->n_groups);
    for (size_t k = c->from; k < c->to; k++)
        c->scores[k - c->from] = mp_route_expert_weight(&routing->groups[g], (int)k, i, j);
    return 0;
}

char *mp_context_join(const mp_context *c, size_t a, size_t b, int oneline) {
    size_t len = 0;
    for (size_t k = a; k < b; k++) len += 2 * strlen(c->pieces[k]);
    char *s = malloc(len + 1), *w = s;
    if (!s) return NULL;
    for (size_t k = a; k < b; k++)
        for (const char *p = c->pieces[k]; *p; p++) {
            if (oneline && (*p == '\n' || *p == '\t' || *p == '\r')) {
                *w++ = '\\';
                *w++ = *p == '\n' ? 'n' : *p == '\t' ? 't' : 'r';
            } else {
                *w++ = *p;
            }
        }
    *w = '\0';
    return s;
}

void mp_context_free(mp_context *c) {
    if (c->pieces)
        for (size_t k = 0; k < c->to - c->from; k++) free(c->pieces[k]);
    free(c->pieces);
    free(c->ids);
    free(c->scores);
    memset(c, 0, sizeof *c);
}
