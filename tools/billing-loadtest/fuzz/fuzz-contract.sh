#!/usr/bin/env bash
# Contract fuzzing of billing-api with schemathesis, every check on: starts
# the release binary with a bearer token on a free loopback port, on the
# embedded default (a fresh SQLite file, in-process coordination) or, with
# --postgres, on a fresh PostgreSQL database (created here, dropped at the
# end) and Redis (under a key prefix of its own); seeds what the document's
# links cannot create (seed.sh); runs `schemathesis run <served
# /openapi.json>` with schemathesis.toml (its only exclusions are answers
# caused by the state earlier requests left, each with its reason there)
# and the hooks of problem_json_hooks.py, bounded by MAX_TIME seconds; then
# prints the counts: cases generated, failures, and `pay` calls answered
# 200 (from the API's /metrics). Webhook delivery is off in the API
# (BILLING_WEBHOOK_ENABLED=false): the run registers endpoints with
# generated URLs, and no request of a fuzz run may leave loopback. Exits non-zero on a failure; the API's
# log and schemathesis' JUnit report are kept then.
#
# Usage (from anywhere):
#   cargo build --release -p billing-api
#   tools/billing-loadtest/fuzz/fuzz-contract.sh                 # embedded default, 5 minutes
#   tools/billing-loadtest/fuzz/fuzz-contract.sh --postgres      # PostgreSQL + Redis
#   MAX_TIME=900 tools/billing-loadtest/fuzz/fuzz-contract.sh
#   CHECKS=not_a_server_error tools/billing-loadtest/fuzz/fuzz-contract.sh   # fewer checks
#
# --postgres reads FUZZ_DATABASE_URL (default
# postgres://postgres@127.0.0.1:5432/postgres: the server to create the
# database on, with a role allowed to) and FUZZ_REDIS_URL (default
# redis://127.0.0.1:6379).
#
# Needs python3 with venv and curl (psql, and redis-cli to remove the run's
# keys, for --postgres); installs
# schemathesis (pinned) into target/fuzz-venv on first use (PyPI).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
cd "$root"

backend=sqlite
for arg in "$@"; do
    case "$arg" in
        --postgres) backend=postgres ;;
        --sqlite) backend=sqlite ;;
        *) echo "unknown argument $arg (use --postgres or --sqlite)" >&2; exit 2 ;;
    esac
done

API_BIN=${API_BIN:-target/release/billing-api}
MAX_TIME=${MAX_TIME:-300}
MAX_EXAMPLES=${MAX_EXAMPLES:-1000}
# One worker: with two, hypothesis (parsing the source of schemathesis'
# lambdas to describe them) sometimes fails with "AST constructor recursion
# depth mismatch" on Python 3.11, an error of the tool, not of the API.
WORKERS=${WORKERS:-1}
CHECKS=${CHECKS:-all}
VENV=${FUZZ_VENV:-target/fuzz-venv}
SCHEMATHESIS_VERSION=4.32.5
REPORT_DIR=${REPORT_DIR:-target/fuzz-report}
FUZZ_DATABASE_URL=${FUZZ_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
FUZZ_REDIS_URL=${FUZZ_REDIS_URL:-redis://127.0.0.1:6379}
# Above the largest body the document allows: its longest texts (a case's
# 20000 characters) written as JSON escapes (up to 12 bytes a character).
# The byte limit is the transport's (413), which a schema cannot state.
BODY_LIMIT=${BODY_LIMIT:-1048576}

if [ ! -x "$API_BIN" ]; then
    echo "$API_BIN not found: run 'cargo build --release -p billing-api' first (or set API_BIN)" >&2
    exit 2
fi
if [ ! -x "$VENV/bin/schemathesis" ]; then
    echo "installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "schemathesis==$SCHEMATHESIS_VERSION"
fi

workdir=$(mktemp -d /tmp/billing-fuzz-XXXXXX)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
token=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
run_id=$(python3 -c 'import secrets; print(secrets.token_hex(4))')
base="http://127.0.0.1:$port"

database_name=""
case "$backend" in
    sqlite)
        database_url="sqlite://$workdir/fuzz.db?mode=rwc"
        redis_env=(-u REDIS_URL)
        ;;
    postgres)
        database_name="billing_fuzz_$run_id"
        psql "$FUZZ_DATABASE_URL" -qAt -c "CREATE DATABASE $database_name" >/dev/null
        database_url="${FUZZ_DATABASE_URL%/*}/$database_name"
        redis_env=(REDIS_URL="$FUZZ_REDIS_URL" BILLING_REDIS_KEY_PREFIX="billing-fuzz-$run_id:")
        ;;
esac

env -u DATABASE_URL "${redis_env[@]}" \
    DATABASE_URL="$database_url" \
    BILLING_BIND="127.0.0.1:$port" \
    BILLING_API_TOKEN="$token" \
    BILLING_BODY_LIMIT="$BODY_LIMIT" \
    BILLING_LOG=warn \
    BILLING_WEBHOOK_ENABLED=false \
    "$API_BIN" >"$workdir/api.log" 2>&1 &
api_pid=$!
status=1
cleanup() {
    kill "$api_pid" 2>/dev/null || true
    wait "$api_pid" 2>/dev/null || true
    if [ -n "$database_name" ]; then
        psql "$FUZZ_DATABASE_URL" -qAt -c "DROP DATABASE IF EXISTS $database_name WITH (FORCE)" >/dev/null || true
        if command -v redis-cli >/dev/null; then
            redis-cli -u "$FUZZ_REDIS_URL" --scan --pattern "billing-fuzz-$run_id:*" |
                xargs -r -d '\n' redis-cli -u "$FUZZ_REDIS_URL" del >/dev/null || true
        fi
    fi
    if [ "$status" -eq 0 ]; then
        rm -rf "$workdir"
    else
        echo "API log kept in $workdir/api.log"
    fi
}
trap cleanup EXIT

for _ in $(seq 1 300); do
    if curl -fsS "$base/health/ready" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$api_pid" 2>/dev/null; then
        echo "billing-api exited before it was ready:" >&2
        cat "$workdir/api.log" >&2
        exit 1
    fi
    sleep 0.1
done
curl -fsS "$base/openapi.json" -o "$workdir/openapi.json"

# What links cannot create: currencies besides the seeded EUR, a tax, a
# plan, users; their ids and codes go to the hooks (FUZZ_SEED).
"$here/seed.sh" "$base" "$token" >"$workdir/seed.json"
operations=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum(len([m for m in v if m in ("get","post","put","patch","delete")]) for v in d.get("paths",{}).values()))' "$workdir/openapi.json")
echo "fuzzing $base/openapi.json on $backend: $operations operations, checks $CHECKS, $MAX_TIME s"

set +e
PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" SCHEMATHESIS_HOOKS=problem_json_hooks \
    FUZZ_SEED="$workdir/seed.json" FUZZ_OPENAPI="$workdir/openapi.json" \
    timeout --signal=INT "$((MAX_TIME + 180))" \
    "$VENV/bin/schemathesis" --config-file "$here/schemathesis.toml" run "$base/openapi.json" \
    --checks "$CHECKS" \
    --header "Authorization: Bearer $token" \
    --max-examples "$MAX_EXAMPLES" \
    --max-time "$MAX_TIME" \
    --workers "$WORKERS" \
    --request-timeout 10 \
    --generation-database none \
    --no-color \
    --report junit --report-dir "$REPORT_DIR" 2>&1 | tee "$workdir/schemathesis.out"
status=${PIPESTATUS[0]}
set -e

metrics=$(curl -fsS "$base/metrics" || true)
# Payments that took effect (2xx, replays of an Idempotency-Key not counted).
pay_ok=$(printf '%s\n' "$metrics" | awk '/^billing_payments_total\{/ && /outcome="succeeded"/ {s += $NF} END {print s + 0}')
server_errors=$(printf '%s\n' "$metrics" | awk '/^billing_http_requests_total\{/ && /status="5[0-9][0-9]"/ {s += $NF} END {print s + 0}')
requests=$(printf '%s\n' "$metrics" | awk '/^billing_http_requests_total\{/ {s += $NF} END {print s + 0}')
summary=$(grep -E '[0-9]+ generated' "$workdir/schemathesis.out" | tail -n 1 || true)
echo "FUZZ SUMMARY ($backend): ${summary:-no summary line}"
echo "FUZZ COUNTS ($backend): requests=$requests pay_200=$pay_ok server_errors=$server_errors"
if [ "$status" -eq 0 ]; then
    echo "FUZZ: PASS"
else
    echo "FUZZ: FAIL (schemathesis exit $status; JUnit report in $REPORT_DIR)"
fi
exit "$status"
