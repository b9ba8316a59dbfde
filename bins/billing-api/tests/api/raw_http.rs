//! Requests reqwest cannot send, written byte by byte on a TCP stream:
//! every answer that comes from a service of the app — including the
//! framework's own refusals that run as services (unknown methods and
//! routes, path and query values that do not decode, header values with
//! non-ASCII bytes, bodies whose chunked encoding breaks) — is an
//! `application/problem+json` body with the standard members.
//!
//! Requests actix-http's HTTP/1 parser refuses before any service runs (a
//! malformed request line, a control character in a header, conflicting
//! `Content-Length`/`Transfer-Encoding`, too many headers, a request head
//! that does not arrive in time) are answered by actix-http itself with an
//! empty body; no API of actix-web or actix-http lets the app change that
//! (see `billing_api::problem::framework`).

use std::time::Duration;

use billing_test_support::{TestDatabase, test_on_each_backend};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{TestApp, spawn_app};

/// A response as read off the wire.
struct RawResponse {
    status: u16,
    head: String,
    body: String,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then_some(value.trim())
        })
    }
}

/// Writes `request` on a new connection and reads the first response
/// (the connection is closed by the request's `Connection: close` or by
/// the server).
async fn exchange(app: &TestApp, request: &[u8]) -> anyhow::Result<RawResponse> {
    let mut stream = TcpStream::connect(("127.0.0.1", app.port)).await?;
    stream.write_all(request).await?;
    let mut bytes = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut bytes)).await??;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("no response head in {text:?}"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no status in {head:?}"))?;
    Ok(RawResponse {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    })
}

/// Asserts a problem+json response with `status` and `code`.
fn assert_raw_problem(response: &RawResponse, status: u16, code: &str) -> anyhow::Result<Value> {
    assert_eq!(response.status, status, "{}", response.head);
    assert_eq!(
        response.header("content-type"),
        Some("application/problem+json"),
        "{}",
        response.head
    );
    let body: Value = serde_json::from_str(&response.body)
        .map_err(|e| anyhow::anyhow!("not JSON ({e}): {:?}", response.body))?;
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(
        body["type"],
        format!("urn:billing:problem:{code}"),
        "{body}"
    );
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    assert!(
        response.header("x-request-id").is_some(),
        "{}",
        response.head
    );
    Ok(body)
}

async fn framework_refusals_that_reach_the_app_are_problems(
    db: TestDatabase,
) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    let auth = format!(
        "Authorization: Bearer {}\r\n",
        app.token.as_deref().unwrap_or_default()
    );
    let request = |line: &str, headers: &str, body: &str| {
        let mut bytes =
            format!("{line}\r\nHost: billing\r\n{auth}{headers}Connection: close\r\n").into_bytes();
        if !body.is_empty() {
            bytes.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
        }
        bytes.extend_from_slice(b"\r\n");
        bytes.extend_from_slice(body.as_bytes());
        bytes
    };
    let with_bytes = |line: &str, header: &[u8], body: &str| {
        let mut bytes = request(line, "", body);
        let at = bytes.windows(2).position(|w| w == b"\r\n").unwrap_or(0) + 2;
        bytes.splice(at..at, header.iter().copied());
        bytes
    };

    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        // A method no route has: 405 with Allow.
        (
            "unknown method",
            request("BREW /health/live HTTP/1.1", "", ""),
            405,
            "method_not_allowed",
        ),
        // Asterisk-form and a path that does not decode to any route.
        (
            "asterisk form",
            request("OPTIONS * HTTP/1.1", "", ""),
            404,
            "not_found",
        ),
        (
            "undecodable path",
            request("GET /%ZZ/%FF HTTP/1.1", "", ""),
            404,
            "not_found",
        ),
        // A path parameter that is not UTF-8 once decoded.
        (
            "non-UTF-8 path parameter",
            request("GET /api/v1/test/items/%FF HTTP/1.1", "", ""),
            400,
            "validation_failed",
        ),
        (
            "non-UTF-8 query value",
            request("GET /api/v1/test/list?page=%FF%FE HTTP/1.1", "", ""),
            400,
            "validation_failed",
        ),
        // Header values with bytes beyond ASCII (obs-text) pass the parser
        // and are refused by the extractors that read them.
        (
            "obs-text If-Match",
            with_bytes(
                "PATCH /api/v1/plans/1 HTTP/1.1",
                b"Content-Type: application/json\r\nIf-Match: \"\xff\"\r\n",
                "{}",
            ),
            400,
            "validation_failed",
        ),
        (
            "obs-text Idempotency-Key",
            with_bytes(
                "POST /api/v1/plans HTTP/1.1",
                b"Content-Type: application/json\r\nIdempotency-Key: k\xff\r\n",
                "{}",
            ),
            400,
            "validation_failed",
        ),
        (
            "obs-text Content-Type",
            with_bytes(
                "POST /api/v1/plans HTTP/1.1",
                b"Content-Type: json\xff\r\n",
                "{}",
            ),
            415,
            "unsupported_media_type",
        ),
        // A chunked body whose chunk size is not hex: the body cannot be
        // read.
        (
            "broken chunked body",
            request(
                "POST /api/v1/plans HTTP/1.1",
                "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n",
                "",
            )
            .into_iter()
            .chain(b"ZZ\r\n{}\r\n0\r\n\r\n".iter().copied())
            .collect(),
            400,
            "validation_failed",
        ),
    ];
    for (name, bytes, status, code) in cases {
        let response = exchange(&app, &bytes).await?;
        assert_raw_problem(&response, status, code).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        if status == 405 {
            assert_eq!(response.header("allow"), Some("GET"), "{name}");
        }
    }
    Ok(())
}

test_on_each_backend!(framework_refusals_that_reach_the_app_are_problems);
