// Shared device helpers for lathe's kernels: element types, 16-byte vectors, warp reductions.
//
// Every kernel computes in f32 and rounds once on store (round-to-nearest-even, the same as
// the `half` crate the CPU twins in crates/lathe-kernels/src/reference.rs use).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

namespace lathe {

typedef __nv_bfloat16 bf16;
typedef __half f16;

constexpr float NEG_INF = -__builtin_huge_valf();

// ---- scalar conversions -------------------------------------------------------------------

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(f16 x) { return __half2float(x); }
__device__ __forceinline__ float to_float(bf16 x) { return __bfloat162float(x); }

template <typename T> __device__ __forceinline__ T from_float(float x);
template <> __device__ __forceinline__ float from_float<float>(float x) { return x; }
template <> __device__ __forceinline__ f16 from_float<f16>(float x) { return __float2half_rn(x); }
template <> __device__ __forceinline__ bf16 from_float<bf16>(float x) { return __float2bfloat16_rn(x); }

// ---- 16-byte vectors ----------------------------------------------------------------------

// Number of T in one 16-byte access.
template <typename T> struct Vec16 { static constexpr int N = 16 / sizeof(T); };

// Unpacks 16 bytes holding Vec16<T>::N elements into f32.
template <typename T> __device__ __forceinline__ void unpack16(const uint4 &raw, float *out);

template <> __device__ __forceinline__ void unpack16<float>(const uint4 &raw, float *out) {
  out[0] = __uint_as_float(raw.x);
  out[1] = __uint_as_float(raw.y);
  out[2] = __uint_as_float(raw.z);
  out[3] = __uint_as_float(raw.w);
}

// bf16 -> f32 is exact: the bf16 bits are the high half of the f32.
template <> __device__ __forceinline__ void unpack16<bf16>(const uint4 &raw, float *out) {
  const uint32_t w[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    out[2 * i] = __uint_as_float(w[i] << 16);
    out[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
  }
}

template <> __device__ __forceinline__ void unpack16<f16>(const uint4 &raw, float *out) {
  const uint32_t w[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    __half2 h;
    memcpy(&h, &w[i], sizeof(h));
    const float2 f = __half22float2(h);
    out[2 * i] = f.x;
    out[2 * i + 1] = f.y;
  }
}

// Packs Vec16<T>::N f32 values into 16 bytes of T (rounding to nearest even).
template <typename T> __device__ __forceinline__ uint4 pack16(const float *in);

template <> __device__ __forceinline__ uint4 pack16<float>(const float *in) {
  return make_uint4(__float_as_uint(in[0]), __float_as_uint(in[1]), __float_as_uint(in[2]),
                    __float_as_uint(in[3]));
}

template <> __device__ __forceinline__ uint4 pack16<bf16>(const float *in) {
  uint32_t w[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const __nv_bfloat162 h = __floats2bfloat162_rn(in[2 * i], in[2 * i + 1]);
    memcpy(&w[i], &h, sizeof(uint32_t));
  }
  return make_uint4(w[0], w[1], w[2], w[3]);
}

template <> __device__ __forceinline__ uint4 pack16<f16>(const float *in) {
  uint32_t w[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const __half2 h = __floats2half2_rn(in[2 * i], in[2 * i + 1]);
    memcpy(&w[i], &h, sizeof(uint32_t));
  }
  return make_uint4(w[0], w[1], w[2], w[3]);
}

// Read-only 16-byte load through the non-coherent path (data not written by this kernel).
__device__ __forceinline__ uint4 ldg16(const void *p) { return __ldg(reinterpret_cast<const uint4 *>(p)); }

__device__ __forceinline__ uint4 ld16(const void *p) { return *reinterpret_cast<const uint4 *>(p); }

__device__ __forceinline__ void st16(void *p, const uint4 &v) { *reinterpret_cast<uint4 *>(p) = v; }

// True when every pointer is 16-byte aligned, so a row can be moved with 16-byte accesses.
__device__ __forceinline__ bool aligned16(const void *a, const void *b) {
  return ((reinterpret_cast<uintptr_t>(a) | reinterpret_cast<uintptr_t>(b)) & 15u) == 0;
}

// ---- warp and block reductions --------------------------------------------------------------

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int m = 16; m >= 1; m >>= 1) v += __shfl_xor_sync(0xffffffffu, v, m);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int m = 16; m >= 1; m >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, m));
  return v;
}

// Sum over the whole block; every thread gets the result. `scratch` holds >= 32 floats and
// may be reused after the call returns (the call ends with a barrier).
__device__ __forceinline__ float block_sum(float v, float *scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int nwarps = (blockDim.x + 31) >> 5;
  v = warp_sum(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float total = 0.f;
  for (int w = 0; w < nwarps; ++w) total += scratch[w];
  __syncthreads();
  return total;
}

// exp for softmax weights: ex2.approx on x·log2(e); relative error ~2 ulp, exp(-inf) = 0.
__device__ __forceinline__ float fast_exp(float x) { return exp2f(x * 1.4426950408889634f); }

}  // namespace lathe
