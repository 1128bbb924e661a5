// Mixture-of-experts routing and combine (Qwen3-MoE), the CUDA twins of
// crates/lathe-kernels/src/reference.rs `moe_topk_softmax` and `moe_combine`.
//
// moe_topk_softmax: one warp per token. Softmax over the token's E router logits (lane l holds
// experts l, l + 32, ...; E <= 32 * MOE_MAX_PER_LANE), then k rounds of a warp argmax (ties to
// the lower expert id) that take the winner out. Writes, per token, the k expert ids (as
// floats: exact below 2^24) then their probabilities, in the order chosen, renormalised over
// the k when `normalize`: out [T, 2k] f32.
//
// moe_combine: out[t, h] = sum_j w[t, j] * y[rows[t * k + j], h], in f32 with j in order,
// rounded once; y holds the experts' outputs grouped by expert, rows says where token t's j-th
// expert output sits. Grid-stride over T * H.
#include "include/common.cuh"

using namespace lathe;

constexpr int MOE_MAX_PER_LANE = 8;

__device__ __forceinline__ void moe_topk_softmax(float *out, const float *logits, int num_tokens, int num_experts,
                                                 int k, int normalize) {
  const int lane = threadIdx.x & 31;
  const int t = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (t >= num_tokens) return;  // the whole warp: t is per warp
  const float *l = logits + (int64_t)t * num_experts;
  float p[MOE_MAX_PER_LANE];
  float mx = -INFINITY;
#pragma unroll
  for (int i = 0; i < MOE_MAX_PER_LANE; ++i) {
    const int e = lane + 32 * i;
    p[i] = e < num_experts ? l[e] : -INFINITY;
    mx = fmaxf(mx, p[i]);
  }
  mx = warp_max(mx);
  float total = 0.f;
#pragma unroll
  for (int i = 0; i < MOE_MAX_PER_LANE; ++i) {
    const int e = lane + 32 * i;
    // -1 marks an expert that is absent or already taken (probabilities are >= 0).
    p[i] = e < num_experts ? expf(p[i] - mx) : -1.f;
    if (e < num_experts) total += p[i];
  }
  total = warp_sum(total);
  float *row = out + (int64_t)t * 2 * k;
  float chosen = 0.f;
  for (int j = 0; j < k; ++j) {
    float best = -1.f;
    int best_e = num_experts;
#pragma unroll
    for (int i = 0; i < MOE_MAX_PER_LANE; ++i)
      if (p[i] > best) {  // strictly: the lower expert of this lane wins a tie
        best = p[i];
        best_e = lane + 32 * i;
      }
#pragma unroll
    for (int m = 16; m >= 1; m >>= 1) {
      const float ob = __shfl_xor_sync(0xffffffffu, best, m);
      const int oe = (int)__shfl_xor_sync(0xffffffffu, (float)best_e, m);
      if (ob > best || (ob == best && oe < best_e)) {
        best = ob;
        best_e = oe;
      }
    }
    // Unrolled compare, not p[best_e >> 5]: a dynamic index would put p on the stack.
#pragma unroll
    for (int i = 0; i < MOE_MAX_PER_LANE; ++i)
      if (lane + 32 * i == best_e) p[i] = -1.f;
    const float prob = best / total;
    chosen += prob;
    if (lane == 0) {
      row[j] = (float)best_e;
      row[k + j] = prob;
    }
  }
  if (normalize && lane == 0)
    for (int j = 0; j < k; ++j) row[k + j] /= chosen;
}

template <typename T>
__device__ __forceinline__ void moe_combine(T *out, const T *y, const uint32_t *rows, const float *w, int num_tokens,
                                            int k, int hidden) {
  const int64_t stride = (int64_t)gridDim.x * blockDim.x;
  const int64_t total = (int64_t)num_tokens * hidden;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int64_t t = i / hidden;
    const int64_t h = i - t * hidden;
    float acc = 0.f;
    for (int j = 0; j < k; ++j) acc += w[t * k + j] * to_float(y[(int64_t)rows[t * k + j] * hidden + h]);
    out[i] = from_float<T>(acc);
  }
}

extern "C" __global__ void __launch_bounds__(128)
    moe_topk_softmax_f32(float *out, const float *logits, int num_tokens, int num_experts, int k, int normalize) {
  moe_topk_softmax(out, logits, num_tokens, num_experts, k, normalize);
}

#define LATHE_MOE_COMBINE(TY, NAME)                                                                       \
  extern "C" __global__ void __launch_bounds__(256) moe_combine_##NAME(                                 \
      TY *out, const TY *y, const uint32_t *rows, const float *w, int num_tokens, int k, int hidden) { \
    moe_combine<TY>(out, y, rows, w, num_tokens, k, hidden);                                            \
  }

LATHE_MOE_COMBINE(float, f32)
LATHE_MOE_COMBINE(f16, f16)
LATHE_MOE_COMBINE(bf16, bf16)
