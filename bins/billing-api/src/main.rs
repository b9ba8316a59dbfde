//! `billing-api`: reads the settings (flags and environment, `--help` lists
//! them), sets up logging, builds the [`Application`] and serves until
//! SIGTERM (graceful) or SIGINT.
//!
//! A setting that does not parse stops the start with clap's message (exit
//! code 2); settings that do not work together, or a step of the start that
//! fails, with one line `Error: …` on stderr (exit code 1).

use billing_api::{Application, Settings, telemetry};
use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::parse();
    // Settings errors are reported before logging is set up, on stderr.
    settings.validate().map_err(one_line)?;
    telemetry::init(&settings.log, settings.log_format).map_err(one_line)?;
    let application = Application::build(settings).await.map_err(|error| {
        let error = one_line(error);
        tracing::error!(error = %error, "billing-api cannot start");
        error
    })?;
    application.run_until_stopped().await.map_err(one_line)
}

/// The error and its causes as one message (`outer: inner: root`), so that
/// `main` prints a single line.
fn one_line(error: impl Into<anyhow::Error>) -> anyhow::Error {
    anyhow::anyhow!("{:#}", error.into())
}
