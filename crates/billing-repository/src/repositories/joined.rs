//! Reads of several rows of different tables in one statement: what an
//! invoice is priced from ([`PricingRows`]) and what a payment changes
//! ([`PaymentRows`]), each one `SELECT` of left joins from a one-row table,
//! so a missing row is `None` instead of no answer.

use billing_domain::Resource;
use billing_domain::entities::{
    currency, idempotency_record, subscription, tarif_plan, tax, tax_rate, user, user_invoice,
};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, JoinType, Order, Query, SelectStatement};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, IdenStatic, Iterable, QueryResult,
    TryGetable,
};

use crate::database::Executor;
use crate::error::{Op, RepositoryError, map_db_err};
use crate::repository::context;

/// The rows an invoice is priced from, read together.
#[derive(Clone, Debug, Default)]
pub struct PricingRows {
    /// The customer.
    pub user: Option<user::Model>,
    /// The plan.
    pub plan: Option<tarif_plan::Model>,
    /// The subscription asked for, if one was.
    pub subscription: Option<subscription::Model>,
    /// The currency of the invoice (the one asked for, else the plan's).
    pub target: Option<currency::Model>,
    /// The plan's own currency.
    pub plan_currency: Option<currency::Model>,
    /// The default currency.
    pub default: Option<currency::Model>,
    /// The tax asked for, if one was.
    pub tax: Option<tax::Model>,
    /// The tax's rate history, newest first (as [`crate::TaxRates::history`]).
    pub rates: Vec<tax_rate::Model>,
}

/// What to price: the ids and codes of a new invoice.
#[derive(Clone, Copy, Debug)]
pub struct PricingQuery<'a> {
    /// The customer.
    pub user_id: i64,
    /// The plan.
    pub plan_id: i64,
    /// The subscription, if any.
    pub subscription_id: Option<i64>,
    /// The currency code asked for (already trimmed and upper case); the
    /// plan's when `None`.
    pub currency: Option<&'a str>,
    /// The tax code asked for (already trimmed), if any.
    pub tax_code: Option<&'a str>,
}

impl PricingRows {
    /// Reads every row `query` names in one statement.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or [`RepositoryError::Database`].
    pub async fn read<X: Executor>(
        exec: &X,
        query: PricingQuery<'_>,
    ) -> Result<Self, RepositoryError> {
        let mut select = one_row();
        let on_id = |alias: &'static str, id: Option<i64>| Expr::col((alias, "id")).eq(id);
        join(
            &mut select,
            user::Entity,
            "u",
            on_id("u", Some(query.user_id)),
        );
        join(
            &mut select,
            tarif_plan::Entity,
            "p",
            on_id("p", Some(query.plan_id)),
        );
        join(
            &mut select,
            subscription::Entity,
            "s",
            on_id("s", query.subscription_id),
        );
        let target_code = match query.currency {
            Some(code) => Expr::val(code.to_owned()),
            None => Expr::col(("p", tarif_plan::Column::Currency)),
        };
        join(
            &mut select,
            currency::Entity,
            "tc",
            Expr::col(("tc", currency::Column::Code)).eq(target_code),
        );
        join(
            &mut select,
            currency::Entity,
            "pc",
            Expr::col(("pc", currency::Column::Code)).equals(("p", tarif_plan::Column::Currency)),
        );
        join(
            &mut select,
            currency::Entity,
            "dc",
            Expr::col(("dc", currency::Column::IsDefault)).eq(true),
        );
        join(
            &mut select,
            tax::Entity,
            "t",
            Expr::col(("t", tax::Column::Code)).eq(query.tax_code.map(str::to_owned)),
        );
        join(
            &mut select,
            tax_rate::Entity,
            "r",
            Expr::col(("r", tax_rate::Column::TaxId)).equals(("t", tax::Column::Id)),
        );
        select
            .order_by(("r", tax_rate::Column::ValidFrom), Order::Desc)
            .order_by(("r", tax_rate::Column::Id), Order::Desc);
        let rows = run(exec, Resource::Invoice, &select).await?;
        let cx = context(exec, Resource::Invoice, Op::Read);
        let mut read = Self::default();
        for (index, row) in rows.iter().enumerate() {
            if index == 0 {
                read.user = optional(row, "u_").map_err(|e| map_db_err(e, cx))?;
                read.plan = optional(row, "p_").map_err(|e| map_db_err(e, cx))?;
                read.subscription = optional(row, "s_").map_err(|e| map_db_err(e, cx))?;
                read.target = optional(row, "tc_").map_err(|e| map_db_err(e, cx))?;
                read.plan_currency = optional(row, "pc_").map_err(|e| map_db_err(e, cx))?;
                read.default = optional(row, "dc_").map_err(|e| map_db_err(e, cx))?;
                read.tax = optional(row, "t_").map_err(|e| map_db_err(e, cx))?;
            }
            if let Some(rate) = optional(row, "r_").map_err(|e| map_db_err(e, cx))? {
                read.rates.push(rate);
            }
        }
        Ok(read)
    }
}

/// What a payment (or refund) of an invoice reads before it writes: the
/// key's live record, the invoice, its subscription and its plan.
#[derive(Clone, Debug, Default)]
pub struct PaymentRows {
    /// The live idempotency record of the key, if any.
    pub record: Option<idempotency_record::Model>,
    /// The invoice.
    pub invoice: Option<user_invoice::Model>,
    /// Its subscription, if it has one.
    pub subscription: Option<subscription::Model>,
    /// Its plan.
    pub plan: Option<tarif_plan::Model>,
}

impl PaymentRows {
    /// Reads, in one statement, the record of `key` in `scope` written at
    /// or after `not_before` (when a key is given), invoice `invoice_id`,
    /// its subscription and its plan.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or [`RepositoryError::Database`].
    pub async fn read<X: Executor>(
        exec: &X,
        invoice_id: i64,
        key: Option<(&str, &str)>,
        not_before: DateTime<Utc>,
    ) -> Result<Self, RepositoryError> {
        let mut select = one_row();
        if let Some((scope, key)) = key {
            join(
                &mut select,
                idempotency_record::Entity,
                "k",
                Expr::col(("k", idempotency_record::Column::Scope))
                    .eq(scope.to_owned())
                    .and(Expr::col(("k", idempotency_record::Column::Key)).eq(key.to_owned()))
                    .and(Expr::col(("k", idempotency_record::Column::CreatedAt)).gte(not_before)),
            );
        }
        join(
            &mut select,
            user_invoice::Entity,
            "i",
            Expr::col(("i", user_invoice::Column::Id)).eq(invoice_id),
        );
        join(
            &mut select,
            subscription::Entity,
            "s",
            Expr::col(("s", subscription::Column::Id))
                .equals(("i", user_invoice::Column::SubscriptionId)),
        );
        join(
            &mut select,
            tarif_plan::Entity,
            "p",
            Expr::col(("p", tarif_plan::Column::Id))
                .equals(("i", user_invoice::Column::TarifPlanId)),
        );
        let rows = run(exec, Resource::Invoice, &select).await?;
        let cx = context(exec, Resource::Invoice, Op::Read);
        let Some(row) = rows.first() else {
            return Ok(Self::default());
        };
        Ok(Self {
            record: match key {
                Some(_) => {
                    optional_by::<_, String>(row, "k_", idempotency_record::Column::Key.as_str())
                        .map_err(|e| map_db_err(e, cx))?
                }
                None => None,
            },
            invoice: optional(row, "i_").map_err(|e| map_db_err(e, cx))?,
            subscription: optional(row, "s_").map_err(|e| map_db_err(e, cx))?,
            plan: optional(row, "p_").map_err(|e| map_db_err(e, cx))?,
        })
    }
}

/// `SELECT … FROM (SELECT 1) AS one`: every join hangs off one row.
fn one_row() -> SelectStatement {
    Query::select()
        .from_subquery(Query::select().expr(Expr::val(1)).to_owned(), "one")
        .to_owned()
}

/// Left-joins `entity` as `alias` on `on` and selects each of its columns
/// as `<alias>_<column>`.
fn join<E>(select: &mut SelectStatement, entity: E, alias: &'static str, on: Expr)
where
    E: EntityTrait,
{
    select.join_as(JoinType::LeftJoin, entity, alias, on);
    for column in E::Column::iter() {
        let name = column.as_str();
        select.expr_as(
            column.select_as(Expr::col((alias, name))),
            format!("{alias}_{name}"),
        );
    }
}

async fn run<X: Executor>(
    exec: &X,
    entity: Resource,
    select: &SelectStatement,
) -> Result<Vec<QueryResult>, RepositoryError> {
    let connection = exec.connection();
    let statement = connection.get_database_backend().build(select);
    connection
        .query_all_raw(statement)
        .await
        .map_err(|e| map_db_err(e, context(exec, entity, Op::Read)))
}

/// The model under `prefix`, or `None` when the join found no row (its
/// `id` is null).
fn optional<M: FromQueryResult>(
    row: &QueryResult,
    prefix: &str,
) -> Result<Option<M>, sea_orm::DbErr> {
    optional_by::<M, i64>(row, prefix, "id")
}

/// The model under `prefix`, or `None` when its non-null column `probe`
/// (of type `P`) is null: the join found no row.
fn optional_by<M: FromQueryResult, P: TryGetable>(
    row: &QueryResult,
    prefix: &str,
    probe: &str,
) -> Result<Option<M>, sea_orm::DbErr> {
    let probe: Option<P> = row.try_get(prefix, probe)?;
    match probe {
        Some(_) => M::from_query_result(row, prefix).map(Some),
        None => Ok(None),
    }
}
