//! The environment of a fault scenario: a private PostgreSQL cluster, a
//! private Redis, the API instances over them and the data they serve,
//! and the payment and read loads started across the instances.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::task::JoinHandle;

use super::report::Setting;
use super::{DATABASE, FaultOptions};
use crate::api::{ApiProcess, ApiSpec};
use crate::client::{self, ApiClient};
use crate::infra::{PgServer, PrivatePostgres, PrivateRedis};
use crate::load::{self, InvoicePool, LoadRun, LoadSpec, Work};
use crate::process::{self, TempDir};
use crate::stats;

/// Everything a scenario runs against. Fields drop in order: the
/// instances stop before the servers, the directory goes last.
pub(super) struct Env {
    pub(super) apis: Vec<ApiProcess>,
    pub(super) redis: PrivateRedis,
    pub(super) postgres: PrivatePostgres,
    pub(super) dir: TempDir,
    pub(super) pg: PgServer,
    pub(super) token: String,
    run_id: String,
    pub(super) plan_id: i64,
    reads: Vec<String>,
    pub(super) pool: Arc<InvoicePool>,
}

/// The settings of every instance: the database and Redis, short
/// in-flight and acquire time-outs, a small pool, and `extra_env`.
fn api_spec(
    options: &FaultOptions,
    (pg, redis): (&PgServer, &PrivateRedis),
    (token, run_id): (&str, &str),
    extra_env: &[(String, String)],
) -> ApiSpec {
    ApiSpec {
        bin: options.api_bin.clone(),
        database_url: pg.url(DATABASE),
        redis_url: Some(redis.url()),
        redis_key_prefix: format!("faults-{run_id}"),
        token: token.to_owned(),
        workers: options.workers,
        log: options.api_log.clone(),
        extra_env: vec![
            (
                "BILLING_IDEMPOTENCY_IN_FLIGHT_TTL".to_owned(),
                format!("{}ms", options.in_flight_ttl.as_millis()),
            ),
            ("BILLING_DB_MAX_CONNECTIONS".to_owned(), "20".to_owned()),
            ("BILLING_DB_MIN_CONNECTIONS".to_owned(), "2".to_owned()),
            (
                "BILLING_DB_ACQUIRE_TIMEOUT".to_owned(),
                format!("{}ms", options.db_acquire_timeout.as_millis()),
            ),
        ]
        .into_iter()
        .chain(extra_env.iter().cloned())
        .collect(),
    }
}

/// The data the loads use: a plan, invoices to read and invoices to pay.
struct Data {
    plan_id: i64,
    reads: Vec<String>,
    payable: Vec<i64>,
    /// How long the payable invoices took.
    payable_in: Duration,
}

/// Prepares [`Data`] over `client`: one plan, two users, 20 invoices to
/// read and `pool_size` payable ones.
async fn prepare(client: &ApiClient, run_id: &str, pool_size: usize) -> Result<Data> {
    let plan_id = client.create_plan(&format!("faults-{run_id}"), 0).await?;
    let mut users = Vec::new();
    for i in 0..2 {
        users.push(
            client
                .create_user(&format!("faults-{run_id}-{i}@example.com"))
                .await?,
        );
    }
    let readable = client::create_plain_invoices(client, &users, plan_id, 20, 4).await?;
    let prepared = Instant::now();
    let payable = client::create_payable_invoices(client, &users, plan_id, pool_size, 16).await?;
    let payable_in = prepared.elapsed();
    let mut reads = vec!["/api/v1/plans".to_owned()];
    reads.extend(readable.iter().map(|id| format!("/api/v1/invoices/{id}")));
    Ok(Data {
        plan_id,
        reads,
        payable,
        payable_in,
    })
}

impl Env {
    /// Starts the servers and the instances (with `extra_env`) and
    /// prepares `pool_size` invoices to pay.
    pub(super) async fn start(
        options: &FaultOptions,
        pool_size: usize,
        extra_env: &[(String, String)],
    ) -> Result<Self> {
        let mut dir = TempDir::new(&std::env::temp_dir(), "billing-faults")?;
        if options.keep {
            dir.keep();
        }
        eprintln!("   run directory {}", dir.path().display());
        let postgres = PrivatePostgres::start(dir.path(), 200, &[])?;
        let pg = postgres.server().clone();
        pg.create_database(DATABASE)?;
        let redis = PrivateRedis::start(dir.path()).await?;
        let token = format!("{:032x}", rand::random::<u128>());
        let run_id = format!("{:08x}", rand::random::<u32>());
        let spec = api_spec(options, (&pg, &redis), (&token, &run_id), extra_env);
        let mut apis = Vec::new();
        for i in 0..options.instances.max(1) {
            let log = dir.path().join(format!("api-{i}.log"));
            let mut api = ApiProcess::spawn(
                &format!("billing-api #{i}"),
                &spec,
                process::free_port()?,
                &log,
            )?;
            api.wait_ready(Duration::from_secs(60)).await?;
            apis.push(api);
        }
        let client = ApiClient::new(apis[0].base(), &token)?;
        let data = prepare(&client, &run_id, pool_size).await?;
        eprintln!(
            "   {} instances ready; prepared {} payable invoices in {}",
            apis.len(),
            data.payable.len(),
            stats::seconds(data.payable_in)
        );
        Ok(Self {
            apis,
            redis,
            postgres,
            dir,
            pg,
            token,
            run_id,
            plan_id: data.plan_id,
            reads: data.reads,
            pool: Arc::new(InvoicePool::new(data.payable)),
        })
    }

    /// The base URLs of the instances.
    pub(super) fn bases(&self) -> Vec<String> {
        self.apis.iter().map(|a| a.base().to_owned()).collect()
    }

    /// The prefix of the payments' idempotency keys.
    pub(super) fn key_prefix(&self) -> String {
        format!("faults-{}", self.run_id)
    }

    /// What the report says of the environment and the loads.
    pub(super) fn setting(&self, options: &FaultOptions) -> Setting {
        Setting {
            instances: self.apis.len(),
            workers: options.workers,
            in_flight_ttl: options.in_flight_ttl,
            db_acquire_timeout: options.db_acquire_timeout,
            pg_port: self.pg.port,
            redis_port: self.redis.port(),
            pay: (options.pay_connections, options.pay_rate),
            read: (options.read_connections, options.read_rate),
            plan_id: self.plan_id,
        }
    }

    /// Starts the payment and read loads; they run until `stop`.
    pub(super) fn start_loads(
        &self,
        options: &FaultOptions,
        origin: Instant,
        stop: &Arc<AtomicBool>,
    ) -> (JoinHandle<Result<LoadRun>>, JoinHandle<Result<LoadRun>>) {
        let limit = options.time_limit;
        let pay = LoadSpec {
            targets: self.bases(),
            token: self.token.clone(),
            connections: options.pay_connections,
            duration: limit,
            work: Work::Pay {
                pool: Arc::clone(&self.pool),
                key_prefix: self.key_prefix(),
                retry: true,
                backoff: Duration::from_millis(25),
            },
            request_timeout: Duration::from_secs(10),
            failover: true,
            rate_per_connection: Some(options.pay_rate),
        };
        let read = LoadSpec {
            targets: self.bases(),
            token: self.token.clone(),
            connections: options.read_connections,
            duration: limit,
            work: Work::Get {
                paths: Arc::new(self.reads.clone()),
            },
            request_timeout: Duration::from_secs(10),
            failover: true,
            rate_per_connection: Some(options.read_rate),
        };
        (
            tokio::spawn(load::run(pay, origin, Arc::clone(stop))),
            tokio::spawn(load::run(read, origin, Arc::clone(stop))),
        )
    }

    /// Which instances have exited (they must not: no restart is allowed).
    pub(super) fn exited(&mut self, except: Option<usize>) -> Vec<String> {
        self.apis
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| Some(*i) != except)
            .filter_map(|(i, api)| api.child_mut().exited().map(|s| format!("#{i}: {s}")))
            .collect()
    }
}
