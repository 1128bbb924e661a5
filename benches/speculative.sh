#!/usr/bin/env bash
# Speculative decoding side by side on one server: Qwen2.5-Coder-1.5B-Instruct (Q4_K_M) as the
# target with Qwen2.5-Coder-0.5B-Instruct loaded as its draft, and the code-edit workload
# (a 1–2k-token file and a rename/refactor instruction; the answer re-emits the file) sent
# with "speculative": off / ngram / draft per request, greedy, alternating modes, at
# concurrency 1 and 8, every mode on the same prompts with the target's prefix cache warm (the
# draft has no prefix cache: its prompt pass is part of the draft's TTFT). Acceptance comes
# from the server's /metrics before and after each run.
# Writes benches/results/speculative-code-edit-<date>.json. Run on a quiet machine.
#
#   benches/speculative.sh [requests per run, default 4] [max tokens, default 160]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-4}
MAX=${2:-160}
PORT=${PORT:-8011}
THREADS=${THREADS:-2}
LATHE=${LATHE:-target/release/lathe}
TARGET=${TARGET:-qwen2.5-coder-1.5b-instruct}
DRAFT=${DRAFT:-qwen2.5-coder-0.5b-instruct}
stamp=$(date -u +%Y-%m-%d-%H%M)
work=$(mktemp -d)
out=benches/results/speculative-code-edit-$stamp.json

"$LATHE" serve --model "$TARGET" --speculative-model "$DRAFT" --speculative off \
  --port "$PORT" --threads "$THREADS" >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 600); do
  curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break
  sleep 1
done
metric() { curl -s "http://127.0.0.1:$PORT/metrics" | awk -v n="$1" '$1 == n {print $2}'; }
runs=()
for conc in 1 8; do
  reqs=$(( conc == 1 ? N : 2 * conc ))
  # The same prompts in every mode: prefill them once (1 token each) so that each mode's run
  # meets the same warm prefix cache and measures decoding, not who paid the cold prefill.
  "$LATHE" bench serve --base-url "http://127.0.0.1:$PORT" --model "$TARGET" \
    --workload code --code-mix edit=1 --concurrency "$conc" --num-requests "$reqs" \
    --warmup 0 --seed 1 --max-tokens 1 --no-progress \
    --extra-body '{"temperature":0,"speculative":"off"}' >/dev/null
  for mode in off ngram draft; do
    d0=$(metric lathe_spec_decode_num_drafts_total); p0=$(metric lathe_spec_decode_num_draft_tokens_total)
    a0=$(metric lathe_spec_decode_num_accepted_tokens_total)
    "$LATHE" bench serve --base-url "http://127.0.0.1:$PORT" --model "$TARGET" \
      --workload code --code-mix edit=1 --concurrency "$conc" --num-requests "$reqs" \
      --warmup 0 --seed 1 --max-tokens "$MAX" --ignore-eos --no-progress \
      --extra-body "{\"temperature\":0,\"speculative\":\"$mode\"}" \
      --out "$work/$mode-$conc.json" >"$work/$mode-$conc.txt"
    d1=$(metric lathe_spec_decode_num_drafts_total); p1=$(metric lathe_spec_decode_num_draft_tokens_total)
    a1=$(metric lathe_spec_decode_num_accepted_tokens_total)
    python3 - "$work/$mode-$conc.json" "$mode" "$conc" "$d0" "$d1" "$p0" "$p1" "$a0" "$a1" >"$work/$mode-$conc.row.json" <<'PY'
import json, sys
f, mode, conc, d0, d1, p0, p1, a0, a1 = sys.argv[1:]
r = json.load(open(f))
drafts, proposed, accepted = (float(b) - float(a) for a, b in ((d0, d1), (p0, p1), (a0, a1)))
print(json.dumps({"mode": mode, "concurrency": int(conc), "report": r,
  "drafts": drafts, "proposed_tokens": proposed, "accepted_tokens": accepted,
  "acceptance_rate": accepted / proposed if proposed else None,
  "mean_accepted_length": 1 + accepted / drafts if drafts else None}))
PY
    runs+=("$work/$mode-$conc.row.json")
    echo "== $mode, concurrency $conc"; grep -iE "output token throughput|TPOT|TTFT|mean" "$work/$mode-$conc.txt" | head -8
  done
done
python3 - "$out" "$TARGET" "$DRAFT" "$THREADS" "$MAX" "${runs[@]}" <<'PY'
import json, platform, subprocess, sys, datetime
out, target, draft, threads, max_tokens, *rows = sys.argv[1:]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
json.dump({"benchmark": "speculative decoding, code-edit workload, lathe bench serve",
  "date": datetime.datetime.utcnow().isoformat() + "Z", "commit": commit,
  "device": f"{cpu}, {threads} threads", "target": target, "draft": draft,
  "max_tokens": int(max_tokens), "greedy": True,
  "runs": [json.load(open(r)) for r in rows]}, open(out, "w"), indent=1)
print("wrote", out)
PY
