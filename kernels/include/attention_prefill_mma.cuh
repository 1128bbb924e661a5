// Paged attention, prefill on tensor cores (bf16 / f16, head_dim 64 and 128): flash-attention-2
// style with mma.sync.m16n8k16 (sm_80+), f32 accumulation, online softmax in the exp2 domain.
//
// Same grid, row packing and split-K contract as the CUDA-core kernel (attention_prefill.cuh):
// a block owns BM = 64 rows = QT query tokens x G heads of one KV head, and one partition of
// keys. 4 warps; warp w owns rows 16w .. 16w + 15 for the whole key range, so softmax
// statistics never leave a warp (a quad of 4 lanes shares each row).
//
// Per key tile of KT = 64 keys:  S = Q Kᵀ (Q fragments stay in registers, K via ldmatrix),
// scale / soft-cap / causal + window mask, online softmax, P packed to bf16 straight from the S
// accumulators into A fragments, O += P V (V via ldmatrix.trans). K and V tiles arrive by
// cp.async (zero-filled past the last key); the next K tile loads while softmax and P·V run.
// Shared rows are padded by 16 bytes so ldmatrix is free of bank conflicts.
#pragma once

#include "attention_common.cuh"
#include "ptx.cuh"

namespace lathe {

template <typename T, int D>
struct MmaCfg {
  static constexpr int NT = 128;
  static constexpr int BM = 64;              // rows per block, 16 per warp
  static constexpr int KT = 64;              // keys per tile
  static constexpr int LDS = D + 8;          // padded shared row, elements
  static constexpr int CPR = D / 8;          // 16-byte chunks per row
  static constexpr int NKS = D / 16;         // k-steps of Q·Kᵀ
  static constexpr int NDT = D / 8;          // n-tiles of the output
  static constexpr int NST = KT / 8;         // n-tiles of S
  static constexpr int SMEM_BYTES = (BM + 2 * KT) * LDS * 2;
  static_assert(D == 64 || D == 128, "tensor-core prefill covers head_dim 64 and 128");
};

// Async load of keys [k0, k0 + KT) of one KV head into a padded shared tile.
template <typename T, int D>
__device__ __forceinline__ void mma_load_tile(T *dst, const T *cache, const uint32_t *table, int k0, int kend,
                                              int bs_log2, size_t slot_stride) {
  using C = MmaCfg<T, D>;
#pragma unroll
  for (int i = 0; i < C::KT * C::CPR / C::NT; ++i) {
    const int idx = threadIdx.x + i * C::NT, kk = idx / C::CPR, c = idx % C::CPR, j = k0 + kk;
    const T *src = cache;
    if (j < kend) {
      const size_t blk = table[j >> bs_log2];
      src = cache + ((blk << bs_log2) + (size_t)(j & ((1 << bs_log2) - 1))) * slot_stride + c * 8;
    }
    cp_async16(dst + kk * C::LDS + c * 8, src, j < kend);
  }
}

template <typename T, int D>
__device__ __forceinline__ void prefill_attention_mma(const PagedAttnParams &p) {
  using C = MmaCfg<T, D>;
  constexpr float LOG2E = 1.4426950408889634f, LN2 = 0.6931471805599453f;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T *sQ = reinterpret_cast<T *>(smem_raw);  // [BM][LDS]
  T *sK = sQ + C::BM * C::LDS;              // [KT][LDS]
  T *sV = sK + C::KT * C::LDS;              // [KT][LDS]

  // ---- which rows and keys (same as the CUDA-core kernel) -------------------------------------
  const int group = p.num_heads / p.num_kv_heads;
  const int qt = C::BM / group;
  const int seq = upper_search(p.num_seqs, blockIdx.x, [&](int i) { return (int)p.query_start[i] / qt + i; });
  const int q_begin = (int)p.query_start[seq];
  const int n_q = (int)p.query_start[seq + 1] - q_begin;
  const int t0 = ((int)blockIdx.x - (q_begin / qt + seq)) * qt;
  if (t0 >= n_q) return;
  const int kvh = blockIdx.y, part = blockIdx.z;
  const int ctx = (int)p.seq_lens[seq];
  const KeyRange kr = key_range(p, ctx, n_q);
  if (part >= kr.nparts) return;
  const int ntok = min(qt, n_q - t0);
  const int first_pos = ctx - n_q + t0;
  const int plo = kr.base + part * p.partition_size;
  const int phi = min(plo + p.partition_size, ctx);
  const int w = p.sliding_window;
  const int klo = max(plo, w > 0 ? first_pos - w + 1 : 0);
  const int khi = min(phi, first_pos + ntok);
  const int nrows = ntok * group;

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, tq = lane & 3;  // fragment row / column pair
  const uint32_t *table = p.block_tables + (size_t)seq * p.max_blocks;
  const size_t slot_stride = (size_t)p.num_kv_heads * D;
  const T *kc = reinterpret_cast<const T *>(p.k_cache) + (size_t)kvh * D;
  const T *vc = reinterpret_cast<const T *>(p.v_cache) + (size_t)kvh * D;

  // ---- Q: shared, then fragments in registers ---------------------------------------------------
  {
    const T *q = reinterpret_cast<const T *>(p.q);
#pragma unroll
    for (int i = 0; i < C::BM * C::CPR / C::NT; ++i) {
      const int idx = tid + i * C::NT, r = idx / C::CPR, c = idx % C::CPR;
      const size_t row = (size_t)(q_begin + t0 + r / group) * p.num_heads + kvh * group + r % group;
      cp_async16(sQ + r * C::LDS + c * 8, r < nrows ? q + row * D + c * 8 : q, r < nrows);
    }
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();
  }
  uint32_t qf[C::NKS][4];
  {
    const int mi = lane >> 3, rr = lane & 7;
#pragma unroll
    for (int ks = 0; ks < C::NKS; ++ks)
      ldmatrix_x4(qf[ks], sQ + (warp * 16 + (mi & 1) * 8 + rr) * C::LDS + ks * 16 + (mi >> 1) * 8);
  }
  const int r0 = warp * 16 + g, r1 = r0 + 8;  // this lane's two rows
  const int pos0 = r0 < nrows ? first_pos + r0 / group : -1;
  const int pos1 = r1 < nrows ? first_pos + r1 / group : -1;

  float o[C::NDT][4];
#pragma unroll
  for (int n = 0; n < C::NDT; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
  float m0 = NEG_INF, m1 = NEG_INF, l0 = 0.f, l1 = 0.f;  // log2 domain; l per lane (quad-partial)
  const float qk_scale = p.scale * (p.softcap > 0.f ? 1.f : LOG2E);

  if (klo < khi) {
    mma_load_tile<T, D>(sK, kc, table, klo, khi, p.block_size_log2, slot_stride);
    cp_async_commit();
    mma_load_tile<T, D>(sV, vc, table, klo, khi, p.block_size_log2, slot_stride);
    cp_async_commit();
  }
  for (int k0 = klo; k0 < khi; k0 += C::KT) {
    const bool more = k0 + C::KT < khi;
    cp_async_wait<1>();
    __syncthreads();  // K tile visible

    // S = Q Kᵀ: 16 rows x KT keys per warp
    float s[C::NST][4];
#pragma unroll
    for (int n = 0; n < C::NST; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
    {
      const int mi = lane >> 3, rr = lane & 7;
#pragma unroll
      for (int ks = 0; ks < C::NKS; ++ks) {
#pragma unroll
        for (int n = 0; n < C::NST; n += 2) {
          uint32_t b[4];
          ldmatrix_x4(b, sK + ((n + (mi >> 1)) * 8 + rr) * C::LDS + ks * 16 + (mi & 1) * 8);
          mma16816<T>(s[n], qf[ks], b[0], b[1]);
          mma16816<T>(s[n + 1], qf[ks], b[2], b[3]);
        }
      }
    }
    __syncthreads();  // every warp is done with sK
    if (more) {
      mma_load_tile<T, D>(sK, kc, table, k0 + C::KT, khi, p.block_size_log2, slot_stride);
      cp_async_commit();
    }

    // scale, soft-cap, mask (in the log2 domain), online softmax
    float mx0 = NEG_INF, mx1 = NEG_INF;
#pragma unroll
    for (int n = 0; n < C::NST; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int j = k0 + n * 8 + 2 * tq + (e & 1);
        const int pos = e < 2 ? pos0 : pos1;
        float x = s[n][e] * qk_scale;
        if (p.softcap > 0.f) x = apply_softcap(x, p.softcap) * LOG2E;
        const bool ok = j < khi && j <= pos && (w <= 0 || j > pos - w);
        s[n][e] = ok ? x : NEG_INF;
      }
      mx0 = fmaxf(mx0, fmaxf(s[n][0], s[n][1]));
      mx1 = fmaxf(mx1, fmaxf(s[n][2], s[n][3]));
    }
    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
    const float mn0 = fmaxf(m0, mx0), mn1 = fmaxf(m1, mx1);
    const float ref0 = mn0 == NEG_INF ? 0.f : mn0, ref1 = mn1 == NEG_INF ? 0.f : mn1;
    const float a0 = exp2f(m0 - ref0), a1 = exp2f(m1 - ref1);
    m0 = mn0;
    m1 = mn1;
    l0 *= a0;
    l1 *= a1;
#pragma unroll
    for (int n = 0; n < C::NDT; ++n) {
      o[n][0] *= a0;
      o[n][1] *= a0;
      o[n][2] *= a1;
      o[n][3] *= a1;
    }
    uint32_t pf[C::KT / 16][4];  // P as A fragments, one per 16 keys
#pragma unroll
    for (int n = 0; n < C::NST; ++n) {
      const float e0 = exp2f(s[n][0] - ref0), e1 = exp2f(s[n][1] - ref0);
      const float e2 = exp2f(s[n][2] - ref1), e3 = exp2f(s[n][3] - ref1);
      l0 += e0 + e1;
      l1 += e2 + e3;
      pf[n >> 1][(n & 1) * 2] = pack2<T>(e0, e1);
      pf[n >> 1][(n & 1) * 2 + 1] = pack2<T>(e2, e3);
    }

    if (more) cp_async_wait<1>(); else cp_async_wait<0>();
    __syncthreads();  // V tile visible

    // O += P V
    {
      const int mi = lane >> 3, rr = lane & 7;
#pragma unroll
      for (int ks = 0; ks < C::KT / 16; ++ks) {
#pragma unroll
        for (int n = 0; n < C::NDT; n += 2) {
          uint32_t b[4];
          ldmatrix_x4_trans(b, sV + (ks * 16 + (mi & 1) * 8 + rr) * C::LDS + (n + (mi >> 1)) * 8);
          mma16816<T>(o[n], pf[ks], b[0], b[1]);
          mma16816<T>(o[n + 1], pf[ks], b[2], b[3]);
        }
      }
    }
    __syncthreads();  // every warp is done with sV
    if (more) {
      mma_load_tile<T, D>(sV, vc, table, k0 + C::KT, khi, p.block_size_log2, slot_stride);
      cp_async_commit();
    }
  }

  // ---- epilogue: quad-reduce l, write two rows per lane -----------------------------------------
  l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
  l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
  l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
  l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
  const bool split = p.tmp_out != nullptr;
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int r = half ? r1 : r0;
    if (r >= nrows) continue;
    const float m = (half ? m1 : m0) * LN2, l = half ? l1 : l0;  // back to natural log
    const int h = kvh * group + r % group;
    const size_t row = (size_t)(q_begin + t0 + r / group) * p.num_heads + h;
    if (split) {
      const size_t pr = row * p.max_parts + part;
#pragma unroll
      for (int n = 0; n < C::NDT; ++n)
        *reinterpret_cast<float2 *>(p.tmp_out + pr * D + n * 8 + 2 * tq) = make_float2(o[n][2 * half], o[n][2 * half + 1]);
      if (tq == 0) {
        p.tmp_ml[pr * 2] = m;
        p.tmp_ml[pr * 2 + 1] = l;
      }
    } else {
      const float f = softmax_factor(m, l, p.sinks, h);
      T *out = reinterpret_cast<T *>(p.out) + row * D + 2 * tq;
#pragma unroll
      for (int n = 0; n < C::NDT; ++n)
        *reinterpret_cast<uint32_t *>(out + n * 8) = pack2<T>(o[n][2 * half] * f, o[n][2 * half + 1] * f);
    }
  }
}

}  // namespace lathe
