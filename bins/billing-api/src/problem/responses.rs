//! The problem responses that several operations document the same way,
//! declared once as [`utoipa::IntoResponses`] types: list one in a
//! `#[utoipa::path]`'s `responses(...)` beside the operation's own tuples,
//! e.g. `responses((status = 200, ...), NoSuchUser, VersionMismatch)`.
//!
//! Each answers `application/problem+json` with the [`Problem`] schema
//! (referenced, as every other problem response). A problem an operation
//! describes in its own words (a 409 naming its own conflicts) stays a
//! tuple of that operation; the problems every `/api/v1` operation may
//! answer (400, 401, 413, 415, 500, 503) are added to the document by
//! [`crate::openapi::CommonProblems`].

use utoipa::IntoResponses;

use super::Problem;

/// Declares each problem response as a type deriving
/// [`utoipa::IntoResponses`] with its status and description.
macro_rules! problem_responses {
    ($($(#[doc = $doc:literal])* $name:ident = $status:tt, $description:tt;)*) => {$(
        $(#[doc = $doc])*
        #[derive(Clone, Debug, IntoResponses)]
        #[response(
            status = $status,
            description = $description,
            content_type = "application/problem+json"
        )]
        pub struct $name(pub Problem);
    )*};
}

problem_responses! {
    /// 404: the currency in the path does not exist.
    NoSuchCurrency = 404, "No such currency";
    /// 404: the tax in the path does not exist.
    NoSuchTax = 404, "No such tax";
    /// 404: the user (in the path or the body) does not exist.
    NoSuchUser = 404, "No such user";
    /// 404: the support case in the path does not exist.
    NoSuchCase = 404, "No such case";
    /// 404: the plan in the path does not exist.
    NoSuchPlan = 404, "No such plan";
    /// 404: the subscription in the path does not exist.
    NoSuchSubscription = 404, "No such subscription";
    /// 404: the invoice in the path does not exist.
    NoSuchInvoice = 404, "No such invoice";
    /// 404: the event in the path does not exist.
    NoSuchEvent = 404, "No such event";
    /// 404: the webhook endpoint in the path does not exist.
    NoSuchEndpoint = 404, "No such endpoint";
    /// 404: the webhook delivery in the path does not exist.
    NoSuchDelivery = 404, "No such delivery";
    /// 409 `idempotency_in_flight`: a request with the same key runs.
    KeyInFlight = 409, "The Idempotency-Key is in flight";
    /// 409 `locked`: a change that lost every retry to concurrent ones.
    Locked = 409, "Changed concurrently too often (`locked`)";
    /// 409 of a lifecycle transition that the state does not allow, with
    /// the conflicts of any keyed change.
    TransitionRefused = 409, "Not allowed from its state (`invalid_transition`), changed concurrently too often (`locked`), or the key is in flight";
    /// 412 `version_mismatch`: `If-Match` named another version.
    VersionMismatch = 412, "If-Match names another version (`current_version` tells which)";
    /// 422 `idempotency_key_reused`: the key came with another request.
    KeyReused = 422, "The Idempotency-Key was used for another request";
}
