/* recipes/slurm.h — the Slurm executor of a sweep's plan (docs/scale.md):
 * every step without a DONE marker becomes an `sbatch --parsable` job with
 * `--dependency=afterok:` on the jobs of the steps it needs; a sharded collect
 * becomes a job array (one task per missing shard, `collect --shard i/n`) and a
 * merge job; a last job runs `sweep ... --status`, which writes the report once
 * every output exists. The step cache stays the source of truth: a re-submission
 * submits only the steps (and shards) whose outputs are missing and whose job
 * is not still queued or running.
 *
 * Files in OUT/slurm/: jobs.tsv (one line per submitted job: id, role, key,
 * label), scripts/ (the job scripts), logs/ (the jobs' own output; a step's
 * command still writes stdout.txt / stderr.txt in its cache directory).
 *
 * Ownership: nothing is kept; the options are borrowed for the call.
 */
#ifndef MP_RECIPES_SLURM_H
#define MP_RECIPES_SLURM_H

#include <stdio.h>

#include "core/util/error.h"
#include "recipes/plan.h"

typedef struct mp_slurm_opts {
    const char *partition, *gres, *time, *account; /* NULL: not passed */
    const char *const *extra;   /* --sbatch-arg values, passed as given [n_extra] */
    size_t n_extra;
    char *const *report_argv;   /* the last job's command (`EXE sweep RECIPE ... --status --quiet`), NULL-terminated */
} mp_slurm_opts;

/* Submit the missing steps (in-process steps run here first). dry: write the
 * sbatch lines as a shell script to out (J1=$(sbatch --parsable ...), job ids
 * as $Jn) and submit nothing, write nothing. Otherwise one line per submitted
 * job on out. *n_jobs gets the number of jobs submitted (dry: that would be).
 * sbatch, squeue come from PATH. @return 0, MP_EINPUT (bad output directory,
 * another sweep holds it), MP_ERESOURCE (sbatch missing or refused a job, exit 3:
 * its message; the jobs submitted before it are in jobs.tsv), MP_EIO. */
int mp_slurm_submit(mp_plan *p, const char *exe, const mp_slurm_opts *o, int dry, FILE *out, int *n_jobs,
                    mp_error *err);

/* Each step's state from the cache (done), the recorded jobs and squeue / sacct
 * when they answer: done, queued, running, failed (with the job's log and its
 * last line), not run (its job ended without starting: a step it needs failed,
 * or cancelled), not submitted. json: one JSON object instead of the table.
 * *all_done = every step has its DONE marker; *n_failed = steps failed.
 * @return 0 or MP_ENOMEM. */
int mp_slurm_status(const mp_plan *p, int json, FILE *out, int *all_done, int *n_failed, mp_error *err);

#endif
