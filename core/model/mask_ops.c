/* core/model/mask_ops.c — union and complement of expert masks of one shape
 * (`mask merge`, `mask invert`). */
#include "core/model/mask.h"

typedef struct {
    mp_mask *dst;
    mp_error *err;
    int rc;
} add_ctx;

static void add_expert(void *ctx, int r, int i, int j) {
    add_ctx *a = ctx;
    if (a->rc == 0) a->rc = mp_mask_add(a->dst, r, i, j, a->err);
}

int mp_mask_union(mp_mask *const *masks, const char *const *names, int n, mp_mask **out, mp_error *err) {
    *out = NULL;
    if (n < 1) return mp_fail(err, MP_EINPUT, "no mask to merge");
    mp_mask *acc = NULL;
    MP_TRY(mp_mask_create(masks[0]->n_groups, masks[0]->E, &acc, err));
    int rc = 0;
    for (int k = 0; k < n && rc == 0; k++) {
        const mp_mask *m = masks[k];
        if (m->E != acc->E || m->n_groups != acc->n_groups) {
            rc = mp_fail(err, MP_EINPUT, "%s: mask is for E=%d with %d groups, %s is for E=%d with %d", names[k], m->E,
                         m->n_groups, names[0], acc->E, acc->n_groups);
            break;
        }
        add_ctx a = {acc, err, 0};
        if ((rc = mp_mask_foreach(m, add_expert, &a, err)) == 0) rc = a.rc;
    }
    if (rc < 0) {
        mp_mask_free(acc);
        return rc;
    }
    *out = acc;
    return 0;
}

int mp_mask_invert(const mp_mask *m, mp_mask **out, mp_error *err) {
    *out = NULL;
    mp_mask *inv = NULL;
    MP_TRY(mp_mask_create(m->n_groups, m->E, &inv, err));
    int rc = 0;
    for (int r = 0; rc == 0 && r < m->n_groups; r++)
        for (int i = 0; rc == 0 && i < m->E; i++)
            for (int j = 0; rc == 0 && j < m->E; j++)
                if (!mp_mask_contains(m, r, i, j)) rc = mp_mask_add(inv, r, i, j, err);
    if (rc < 0) {
        mp_mask_free(inv);
        return rc;
    }
    *out = inv;
    return 0;
}
