/* tests/cli/test_engine_batch.c — the batched engine (core/model/backend.h) is
 * bit-identical to running sequences one by one on mp_state:
 *  - mp_engine_prefill of 4 sequences of different lengths, on slots in
 *    another order, continuing after a first call: per-token logits and
 *    routing equal mp_forward's bit for bit; target log-probs equal
 *    mp_logprob of those logits; argmax flags match; last_only rows match;
 *  - bad batches (duplicate slot, empty sequence, more sequences than slots)
 *    fail with MP_EINPUT;
 *  - decoding steps (one token per sequence, slots permuted, with targets and
 *    routing): logits, log-probs and routing equal mp_forward of each token
 *    alone;
 *  - mp_generate_batch (B sequences decoded together, each with its own
 *    sampler and stop) gives mp_generate's ids, text and stop reason on 1 and
 *    3 slots; mp_generate_batch_each (a budget, stop strings and EOS rule per
 *    sequence) gives mp_generate's with the same options on 2 and 4 slots.
 * usage: test_engine_batch MODEL_DIR */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/model/backend.h"
#include "core/model/forward.h"
#include "core/model/generate.h"
#include "core/model/sampling.h"
#include "core/text/tokenizer.h"

#include "tests/common/test_check.h"

enum { NS = 4, PRE = 3 };
static const size_t LEN[NS] = {7, 1, 19, 4};

static int same_routing(const mp_route_group *x, const mp_route_group *y) {
    if (x->n_tokens != y->n_tokens || x->n_entries != y->n_entries) return 0;
    return !memcmp(x->off, y->off, ((size_t)x->n_tokens * 2 * (size_t)x->Hm + 1) * sizeof *x->off) &&
           !memcmp(x->idx, y->idx, x->n_entries * sizeof *x->idx) && !memcmp(x->p, y->p, x->n_entries * sizeof *x->p);
}

int main(int argc, char **argv) {
    if (argc != 2) return fprintf(stderr, "usage: test_engine_batch MODEL_DIR\n"), 2;
    mp_error err;
    mp_model *m = NULL;
    mp_tokenizer *tok = NULL;
    char tp[4096];
    snprintf(tp, sizeof tp, "%s/tokenizer.model", argv[1]);
    TRY(mp_model_load(argv[1], &m, &err));
    TRY(mp_tokenizer_load(tp, &tok, &err));
    const int V = m->cfg.vocab_size;
    const size_t Vz = (size_t)V;

    /* ---- prefill: a first call of PRE tokens per sequence, then the rest, slots permuted */
    int32_t ids[NS][32];
    size_t tot = 0;
    for (int s = 0; s < NS; s++)
        for (size_t t = 0; t < PRE + LEN[s]; t++) ids[s][t] = (int32_t)((s * 101 + (int)t * 37 + 5) % V);
    for (int s = 0; s < NS; s++) tot += LEN[s];
    float *ref = malloc(tot * Vz * sizeof *ref), *got = malloc(tot * Vz * sizeof *got);
    float *last = malloc(NS * Vz * sizeof *last);
    int32_t *packed = malloc(tot * sizeof *packed), *tgt = malloc(tot * sizeof *tgt);
    double *lp = malloc(tot * sizeof *lp);
    uint8_t *am = malloc(tot);
    mp_routing rref[NS], rgot[NS];
    if (!ref || !got || !last || !packed || !tgt || !lp || !am) return fprintf(stderr, "out of memory\n"), 1;
    size_t off[NS + 1] = {0}, o0[NS + 1] = {0};
    const int slot[NS] = {2, 0, 3, 1};
    int32_t pre[NS * PRE];
    for (int s = 0; s < NS; s++) {
        TRY(mp_routing_init(&rref[s], &m->cfg, &err));
        TRY(mp_routing_init(&rgot[s], &m->cfg, &err));
        memcpy(pre + s * PRE, ids[s], PRE * sizeof *pre);
        o0[s + 1] = o0[s] + PRE;
        memcpy(packed + off[s], ids[s] + PRE, LEN[s] * sizeof *packed);
        for (size_t t = 0; t < LEN[s]; t++) tgt[off[s] + t] = t % 3 == 2 ? -1 : ids[s][(PRE + t + 1) % (PRE + LEN[s])];
        off[s + 1] = off[s] + LEN[s];
    }
    mp_state *st = NULL;
    TRY(mp_state_create(m, 0, 0, &st, &err));
    for (int s = 0; s < NS; s++) { /* one by one */
        mp_state_reset(st);
        TRY(mp_forward(st, ids[s], PRE, NULL, 0, NULL, &err));
        TRY(mp_forward(st, ids[s] + PRE, LEN[s], ref + off[s] * Vz, 0, &rref[s], &err));
    }
    mp_engine *e = NULL;
    TRY(mp_engine_create_slots(m, MP_DEVICE_CPU, NS, 64, 0, &e, &err));
    CHECK(mp_engine_slots(e) == NS, "engine has %d slots", mp_engine_slots(e));
    mp_engine_batch b0 = {.n_seqs = NS, .ids = pre, .off = o0, .slot = slot};
    TRY(mp_engine_prefill(e, &b0, &err));
    for (int s = 0; s < NS; s++) CHECK(mp_engine_slot_pos(e, slot[s]) == PRE, "slot %d position", slot[s]);
    mp_engine_batch b = {.n_seqs = NS, .ids = packed, .off = off, .slot = slot, .logits = got, .targets = tgt,
                         .logprobs = lp, .is_argmax = am, .routing = rgot};
    TRY(mp_engine_prefill(e, &b, &err));
    CHECK(!memcmp(ref, got, tot * Vz * sizeof *ref), "batched per-token logits differ from one by one");
    for (int s = 0; s < NS; s++) {
        CHECK(mp_engine_slot_pos(e, slot[s]) == (int)(PRE + LEN[s]), "slot %d position after", slot[s]);
        for (int g = 0; g < m->cfg.n_router_groups; g++)
            CHECK(same_routing(&rref[s].groups[g], &rgot[s].groups[g]), "sequence %d group %d: routing differs", s, g);
    }
    for (size_t t = 0; t < tot; t++) {
        const float *row = ref + t * Vz;
        int best = 0;
        for (int v = 1; v < V; v++)
            if (row[v] > row[best]) best = v;
        if (tgt[t] < 0) {
            CHECK(isnan(lp[t]) && am[t] == 0, "token %zu: no target but a score", t);
            continue;
        }
        double want = mp_logprob(row, V, tgt[t]);
        CHECK(!memcmp(&want, &lp[t], sizeof want), "token %zu: log-prob %.17g vs %.17g", t, lp[t], want);
        CHECK(am[t] == (best == tgt[t]), "token %zu: argmax flag", t);
    }
    /* targets without logits, and last-token logits, after rewinding every slot to PRE */
    for (int s = 0; s < NS; s++) TRY(mp_engine_slot_rewind(e, slot[s], PRE, &err));
    double *lp2 = malloc(tot * sizeof *lp2);
    b = (mp_engine_batch){.n_seqs = NS, .ids = packed, .off = off, .slot = slot, .logits = last, .last_only = 1,
                          .targets = tgt, .logprobs = lp2};
    TRY(mp_engine_prefill(e, &b, &err));
    CHECK(!memcmp(lp, lp2, tot * sizeof *lp), "log-probs without per-token logits differ");
    for (int s = 0; s < NS; s++)
        CHECK(!memcmp(last + (size_t)s * Vz, ref + (off[s + 1] - 1) * Vz, Vz * sizeof *last),
              "sequence %d: last-token logits differ", s);
    /* bad batches */
    const int dup[2] = {1, 1};
    size_t off2[3] = {0, 2, 4}, off_empty[3] = {0, 0, 4};
    b = (mp_engine_batch){.n_seqs = 2, .ids = packed, .off = off2, .slot = dup};
    CHECK(mp_engine_prefill(e, &b, &err) == MP_EINPUT, "duplicate slot accepted");
    b = (mp_engine_batch){.n_seqs = 2, .ids = packed, .off = off_empty};
    CHECK(mp_engine_prefill(e, &b, &err) == MP_EINPUT, "empty sequence accepted");
    size_t off5[6] = {0, 1, 2, 3, 4, 5};
    b = (mp_engine_batch){.n_seqs = 5, .ids = packed, .off = off5};
    CHECK(mp_engine_prefill(e, &b, &err) == MP_EINPUT, "5 sequences on 4 slots accepted");
    free(lp2);

    /* ---- decoding steps: batches of one token per sequence (the CPU engine runs them as one
     * mp_forward_steps) vs mp_forward of that token alone: logits, routing, log-probs */
    enum { STEPS = 3 };
    float *sref = malloc(STEPS * NS * Vz * sizeof *sref), *sgot = malloc(NS * Vz * sizeof *sgot);
    if (!sref || !sgot) return fprintf(stderr, "out of memory\n"), 1;
    mp_routing sr_ref[NS], sr_got[NS];
    for (int s = 0; s < NS; s++) {
        TRY(mp_routing_init(&sr_ref[s], &m->cfg, &err));
        TRY(mp_routing_init(&sr_got[s], &m->cfg, &err));
        mp_state_reset(st);
        TRY(mp_forward(st, ids[s], PRE, NULL, 0, NULL, &err));
        for (int k = 0; k < STEPS; k++) {
            int32_t one_id = (int32_t)((s * 53 + k * 29 + 11) % V);
            TRY(mp_forward(st, &one_id, 1, sref + ((size_t)k * NS + s) * Vz, 0, &sr_ref[s], &err));
        }
        TRY(mp_engine_slot_rewind(e, slot[s], PRE, &err));
    }
    size_t off1[NS + 1] = {0, 1, 2, 3, 4};
    for (int k = 0; k < STEPS; k++) {
        int32_t sid[NS], stg[NS];
        double slp[NS];
        uint8_t sam[NS];
        for (int s = 0; s < NS; s++) {
            sid[s] = (int32_t)((s * 53 + k * 29 + 11) % V);
            stg[s] = s == k ? -1 : (int32_t)((s * 7 + k) % V);
        }
        b = (mp_engine_batch){.n_seqs = NS, .ids = sid, .off = off1, .slot = slot, .logits = sgot, .targets = stg,
                              .logprobs = slp, .is_argmax = sam, .routing = sr_got};
        TRY(mp_engine_prefill(e, &b, &err));
        for (int s = 0; s < NS; s++) {
            const float *want = sref + ((size_t)k * NS + s) * Vz;
            CHECK(!memcmp(want, sgot + (size_t)s * Vz, Vz * sizeof *want), "step %d, sequence %d: logits differ", k, s);
            double lw = stg[s] < 0 ? NAN : mp_logprob(want, V, stg[s]);
            CHECK(stg[s] < 0 ? isnan(slp[s]) : !memcmp(&lw, &slp[s], sizeof lw), "step %d, sequence %d: log-prob", k,
                  s);
        }
    }
    for (int s = 0; s < NS; s++) {
        CHECK(mp_engine_slot_pos(e, slot[s]) == PRE + STEPS, "slot %d position after the steps", slot[s]);
        for (int g = 0; g < m->cfg.n_router_groups; g++)
            CHECK(same_routing(&sr_ref[s].groups[g], &sr_got[s].groups[g]), "steps, sequence %d group %d: routing",
                  s, g);
        mp_routing_free(&sr_ref[s]);
        mp_routing_free(&sr_got[s]);
    }
    free(sref);
    free(sgot);

    /* ---- generation: mp_generate one by one vs mp_generate_batch on 1 and 3 slots */
    /* the first prompt stops early (a stop string) while the others run on: the
     * decode calls then carry fewer sequences than slots, in another order */
    static const char *texts[] = {"Hello, world. The", "The cat", "def f(x):\n    return",
                                  "Once upon a time there was a", "A"};
    static const double temp[] = {0.9, 0.9, 0.0, 0.9, 0.0};
    static const uint64_t seed[] = {11, 7, 8, 9, 10};
    enum { NG = 5 };
    int32_t *pids[NG];
    size_t np[NG];
    const char *stops[] = {"\n\n", "ing", "st"};
    mp_gen_opts go = {.max_new_tokens = 12, .stop = stops, .n_stop = 3};
    mp_gen_result one[NG], many[NG];
    for (int k = 0; k < NG; k++) {
        TRY(mp_tokenizer_encode(tok, texts[k], strlen(texts[k]), 1, &pids[k], &np[k], &err));
        mp_sampler smp;
        TRY(mp_sampler_init(&smp, V, temp[k], 0.95, seed[k], &err));
        TRY(mp_generate(st, tok, pids[k], np[k], &go, &smp, &one[k], &err));
        mp_sampler_free(&smp);
    }
    for (int slots = 1; slots <= 3; slots += 2) {
        mp_engine *eg = NULL;
        mp_sampler smp[NG];
        TRY(mp_engine_create_slots(m, MP_DEVICE_CPU, slots, 0, 0, &eg, &err));
        for (int k = 0; k < NG; k++) TRY(mp_sampler_init(&smp[k], V, temp[k], 0.95, seed[k], &err));
        TRY(mp_generate_batch(eg, tok, (const int32_t *const *)pids, np, NG, &go, smp, many, &err));
        for (int k = 0; k < NG; k++) {
            CHECK(many[k].n_ids == one[k].n_ids && !memcmp(many[k].ids, one[k].ids, one[k].n_ids * sizeof *one[k].ids),
                  "%d slots, prompt %d: ids differ (%zu vs %zu tokens)", slots, k, many[k].n_ids, one[k].n_ids);
            CHECK(many[k].len == one[k].len && !strcmp(many[k].text, one[k].text) &&
                      many[k].stop_reason == one[k].stop_reason,
                  "%d slots, prompt %d: text / stop reason differ ('%s' vs '%s')", slots, k, many[k].text, one[k].text);
            mp_gen_result_free(&many[k]);
            mp_sampler_free(&smp[k]);
        }
        mp_engine_free(eg);
    }
    /* ---- mp_generate_batch_each: options of its own per sequence (budget, stop
     * strings, EOS) vs mp_generate with the same options, on 2 and 4 slots */
    const char *stops_b[] = {"e", "\n"};
    const mp_gen_opts each[NG] = {{.max_new_tokens = 3},
                                  {.max_new_tokens = 9, .stop = stops_b, .n_stop = 1},
                                  {.max_new_tokens = 14, .stop = stops_b + 1, .n_stop = 1, .ignore_eos = 1},
                                  {.max_new_tokens = 0},
                                  {.max_new_tokens = 6, .stop = stops, .n_stop = 3}};
    mp_gen_result ref_each[NG];
    for (int k = 0; k < NG; k++) {
        mp_sampler smp;
        TRY(mp_sampler_init(&smp, V, temp[k], 0.95, seed[k] + 100, &err));
        TRY(mp_generate(st, tok, pids[k], np[k], &each[k], &smp, &ref_each[k], &err));
        mp_sampler_free(&smp);
    }
    for (int slots = 2; slots <= 4; slots += 2) {
        mp_engine *eg = NULL;
        mp_sampler smp[NG];
        TRY(mp_engine_create_slots(m, MP_DEVICE_CPU, slots, 0, 0, &eg, &err));
        for (int k = 0; k < NG; k++) TRY(mp_sampler_init(&smp[k], V, temp[k], 0.95, seed[k] + 100, &err));
        TRY(mp_generate_batch_each(eg, tok, (const int32_t *const *)pids, np, NG, each, smp, many, &err));
        for (int k = 0; k < NG; k++) {
            CHECK(many[k].n_ids == ref_each[k].n_ids &&
                      !memcmp(many[k].ids, ref_each[k].ids, ref_each[k].n_ids * sizeof *ref_each[k].ids) &&
                      !strcmp(many[k].text, ref_each[k].text) && many[k].stop_reason == ref_each[k].stop_reason,
                  "each, %d slots, prompt %d: differs from mp_generate ('%s' vs '%s')", slots, k, many[k].text,
                  ref_each[k].text);
            mp_gen_result_free(&many[k]);
            mp_sampler_free(&smp[k]);
        }
        mp_engine_free(eg);
    }
    /* the options took effect: budgets 3 and 0 are kept, and the sequences end at different lengths */
    CHECK(ref_each[0].n_ids <= 3 && ref_each[3].n_ids == 0 && ref_each[2].n_ids != ref_each[0].n_ids,
          "per-sequence budgets not applied (%zu, %zu, %zu tokens)", ref_each[0].n_ids, ref_each[3].n_ids,
          ref_each[2].n_ids);
    for (int k = 0; k < NG; k++) {
        printf("each, prompt %d: %zu tokens, stop %d\n", k, ref_each[k].n_ids, ref_each[k].stop_reason);
        mp_gen_result_free(&ref_each[k]);
    }

    int stopped = 0, early0 = one[0].n_ids < 12;
    for (int k = 0; k < NG; k++) {
        printf("prompt %d: %zu tokens, stop %d\n", k, one[k].n_ids, one[k].stop_reason);
        stopped += one[k].stop_reason != MP_GEN_STOP_LENGTH || one[k].n_ids < 12;
        mp_gen_result_free(&one[k]);
        free(pids[k]);
    }
    printf("generation: %d of %d sequences stopped before the budget\n", stopped, NG);
    CHECK(stopped >= 1 && stopped < NG && early0, "prompt 0 should stop early and some others not (%d of %d stopped)",
          stopped, NG);

    for (int s = 0; s < NS; s++) {
        mp_routing_free(&rref[s]);
        mp_routing_free(&rgot[s]);
    }
    mp_engine_free(e);
    mp_state_free(st);
    free(ref);
    free(got);
    free(last);
    free(packed);
    free(tgt);
    free(lp);
    free(am);
    mp_tokenizer_free(tok);
    mp_model_free(m);
    printf("test_engine_batch: %d failures\n", failures);
    return failures ? 1 : 0;
}
