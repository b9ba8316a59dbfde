//! The ceiling of the HTTP stack: an actix-web server (the same actix-web
//! build and worker count as `billing-api`) whose only handler returns a
//! constant JSON body. `billing-load` runs it as a separate process
//! (`billing-load bare-server`), like the API, and loads it with the same
//! client settings.

use std::net::SocketAddr;

use actix_web::{App, HttpResponse, HttpServer, web};

/// The path of the constant handler.
pub const PATH: &str = "/bare";

/// The constant body: about the size of a small API answer.
pub const BODY: &str = r#"{"status":"ok","service":"bare","items":[{"id":1,"name":"constant"}]}"#;

async fn constant() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(BODY)
}

async fn ready() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(r#"{"status":"ok"}"#)
}

/// Serves [`PATH`] (and `/health/ready`, so the tool waits for it as for
/// the API) on `bind` with `workers` worker threads until the process is
/// stopped.
///
/// # Errors
/// When the address cannot be bound.
pub async fn serve(bind: SocketAddr, workers: usize) -> std::io::Result<()> {
    HttpServer::new(|| {
        App::new()
            .service(web::resource(PATH).route(web::get().to(constant)))
            .service(web::resource("/health/ready").route(web::get().to(ready)))
    })
    .workers(workers.max(1))
    .bind(bind)?
    .run()
    .await
}
