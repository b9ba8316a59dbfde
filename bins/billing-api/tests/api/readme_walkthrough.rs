//! The README's walkthrough, run as written: the `curl` commands of its
//! "Try it" section are parsed and sent, in order, to an app on the
//! embedded default (SQLite, in-process coordination, no token), with the
//! README's address replaced by the app's; the answers are those the README
//! shows.

use billing_test_support::{Backend, TestDatabase};
use reqwest::Method;
use serde_json::Value;

use crate::helpers::{TestOptions, spawn_app_with};

/// The repository's README, read at compile time.
const README: &str = include_str!("../../../../README.md");
/// The address the README's commands use.
const README_ADDRESS: &str = "http://127.0.0.1:8080";

/// One parsed `curl` command.
#[derive(Debug)]
struct Curl {
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
}

/// The fenced code blocks of `text` with their info string.
fn code_blocks(text: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(info) = line.strip_prefix("```") else {
            continue;
        };
        let body: Vec<&str> = lines
            .by_ref()
            .take_while(|l| !l.starts_with("```"))
            .collect();
        blocks.push((info.trim().to_owned(), body.join("\n")));
    }
    blocks
}

/// Splits one shell command into words: whitespace separates, single and
/// double quotes group (no expansion is needed by the README's commands,
/// and any `$` makes the parse fail).
fn shell_words(command: &str) -> anyhow::Result<Vec<String>> {
    anyhow::ensure!(
        !command.contains('$'),
        "expansions are not supported: {command}"
    );
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                in_word = true;
                let quoted: String = chars.by_ref().take_while(|&q| q != c).collect();
                word.push_str(&quoted);
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// The `curl` commands of a shell block, continuation lines joined.
fn curl_commands(block: &str) -> anyhow::Result<Vec<Curl>> {
    let joined = block.replace("\\\n", " ");
    let mut commands = Vec::new();
    for line in joined.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let words = shell_words(line)?;
        anyhow::ensure!(
            words.first().map(String::as_str) == Some("curl"),
            "not curl: {line}"
        );
        let mut method = None;
        let mut url = None;
        let mut headers = Vec::new();
        let mut body = None;
        let mut args = words.into_iter().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "-s" | "--silent" => {}
                "-X" | "--request" => {
                    let value = args
                        .next()
                        .ok_or_else(|| anyhow::anyhow!("-X without a method"))?;
                    method = Some(Method::from_bytes(value.as_bytes())?);
                }
                "-H" | "--header" => {
                    let value = args
                        .next()
                        .ok_or_else(|| anyhow::anyhow!("-H without a header"))?;
                    let (name, value) = value
                        .split_once(':')
                        .ok_or_else(|| anyhow::anyhow!("malformed header {value}"))?;
                    headers.push((name.trim().to_owned(), value.trim().to_owned()));
                }
                "-d" | "--data" => {
                    body = Some(
                        args.next()
                            .ok_or_else(|| anyhow::anyhow!("-d without data"))?,
                    );
                }
                other if other.starts_with('-') => anyhow::bail!("unsupported curl option {other}"),
                other => url = Some(other.to_owned()),
            }
        }
        let url = url.ok_or_else(|| anyhow::anyhow!("no URL in {line}"))?;
        // curl sends POST when there is data and no -X.
        let method = method.unwrap_or(if body.is_some() {
            Method::POST
        } else {
            Method::GET
        });
        commands.push(Curl {
            method,
            url,
            headers,
            body,
        });
    }
    Ok(commands)
}

/// Sends `curl` to the app at `address`; returns the status, the
/// `Idempotent-Replayed` header and the body.
async fn send(
    client: &reqwest::Client,
    address: &str,
    curl: &Curl,
) -> anyhow::Result<(u16, bool, Value)> {
    let url = curl
        .url
        .strip_prefix(README_ADDRESS)
        .map(|path| format!("{address}{path}"))
        .ok_or_else(|| anyhow::anyhow!("{} is not on {README_ADDRESS}", curl.url))?;
    let mut request = client.request(curl.method.clone(), url);
    for (name, value) in &curl.headers {
        request = request.header(name, value);
    }
    if let Some(body) = &curl.body {
        request = request.body(body.clone());
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let replayed = response
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true");
    Ok((status, replayed, response.json().await?))
}

/// `actual` has every field of the README's `shown` JSON with the same
/// value, except timestamps (any RFC 3339 string where one is shown) and
/// `days_remaining` (the month's length decides it).
fn matches_shown(actual: &Value, shown: &Value) {
    let (Some(actual), Some(shown)) = (actual.as_object(), shown.as_object()) else {
        panic!("not objects: {actual} / {shown}");
    };
    let mut keys: Vec<&String> = actual.keys().collect();
    let mut shown_keys: Vec<&String> = shown.keys().collect();
    keys.sort();
    shown_keys.sort();
    assert_eq!(keys, shown_keys, "the fields the README shows");
    for (key, expected) in shown {
        let value = &actual[key];
        if key.ends_with("_at") && expected.is_string() {
            let text = value.as_str().unwrap_or_default();
            assert!(
                chrono::DateTime::parse_from_rfc3339(text).is_ok(),
                "{key}: {value}"
            );
        } else if key == "days_remaining" {
            let days = value.as_i64().unwrap_or(-1);
            assert!((28..=31).contains(&days), "{key}: {value}");
        } else {
            assert_eq!(value, expected, "{key}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_readme_walkthrough_runs_as_written() -> anyhow::Result<()> {
    let blocks = code_blocks(README);
    let shell: Vec<&String> = blocks
        .iter()
        .filter(|(info, body)| info == "sh" && body.trim_start().starts_with("curl "))
        .map(|(_, body)| body)
        .collect();
    anyhow::ensure!(shell.len() >= 2, "the README's curl blocks: {shell:#?}");
    let walkthrough = curl_commands(shell[0])?;
    let check = curl_commands(shell[1])?;
    assert_eq!(walkthrough.len(), 5, "{walkthrough:#?}");
    assert_eq!(check.len(), 1, "{check:#?}");
    let shown_json = blocks
        .iter()
        .find(|(info, _)| info == "json")
        .map(|(_, body)| serde_json::from_str::<Value>(body))
        .ok_or_else(|| anyhow::anyhow!("the README shows no JSON answer"))??;

    let db = TestDatabase::create(Backend::Sqlite)
        .await?
        .expect("SQLite is always available");
    let app = spawn_app_with(
        db,
        TestOptions {
            token: None,
            ..TestOptions::default()
        },
    )
    .await?;

    let mut answers = Vec::new();
    for curl in &walkthrough {
        let (status, replayed, body) = send(&app.client, &app.address, curl).await?;
        assert!(
            (200..300).contains(&status),
            "{} {} answered {status}: {body}",
            curl.method,
            curl.url
        );
        assert!(!replayed);
        answers.push(body);
    }
    // "The invoice comes back "status":"paid" (number INV-<year>-000001,
    // "amount":"19.99" …)".
    let invoice = answers.last().expect("five answers");
    for claim in [
        r#""status":"paid""#,
        "INV-<year>-000001",
        r#""amount":"19.99""#,
    ] {
        assert!(README.contains(claim), "the README says {claim}");
    }
    assert_eq!(invoice["status"], "paid", "{invoice}");
    assert_eq!(invoice["amount"], "19.99", "{invoice}");
    let year = chrono::Utc::now().format("%Y").to_string();
    assert_eq!(
        invoice["invoice_number"],
        format!("INV-{year}-000001"),
        "{invoice}"
    );

    // "… and the payment activated the subscription": the JSON shown.
    let (status, _, subscription) = send(&app.client, &app.address, &check[0]).await?;
    assert_eq!(status, 200);
    matches_shown(&subscription, &shown_json);

    // "Sending the same payment again with the same Idempotency-Key replays
    // the first answer … with a new key it is refused with 409
    // invalid_transition".
    let pay = walkthrough.last().expect("the payment");
    let (status, replayed, again) = send(&app.client, &app.address, pay).await?;
    assert_eq!((status, replayed), (200, true));
    assert_eq!(&again, invoice);
    let new_key = Curl {
        headers: pay
            .headers
            .iter()
            .map(|(name, value)| {
                let value = if name.eq_ignore_ascii_case("idempotency-key") {
                    format!("{value}-again")
                } else {
                    value.clone()
                };
                (name.clone(), value)
            })
            .collect(),
        method: pay.method.clone(),
        url: pay.url.clone(),
        body: pay.body.clone(),
    };
    let (status, _, refused) = send(&app.client, &app.address, &new_key).await?;
    assert!(README.contains("409 `invalid_transition`"));
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["code"], "invalid_transition", "{refused}");
    Ok(())
}
