//! The queries of the billing cycle: due subscriptions, overdue ones,
//! unpaid invoices past their window, renewal records and dunning attempts.
//!
//! Every batch query is keyset-paginated (the caller passes the last key
//! it saw, never an offset) and walks an index: `subscription (status,
//! expires_at, id)`, `user_invoice (status)`, `subscription_renewal
//! (invoice_id)`, so a pass costs what is due, not what is stored.

use std::collections::HashMap;

use billing_domain::Resource;
use billing_domain::entities::{
    dunning_attempt, subscription, subscription_renewal, tax, user, user_details, user_invoice,
};
use billing_domain::enums::{DunningOutcome, InvoiceStatus, SubscriptionStatus};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveValue, ColumnTrait, Condition, EntityTrait, JoinType, QueryFilter, QueryOrder,
    QuerySelect, RelationTrait,
};

use crate::database::Executor;
use crate::error::{Op, RepositoryError, map_db_err};
use crate::repository::{Repository, context, fetch_all, fetch_one};

/// The keyset of a batch ordered by `(expires_at, id)`: the last row seen.
pub type ExpiryKey = (DateTime<Utc>, i64);

/// The records of issued renewals (`subscription_renewal`).
#[derive(Clone, Copy, Debug)]
pub struct Renewals;

/// The records of dunning attempts (`dunning_attempt`).
#[derive(Clone, Copy, Debug)]
pub struct DunningAttempts;

const RENEWAL: Resource = Resource::SubscriptionRenewal;
const ATTEMPT: Resource = Resource::DunningAttempt;

fn after_expiry_key(after: Option<ExpiryKey>) -> Condition {
    match after {
        None => Condition::all(),
        Some((expires_at, id)) => Condition::any()
            .add(subscription::Column::ExpiresAt.gt(expires_at))
            .add(
                Condition::all()
                    .add(subscription::Column::ExpiresAt.eq(expires_at))
                    .add(subscription::Column::Id.gt(id)),
            ),
    }
}

impl Repository<subscription::Entity> {
    /// Up to `limit` active subscriptions whose period ends at or before
    /// `horizon` and that have no renewal for the period starting at their
    /// `expires_at` yet, by `(expires_at, id)` after `after`.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or [`RepositoryError::Database`].
    pub async fn due_for_renewal<X: Executor>(
        exec: &X,
        horizon: DateTime<Utc>,
        after: Option<ExpiryKey>,
        limit: u64,
    ) -> Result<Vec<subscription::Model>, RepositoryError> {
        let renewed = Query::select()
            .expr(Expr::val(1))
            .from(subscription_renewal::Entity)
            .and_where(
                Expr::col((
                    subscription_renewal::Entity,
                    subscription_renewal::Column::SubscriptionId,
                ))
                .equals((subscription::Entity, subscription::Column::Id)),
            )
            .and_where(
                Expr::col((
                    subscription_renewal::Entity,
                    subscription_renewal::Column::PeriodStart,
                ))
                .equals((subscription::Entity, subscription::Column::ExpiresAt)),
            )
            .to_owned();
        fetch_all(
            exec,
            subscription::Entity::find()
                .filter(subscription::Column::Status.eq(SubscriptionStatus::Active))
                .filter(subscription::Column::ExpiresAt.lte(horizon))
                .filter(after_expiry_key(after))
                .filter(Expr::exists(renewed).not())
                .order_by_asc(subscription::Column::ExpiresAt)
                .order_by_asc(subscription::Column::Id)
                .limit(limit),
        )
        .await
    }

    /// Up to `limit` active subscriptions whose `expires_at` is before
    /// `before`, by `(expires_at, id)` after `after`.
    ///
    /// # Errors
    /// As [`Self::due_for_renewal`].
    pub async fn overdue<X: Executor>(
        exec: &X,
        before: DateTime<Utc>,
        after: Option<ExpiryKey>,
        limit: u64,
    ) -> Result<Vec<subscription::Model>, RepositoryError> {
        fetch_all(
            exec,
            subscription::Entity::find()
                .filter(subscription::Column::Status.eq(SubscriptionStatus::Active))
                .filter(subscription::Column::ExpiresAt.lt(before))
                .filter(after_expiry_key(after))
                .order_by_asc(subscription::Column::ExpiresAt)
                .order_by_asc(subscription::Column::Id)
                .limit(limit),
        )
        .await
    }
}

impl Repository<user_invoice::Entity> {
    /// Up to `limit` unpaid (pending or failed) invoices that can no longer
    /// be paid at `now` (`expires_at <= now`), by id after `after_id`.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or [`RepositoryError::Database`].
    pub async fn unpaid_past_expiry<X: Executor>(
        exec: &X,
        now: DateTime<Utc>,
        after_id: i64,
        limit: u64,
    ) -> Result<Vec<user_invoice::Model>, RepositoryError> {
        fetch_all(
            exec,
            user_invoice::Entity::find()
                .filter(
                    user_invoice::Column::Status
                        .is_in([InvoiceStatus::Pending, InvoiceStatus::Failed]),
                )
                .filter(user_invoice::Column::ExpiresAt.lte(now))
                .filter(user_invoice::Column::Id.gt(after_id))
                .order_by_asc(user_invoice::Column::Id)
                .limit(limit),
        )
        .await
    }
}

impl Repository<user_invoice::Entity> {
    /// The newest invoice of a subscription (by id), if any: its currency
    /// is the subscription's.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or [`RepositoryError::Database`].
    pub async fn latest_of_subscription<X: Executor>(
        exec: &X,
        subscription_id: i64,
    ) -> Result<Option<user_invoice::Model>, RepositoryError> {
        fetch_one(
            exec,
            user_invoice::Entity::find()
                .filter(user_invoice::Column::SubscriptionId.eq(subscription_id))
                .order_by_desc(user_invoice::Column::Id),
        )
        .await
    }
}

/// What renewing a batch of subscriptions needs to know of them, read in
/// three statements for the whole batch.
#[derive(Clone, Debug, Default)]
pub struct RenewalContext {
    /// The subscribers, by id.
    pub users: HashMap<i64, user::Model>,
    /// The currency of each subscription's newest invoice.
    pub currencies: HashMap<i64, String>,
    /// Each subscriber's country, when their details name one.
    pub countries: HashMap<i64, String>,
}

impl Renewals {
    /// The [`RenewalContext`] of `subscriptions`.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or [`RepositoryError::Database`].
    pub async fn context<X: Executor>(
        exec: &X,
        subscriptions: &[subscription::Model],
    ) -> Result<RenewalContext, RepositoryError> {
        let user_ids: Vec<i64> = subscriptions.iter().map(|s| s.user_id).collect();
        let subscription_ids: Vec<i64> = subscriptions.iter().map(|s| s.id).collect();
        let users = fetch_all(
            exec,
            user::Entity::find().filter(user::Column::Id.is_in(user_ids.clone())),
        )
        .await?
        .into_iter()
        .map(|u| (u.id, u))
        .collect();
        let newest = Query::select()
            .expr(Expr::col(user_invoice::Column::Id).max())
            .from(user_invoice::Entity)
            .and_where(user_invoice::Column::SubscriptionId.is_in(subscription_ids))
            .group_by_col(user_invoice::Column::SubscriptionId)
            .to_owned();
        let currencies = fetch_all(
            exec,
            user_invoice::Entity::find().filter(user_invoice::Column::Id.in_subquery(newest)),
        )
        .await?
        .into_iter()
        .filter_map(|i| i.subscription_id.map(|s| (s, i.currency)))
        .collect();
        let countries = fetch_all(
            exec,
            user_details::Entity::find().filter(user_details::Column::UserId.is_in(user_ids)),
        )
        .await?
        .into_iter()
        .filter_map(|d| d.country_code.map(|c| (d.user_id, c)))
        .collect();
        Ok(RenewalContext {
            users,
            currencies,
            countries,
        })
    }
}

impl Repository<tax::Entity> {
    /// The active country-wide tax (no region) of `country_code`, the
    /// oldest if several exist.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or [`RepositoryError::Database`].
    pub async fn active_for_country<X: Executor>(
        exec: &X,
        country_code: &str,
    ) -> Result<Option<tax::Model>, RepositoryError> {
        fetch_one(
            exec,
            tax::Entity::find()
                .filter(tax::Column::CountryCode.eq(country_code))
                .filter(tax::Column::RegionCode.is_null())
                .filter(tax::Column::IsActive.eq(true))
                .order_by_asc(tax::Column::Id),
        )
        .await
    }
}

impl Renewals {
    /// Records that `invoice_id` renews `subscription_id` for the period
    /// starting at `period_start`. Call it in the invoice's transaction.
    ///
    /// # Errors
    /// [`RepositoryError::AlreadyExists`] when that period already has a
    /// renewal (the unique index `uq_subscription_renewal_period`);
    /// [`RepositoryError::ReferencedRowMissing`], [`RepositoryError::Unavailable`]
    /// or [`RepositoryError::Database`].
    pub async fn insert<X: Executor>(
        exec: &X,
        subscription_id: i64,
        period_start: DateTime<Utc>,
        invoice_id: i64,
        at: DateTime<Utc>,
    ) -> Result<subscription_renewal::Model, RepositoryError> {
        let row = subscription_renewal::ActiveModel {
            id: ActiveValue::NotSet,
            subscription_id: ActiveValue::Set(subscription_id),
            period_start: ActiveValue::Set(period_start),
            invoice_id: ActiveValue::Set(invoice_id),
            created_at: ActiveValue::Set(at),
        };
        subscription_renewal::Entity::insert(row)
            .exec_with_returning(exec.connection())
            .await
            .map_err(|e| map_db_err(e, context(exec, RENEWAL, Op::Write)))
    }

    /// The renewal an invoice pays for, if it is a renewal invoice.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or [`RepositoryError::Database`].
    pub async fn of_invoice<X: Executor>(
        exec: &X,
        invoice_id: i64,
    ) -> Result<Option<subscription_renewal::Model>, RepositoryError> {
        subscription_renewal::Entity::find()
            .filter(subscription_renewal::Column::InvoiceId.eq(invoice_id))
            .one(exec.connection())
            .await
            .map_err(|e| map_db_err(e, context(exec, RENEWAL, Op::Read)))
    }

    /// The renewals of a subscription, oldest period first.
    ///
    /// # Errors
    /// As [`Self::of_invoice`].
    pub async fn of_subscription<X: Executor>(
        exec: &X,
        subscription_id: i64,
    ) -> Result<Vec<subscription_renewal::Model>, RepositoryError> {
        subscription_renewal::Entity::find()
            .filter(subscription_renewal::Column::SubscriptionId.eq(subscription_id))
            .order_by_asc(subscription_renewal::Column::PeriodStart)
            .all(exec.connection())
            .await
            .map_err(|e| map_db_err(e, context(exec, RENEWAL, Op::Read)))
    }

    /// Up to `limit` renewals whose invoice is still unpaid (pending or
    /// failed) and whose period started at or before `started_by`, by
    /// invoice id after `after_invoice_id`: the candidates for dunning.
    ///
    /// # Errors
    /// As [`Self::of_invoice`].
    pub async fn unpaid<X: Executor>(
        exec: &X,
        started_by: DateTime<Utc>,
        after_invoice_id: i64,
        limit: u64,
    ) -> Result<Vec<subscription_renewal::Model>, RepositoryError> {
        subscription_renewal::Entity::find()
            .join(
                JoinType::InnerJoin,
                subscription_renewal::Relation::UserInvoice.def(),
            )
            .filter(
                user_invoice::Column::Status.is_in([InvoiceStatus::Pending, InvoiceStatus::Failed]),
            )
            .filter(subscription_renewal::Column::PeriodStart.lte(started_by))
            .filter(subscription_renewal::Column::InvoiceId.gt(after_invoice_id))
            .order_by_asc(subscription_renewal::Column::InvoiceId)
            .limit(limit)
            .all(exec.connection())
            .await
            .map_err(|e| map_db_err(e, context(exec, RENEWAL, Op::Read)))
    }
}

impl DunningAttempts {
    /// The attempts made for an invoice, in order.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or [`RepositoryError::Database`].
    pub async fn of_invoice<X: Executor>(
        exec: &X,
        invoice_id: i64,
    ) -> Result<Vec<dunning_attempt::Model>, RepositoryError> {
        dunning_attempt::Entity::find()
            .filter(dunning_attempt::Column::InvoiceId.eq(invoice_id))
            .order_by_asc(dunning_attempt::Column::Attempt)
            .all(exec.connection())
            .await
            .map_err(|e| map_db_err(e, context(exec, ATTEMPT, Op::Read)))
    }

    /// Claims attempt `attempt` of `invoice_id` (outcome `started`). Only
    /// one claim of an attempt can ever succeed (the unique index
    /// `uq_dunning_attempt_invoice_attempt`): `Ok(None)` when it was
    /// claimed before.
    ///
    /// # Errors
    /// As [`Self::of_invoice`].
    pub async fn claim<X: Executor>(
        exec: &X,
        invoice_id: i64,
        attempt: i32,
        at: DateTime<Utc>,
    ) -> Result<Option<dunning_attempt::Model>, RepositoryError> {
        let row = dunning_attempt::ActiveModel {
            id: ActiveValue::NotSet,
            invoice_id: ActiveValue::Set(invoice_id),
            attempt: ActiveValue::Set(attempt),
            outcome: ActiveValue::Set(DunningOutcome::Started),
            detail: ActiveValue::Set(None),
            attempted_at: ActiveValue::Set(at),
        };
        match dunning_attempt::Entity::insert(row)
            .exec_with_returning(exec.connection())
            .await
            .map_err(|e| map_db_err(e, context(exec, ATTEMPT, Op::Write)))
        {
            Ok(claimed) => Ok(Some(claimed)),
            Err(RepositoryError::AlreadyExists { .. }) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// Records how a `started` attempt ended; an attempt that already has
    /// an outcome keeps it. Returns whether this call recorded it.
    ///
    /// # Errors
    /// As [`Self::of_invoice`].
    pub async fn finish<X: Executor>(
        exec: &X,
        invoice_id: i64,
        attempt: i32,
        outcome: DunningOutcome,
        detail: Option<String>,
    ) -> Result<bool, RepositoryError> {
        let result = dunning_attempt::Entity::update_many()
            .col_expr(dunning_attempt::Column::Outcome, Expr::value(outcome))
            .col_expr(dunning_attempt::Column::Detail, Expr::value(detail))
            .filter(dunning_attempt::Column::InvoiceId.eq(invoice_id))
            .filter(dunning_attempt::Column::Attempt.eq(attempt))
            .filter(dunning_attempt::Column::Outcome.eq(DunningOutcome::Started))
            .exec(exec.connection())
            .await
            .map_err(|e| map_db_err(e, context(exec, ATTEMPT, Op::Write)))?;
        Ok(result.rows_affected == 1)
    }
}
