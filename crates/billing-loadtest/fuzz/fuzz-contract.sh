#!/usr/bin/env bash
# Contract fuzzing of billing-api with schemathesis: starts the release
# binary on the embedded default (a fresh SQLite file, in-process
# coordination) with a bearer token on a free loopback port, runs
# `schemathesis run <served /openapi.json>` bounded by MAX_EXAMPLES per
# operation and MAX_TIME seconds, and checks that no answer is a 5xx
# (not_a_server_error) and that every 4xx is application/problem+json
# (problem_json_on_4xx, in problem_json_hooks.py). Exits non-zero on a
# failure; the API's log and schemathesis' JUnit report are kept then.
#
# Usage (from anywhere):
#   cargo build --release -p billing-api
#   crates/billing-loadtest/fuzz/fuzz-contract.sh
#   MAX_EXAMPLES=100 MAX_TIME=900 crates/billing-loadtest/fuzz/fuzz-contract.sh
#   CHECKS=all crates/billing-loadtest/fuzz/fuzz-contract.sh   # every schemathesis check
#
# Needs python3 with venv; installs schemathesis (pinned) into
# target/fuzz-venv on first use (PyPI).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
cd "$root"

API_BIN=${API_BIN:-target/release/billing-api}
MAX_EXAMPLES=${MAX_EXAMPLES:-30}
MAX_TIME=${MAX_TIME:-600}
WORKERS=${WORKERS:-2}
CHECKS=${CHECKS:-not_a_server_error,problem_json_on_4xx}
VENV=${FUZZ_VENV:-target/fuzz-venv}
SCHEMATHESIS_VERSION=4.32.5
REPORT_DIR=${REPORT_DIR:-target/fuzz-report}

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
base="http://127.0.0.1:$port"

env -u DATABASE_URL -u REDIS_URL \
    DATABASE_URL="sqlite://$workdir/fuzz.db?mode=rwc" \
    BILLING_BIND="127.0.0.1:$port" \
    BILLING_API_TOKEN="$token" \
    BILLING_LOG=warn \
    "$API_BIN" >"$workdir/api.log" 2>&1 &
api_pid=$!
status=1
cleanup() {
    kill "$api_pid" 2>/dev/null || true
    wait "$api_pid" 2>/dev/null || true
    if [ "$status" -eq 0 ]; then
        rm -rf "$workdir"
    else
        echo "API log kept in $workdir/api.log"
    fi
}
trap cleanup EXIT

for _ in $(seq 1 100); do
    if curl -fsS "$base/health/ready" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$api_pid" 2>/dev/null; then
        echo "billing-api exited before it was ready:" >&2
        cat "$workdir/api.log" >&2
        exit 1
    fi
    sleep 0.1
done
curl -fsS "$base/openapi.json" -o "$workdir/openapi.json"

# Seed one row of each resource (id 1; EUR exists already), which the
# hooks use for half of the generated path ids.
seed() {
    curl -fsS -o /dev/null -X POST "$base/api/v1$1" \
        -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -d "$2"
}
seed /users '{"email":"fuzz-seed@example.com","password":"fuzz-seed-password"}'
seed /plans '{"name":"Fuzz","slug":"fuzz","price":"9.99","currency":"EUR","billing_period":"monthly"}'
seed /taxes '{"name":"VAT DE","code":"vat-de","rate":"19.00","country_code":"DE"}'
seed /subscriptions '{"user_id":1,"plan_id":1}'
seed /invoices '{"user_id":1,"plan_id":1,"subscription_id":1}'
seed /users/1/cases '{"subject":"Fuzz","description":"seeded by fuzz-contract.sh"}'
operations=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum(len([m for m in v if m in ("get","post","put","patch","delete")]) for v in d.get("paths",{}).values()))' "$workdir/openapi.json")
echo "fuzzing $base/openapi.json: $operations operations, checks $CHECKS, at most $MAX_EXAMPLES examples per operation, $MAX_TIME s"

set +e
PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" SCHEMATHESIS_HOOKS=problem_json_hooks \
    timeout --signal=INT "$((MAX_TIME + 120))" \
    "$VENV/bin/schemathesis" run "$base/openapi.json" \
    --checks "$CHECKS" \
    --header "Authorization: Bearer $token" \
    --max-examples "$MAX_EXAMPLES" \
    --max-time "$MAX_TIME" \
    --workers "$WORKERS" \
    --request-timeout 10 \
    --generation-database none \
    --no-color \
    --report junit --report-dir "$REPORT_DIR"
status=$?
set -e

server_errors=$(grep -c 'status=5[0-9][0-9]' "$workdir/api.log" || true)
echo "billing-api logged $server_errors answers with a 5xx status"
if [ "$status" -eq 0 ]; then
    echo "FUZZ: PASS (no 5xx, every 4xx problem+json)"
else
    echo "FUZZ: FAIL (schemathesis exit $status; JUnit report in $REPORT_DIR)"
fi
exit "$status"
