// Paged attention, prefill / chunked prefill / mixed batches: any number of query tokens per
// sequence. This is the simple tiled version on CUDA cores (f32 FMA from shared memory, flash
// attention's online softmax across key tiles); it is correct for every dtype and shape the
// decode kernel takes, but leaves the tensor cores idle (an mma.sync version is future work).
//
// Grid (tiles, KVH, partitions), 128 threads. A block owns BM "rows": QT consecutive query
// tokens of one sequence times all G query heads of one KV head (row r = token r / G, head
// r % G), so each K/V tile loaded into shared memory serves the whole GQA group. Tiles are
// numbered per sequence from tile_start(s) = query_start[s] / QT + s, so a block finds its
// sequence by binary search and the grid needs only T / QT + S blocks along x.
//
// Thread (rg, cg) of a 16 x 8 layout owns rows rg + 16·i and, for S = Q·Kᵀ, keys cg + 8·k of
// the tile; for O = P·V the dims cg·4 + 32·c (float4 chunks). The 8 lanes sharing a row group
// are consecutive lanes of one warp, so row max and sum need 3 shuffles.
#pragma once

#include "attention_common.cuh"

namespace lathe {

template <typename T, int D>
struct PrefillCfg {
  static constexpr int NT = 128, RG = 16, CG = 8;
  static constexpr int BM = D <= 128 ? 64 : 32;  // rows per block
  static constexpr int KT = 32;                  // keys per tile
  static constexpr int RPT = BM / RG;            // rows per thread
  static constexpr int KPT = KT / CG;            // keys per thread (S)
  static constexpr int DCH = D / (4 * CG);       // float4 chunks per thread (O)
  static constexpr int LDQ = D + 4;              // padded shared row strides (floats)
  static constexpr int LDP = KT + 4;
  static constexpr int VEC = Vec16<T>::N;
  static constexpr int QLOADS = BM * (D / VEC) / NT;  // 16-byte loads per thread per Q tile
  static constexpr int KLOADS = KT * (D / VEC) / NT;  // ... per K or V tile
  static constexpr int SMEM_BYTES = (BM * LDQ + KT * LDQ + BM * LDP) * 4;
  static_assert(D % (4 * CG) == 0 && QLOADS * NT == BM * (D / VEC) && KLOADS * NT == KT * (D / VEC),
                "unsupported head_dim");
};

// Loads keys [k0, k0 + KT) of one KV head into shared memory as f32; rows past `kend` are zero.
template <typename T, int D>
__device__ __forceinline__ void load_kv_tile(float *dst, const T *cache, const uint32_t *table, int k0, int kend,
                                             int bs_log2, size_t slot_stride) {
  using C = PrefillCfg<T, D>;
  constexpr int VPR = D / C::VEC;  // 16-byte vectors per row
  uint4 raw[C::KLOADS];
#pragma unroll
  for (int i = 0; i < C::KLOADS; ++i) {
    const int idx = threadIdx.x + i * C::NT, kk = idx / VPR, c = idx % VPR, j = k0 + kk;
    raw[i] = make_uint4(0, 0, 0, 0);
    if (j < kend) {
      const size_t blk = table[j >> bs_log2];
      const size_t slot = (blk << bs_log2) + (size_t)(j & ((1 << bs_log2) - 1));
      raw[i] = ldg16(cache + slot * slot_stride + c * C::VEC);
    }
  }
#pragma unroll
  for (int i = 0; i < C::KLOADS; ++i) {
    const int idx = threadIdx.x + i * C::NT, kk = idx / VPR, c = idx % VPR;
    float f[C::VEC];
    unpack16<T>(raw[i], f);
#pragma unroll
    for (int e = 0; e < C::VEC; e += 4)
      *reinterpret_cast<float4 *>(dst + kk * C::LDQ + c * C::VEC + e) = make_float4(f[e], f[e + 1], f[e + 2], f[e + 3]);
  }
}

template <typename T>
__device__ __forceinline__ void store4(T *dst, float a, float b, float c, float d) {
  dst[0] = from_float<T>(a);
  dst[1] = from_float<T>(b);
  dst[2] = from_float<T>(c);
  dst[3] = from_float<T>(d);
}

template <typename T, int D>
__device__ __forceinline__ void prefill_attention(const PagedAttnParams &p) {
  using C = PrefillCfg<T, D>;
  constexpr int RPT = C::RPT, KPT = C::KPT, DCH = C::DCH, LDQ = C::LDQ, LDP = C::LDP, VEC = C::VEC;
  extern __shared__ __align__(16) float smem[];
  float *sQ = smem;                 // [BM][LDQ]  scaled queries
  float *sKV = sQ + C::BM * LDQ;    // [KT][LDQ]  K tile, then V tile
  float *sP = sKV + C::KT * LDQ;    // [BM][LDP]  probabilities of the tile

  const int group = p.num_heads / p.num_kv_heads;
  const int qt = C::BM / group;  // query tokens per tile
  const int seq = upper_search(p.num_seqs, blockIdx.x,
                               [&](int i) { return (int)p.query_start[i] / qt + i; });
  const int q_begin = (int)p.query_start[seq];
  const int n_q = (int)p.query_start[seq + 1] - q_begin;
  const int t0 = ((int)blockIdx.x - (q_begin / qt + seq)) * qt;  // first token of the tile
  if (t0 >= n_q) return;
  const int kvh = blockIdx.y, part = blockIdx.z;
  const int ctx = (int)p.seq_lens[seq];
  const KeyRange kr = key_range(p, ctx, n_q);
  if (part >= kr.nparts) return;
  const int ntok = min(qt, n_q - t0);
  const int first_pos = ctx - n_q + t0;  // position of the tile's first token
  const int plo = kr.base + part * p.partition_size;
  const int phi = min(plo + p.partition_size, ctx);
  const int w = p.sliding_window;
  const int klo = max(plo, w > 0 ? first_pos - w + 1 : 0);
  const int khi = min(phi, first_pos + ntok);

  const int tid = threadIdx.x, rg = tid / C::CG, cg = tid % C::CG;
  const int nrows = ntok * group;

  // ---- Q tile, scaled, f32 ----------------------------------------------------------------------
  {
    constexpr int VPR = D / VEC;
    const T *q = reinterpret_cast<const T *>(p.q);
    uint4 raw[C::QLOADS];
#pragma unroll
    for (int i = 0; i < C::QLOADS; ++i) {
      const int idx = tid + i * C::NT, r = idx / VPR, c = idx % VPR;
      raw[i] = make_uint4(0, 0, 0, 0);
      if (r < nrows) {
        const size_t row = (size_t)(q_begin + t0 + r / group) * p.num_heads + kvh * group + r % group;
        raw[i] = ldg16(q + row * D + c * VEC);
      }
    }
#pragma unroll
    for (int i = 0; i < C::QLOADS; ++i) {
      const int idx = tid + i * C::NT, r = idx / VPR, c = idx % VPR;
      float f[VEC];
      unpack16<T>(raw[i], f);
#pragma unroll
      for (int e = 0; e < VEC; e += 4)
        *reinterpret_cast<float4 *>(sQ + r * LDQ + c * VEC + e) =
            make_float4(f[e] * p.scale, f[e + 1] * p.scale, f[e + 2] * p.scale, f[e + 3] * p.scale);
    }
  }

  int pos[RPT];  // position of each owned row, -1 for padding rows
  float m[RPT], l[RPT];
  float4 acc[RPT][DCH];
#pragma unroll
  for (int i = 0; i < RPT; ++i) {
    const int r = rg + C::RG * i;
    pos[i] = r < nrows ? first_pos + r / group : -1;
    m[i] = NEG_INF;
    l[i] = 0.f;
#pragma unroll
    for (int c = 0; c < DCH; ++c) acc[i][c] = make_float4(0.f, 0.f, 0.f, 0.f);
  }

  const uint32_t *table = p.block_tables + (size_t)seq * p.max_blocks;
  const size_t slot_stride = (size_t)p.num_kv_heads * D;
  const T *kc = reinterpret_cast<const T *>(p.k_cache) + (size_t)kvh * D;
  const T *vc = reinterpret_cast<const T *>(p.v_cache) + (size_t)kvh * D;

  for (int k0 = klo; k0 < khi; k0 += C::KT) {
    load_kv_tile<T, D>(sKV, kc, table, k0, khi, p.block_size_log2, slot_stride);
    __syncthreads();  // Q (first pass) and K tile visible

    // S = Q Kᵀ for RPT rows x KPT keys
    float sc[RPT][KPT];
#pragma unroll
    for (int i = 0; i < RPT; ++i) {
#pragma unroll
      for (int k = 0; k < KPT; ++k) sc[i][k] = 0.f;
    }
#pragma unroll 4
    for (int d = 0; d < D; d += 4) {
      float4 qv[RPT], kv[KPT];
#pragma unroll
      for (int i = 0; i < RPT; ++i) qv[i] = *reinterpret_cast<const float4 *>(sQ + (rg + C::RG * i) * LDQ + d);
#pragma unroll
      for (int k = 0; k < KPT; ++k) kv[k] = *reinterpret_cast<const float4 *>(sKV + (cg + C::CG * k) * LDQ + d);
#pragma unroll
      for (int i = 0; i < RPT; ++i) {
#pragma unroll
        for (int k = 0; k < KPT; ++k) {
          sc[i][k] = fmaf(qv[i].x, kv[k].x, sc[i][k]);
          sc[i][k] = fmaf(qv[i].y, kv[k].y, sc[i][k]);
          sc[i][k] = fmaf(qv[i].z, kv[k].z, sc[i][k]);
          sc[i][k] = fmaf(qv[i].w, kv[k].w, sc[i][k]);
        }
      }
    }

    // mask, online softmax, P to shared memory, rescale the accumulators
#pragma unroll
    for (int i = 0; i < RPT; ++i) {
      float tmax = NEG_INF;
#pragma unroll
      for (int k = 0; k < KPT; ++k) {
        const int j = k0 + cg + C::CG * k;
        const bool ok = j < khi && j <= pos[i] && (w <= 0 || j > pos[i] - w);
        sc[i][k] = ok ? apply_softcap(sc[i][k], p.softcap) : NEG_INF;
        tmax = fmaxf(tmax, sc[i][k]);
      }
#pragma unroll
      for (int s = 1; s < C::CG; s <<= 1) tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, s));
      const float mnew = fmaxf(m[i], tmax);
      const float mref = mnew == NEG_INF ? 0.f : mnew;  // nothing seen yet: keep exp() finite
      const float alpha = fast_exp(m[i] - mref);
      float psum = 0.f;
#pragma unroll
      for (int k = 0; k < KPT; ++k) {
        const float pk = fast_exp(sc[i][k] - mref);
        sP[(rg + C::RG * i) * LDP + cg + C::CG * k] = pk;
        psum += pk;
      }
#pragma unroll
      for (int s = 1; s < C::CG; s <<= 1) psum += __shfl_xor_sync(0xffffffffu, psum, s);
      l[i] = l[i] * alpha + psum;
      m[i] = mnew;
#pragma unroll
      for (int c = 0; c < DCH; ++c) {
        acc[i][c].x *= alpha;
        acc[i][c].y *= alpha;
        acc[i][c].z *= alpha;
        acc[i][c].w *= alpha;
      }
    }
    __syncthreads();  // K tile consumed, P complete
    load_kv_tile<T, D>(sKV, vc, table, k0, khi, p.block_size_log2, slot_stride);
    __syncthreads();

    // O += P V
#pragma unroll 4
    for (int kk = 0; kk < C::KT; ++kk) {
      float4 vv[DCH];
#pragma unroll
      for (int c = 0; c < DCH; ++c) vv[c] = *reinterpret_cast<const float4 *>(sKV + kk * LDQ + cg * 4 + 32 * c);
#pragma unroll
      for (int i = 0; i < RPT; ++i) {
        const float pw = sP[(rg + C::RG * i) * LDP + kk];
#pragma unroll
        for (int c = 0; c < DCH; ++c) {
          acc[i][c].x = fmaf(pw, vv[c].x, acc[i][c].x);
          acc[i][c].y = fmaf(pw, vv[c].y, acc[i][c].y);
          acc[i][c].z = fmaf(pw, vv[c].z, acc[i][c].z);
          acc[i][c].w = fmaf(pw, vv[c].w, acc[i][c].w);
        }
      }
    }
    __syncthreads();  // V tile and P consumed before the next tile overwrites them
  }

  // ---- epilogue -----------------------------------------------------------------------------
  const bool split = p.tmp_out != nullptr;
#pragma unroll
  for (int i = 0; i < RPT; ++i) {
    const int r = rg + C::RG * i;
    if (r >= nrows) continue;
    const int h = kvh * group + r % group;
    const size_t row = (size_t)(q_begin + t0 + r / group) * p.num_heads + h;
    if (split) {
      const size_t pr = row * p.max_parts + part;
#pragma unroll
      for (int c = 0; c < DCH; ++c) *reinterpret_cast<float4 *>(p.tmp_out + pr * D + cg * 4 + 32 * c) = acc[i][c];
      if (cg == 0) {
        p.tmp_ml[pr * 2] = m[i];
        p.tmp_ml[pr * 2 + 1] = l[i];
      }
    } else {
      const float f = softmax_factor(m[i], l[i], p.sinks, h);
      T *o = reinterpret_cast<T *>(p.out) + row * D + cg * 4;
#pragma unroll
      for (int c = 0; c < DCH; ++c) store4<T>(o + 32 * c, acc[i][c].x * f, acc[i][c].y * f, acc[i][c].z * f, acc[i][c].w * f);
    }
  }
}

}  // namespace lathe
