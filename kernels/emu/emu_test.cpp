// Runs lathe's CUDA kernels on the CPU through emu_runtime.h and compares them with plain C++
// twins of crates/lathe-kernels/src/reference.rs. Built and run by kernels/emu/run.sh.
//
// This checks the kernels' logic (indexing, masking, split-K, softmax, fragment layouts as
// the PTX ISA documents them) where no GPU exists; it does not replace the GPU tests
// (crates/lathe-kernels/tests/gpu_kernels.rs), which also exercise the Rust launch code.
// The launch decisions below mirror crates/lathe-kernels/src/cuda/attention.rs.
#include <algorithm>
#include <random>
#include <string>

#include "paged_attention.cu"
#include "write_kv.cu"
#include "add_rms_norm.cu"
#include "rope.cu"
#include "silu_and_mul.cu"
#include "moe.cu"

using lathe::bf16;
using lathe::f16;

static int g_failures = 0;
static std::mt19937 g_rng(12345);

template <typename T> const char *tname();
template <> const char *tname<float>() { return "f32"; }
template <> const char *tname<bf16>() { return "bf16"; }
template <> const char *tname<f16>() { return "f16"; }
template <typename T> double tol() { return sizeof(T) == 4 ? 1e-3 : 1e-2; }

template <typename T> std::vector<T> randn(size_t n, float scale) {
  std::normal_distribution<float> d(0.f, scale);
  std::vector<T> v(n);
  for (auto &x : v) x = lathe::from_float<T>(d(g_rng));
  return v;
}
template <typename T> std::vector<T> nans(size_t n) { return std::vector<T>(n, lathe::from_float<T>(NAN)); }
template <typename T> float f(T x) { return lathe::to_float(x); }

template <typename T> void check(const std::string &what, const std::vector<T> &got, const std::vector<float> &want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const float g = f(got[i]);
    if (!std::isfinite(g)) {
      printf("FAIL %-60s %s: non-finite output at %zu of %zu\n", what.c_str(), tname<T>(), i, got.size());
      g_failures++;
      return;
    }
    num += (g - (double)want[i]) * (g - (double)want[i]);
    den += (double)want[i] * want[i];
  }
  const double err = sqrt(num / std::max(den, 1e-30));
  const bool ok = err < tol<T>();
  if (!ok) g_failures++;
  printf("%s %-60s %-4s rel err %.2e\n", ok ? "ok  " : "FAIL", what.c_str(), tname<T>(), err);
}

// ---- paged attention ----------------------------------------------------------------------------

struct Case {
  int H, KVH, D, BS;
  std::vector<std::pair<int, int>> seqs;  // (context incl. new tokens, new tokens)
  int window = 0;
  float softcap = 0.f;
  bool sinks = false;
};

// reference::paged_attention
static void reference_attention(const Case &c, const std::vector<float> &q, const std::vector<float> &k,
                                const std::vector<float> &v, const std::vector<uint32_t> &tables, int max_blocks,
                                const std::vector<float> &sinks, std::vector<float> &out) {
  const int H = c.H, D = c.D, group = c.H / c.KVH;
  const float scale = 1.f / sqrtf((float)D);
  int t = 0;
  for (size_t s = 0; s < c.seqs.size(); ++s) {
    const auto [ctx, n] = c.seqs[s];
    for (int i = 0; i < n; ++i, ++t) {
      const int pos = ctx - n + i;
      const int lo = c.window > 0 ? std::max(0, pos + 1 - c.window) : 0;
      for (int h = 0; h < H; ++h) {
        const int kvh = h / group;
        std::vector<float> logits;
        float mx = -INFINITY;
        auto off = [&](int j) {
          const size_t slot = (size_t)tables[s * max_blocks + j / c.BS] * c.BS + j % c.BS;
          return (slot * c.KVH + kvh) * D;
        };
        for (int j = lo; j <= pos; ++j) {
          float dot = 0;
          for (int d = 0; d < D; ++d) dot += q[((size_t)t * H + h) * D + d] * k[off(j) + d];
          float l = dot * scale;
          if (c.softcap > 0) l = c.softcap * tanhf(l / c.softcap);
          mx = std::max(mx, l);
          logits.push_back(l);
        }
        if (c.sinks) mx = std::max(mx, sinks[h]);
        float den = c.sinks ? expf(sinks[h] - mx) : 0.f;
        for (auto &l : logits) den += (l = expf(l - mx));
        for (int d = 0; d < D; ++d) {
          float acc = 0;
          for (int j = lo; j <= pos; ++j) acc += logits[j - lo] * v[off(j) + d];
          out[((size_t)t * H + h) * D + d] = acc / den;
        }
      }
    }
  }
}

template <typename T, int D>
static std::string launch_attention(const Case &c, lathe::PagedAttnParams p, int max_q, int max_seq, bool want_mma,
                                    std::vector<float> &tmp_out, std::vector<float> &tmp_ml) {
  const int S = (int)c.seqs.size(), T_ = p.num_tokens, H = c.H, KVH = c.KVH, group = H / KVH;
  const bool decode = max_q <= 1;
  const int span = std::max(1, c.window > 0 ? std::min(max_seq, c.window + std::max(max_q, 1) - 1) : max_seq);
  const int nparts = (span + 511) / 512;
  constexpr bool mma_ok = sizeof(T) == 2 && D <= 128;
  const bool mma = !decode && want_mma && mma_ok;
  const int bm = mma ? 64 : (D <= 128 ? 64 : 32);
  const int tiles = decode ? 0 : T_ / (bm / group) + S;
  const bool split = nparts > 1 && (decode || tiles * KVH < 2 * 132);
  const int max_parts = split ? nparts : 1;
  p.partition_size = (split || decode) ? 512 : (1 << 30);
  p.max_parts = max_parts;
  if (split) {
    tmp_out.assign((size_t)T_ * H * max_parts * D, NAN);
    tmp_ml.assign((size_t)T_ * H * max_parts * 2, NAN);
    p.tmp_out = tmp_out.data();
    p.tmp_ml = tmp_ml.data();
  }
  std::string path;
  if (decode) {
    int gm = 1;
    while (gm < group && gm < 8) gm *= 2;
    const dim3 grid{(unsigned)(KVH * ((group + gm - 1) / gm)), (unsigned)S, (unsigned)max_parts};
    switch (gm) {
      case 1: emu::launch(grid, 128, 0, [p] { lathe::decode_attention<T, D, 1>(p); }); break;
      case 2: emu::launch(grid, 128, 0, [p] { lathe::decode_attention<T, D, 2>(p); }); break;
      case 4: emu::launch(grid, 128, 0, [p] { lathe::decode_attention<T, D, 4>(p); }); break;
      default: emu::launch(grid, 128, 0, [p] { lathe::decode_attention<T, D, 8>(p); }); break;
    }
    path = "decode g" + std::to_string(gm);
  } else {
    const dim3 grid{(unsigned)tiles, (unsigned)KVH, (unsigned)max_parts};
    if constexpr (mma_ok) {
      if (mma) {
        emu::launch(grid, 128, lathe::MmaCfg<T, D>::SMEM_BYTES, [p] { lathe::prefill_attention_mma<T, D>(p); });
        path = "prefill mma";
      }
    }
    if (!mma) {
      emu::launch(grid, 128, lathe::PrefillCfg<T, D>::SMEM_BYTES, [p] { lathe::prefill_attention<T, D>(p); });
      path = "prefill simt";
    }
  }
  if (split) {
    emu::launch(dim3{(unsigned)H, (unsigned)T_, 1}, 128, 0, [p] { lathe::reduce_partitions<T, D>(p); });
    path += " split " + std::to_string(max_parts);
  }
  return path;
}

template <typename T>
static void attention_case(const Case &c, bool mma) {
  const int S = (int)c.seqs.size(), H = c.H, KVH = c.KVH, D = c.D, BS = c.BS;
  int max_q = 0, max_seq = 0, T_ = 0, blocks = 0, max_blocks = 0;
  for (auto [ctx, n] : c.seqs) {
    max_q = std::max(max_q, n);
    max_seq = std::max(max_seq, ctx);
    T_ += n;
    blocks += (ctx + BS - 1) / BS;
    max_blocks = std::max(max_blocks, (ctx + BS - 1) / BS);
  }
  max_blocks += 1;
  const int num_blocks = blocks + 2;
  std::vector<uint32_t> ids(num_blocks);
  for (int i = 0; i < num_blocks; ++i) ids[i] = i;
  std::shuffle(ids.begin(), ids.end(), g_rng);
  std::vector<uint32_t> tables((size_t)S * max_blocks, ids[num_blocks - 1]);
  std::vector<char> owned((size_t)num_blocks * BS, 0);
  int next = 0;
  for (int s = 0; s < S; ++s) {
    const int ctx = c.seqs[s].first;
    for (int b = 0; b < (ctx + BS - 1) / BS; ++b, ++next) {
      tables[(size_t)s * max_blocks + b] = ids[next];
      for (int o = 0; o < std::min(BS, ctx - b * BS); ++o) owned[(size_t)ids[next] * BS + o] = 1;
    }
  }
  auto cache = [&] {
    auto v = randn<T>((size_t)num_blocks * BS * KVH * D, 1.f);
    for (size_t slot = 0; slot < owned.size(); ++slot)
      if (!owned[slot]) std::fill(v.begin() + slot * KVH * D, v.begin() + (slot + 1) * KVH * D, lathe::from_float<T>(NAN));
    return v;
  };
  const auto k = cache(), v = cache();
  const auto q = randn<T>((size_t)T_ * H * D, 2.f);
  const auto sinks = randn<float>(H, 2.f);
  std::vector<uint32_t> seq_lens(S), query_start(S + 1, 0);
  for (int s = 0; s < S; ++s) {
    seq_lens[s] = c.seqs[s].first;
    query_start[s + 1] = query_start[s] + c.seqs[s].second;
  }
  auto tof = [](const std::vector<T> &x) {
    std::vector<float> r(x.size());
    for (size_t i = 0; i < x.size(); ++i) r[i] = f(x[i]);
    return r;
  };
  std::vector<float> want((size_t)T_ * H * D);
  reference_attention(c, tof(q), tof(k), tof(v), tables, max_blocks, sinks, want);

  auto out = nans<T>((size_t)T_ * H * D);
  lathe::PagedAttnParams p{};
  p.q = q.data();
  p.out = out.data();
  p.k_cache = k.data();
  p.v_cache = v.data();
  p.block_tables = tables.data();
  p.seq_lens = seq_lens.data();
  p.query_start = query_start.data();
  p.sinks = c.sinks ? sinks.data() : nullptr;
  p.num_tokens = T_;
  p.num_seqs = S;
  p.num_heads = H;
  p.num_kv_heads = KVH;
  p.max_blocks = max_blocks;
  p.block_size_log2 = __builtin_ctz(BS);
  p.sliding_window = c.window;
  p.scale = 1.f / sqrtf((float)D);
  p.softcap = c.softcap;
  std::vector<float> tmp_out, tmp_ml;
  std::string path;
  switch (D) {
    case 64: path = launch_attention<T, 64>(c, p, max_q, max_seq, mma, tmp_out, tmp_ml); break;
    case 128: path = launch_attention<T, 128>(c, p, max_q, max_seq, mma, tmp_out, tmp_ml); break;
    default: path = launch_attention<T, 256>(c, p, max_q, max_seq, mma, tmp_out, tmp_ml); break;
  }
  char what[256];
  snprintf(what, sizeof what, "attn S=%d ctx<=%d q<=%d h=%d/%d d=%d bs=%d%s%s%s [%s]", S, max_seq, max_q, H, KVH, D, BS,
           c.window ? (" win=" + std::to_string(c.window)).c_str() : "", c.softcap > 0 ? " cap" : "",
           c.sinks ? " sinks" : "", path.c_str());
  check(what, out, want);
}

static void attention_tests() {
  std::vector<Case> decode = {
      {4, 4, 64, 16, {{1, 1}}},
      {8, 2, 128, 16, {{1, 1}, {17, 1}, {33, 1}, {16, 1}}},
      {8, 2, 128, 16, {{513, 1}, {512, 1}, {1100, 1}}},
      {28, 4, 128, 16, {{700, 1}, {3, 1}}},
      {16, 2, 64, 32, {{600, 1}, {40, 1}}, 0, 0.f, true},
      {12, 1, 64, 16, {{90, 1}, {200, 1}}},
      {4, 2, 256, 16, {{530, 1}, {7, 1}}, 0, 5.f},
      {8, 2, 128, 16, {{700, 1}, {50, 1}, {100, 1}, {101, 1}}, 100},
      {8, 8, 128, 16, {{1300, 1}, {20, 1}}, 600, 5.f, true},
  };
  std::vector<Case> prefill = {
      {4, 4, 64, 16, {{1, 1}, {2, 2}}},
      {8, 2, 128, 16, {{70, 70}}},
      {28, 4, 128, 16, {{40, 40}, {300, 1}, {200, 90}, {17, 1}}},
      {8, 2, 128, 16, {{1100, 20}}},
      {16, 2, 64, 32, {{120, 33}, {64, 64}, {50, 0}}, 0, 5.f, true},
      {8, 2, 128, 16, {{150, 150}, {700, 9}}, 64},
      {4, 4, 256, 16, {{80, 80}, {600, 3}}, 0, 5.f},
      {48, 1, 64, 16, {{20, 20}}},
  };
  for (auto &c : decode) {
    attention_case<float>(c, false);
    attention_case<bf16>(c, false);
  }
  attention_case<f16>(decode[2], false);
  for (auto &c : prefill) {
    attention_case<float>(c, false);
    attention_case<bf16>(c, false);
    attention_case<bf16>(c, true);
    attention_case<f16>(c, true);
  }
}

// ---- elementwise -----------------------------------------------------------------------------------

template <typename T> static void elementwise_tests() {
  {  // write_kv: exact copy, slot -1 skipped
    const int nb = 6, bs = 16, kvh = 3, d = 20, t = 40;
    auto cache = randn<T>((size_t)nb * bs * kvh * d, 1.f), src = randn<T>((size_t)t * kvh * d, 1.f);
    std::vector<int64_t> slots(nb * bs);
    for (int i = 0; i < nb * bs; ++i) slots[i] = i;
    std::shuffle(slots.begin(), slots.end(), g_rng);
    slots.resize(t);
    slots[3] = -1;
    std::vector<float> want(cache.size());
    for (size_t i = 0; i < cache.size(); ++i) want[i] = f(cache[i]);
    for (int i = 0; i < t; ++i)
      if (slots[i] >= 0)
        for (int e = 0; e < kvh * d; ++e) want[slots[i] * kvh * d + e] = f(src[(size_t)i * kvh * d + e]);
    T *cp = cache.data();
    const T *sp = src.data();
    const int64_t *sl = slots.data();
    emu::launch(dim3{4, 1, 1}, 128, 0, [=] { write_kv<T>(cp, sp, sl, nb * bs, t, kvh * d); });
    check("write_kv", cache, want);
  }
  for (int inter : {11, 64}) {  // silu_and_mul
    const int t = 5;
    auto x = randn<T>((size_t)t * 2 * inter, 3.f);
    auto out = nans<T>((size_t)t * inter);
    std::vector<float> want(out.size());
    for (int i = 0; i < t; ++i)
      for (int j = 0; j < inter; ++j) {
        const float g = f(x[(size_t)i * 2 * inter + j]);
        want[(size_t)i * inter + j] = g / (1.f + expf(-g)) * f(x[(size_t)i * 2 * inter + inter + j]);
      }
    T *op = out.data();
    const T *xp = x.data();
    emu::launch(dim3{2, 1, 1}, 64, 0, [=] { silu_and_mul<T>(op, xp, t, inter); });
    check("silu_and_mul I=" + std::to_string(inter), out, want);
  }
  for (int hidden : {100, 256}) {  // add_rms_norm
    const int t = 3;
    auto x = randn<T>((size_t)t * hidden, 1.f), r = randn<T>((size_t)t * hidden, 2.f), w = randn<T>(hidden, 1.f);
    auto out = nans<T>((size_t)2 * t * hidden);
    std::vector<float> want(out.size());
    for (int i = 0; i < t; ++i) {
      float ss = 0;
      for (int j = 0; j < hidden; ++j) {
        const float v = f(x[(size_t)i * hidden + j]) + f(r[(size_t)i * hidden + j]);
        want[(size_t)t * hidden + (size_t)i * hidden + j] = f(lathe::from_float<T>(v));
        ss += v * v;
      }
      const float inv = 1.f / sqrtf(ss / hidden + 1e-6f);
      for (int j = 0; j < hidden; ++j)
        want[(size_t)i * hidden + j] = want[(size_t)t * hidden + (size_t)i * hidden + j] * inv * f(w[j]);
    }
    T *op = out.data();
    const T *xp = x.data(), *rp = r.data(), *wp = w.data();
    emu::launch(dim3{(unsigned)t, 1, 1}, 64, 0, [=] { add_rms_norm<T>(op, xp, rp, wp, t, hidden, 1e-6f); });
    check("add_rms_norm H=" + std::to_string(hidden), out, want);
  }
  for (bool neox : {true, false}) {  // rope, partial rotary
    const int t = 4, heads = 3, hd = 16, rd = 8, max_pos = 64;
    auto x = randn<T>((size_t)t * heads * hd, 1.f);
    std::vector<float> cs((size_t)max_pos * rd);
    for (int p = 0; p < max_pos; ++p)
      for (int i = 0; i < rd / 2; ++i) {
        const float a = p * powf(10000.f, -2.f * i / rd);
        cs[(size_t)p * rd + i] = cosf(a);
        cs[(size_t)p * rd + rd / 2 + i] = sinf(a);
      }
    std::vector<uint32_t> pos = {0, 5, 63, 17};
    std::vector<float> want(x.size());
    for (size_t i = 0; i < x.size(); ++i) want[i] = f(x[i]);
    for (int i = 0; i < t; ++i)
      for (int h = 0; h < heads; ++h)
        for (int j = 0; j < rd / 2; ++j) {
          const int a = neox ? j : 2 * j, b = neox ? j + rd / 2 : 2 * j + 1;
          const size_t base = ((size_t)i * heads + h) * hd;
          const float x0 = f(x[base + a]), x1 = f(x[base + b]);
          const float co = cs[(size_t)pos[i] * rd + j], si = cs[(size_t)pos[i] * rd + rd / 2 + j];
          want[base + a] = x0 * co - x1 * si;
          want[base + b] = x1 * co + x0 * si;
        }
    T *xp = x.data();
    const uint32_t *pp = pos.data();
    const float *cp = cs.data();
    if (neox) emu::launch(dim3{(unsigned)t, 1, 1}, 32, 0, [=] { rope<T, true>(xp, pp, cp, t, heads, hd, rd, max_pos); });
    else emu::launch(dim3{(unsigned)t, 1, 1}, 32, 0, [=] { rope<T, false>(xp, pp, cp, t, heads, hd, rd, max_pos); });
    check(std::string("rope ") + (neox ? "neox" : "gptj"), x, want);
  }
}

// ---- mixture of experts -------------------------------------------------------------------------

// Twin of reference::moe_topk_softmax: ids then probabilities per token, in the order chosen.
static std::vector<float> moe_topk_twin(const std::vector<float> &l, int t, int e, int k, bool normalize) {
  std::vector<float> out((size_t)t * 2 * k);
  for (int i = 0; i < t; ++i) {
    const float *r = &l[(size_t)i * e];
    float mx = -INFINITY, total = 0;
    for (int x = 0; x < e; ++x) mx = std::max(mx, r[x]);
    std::vector<float> p(e);
    for (int x = 0; x < e; ++x) total += p[x] = expf(r[x] - mx);
    std::vector<int> order(e);
    for (int x = 0; x < e; ++x) order[x] = x;
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return p[a] > p[b]; });
    float chosen = 0;
    for (int j = 0; j < k; ++j) chosen += p[order[j]] / total;
    for (int j = 0; j < k; ++j) {
      out[(size_t)i * 2 * k + j] = (float)order[j];
      out[(size_t)i * 2 * k + k + j] = p[order[j]] / total / (normalize ? chosen : 1.f);
    }
  }
  return out;
}

static void moe_tests() {
  struct C { int t, e, k; bool normalize; };
  for (C c : {C{5, 128, 8, true}, C{3, 6, 2, false}, C{33, 256, 4, true}, C{2, 40, 40, true}}) {
    std::vector<float> l = randn<float>((size_t)c.t * c.e, 2.f);
    if (c.e == 6) l[1] = l[4] = 9.f;  // a tie at the top: the lower expert first
    auto want = moe_topk_twin(l, c.t, c.e, c.k, c.normalize);
    auto out = nans<float>(want.size());
    float *op = out.data();
    const float *lp = l.data();
    const unsigned blocks = (unsigned)((c.t + 3) / 4);
    emu::launch(dim3{blocks, 1, 1}, 128, 0, [=] { moe_topk_softmax(op, lp, c.t, c.e, c.k, c.normalize); });
    bool same_ids = true;
    for (int i = 0; i < c.t; ++i)
      for (int j = 0; j < c.k; ++j) same_ids &= out[(size_t)i * 2 * c.k + j] == want[(size_t)i * 2 * c.k + j];
    if (!same_ids) {
      g_failures++;
      printf("FAIL moe_topk_softmax E=%d k=%d: expert ids differ\n", c.e, c.k);
    }
    check("moe_topk_softmax E=" + std::to_string(c.e) + " k=" + std::to_string(c.k), out, want);
  }
}

template <typename T> void moe_combine_tests() {
  const int t = 7, k = 3, h = 50, m = t * k;
  auto y = randn<T>((size_t)m * h, 1.f);
  std::vector<uint32_t> rows(m);
  for (int i = 0; i < m; ++i) rows[i] = (uint32_t)((i * 5 + 2) % m);  // a permutation of the rows
  std::vector<float> w = randn<float>(m, 0.5f);
  auto out = nans<T>((size_t)t * h);
  std::vector<float> want(out.size());
  for (int i = 0; i < t; ++i)
    for (int x = 0; x < h; ++x) {
      float acc = 0;
      for (int j = 0; j < k; ++j) acc += w[i * k + j] * f(y[(size_t)rows[i * k + j] * h + x]);
      want[(size_t)i * h + x] = acc;
    }
  T *op = out.data();
  const T *yp = y.data();
  const uint32_t *rp = rows.data();
  const float *wp = w.data();
  emu::launch(dim3{2, 1, 1}, 64, 0, [=] { moe_combine<T>(op, yp, rp, wp, t, k, h); });
  check("moe_combine", out, want);
}

int main() {
  elementwise_tests<float>();
  elementwise_tests<bf16>();
  elementwise_tests<f16>();
  attention_tests();
  moe_tests();
  moe_combine_tests<float>();
  moe_combine_tests<bf16>();
  moe_combine_tests<f16>();
  printf("%s: %d failure(s)\n", g_failures ? "FAILED" : "PASSED", g_failures);
  return g_failures ? 1 : 0;
}
