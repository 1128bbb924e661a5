#!/usr/bin/env python3
"""A random-weight GGUF with the real layer shapes of Qwen3-Coder-30B-A3B-Instruct (qwen3moe:
hidden 2048, 32 query / 4 KV heads of 128, 128 experts of width 768, 8 per token, vocabulary
151936), fewer layers so that it fits a small machine, every matrix in Q4_K (the LM head in
Q6_K, as Q4_K_M files keep it), norms and routers in F32. The tokenizer (and chat template) are
copied from a real Qwen GGUF, so lathe and llama.cpp both load it as they would the real file.

Random blocks: quantized values and 6-bit scales are uniform random, the per-block f16 scales
are small, so activations stay finite. Speed of a MoE step depends on the shapes and on how
tokens spread over experts, not on trained values; the spread here is what a random router
gives (near uniform), which is the usual assumption of MoE benchmarks with random weights.

  pip install gguf==0.19.0 numpy
  python3 benches/make-random-moe-gguf.py --tokenizer-from QWEN.gguf --layers 8 --out moe.gguf
"""
import argparse

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q
from gguf import GGUFReader, GGUFValueType, GGUFWriter

QWEN3_CODER_30B_A3B = dict(
    hidden=2048, heads=32, kv_heads=4, head_dim=128, experts=128, experts_used=8,
    expert_width=768, dense_width=6144, rope_theta=10_000_000.0, eps=1e-6, context=262144,
)
# ggml block sizes: (values per block, bytes per block).
BLOCK = {Q.Q4_K: (256, 144), Q.Q6_K: (256, 210)}


def random_blocks(rng, rows, cols, ty, lead=()):
    """Random `ty` blocks for a [*lead, rows, cols] matrix, as a uint8 array of its bytes."""
    per, size = BLOCK[ty]
    assert cols % per == 0, (cols, per)
    n = int(np.prod(lead, dtype=np.int64)) * rows * (cols // per)
    b = rng.integers(0, 256, size=(n, size), dtype=np.uint8)
    if ty == Q.Q4_K:
        # d, dmin (f16) lead each block; w = d·sc·q − dmin·m with 6-bit sc, m and 4-bit q:
        # dmin ≈ 7.5·d centres the weights.
        d = (rng.uniform(1.0, 3.0, n) * 1e-4).astype(np.float16)
        b[:, 0:2] = d.view(np.uint8).reshape(n, 2)
        b[:, 2:4] = (d * np.float16(7.5)).view(np.uint8).reshape(n, 2)
    else:
        # Q6_K: int8 scales, then d (f16) last; w = d·scale·(q − 32).
        d = (rng.uniform(1.0, 3.0, n) * 2e-5).astype(np.float16)
        b[:, size - 2:size] = d.view(np.uint8).reshape(n, 2)
    return b.reshape(*lead, rows, (cols // per) * size)


def copy_tokenizer(src, w):
    """Every `tokenizer.*` key of `src`; returns the vocabulary size."""
    vocab = None
    for name, field in GGUFReader(src).fields.items():
        if not name.startswith("tokenizer."):
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == GGUFValueType.ARRAY else None
        w.add_key_value(name, field.contents(), vtype, sub_type=sub)
        if name == "tokenizer.ggml.tokens":
            vocab = len(field.data)
    assert vocab, f"{src} has no tokenizer.ggml.tokens"
    return vocab


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokenizer-from", required=True, help="a Qwen GGUF whose tokenizer.* keys to copy")
    ap.add_argument("--layers", type=int, default=8, help="decoder layers (the real model has 48)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    c = QWEN3_CODER_30B_A3B
    rng = np.random.default_rng(a.seed)
    w = GGUFWriter(a.out, "qwen3moe")
    w.add_name(f"random Qwen3-Coder-30B-A3B shapes, {a.layers} layers")
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_K_M)
    vocab = copy_tokenizer(a.tokenizer_from, w)
    w.add_block_count(a.layers)
    w.add_context_length(c["context"])
    w.add_embedding_length(c["hidden"])
    w.add_feed_forward_length(c["dense_width"])
    w.add_head_count(c["heads"])
    w.add_head_count_kv(c["kv_heads"])
    w.add_key_length(c["head_dim"])
    w.add_value_length(c["head_dim"])
    w.add_rope_freq_base(c["rope_theta"])
    w.add_layer_norm_rms_eps(c["eps"])
    w.add_expert_count(c["experts"])
    w.add_expert_used_count(c["experts_used"])
    w.add_expert_feed_forward_length(c["expert_width"])

    h, d = c["hidden"], c["head_dim"]
    norm = lambda n: np.ones(n, dtype=np.float32) + rng.normal(0, 0.05, n).astype(np.float32)
    q4 = lambda name, rows, cols, lead=(): w.add_tensor(name, random_blocks(rng, rows, cols, Q.Q4_K, lead), raw_dtype=Q.Q4_K)
    q4("token_embd.weight", vocab, h)
    w.add_tensor("output.weight", random_blocks(rng, vocab, h, Q.Q6_K), raw_dtype=Q.Q6_K)
    w.add_tensor("output_norm.weight", norm(h))
    for i in range(a.layers):
        p = f"blk.{i}"
        w.add_tensor(f"{p}.attn_norm.weight", norm(h))
        w.add_tensor(f"{p}.ffn_norm.weight", norm(h))
        w.add_tensor(f"{p}.attn_q_norm.weight", norm(d))
        w.add_tensor(f"{p}.attn_k_norm.weight", norm(d))
        q4(f"{p}.attn_q.weight", c["heads"] * d, h)
        q4(f"{p}.attn_k.weight", c["kv_heads"] * d, h)
        q4(f"{p}.attn_v.weight", c["kv_heads"] * d, h)
        q4(f"{p}.attn_output.weight", h, c["heads"] * d)
        w.add_tensor(f"{p}.ffn_gate_inp.weight", rng.normal(0, 0.02, (c["experts"], h)).astype(np.float32))
        q4(f"{p}.ffn_gate_exps.weight", c["expert_width"], h, (c["experts"],))
        q4(f"{p}.ffn_up_exps.weight", c["expert_width"], h, (c["experts"],))
        # down: [experts, hidden, width]; Q4_K needs width % 256 == 0 (768 is).
        q4(f"{p}.ffn_down_exps.weight", h, c["expert_width"], (c["experts"],))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file(progress=False)
    w.close()
    print(f"wrote {a.out}: {a.layers} layers, vocabulary {vocab}")


if __name__ == "__main__":
    main()
