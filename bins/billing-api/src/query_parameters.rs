//! Unknown query parameters are refused: 400 `validation_failed` naming the
//! parameter and those the operation takes. The OpenAPI document is the one
//! list of what each operation takes, so the server and the document cannot
//! disagree about it.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{ResponseError, web};
use utoipa::OpenApi;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::{RefOr, path::PathItem};

use crate::openapi::ApiDoc;
use crate::problem::ApiError;

/// The query parameters each documented operation takes.
#[derive(Debug)]
pub struct QueryRules {
    operations: Vec<OperationRule>,
}

#[derive(Debug)]
struct OperationRule {
    method: Method,
    /// The path template split at `/`; `None` stands for a `{parameter}`.
    segments: Vec<Option<String>>,
    /// The query parameters it takes; `None` when the document names one
    /// by reference only (then the operation is not checked).
    allowed: Option<BTreeSet<String>>,
}

impl QueryRules {
    /// The rules of this server's OpenAPI document, built once.
    pub fn of_this_api() -> &'static Self {
        static RULES: OnceLock<QueryRules> = OnceLock::new();
        RULES.get_or_init(|| Self::from_document(&ApiDoc::openapi()))
    }

    /// The rules of `document`.
    #[must_use]
    pub fn from_document(document: &utoipa::openapi::OpenApi) -> Self {
        let mut operations = Vec::new();
        for (path, item) in &document.paths.paths {
            let segments = path
                .split('/')
                .map(|segment| {
                    let parameter = segment.starts_with('{') && segment.ends_with('}');
                    (!parameter).then(|| segment.to_owned())
                })
                .collect::<Vec<_>>();
            for (method, operation) in operations_of(item) {
                operations.push(OperationRule {
                    method,
                    segments: segments.clone(),
                    allowed: query_parameters(operation),
                });
            }
        }
        Self { operations }
    }

    /// The query parameters `method path` takes; `None` when the document
    /// has no such operation (or does not list them), so nothing is
    /// checked.
    fn allowed(&self, method: &Method, path: &str) -> Option<&BTreeSet<String>> {
        let segments: Vec<&str> = path.split('/').collect();
        self.operations
            .iter()
            .find(|rule| {
                rule.method == *method
                    && rule.segments.len() == segments.len()
                    && rule
                        .segments
                        .iter()
                        .zip(&segments)
                        .all(|(expected, actual)| {
                            expected.as_deref().is_none_or(|literal| literal == *actual)
                        })
            })
            .and_then(|rule| rule.allowed.as_ref())
    }

    /// The first parameter of `query` that `method path` does not take.
    ///
    /// # Errors
    /// 400 `validation_failed` naming it, or for a query string that is not
    /// `application/x-www-form-urlencoded`.
    pub fn check(&self, method: &Method, path: &str, query: &str) -> Result<(), ApiError> {
        if query.is_empty() {
            return Ok(());
        }
        let Some(allowed) = self.allowed(method, path) else {
            return Ok(());
        };
        let pairs = web::Query::<Vec<(String, String)>>::from_query(query)
            .map_err(|e| ApiError::validation(format!("the query string cannot be read: {e}")))?;
        match pairs.iter().find(|(name, _)| !allowed.contains(name)) {
            None => Ok(()),
            Some((name, _)) if allowed.is_empty() => Err(ApiError::validation(format!(
                "unknown query parameter `{name}`: {method} {path} takes none"
            ))),
            Some((name, _)) => Err(ApiError::validation(format!(
                "unknown query parameter `{name}`: {method} {path} takes {}",
                allowed
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }
}

/// The operations of a path item with their methods.
fn operations_of(item: &PathItem) -> impl Iterator<Item = (Method, &Operation)> {
    [
        (Method::GET, &item.get),
        (Method::PUT, &item.put),
        (Method::POST, &item.post),
        (Method::DELETE, &item.delete),
        (Method::OPTIONS, &item.options),
        (Method::HEAD, &item.head),
        (Method::PATCH, &item.patch),
        (Method::TRACE, &item.trace),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.as_ref().map(|operation| (method, operation)))
}

/// The names of an operation's query parameters (`None` if one is a
/// reference).
fn query_parameters(operation: &Operation) -> Option<BTreeSet<String>> {
    let mut names = BTreeSet::new();
    for parameter in operation.parameters.iter().flatten() {
        match parameter {
            RefOr::T(parameter) => {
                if matches!(parameter.parameter_in, ParameterIn::Query) {
                    names.insert(parameter.name.clone());
                }
            }
            RefOr::Ref(_) => return None,
        }
    }
    Some(names)
}

/// Middleware: refuses a request whose query string names a parameter its
/// operation does not take.
///
/// # Errors
/// Never: refusals are responses.
pub async fn refuse_unknown_query_parameters(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let checked =
        QueryRules::of_this_api().check(request.method(), request.path(), request.query_string());
    match checked {
        Ok(()) => Ok(next.call(request).await?.map_into_boxed_body()),
        Err(error) => {
            let (http_request, _payload) = request.into_parts();
            Ok(ServiceResponse::new(http_request, error.error_response()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(method: Method, path: &str, query: &str) -> Result<(), String> {
        QueryRules::of_this_api()
            .check(&method, path, query)
            .map_err(|e| e.problem().detail.clone())
    }

    #[test]
    fn documented_parameters_pass_and_others_are_named() {
        assert_eq!(
            check(Method::GET, "/api/v1/plans", "page=1&per_page=5"),
            Ok(())
        );
        assert_eq!(check(Method::GET, "/api/v1/plans", ""), Ok(()));
        let refused = check(Method::GET, "/api/v1/plans", "page=1&pag=2").unwrap_err();
        assert!(refused.contains("`pag`"), "{refused}");
        assert!(refused.contains("page"), "{refused}");
        let none = check(Method::GET, "/api/v1/taxes/1/rates", "anything=1");
        assert!(none.is_err_and(|d| d.contains("`anything`")));
        let none = check(Method::GET, "/api/v1/invoices/7", "x=1").unwrap_err();
        assert!(none.contains("takes none"), "{none}");
    }

    #[test]
    fn undocumented_routes_are_not_checked() {
        assert_eq!(check(Method::GET, "/api/v1/test/anything", "x=1"), Ok(()));
        assert_eq!(check(Method::DELETE, "/api/v1/plans", "x=1"), Ok(()));
    }
}
