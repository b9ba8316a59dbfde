//! `GET /docs`: the reference page and every asset it references are served
//! by the binary itself, with a policy that forbids any other origin, and
//! the document the page renders is there.

use billing_test_support::{TestDatabase, test_on_each_backend};

use crate::helpers::spawn_app;

/// The values of `attribute="…"` in `html`.
fn attribute_values(html: &str, attribute: &str) -> Vec<String> {
    let needle = format!("{attribute}=\"");
    html.match_indices(&needle)
        .filter_map(|(at, _)| {
            let rest = &html[at + needle.len()..];
            rest.find('"').map(|end| rest[..end].to_owned())
        })
        .collect()
}

/// The string literals the script fetches (`fetch("…"`).
fn fetched_paths(script: &str) -> Vec<String> {
    script
        .match_indices("fetch(\"")
        .filter_map(|(at, needle)| {
            let rest = &script[at + needle.len()..];
            rest.find('"').map(|end| rest[..end].to_owned())
        })
        .collect()
}

async fn the_docs_page_and_every_asset_it_references_are_served(
    db: TestDatabase,
) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    let page = app.client.get(app.url("/docs")).send().await?;
    assert_eq!(page.status().as_u16(), 200);
    let policy = page
        .headers()
        .get("content-security-policy")
        .expect("a Content-Security-Policy")
        .to_str()?
        .to_owned();
    assert!(policy.contains("default-src 'none'"), "{policy}");
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(
        page.headers()["content-type"]
            .to_str()?
            .starts_with("text/html")
    );
    let html = page.text().await?;

    let mut assets: Vec<String> = ["src", "href"]
        .iter()
        .flat_map(|attribute| attribute_values(&html, attribute))
        .collect();
    assert!(assets.iter().any(|a| a.ends_with(".js")), "{assets:?}");
    assert!(assets.iter().any(|a| a.ends_with(".css")), "{assets:?}");
    let mut scripts = Vec::new();
    for asset in assets.clone() {
        assert!(
            asset.starts_with('/') && !asset.starts_with("//"),
            "{asset} is not a path of this server"
        );
        let response = app.client.get(app.url(&asset)).send().await?;
        assert_eq!(response.status().as_u16(), 200, "{asset}");
        let content_type = response.headers()["content-type"].to_str()?.to_owned();
        let body = response.text().await?;
        assert!(!body.is_empty(), "{asset} is empty");
        if asset.ends_with(".js") {
            assert!(
                content_type.starts_with("text/javascript"),
                "{content_type}"
            );
            scripts.push(body);
        } else if asset.ends_with(".css") {
            assert!(content_type.starts_with("text/css"), "{content_type}");
            assert!(
                !body.contains("@import") && !body.contains("url("),
                "{asset}"
            );
        }
    }
    for script in &scripts {
        assert!(!script.contains("http://") && !script.contains("https://"));
        assert!(!script.contains("import "), "a script loads no module");
        assets.extend(fetched_paths(script));
    }
    assert!(assets.iter().any(|a| a == "/openapi.json"), "{assets:?}");
    let document: serde_json::Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await?
        .json()
        .await?;
    assert!(document["paths"]["/api/v1/invoices/{id}/pay"].is_object());
    assert!(!html.contains("http://") && !html.contains("https://"));
    Ok(())
}

test_on_each_backend!(the_docs_page_and_every_asset_it_references_are_served);

/// The headless browser named by `TEST_BROWSER` (e.g. `chromium`), if set.
fn browser() -> Option<String> {
    std::env::var("TEST_BROWSER")
        .ok()
        .filter(|value| !value.trim().is_empty())
}

/// The page as a real browser renders it: headless Chromium loads `/docs`,
/// runs its script, which fetches `/openapi.json` and renders one entry per
/// operation, counted in `data-rendered` on `<body>`. Runs when
/// `TEST_BROWSER` names the browser (`.ci/run` installs Chromium and sets
/// it); with the variable set, a browser that cannot run fails the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_docs_page_renders_every_operation_in_a_headless_browser() -> anyhow::Result<()> {
    let Some(browser) = browser() else {
        eprintln!("TEST_BROWSER is not set: headless browser check not run");
        return Ok(());
    };
    let db = TestDatabase::create(billing_test_support::Backend::Sqlite)
        .await?
        .expect("SQLite is always available");
    let app = spawn_app(db).await?;
    let document: serde_json::Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await?
        .json()
        .await?;
    let operations: usize = document["paths"]
        .as_object()
        .expect("paths")
        .values()
        .map(|item| item.as_object().map_or(0, serde_json::Map::len))
        .sum();
    let url = app.url("/docs");
    let profile = std::env::temp_dir().join(format!(
        "billing-browser-{}",
        billing_test_support::unique_suffix()
    ));
    let output = tokio::task::spawn_blocking({
        let profile = profile.clone();
        move || {
            std::process::Command::new(browser)
                .args([
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--no-first-run",
                    "--virtual-time-budget=10000",
                ])
                .arg(format!("--user-data-dir={}", profile.display()))
                .args(["--dump-dom", &url])
                .stdin(std::process::Stdio::null())
                .output()
        }
    })
    .await??;
    std::fs::remove_dir_all(&profile).ok();
    let dom = String::from_utf8_lossy(&output.stdout);
    let rendered = attribute_values(&dom, "data-rendered");
    assert_eq!(
        rendered,
        vec![operations.to_string()],
        "the page rendered by the browser:\n{dom}\nstderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(dom.contains("/api/v1/invoices/{id}/pay"));
    assert!(!dom.contains("Cannot load the API document"));
    Ok(())
}
