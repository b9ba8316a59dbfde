//! `billing-api`: reads the settings (flags and environment, `--help` lists
//! them), sets up logging, builds the [`Application`] and serves until
//! SIGTERM (graceful) or SIGINT.
//!
//! `billing-api cycle run-once` makes one pass of the billing cycle and
//! prints its report as JSON. `billing-api probe` instead asks the instance listening on
//! `BILLING_BIND` whether it is ready and exits 0 (ready) or 1 (not ready or
//! no answer, with the reason on stderr): the image's health check.
//!
//! Every failure to start — a setting that does not parse, settings that do
//! not work together, a step of the start that fails — prints exactly one
//! line `Error: …` on stderr, naming the setting to fix where there is one,
//! and exits with code 1. `RUST_BACKTRACE` changes nothing: no report or
//! backtrace is printed (`main` returns an [`ExitCode`], not an error).
//! `--help` and `--version` print to stdout and exit 0.

use std::process::ExitCode;

use billing_api::configuration::Command;
use billing_api::cycle::CycleCommand;
use billing_api::startup::connect_billing;
use billing_api::{Application, Settings, probe, telemetry};
use clap::CommandFactory;
use clap::error::{ContextKind, ContextValue, ErrorKind};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("Error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The whole life of the process; the error is the one line to print.
async fn run() -> Result<(), String> {
    let settings = parse_settings()?;
    match &settings.command {
        Some(Command::Probe(probe)) => {
            let target = probe::target(settings.http.bind);
            return probe::probe(target, &probe.path, probe.timeout)
                .await
                .map_err(one_line);
        }
        Some(Command::Cycle(_)) | None => {}
    }
    // Settings errors are reported before logging is set up, on stderr.
    settings.validate().map_err(one_line)?;
    telemetry::init(&settings.log.filter, settings.log.format).map_err(one_line)?;
    match &settings.command {
        Some(Command::Cycle(CycleCommand::RunOnce)) => return cycle_run_once(&settings).await,
        // Probing was answered above, before any logging.
        Some(Command::Probe(_)) | None => {}
    }
    let application = Application::build(settings).await.map_err(|error| {
        let error = one_line(error);
        tracing::error!(error = %error, "billing-api cannot start");
        error
    })?;
    application.run_until_stopped().await.map_err(one_line)
}

/// `billing-api cycle run-once`: one full pass, its report as JSON on
/// stdout.
async fn cycle_run_once(settings: &Settings) -> Result<(), String> {
    let billing = connect_billing(settings).await.map_err(one_line)?;
    let report = billing_api::cycle::run_once(billing.clone(), &settings.cycle)
        .await
        .map_err(one_line)?;
    if let Err(error) = billing.database().close().await {
        tracing::warn!(error = %error, "closing the database pool failed");
    }
    let json = serde_json::to_string(&report).map_err(one_line)?;
    println!("{json}");
    Ok(())
}

/// The settings from flags and environment. `--help` and `--version` print
/// and exit 0 here; any other refusal of clap becomes one line naming the
/// variable of the setting that did not parse.
fn parse_settings() -> Result<Settings, String> {
    Settings::from_command_line().map_err(|error| {
        if matches!(
            error.kind(),
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
        ) {
            error.exit()
        }
        clap_one_line(&error)
    })
}

/// clap's message on one line (its first line, without the `error: `
/// prefix and the usage hint), prefixed with the environment variable of
/// the setting it is about.
fn clap_one_line(error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    let message = rendered
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or("the settings cannot be read");
    let mut message = message
        .strip_prefix("error: ")
        .unwrap_or(message)
        .to_owned();
    if let Some(ContextValue::Strings(values)) = error.get(ContextKind::ValidValue) {
        message = format!("{message}; possible values: {}", values.join(", "));
    }
    match setting_variable(error) {
        Some(variable) => format!("invalid configuration: {variable}: {message}"),
        None => format!("invalid configuration: {message}"),
    }
}

/// The environment variable of the argument an error of clap names
/// (`--db-max-connections <N>` → `BILLING_DB_MAX_CONNECTIONS`).
fn setting_variable(error: &clap::Error) -> Option<String> {
    let ContextValue::String(argument) = error.get(ContextKind::InvalidArg)? else {
        return None;
    };
    let long = argument.split_whitespace().next()?.strip_prefix("--")?;
    Settings::command()
        .get_arguments()
        .find(|arg| arg.get_long() == Some(long))
        .and_then(|arg| arg.get_env())
        .map(|variable| variable.to_string_lossy().into_owned())
}

/// The error and its causes as one message (`outer: inner: root`).
fn one_line(error: impl Into<anyhow::Error>) -> String {
    format!("{:#}", error.into())
}
