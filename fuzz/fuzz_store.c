/* fuzz/fuzz_store.c — libFuzzer target: the store reader on an arbitrary file
 * (written to a temporary path: SQLite opens files). Open + validate, the
 * bounded shape, the accumulators' reload (resume / merge) and the top-K and
 * window readers, and the evidence readers (histogram, quantile samples,
 * label top-K, token index); every failure must be a clean error. Mutations of a real
 * store are the useful inputs: seed fuzz/corpus/store/ with small stores. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/store/evidence_read.h"
#include "core/store/store.h"
#include "core/store/topk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char path[64];
    if (!path[0]) snprintf(path, sizeof path, "/tmp/fuzz_store_%ld.db", (long)getpid());
    unlink(path);
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    mp_store *st = NULL;
    mp_error err;
    if (mp_store_open(path, MP_STORE_READ, &st, &err) == 0) {
        mp_store_shape sh;
        if (mp_store_shape_read(st, &sh, &err) == 0 &&
            (uint64_t)sh.n_groups * (uint64_t)sh.E * (uint64_t)sh.E * (uint64_t)sh.top_k <= (1u << 20)) {
            const char *names[1] = {"lang"};
            int is_score[1] = {0};
            mp_acc *a = NULL;
            if (mp_acc_create(sh.n_groups, sh.E, sh.top_k, 1, names, is_score, &a, &err) == 0) {
                mp_store_load_acc(st, a, &err);
                mp_acc_free(a);
            }
            for (int g = 0; g < sh.n_groups && g < 2; g++) {
                mp_store_hit *hits = NULL;
                size_t n = 0;
                if (mp_store_topk(st, g, 0, &hits, &n, &err) == 0)
                    for (size_t k = 0; k < n && k < 8; k++) {
                        int32_t *ids = NULL;
                        size_t nid = 0;
                        uint32_t start = hits[k].pos - hits[k].pos % (uint32_t)sh.window;
                        mp_store_get_window(st, hits[k].doc, start, &ids, &nid, &err);
                        free(ids);
                    }
                free(hits);
                uint64_t h[MP_HIST_BINS];
                mp_store_hist(st, g, 0, h, &err);
                if (mp_store_qsamples(st, g, 0, &hits, &n, &err) == 0) free(hits);
                if (mp_store_label_topk(st, g, 0, "lang", "python", &hits, &n, &err) == 0) free(hits);
                mp_token_hit *rows = NULL;
                if (mp_store_find_token(st, 5, -1, 8, &rows, &n, &err) == 0) free(rows);
            }
        }
        mp_store_close(st);
    }
    unlink(path);
    char aux[80];
    snprintf(aux, sizeof aux, "%s-wal", path);
    unlink(aux);
    snprintf(aux, sizeof aux, "%s-shm", path);
    unlink(aux);
    return 0;
}
