//! Unit tests of the settings: defaults, cross-checks and the variables
//! their messages name.

use std::path::PathBuf;
use std::time::Duration;

use billing_repository::Backend;

use super::*;

#[test]
fn redis_cluster_and_ca_file_must_match_redis_url() {
    let with = |url: Option<&str>, cluster: bool, ca_file: Option<&str>| {
        let mut settings = Settings::default();
        settings.redis.url = url.map(|url| RedisUrl::parse(url).unwrap());
        settings.redis.cluster = cluster;
        settings.redis.ca_file = ca_file.map(PathBuf::from);
        settings
    };
    let refused = |settings: Settings, expected: &str| {
        let error = settings.validate().unwrap_err().to_string();
        assert!(error.contains(expected), "{error}");
    };
    let nodes = "redis://a:7000,redis://b:7001";
    refused(with(Some(nodes), false, None), "BILLING_REDIS_CLUSTER=true");
    assert!(with(Some(nodes), true, None).validate().is_ok());
    assert!(with(Some("redis://a:7000"), true, None).validate().is_ok());
    refused(with(None, true, None), "needs REDIS_URL");
    refused(with(None, false, Some("/etc/hosts")), "REDIS_URL is not");
    refused(
        with(Some("redis://a:6379"), false, Some("/etc/hosts")),
        "is not rediss://",
    );
    refused(
        with(Some("rediss://a:6379"), false, Some("/nonexistent/ca.pem")),
        "cannot be read",
    );
    let settings = with(Some("rediss://a:6379"), true, Some("/etc/hosts"));
    assert!(settings.validate().is_ok());
    let redis = settings.redis_settings().unwrap();
    assert!(redis.cluster);
    assert_eq!(redis.ca_file, Some(PathBuf::from("/etc/hosts")));
}

#[test]
fn the_token_is_hidden_in_the_settings() {
    let mut settings = Settings::default();
    settings.http.api_token = Some(ApiToken::parse("0123456789abcdef").unwrap());
    assert!(!format!("{settings:?}").contains("0123"));
}

#[test]
fn defaults_match_the_command_line_defaults() {
    // Settings::default() parses no flags with the environment ignored;
    // compare with a parse that reads the environment whenever the test
    // process sets none of the variables (the integration tests run the
    // binary with a clean environment).
    let parsed = Settings::try_parse_from(["billing-api"]).unwrap();
    let defaults = Settings::default();
    if std::env::vars()
        .all(|(k, _)| !k.starts_with("BILLING_") && k != "DATABASE_URL" && k != "REDIS_URL")
    {
        assert_eq!(parsed, defaults);
    }
    assert_eq!(defaults.database.url.expose(), DEFAULT_DATABASE_URL);
    assert_eq!(defaults.http.bind.to_string(), DEFAULT_BIND);
    assert_eq!(defaults.http.body_limit, DEFAULT_BODY_LIMIT);
    assert_eq!(defaults.redis.pool_size, DEFAULT_REDIS_POOL_SIZE);
    assert_eq!(defaults.redis.key_prefix, DEFAULT_REDIS_KEY_PREFIX);
    assert!(defaults.redis.url.is_none());
}

#[test]
fn the_billing_rules_defaults_are_the_service_defaults() {
    let from_settings = Settings::default().billing_settings();
    let service = billing_service::BillingSettings::default();
    assert_eq!(from_settings.payment_lock_ttl, service.payment_lock_ttl);
    assert_eq!(from_settings.payment_lock_wait, service.payment_lock_wait);
    assert_eq!(from_settings.max_attempts, service.max_attempts);
    assert_eq!(
        from_settings.invoice_payment_window,
        service.invoice_payment_window
    );
    assert_eq!(from_settings.idempotency_ttl, service.idempotency_ttl);
    assert_eq!(
        from_settings.idempotency_in_flight_ttl,
        service.idempotency_in_flight_ttl
    );
    assert_eq!(
        from_settings.password_hash_queue,
        service.password_hash_queue
    );
    assert_eq!(from_settings.catalogue_cache, service.catalogue_cache);
    assert_eq!(from_settings.catalogue_refresh, service.catalogue_refresh);
    assert_eq!(from_settings.invoice_batching, service.invoice_batching);
}

#[test]
fn validation_names_the_variable() {
    assert_eq!(Settings::default().validate(), Ok(()));
    let refused = |change: &dyn Fn(&mut Settings), expected: &str| {
        let mut settings = Settings::default();
        change(&mut settings);
        let error = settings.validate().unwrap_err().to_string();
        assert!(error.contains(expected), "{expected}: {error}");
        error
    };
    refused(
        &|s| s.http.bind = "0.0.0.0:8080".parse().unwrap(),
        "BILLING_API_TOKEN",
    );
    let mut with_token = Settings::default();
    with_token.http.bind = "0.0.0.0:8080".parse().unwrap();
    with_token.http.api_token = Some(ApiToken::parse("0123456789abcdef").unwrap());
    assert_eq!(with_token.validate(), Ok(()));
    let error = refused(
        &|s| {
            s.database.min_connections = Some(10);
            s.database.max_connections = Some(5);
        },
        "BILLING_DB_MIN_CONNECTIONS",
    );
    assert!(
        error.contains("exceeds BILLING_DB_MAX_CONNECTIONS"),
        "{error}"
    );
    refused(
        &|s| s.database.max_connections = Some(0),
        "BILLING_DB_MAX_CONNECTIONS must be at least 1",
    );
    refused(
        &|s| s.idempotency.ttl = Duration::from_secs(30),
        "BILLING_IDEMPOTENCY_IN_FLIGHT_TTL must not exceed BILLING_IDEMPOTENCY_TTL",
    );
    refused(
        &|s| s.rules.payment_lock_ttl = Duration::ZERO,
        "BILLING_PAYMENT_LOCK_TTL",
    );
    refused(
        &|s| s.rules.payment_window = chrono::TimeDelta::zero(),
        "BILLING_PAYMENT_WINDOW",
    );
    let error = refused(
        &|s| s.database.url = DatabaseUrl::unchecked("mysql://u:s3cret@h/db").unwrap(),
        "DATABASE_URL",
    );
    assert!(!error.contains("s3cret"), "{error}");
    let error = refused(
        &|s| s.http.api_token = Some(ApiToken::unchecked("abc").unwrap()),
        "BILLING_API_TOKEN",
    );
    assert!(!error.contains("abc"), "{error}");
}

#[test]
fn the_redis_ranges_come_from_the_coordination_crate() {
    let mut settings = Settings::default();
    settings.redis.url = Some(RedisUrl::parse("redis://h:6379").unwrap());
    assert_eq!(settings.validate(), Ok(()));
    settings.redis.key_prefix = "bad{prefix}".to_owned();
    let error = settings.validate().unwrap_err().to_string();
    assert!(error.contains("BILLING_REDIS_KEY_PREFIX"), "{error}");
    settings.redis.key_prefix = "billing".to_owned();
    settings.idempotency.ttl = Duration::from_secs(30);
    let error = settings.validate().unwrap_err().to_string();
    assert!(
        error.contains("BILLING_IDEMPOTENCY_IN_FLIGHT_TTL must not exceed BILLING_IDEMPOTENCY_TTL"),
        "{error}"
    );
}

#[test]
fn pool_defaults_follow_the_backend() {
    let sqlite = Settings::default().database_settings();
    assert_eq!((sqlite.min_connections, sqlite.max_connections), (1, 8));
    let mut postgres = Settings::default();
    postgres.database.url = DatabaseUrl::parse("postgres://u@h/db").unwrap();
    assert_eq!(postgres.database.url.backend(), Some(Backend::Postgres));
    let pg = postgres.database_settings();
    assert_eq!((pg.min_connections, pg.max_connections), (2, 60));
}

#[test]
fn crate_field_names_become_variables_word_by_word() {
    let error = naming_variable(
        &[
            ("in_flight_ttl", "B_IN_FLIGHT"),
            ("idempotency_ttl", "B_TTL"),
        ],
        "in_flight_ttl",
        "must not exceed idempotency_ttl (idempotency_ttl_max stays)",
    );
    assert_eq!(
        error.to_string(),
        "invalid configuration: B_IN_FLIGHT must not exceed B_TTL (idempotency_ttl_max stays)"
    );
}

#[test]
fn the_billing_rules_can_be_set() {
    let settings = Settings::try_parse_from([
        "billing-api",
        "--payment-window",
        "1h",
        "--payment-lock-ttl",
        "20s",
        "--payment-lock-wait",
        "250ms",
        "--retry-attempts",
        "9",
    ])
    .unwrap();
    let billing = settings.billing_settings();
    assert_eq!(billing.invoice_payment_window, chrono::TimeDelta::hours(1));
    assert_eq!(billing.payment_lock_ttl, Duration::from_secs(20));
    assert_eq!(billing.payment_lock_wait, Duration::from_millis(250));
    assert_eq!(billing.max_attempts, 9);
    assert!(Settings::try_parse_from(["billing-api", "--retry-attempts", "0"]).is_err());
}

#[test]
fn the_readme_documents_every_variable() {
    const README: &str = include_str!("../../README.md");
    let command = Settings::command();
    let variables: Vec<String> = command
        .get_arguments()
        .filter_map(|arg| arg.get_env())
        .map(|env| env.to_string_lossy().into_owned())
        .collect();
    assert!(variables.len() > 20, "{variables:?}");
    for variable in &variables {
        assert!(
            README.contains(&format!("| `{variable}` |")),
            "bins/billing-api/README.md lacks {variable}"
        );
    }
    for line in README.lines().filter(|line| line.starts_with("| `--")) {
        let documented = line.split('`').nth(3).unwrap_or_default();
        assert!(
            variables.iter().any(|variable| variable == documented),
            "the README documents {documented}, which no setting reads"
        );
    }
}
