//! Erasure over HTTP: `DELETE /users/{id}` and `PATCH {"status":"deleted"}`
//! erase the same personal data (read back from every table row of the
//! user), and a deleted user is read-only (409 `invalid_transition`).

use billing_domain::PageRequest;
use billing_domain::entities::{user, user_case, user_details};
use billing_repository::{
    Database, DatabaseSettings, Invoices, Subscriptions, UserCases, UserDetailsRepository, Users,
};
use billing_test_support::{TestDatabase, test_on_each_backend};
use serde_json::{Value, json};

use crate::fixtures::{billed, get_json, json_with, patch_json, post_json};
use crate::helpers::{TestApp, assert_problem, spawn_app};

/// Personal data written below (text, not bare digits, which timestamps
/// may contain by chance).
const SECRETS: [&str; 7] = [
    "hopper",
    "card ending 4242",
    "4111 1111 1111 4242",
    "+1 703 555 0123",
    "wilson blvd",
    "arlington",
    "sw1a 9zz",
];

/// The stored text of every row of user `id` (user, details, cases,
/// subscriptions, invoices), lower-case, the password hash apart, which is
/// returned on its own.
async fn stored(
    database: &Database,
    id: i64,
) -> anyhow::Result<(String, String, Vec<user_case::Model>)> {
    let user: user::Model = Users::get(database, id).await?;
    let details: Option<user_details::Model> =
        UserDetailsRepository::find_by_user(database, id).await?;
    let cases = UserCases::by_user(database, id, None, PageRequest::new(1, 100)?)
        .await?
        .items;
    let subscriptions = Subscriptions::by_user(database, id, PageRequest::new(1, 100)?)
        .await?
        .items;
    let invoices = Invoices::by_user(database, id, None, PageRequest::new(1, 100)?)
        .await?
        .items;
    let text = serde_json::to_string(&(&user, &details, &cases, &subscriptions, &invoices))?
        .to_lowercase();
    Ok((text, user.password_hash.0, cases))
}

/// A user with details and two cases full of personal data, a plan, a
/// subscription and an invoice; returns the user.
async fn user_with_personal_data(app: &TestApp, email: &str, slug: &str) -> anyhow::Result<Value> {
    let set = billed(app, email, slug).await?;
    let id = &set.user["id"];
    let details = json!({"first_name": "Grace", "last_name": "Hopper", "phone": "+1 703 555 0123",
        "address_line1": "1000 Wilson Blvd", "city": "Arlington", "postal_code": "SW1A 9ZZ",
        "country_code": "US"});
    let response = app
        .api_client
        .put(app.url(&format!("/api/v1/users/{id}/details")))
        .json(&details)
        .send()
        .await?;
    json_with(response, 200).await?;
    for case in [
        json!({"subject": "Card ending 4242 charged twice", "description": "Card 4111 1111 1111 4242, call +1 703 555 0123"}),
        json!({"subject": "Moved", "description": "Now at 1000 Wilson Blvd, Arlington SW1A 9ZZ"}),
    ] {
        json_with(
            post_json(app, &format!("/users/{id}/cases"), &case).await?,
            201,
        )
        .await?;
    }
    Ok(set.user)
}

async fn assert_erased_and_read_only(
    app: &TestApp,
    database: &Database,
    user: &Value,
) -> anyhow::Result<()> {
    let id = user["id"].as_i64().expect("an id");
    let (text, hash, cases) = stored(database, id).await?;
    for secret in SECRETS {
        assert!(!text.contains(secret), "{secret} survived: {text}");
    }
    let email = user["email"].as_str().expect("an e-mail").to_lowercase();
    assert!(!text.contains(&email), "the e-mail survived");
    assert!(!hash.starts_with('$'), "the password hash survived");
    assert!(
        UserDetailsRepository::find_by_user(database, id)
            .await?
            .is_none()
    );
    assert_eq!(cases.len(), 2);
    assert_eq!(
        get_json(app, &format!("/users/{id}")).await?["status"],
        "deleted"
    );

    let path = format!("/users/{id}");
    for body in [
        json!({"email": "grace@example.com"}),
        json!({"status": "active"}),
        json!({"status": "deleted"}),
        json!({}),
    ] {
        assert_problem(
            patch_json(app, &path, None, &body).await?,
            409,
            "invalid_transition",
        )
        .await?;
    }
    let details = app
        .api_client
        .put(app.url(&format!("/api/v1{path}/details")))
        .json(&json!({"first_name": "Grace"}))
        .send()
        .await?;
    assert_problem(details, 409, "invalid_transition").await?;
    assert_problem(
        post_json(
            app,
            &format!("{path}/cases"),
            &json!({"subject": "Card 4242", "description": "x"}),
        )
        .await?,
        409,
        "invalid_transition",
    )
    .await?;
    for case in &cases {
        assert_problem(
            patch_json(
                app,
                &format!("/cases/{}", case.id),
                None,
                &json!({"description": "card 4242"}),
            )
            .await?,
            409,
            "invalid_transition",
        )
        .await?;
    }
    let plan = cases_plan(database, id).await?;
    assert_problem(
        post_json(
            app,
            "/subscriptions",
            &json!({"user_id": id, "plan_id": plan}),
        )
        .await?,
        409,
        "invalid_transition",
    )
    .await?;
    assert_problem(
        post_json(app, "/invoices", &json!({"user_id": id, "plan_id": plan})).await?,
        409,
        "invalid_transition",
    )
    .await?;
    // Deleting again succeeds and writes nothing.
    let again = app
        .api_client
        .delete(app.url(&format!("/api/v1{path}")))
        .send()
        .await?;
    assert_eq!(again.status().as_u16(), 204);
    assert_eq!(
        stored(database, id).await?.0,
        text,
        "a deleted user was changed"
    );
    Ok(())
}

/// The plan of the user's subscription.
async fn cases_plan(database: &Database, id: i64) -> anyhow::Result<i64> {
    Ok(
        Subscriptions::by_user(database, id, PageRequest::new(1, 1)?)
            .await?
            .items[0]
            .tarif_plan_id,
    )
}

async fn both_paths_to_deleted_erase_the_same(db: TestDatabase) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    let database = billing_repository::connect(&DatabaseSettings::new(app.db.url())).await?;

    let by_delete = user_with_personal_data(&app, "grace.hopper@example.com", "pro").await?;
    let id = by_delete["id"].as_i64().expect("an id");
    let (text, hash, _) = stored(&database, id).await?;
    for secret in SECRETS {
        assert!(text.contains(secret), "{secret} missing before erasure");
    }
    assert!(hash.starts_with("$argon2id$"));
    let response = app
        .api_client
        .delete(app.url(&format!("/api/v1/users/{id}")))
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 204);
    assert_erased_and_read_only(&app, &database, &by_delete).await?;

    let by_status = user_with_personal_data(&app, "hopper.grace@example.com", "team").await?;
    let id = by_status["id"].as_i64().expect("an id");
    let deleted = json_with(
        patch_json(
            &app,
            &format!("/users/{id}"),
            Some("\"1\""),
            &json!({"status": "deleted"}),
        )
        .await?,
        200,
    )
    .await?;
    assert_eq!(deleted["status"], "deleted");
    assert_erased_and_read_only(&app, &database, &by_status).await
}

test_on_each_backend!(both_paths_to_deleted_erase_the_same);
