// Gated MLP activation: out[t, i] = silu(x[t, i]) · x[t, I + i] for x [T, 2I], out [T, I],
// computed in f32 and rounded once.
//
// Grid-stride over T · I / N vectors of N = 16 / sizeof(T) elements (16-byte loads and stores)
// when I is a multiple of N and the pointers are aligned; element-wise otherwise.
#include "include/common.cuh"

using namespace lathe;

__device__ __forceinline__ float silu_mul(float g, float u) { return g / (1.f + expf(-g)) * u; }

template <typename T>
__device__ __forceinline__ void silu_and_mul(T *out, const T *x, int num_tokens, int inter) {
  constexpr int N = Vec16<T>::N;
  const int64_t stride = (int64_t)gridDim.x * blockDim.x;
  const int64_t first = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (inter % N == 0 && aligned16(out, x)) {
    const int per_row = inter / N;
    const int64_t total = (int64_t)num_tokens * per_row;
    for (int64_t i = first; i < total; i += stride) {
      const int64_t t = i / per_row;
      const int c = (int)(i - t * per_row) * N;
      float g[N], u[N];
      unpack16<T>(ldg16(x + t * 2 * inter + c), g);
      unpack16<T>(ldg16(x + t * 2 * inter + inter + c), u);
#pragma unroll
      for (int e = 0; e < N; ++e) g[e] = silu_mul(g[e], u[e]);
      st16(out + t * inter + c, pack16<T>(g));
    }
  } else {
    const int64_t total = (int64_t)num_tokens * inter;
    for (int64_t i = first; i < total; i += stride) {
      const int64_t t = i / inter;
      const int64_t c = i - t * inter;
      out[i] = from_float<T>(silu_mul(to_float(x[t * 2 * inter + c]), to_float(x[t * 2 * inter + inter + c])));
    }
  }
}

#define LATHE_SILU_AND_MUL(TY, NAME)                                                          \
  extern "C" __global__ void __launch_bounds__(256)                                           \
      silu_and_mul_##NAME(TY *out, const TY *x, int num_tokens, int inter) {                  \
    silu_and_mul<TY>(out, x, num_tokens, inter);                                              \
  }

LATHE_SILU_AND_MUL(float, f32)
LATHE_SILU_AND_MUL(f16, f16)
LATHE_SILU_AND_MUL(bf16, bf16)
