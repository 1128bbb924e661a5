# Sourced by the real-client end-to-end scripts (codex, claude-code, aider, router): set
# E2E_NAME (and PORT for `healthy`) first.

# Exit 77: this machine cannot run the test (the Rust side fails under CI=true, else warns).
skip() {
    echo "$E2E_NAME: CANNOT RUN HERE: $*" >&2
    exit 77
}

# GET /health on 127.0.0.1:${1:-$PORT} answers 200 (bash's /dev/tcp: no curl needed).
healthy() {
    local line
    # Braces: a bare `exec … 2>/dev/null` would silence this shell's stderr for good.
    { exec 3<>"/dev/tcp/127.0.0.1/${1:-$PORT}"; } 2>/dev/null || return 1
    printf 'GET /health HTTP/1.0\r\n\r\n' >&3
    IFS= read -r line <&3 || true
    exec 3<&-
    [[ "$line" == *" 200"* ]]
}

# What a loopback-only network namespace needs, else skip.
require_namespace() {
    command -v ip >/dev/null || skip "ip (iproute2) is not installed"
    command -v unshare >/dev/null || skip "unshare (util-linux) is not installed"
    unshare -n true 2>/dev/null ||
        skip "unshare -n is not permitted (needs root or unprivileged user namespaces)"
}
