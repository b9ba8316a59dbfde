#!/usr/bin/env bash
# Seeds a fresh billing-api for contract fuzzing with what the OpenAPI
# document's links cannot create from nothing: two more currencies, a tax,
# two plans, two users, a subscription and pending invoices for it
# (SEED_INVOICES, 30 by default), a support case.
# Prints the ids and codes as JSON for problem_json_hooks.py (FUZZ_SEED).
#
# Usage: seed.sh <base URL> <bearer token>
set -euo pipefail

base=$1
token=$2

post() {
    curl -fsS -X POST "$base/api/v1$1" \
        -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -d "$2"
}
field() {
    python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

post /currencies '{"code":"USD","name":"US Dollar","symbol":"$","exchange_rate":"1.08"}' >/dev/null
post /currencies '{"code":"JPY","name":"Yen","exchange_rate":"160"}' >/dev/null
tax=$(post /taxes '{"name":"VAT DE","code":"vat-de","rate":"19","country_code":"DE"}' | field id)
plan=$(post /plans '{"name":"Fuzz","slug":"fuzz","price":"9.99","currency":"EUR","billing_period":"monthly","prices":{"USD":"10.99","JPY":"1600"}}' | field id)
plan2=$(post /plans '{"name":"Fuzz yearly","slug":"fuzz-yearly","price":"99","currency":"USD","billing_period":"yearly"}' | field id)
user=$(post /users '{"email":"fuzz-seed@example.com","password":"fuzz-seed-password"}' | field id)
user2=$(post /users '{"email":"fuzz-seed-2@example.com","password":"fuzz-seed-password"}' | field id)
subscription=$(post /subscriptions "{\"user_id\":$user,\"plan_id\":$plan}" | field id)
# Pending invoices to pay: generated requests may cancel some first.
invoices=()
for _ in $(seq 1 "${SEED_INVOICES:-30}"); do
    invoices+=("$(post /invoices "{\"user_id\":$user,\"plan_id\":$plan,\"subscription_id\":$subscription}" | field id)")
done
invoice_ids=$(IFS=,; echo "${invoices[*]}")
case_id=$(post "/users/$user/cases" '{"subject":"Fuzz","description":"seeded for contract fuzzing"}' | field id)

cat <<JSON
{"user_ids": [$user, $user2], "plan_ids": [$plan, $plan2], "subscription_ids": [$subscription],
 "invoice_ids": [$invoice_ids], "case_ids": [$case_id], "tax_ids": [$tax],
 "currencies": ["EUR", "USD", "JPY"], "tax_codes": ["vat-de"], "plan_slugs": ["fuzz", "fuzz-yearly"]}
JSON
