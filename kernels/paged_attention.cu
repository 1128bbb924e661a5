// Paged attention entry points (decode, prefill, split-K reduction) for every dtype and
// supported head_dim. The kernels themselves live in include/attention_*.cuh; launch logic and
// the choice between them is in crates/lathe-kernels/src/cuda/attention.rs.
//
//   paged_attention_decode_<dtype>_hd<D>_g<GM>  grid (KVH * ceil(G / GM), S, parts), 128 threads
//   paged_attention_prefill_<dtype>_hd<D>       grid (T / QT + S, KVH, parts), 128 threads,
//                                               PrefillCfg::SMEM_BYTES dynamic shared memory
//   paged_attention_prefill_mma_<dtype>_hd<D>   same grid, tensor cores (f16/bf16, D 64/128),
//                                               MmaCfg::SMEM_BYTES dynamic shared memory
//   paged_attention_reduce_<dtype>_hd<D>        grid (H, T), 128 threads
//
// build.rs compiles this file once per dtype (the variants line below): the driver JIT-compiles
// a whole module when it is loaded, so a bf16 model pays for the bf16 kernels only.
// lathe-variants: f32 f16 bf16
#include "include/attention_decode.cuh"
#include "include/attention_prefill.cuh"
#include "include/attention_prefill_mma.cuh"

using namespace lathe;

#define LATHE_DECODE(TY, NAME, D, GM)                                                        \
  extern "C" __global__ void __launch_bounds__(128)                                          \
      paged_attention_decode_##NAME##_hd##D##_g##GM(const PagedAttnParams p) {               \
    decode_attention<TY, D, GM>(p);                                                          \
  }

#define LATHE_ATTENTION(TY, NAME, D)                                                         \
  LATHE_DECODE(TY, NAME, D, 1)                                                               \
  LATHE_DECODE(TY, NAME, D, 2)                                                               \
  LATHE_DECODE(TY, NAME, D, 4)                                                               \
  LATHE_DECODE(TY, NAME, D, 8)                                                               \
  extern "C" __global__ void __launch_bounds__(128)                                          \
      paged_attention_prefill_##NAME##_hd##D(const PagedAttnParams p) {                      \
    prefill_attention<TY, D>(p);                                                             \
  }                                                                                          \
  extern "C" __global__ void __launch_bounds__(128)                                          \
      paged_attention_reduce_##NAME##_hd##D(const PagedAttnParams p) {                       \
    reduce_partitions<TY, D>(p);                                                             \
  }

#define LATHE_PREFILL_MMA(TY, NAME, D)                                                       \
  extern "C" __global__ void __launch_bounds__(128)                                          \
      paged_attention_prefill_mma_##NAME##_hd##D(const PagedAttnParams p) {                  \
    prefill_attention_mma<TY, D>(p);                                                         \
  }

// Without LATHE_VARIANT (the CI check) every dtype is compiled.
#if !defined(LATHE_VARIANT) || defined(LATHE_VARIANT_f32)
LATHE_ATTENTION(float, f32, 64)
LATHE_ATTENTION(float, f32, 128)
LATHE_ATTENTION(float, f32, 256)
#endif
#if !defined(LATHE_VARIANT) || defined(LATHE_VARIANT_f16)
LATHE_ATTENTION(f16, f16, 64)
LATHE_ATTENTION(f16, f16, 128)
LATHE_ATTENTION(f16, f16, 256)
LATHE_PREFILL_MMA(f16, f16, 64)
LATHE_PREFILL_MMA(f16, f16, 128)
#endif
#if !defined(LATHE_VARIANT) || defined(LATHE_VARIANT_bf16)
LATHE_ATTENTION(bf16, bf16, 64)
LATHE_ATTENTION(bf16, bf16, 128)
LATHE_ATTENTION(bf16, bf16, 256)
LATHE_PREFILL_MMA(bf16, bf16, 64)
LATHE_PREFILL_MMA(bf16, bf16, 128)
#endif
