# Schemathesis hooks for billing-api's contract fuzzing (fuzz-contract.sh),
# loaded through SCHEMATHESIS_HOOKS=problem_json_hooks with this directory
# on PYTHONPATH.
#
# - A check that every 4xx answer is an RFC 9457 problem document
#   (Content-Type application/problem+json with status, title, type and a
#   stable code), as docs/API.md requires.
# - Hooks that point half of the generated references at the rows seed.sh
#   created (FUZZ_SEED: their ids and codes), so that generated requests
#   reach the handlers' logic rather than only their 404s. A value is only
#   ever replaced by another value of the same schema (an integer id by a
#   seeded id, a currency code by a seeded code), so a request the
#   generator made valid stays valid and an invalid one stays invalid.
# - A hook that makes each valid Idempotency-Key unique, for the same
#   reason.
import itertools
import json
import os
import re

import schemathesis
from hypothesis import strategies as st

_SEED_FILE = os.environ.get("FUZZ_SEED")
SEED = json.load(open(_SEED_FILE)) if _SEED_FILE else {}

# Which seeded ids a path's `{id}` names, by the path's first segment.
_PATH_IDS = {
    "users": "user_ids",
    "plans": "plan_ids",
    "subscriptions": "subscription_ids",
    "invoices": "invoice_ids",
    "cases": "case_ids",
    "taxes": "tax_ids",
}
# Which seeded values a body field names.
_BODY_IDS = {
    "user_id": "user_ids",
    "plan_id": "plan_ids",
    "subscription_id": "subscription_ids",
}


def _currency_pattern():
    """The pattern of currency codes, from the served document (FUZZ_OPENAPI)."""
    path = os.environ.get("FUZZ_OPENAPI")
    if path:
        schemas = json.load(open(path)).get("components", {}).get("schemas", {})
        for schema in schemas.values():
            pattern = schema.get("properties", {}).get("currency", {}).get("pattern")
            if pattern:
                return re.compile(pattern)
    return re.compile(r"^[A-Z]{3}$")


_CURRENCY = _currency_pattern()


def _is_int(value):
    """An integer within int64, the range of every id in the document."""
    return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63


def _resource(ctx):
    operation = getattr(ctx, "operation", None)
    path = getattr(operation, "path", "") or ""
    parts = [p for p in path.split("/") if p and p not in ("api", "v1")]
    return parts[0] if parts else ""


@schemathesis.hook
def flatmap_path_parameters(ctx, path_parameters):
    """Half of the time, name seeded rows in the path."""
    if not path_parameters:
        return st.just(path_parameters)
    seeded = dict(path_parameters)
    resource = _resource(ctx)
    choices = []
    path = getattr(getattr(ctx, "operation", None), "path", "") or ""
    for name, value in path_parameters.items():
        if name == "id" and _is_int(value) and path.endswith(("/pay", "/refund")):
            # Paid and refunded only: invoices no other request touches.
            choices.append((name, SEED.get("payable_invoice_ids", [])))
        elif name == "id" and _is_int(value) and SEED.get(_PATH_IDS.get(resource, "")):
            choices.append((name, SEED[_PATH_IDS[resource]]))
        elif name == "id" and isinstance(value, str) and resource == "plans":
            choices.append((name, [str(i) for i in SEED.get("plan_ids", [])] + SEED.get("plan_slugs", [])))
        elif name == "code" and isinstance(value, str) and _CURRENCY.match(value):
            choices.append((name, SEED.get("currencies", [])))
    if not choices or not all(options for _, options in choices):
        return st.just(path_parameters)

    def build(picked):
        for (name, _), value in zip(choices, picked):
            seeded[name] = value
        return dict(seeded)

    seeded_strategy = st.tuples(*(st.sampled_from(options) for _, options in choices)).map(build)
    return st.one_of(st.just(path_parameters), seeded_strategy)


@schemathesis.hook
def flatmap_body(ctx, body):
    """Half of the time, refer to seeded rows in the body."""
    if not isinstance(body, dict):
        return st.just(body)
    options = {}
    for name, value in body.items():
        if name in _BODY_IDS and _is_int(value) and SEED.get(_BODY_IDS[name]):
            options[name] = SEED[_BODY_IDS[name]]
        elif name == "currency" and isinstance(value, str) and _CURRENCY.match(value):
            options[name] = SEED.get("currencies", [])
        elif name == "tax_code" and isinstance(value, str) and SEED.get("tax_codes"):
            options[name] = SEED["tax_codes"]
    options = {name: values for name, values in options.items() if values}
    if not options:
        return st.just(body)
    names = sorted(options)

    # A named function, not a lambda: hypothesis describes a lambda by
    # parsing its source, which is not safe with several workers.
    def build(picked):
        return {**body, **dict(zip(names, picked))}

    seeded = st.tuples(*(st.sampled_from(options[name]) for name in names)).map(build)
    return st.one_of(st.just(body), seeded)


_VALID_KEY = re.compile(r"^[!-~]{1,200}$")
_KEYS = itertools.count()


@schemathesis.hook
def map_headers(ctx, headers):
    """Make each valid Idempotency-Key unique (still valid: visible ASCII,
    at most 255 characters), so that generated requests are not refused
    for a key an earlier one used (422) and payments go through."""
    if not isinstance(headers, dict):
        return headers
    key = headers.get("Idempotency-Key")
    if isinstance(key, str) and _VALID_KEY.match(key):
        headers = dict(headers)
        headers["Idempotency-Key"] = f"{key}-{os.getpid()}-{next(_KEYS)}"
    return headers


@schemathesis.check
def problem_json_on_4xx(ctx, response, case):
    """Every 4xx is application/problem+json with status, title, type, code."""
    if not 400 <= response.status_code < 500:
        return None
    content_type = (response.headers.get("content-type") or [""])[0]
    media_type = content_type.split(";")[0].strip().lower()
    if media_type != "application/problem+json":
        raise AssertionError(
            f"{response.status_code} answered with Content-Type {content_type!r}, "
            "expected application/problem+json"
        )
    try:
        body = json.loads(response.content or b"")
    except ValueError as error:
        raise AssertionError(f"{response.status_code} problem body is not JSON: {error}") from None
    missing = [key for key in ("type", "title", "status", "code") if key not in body]
    if missing:
        raise AssertionError(f"{response.status_code} problem body lacks {missing}: {body}")
    if body["status"] != response.status_code:
        raise AssertionError(
            f"problem status {body['status']} differs from the HTTP status {response.status_code}"
        )
    return None
