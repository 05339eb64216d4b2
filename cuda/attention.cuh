/* cuda/attention.cuh — causal GQA attention over the KV cache, fused
 * flash-style (online softmax over key tiles; no [n][S] score matrix in
 * global memory). Mirror of mp_cpu_attention.
 *
 * KV cache: float32, [max_ctx][KV*hd] per layer, keys after RoPE — the same
 * layout and precision as the CPU state, so decode == prefill holds exactly
 * as on the CPU and nothing is lost to a bf16 cache (memory cost:
 * 8 * L * max_ctx * KV*hd bytes, 1.6 GB for the 1.4B model at 4096 tokens). */
#ifndef MP_CUDA_ATTENTION_CUH
#define MP_CUDA_ATTENTION_CUH

#include "common.cuh"

/* att[t][h*hd..] = softmax_j(scale q_t . K_j) V_j over keys j <= pos0 + t,
 * for n queries (q: fp32 [n][H*hd]) at positions pos0..; K, V: the layer's
 * cache (fp32 [>= pos0+n][KV*hd]); head h reads kv head h / (H/KV).
 * att: bf16 [n][H*hd] (the input of the Wo GEMM). hd <= 256.
 * @return 0, MP_EUNSUPPORTED (hd > 256) or MP_EINTERNAL. */
int mp_cuda_attention(bf16 *att, const float *q, const float *K, const float *V, int n, int pos0, int H, int KV,
                      int hd, cudaStream_t st, mp_error *err);

#endif
