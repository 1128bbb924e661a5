// Rotary position embedding, in place on x [T, heads, head_dim]:
//   positions u32 [T], cos_sin f32 [max_pos, rotary_dim] (cos in the first rotary_dim / 2
//   columns, sin in the rest). Pair i (0 <= i < rotary_dim / 2) is (i, i + rotary_dim / 2) for
//   the neox style and (2i, 2i + 1) for the gptj style:
//     a' = a·cos_i − b·sin_i,  b' = b·cos_i + a·sin_i.
//   Dims past rotary_dim are left alone. A position >= max_pos leaves its row unchanged.
//
// One block per token, threads over (head, pair); consecutive threads take consecutive pairs.
#include "include/common.cuh"

using namespace lathe;

template <typename T, bool NEOX>
__device__ __forceinline__ void rope(T *x, const uint32_t *positions, const float *cos_sin, int num_tokens,
                                     int heads, int head_dim, int rotary_dim, int max_pos) {
  const int t = blockIdx.x;
  if (t >= num_tokens) return;
  const uint32_t pos = positions[t];
  if (pos >= (uint32_t)max_pos) return;
  const int half = rotary_dim / 2;
  const float *cs = cos_sin + (size_t)pos * rotary_dim;
  T *row = x + (size_t)t * heads * head_dim;
  for (int k = threadIdx.x; k < heads * half; k += blockDim.x) {
    const int h = k / half, i = k - h * half;
    T *hp = row + (size_t)h * head_dim;
    const int ia = NEOX ? i : 2 * i, ib = NEOX ? i + half : 2 * i + 1;
    const float a = to_float(hp[ia]), b = to_float(hp[ib]);
    const float c = __ldg(cs + i), s = __ldg(cs + half + i);
    hp[ia] = from_float<T>(a * c - b * s);
    hp[ib] = from_float<T>(b * c + a * s);
  }
}

#define LATHE_ROPE(TY, NAME)                                                                       \
  extern "C" __global__ void __launch_bounds__(256)                                                \
      rope_neox_##NAME(TY *x, const uint32_t *positions, const float *cos_sin, int num_tokens,     \
                       int heads, int head_dim, int rotary_dim, int max_pos) {                     \
    rope<TY, true>(x, positions, cos_sin, num_tokens, heads, head_dim, rotary_dim, max_pos);       \
  }                                                                                                \
  extern "C" __global__ void __launch_bounds__(256)                                                \
      rope_gptj_##NAME(TY *x, const uint32_t *positions, const float *cos_sin, int num_tokens,     \
                       int heads, int head_dim, int rotary_dim, int max_pos) {                     \
    rope<TY, false>(x, positions, cos_sin, num_tokens, heads, head_dim, rotary_dim, max_pos);      \
  }

LATHE_ROPE(float, f32)
LATHE_ROPE(f16, f16)
LATHE_ROPE(bf16, bf16)
