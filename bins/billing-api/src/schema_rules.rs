//! States in the OpenAPI document every rule the server checks on input
//! ([`InputRules`]), from the constants and patterns the validation itself
//! uses (`billing_service::rules`, the page limits, the header parsers), so
//! a generated client or a fuzzer knows them and the two cannot drift (the
//! test `tests/api/contract.rs` sends the boundary values of every rule
//! the document states and checks that the server agrees).
//!
//! Three layers, applied to the rendered document ([`add_input_rules`]):
//!
//! 1. [`FIELD_RULES`]: the rule of each body field, by schema and property;
//! 2. the header parameters, by name (`Idempotency-Key`, `If-Match`) and the
//!    `page` query parameter;
//! 3. generic rules: every integer gets the range of its format (`int32`,
//!    `int64`), and every text of a request body that states no pattern
//!    gets [`rules::TEXT_PATTERN`] (no NUL character).

use billing_service::rules::{self, DecimalRule};
use serde_json::{Map, Value, json};

use billing_domain::events::EventType;

use crate::request::{IF_MATCH_PATTERN, MAX_PAGE};
use crate::routes::events::{MAX_LIMIT, RESOURCE_KIND_NAMES};
use crate::routes::webhooks::{DELIVERY_STATUS_NAMES, ENDPOINT_STATUS_NAMES};

/// A rule of one input field.
#[derive(Clone, Copy, Debug)]
pub enum FieldRule {
    /// Text that must not be blank, 1 to `max` characters as sent.
    RequiredText(usize),
    /// Text of at most `max` characters as sent; blank means none.
    OptionalText(usize),
    /// Text of any length (within the body limit); blank means none.
    Text,
    /// A plan slug.
    Slug,
    /// A tax code.
    TaxCode,
    /// An e-mail address.
    Email,
    /// A password.
    Password,
    /// An ISO 4217 currency code, any letter case.
    CurrencyCode,
    /// An ISO 3166-1 alpha-2 country code, any letter case.
    CountryCode,
    /// A decimal string of this shape.
    Decimal(DecimalRule),
    /// A map from upper-case currency code to price.
    PriceMap,
    /// A plan's features: an object of [`FEATURE_VALUE`]s.
    Features,
    /// An integer from `min` to `max`.
    Integer(i64, i64),
    /// A webhook URL ([`rules::webhook_url_pattern`]).
    WebhookUrl,
    /// A list of event type names.
    EventTypes,
    /// One of these names.
    OneOf(&'static [&'static str]),
}

impl FieldRule {
    /// The JSON Schema keywords of the rule.
    #[must_use]
    pub fn keywords(self) -> Map<String, Value> {
        let value = match self {
            Self::RequiredText(max) => json!({
                "minLength": 1, "maxLength": max, "pattern": rules::required_text_pattern()
            }),
            Self::OptionalText(max) => json!({"maxLength": max, "pattern": rules::TEXT_PATTERN}),
            Self::Text => json!({"pattern": rules::TEXT_PATTERN}),
            Self::Slug => json!({
                "minLength": 1, "maxLength": rules::SLUG_MAX_CHARS, "pattern": rules::SLUG_PATTERN
            }),
            Self::TaxCode => json!({
                "minLength": 1, "maxLength": rules::TAX_CODE_MAX_CHARS,
                "pattern": rules::TAX_CODE_PATTERN
            }),
            Self::Email => json!({
                "maxLength": rules::MAX_EMAIL_CHARS, "pattern": rules::email_pattern()
            }),
            Self::Password => json!({
                "minLength": rules::MIN_PASSWORD_CHARS, "maxLength": rules::MAX_PASSWORD_CHARS,
                "pattern": rules::TEXT_PATTERN
            }),
            Self::CurrencyCode => json!({"pattern": rules::currency_code_pattern()}),
            Self::CountryCode => json!({"pattern": rules::country_code_pattern()}),
            Self::Decimal(rule) => json!({"pattern": rule.pattern()}),
            Self::PriceMap => json!({
                "propertyNames": {"pattern": rules::upper_case_currency_code_pattern()},
                "additionalProperties": {"type": "string", "pattern": rules::PRICE.pattern()}
            }),
            Self::Integer(min, max) => json!({"minimum": min, "maximum": max}),
            Self::WebhookUrl => json!({
                "maxLength": rules::MAX_URL_LEN, "pattern": rules::webhook_url_pattern()
            }),
            Self::EventTypes => json!({"items": {"type": "string", "enum": event_type_names()}}),
            Self::OneOf(names) => json!({"enum": names}),
            Self::Features => json!({
                "propertyNames": {"pattern": rules::TEXT_PATTERN},
                "additionalProperties": {"$ref": format!("#/components/schemas/{FEATURE_VALUE}")}
            }),
        };
        match value {
            Value::Object(map) => map,
            Value::Null
            | Value::Bool(_)
            | Value::Number(_)
            | Value::String(_)
            | Value::Array(_) => Map::new(),
        }
    }
}

const NAME: FieldRule = FieldRule::RequiredText(rules::NAME_MAX_CHARS);
const DESCRIPTION: FieldRule = FieldRule::Text;
const PRICE: FieldRule = FieldRule::Decimal(rules::PRICE);
const EXCHANGE_RATE: FieldRule = FieldRule::Decimal(rules::EXCHANGE_RATE);
const TAX_RATE: FieldRule = FieldRule::Decimal(rules::TAX_RATE);
const DECIMAL_PLACES: FieldRule = FieldRule::Integer(0, rules::MAX_DECIMAL_PLACES as i64);
const SUBJECT: FieldRule = FieldRule::RequiredText(rules::CASE_SUBJECT_MAX_CHARS);
const CASE_TEXT: FieldRule = FieldRule::RequiredText(rules::CASE_DESCRIPTION_MAX_CHARS);

/// The rule of each body field: (schema, property, rule).
pub const FIELD_RULES: &[(&str, &str, FieldRule)] = &[
    ("NewCurrency", "code", FieldRule::CurrencyCode),
    ("NewCurrency", "name", NAME),
    (
        "NewCurrency",
        "symbol",
        FieldRule::OptionalText(rules::SYMBOL_MAX_CHARS),
    ),
    ("NewCurrency", "exchange_rate", EXCHANGE_RATE),
    ("NewCurrency", "decimal_places", DECIMAL_PLACES),
    ("CurrencyChanges", "name", NAME),
    (
        "CurrencyChanges",
        "symbol",
        FieldRule::OptionalText(rules::SYMBOL_MAX_CHARS),
    ),
    ("CurrencyChanges", "exchange_rate", EXCHANGE_RATE),
    ("NewTax", "name", NAME),
    ("NewTax", "code", FieldRule::TaxCode),
    ("NewTax", "description", DESCRIPTION),
    ("NewTax", "rate", TAX_RATE),
    ("NewTax", "country_code", FieldRule::CountryCode),
    (
        "NewTax",
        "region_code",
        FieldRule::OptionalText(rules::REGION_MAX_CHARS),
    ),
    ("TaxChanges", "name", NAME),
    ("TaxChanges", "description", DESCRIPTION),
    ("TaxChanges", "rate", TAX_RATE),
    ("TaxChanges", "country_code", FieldRule::CountryCode),
    (
        "TaxChanges",
        "region_code",
        FieldRule::OptionalText(rules::REGION_MAX_CHARS),
    ),
    ("NewUser", "email", FieldRule::Email),
    ("NewUser", "password", FieldRule::Password),
    ("UserChanges", "email", FieldRule::Email),
    (
        "UserDetailsInput",
        "first_name",
        FieldRule::OptionalText(rules::PERSON_NAME_MAX_CHARS),
    ),
    (
        "UserDetailsInput",
        "last_name",
        FieldRule::OptionalText(rules::PERSON_NAME_MAX_CHARS),
    ),
    (
        "UserDetailsInput",
        "phone",
        FieldRule::OptionalText(rules::PHONE_MAX_CHARS),
    ),
    (
        "UserDetailsInput",
        "company",
        FieldRule::OptionalText(rules::ADDRESS_MAX_CHARS),
    ),
    (
        "UserDetailsInput",
        "tax_id",
        FieldRule::OptionalText(rules::PHONE_MAX_CHARS),
    ),
    (
        "UserDetailsInput",
        "address_line1",
        FieldRule::OptionalText(rules::ADDRESS_MAX_CHARS),
    ),
    (
        "UserDetailsInput",
        "address_line2",
        FieldRule::OptionalText(rules::ADDRESS_MAX_CHARS),
    ),
    (
        "UserDetailsInput",
        "city",
        FieldRule::OptionalText(rules::CITY_MAX_CHARS),
    ),
    (
        "UserDetailsInput",
        "postal_code",
        FieldRule::OptionalText(rules::POSTAL_CODE_MAX_CHARS),
    ),
    ("UserDetailsInput", "country_code", FieldRule::CountryCode),
    ("NewCase", "subject", SUBJECT),
    ("NewCase", "description", CASE_TEXT),
    ("CaseChanges", "subject", SUBJECT),
    ("CaseChanges", "description", CASE_TEXT),
    ("NewPlan", "name", NAME),
    ("NewPlan", "slug", FieldRule::Slug),
    ("NewPlan", "description", DESCRIPTION),
    ("NewPlan", "price", PRICE),
    ("NewPlan", "currency", FieldRule::CurrencyCode),
    ("NewPlan", "prices", FieldRule::PriceMap),
    ("NewPlan", "features", FieldRule::Features),
    ("PlanChanges", "name", NAME),
    ("PlanChanges", "slug", FieldRule::Slug),
    ("PlanChanges", "description", DESCRIPTION),
    ("PlanChanges", "price", PRICE),
    ("PlanChanges", "currency", FieldRule::CurrencyCode),
    ("PlanChanges", "prices", FieldRule::PriceMap),
    ("PlanChanges", "features", FieldRule::Features),
    ("NewInvoice", "currency", FieldRule::CurrencyCode),
    ("NewInvoice", "tax_code", FieldRule::TaxCode),
    (
        "Payment",
        "payment_method",
        FieldRule::RequiredText(rules::MAX_PAYMENT_METHOD_CHARS),
    ),
    ("NewWebhookEndpoint", "url", FieldRule::WebhookUrl),
    ("NewWebhookEndpoint", "event_types", FieldRule::EventTypes),
    (
        "EndpointChanges",
        "status",
        FieldRule::OneOf(&ENDPOINT_STATUS_NAMES),
    ),
    (
        "Payment",
        "payment_reference",
        FieldRule::RequiredText(rules::PAYMENT_REFERENCE_MAX_CHARS),
    ),
];

/// The names of the event types, in documentation order.
fn event_type_names() -> Vec<&'static str> {
    EventType::ALL.iter().map(|t| t.as_str()).collect()
}

/// Adds the input rules to the rendered document (see the module
/// documentation).
pub fn add_input_rules(document: &mut Value) {
    add_feature_value(document);
    apply_field_rules(document);
    apply_parameter_rules(document);
    apply_integer_ranges(document);
    apply_text_rule(document);
}

/// The schema of a value in a plan's features.
pub const FEATURE_VALUE: &str = "FeatureValue";

/// Declares [`FEATURE_VALUE`]: any JSON without NUL characters in its texts
/// and keys, whose numbers the server can store exactly (integers within
/// `i64`..`u64`; see `NewPlan.features`).
fn add_feature_value(document: &mut Value) {
    let itself = json!({"$ref": format!("#/components/schemas/{FEATURE_VALUE}")});
    let schema = json!({
        "description": "A value in a plan's features: text without NUL characters, a number \
            the server stores exactly, a boolean, null, or an array or object of such values.",
        "anyOf": [
            {"type": "string", "pattern": rules::TEXT_PATTERN},
            {"type": "number", "minimum": i64::MIN, "maximum": u64::MAX},
            {"type": "boolean"},
            {"type": "null"},
            {"type": "array", "items": itself},
            {
                "type": "object",
                "propertyNames": {"pattern": rules::TEXT_PATTERN},
                "additionalProperties": itself
            }
        ]
    });
    if let Some(Value::Object(schemas)) = document.pointer_mut("/components/schemas") {
        schemas.insert(FEATURE_VALUE.to_owned(), schema);
    }
}

fn apply_field_rules(document: &mut Value) {
    for (schema, property, rule) in FIELD_RULES {
        let pointer = format!("/components/schemas/{schema}/properties/{property}");
        if let Some(Value::Object(target)) = document.pointer_mut(&pointer) {
            target.extend(rule.keywords());
        }
    }
}

/// Every operation of the document.
fn operations_mut(document: &mut Value) -> impl Iterator<Item = &mut Map<String, Value>> {
    document
        .get_mut("paths")
        .and_then(Value::as_object_mut)
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.iter_mut())
        .filter(|(method, _)| ["get", "put", "post", "delete", "patch"].contains(&method.as_str()))
        .filter_map(|(_, operation)| operation.as_object_mut())
}

fn apply_parameter_rules(document: &mut Value) {
    for operation in operations_mut(document) {
        let Some(Value::Array(parameters)) = operation.get_mut("parameters") else {
            continue;
        };
        for parameter in parameters.iter_mut() {
            let name = parameter.get("name").and_then(Value::as_str).unwrap_or("");
            let location = parameter.get("in").and_then(Value::as_str).unwrap_or("");
            let rule = match (location, name) {
                // HTTP strips the spaces and tabs around a header value, so
                // the pattern allows them and counts the key's length itself.
                ("header", "Idempotency-Key") => json!({
                    "pattern": format!("^[ \\t]*{}[ \\t]*$", rules::idempotency_key_chars())
                }),
                ("header", "If-Match") => json!({"pattern": IF_MATCH_PATTERN}),
                ("query", "page") => json!({"minimum": 1, "maximum": MAX_PAGE}),
                ("query", "limit") => json!({"minimum": 1, "maximum": MAX_LIMIT}),
                ("query", "type") => json!({"pattern": rules::event_types_pattern()}),
                ("query", "resource_kind") => json!({"enum": RESOURCE_KIND_NAMES}),
                // The deliveries' filter, a text; other lists' `status`
                // refers to an enum schema of its own.
                ("query", "status") if parameter.pointer("/schema/$ref").is_none() => {
                    json!({"enum": DELIVERY_STATUS_NAMES})
                }
                _ => continue,
            };
            if let (Some(Value::Object(schema)), Value::Object(rule)) =
                (parameter.get_mut("schema"), rule)
            {
                schema.extend(rule);
            }
        }
    }
}

/// Gives every integer without bounds the range of its format.
fn apply_integer_ranges(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let is_integer = match map.get("type") {
                Some(Value::String(t)) => t == "integer",
                Some(Value::Array(types)) => types.iter().any(|t| t == "integer"),
                _ => false,
            };
            if is_integer {
                let (min, max) = match map.get("format").and_then(Value::as_str) {
                    Some("int32") => (i64::from(i32::MIN), i64::from(i32::MAX)),
                    _ => (i64::MIN, i64::MAX),
                };
                map.entry("minimum").or_insert_with(|| json!(min));
                map.entry("maximum").or_insert_with(|| json!(max));
            }
            for child in map.values_mut() {
                apply_integer_ranges(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(apply_integer_ranges),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
}

/// The request body schemas: those an operation's `requestBody` names.
fn request_schemas(document: &Value) -> Vec<String> {
    let mut names = Vec::new();
    let Some(paths) = document.get("paths").and_then(Value::as_object) else {
        return names;
    };
    for item in paths.values().filter_map(Value::as_object) {
        for operation in item.values() {
            let reference = operation
                .pointer("/requestBody/content/application~1json/schema/$ref")
                .and_then(Value::as_str);
            if let Some(name) = reference.and_then(|r| r.strip_prefix("#/components/schemas/")) {
                names.push(name.to_owned());
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

/// Gives every text property of a request body without a pattern
/// [`rules::TEXT_PATTERN`]: the server refuses NUL characters in any text.
fn apply_text_rule(document: &mut Value) {
    for name in request_schemas(document) {
        let pointer = format!("/components/schemas/{name}/properties");
        let Some(Value::Object(properties)) = document.pointer_mut(&pointer) else {
            continue;
        };
        for property in properties.values_mut().filter_map(Value::as_object_mut) {
            let is_text = match property.get("type") {
                Some(Value::String(t)) => t == "string",
                Some(Value::Array(types)) => types.iter().any(|t| t == "string"),
                _ => false,
            };
            if is_text && !property.contains_key("pattern") && !property.contains_key("enum") {
                property.insert("pattern".to_owned(), json!(rules::TEXT_PATTERN));
            }
        }
    }
}
