// Paged attention, decode: exactly one query token per sequence. Memory-bound, so the design
// is about reading each K/V byte once, 16 bytes at a time, with many loads in flight.
//
// Grid (KVH * chunks, S, partitions), 128 threads. One block owns one KV head of one sequence
// and GM of the query heads sharing it (GQA grouping: K/V is read once for all of them; groups
// larger than GM are cut into chunks), and one split-K partition of at most 512 keys.
//
// Thread layout: a "token group" of TG lanes reads one key row (D elements) with one 16-byte
// load per lane (two for f32 at D = 256), so a warp covers 32 / TG keys per load and those rows
// are 32·TG-byte coalesced segments. Each warp streams a chunk of UNROLL rows per lane (8
// independent 16-byte loads in flight) before using them.
//   QK : each lane dots its D/TG slice with the GM query heads (held in registers, pre-scaled),
//        a reduce-scatter across the group leaves one head's logit per lane; logits go to
//        shared memory [keys][GM].
//   softmax over the partition in shared memory (max, exp, sum per head).
//   PV : the same streaming over V, accumulating GM x (D/TG) f32 per lane, then reduced over
//        token groups (shuffles) and warps (shared memory).
#pragma once

#include "attention_common.cuh"

namespace lathe {

template <typename T, int D, int GM>
struct DecodeCfg {
  static constexpr int NT = 128;
  static constexpr int NW = NT / 32;
  static constexpr int VEC = Vec16<T>::N;                     // elements per 16-byte load
  static constexpr int TG = (D / VEC) < 32 ? (D / VEC) : 32;  // lanes per key row
  static constexpr int NV = D / (VEC * TG);                   // 16-byte loads per lane per row
  static constexpr int EPT = NV * VEC;                        // row elements per lane
  static constexpr int TPW = 32 / TG;                         // key rows per warp per load
  static constexpr int UNROLL = 8 / NV;                       // loads in flight per lane
  static constexpr int CH = TPW * UNROLL;                     // key rows per warp chunk
  static constexpr int PS_MAX = 512;                          // largest partition
  static constexpr int SMEM_FLOATS = (PS_MAX * GM > NW * GM * D) ? PS_MAX * GM : NW * GM * D;
  static_assert(D % (VEC * TG) == 0 && 32 % TG == 0, "unsupported head_dim");
  static_assert(GM <= TG && (GM & (GM - 1)) == 0, "GM must be a power of two <= TG");
};

// Offset of key j's row for one KV head: (slot * KVH + kvh) * D, slot from the block table.
__device__ __forceinline__ size_t kv_row(const uint32_t *s_table, int first_blk, int j, int bs_log2,
                                         size_t slot_stride) {
  const size_t blk = s_table[(j >> bs_log2) - first_blk];
  return ((blk << bs_log2) + (size_t)(j & ((1 << bs_log2) - 1))) * slot_stride;
}

template <typename T, int D, int GM>
__device__ __forceinline__ void decode_attention(const PagedAttnParams &p) {
  using C = DecodeCfg<T, D, GM>;
  constexpr int VEC = C::VEC, TG = C::TG, NV = C::NV, UNROLL = C::UNROLL, TPW = C::TPW;
  __shared__ __align__(16) float s_buf[C::SMEM_FLOATS];  // logits [keys][GM], then [NW][GM][D]
  __shared__ uint32_t s_table[C::PS_MAX + 1];
  __shared__ float s_red[C::NW][GM];
  __shared__ float s_m[GM], s_l[GM];

  const int group = p.num_heads / p.num_kv_heads;
  const int nchunk = (group + GM - 1) / GM;
  const int kvh = blockIdx.x / nchunk;
  const int g0 = (blockIdx.x % nchunk) * GM;
  const int nh = min(GM, group - g0);  // valid heads in this block
  const int h0 = kvh * group + g0;
  const int seq = blockIdx.y, part = blockIdx.z;
  const int t = (int)p.query_start[seq];
  if ((int)p.query_start[seq + 1] - t != 1) return;  // decode: one query per sequence
  const int ctx = (int)p.seq_lens[seq];
  const KeyRange kr = key_range(p, ctx, 1);
  if (part >= kr.nparts) return;
  const int lo = kr.base + part * p.partition_size;
  const int hi = min(lo + p.partition_size, ctx);
  const int n = hi - lo;

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int tgi = lane / TG, lig = lane % TG;
  const int bs_log2 = p.block_size_log2;
  const int first_blk = lo >> bs_log2;
  const int nblk = ((hi - 1) >> bs_log2) - first_blk + 1;
  const uint32_t *table = p.block_tables + (size_t)seq * p.max_blocks + first_blk;
  for (int i = tid; i < nblk; i += C::NT) s_table[i] = table[i];

  // This lane's slice of the GM query heads, scaled, in f32 registers.
  float q[GM][C::EPT];
  const T *qp = reinterpret_cast<const T *>(p.q) + ((size_t)t * p.num_heads + h0) * D + lig * VEC;
#pragma unroll
  for (int g = 0; g < GM; ++g) {
#pragma unroll
    for (int v = 0; v < NV; ++v) {
      const uint4 raw = g < nh ? ldg16(qp + g * D + v * TG * VEC) : make_uint4(0, 0, 0, 0);
      unpack16<T>(raw, &q[g][v * VEC]);
#pragma unroll
      for (int e = 0; e < VEC; ++e) q[g][v * VEC + e] *= p.scale;
    }
  }
  __syncthreads();

  const size_t slot_stride = (size_t)p.num_kv_heads * D;
  const T *kbase = reinterpret_cast<const T *>(p.k_cache) + (size_t)kvh * D + lig * VEC;
  const T *vbase = reinterpret_cast<const T *>(p.v_cache) + (size_t)kvh * D + lig * VEC;
  float *s_logit = s_buf;

  // ---- QK: logits of this partition into shared memory -------------------------------------
  for (int c0 = lo + warp * C::CH; c0 < hi; c0 += C::NW * C::CH) {
    uint4 kr4[UNROLL][NV];
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      const int j = c0 + u * TPW + tgi;
      const T *kp = kbase + (j < hi ? kv_row(s_table, first_blk, j, bs_log2, slot_stride) : 0);
#pragma unroll
      for (int v = 0; v < NV; ++v) kr4[u][v] = j < hi ? ldg16(kp + v * TG * VEC) : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      float acc[GM];
#pragma unroll
      for (int g = 0; g < GM; ++g) acc[g] = 0.f;
#pragma unroll
      for (int v = 0; v < NV; ++v) {
        float kf[VEC];
        unpack16<T>(kr4[u][v], kf);
#pragma unroll
        for (int e = 0; e < VEC; ++e) {
#pragma unroll
          for (int g = 0; g < GM; ++g) acc[g] = fmaf(q[g][v * VEC + e], kf[e], acc[g]);
        }
      }
      ReduceScatter<GM, TG / 2>::run(acc, lig);
      const int j = c0 + u * TPW + tgi;
      if (j < hi && lig % (TG / GM) == 0) s_logit[(j - lo) * GM + lig / (TG / GM)] = apply_softcap(acc[0], p.softcap);
    }
  }
  __syncthreads();

  // ---- softmax over the partition: thread tid owns head tid % GM ------------------------------
  const int gown = tid % GM;
  float mx = NEG_INF;
  for (int i = tid / GM; i < n; i += C::NT / GM) mx = fmaxf(mx, s_logit[i * GM + gown]);
#pragma unroll
  for (int m = 16; m >= GM; m >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, m));
  if (lane < GM) s_red[warp][lane] = mx;
  __syncthreads();
  mx = s_red[0][gown];
#pragma unroll
  for (int w = 1; w < C::NW; ++w) mx = fmaxf(mx, s_red[w][gown]);
  __syncthreads();
  float sum = 0.f;
  for (int i = tid / GM; i < n; i += C::NT / GM) {
    const float e = fast_exp(s_logit[i * GM + gown] - mx);
    s_logit[i * GM + gown] = e;
    sum += e;
  }
#pragma unroll
  for (int m = 16; m >= GM; m >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, m);
  if (lane < GM) s_red[warp][lane] = sum;
  __syncthreads();
  if (tid < GM) {
    float l = 0.f;
#pragma unroll
    for (int w = 0; w < C::NW; ++w) l += s_red[w][tid];
    s_m[tid] = mx;
    s_l[tid] = l;
  }

  // ---- PV --------------------------------------------------------------------------------------
  float acc[GM][C::EPT];
#pragma unroll
  for (int g = 0; g < GM; ++g) {
#pragma unroll
    for (int e = 0; e < C::EPT; ++e) acc[g][e] = 0.f;
  }
  for (int c0 = lo + warp * C::CH; c0 < hi; c0 += C::NW * C::CH) {
    uint4 vr4[UNROLL][NV];
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      const int j = c0 + u * TPW + tgi;
      const T *vp = vbase + (j < hi ? kv_row(s_table, first_blk, j, bs_log2, slot_stride) : 0);
#pragma unroll
      for (int v = 0; v < NV; ++v) vr4[u][v] = j < hi ? ldg16(vp + v * TG * VEC) : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      const int j = c0 + u * TPW + tgi;
      float w[GM];
#pragma unroll
      for (int g = 0; g < GM; ++g) w[g] = j < hi ? s_logit[(j - lo) * GM + g] : 0.f;
#pragma unroll
      for (int v = 0; v < NV; ++v) {
        float vf[VEC];
        unpack16<T>(vr4[u][v], vf);
#pragma unroll
        for (int e = 0; e < VEC; ++e) {
#pragma unroll
          for (int g = 0; g < GM; ++g) acc[g][v * VEC + e] = fmaf(w[g], vf[e], acc[g][v * VEC + e]);
        }
      }
    }
  }
  // Token groups of a warp hold different keys of the same dims: fold them together.
#pragma unroll
  for (int m = TG; m < 32; m <<= 1) {
#pragma unroll
    for (int g = 0; g < GM; ++g) {
#pragma unroll
      for (int e = 0; e < C::EPT; ++e) acc[g][e] += __shfl_xor_sync(0xffffffffu, acc[g][e], m);
    }
  }
  __syncthreads();  // every warp is done with the logits: reuse s_buf as [NW][GM][D]
  float *s_out = s_buf;
  if (tgi == 0) {
#pragma unroll
    for (int g = 0; g < GM; ++g) {
#pragma unroll
      for (int v = 0; v < NV; ++v) {
#pragma unroll
        for (int e = 0; e < VEC; e += 4) {
          *reinterpret_cast<float4 *>(&s_out[(warp * GM + g) * D + v * TG * VEC + lig * VEC + e]) =
              make_float4(acc[g][v * VEC + e], acc[g][v * VEC + e + 1], acc[g][v * VEC + e + 2],
                          acc[g][v * VEC + e + 3]);
        }
      }
    }
  }
  __syncthreads();

  // ---- epilogue: VEC consecutive dims of one head per thread ----------------------------------
  const bool split = p.tmp_out != nullptr;
  for (int idx = tid; idx < GM * (D / VEC); idx += C::NT) {
    const int g = idx / (D / VEC), d0 = (idx % (D / VEC)) * VEC;
    if (g >= nh) continue;
    float o[VEC];
#pragma unroll
    for (int e = 0; e < VEC; ++e) o[e] = 0.f;
#pragma unroll
    for (int w = 0; w < C::NW; ++w) {
#pragma unroll
      for (int e = 0; e < VEC; ++e) o[e] += s_out[(w * GM + g) * D + d0 + e];
    }
    const int h = h0 + g;
    const size_t row = (size_t)t * p.num_heads + h;
    if (split) {
      const size_t pr = row * p.max_parts + part;
#pragma unroll
      for (int e = 0; e < VEC; e += 4)
        *reinterpret_cast<float4 *>(p.tmp_out + pr * D + d0 + e) = make_float4(o[e], o[e + 1], o[e + 2], o[e + 3]);
      if (d0 == 0) {
        p.tmp_ml[pr * 2] = s_m[g];
        p.tmp_ml[pr * 2 + 1] = s_l[g];
      }
    } else {
      const float f = softmax_factor(s_m[g], s_l[g], p.sinks, h);
#pragma unroll
      for (int e = 0; e < VEC; ++e) o[e] *= f;
      st16(reinterpret_cast<T *>(p.out) + row * D + d0, pack16<T>(o));
    }
  }
}

}  // namespace lathe
