//! `GET /docs`: the OpenAPI document (`/openapi.json`) as a browsable
//! reference page, for people.
//!
//! The page, its script and its style sheet are files of this crate
//! (`assets/`) compiled into the binary with `include_str!`: nothing is
//! fetched from another host or downloaded at build time, and the page works
//! offline. The `Content-Security-Policy` of each answer allows this origin
//! only, so a browser refuses any other source. Like `/openapi.json`, the
//! page needs no token.

use actix_web::HttpResponse;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, HeaderValue};
use actix_web::web;

/// The page.
pub const PAGE: &str = include_str!("../assets/docs.html");
/// The script that renders the document into the page.
pub const SCRIPT: &str = include_str!("../assets/docs.js");
/// The page's style sheet.
pub const STYLE: &str = include_str!("../assets/docs.css");

/// The path of the page.
pub const PAGE_PATH: &str = "/docs";
/// The path of the script.
pub const SCRIPT_PATH: &str = "/docs/docs.js";
/// The path of the style sheet.
pub const STYLE_PATH: &str = "/docs/docs.css";

/// Only this origin: the script, the style sheet and `/openapi.json`.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// Registers `/docs` and its two assets.
pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(web::resource(PAGE_PATH).route(web::get().to(page)))
        .service(web::resource(SCRIPT_PATH).route(web::get().to(script)))
        .service(web::resource(STYLE_PATH).route(web::get().to(style)));
}

/// `GET /docs`.
pub async fn page() -> HttpResponse {
    asset("text/html; charset=utf-8", PAGE)
}

/// `GET /docs/docs.js`.
pub async fn script() -> HttpResponse {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

/// `GET /docs/docs.css`.
pub async fn style() -> HttpResponse {
    asset("text/css; charset=utf-8", STYLE)
}

fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY)))
        // The assets change with the binary: revalidate, do not pin.
        .insert_header((CACHE_CONTROL, HeaderValue::from_static("no-cache")))
        .body(body)
}
