// Fused residual add + RMSNorm, one block per row:
//   res  = x + residual                      (rounded to T: the next layer's residual)
//   norm = res · rsqrt(mean((x + residual)²) + eps) · weight
// The mean of squares is taken over the unrounded f32 sum and the normalised value is the
// rounded residual, exactly as reference::add_rms_norm does. out is [2, T, H]: out[0] = norm,
// out[1] = res.
//
// 16-byte accesses when H is a multiple of 16 / sizeof(T) and the pointers are aligned. The
// second pass re-reads the residual this same thread wrote (L1/L2 hits).
#include "include/common.cuh"

using namespace lathe;

template <typename T>
__device__ __forceinline__ void add_rms_norm(T *out, const T *x, const T *residual, const T *weight,
                                             int num_tokens, int hidden, float eps) {
  __shared__ float scratch[32];
  constexpr int N = Vec16<T>::N;
  const int t = blockIdx.x;
  if (t >= num_tokens) return;
  const size_t off = (size_t)t * hidden;
  T *normed = out + off;
  T *res = out + (size_t)num_tokens * hidden + off;
  const T *xr = x + off, *rr = residual + off;
  const bool vec = hidden % N == 0 && aligned16(out, x) && aligned16(residual, weight) &&
                   aligned16(res, normed);
  float sumsq = 0.f;
  if (vec) {
    for (int i = threadIdx.x * N; i < hidden; i += blockDim.x * N) {
      float a[N], b[N];
      unpack16<T>(ldg16(xr + i), a);
      unpack16<T>(ldg16(rr + i), b);
#pragma unroll
      for (int e = 0; e < N; ++e) {
        a[e] += b[e];
        sumsq += a[e] * a[e];
      }
      st16(res + i, pack16<T>(a));
    }
  } else {
    for (int i = threadIdx.x; i < hidden; i += blockDim.x) {
      const float v = to_float(xr[i]) + to_float(rr[i]);
      res[i] = from_float<T>(v);
      sumsq += v * v;
    }
  }
  const float inv = 1.f / sqrtf(block_sum(sumsq, scratch) / (float)hidden + eps);
  if (vec) {
    for (int i = threadIdx.x * N; i < hidden; i += blockDim.x * N) {
      float a[N], w[N];
      unpack16<T>(ld16(res + i), a);
      unpack16<T>(ldg16(weight + i), w);
#pragma unroll
      for (int e = 0; e < N; ++e) a[e] = a[e] * inv * w[e];
      st16(normed + i, pack16<T>(a));
    }
  } else {
    for (int i = threadIdx.x; i < hidden; i += blockDim.x)
      normed[i] = from_float<T>(to_float(res[i]) * inv * to_float(weight[i]));
  }
}

#define LATHE_ADD_RMS_NORM(TY, NAME)                                                                 \
  extern "C" __global__ void __launch_bounds__(1024)                                                 \
      add_rms_norm_##NAME(TY *out, const TY *x, const TY *residual, const TY *weight, int num_tokens, \
                          int hidden, float eps) {                                                   \
    add_rms_norm<TY>(out, x, residual, weight, num_tokens, hidden, eps);                             \
  }

LATHE_ADD_RMS_NORM(float, f32)
LATHE_ADD_RMS_NORM(f16, f16)
LATHE_ADD_RMS_NORM(bf16, bf16)
