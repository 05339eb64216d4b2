/* cuda/logsoftmax.cu — gathered log-softmax (see logsoftmax.cuh). One block
 * per row. */
#include "logsoftmax.cuh"

#include "reduce.cuh"

#define LSM_THREADS 256

static __global__ void target_logprob_kernel(double *out, const float *logits, const int32_t *targets, int V) {
    __shared__ double scratch[32];
    const float *row = logits + (size_t)blockIdx.x * V;
    double mx = -INFINITY;
    for (int i = threadIdx.x; i < V; i += blockDim.x) mx = fmax(mx, (double)row[i]);
    mx = mp_block_max(mx, scratch);
    double sum = 0;
    for (int i = threadIdx.x; i < V; i += blockDim.x) sum += exp((double)row[i] - mx);
    sum = mp_block_sum(sum, scratch);
    if (threadIdx.x == 0) out[blockIdx.x] = (double)row[targets[blockIdx.x]] - mx - log(sum);
}

int mp_cuda_target_logprobs(double *out, const float *logits, const int32_t *targets, int n, int V, cudaStream_t st,
                            mp_error *err) {
    if (n == 0) return 0;
    target_logprob_kernel<<<n, LSM_THREADS, 0, st>>>(out, logits, targets, V);
    CUDA_LAUNCH_CHECK(err);
    return 0;
}
