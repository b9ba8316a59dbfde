#!/usr/bin/env bash
# Seeds a fresh billing-api for contract fuzzing with what the OpenAPI
# document's links cannot create from nothing: two more currencies, a tax,
# two plans, two users, a subscription with an invoice, a support case, and
# pending invoices to pay (SEED_INVOICES, 30 by default).
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
invoice=$(post /invoices "{\"user_id\":$user,\"plan_id\":$plan,\"subscription_id\":$subscription}" | field id)
# Pending invoices to pay, of a user, plan and subscription that the hooks
# never name elsewhere, so that generated requests cannot cancel them or
# the subscription, or delete the user, before they are paid.
payer=$(post /users '{"email":"fuzz-payer@example.com","password":"fuzz-seed-password"}' | field id)
payer_plan=$(post /plans '{"name":"Fuzz paid","slug":"fuzz-paid","price":"5","currency":"EUR","billing_period":"monthly"}' | field id)
payer_subscription=$(post /subscriptions "{\"user_id\":$payer,\"plan_id\":$payer_plan}" | field id)
payable=()
for _ in $(seq 1 "${SEED_INVOICES:-30}"); do
    payable+=("$(post /invoices "{\"user_id\":$payer,\"plan_id\":$payer_plan,\"subscription_id\":$payer_subscription}" | field id)")
done
payable_ids=$(IFS=,; echo "${payable[*]}")
case_id=$(post "/users/$user/cases" '{"subject":"Fuzz","description":"seeded for contract fuzzing"}' | field id)

cat <<JSON
{"user_ids": [$user, $user2], "plan_ids": [$plan, $plan2], "subscription_ids": [$subscription],
 "invoice_ids": [$invoice], "payable_invoice_ids": [$payable_ids], "case_ids": [$case_id], "tax_ids": [$tax],
 "currencies": ["EUR", "USD", "JPY"], "tax_codes": ["vat-de"], "plan_slugs": ["fuzz", "fuzz-yearly"]}
JSON
