/* tests/eval_mc/test_fewshot.c — prints the few-shot contexts monet-probe builds
 * (core/eval/eval_mc's sampler + core/eval/eval_tasks' prompts) for the first
 * N documents of a task, one JSON string per line, for check_fewshot.py to
 * compare byte for byte with lm-evaluation-harness v0.4.9.2's get_context
 * rebuilt in Python from the same staged files.
 * usage: test_fewshot DATA_DIR TASK SHOTS N */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/eval/eval_mc.h"

static void json_line(const char *s) {
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c < 0x20) printf("\\u%04x", c);
        else putchar(c);
    }
    puts("\"");
}

int main(int argc, char **argv) {
    if (argc != 5) return fprintf(stderr, "usage: test_fewshot DATA_DIR TASK SHOTS N\n"), 2;
    int t = mp_mc_task_find(argv[2]), shots = atoi(argv[3]);
    size_t n = (size_t)atol(argv[4]);
    if (t < 0 || t == MP_TASK_MMLU) return fprintf(stderr, "task %s: not a non-MMLU task\n", argv[2]), 2;
    mp_error err;
    mp_mc_set docs = {0}, train = {0};
    if (mp_mc_load((mp_mc_task)t, argv[1], NULL, NULL, &docs, &err) ||
        (mp_mc_task_get((mp_mc_task)t)->train && mp_mc_load((mp_mc_task)t, argv[1], NULL, "train", &train, &err)))
        return fprintf(stderr, "load: %s\n", err.msg), 1;
    mp_mc_sampler smp;
    mp_mc_sampler_init(&smp, (mp_mc_task)t, &docs, train.n ? &train : NULL);
    int rc = 0;
    for (size_t i = 0; i < n && i < docs.n && rc == 0; i++) {
        mp_mc_doc sh[MP_MC_MAX_SHOTS];
        int k;
        mp_mc_request rq;
        rc = mp_mc_sampler_pick(&smp, &docs, i, shots, sh, &k, &err);
        if (rc == 0) rc = mp_mc_format((mp_mc_task)t, &docs.docs[i], NULL, sh, (size_t)k, &rq, &err);
        if (rc == 0) {
            json_line(rq.ctx[0]);
            mp_mc_request_free(&rq);
        }
    }
    if (rc) fprintf(stderr, "%s\n", err.msg);
    mp_mc_set_free(&docs);
    mp_mc_set_free(&train);
    return rc ? 1 : 0;
}
