/* core/util/progress.h — the one progress reporter every long job uses: a bar
 * redrawn in place on a TTY, a plain line every few seconds otherwise, nothing
 * with quiet. Shows done/total, rate (units/s) and ETA. The only library code
 * that writes to a stream, and only to the stream the command hands it. */
#ifndef MP_PROGRESS_H
#define MP_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

typedef struct mp_progress {
    FILE *out;            /* usually stderr; NULL = quiet */
    const char *label;    /* e.g. "ppl" */
    const char *unit;     /* e.g. "tok" */
    uint64_t total;       /* 0 = unknown */
    uint64_t done;
    double frac;          /* < 0: unknown; else the share done when total is 0 (e.g. corpus bytes read) */
    double t_start, t_last;
    int is_tty;
    int printed;
} mp_progress;

/* Monotonic seconds. */
double mp_now(void);

void mp_progress_start(mp_progress *p, FILE *out, const char *label, const char *unit, uint64_t total);
/* Add n units; redraws at most every 0.1 s on a TTY, every 5 s otherwise. */
void mp_progress_add(mp_progress *p, uint64_t n);
/* The share of the work done (0..1) when it is known another way than
 * done/total, e.g. bytes of a corpus read: gives percent and ETA. */
void mp_progress_set_fraction(mp_progress *p, double frac);
/* Final line with elapsed time and mean rate. */
void mp_progress_finish(mp_progress *p);
double mp_progress_rate(const mp_progress *p);

#endif
