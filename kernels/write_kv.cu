// KV-cache write: scatter this step's K (or V) rows into the paged cache by flat slot.
//
//   cache [num_blocks, block_size, KVH, D]   new [T, KVH, D]   slot_mapping i64 [T]
//   row t (KVH·D elements) goes to cache slot slot_mapping[t] = block · block_size + offset,
//   i.e. to elements [slot · KVH·D, (slot + 1) · KVH·D); slot < 0 marks a padding row (skipped),
//   and so is a slot >= num_slots (= num_blocks · block_size) rather than writing out of bounds.
//
// One warp per row, 16-byte copies when the row and both pointers allow it. Grid-stride over
// rows, 128 threads (4 rows) per block.
#include "include/common.cuh"

using namespace lathe;

template <typename T>
__device__ __forceinline__ void write_kv(T *cache, const T *src, const int64_t *slots, int64_t num_slots,
                                         int num_tokens, int row_width) {
  constexpr int N = Vec16<T>::N;
  const int lane = threadIdx.x & 31, warps = blockDim.x >> 5;
  for (int t = blockIdx.x * warps + (threadIdx.x >> 5); t < num_tokens; t += gridDim.x * warps) {
    const int64_t slot = slots[t];
    if (slot < 0 || slot >= num_slots) continue;
    T *dst = cache + slot * row_width;
    const T *s = src + (int64_t)t * row_width;
    if (row_width % N == 0 && aligned16(dst, s)) {
      for (int i = lane * N; i < row_width; i += 32 * N) st16(dst + i, ld16(s + i));
    } else {
#pragma unroll 1
      for (int i = lane; i < row_width; i += 32) dst[i] = s[i];
    }
  }
}

#define LATHE_WRITE_KV(TY, NAME)                                                                   \
  extern "C" __global__ void __launch_bounds__(128)                                                \
      write_kv_##NAME(TY *cache, const TY *src, const int64_t *slots, int64_t num_slots, int num_tokens, \
                      int row_width) {                                                             \
    write_kv<TY>(cache, src, slots, num_slots, num_tokens, row_width);                             \
  }

LATHE_WRITE_KV(float, f32)
LATHE_WRITE_KV(f16, f16)
LATHE_WRITE_KV(bf16, bf16)
