//! The one mapping of the use cases' [`BillingError`] onto [`ApiError`]:
//! each variant has one status and one stable `code`.
//!
//! | error | status | code |
//! |---|---|---|
//! | `NotFound` | 404 | `not_found` |
//! | `AlreadyExists` | 409 | `already_exists` |
//! | `InvalidTransition` | 409 | `invalid_transition` |
//! | `VersionMismatch` | 412 | `version_mismatch` (+ `current_version`) |
//! | `Locked` | 409 | `locked` |
//! | `IdempotencyInFlight` | 409 | `idempotency_in_flight` |
//! | `IdempotencyKeyReused` | 422 | `idempotency_key_reused` |
//! | `Validation` | 400 | `validation_failed` |
//! | `InUse` | 409 | `in_use` |
//! | `Unavailable` | 503 | `dependency_unavailable` |
//! | `Overloaded` | 503 | `overloaded` |
//! | `Internal` | 500 | `internal_error` |
//!
//! Client errors carry the use case's message, which is written for API
//! users. Server errors name at most the dependency that failed; their
//! cause is logged with the request id (see [`ApiError`]), never sent.

use billing_service::{BillingError, Dependency};

use super::{ApiError, ProblemCode};

impl From<BillingError> for ApiError {
    fn from(error: BillingError) -> Self {
        let (code, detail) = match &error {
            BillingError::NotFound { resource, key } => {
                (ProblemCode::NotFound, format!("{resource} {key} not found"))
            }
            BillingError::AlreadyExists { resource, field } => (
                ProblemCode::AlreadyExists,
                format!("a {resource} with this {field} already exists"),
            ),
            BillingError::InvalidTransition { message, .. } => {
                (ProblemCode::InvalidTransition, message.clone())
            }
            BillingError::VersionMismatch { resource, current } => {
                let current = *current;
                return Self::new(
                    ProblemCode::VersionMismatch,
                    format!(
                        "the {resource} is at version {current}, not the one in If-Match; read it again"
                    ),
                )
                .with_extension("current_version", current)
                .with_source(error);
            }
            BillingError::Locked { .. } => (ProblemCode::Locked, error.to_string()),
            BillingError::IdempotencyInFlight => (
                ProblemCode::IdempotencyInFlight,
                "a request with this Idempotency-Key is still being processed; retry later"
                    .to_owned(),
            ),
            BillingError::IdempotencyKeyReused => (
                ProblemCode::IdempotencyKeyReused,
                "this Idempotency-Key was used for a different request (method, path or body); \
                 send a new key"
                    .to_owned(),
            ),
            BillingError::Validation { message, .. } => {
                (ProblemCode::ValidationFailed, message.clone())
            }
            BillingError::InUse { message } => (ProblemCode::InUse, message.clone()),
            BillingError::Unavailable { dependency, .. } => {
                let name = match dependency {
                    Dependency::Database => "the database",
                    Dependency::Coordination => "Redis",
                };
                (
                    ProblemCode::DependencyUnavailable,
                    format!("{name} is unavailable; retry later"),
                )
            }
            BillingError::Overloaded { resource } => (
                ProblemCode::Overloaded,
                format!("{resource} is overloaded on this server; retry in a moment"),
            ),
            BillingError::Internal { .. } | BillingError::InvalidSettings { .. } => {
                return Self::internal(error);
            }
        };
        Self::new(code, detail).with_source(error)
    }
}

#[cfg(test)]
mod tests {
    use billing_service::{Contended, LockKey, Resource};
    use serde_json::json;

    use super::*;

    fn map(error: BillingError) -> ApiError {
        ApiError::from(error)
    }

    #[test]
    fn every_variant_has_its_status_and_code() {
        let cases = [
            (
                BillingError::NotFound {
                    resource: Resource::Plan,
                    key: "pro".into(),
                },
                404,
                "not_found",
            ),
            (
                BillingError::AlreadyExists {
                    resource: Resource::User,
                    field: "email".into(),
                },
                409,
                "already_exists",
            ),
            (
                BillingError::InvalidTransition {
                    message: "cannot pay the invoice: it is paid".into(),
                    source: None,
                },
                409,
                "invalid_transition",
            ),
            (
                BillingError::VersionMismatch {
                    resource: Resource::Invoice,
                    current: 3,
                },
                412,
                "version_mismatch",
            ),
            (
                BillingError::Locked {
                    contended: Contended::Lock(LockKey::of(Resource::Invoice, 4)),
                },
                409,
                "locked",
            ),
            (
                BillingError::IdempotencyInFlight,
                409,
                "idempotency_in_flight",
            ),
            (
                BillingError::IdempotencyKeyReused,
                422,
                "idempotency_key_reused",
            ),
            (
                BillingError::Validation {
                    message: "slug must be …".into(),
                    source: None,
                },
                400,
                "validation_failed",
            ),
            (
                BillingError::InUse {
                    message: "the currency is still referenced by other records".into(),
                },
                409,
                "in_use",
            ),
            (
                BillingError::Unavailable {
                    dependency: Dependency::Coordination,
                    source: "connection refused (os error 111)".into(),
                },
                503,
                "dependency_unavailable",
            ),
            (
                BillingError::Overloaded {
                    resource: "password hashing",
                },
                503,
                "overloaded",
            ),
            (
                BillingError::Internal {
                    source: "syntax error at or near SELECT".into(),
                },
                500,
                "internal_error",
            ),
        ];
        for (error, status, code) in cases {
            let (transient, outage) = (error.is_transient(), error.is_outage());
            let mapped = map(error);
            assert_eq!(mapped.problem().status, status, "{mapped}");
            assert_eq!(mapped.code().as_str(), code, "{mapped}");
            // What is transient is the service's rule: the API invites a
            // retry (`Retry-After`) only for such errors, and an outage is
            // one of them.
            if mapped.code().retry_after().is_some() {
                assert!(transient, "Retry-After on a lasting error: {mapped}");
            }
            assert!(transient || !outage, "{mapped}");
        }
    }

    #[test]
    fn details_speak_the_api_language() {
        let mapped = map(BillingError::NotFound {
            resource: Resource::Plan,
            key: "pro".into(),
        });
        assert_eq!(mapped.problem().detail, "plan pro not found");
        let mapped = map(BillingError::Validation {
            message: "slug must be 1 to 100 lower-case letters".into(),
            source: None,
        });
        assert_eq!(
            mapped.problem().detail,
            "slug must be 1 to 100 lower-case letters"
        );
    }

    /// The details name every resource as they did when the errors carried
    /// table names, mapped by the API (`tarif_plan` was a `plan`).
    #[test]
    fn every_resource_keeps_its_name_in_details() {
        fn former_name(table: &str) -> &str {
            match table {
                "tarif_plan" => "plan",
                "user_invoice" => "invoice",
                "user_case" => "case",
                "user_details" => "user details",
                "tax_rate" => "tax rate",
                other => other,
            }
        }
        for resource in Resource::ALL {
            let name = former_name(resource.table());
            let detail = |error| map(error).problem().detail.clone();
            assert_eq!(
                detail(BillingError::NotFound {
                    resource,
                    key: "7".into()
                }),
                format!("{name} 7 not found")
            );
            assert_eq!(
                detail(BillingError::AlreadyExists {
                    resource,
                    field: "code".into()
                }),
                format!("a {name} with this code already exists")
            );
            assert_eq!(
                detail(BillingError::VersionMismatch {
                    resource,
                    current: 2
                }),
                format!("the {name} is at version 2, not the one in If-Match; read it again")
            );
        }
        let locked = map(BillingError::Locked {
            contended: Contended::Lock(LockKey::of(Resource::Invoice, 42)),
        });
        assert_eq!(
            locked.problem().detail,
            "invoice 42 is being changed by another request; retry later"
        );
    }

    #[test]
    fn version_mismatch_carries_the_current_version() {
        let mapped = map(BillingError::VersionMismatch {
            resource: Resource::User,
            current: 7,
        });
        let body = serde_json::to_value(mapped.problem()).unwrap();
        assert_eq!(body["current_version"], json!(7));
    }

    #[test]
    fn server_errors_name_the_dependency_but_never_the_cause() {
        let mapped = map(BillingError::Unavailable {
            dependency: Dependency::Database,
            source: "password authentication failed for user billing".into(),
        });
        assert_eq!(
            mapped.problem().detail,
            "the database is unavailable; retry later"
        );
        let mapped = map(BillingError::Unavailable {
            dependency: Dependency::Coordination,
            source: "connection refused (os error 111)".into(),
        });
        assert_eq!(mapped.problem().detail, "Redis is unavailable; retry later");
        assert_eq!(mapped.problem().status, 503);
        let mapped = map(BillingError::Internal {
            source: "syntax error at or near SELECT".into(),
        });
        let text = serde_json::to_string(mapped.problem()).unwrap();
        assert!(!text.contains("SELECT"), "{text}");
        assert!(!mapped.to_string().contains("SELECT"), "{mapped}");
        // The cause is kept for the log.
        let chain = super::super::ErrorChain(&mapped).to_string();
        assert!(chain.contains("SELECT"), "{chain}");
    }
}
