/* recipes/report.h — the outputs of a finished sweep, in OUT/: results.json (every
 * row: eval, mask target and threshold, masking ratio, row kind and name, base,
 * masked, delta, is_target, plus per-mask Δ target / Δ others summaries),
 * results.csv (the same rows), report.html (self-contained: inline CSS and SVG,
 * no script, no network): Δ tables like the paper's Tables 3/11 (rows = purged
 * target, columns = evaluated label, diagonal = Δ target), threshold / masking
 * ratio / metric tables and SVG curves like Tables 4/5, and selected masked
 * experts' top contexts with the activating token highlighted (read with
 * `monet-probe top-contexts --json`). Everything from corpora is HTML-escaped.
 */
#ifndef MP_RECIPES_REPORT_H
#define MP_RECIPES_REPORT_H

#include "core/util/error.h"
#include "recipes/plan.h"

/* Write the three files. exe is the monet-probe binary (for top-contexts).
 * failure is NULL for a finished sweep; otherwise the sweep failed with that
 * message: the files hold what finished (steps not done are skipped, their
 * cells empty / null), results.json says "complete": false with "failure" and
 * each step's status (ran, cached, failed, not run), report.html opens with
 * the failure and the steps not done.
 * @return 0, MP_EIO, MP_EINPUT (a done step's output unreadable) or MP_ENOMEM. */
int mp_report_write(const mp_plan *p, const char *exe, const char *failure, mp_error *err);

#endif
