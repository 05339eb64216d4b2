/* cuda/logsoftmax.cuh — log-softmax of logits rows gathered at target ids
 * (perplexity, multiple-choice scoring); mirror of mp_logprob
 * (core/model/sampling.c): max and sum of exp in double. */
#ifndef MP_CUDA_LOGSOFTMAX_CUH
#define MP_CUDA_LOGSOFTMAX_CUH

#include "common.cuh"

/* out[t] = logits[t][targets[t]] - log(sum_v exp(logits[t][v])) for n rows
 * of V fp32 logits (device pointers; targets in 0..V-1, checked by the
 * caller). @return 0 or MP_EINTERNAL. */
int mp_cuda_target_logprobs(double *out, const float *logits, const int32_t *targets, int n, int V, cudaStream_t st,
                            mp_error *err);

#endif
