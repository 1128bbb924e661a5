#!/usr/bin/env bash
# End to end behind a real router: two `lathe serve` replicas behind the SGLang Model Gateway
# (`smg`, pinned from PyPI, in a venv under target/), all in a network namespace that has only
# loopback. Agent sessions (`lathe bench serve --workload agent`, one conversation at a time)
# go through the gateway with its cache-aware policy, through round-robin, and to a single
# replica, each phase on fresh replicas.
#
#   scripts/router-e2e.sh        # needs: python3 with venv, unshare, ip
#
# Environment: LATHE_BIN (default target/debug/lathe, built if missing), ROUTER_E2E_DIR (work
# folder, default target/router-e2e), ROUTER_E2E_MODEL (default the fast test model),
# ROUTER_E2E_SESSIONS / ROUTER_E2E_TURNS (default 2 / 3). Writes there, per phase
# (single, cache_aware, round_robin) and session s: <phase>-<s>.json (the bench report) and
# <phase>-<s>-r<i>.metrics (replica i's /metrics after that session); serve/smg logs.
# Exit status 0 when every phase ran; 77 when this machine cannot run the test.
set -euo pipefail

SMG_VERSION=1.13.0
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${ROUTER_E2E_DIR:-$ROOT/target/router-e2e}
LATHE=${LATHE_BIN:-$ROOT/target/debug/lathe}
MODEL=${ROUTER_E2E_MODEL:-smollm2-135m-instruct}
SESSIONS=${ROUTER_E2E_SESSIONS:-2}
TURNS=${ROUTER_E2E_TURNS:-3}
VENV="$OUT/venv"
SMG="$VENV/bin/smg"
REPLICA_PORTS=(18461 18462)
GATEWAY_PORT=18460

E2E_NAME=router-e2e
# shellcheck source=scripts/e2e-lib.sh
source "$ROOT/scripts/e2e-lib.sh"

# GET $2 on port $1; the whole answer on stdout (bash's /dev/tcp: no curl needed).
http_get() {
    { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
    printf 'GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n' "$2" >&3
    cat <&3
    exec 3<&-
}

wait_ok() { # port path what
    for _ in $(seq 1 600); do
        [[ "$(http_get "$1" "$2" 2>/dev/null | head -1)" == *" 200"* ]] && return 0
        sleep 0.5
    done
    echo "router-e2e: $3 never answered 200 on $2" >&2
    return 1
}

PIDS=()
stop_all() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    PIDS=()
}

# One phase: fresh replicas (one for `single`), the gateway unless `single`, then the sessions
# one after another, with each replica's /metrics after every session.
phase() {
    local name=$1 replicas=2 target
    [[ $name == single ]] && replicas=1
    local urls=()
    for i in $(seq 0 $((replicas - 1))); do
        local port=${REPLICA_PORTS[$i]}
        "$LATHE" serve --model "$MODEL" --host 127.0.0.1 --port "$port" --threads 1 \
            --kv-cache-gib 0.5 --max-model-len 8192 >"$OUT/$name-serve$i.log" 2>&1 &
        PIDS+=($!)
        urls+=("http://127.0.0.1:$port")
    done
    for i in $(seq 0 $((replicas - 1))); do
        wait_ok "${REPLICA_PORTS[$i]}" /health "replica $i"
    done
    target=${urls[0]}
    if [[ $name != single ]]; then
        "$SMG" launch --worker-urls "${urls[@]}" --policy "$name" --host 127.0.0.1 \
            --port "$GATEWAY_PORT" --prometheus-host 127.0.0.1 --prometheus-port 18469 \
            --disable-tokenizer-autoload >"$OUT/$name-smg.log" 2>&1 &
        PIDS+=($!)
        wait_ok "$GATEWAY_PORT" /v1/models "smg ($name)"
        target="http://127.0.0.1:$GATEWAY_PORT"
    fi
    for s in $(seq 1 "$SESSIONS"); do
        "$LATHE" bench serve --base-url "$target" --model "$MODEL" --workload agent \
            --sessions 1 --turns "$TURNS" --seed "$s" --warmup 0 --max-tokens 8 \
            --no-progress --out "$OUT/$name-$s.json" >"$OUT/$name-$s.bench.log" 2>&1
        for i in $(seq 0 $((replicas - 1))); do
            http_get "${REPLICA_PORTS[$i]}" /metrics >"$OUT/$name-$s-r$i.metrics"
        done
    done
    stop_all
}

inside() {
    ip link set lo up
    trap stop_all EXIT
    for p in single cache_aware round_robin; do
        phase "$p"
    done
}

if [[ "${1:-}" == "--inside" ]]; then
    inside
    exit $?
fi

command -v python3 >/dev/null || skip "python3 is not installed"
require_namespace

mkdir -p "$OUT"
if [[ ! -x "$SMG" ]] || [[ "$("$VENV/bin/pip" show smg 2>/dev/null | grep '^Version')" != "Version: $SMG_VERSION" ]]; then
    echo "router-e2e: installing smg==$SMG_VERSION from PyPI into $VENV" >&2
    python3 -m venv "$VENV" || skip "python3 cannot make a venv"
    "$VENV/bin/pip" install --quiet "smg==$SMG_VERSION" >&2 ||
        skip "pip could not install smg==$SMG_VERSION"
fi
rm -f "$OUT"/*.json "$OUT"/*.metrics "$OUT"/*.log
if [[ ! -x "$LATHE" ]]; then
    (cd "$ROOT" && cargo build --bin lathe)
fi
# The namespace has no network: fetch the model (first use only) out here.
"$LATHE" run --model "$MODEL" --max-tokens 1 "hi" >/dev/null 2>&1 ||
    "$LATHE" run --model "$MODEL" --max-tokens 1 "hi" >/dev/null

export LATHE SMG OUT MODEL SESSIONS TURNS
unshare -n bash "${BASH_SOURCE[0]}" --inside
