//! OpenAPI `links` from each create operation to the operations that use
//! what it created ([`CreationLinks`]), derived from the document itself so
//! that a new resource gets its links without a list to keep:
//!
//! - a `POST /x` answering 201 links to every operation under `/x/{p}`
//!   (read, change, transitions, nested lists and what they hold), with
//!   `{p}` taken from the created resource's field `p` (`id`, `code`);
//!   not to deleting the resource itself, nor to reading a nested
//!   resource the creation does not make (`GET /users/{id}/details`);
//! - and to every operation whose request body has a field `<x>_id`
//!   (`user_id` for `/users`, `subscription_id` for `/subscriptions`),
//!   filled with the created resource's `id`; other `*_id` fields of that
//!   body that the created resource also has (a subscription's `user_id`
//!   and `plan_id`) are filled from it too.
//!
//! - and to every cursor-paged list (`GET /x` answering `next_after`) that
//!   filters by `<x>_id` in its query (the last word of the collection:
//!   `endpoint_id` for `/webhook-endpoints`), with the created `id`.
//!
//! A cursor-paged list links from its first item to the operations under
//! `/x/{p}` (but deleting), with `{p}` from `items/0`: the deliveries to
//! one delivery and its redelivery, the events to one event.
//!
//! So stateful clients and fuzzers can follow user → subscription →
//! invoice → pay and refund, plan → subscription, tax → rates, webhook
//! endpoint → its deliveries → a delivery with its attempts, redelivery.

use serde_json::{Map, Value, json};

/// The path every resource lives under.
const API_ROOT: &str = "/api/v1";

/// An operation as the links need it.
struct Operation {
    path: String,
    method: String,
    operation_id: String,
    /// The properties of its JSON request body.
    body_fields: Vec<String>,
    /// Whether it takes an `If-Match` header.
    if_match: bool,
    /// Whether it reads one resource that need not exist when its owner
    /// does (`GET /users/{id}/details`): a `GET` below `/x/{p}/` that
    /// answers no list.
    optional_read: bool,
    /// Its query parameters.
    query: Vec<String>,
    /// Whether it is a cursor-paged list: a `GET` without path parameters
    /// whose answer has `next_after`.
    cursor_list: bool,
}

fn schema_properties(document: &Value, schema: Option<&Value>) -> Vec<String> {
    let resolved = match schema.and_then(|s| s.get("$ref")).and_then(Value::as_str) {
        Some(reference) => reference
            .strip_prefix('#')
            .and_then(|pointer| document.pointer(pointer)),
        None => schema,
    };
    resolved
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
        .map(|properties| properties.keys().cloned().collect())
        .unwrap_or_default()
}

fn operations(document: &Value) -> Vec<Operation> {
    let mut found = Vec::new();
    let Some(paths) = document.get("paths").and_then(Value::as_object) else {
        return found;
    };
    for (path, item) in paths {
        let Some(item) = item.as_object() else {
            continue;
        };
        for (method, operation) in item {
            let Some(operation_id) = operation.get("operationId").and_then(Value::as_str) else {
                continue;
            };
            let body = operation.pointer("/requestBody/content/application~1json/schema");
            let answer = operation.pointer("/responses/200/content/application~1json/schema");
            let nested = path.matches('{').count() == 1 && !path.ends_with('}');
            let optional_read = method == "get"
                && nested
                && !schema_properties(document, answer)
                    .iter()
                    .any(|p| p == "items");
            let if_match = operation["parameters"].as_array().is_some_and(|ps| {
                ps.iter()
                    .any(|p| p["name"] == "If-Match" && p["in"] == "header")
            });
            let query = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "query")
                .filter_map(|p| p["name"].as_str().map(str::to_owned))
                .collect();
            let cursor_list = method == "get"
                && !path.contains('{')
                && schema_properties(document, answer)
                    .iter()
                    .any(|p| p == "next_after");
            found.push(Operation {
                if_match,
                optional_read,
                query,
                cursor_list,
                path: path.clone(),
                method: method.clone(),
                operation_id: operation_id.to_owned(),
                body_fields: schema_properties(document, body),
            });
        }
    }
    found
}

/// `users` → `user`, `taxes` → `tax`, `currencies` → `currency`.
fn singular(collection: &str) -> String {
    if let Some(stem) = collection.strip_suffix("ies") {
        format!("{stem}y")
    } else if let Some(stem) = collection.strip_suffix("xes") {
        format!("{stem}x")
    } else {
        collection
            .strip_suffix('s')
            .unwrap_or(collection)
            .to_owned()
    }
}

/// The links of the creation `source` (a `POST` answering 201 with a body
/// whose properties are `created`).
fn links_of(source: &Operation, created: &[String], all: &[Operation]) -> Map<String, Value> {
    let mut links = Map::new();
    // `/x/{p}` under the creating path, and under the API's root for a
    // resource created through its owner (`/users/{id}/cases` → `/cases/{p}`).
    let collection = source.path.rsplit('/').next().unwrap_or("");
    let prefixes = [
        format!("{}/{{", source.path),
        format!("{API_ROOT}/{collection}/{{"),
    ];
    for target in all {
        let under = prefixes
            .iter()
            .find_map(|prefix| target.path.strip_prefix(prefix.as_str()));
        let link = under
            .and_then(|rest| path_link(target, rest, created))
            .or_else(|| filter_link(target, collection, created))
            .or_else(|| reference_link(target, collection, created));
        if let Some(link) = link {
            links.insert(target.operation_id.clone(), link);
        }
    }
    links
}

/// The link to `target`, an operation under `/x/{p}` (`rest` follows the
/// `{`), passing a created field as its path parameter.
fn path_link(target: &Operation, rest: &str, created: &[String]) -> Option<Value> {
    if target.optional_read || (target.method == "delete" && rest.ends_with('}')) {
        return None;
    }
    let (parameter, _) = rest.split_once('}')?;
    if !created.iter().any(|field| field == parameter) {
        return None;
    }
    let mut parameters = Map::new();
    parameters.insert(
        format!("path.{parameter}"),
        json!(format!("$response.body#/{parameter}")),
    );
    // The created resource's own version, for a change of it or a
    // transition (not of what it holds, `/users/{id}/details`).
    let own = !rest.contains('/') || target.method == "post";
    if own && target.if_match {
        parameters.insert("header.If-Match".to_owned(), json!("$response.header.ETag"));
    }
    Some(json!({
        "operationId": target.operation_id,
        "parameters": parameters,
        "description": format!(
            "`{}` of the created resource as `{{{parameter}}}` of {} {}",
            parameter, target.method.to_uppercase(), target.path
        ),
    }))
}

/// The link to `target`, a cursor-paged list filtered by `<x>_id`, passing
/// the created `id` as that filter.
fn filter_link(target: &Operation, collection: &str, created: &[String]) -> Option<Value> {
    let word = collection.rsplit('-').next().unwrap_or(collection);
    let filter = format!("{}_id", singular(word));
    if !(target.cursor_list
        && target.query.contains(&filter)
        && created.iter().any(|field| field == "id"))
    {
        return None;
    }
    Some(json!({
        "operationId": target.operation_id,
        "parameters": {format!("query.{filter}"): "$response.body#/id"},
        "description": format!(
            "`id` of the created resource as `{filter}` of GET {}",
            target.path
        ),
    }))
}

/// The link to `target`, a creation whose body refers to the created
/// resource as `<x>_id` (and to what it refers to by their own `_id`s).
fn reference_link(target: &Operation, collection: &str, created: &[String]) -> Option<Value> {
    let reference = format!("{}_id", singular(collection));
    if !(target.method == "post"
        && target.body_fields.contains(&reference)
        && created.iter().any(|field| field == "id"))
    {
        return None;
    }
    let mut body = Map::new();
    body.insert(reference.clone(), json!("$response.body#/id"));
    for field in &target.body_fields {
        if field.ends_with("_id") && *field != reference && created.contains(field) {
            body.insert(field.clone(), json!(format!("$response.body#/{field}")));
        }
    }
    Some(json!({
        "operationId": target.operation_id,
        "requestBody": body,
        "description": format!(
            "the created resource as `{reference}` of {} {}",
            target.method.to_uppercase(), target.path
        ),
    }))
}

/// The links of the cursor-paged list `source`: from its first item to the
/// operations under `/x/{p}` but deleting.
fn item_links(source: &Operation, all: &[Operation]) -> Map<String, Value> {
    let mut links = Map::new();
    let prefix = format!("{}/{{", source.path);
    for target in all {
        if let Some(rest) = target.path.strip_prefix(prefix.as_str())
            && !(target.method == "delete" && rest.ends_with('}'))
            && let Some((parameter, _)) = rest.split_once('}')
        {
            links.insert(
                target.operation_id.clone(),
                json!({
                    "operationId": target.operation_id,
                    "parameters": {
                        format!("path.{parameter}"): format!("$response.body#/items/0/{parameter}")
                    },
                    "description": format!(
                        "`{parameter}` of the first item as `{{{parameter}}}` of {} {}",
                        target.method.to_uppercase(), target.path
                    ),
                }),
            );
        }
    }
    links
}

/// Adds the links to the rendered document (see the module documentation).
pub fn add_links(document: &mut Value) {
    let all = operations(document);
    for source in all.iter().filter(|o| o.cursor_list) {
        let links = item_links(source, &all);
        let pointer = format!(
            "/paths/{}/get/responses/200",
            source.path.replace('~', "~0").replace('/', "~1")
        );
        if let (false, Some(Value::Object(response))) =
            (links.is_empty(), document.pointer_mut(&pointer))
        {
            response.insert("links".to_owned(), Value::Object(links));
        }
    }
    for source in all.iter().filter(|o| o.method == "post") {
        let response_pointer = format!(
            "/paths/{}/post/responses/201",
            source.path.replace('~', "~0").replace('/', "~1")
        );
        let Some(response) = document.pointer(&response_pointer) else {
            continue;
        };
        let created = schema_properties(
            document,
            response.pointer("/content/application~1json/schema"),
        );
        let links = links_of(source, &created, &all);
        if links.is_empty() {
            continue;
        }
        if let Some(Value::Object(response)) = document.pointer_mut(&response_pointer) {
            response.insert("links".to_owned(), Value::Object(links));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::singular;

    #[test]
    fn collections_are_made_singular() {
        assert_eq!(singular("users"), "user");
        assert_eq!(singular("taxes"), "tax");
        assert_eq!(singular("currencies"), "currency");
        assert_eq!(singular("subscriptions"), "subscription");
    }
}
