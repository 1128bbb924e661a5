// Paged attention: the launch parameters shared by the decode, prefill and reduction kernels,
// and the split-K partitioning every one of them must agree on.
//
// Problem (see reference::paged_attention in crates/lathe-kernels/src/reference.rs):
//   q, out   [T, H, D]                     T query tokens, sequence after sequence
//   k/v      [num_blocks, BS, KVH, D]      NHD paged cache, D contiguous
//   sequence s owns rows query_start[s] .. query_start[s+1] (n_s rows), the LAST n_s tokens of
//   its seq_lens[s]-token context; row i sits at position p = seq_lens[s] - n_s + i and sees keys
//   j <= p (and j > p - W with a sliding window W). Head h reads KV head h / (H / KVH).
//
// Split-K: the keys a sequence needs, [base_s, ctx_s), are cut into partitions of
// `partition_size` keys starting at base_s. The main kernels write per (row, partition) the
// unnormalised f32 accumulator plus its running max m and sum l; a partition holding no key a
// row may see writes m = -inf, l = 0, acc = 0. The reduction kernel merges them by
// log-sum-exp. Without split (tmp_out == nullptr) the main kernel writes `out` directly.
#pragma once

#include "common.cuh"

namespace lathe {

// Passed by value as the only kernel parameter. Mirrored field for field by `AttnParams` in
// crates/lathe-kernels/src/cuda/attention.rs: change both together.
struct PagedAttnParams {
  const void *q;                // [T, H, D]
  void *out;                    // [T, H, D]
  const void *k_cache;          // [NB, BS, KVH, D]
  const void *v_cache;          // [NB, BS, KVH, D]
  const uint32_t *block_tables; // [S, max_blocks]
  const uint32_t *seq_lens;     // [S]
  const uint32_t *query_start;  // [S + 1]
  const float *sinks;           // [H], or null
  float *tmp_out;               // [T, H, max_parts, D] when split, else null
  float *tmp_ml;                // [T, H, max_parts, 2] (m, l) when split, else null
  int32_t num_tokens;           // T
  int32_t num_seqs;             // S
  int32_t num_heads;            // H
  int32_t num_kv_heads;         // KVH
  int32_t max_blocks;           // row stride of block_tables
  int32_t block_size_log2;      // BS = 1 << block_size_log2
  int32_t sliding_window;       // W, 0 = none
  int32_t partition_size;       // keys per split-K partition (>= any context when not split)
  int32_t max_parts;            // partition stride of tmp_out / tmp_ml
  float scale;                  // softmax scale, folded into q
  float softcap;                // c > 0: logits = c * tanh(logits / c); 0 = none
  int32_t reserved;             // keeps the size a multiple of 8
};
static_assert(sizeof(PagedAttnParams) == 128, "PagedAttnParams layout changed: update the Rust mirror");

// Keys [base, ctx) some row of a sequence may attend to, and how many partitions cover them.
struct KeyRange {
  int base;
  int nparts;
};

__device__ __forceinline__ KeyRange key_range(const PagedAttnParams &p, int ctx, int n_q) {
  KeyRange r;
  r.base = p.sliding_window > 0 ? max(0, ctx - n_q - p.sliding_window + 1) : 0;
  r.nparts = (ctx - r.base + p.partition_size - 1) / p.partition_size;
  return r;
}

// Largest s in [0, num_seqs) with f(s) <= x, for a non-decreasing f with f(0) <= x.
template <typename F>
__device__ __forceinline__ int upper_search(int num_seqs, int x, F f) {
  int lo = 0, hi = num_seqs - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) >> 1;
    if (f(mid) <= x) lo = mid; else hi = mid - 1;
  }
  return lo;
}

// Multiplier turning an accumulator with running max m and sum l into the output, counting the
// attention sink (an extra logit with no value) in the denominator.
__device__ __forceinline__ float softmax_factor(float m, float l, const float *sinks, int h) {
  if (sinks == nullptr) return 1.f / l;
  const float sink = sinks[h];
  const float mm = fmaxf(m, sink);
  const float alpha = fast_exp(m - mm);
  return alpha / (l * alpha + fast_exp(sink - mm));
}

// Logit soft-capping (Gemma 2 style); accurate tanhf, the approximation is too coarse for c ~ 50.
__device__ __forceinline__ float apply_softcap(float x, float cap) {
  return cap > 0.f ? cap * tanhf(x / cap) : x;
}

// Reduce-scatter over TG consecutive lanes: on entry each lane holds partial sums v[0..N) of N
// values (N <= TG, both powers of two); on exit v[0] holds the full sum of value
// `lig / (TG / N)` (lig = lane index within the group). Halves the values kept at each of the
// first log2(N) butterfly steps, so it costs N - 1 + log2(TG / N) shuffles instead of
// N * log2(TG).
template <int N, int MASK>
struct ReduceScatter {
  template <int G>
  __device__ static __forceinline__ void run(float (&v)[G], int lig) {
    if constexpr (MASK == 0) {
      return;
    } else if constexpr (N > 1) {
      const bool upper = (lig & MASK) != 0;
#pragma unroll
      for (int i = 0; i < N / 2; ++i) {
        const float send = upper ? v[i] : v[i + N / 2];
        const float keep = upper ? v[i + N / 2] : v[i];
        v[i] = keep + __shfl_xor_sync(0xffffffffu, send, MASK);
      }
      ReduceScatter<N / 2, MASK / 2>::run(v, lig);
    } else {
      v[0] += __shfl_xor_sync(0xffffffffu, v[0], MASK);
      ReduceScatter<1, MASK / 2>::run(v, lig);
    }
  }
};

// ---- split-K reduction ------------------------------------------------------------------------

// One block of 128 threads per (head, token) row: merges the row's partitions.
template <typename T, int D>
__device__ __forceinline__ void reduce_partitions(const PagedAttnParams &p) {
  constexpr int NT = 128, LANES = D / 4, PG = NT / LANES;
  static_assert(NT % LANES == 0, "head_dim / 4 must divide the block");
  __shared__ __align__(16) float s_acc[PG][D];
  __shared__ float s_l[PG];

  const int h = blockIdx.x, t = blockIdx.y;
  if (t >= p.num_tokens) return;
  const int s = upper_search(p.num_seqs, t, [&](int i) { return (int)p.query_start[i]; });
  const int n_q = (int)p.query_start[s + 1] - (int)p.query_start[s];
  // Clamped so that a max_seq_len hint below a real context cannot make us read past tmp.
  const int nparts = min(key_range(p, (int)p.seq_lens[s], n_q).nparts, p.max_parts);
  const size_t row = (size_t)t * p.num_heads + h;
  const float *ml = p.tmp_ml + row * p.max_parts * 2;
  const float *acc = p.tmp_out + row * p.max_parts * D;

  float mx = NEG_INF;
  for (int i = 0; i < nparts; ++i) mx = fmaxf(mx, ml[2 * i]);
  if (p.sinks != nullptr) mx = fmaxf(mx, p.sinks[h]);

  const int lane = threadIdx.x % LANES, pg = threadIdx.x / LANES;
  float4 a = make_float4(0.f, 0.f, 0.f, 0.f);
  float l = 0.f;
  for (int i = pg; i < nparts; i += PG) {
    const float w = fast_exp(ml[2 * i] - mx);
    const float4 x = *reinterpret_cast<const float4 *>(acc + (size_t)i * D + lane * 4);
    l += w * ml[2 * i + 1];
    a.x += w * x.x;
    a.y += w * x.y;
    a.z += w * x.z;
    a.w += w * x.w;
  }
  *reinterpret_cast<float4 *>(&s_acc[pg][lane * 4]) = a;
  if (lane == 0) s_l[pg] = l;
  __syncthreads();
  if (pg != 0) return;
  for (int g = 1; g < PG; ++g) {
    const float4 x = *reinterpret_cast<const float4 *>(&s_acc[g][lane * 4]);
    l += s_l[g];
    a.x += x.x;
    a.y += x.y;
    a.z += x.z;
    a.w += x.w;
  }
  if (p.sinks != nullptr) l += fast_exp(p.sinks[h] - mx);
  const float inv = 1.f / l;
  T *o = reinterpret_cast<T *>(p.out) + row * D + lane * 4;
  o[0] = from_float<T>(a.x * inv);
  o[1] = from_float<T>(a.y * inv);
  o[2] = from_float<T>(a.z * inv);
  o[3] = from_float<T>(a.w * inv);
}

}  // namespace lathe
