/* core/util/progress.c — progress bar / periodic progress lines (see progress.h). */
#include "core/util/progress.h"

#include <time.h>
#include <unistd.h>

double mp_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void mp_progress_start(mp_progress *p, FILE *out, const char *label, const char *unit, uint64_t total) {
    p->out = out;
    p->label = label;
    p->unit = unit;
    p->total = total;
    p->done = 0;
    p->frac = -1;
    p->t_start = p->t_last = mp_now();
    p->is_tty = out ? isatty(fileno(out)) : 0;
    p->printed = 0;
}

double mp_progress_rate(const mp_progress *p) {
    double el = mp_now() - p->t_start;
    return el > 0 ? (double)p->done / el : 0.0;
}

static void draw(mp_progress *p, int final) {
    double el = mp_now() - p->t_start;
    double rate = el > 0 ? (double)p->done / el : 0;
    char eta[32] = "";
    if (p->total && rate > 0 && !final) {
        double left = (double)(p->total - (p->done < p->total ? p->done : p->total)) / rate;
        snprintf(eta, sizeof eta, " ETA %dm%02ds", (int)(left / 60), (int)left % 60);
    }
    if (p->is_tty) fputc('\r', p->out);
    if (p->total) {
        double frac = (double)p->done / (double)p->total;
        if (frac > 1) frac = 1;
        if (p->is_tty) {
            char bar[31];
            int filled = (int)(frac * 30);
            for (int i = 0; i < 30; i++) bar[i] = i < filled ? '#' : '.';
            bar[30] = '\0';
            fprintf(p->out, "%s [%s] %5.1f%% %llu/%llu %s, %.1f %s/s%s", p->label, bar, frac * 100,
                    (unsigned long long)p->done, (unsigned long long)p->total, p->unit, rate, p->unit, eta);
        } else {
            fprintf(p->out, "%s: %5.1f%% %llu/%llu %s, %.1f %s/s%s", p->label, frac * 100,
                    (unsigned long long)p->done, (unsigned long long)p->total, p->unit, rate, p->unit, eta);
        }
    } else if (p->frac > 0 && !final) {
        double left = el * (1 - p->frac) / p->frac;
        fprintf(p->out, "%s: %5.1f%% %llu %s, %.1f %s/s ETA %dm%02ds", p->label, 100 * p->frac,
                (unsigned long long)p->done, p->unit, rate, p->unit, (int)(left / 60), (int)left % 60);
    } else {
        fprintf(p->out, "%s: %llu %s, %.1f %s/s", p->label, (unsigned long long)p->done, p->unit, rate, p->unit);
    }
    if (final) fprintf(p->out, " in %.1fs", el);
    if (!p->is_tty || final) fputc('\n', p->out);
    fflush(p->out);
    p->printed = 1;
}

void mp_progress_add(mp_progress *p, uint64_t n) {
    p->done += n;
    if (!p->out) return;
    double now = mp_now();
    double every = p->is_tty ? 0.1 : 5.0;
    if (now - p->t_last >= every) {
        p->t_last = now;
        draw(p, 0);
    }
}

void mp_progress_set_fraction(mp_progress *p, double frac) {
    p->frac = frac > 1 ? 1 : frac;
}

void mp_progress_finish(mp_progress *p) {
    if (!p->out) return;
    draw(p, 1);
}
