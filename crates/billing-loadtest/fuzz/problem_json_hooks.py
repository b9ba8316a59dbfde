# Schemathesis hooks for billing-api's contract fuzzing (fuzz-contract.sh):
# a custom check that every 4xx answer is an RFC 9457 problem document
# (Content-Type application/problem+json with status, title, type and a
# stable code), as docs/API.md requires. Loaded through
# SCHEMATHESIS_HOOKS=problem_json_hooks with this directory on PYTHONPATH.
# A second hook points half of the generated path ids at the rows that
# fuzz-contract.sh seeds (id 1 of each resource, currency EUR), so that
# fuzzing reaches the handlers' logic rather than only their 404s.
import json

import schemathesis
from hypothesis import strategies as st

SEEDED = {"id": 1, "code": "EUR", "id_or_slug": 1}


@schemathesis.hook
def flatmap_path_parameters(ctx, path_parameters):
    """Half of the time, use the seeded rows' ids in the path."""
    if not path_parameters:
        return st.just(path_parameters)
    seeded = dict(path_parameters)
    for name, value in SEEDED.items():
        if name in seeded:
            seeded[name] = value
    return st.sampled_from([path_parameters, seeded])


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
