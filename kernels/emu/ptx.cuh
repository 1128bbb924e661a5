// CPU emulation of kernels/include/ptx.cuh (cp.async, ldmatrix, mma.sync m16n8k16, pack2) for
// the emulated kernel tests. Fragment layouts from the PTX ISA, "Matrix Fragments for
// mma.m16n8k16 with floating point type": groupID g = lane >> 2, t = lane % 4;
//   A (16x16, 4 regs): {A[g][2t..2t+1]}, {A[g+8][2t..]}, {A[g][2t+8..]}, {A[g+8][2t+8..]}
//   B (16x8,  2 regs): {B[2t..2t+1][g]}, {B[2t+8..2t+9][g]}
//   C (16x8,  4 f32) : C[g][2t], C[g][2t+1], C[g+8][2t], C[g+8][2t+1]
// ldmatrix .x4: lane 8i + r gives the address of row r of matrix i; lane L receives from
// matrix i the pair (row L/4, cols 2(L%4), +1), or with .trans (rows 2(L%4), +1; col L/4).
// cp.async copies are deferred until the cp.async.wait_group that covers their group.
#pragma once

#include "common.cuh"

namespace lathe {

namespace emu_ptx {
struct Pending {
  void *dst;
  unsigned char data[16];
  int group;
};
inline std::vector<Pending> g_pending[1024];
inline int g_committed[1024];
inline bool g_hooked = [] {
  emu::block_start_hooks().push_back([](int n) {
    for (int i = 0; i < n; ++i) {
      g_pending[i].clear();
      g_committed[i] = 0;
    }
  });
  return true;
}();
inline float half_to_float(bf16 v) { return to_float(v); }
inline float half_to_float(f16 v) { return to_float(v); }
template <typename T> inline float lo(uint32_t r) { T v; uint16_t b = (uint16_t)(r & 0xffffu); memcpy(&v, &b, 2); return to_float(v); }
template <typename T> inline float hi(uint32_t r) { T v; uint16_t b = (uint16_t)(r >> 16); memcpy(&v, &b, 2); return to_float(v); }
}  // namespace emu_ptx

inline void cp_async16(void *dst, const void *src, bool pred) {
  emu_ptx::Pending p;
  p.dst = dst;
  p.group = emu_ptx::g_committed[threadIdx.x];
  if (pred) memcpy(p.data, src, 16); else memset(p.data, 0, 16);
  emu_ptx::g_pending[threadIdx.x].push_back(p);
}
inline void cp_async_commit() { emu_ptx::g_committed[threadIdx.x]++; }
template <int N> inline void cp_async_wait() {
  auto &v = emu_ptx::g_pending[threadIdx.x];
  const int limit = emu_ptx::g_committed[threadIdx.x] - N;
  std::vector<emu_ptx::Pending> keep;
  for (auto &p : v) {
    if (p.group < limit) memcpy(p.dst, p.data, 16); else keep.push_back(p);
  }
  v.swap(keep);
}

inline void ldmatrix_x4_impl(uint32_t (&r)[4], const void *p, bool trans) {
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  emu::g_xp[w][lane] = p;
  emu::sync_warp();
  for (int i = 0; i < 4; ++i) {
    uint16_t a, b;
    if (!trans) {
      const uint16_t *row = static_cast<const uint16_t *>(emu::g_xp[w][8 * i + lane / 4]);
      a = row[2 * (lane % 4)];
      b = row[2 * (lane % 4) + 1];
    } else {
      a = static_cast<const uint16_t *>(emu::g_xp[w][8 * i + 2 * (lane % 4)])[lane / 4];
      b = static_cast<const uint16_t *>(emu::g_xp[w][8 * i + 2 * (lane % 4) + 1])[lane / 4];
    }
    r[i] = (uint32_t)a | ((uint32_t)b << 16);
  }
  emu::sync_warp();
}
inline void ldmatrix_x4(uint32_t (&r)[4], const void *p) { ldmatrix_x4_impl(r, p, false); }
inline void ldmatrix_x4_trans(uint32_t (&r)[4], const void *p) { ldmatrix_x4_impl(r, p, true); }

template <typename T>
inline void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  uint32_t *x = emu::g_xu[w][lane];
  for (int i = 0; i < 4; ++i) x[i] = a[i];
  x[4] = b0;
  x[5] = b1;
  emu::sync_warp();
  float A[16][16], B[16][8];
  for (int l = 0; l < 32; ++l) {
    const int g = l >> 2, t = l & 3;
    const uint32_t *y = emu::g_xu[w][l];
    A[g][2 * t] = emu_ptx::lo<T>(y[0]);       A[g][2 * t + 1] = emu_ptx::hi<T>(y[0]);
    A[g + 8][2 * t] = emu_ptx::lo<T>(y[1]);   A[g + 8][2 * t + 1] = emu_ptx::hi<T>(y[1]);
    A[g][2 * t + 8] = emu_ptx::lo<T>(y[2]);   A[g][2 * t + 9] = emu_ptx::hi<T>(y[2]);
    A[g + 8][2 * t + 8] = emu_ptx::lo<T>(y[3]); A[g + 8][2 * t + 9] = emu_ptx::hi<T>(y[3]);
    B[2 * t][g] = emu_ptx::lo<T>(y[4]);       B[2 * t + 1][g] = emu_ptx::hi<T>(y[4]);
    B[2 * t + 8][g] = emu_ptx::lo<T>(y[5]);   B[2 * t + 9][g] = emu_ptx::hi<T>(y[5]);
  }
  emu::sync_warp();
  const int g = lane >> 2, t = lane & 3;
  const int rows[4] = {g, g, g + 8, g + 8}, cols[4] = {2 * t, 2 * t + 1, 2 * t, 2 * t + 1};
  for (int i = 0; i < 4; ++i) {
    float s = c[i];
    for (int k = 0; k < 16; ++k) s += A[rows[i]][k] * B[k][cols[i]];
    c[i] = s;
  }
}

template <typename T> inline uint32_t pack2(float lo, float hi);
template <> inline uint32_t pack2<bf16>(float lo, float hi) {
  const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
  uint32_t r;
  memcpy(&r, &h, 4);
  return r;
}
template <> inline uint32_t pack2<f16>(float lo, float hi) {
  const __half2 h = __floats2half2_rn(lo, hi);
  uint32_t r;
  memcpy(&r, &h, 4);
  return r;
}

}  // namespace lathe
