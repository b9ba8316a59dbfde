//! `/openapi.json` documents the whole contract truthfully: every route
//! with its success status, money as strings, ids as integers, errors as
//! problem+json, the headers of the conventions.

use billing_test_support::{Backend, TestDatabase};
use serde_json::Value;

use crate::helpers::spawn_app;

/// Every route of the contract (`../shared/API.md`) with its success status.
const CONTRACT: &[(&str, &str, &str)] = &[
    ("get", "/api/v1/currencies", "200"),
    ("post", "/api/v1/currencies", "201"),
    ("get", "/api/v1/currencies/{code}", "200"),
    ("patch", "/api/v1/currencies/{code}", "200"),
    ("get", "/api/v1/taxes", "200"),
    ("post", "/api/v1/taxes", "201"),
    ("get", "/api/v1/taxes/{id}", "200"),
    ("patch", "/api/v1/taxes/{id}", "200"),
    ("get", "/api/v1/taxes/{id}/rates", "200"),
    ("post", "/api/v1/users", "201"),
    ("get", "/api/v1/users", "200"),
    ("get", "/api/v1/users/{id}", "200"),
    ("patch", "/api/v1/users/{id}", "200"),
    ("delete", "/api/v1/users/{id}", "204"),
    ("put", "/api/v1/users/{id}/details", "200"),
    ("get", "/api/v1/users/{id}/details", "200"),
    ("delete", "/api/v1/users/{id}/details", "204"),
    ("post", "/api/v1/users/{id}/cases", "201"),
    ("get", "/api/v1/users/{id}/cases", "200"),
    ("patch", "/api/v1/cases/{id}", "200"),
    ("get", "/api/v1/plans", "200"),
    ("post", "/api/v1/plans", "201"),
    ("get", "/api/v1/plans/{id}", "200"),
    ("patch", "/api/v1/plans/{id}", "200"),
    ("post", "/api/v1/subscriptions", "201"),
    ("get", "/api/v1/subscriptions/{id}", "200"),
    ("get", "/api/v1/users/{id}/subscriptions", "200"),
    ("post", "/api/v1/subscriptions/{id}/activate", "200"),
    ("post", "/api/v1/subscriptions/{id}/pause", "200"),
    ("post", "/api/v1/subscriptions/{id}/cancel", "200"),
    ("post", "/api/v1/subscriptions/{id}/expire", "200"),
    ("post", "/api/v1/invoices", "201"),
    ("get", "/api/v1/invoices/{id}", "200"),
    ("get", "/api/v1/users/{id}/invoices", "200"),
    ("post", "/api/v1/invoices/{id}/pay", "200"),
    ("post", "/api/v1/invoices/{id}/fail", "200"),
    ("post", "/api/v1/invoices/{id}/cancel", "200"),
    ("post", "/api/v1/invoices/{id}/refund", "200"),
];

fn parameter<'a>(operation: &'a Value, name: &str) -> Option<&'a Value> {
    operation["parameters"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_covers_the_contract_truthfully() -> anyhow::Result<()> {
    let db = TestDatabase::create(Backend::Sqlite)
        .await?
        .expect("SQLite");
    let app = spawn_app(db).await?;
    let doc: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await?
        .json()
        .await?;
    let schemas = &doc["components"]["schemas"];

    for (method, path, success) in CONTRACT {
        let operation = &doc["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is not documented");
        let responses = &operation["responses"];
        assert!(
            responses[success].is_object(),
            "{method} {path}: no {success}"
        );
        // Every error is documented as a problem.
        for (status, response) in responses.as_object().unwrap() {
            if status.starts_with('4') || status.starts_with('5') {
                let schema = &response["content"]["application/problem+json"]["schema"]["$ref"];
                assert_eq!(
                    schema, "#/components/schemas/Problem",
                    "{method} {path} {status}"
                );
            }
        }
        for status in ["400", "401", "500", "503"] {
            assert!(
                responses[status].is_object(),
                "{method} {path}: no {status}"
            );
        }
        assert!(
            operation["security"].is_array(),
            "{method} {path}: no security"
        );
        if *method == "post" {
            assert!(
                parameter(operation, "Idempotency-Key").is_some(),
                "{method} {path}: no Idempotency-Key"
            );
        }
        if matches!(*method, "patch" | "delete")
            || (path.contains("/{id}/") && *method == "post" && !path.ends_with("/cases"))
        {
            assert!(
                parameter(operation, "If-Match").is_some(),
                "{method} {path}: no If-Match"
            );
        }
        if let Some(id) = parameter(operation, "id")
            && !(*method == "get" && path.starts_with("/api/v1/plans/"))
        {
            assert_eq!(id["schema"]["type"], "integer", "{method} {path}");
        }
        if *success == "201" {
            assert!(
                responses["201"]["headers"]["Location"].is_object(),
                "{method} {path}"
            );
        }
    }
    // Pay and refund require their key.
    for path in ["/api/v1/invoices/{id}/pay", "/api/v1/invoices/{id}/refund"] {
        let key = parameter(&doc["paths"][path]["post"], "Idempotency-Key").unwrap();
        assert_eq!(key["required"], true, "{path}");
    }

    // Money and rates are strings; ids are integers.
    for (schema, fields) in [
        ("PlanResponse", &["price"][..]),
        (
            "InvoiceResponse",
            &["amount", "net_amount", "tax_amount"][..],
        ),
        ("CurrencyResponse", &["exchange_rate"][..]),
        ("TaxResponse", &["rate"][..]),
        ("TaxRateResponse", &["rate"][..]),
        ("NewPlan", &["price"][..]),
        ("NewCurrency", &["exchange_rate"][..]),
        ("NewTax", &["rate"][..]),
    ] {
        for field in fields {
            assert_eq!(
                schemas[schema]["properties"][field]["type"], "string",
                "{schema}.{field}"
            );
        }
    }
    assert_eq!(
        schemas["PlanResponse"]["properties"]["prices"]["additionalProperties"]["type"],
        "string"
    );
    for schema in [
        "InvoiceResponse",
        "UserResponse",
        "SubscriptionResponse",
        "PlanResponse",
    ] {
        assert_eq!(
            schemas[schema]["properties"]["id"]["type"], "integer",
            "{schema}"
        );
        assert_eq!(
            schemas[schema]["properties"]["created_at"]["format"], "date-time",
            "{schema}"
        );
    }
    // Nothing internal is documented.
    assert!(schemas["InvoiceResponse"]["properties"]["fencing_token"].is_null());
    assert!(schemas["UserResponse"]["properties"]["password_hash"].is_null());
    assert!(schemas["UserResponse"]["properties"]["password"].is_null());
    // The list envelope.
    let list = &schemas["ListResponse_InvoiceResponse"];
    for field in ["items", "page", "per_page", "total"] {
        assert!(list["properties"][field].is_object(), "{list}");
    }
    // Every code a problem may carry.
    let codes = schemas["ProblemCode"]["enum"].as_array().unwrap();
    for code in [
        "in_use",
        "version_mismatch",
        "idempotency_key_required",
        "idempotency_key_reused",
    ] {
        assert!(codes.contains(&Value::from(code)), "{code}");
    }
    Ok(())
}
