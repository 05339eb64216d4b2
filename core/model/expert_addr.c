/* core/model/expert_addr.c — parse and format expert addresses (see expert_addr.h). */
#include "core/model/expert_addr.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SYNTAX "expected R:I,J or R:#N (N = I*E+J)"

/* A non-negative decimal at *p (no sign, no spaces); advances *p. -1 when none or too big. */
static long number(const char **p) {
    if (!isdigit((unsigned char)**p)) return -1;
    errno = 0;
    char *end;
    long v = strtol(*p, &end, 10);
    if (errno || v > 1L << 40) return -1;
    *p = end;
    return v;
}

int mp_expert_addr_parse(const char *s, int E, int n_groups, mp_expert_addr *out, mp_error *err) {
    const char *p = s, *colon = strchr(s, ':');
    long r = -1;
    if (colon) {
        if (*p == 'g' || *p == 'G') p++;
        r = number(&p);
        if (r < 0 || p != colon) return mp_fail(err, MP_EINPUT, "expert '%s': %s", s, SYNTAX);
        if (r >= n_groups)
            return mp_fail(err, MP_EINPUT, "expert '%s': router group %ld does not exist (groups 0..%d)", s, r,
                           n_groups - 1);
        p = colon + 1;
    }
    int flat = *p == '#';
    if (flat) p++;
    long a = number(&p);
    if (a < 0) return mp_fail(err, MP_EINPUT, "expert '%s': %s", s, SYNTAX);
    long b;
    if (!flat && *p == ',') {
        p++;
        b = number(&p);
        if (b < 0 || *p) return mp_fail(err, MP_EINPUT, "expert '%s': %s", s, SYNTAX);
        if (a >= E || b >= E)
            return mp_fail(err, MP_EINPUT, "expert '%s': I and J must be in 0..%d (E=%d)", s, E - 1, E);
    } else {
        if (*p) return mp_fail(err, MP_EINPUT, "expert '%s': %s", s, SYNTAX);
        if (a >= (long)E * E)
            return mp_fail(err, MP_EINPUT, "expert '%s': flat id must be in 0..%ld (E^2 = %ld)", s, (long)E * E - 1,
                           (long)E * E);
        b = a % E;
        a /= E;
    }
    out->group = (int)r;
    out->i = (int)a;
    out->j = (int)b;
    return 0;
}

int mp_expert_addr_parse_one(const char *s, int E, int n_groups, mp_expert_addr *out, mp_error *err) {
    MP_TRY(mp_expert_addr_parse(s, E, n_groups, out, err));
    if (out->group < 0 && n_groups > 1)
        return mp_fail(err, MP_EINPUT, "expert '%s': say which router group (R:I,J); there are %d groups (0..%d)", s,
                       n_groups, n_groups - 1);
    if (out->group < 0) out->group = 0;
    return 0;
}

const char *mp_expert_addr_format(char *buf, size_t cap, int group, int i, int j) {
    if (group >= 0) snprintf(buf, cap, "%d:%d,%d", group, i, j);
    else snprintf(buf, cap, "%d,%d", i, j);
    return buf;
}
