//! `/users` and `/users/{id}/details`: registering (never showing the
//! password), listing with filters, changing and deleting with `If-Match`,
//! personal details, and bad input that writes nothing.

use billing_test_support::{TestDatabase, test_on_each_backend};
use serde_json::{Value, json};

use crate::fixtures::{create_user, etag, get, get_json, json_with, patch_json, post_json, total};
use crate::helpers::{assert_problem, spawn_app};

async fn users_are_registered_changed_and_deleted(db: TestDatabase) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    let response = post_json(
        &app,
        "/users",
        &json!({"email": "Ada@Example.COM", "password": "correct horse battery", "role": "vendor"}),
    )
    .await?;
    let location = response.headers()["location"].to_str()?.to_owned();
    assert_eq!(etag(&response), "\"1\"");
    let ada = json_with(response, 201).await?;
    assert_eq!(location, format!("/api/v1/users/{}", ada["id"]));
    let mut keys: Vec<&str> = ada
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "created_at",
            "email",
            "id",
            "role",
            "status",
            "updated_at",
            "version"
        ]
    );
    assert_eq!(ada["email"], "ada@example.com");
    assert_eq!(
        (ada["status"].clone(), ada["role"].clone()),
        (json!("pending"), json!("vendor"))
    );
    let bob = create_user(&app, "bob@example.com").await?;

    let path = format!("/users/{}", ada["id"]);
    let response = get(&app, &path).await?;
    assert_eq!(etag(&response), "\"1\"");
    assert!(!response.text().await?.contains("argon2"));

    // Filters.
    assert_eq!(total(&app, "/users").await?, 2);
    assert_eq!(total(&app, "/users?role=vendor").await?, 1);
    assert_eq!(total(&app, "/users?status=pending&role=user").await?, 1);
    assert_eq!(total(&app, "/users?status=active").await?, 0);
    let page = get_json(&app, "/users?page=2&per_page=1").await?;
    assert_eq!(page["items"][0]["id"], bob["id"]);
    for bad in [
        "?page=0",
        "?per_page=0",
        "?per_page=101",
        "?page=x",
        "?status=gone",
        "?status=",
    ] {
        let response = get(&app, &format!("/users{bad}")).await?;
        assert_problem(response, 400, "validation_failed").await?;
    }

    // Changes with If-Match.
    let response = patch_json(&app, &path, Some("\"1\""), &json!({"status": "active"})).await?;
    assert_eq!(etag(&response), "\"2\"");
    assert_eq!(json_with(response, 200).await?["status"], "active");
    let stale = patch_json(&app, &path, Some("W/\"1\""), &json!({"role": "admin"})).await?;
    assert_eq!(
        assert_problem(stale, 412, "version_mismatch").await?["current_version"],
        2
    );
    let taken = patch_json(&app, &path, None, &json!({"email": "BOB@example.com"})).await?;
    assert_problem(taken, 409, "already_exists").await?;
    assert_eq!(get_json(&app, &path).await?["version"], 2);

    // Deleting: a stale version is refused, then it is done.
    let response = app
        .api_client
        .delete(app.url(&format!("/api/v1{path}")))
        .header("If-Match", "\"1\"")
        .send()
        .await?;
    assert_eq!(
        assert_problem(response, 412, "version_mismatch").await?["current_version"],
        2
    );
    let response = app
        .api_client
        .delete(app.url(&format!("/api/v1{path}")))
        .header("If-Match", "2")
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 204);
    assert!(response.text().await?.is_empty());
    let deleted = get_json(&app, &path).await?;
    assert_eq!(deleted["status"], "deleted");
    assert_ne!(deleted["email"], "ada@example.com");
    let revived = patch_json(&app, &path, None, &json!({"status": "active"})).await?;
    assert_problem(revived, 409, "invalid_transition").await?;

    assert_problem(get(&app, "/users/999999").await?, 404, "not_found").await?;
    let response = app
        .api_client
        .delete(app.url("/api/v1/users/999999"))
        .send()
        .await?;
    assert_problem(response, 404, "not_found").await?;
    Ok(())
}

async fn personal_details_are_kept_apart(db: TestDatabase) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    let user = create_user(&app, "cy@example.com").await?;
    let path = format!("/api/v1/users/{}/details", user["id"]);
    let put = |body: Value, if_match: Option<&'static str>| {
        let mut request = app.api_client.put(app.url(&path)).json(&body);
        if let Some(version) = if_match {
            request = request.header("If-Match", version);
        }
        request.send()
    };
    assert_problem(
        app.api_client.get(app.url(&path)).send().await?,
        404,
        "not_found",
    )
    .await?;

    let response = put(
        json!({"first_name": "Cy", "city": " Berlin ", "country_code": "de"}),
        None,
    )
    .await?;
    assert_eq!(etag(&response), "\"1\"");
    let details = json_with(response, 200).await?;
    assert_eq!(
        (details["city"].clone(), details["country_code"].clone()),
        (json!("Berlin"), json!("DE"))
    );
    assert_eq!(details["user_id"], user["id"]);

    let response = put(json!({"first_name": "Cyrus"}), Some("\"1\"")).await?;
    let replaced = json_with(response, 200).await?;
    assert_eq!(
        (
            replaced["first_name"].clone(),
            replaced["city"].clone(),
            replaced["version"].clone()
        ),
        (json!("Cyrus"), Value::Null, json!(2))
    );
    let stale = put(json!({"first_name": "C"}), Some("\"1\"")).await?;
    assert_problem(stale, 412, "version_mismatch").await?;
    for bad in [
        json!({"phone": "1".repeat(51)}),
        json!({"country_code": "XX"}),
        json!({"nickname": "cy"}),
        json!({"first_name": 7}),
    ] {
        assert_problem(put(bad, None).await?, 400, "validation_failed").await?;
    }
    let response = app.api_client.get(app.url(&path)).send().await?;
    assert_eq!(etag(&response), "\"2\"");
    assert_eq!(json_with(response, 200).await?["first_name"], "Cyrus");

    let response = app
        .api_client
        .delete(app.url(&path))
        .header("If-Match", "\"1\"")
        .send()
        .await?;
    assert_eq!(
        assert_problem(response, 412, "version_mismatch").await?["current_version"],
        2
    );
    let response = app
        .api_client
        .delete(app.url(&path))
        .header("If-Match", "\"2\"")
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 204);
    assert_problem(
        app.api_client.get(app.url(&path)).send().await?,
        404,
        "not_found",
    )
    .await?;
    let response = app.api_client.delete(app.url(&path)).send().await?;
    assert_eq!(
        response.status().as_u16(),
        204,
        "erasing absent details succeeds"
    );
    // The user stays.
    assert_eq!(
        get_json(&app, &format!("/users/{}", user["id"])).await?["status"],
        "pending"
    );

    let response = app
        .api_client
        .put(app.url("/api/v1/users/999999/details"))
        .json(&json!({}))
        .send()
        .await?;
    assert_problem(response, 404, "not_found").await?;
    Ok(())
}

async fn bad_users_are_refused_and_write_nothing(db: TestDatabase) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    create_user(&app, "taken@example.com").await?;
    let cases = [
        (
            json!({"email": "not-an-email", "password": "long enough"}),
            400,
            "validation_failed",
        ),
        (
            json!({"email": "a@example.com", "password": "short"}),
            400,
            "validation_failed",
        ),
        (
            json!({"email": "a@example.com", "password": "long enough", "role": "root"}),
            400,
            "validation_failed",
        ),
        (
            json!({"email": "a@example.com", "password": 12345678}),
            400,
            "validation_failed",
        ),
        (
            json!({"email": "a@example.com", "password": "long enough", "status": "active"}),
            400,
            "validation_failed",
        ),
        (
            json!({"email": "a\u{0}b@example.com", "password": "long enough"}),
            400,
            "validation_failed",
        ),
        (
            json!({"email": "TAKEN@example.com", "password": "long enough"}),
            409,
            "already_exists",
        ),
        (json!(["a@example.com"]), 400, "validation_failed"),
    ];
    for (body, status, code) in cases {
        assert_problem(post_json(&app, "/users", &body).await?, status, code).await?;
    }
    let response = app
        .api_client
        .post(app.url("/api/v1/users"))
        .header("Content-Type", "application/json")
        .body(r#"{"email": "a@example.com", "password": "#)
        .send()
        .await?;
    assert_problem(response, 400, "validation_failed").await?;
    let response = app
        .api_client
        .post(app.url("/api/v1/users"))
        .header("Content-Type", "text/plain")
        .body(r#"{"email": "a@example.com", "password": "long enough"}"#)
        .send()
        .await?;
    assert_problem(response, 415, "unsupported_media_type").await?;
    assert_eq!(total(&app, "/users").await?, 1);
    Ok(())
}

test_on_each_backend!(
    users_are_registered_changed_and_deleted,
    personal_details_are_kept_apart,
    bad_users_are_refused_and_write_nothing
);
