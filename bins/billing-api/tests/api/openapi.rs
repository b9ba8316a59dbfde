//! `/openapi.json` documents the whole contract truthfully: every route
//! with its success status, money as strings, ids as integers, errors as
//! problem+json, the headers of the conventions; and the HTTP reference
//! `docs/API.md` lists the same routes and the same error codes.

use billing_test_support::{Backend, TestDatabase};
use serde_json::Value;

use crate::helpers::spawn_app;

/// The HTTP reference of the repository, read at compile time.
const API_MD: &str = include_str!("../../../../docs/API.md");

/// Every route of the contract (`docs/API.md`) with its success status.
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
    ("get", "/api/v1/cases/{id}", "200"),
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
    ("get", "/api/v1/events", "200"),
    ("get", "/api/v1/events/{id}", "200"),
    ("post", "/api/v1/webhook-endpoints", "201"),
    ("get", "/api/v1/webhook-endpoints", "200"),
    ("get", "/api/v1/webhook-endpoints/{id}", "200"),
    ("patch", "/api/v1/webhook-endpoints/{id}", "200"),
    ("delete", "/api/v1/webhook-endpoints/{id}", "204"),
    ("get", "/api/v1/webhook-deliveries", "200"),
    ("get", "/api/v1/webhook-deliveries/{id}", "200"),
    ("post", "/api/v1/webhook-deliveries/{id}/redeliver", "200"),
];

/// The resources without a version (no `ETag`, so no `If-Match`): webhook
/// endpoints and deliveries are bookkeeping, not billing records.
fn versioned(path: &str) -> bool {
    !path.starts_with("/api/v1/webhook-")
}

/// The operations a path item of the document may hold.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The `## <title>` section of `docs/API.md`, up to the next `## `.
fn api_md_section(title: &str) -> &'static str {
    API_MD
        .split("\n## ")
        .find(|section| section.starts_with(title))
        .unwrap_or_else(|| panic!("docs/API.md has no \"## {title}\" section"))
}

/// The cells of the table rows of a section that start with a code span,
/// without the backticks of each cell.
fn api_md_rows(title: &str) -> Vec<Vec<String>> {
    api_md_section(title)
        .lines()
        .filter(|line| line.starts_with("| `"))
        .map(|line| {
            line.trim_matches('|')
                .split('|')
                .map(|cell| cell.trim().trim_matches('`').to_owned())
                .collect()
        })
        .collect()
}

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
        if versioned(path)
            && (matches!(*method, "patch" | "delete")
                || (path.contains("/{id}/") && *method == "post" && !path.ends_with("/cases")))
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
    // The document serves no /api/v1 operation the contract lacks.
    for (path, item) in doc["paths"].as_object().unwrap() {
        if !path.starts_with("/api/v1") {
            continue;
        }
        for method in METHODS.iter().filter(|m| item[**m].is_object()) {
            assert!(
                CONTRACT.iter().any(|(m, p, _)| m == method && p == path),
                "{method} {path} is served but missing from CONTRACT and docs/API.md"
            );
        }
    }
    // docs/API.md's route index lists exactly the contract's routes, with
    // the same success statuses.
    let mut documented: Vec<(String, String, String)> = api_md_rows("Route index")
        .into_iter()
        .map(|cells| {
            (
                cells[0].to_ascii_lowercase(),
                format!("/api/v1{}", cells[1]),
                cells[2].clone(),
            )
        })
        .collect();
    documented.sort();
    let mut contract: Vec<(String, String, String)> = CONTRACT
        .iter()
        .map(|(m, p, s)| ((*m).to_owned(), (*p).to_owned(), (*s).to_owned()))
        .collect();
    contract.sort();
    assert_eq!(
        documented, contract,
        "the route index of docs/API.md differs from the routes served"
    );

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
    // docs/API.md's table of error codes lists exactly these codes, each
    // with its status.
    let mut documented_codes = Vec::new();
    for cells in api_md_rows("Errors") {
        let code: billing_api::ProblemCode = serde_json::from_value(Value::from(cells[0].as_str()))
            .unwrap_or_else(|e| {
                panic!("docs/API.md documents an unknown code {:?}: {e}", cells[0])
            });
        let status = code.status().as_u16().to_string();
        assert!(
            cells[1].starts_with(&status),
            "docs/API.md gives {code} the status {:?}, the server {status}",
            cells[1]
        );
        documented_codes.push(Value::from(cells[0].as_str()));
    }
    let mut served_codes = codes.clone();
    served_codes.sort_by_key(ToString::to_string);
    documented_codes.sort_by_key(ToString::to_string);
    assert_eq!(
        documented_codes, served_codes,
        "the error codes of docs/API.md differ from the server's"
    );
    Ok(())
}
