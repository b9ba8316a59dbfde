//! The served OpenAPI document and the server agree on every input rule:
//! for each constrained field of each request body and each constrained
//! parameter the document states, values at and around its limits
//! (derived from the document: lengths, ranges, the pattern) are sent to
//! the running app, and the server must refuse with 400 exactly those the
//! document calls invalid. Also for every operation: an unknown query
//! parameter and a body that is not an object are refused; and every link
//! names an existing operation and its parameters.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use billing_test_support::TestDatabase;
use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::contract_probes::{is_constrained, probes, satisfies};
use crate::fixtures::{billed, create_vat, post_json};
use crate::helpers::{TestApp, spawn_app};

/// The rows every request refers to.
struct World {
    user: i64,
    plan: i64,
    subscription: i64,
    invoice: i64,
    case: i64,
    tax: i64,
    endpoint: i64,
}

static UNIQUE: AtomicU64 = AtomicU64::new(0);

fn unique() -> u64 {
    UNIQUE.fetch_add(1, Ordering::Relaxed)
}

/// A request that the server accepts (or refuses for the state of the rows
/// only), as (method, path, body), for the operation `operation_id`.
fn base_request(operation_id: &str, w: &World) -> Option<(Method, String, Value)> {
    let n = unique();
    let (method, path, body) = match operation_id {
        "create_currency" => (
            Method::POST,
            "/currencies".to_owned(),
            json!({"code": "USD", "name": "US Dollar", "exchange_rate": "1.08"}),
        ),
        "update_currency" => (Method::PATCH, "/currencies/EUR".to_owned(), json!({})),
        "create_tax" => (
            Method::POST,
            "/taxes".to_owned(),
            json!({"name": "VAT", "code": format!("vat-{n}"), "rate": "19", "country_code": "DE"}),
        ),
        "update_tax" => (Method::PATCH, format!("/taxes/{}", w.tax), json!({})),
        "create_user" => (
            Method::POST,
            "/users".to_owned(),
            json!({"email": format!("u{n}@example.com"), "password": "correct horse battery"}),
        ),
        "update_user" => (Method::PATCH, format!("/users/{}", w.user), json!({})),
        "put_user_details" => (Method::PUT, format!("/users/{}/details", w.user), json!({})),
        "create_case" => (
            Method::POST,
            format!("/users/{}/cases", w.user),
            json!({"subject": "Help", "description": "Please"}),
        ),
        "update_case" => (Method::PATCH, format!("/cases/{}", w.case), json!({})),
        "create_plan" => (
            Method::POST,
            "/plans".to_owned(),
            json!({"name": "Plan", "slug": format!("plan-{n}"), "price": "10", "currency": "EUR", "billing_period": "monthly"}),
        ),
        "update_plan" => (Method::PATCH, format!("/plans/{}", w.plan), json!({})),
        "create_subscription" => (
            Method::POST,
            "/subscriptions".to_owned(),
            json!({"user_id": w.user, "plan_id": w.plan}),
        ),
        "create_invoice" => (
            Method::POST,
            "/invoices".to_owned(),
            json!({"user_id": w.user, "plan_id": w.plan, "subscription_id": w.subscription}),
        ),
        "create_endpoint" => (
            Method::POST,
            "/webhook-endpoints".to_owned(),
            json!({"url": "http://127.0.0.1:9/hook", "event_types": ["invoice.paid"]}),
        ),
        "update_endpoint" => (
            Method::PATCH,
            format!("/webhook-endpoints/{}", w.endpoint),
            json!({"status": "disabled"}),
        ),
        "pay_invoice" => (
            Method::POST,
            format!("/invoices/{}/pay", w.invoice),
            json!({"payment_method": "card"}),
        ),
        _ => return None,
    };
    Some((method, format!("/api/v1{path}"), body))
}

/// The request body schemas of the document's operations, with their ids.
fn body_schemas(document: &Value) -> Vec<(String, Value)> {
    let mut found = Vec::new();
    for item in document["paths"]
        .as_object()
        .into_iter()
        .flat_map(|p| p.values())
    {
        for operation in item.as_object().into_iter().flat_map(|o| o.values()) {
            let reference = operation
                .pointer("/requestBody/content/application~1json/schema/$ref")
                .and_then(Value::as_str);
            if let (Some(id), Some(reference)) = (operation["operationId"].as_str(), reference) {
                let pointer = reference.trim_start_matches('#');
                if let Some(schema) = document.pointer(pointer) {
                    found.push((id.to_owned(), schema.clone()));
                }
            }
        }
    }
    found
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    body: &Value,
) -> anyhow::Result<(u16, Value)> {
    let response = app
        .api_client
        .request(method, app.url(path))
        .header("Idempotency-Key", format!("contract-{}", unique()))
        .json(body)
        .send()
        .await?;
    let status = response.status().as_u16();
    let answer = response.json::<Value>().await.unwrap_or(Value::Null);
    Ok((status, answer))
}

async fn world(app: &TestApp) -> anyhow::Result<World> {
    let set = billed(app, "world@example.com", "world").await?;
    let tax = create_vat(app).await?;
    let case = post_json(
        app,
        &format!("/users/{}/cases", set.user["id"]),
        &json!({"subject": "Help", "description": "Please"}),
    )
    .await?
    .json::<Value>()
    .await?;
    let endpoint = post_json(
        app,
        "/webhook-endpoints",
        &json!({"url": "http://127.0.0.1:9/hook", "event_types": ["invoice.paid"]}),
    )
    .await?
    .json::<Value>()
    .await?;
    let id = |v: &Value| v["id"].as_i64().unwrap_or_default();
    Ok(World {
        endpoint: id(&endpoint),
        user: id(&set.user),
        plan: id(&set.plan),
        subscription: id(&set.subscription),
        invoice: id(&set.invoice),
        case: id(&case),
        tax: id(&tax),
    })
}

/// For every constrained field of every request body the document
/// describes, the server refuses (400) exactly the probes the document
/// calls invalid.
pub async fn body_rules_agree_with_the_server(db: TestDatabase) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    let document: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await?
        .json()
        .await?;
    let w = world(&app).await?;
    let mut disagreements = Vec::new();
    let mut checked = 0;
    for (operation_id, schema) in body_schemas(&document) {
        let properties = schema["properties"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for (field, rule) in properties.iter().filter(|(_, r)| is_constrained(r)) {
            let Some((method, path, _)) = base_request(&operation_id, &w) else {
                disagreements.push(format!("{operation_id}: no base request in this test for its constrained field `{field}`"));
                continue;
            };
            for probe in probes(rule) {
                let Some((_, path2, mut body)) = base_request(&operation_id, &w) else {
                    continue;
                };
                debug_assert_eq!(path, path2);
                body[field.as_str()] = probe.clone();
                let valid = satisfies(rule, &probe);
                let (status, answer) = send(&app, method.clone(), &path, &body).await?;
                checked += 1;
                let refused = status == 400;
                if refused == valid {
                    disagreements.push(format!(
                        "{operation_id} `{field}` = {probe}: the document says {}, the server answered {status} {answer}",
                        if valid { "valid" } else { "invalid" }
                    ));
                }
            }
        }
    }
    assert!(checked > 300, "only {checked} probes were sent");
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
    Ok(())
}

/// The constrained header and query parameters: `Idempotency-Key`,
/// `If-Match`, `page`, `per_page`, probed on one operation each.
pub async fn parameter_rules_agree_with_the_server(db: TestDatabase) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    let document: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await?
        .json()
        .await?;
    let w = world(&app).await?;
    // (location, name) → (schema, a GET path without parameters that takes it).
    let mut rules: BTreeMap<(String, String), (Value, String)> = BTreeMap::new();
    for (path, item) in document["paths"].as_object().into_iter().flatten() {
        for (method, operation) in item.as_object().into_iter().flatten() {
            let plain_get = method == "get" && !path.contains('{');
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                let schema = &parameter["schema"];
                let location = parameter["in"].as_str().unwrap_or_default();
                // A reference with rules beside it states two rules at once
                // (a case status that must also be a delivery status).
                assert!(
                    schema.get("$ref").is_none()
                        || schema.as_object().is_some_and(|s| s.len() == 1),
                    "{path}: {location} parameter {} has rules beside its $ref: {schema}",
                    parameter["name"]
                );
                if is_constrained(schema) && location != "path" {
                    let name = parameter["name"].as_str().unwrap_or_default();
                    let key = (location.to_owned(), name.to_owned());
                    if location == "header" || plain_get {
                        rules.insert(key, (schema.clone(), path.clone()));
                    } else {
                        rules.entry(key).or_insert((schema.clone(), String::new()));
                    }
                }
            }
        }
    }
    let mut disagreements = Vec::new();
    for ((location, name), (schema, list)) in &rules {
        for probe in probes(schema) {
            let valid = satisfies(schema, &probe);
            let text = match &probe {
                Value::String(s) => s.clone(),
                other @ (Value::Null
                | Value::Bool(_)
                | Value::Number(_)
                | Value::Array(_)
                | Value::Object(_)) => other.to_string(),
            };
            let request = match (location.as_str(), name.as_str()) {
                ("header", "If-Match") => app
                    .api_client
                    .patch(app.url(&format!("/api/v1/users/{}", w.user)))
                    .header("If-Match", &text)
                    .json(&json!({})),
                ("header", "Idempotency-Key") => app
                    .api_client
                    .post(app.url(&format!("/api/v1/invoices/{}/fail", w.invoice)))
                    .header("Idempotency-Key", &text),
                ("query", _) if !list.is_empty() => {
                    let mut url = reqwest::Url::parse(&app.url(list))?;
                    url.query_pairs_mut().append_pair(name, &text);
                    app.api_client.get(url)
                }
                _ => {
                    disagreements.push(format!("{location} {name}: not probed by this test"));
                    break;
                }
            };
            let Ok(request) = request.build() else {
                // A value HTTP cannot carry (a control character in a header).
                continue;
            };
            let response = app.api_client.execute(request).await?;
            let status = response.status().as_u16();
            if (status == 400) == valid {
                disagreements.push(format!(
                    "{location} {name} = {text:?}: the document says {}, the server answered {status}",
                    if valid { "valid" } else { "invalid" }
                ));
            }
        }
    }
    assert!(rules.len() >= 4, "{rules:?}");
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
    Ok(())
}

/// Every operation refuses an unknown query parameter, naming it, and
/// every operation with a JSON body refuses a body that is not an object.
pub async fn every_operation_refuses_unknown_parameters_and_non_objects(
    db: TestDatabase,
) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    let document: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await?
        .json()
        .await?;
    let w = world(&app).await?;
    let mut failures = Vec::new();
    let mut operations = 0;
    for (path, item) in document["paths"].as_object().cloned().unwrap_or_default() {
        let concrete = path
            .replace("{id}", &w.user.to_string())
            .replace("{code}", "EUR");
        for (method, operation) in item.as_object().cloned().unwrap_or_default() {
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            operations += 1;
            let response = app
                .api_client
                .request(method.clone(), app.url(&format!("{concrete}?zz_unknown=1")))
                .header("Idempotency-Key", format!("contract-{}", unique()))
                .json(&json!({}))
                .send()
                .await?;
            let status = response.status().as_u16();
            let detail =
                response.json::<Value>().await.unwrap_or(Value::Null)["detail"].to_string();
            if status != 400 || !detail.contains("`zz_unknown`") {
                failures.push(format!("{method} {path}?zz_unknown=1: {status} {detail}"));
            }
            if operation.get("requestBody").is_some() {
                let response = app
                    .api_client
                    .request(method.clone(), app.url(&concrete))
                    .header("Idempotency-Key", format!("contract-{}", unique()))
                    .header("Content-Type", "application/json")
                    .body("[null, null]")
                    .send()
                    .await?;
                if response.status().as_u16() != 400 {
                    failures.push(format!(
                        "{method} {path} with [null, null]: {}",
                        response.status()
                    ));
                }
            }
        }
    }
    assert!(operations >= 40, "{operations}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

/// Every link of the document names an existing operation, and each of
/// its parameters and body fields exists there.
pub async fn links_name_existing_operations(db: TestDatabase) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    let document: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await?
        .json()
        .await?;
    let mut by_id: Map<String, Value> = Map::new();
    for item in document["paths"]
        .as_object()
        .into_iter()
        .flat_map(|p| p.values())
    {
        for operation in item.as_object().into_iter().flat_map(|o| o.values()) {
            if let Some(id) = operation["operationId"].as_str() {
                by_id.insert(id.to_owned(), operation.clone());
            }
        }
    }
    let mut links = 0;
    for operation in by_id.values() {
        for response in operation["responses"]
            .as_object()
            .into_iter()
            .flat_map(|r| r.values())
        {
            for (name, link) in response["links"].as_object().into_iter().flatten() {
                links += 1;
                let target_id = link["operationId"].as_str().unwrap_or_default();
                let target = by_id
                    .get(target_id)
                    .unwrap_or_else(|| panic!("link {name} names no operation: {link}"));
                for parameter in link["parameters"]
                    .as_object()
                    .into_iter()
                    .flat_map(|p| p.keys())
                {
                    let (location, parameter) =
                        parameter.split_once('.').unwrap_or(("path", parameter));
                    let exists = target["parameters"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|p| p["name"] == parameter && p["in"] == location);
                    assert!(
                        exists,
                        "link {name}: {target_id} has no {location} parameter {parameter}"
                    );
                }
                if let Some(body) = link["requestBody"].as_object() {
                    let reference = target
                        .pointer("/requestBody/content/application~1json/schema/$ref")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    let schema = document
                        .pointer(reference.trim_start_matches('#'))
                        .cloned()
                        .unwrap_or_default();
                    for field in body.keys() {
                        assert!(
                            schema["properties"].get(field).is_some(),
                            "link {name}: {target_id} has no body field {field}"
                        );
                    }
                }
            }
        }
    }
    // The payment path is reachable by links alone: a user and a plan lead
    // to a subscription, a subscription to its invoice, an invoice to pay.
    let links_of = |id: &str| {
        by_id[id]["responses"]["201"]["links"]
            .as_object()
            .map(|l| l.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
    };
    assert!(links_of("create_user").contains(&"create_subscription".to_owned()));
    assert!(links_of("create_plan").contains(&"create_subscription".to_owned()));
    assert!(links_of("create_subscription").contains(&"create_invoice".to_owned()));
    assert!(links_of("create_invoice").contains(&"pay_invoice".to_owned()));
    assert!(links_of("create_invoice").contains(&"refund_invoice".to_owned()));
    assert!(links_of("create_tax").contains(&"list_tax_rates".to_owned()));
    // A webhook endpoint leads to its deliveries, a delivery to its
    // attempts and its redelivery.
    assert!(links_of("create_endpoint").contains(&"list_deliveries".to_owned()));
    assert_eq!(
        by_id["create_endpoint"]["responses"]["201"]["links"]["list_deliveries"]["parameters"],
        json!({"query.endpoint_id": "$response.body#/id"})
    );
    let from_deliveries = by_id["list_deliveries"]["responses"]["200"]["links"]
        .as_object()
        .map(|l| l.keys().cloned().collect::<Vec<_>>())
        .unwrap_or_default();
    assert_eq!(
        from_deliveries,
        ["get_delivery", "redeliver"],
        "{from_deliveries:?}"
    );
    assert!(by_id["list_events"]["responses"]["200"]["links"]["get_event"].is_object());
    assert!(links >= 30, "{links}");
    Ok(())
}

billing_test_support::test_on_each_backend!(
    body_rules_agree_with_the_server,
    parameter_rules_agree_with_the_server,
    every_operation_refuses_unknown_parameters_and_non_objects,
    links_name_existing_operations
);
