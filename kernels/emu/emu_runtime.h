// A CPU stand-in for the parts of CUDA that lathe's kernels use, so that the kernels' own
// source can be compiled by g++ and run on a machine without a GPU (kernels/emu/run.sh).
//
// One block runs at a time; each of its threads is a ucontext fiber on a single OS thread,
// switched cooperatively at barriers. __syncthreads is a block barrier, __shfl_xor_sync a warp
// barrier plus an exchange buffer, so a shuffle that not all lanes of a warp reach, or a
// __syncthreads inside divergent code, deadlocks and is reported. Shared arrays become static
// locals (one block at a time shares them); dynamic shared memory is one buffer filled with
// 0xff (NaN for every float type) at each launch. Not modelled: memory races between threads
// (the fibers only interleave at barriers), timing, and anything not used by the kernels.
#pragma once

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#include <algorithm>
#include <functional>
#include <vector>

#define __device__
#define __host__
#define __global__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __shared__ static

using std::max;
using std::min;

struct uint4 { uint32_t x, y, z, w; };
struct float4 { float x, y, z, w; };
struct float2 { float x, y; };
struct dim3 { unsigned x = 1, y = 1, z = 1; };
inline uint4 make_uint4(uint32_t x, uint32_t y, uint32_t z, uint32_t w) { return {x, y, z, w}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline float2 make_float2(float x, float y) { return {x, y}; }

inline float __uint_as_float(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
inline uint32_t __float_as_uint(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
template <typename T> inline T __ldg(const T *p) { return *p; }

// ---- bf16 / f16 --------------------------------------------------------------------------------
struct __nv_bfloat16 { uint16_t x; };
struct __nv_bfloat162 { __nv_bfloat16 x, y; };
struct __half { uint16_t x; };
struct __half2 { __half x, y; };

inline float __bfloat162float(__nv_bfloat16 v) { return __uint_as_float((uint32_t)v.x << 16); }
inline __nv_bfloat16 __float2bfloat16_rn(float f) {
  uint32_t u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return {0x7fc0};
  u += 0x7fffu + ((u >> 16) & 1u);
  return {(uint16_t)(u >> 16)};
}
inline __nv_bfloat162 __floats2bfloat162_rn(float a, float b) { return {__float2bfloat16_rn(a), __float2bfloat16_rn(b)}; }
inline float __half2float(__half h) { _Float16 f; memcpy(&f, &h.x, 2); return (float)f; }
inline __half __float2half_rn(float f) { _Float16 h = (_Float16)f; __half r; memcpy(&r.x, &h, 2); return r; }
inline __half2 __floats2half2_rn(float a, float b) { return {__float2half_rn(a), __float2half_rn(b)}; }
inline float2 __half22float2(__half2 h) { return {__half2float(h.x), __half2float(h.y)}; }

// ---- threads, barriers, shuffles ---------------------------------------------------------------
inline dim3 threadIdx, blockIdx, blockDim, gridDim;

namespace emu {

struct Fiber {
  ucontext_t ctx;
  std::vector<char> stack;
  bool done = false;
};
struct Barrier {
  int count = 0;
  long gen = 0;
};

inline ucontext_t g_sched;
inline std::vector<Fiber> g_fibers;
inline int g_cur = 0, g_alive = 0;
inline int g_warp_alive[32];
inline long g_progress = 0;
inline Barrier g_block_bar, g_warp_bar[32];
inline std::vector<unsigned char> g_dyn_smem;
inline std::function<void()> g_kernel;
inline float g_xf[32][32];
inline const void *g_xp[32][32];
inline uint32_t g_xu[32][32][10];

inline unsigned char *dynamic_smem() { return g_dyn_smem.data(); }

inline void yield() { swapcontext(&g_fibers[g_cur].ctx, &g_sched); }

inline void release_if_complete(Barrier &b, int expected) {
  if (b.count > 0 && b.count >= expected) {
    b.count = 0;
    b.gen++;
  }
}

inline void arrive(Barrier &b, const int &expected) {
  const long gen = b.gen;
  g_progress++;
  b.count++;
  release_if_complete(b, expected);
  while (b.gen == gen) yield();
}

inline void sync_block() { arrive(g_block_bar, g_alive); }
inline void sync_warp() {
  const int w = threadIdx.x >> 5;
  arrive(g_warp_bar[w], g_warp_alive[w]);
}

inline void fiber_entry() {
  g_kernel();
  const int w = threadIdx.x >> 5;
  g_fibers[g_cur].done = true;
  g_alive--;
  g_warp_alive[w]--;
  g_progress++;
  release_if_complete(g_block_bar, g_alive);
  release_if_complete(g_warp_bar[w], g_warp_alive[w]);
}

// Per-thread hooks reset at each block (cp.async emulation lives in kernels/emu/ptx.cuh).
inline std::vector<std::function<void(int)>> &block_start_hooks() {
  static std::vector<std::function<void(int)>> hooks;
  return hooks;
}

inline void run_block(int nthreads) {
  if (g_fibers.size() < (size_t)nthreads) g_fibers.resize(nthreads);
  g_alive = nthreads;
  for (int w = 0; w < 32; ++w) g_warp_alive[w] = std::max(0, std::min(32, nthreads - 32 * w));
  g_block_bar = Barrier();
  for (auto &b : g_warp_bar) b = Barrier();
  for (auto &h : block_start_hooks()) h(nthreads);
  for (int i = 0; i < nthreads; ++i) {
    Fiber &f = g_fibers[i];
    f.stack.resize(256 * 1024);
    f.done = false;
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = f.stack.data();
    f.ctx.uc_stack.ss_size = f.stack.size();
    f.ctx.uc_link = &g_sched;
    makecontext(&f.ctx, fiber_entry, 0);
  }
  while (g_alive > 0) {
    const long before = g_progress;
    for (int i = 0; i < nthreads; ++i) {
      if (g_fibers[i].done) continue;
      g_cur = i;
      threadIdx.x = i;
      swapcontext(&g_sched, &g_fibers[i].ctx);
    }
    if (g_progress == before) {
      fprintf(stderr, "emu: deadlock in block (%u,%u,%u): a barrier or shuffle not reached by all threads\n",
              blockIdx.x, blockIdx.y, blockIdx.z);
      abort();
    }
  }
}

// Runs kernel() for every block of the grid, blockDim.x threads each (1-D blocks only).
inline void launch(dim3 grid, unsigned threads, size_t dyn_smem, std::function<void()> kernel) {
  gridDim = grid;
  blockDim = dim3{threads, 1, 1};
  g_dyn_smem.assign(dyn_smem + 16, 0xff);
  g_kernel = std::move(kernel);
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) {
        blockIdx = dim3{x, y, z};
        run_block((int)threads);
      }
}

}  // namespace emu

inline void __syncthreads() { emu::sync_block(); }

inline float __shfl_xor_sync(unsigned, float v, int mask) {
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  emu::g_xf[w][lane] = v;
  emu::sync_warp();
  const float r = emu::g_xf[w][lane ^ mask];
  emu::sync_warp();
  return r;
}
