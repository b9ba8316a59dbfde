//! `/plans`: creating with prices in other currencies, reading by id or
//! slug, listing active or all plans by `sort_order`, changing with
//! `If-Match`, and bad money that writes nothing.

use billing_test_support::{TestDatabase, test_on_each_backend};
use serde_json::{Value, json};

use crate::fixtures::{
    create_currency, create_plan, create_plan_with, etag, get, get_json, json_with, patch_json,
    post_json, total,
};
use crate::helpers::{TestApp, assert_problem, spawn_app};

async fn plans_are_created_read_listed_and_changed(db: TestDatabase) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    create_currency(&app, "USD", "1.08").await?;
    create_currency(&app, "JPY", "160").await?;
    let response = post_json(
        &app,
        "/plans",
        &json!({
            "name": "Pro", "slug": "pro", "description": "For teams", "price": "19.9",
            "currency": "EUR", "billing_period": "monthly", "features": {"seats": 10},
            "sort_order": 2, "prices": {"USD": "21.99", "JPY": "3000"}
        }),
    )
    .await?;
    let location = response.headers()["location"].to_str()?.to_owned();
    assert_eq!(etag(&response), "\"1\"");
    let pro = json_with(response, 201).await?;
    assert_eq!(location, format!("/api/v1/plans/{}", pro["id"]));
    assert_eq!(pro["price"], "19.90");
    assert_eq!(pro["prices"], json!({"USD": "21.99", "JPY": "3000"}));
    assert_eq!(pro["features"], json!({"seats": 10}));
    assert_eq!(pro["billing_period"], "monthly");

    let by_id = get(&app, &format!("/plans/{}", pro["id"])).await?;
    assert_eq!(etag(&by_id), "\"1\"");
    assert_eq!(json_with(by_id, 200).await?, pro);
    assert_eq!(get_json(&app, "/plans/pro").await?, pro);

    let basic = create_plan_with(
        &app,
        &json!({"name": "Basic", "slug": "basic", "price": "5", "currency": "EUR",
                "billing_period": "yearly", "sort_order": 1}),
    )
    .await?;
    let old = create_plan_with(
        &app,
        &json!({"name": "Old", "slug": "old", "price": "1.00", "currency": "EUR",
                "billing_period": "lifetime", "is_active": false}),
    )
    .await?;
    let active = get_json(&app, "/plans").await?;
    let slugs: Vec<&Value> = active["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["slug"])
        .collect();
    assert_eq!(
        slugs,
        [&json!("basic"), &json!("pro")],
        "by sort_order, active only"
    );
    assert_eq!(total(&app, "/plans?include_inactive=true").await?, 3);
    assert_eq!(total(&app, "/plans?include_inactive=false").await?, 2);
    assert_problem(
        get(&app, "/plans?include_inactive=yes").await?,
        400,
        "validation_failed",
    )
    .await?;
    assert_eq!(old["is_active"], false);

    // Changes with If-Match.
    let path = format!("/plans/{}", basic["id"]);
    let response = patch_json(
        &app,
        &path,
        Some("\"1\""),
        &json!({"price": "6.50", "prices": {"USD": "7"}}),
    )
    .await?;
    assert_eq!(etag(&response), "\"2\"");
    let changed = json_with(response, 200).await?;
    assert_eq!(
        (changed["price"].clone(), changed["prices"].clone()),
        (json!("6.50"), json!({"USD": "7.00"}))
    );
    let stale = patch_json(&app, &path, Some("\"1\""), &json!({"name": "B"})).await?;
    assert_eq!(
        assert_problem(stale, 412, "version_mismatch").await?["current_version"],
        2
    );
    let taken = patch_json(&app, &path, None, &json!({"slug": "pro"})).await?;
    assert_problem(taken, 409, "already_exists").await?;
    let by_slug = patch_json(&app, "/plans/basic", None, &json!({"name": "B"})).await?;
    assert_problem(by_slug, 400, "validation_failed").await?;

    for missing in ["/plans/999999", "/plans/nope", "/plans/NOPE", "/plans/%00"] {
        assert_problem(get(&app, missing).await?, 404, "not_found").await?;
    }
    Ok(())
}

async fn bad_plans_are_refused_and_write_nothing(db: TestDatabase) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    let pro = create_plan(&app, "pro", "10.00").await?;
    let base = json!({"name": "X", "slug": "x", "price": "1.00", "currency": "EUR", "billing_period": "monthly"});
    let with = |field: &str, value: Value| {
        let mut body = base.clone();
        body[field] = value;
        body
    };
    let cases = [
        (with("price", json!("19.999")), 409, "invalid_transition"),
        (with("price", json!("-1.00")), 400, "validation_failed"),
        (with("price", json!(19.99)), 400, "validation_failed"),
        (with("price", json!("ten")), 400, "validation_failed"),
        (
            with("price", json!("1000000000000000")),
            400,
            "validation_failed",
        ),
        (with("currency", json!("XYZ")), 400, "validation_failed"),
        (with("currency", json!("USD")), 404, "not_found"),
        (
            with("prices", json!({"XYZ": "1.00"})),
            400,
            "validation_failed",
        ),
        (
            with("prices", json!({"EUR": "1.001"})),
            409,
            "invalid_transition",
        ),
        (
            with("billing_period", json!("weekly")),
            400,
            "validation_failed",
        ),
        (with("slug", json!("Not A Slug")), 400, "validation_failed"),
        (with("slug", json!("123")), 400, "validation_failed"),
        (with("features", json!([1, 2])), 400, "validation_failed"),
        (
            with("features", json!({"note": "nul \u{0} inside"})),
            400,
            "validation_failed",
        ),
        (with("sort_order", json!(1e12)), 400, "validation_failed"),
        (with("slug", json!("pro")), 409, "already_exists"),
    ];
    for (body, status, code) in cases {
        let response = post_json(&app, "/plans", &body).await?;
        let problem = assert_problem(response, status, code).await?;
        assert!(
            !problem["detail"].as_str().unwrap_or_default().is_empty(),
            "{body}: {problem}"
        );
    }
    let path = format!("/plans/{}", pro["id"]);
    let response = patch_json(&app, &path, None, &json!({"price": "0.001"})).await?;
    assert_problem(response, 409, "invalid_transition").await?;

    assert_eq!(total(&app, "/plans?include_inactive=true").await?, 1);
    let stored = get_json(&app, &path).await?;
    assert_eq!(
        (stored["price"].clone(), stored["version"].clone()),
        (json!("10.00"), json!(1))
    );
    Ok(())
}

/// Sends `body` as JSON text exactly as written (numbers no `Value`
/// could hold included).
async fn send_raw(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: String,
) -> anyhow::Result<reqwest::Response> {
    Ok(app
        .api_client
        .request(method, app.url(&format!("/api/v1{path}")))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await?)
}

/// The `features` member of a response body, as the text the server sent.
fn features_text(body: &str) -> &str {
    let start = body.find(r#""features":"#).expect("a features member") + 11;
    let mut depth = 0;
    for (offset, byte) in body[start..].bytes().enumerate() {
        match byte {
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return &body[start..=start + offset];
                }
            }
            _ => {}
        }
    }
    panic!("unterminated features in {body}")
}

async fn feature_numbers_are_kept_exactly_or_refused(db: TestDatabase) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    let plan = |slug: &str, features: &str| {
        format!(
            r#"{{"name":"N","slug":"{slug}","price":"1","currency":"EUR","billing_period":"monthly","features":{features}}}"#
        )
    };
    // Written as the server writes them (keys sorted, shortest floats), so
    // what comes back must be the same bytes.
    let kept = [
        r#"{"max":18446744073709551615,"min":-9223372036854775808,"seats":10}"#,
        r#"{"half":0.5,"price":19.99,"third":0.3333333333333333,"tiny":1e-7}"#,
        r#"{"tiers":[{"limit":9007199254740993,"ratio":2.5}]}"#,
    ];
    let created = send_raw(&app, reqwest::Method::POST, "/plans", plan("kept", kept[0])).await?;
    assert_eq!(created.status().as_u16(), 201);
    let text = created.text().await?;
    assert_eq!(features_text(&text), kept[0], "{text}");
    let id = serde_json::from_str::<Value>(&text)?["id"].clone();
    let path = format!("/plans/{id}");
    for features in &kept[1..] {
        let body = format!(r#"{{"features":{features}}}"#);
        let changed = send_raw(&app, reqwest::Method::PATCH, &path, body).await?;
        assert_eq!(changed.status().as_u16(), 200);
        let text = changed.text().await?;
        assert_eq!(features_text(&text), *features, "PATCH: {text}");
        // Read back from the database.
        let text = get(&app, &path).await?.text().await?;
        assert_eq!(features_text(&text), *features, "GET: {text}");
    }
    let version = get_json(&app, &path).await?["version"].clone();

    // Numbers that would come back as other numbers are refused by name,
    // on creation and on change, and write nothing.
    let refused = [
        (r#"{"seats":18446744073709551616}"#, "features.seats"),
        (r#"{"floor":-9223372036854775809}"#, "features.floor"),
        (
            r#"{"a":{"b":[1,0.1000000000000000000001]}}"#,
            "features.a.b[1]",
        ),
        (r#"{"huge":1e400}"#, "features.huge"),
    ];
    for (features, field) in refused {
        let response = send_raw(
            &app,
            reqwest::Method::POST,
            "/plans",
            plan("refused", features),
        )
        .await?;
        let problem = assert_problem(response, 400, "validation_failed").await?;
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(field), "{features}: {problem}");
        let body = format!(r#"{{"features":{features},"name":"Renamed"}}"#);
        let response = send_raw(&app, reqwest::Method::PATCH, &path, body).await?;
        let problem = assert_problem(response, 400, "validation_failed").await?;
        assert!(
            problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains(field),
            "{features}: {problem}"
        );
    }
    assert_eq!(total(&app, "/plans?include_inactive=true").await?, 1);
    let stored = get(&app, &path).await?.text().await?;
    assert_eq!(features_text(&stored), kept[2], "{stored}");
    let stored: Value = serde_json::from_str(&stored)?;
    assert_eq!(
        (stored["version"].clone(), stored["name"].clone()),
        (version, json!("N"))
    );
    Ok(())
}

test_on_each_backend!(
    plans_are_created_read_listed_and_changed,
    bad_plans_are_refused_and_write_nothing,
    feature_numbers_are_kept_exactly_or_refused
);
