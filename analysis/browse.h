/* analysis/browse.h — the expert browser: a self-contained static site (HTML
 * with inline CSS/JS, no network, no external fonts) generated from a collect
 * store, for reading experts the way researchers browse SAE features
 * (docs/browse.md).
 *
 *   DIR/index.html              router groups (layers covered) and the listed
 *                               experts: searchable, sortable, paged table
 *   DIR/data/experts-NNN.js     the index rows, in chunks loaded with
 *                               <script src> (file:// pages cannot fetch())
 *   DIR/experts/g<R>/<I>_<J>.html  one page per listed expert: top contexts
 *                               (activating token highlighted, activation as
 *                               the paper shows it, "81.37%"), per-label
 *                               activation profile (inline SVG), experts
 *                               sharing top-K hits (co-activation proxy)
 *
 * Only experts that were ever active are listed, at most max_experts of them
 * by the chosen ranking, so the site size is bounded whatever the store's
 * size. Generation streams from SQLite: memory is O(max_experts) plus the
 * specialist / correlation annotations (O(specialists + experts with a
 * defined r) when computed from the store; O(size of the JSON) when read).
 *
 * Everything that comes from the corpus or the store (contexts, labels,
 * sources) is HTML- or JS-escaped; invalid UTF-8 becomes U+FFFD.
 *
 * The library never prints: progress goes through the caller's mp_progress.
 */
#ifndef MP_BROWSE_H
#define MP_BROWSE_H

#include <stddef.h>
#include <stdint.h>

#include "core/util/error.h"
#include "core/util/progress.h"
#include "core/store/store.h"

typedef enum {
    MP_BROWSE_RANK_COUNT = 0, /* active tokens, most first (default) */
    MP_BROWSE_RANK_MAX,       /* max routing score */
    MP_BROWSE_RANK_MEAN,      /* mean routing score over active tokens */
    MP_BROWSE_RANK_SKEW,      /* specialists only, most skewed first */
    MP_BROWSE_RANK_CORR       /* experts with a correlation, highest r first */
} mp_browse_rank;

typedef struct mp_browse_opts {
    const char *out_dir;     /* created when missing; must be empty or a previous site */
    const char *spec_json;   /* `specialize --json` output, or NULL */
    const char *corr_json;   /* `correlate --json` output, or NULL */
    int analyze;             /* when a JSON is not given: compute it from the store (1) or leave it out (0) */
    const char *label_field; /* field for computed specialization; NULL: first label field */
    const char *score_field; /* field for computed correlation; NULL: first score field */
    size_t max_experts;      /* experts listed and paged; 0 = every active expert */
    mp_browse_rank rank;
    int contexts;            /* contexts per page (0 = all stored) */
    int context_tokens;      /* tokens shown each side of the activating token */
    int coact;               /* co-activating experts listed per page */
    mp_progress *progress;   /* NULL = silent; counts pages */
    /* With the model the store was collected with (both set, engine max_ctx >= the
     * store's window): the first model_experts pages (0 = all) shade every shown
     * token by the expert's weight on it (one forward per context) and carry the
     * expert's logit effects (analysis/effects.h: the expert masked vs not). */
    const struct mp_model *model;
    struct mp_engine *engine;
    size_t model_experts;
} mp_browse_opts;

/* Defaults: rank COUNT, 1000 experts, analyze on, 32 contexts, 12 tokens, 12 co-activating,
 * no model (model_experts 100 when one is given). */
void mp_browse_opts_default(mp_browse_opts *o);

typedef struct mp_browse_summary {
    size_t experts_active;   /* experts with statistics in the store, all groups */
    size_t experts_listed;   /* rows in the index = expert pages written */
    int64_t bytes;           /* all files written */
    int64_t page_bytes;      /* expert pages only */
    int n_files;
    double seconds;
    char spec_source[512];   /* "file X", "computed (field lang)", "none" */
    char corr_source[512];
} mp_browse_summary;

/* Write the site for store st into o->out_dir.
 * @return 0; MP_EINPUT (out_dir not empty and not a previous site, bad JSON,
 *         JSON from another model shape, unknown field), MP_EIO (cannot write;
 *         store read error) or MP_ENOMEM. A failed run may leave a partial site. */
int mp_browse(mp_store *st, const mp_browse_opts *o, mp_browse_summary *sum, mp_error *err);

/* Assets (analysis/browse_assets.c): CSS shared by all pages, the index's
 * script, the expert page's script. Plain string literals. */
extern const char mp_browse_css[];
extern const char mp_browse_index_js[];
extern const char mp_browse_expert_js[];

#endif
