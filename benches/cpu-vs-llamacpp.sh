#!/usr/bin/env bash
# lathe and llama.cpp side by side on the CPU, on the GGUF files users run, alternating
# (llama.cpp, lathe, llama.cpp, lathe, ...) on one quiet machine, one benchmark at a time.
#
#   benches/cpu-vs-llamacpp.sh [model-id | file.gguf ...]   # default: both Qwen2.5-Coder files
#   (a .gguf path is benchmarked as is, named by its file name: e.g. the random-weight
#   Qwen3-Coder-30B-A3B shapes of benches/make-random-moe-gguf.py)
#
# Environment:
#   LLAMA_BENCH   path of llama.cpp's llama-bench (required). Build it from the llama.cpp copy
#                 vendored in PyPI's llama-cpp-python sdist:
#                   pip download --no-deps --no-binary llama-cpp-python llama-cpp-python==0.3.36
#                   tar xzf llama_cpp_python-0.3.36.tar.gz && cd llama_cpp_python-0.3.36/vendor/llama.cpp
#                   cmake -B build -DGGML_NATIVE=ON -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF
#                   (on a VM whose CPU flags list AMX but whose kernel does not grant it, llama-bench
#                   dies with SIGILL in tinygemm_kernel_amx: add
#                   -DCMAKE_C_FLAGS=-mno-amx-tile\ -mno-amx-int8\ -mno-amx-bf16 and the same CXX flags)
#                   cmake --build build --target llama-bench -j
#   THREADS       threads for both (default 2), ROUNDS alternations (default 2),
#   LATHE         lathe binary (default target/release/lathe, built if missing),
#   OUT           result file (default benches/results/cpu-lathe-vs-llamacpp-qwen-coder-<date>.json).
#
# Writes one JSON with the device (CPU model, cores, ISA flags), date, lathe's commit,
# llama.cpp's version line, every run of both tools and the median ratios.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-2}
LATHE=${LATHE:-$ROOT/target/release/lathe}
DATE=$(date -u +%F-%H%M)
OUT=${OUT:-$ROOT/benches/results/cpu-lathe-vs-llamacpp-${OUT_TAG:-qwen-coder}-$DATE.json}
MODELS=("$@")
[[ ${#MODELS[@]} -gt 0 ]] || MODELS=(qwen2.5-coder-0.5b-instruct qwen2.5-coder-1.5b-instruct)
[[ -x "${LLAMA_BENCH:-}" ]] || { echo "set LLAMA_BENCH to llama.cpp's llama-bench (see the header)" >&2; exit 2; }
[[ -x "$LATHE" ]] || (cd "$ROOT" && cargo build --release --bin lathe)

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
KEYS=()
for model in "${MODELS[@]}"; do
    if [[ -f "$model" ]]; then
        gguf=$model
        key=$(basename "$model" .gguf)
    else
        # The model's GGUF path (fetched on first use): lathe prints it when loading.
        "$LATHE" run --model "$model" --max-tokens 1 "hi" >/dev/null 2>"$WORK/$model.load" || {
            cat "$WORK/$model.load" >&2
            exit 1
        }
        gguf=$(find "${LATHE_CACHE_DIR:-$HOME/.cache/lathe}" -name '*.gguf' -path "*${model}*" | head -1)
        [[ -f "$gguf" ]] || { echo "no cached GGUF for $model" >&2; exit 1; }
        key=$model
    fi
    KEYS+=("$key")
    for round in $(seq 1 "$ROUNDS"); do
        echo "== $key round $round: llama.cpp" >&2
        "$LLAMA_BENCH" -m "$gguf" -t "$THREADS" -p 512 -n 128 -r 3 -o json >"$WORK/$key.llama.$round.json"
        echo "== $key round $round: lathe" >&2
        "$LATHE" bench engine --model "$model" --threads "$THREADS" --no-reference \
            --batch 1,8 --repeats 3 --out "$WORK/$key.lathe.$round.json" >&2
    done
done

python3 - "$WORK" "$OUT" "$THREADS" "$ROUNDS" "$(git -C "$ROOT" rev-parse HEAD)" \
    "$("$LLAMA_BENCH" --version 2>&1 | head -2 | tr '\n' ' ')" "${KEYS[@]}" <<'EOF'
import json, os, platform, statistics, subprocess, sys, time
work, out, threads, rounds, commit, llama_version, *models = sys.argv[1:]
def cpu():
    info = {"cores": os.cpu_count(), "machine": platform.machine()}
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                info["model"] = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = line.split(":", 1)[1].split()
                info["isa"] = [f for f in ("avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni") if f in flags]
                break
    except OSError:
        pass
    info["loadavg_at_end"] = os.getloadavg()
    return info
result = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "device": cpu(), "threads": int(threads),
          "lathe_commit": commit, "llama_cpp_version": llama_version.strip(), "models": {}}
for m in models:
    llama, lathe = [], []
    for r in range(1, int(rounds) + 1):
        for row in json.load(open(f"{work}/{m}.llama.{r}.json")):
            kind = "prompt" if row["n_prompt"] > 0 else "decode"
            llama.append({"round": r, "test": kind, "tok_s": row["avg_ts"], "sd": row["stddev_ts"]})
        lathe.append(dict(json.load(open(f"{work}/{m}.lathe.{r}.json")), round=r))
    med = lambda xs: statistics.median(xs) if xs else None
    lp = med([x["tok_s"] for x in llama if x["test"] == "prompt"])
    ld = med([x["tok_s"] for x in llama if x["test"] == "decode"])
    tp = med([x["prompt_tok_s"] for x in lathe])
    td = med([d["total_tok_s"] for x in lathe for d in x["decode"] if d["batch"] == 1])
    t8 = med([d["total_tok_s"] for x in lathe for d in x["decode"] if d["batch"] == 8])
    result["models"][m] = {
        "llama_cpp": {"command": f"llama-bench -t {threads} -p 512 -n 128 -r 3", "runs": llama},
        "lathe": {"command": f"lathe bench engine --threads {threads} --no-reference --batch 1,8 --repeats 3", "runs": lathe},
        "median": {"llama_cpp_prompt": lp, "llama_cpp_decode": ld, "lathe_prompt": tp,
                   "lathe_decode_b1": td, "lathe_decode_b8_total": t8},
        "ratios_lathe_over_llama_cpp": {"prompt_512": tp / lp if lp else None, "decode_batch1": td / ld if ld else None},
        "lathe_batch8_over_batch1": t8 / td if td else None,
    }
json.dump(result, open(out, "w"), indent=1)
for m, r in result["models"].items():
    print(m, json.dumps(r["median"]), json.dumps(r["ratios_lathe_over_llama_cpp"]))
print("wrote", out)
EOF
