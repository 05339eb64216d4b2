/* core/model/expert_addr.h — the one expert address syntax of monet-probe.
 *
 * An expert is the pair (I,J) of a router group R. It is written `R:I,J`, or
 * `R:#N` with the flat id N = I*E + J. Every command parses addresses here and
 * prints them with mp_expert_addr_format, so what one command prints pastes
 * into another's --expert. Also accepted on input: `gR:` for `R:` (browse's
 * search), a bare flat id `R:N`, and no group at all (`I,J`, `#N`), which
 * leaves group = -1 for the caller to resolve or refuse.
 */
#ifndef MP_EXPERT_ADDR_H
#define MP_EXPERT_ADDR_H

#include <stddef.h>

#include "core/util/error.h"

typedef struct mp_expert_addr {
    int group; /* router group, -1 when the address names none */
    int i, j;  /* factor indices, 0..E-1 */
} mp_expert_addr;

/* Parse s for a model with E experts per factor and n_groups router groups.
 * @return 0, or MP_EINPUT with a message naming s and the valid ranges. */
int mp_expert_addr_parse(const char *s, int E, int n_groups, mp_expert_addr *out, mp_error *err);

/* The same for a command that acts on one expert (steer, trace, effects): an
 * address without R: is refused when there is more than one router group
 * (MP_EINPUT "... say which router group ...") and means group 0 otherwise. */
int mp_expert_addr_parse_one(const char *s, int E, int n_groups, mp_expert_addr *out, mp_error *err);

/* "R:I,J" (or "I,J" when group < 0) into buf; returns buf. */
const char *mp_expert_addr_format(char *buf, size_t cap, int group, int i, int j);

#endif
