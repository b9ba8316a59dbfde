//! [`WebhookEndpoints`] and [`WebhookDeliveries`]: where events are sent,
//! what is owed to whom, and every attempt made.

use billing_domain::entities::webhook_endpoint::WebhookSecret;
use billing_domain::entities::{event, webhook_attempt, webhook_delivery, webhook_endpoint};
use billing_domain::enums::{DeliveryStatus, EndpointStatus};
use billing_domain::{PageRequest, Resource};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};

use crate::database::{Executor, Transaction};
use crate::error::{Op, RepositoryError, map_db_err};
use crate::repository::{Page, context, now};

const ENDPOINT: Resource = Resource::WebhookEndpoint;
const DELIVERY: Resource = Resource::WebhookDelivery;
const ATTEMPT: Resource = Resource::WebhookAttempt;

/// The queries of `webhook_endpoint`.
#[derive(Clone, Copy, Debug)]
pub struct WebhookEndpoints;

impl WebhookEndpoints {
    /// Stores a new endpoint (status `enabled`).
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or [`RepositoryError::Database`].
    pub async fn insert<X: Executor>(
        exec: &X,
        url: String,
        event_types: String,
        secret: WebhookSecret,
    ) -> Result<webhook_endpoint::Model, RepositoryError> {
        let at = now();
        let row = webhook_endpoint::ActiveModel {
            id: ActiveValue::NotSet,
            url: ActiveValue::Set(url),
            event_types: ActiveValue::Set(event_types),
            secret: ActiveValue::Set(secret),
            status: ActiveValue::Set(EndpointStatus::Enabled),
            created_at: ActiveValue::Set(at),
            updated_at: ActiveValue::Set(at),
        };
        webhook_endpoint::Entity::insert(row)
            .exec_with_returning(exec.connection())
            .await
            .map_err(|e| map_db_err(e, context(exec, ENDPOINT, Op::Write)))
    }

    /// Endpoint `id`, secret included.
    ///
    /// # Errors
    /// [`RepositoryError::NotFound`], [`RepositoryError::Unavailable`] or
    /// [`RepositoryError::Database`].
    pub async fn get<X: Executor>(
        exec: &X,
        id: i64,
    ) -> Result<webhook_endpoint::Model, RepositoryError> {
        webhook_endpoint::Entity::find_by_id(id)
            .one(exec.connection())
            .await
            .map_err(|e| map_db_err(e, context(exec, ENDPOINT, Op::Read)))?
            .ok_or(RepositoryError::NotFound {
                entity: ENDPOINT,
                id,
            })
    }

    /// Every endpoint, by id.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or [`RepositoryError::Database`].
    pub async fn all<X: Executor>(
        exec: &X,
    ) -> Result<Vec<webhook_endpoint::Model>, RepositoryError> {
        webhook_endpoint::Entity::find()
            .order_by_asc(webhook_endpoint::Column::Id)
            .all(exec.connection())
            .await
            .map_err(|e| map_db_err(e, context(exec, ENDPOINT, Op::Read)))
    }

    /// A page of the endpoints, by id.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or
    /// [`RepositoryError::Database`].
    pub async fn list<X: Executor>(
        exec: &X,
        page: PageRequest,
    ) -> Result<Page<webhook_endpoint::Model>, RepositoryError> {
        let cx = || context(exec, ENDPOINT, Op::Read);
        let select = webhook_endpoint::Entity::find().order_by_asc(webhook_endpoint::Column::Id);
        let total = select
            .clone()
            .count(exec.connection())
            .await
            .map_err(|e| map_db_err(e, cx()))?;
        let items = select
            .offset(page.offset())
            .limit(page.limit())
            .all(exec.connection())
            .await
            .map_err(|e| map_db_err(e, cx()))?;
        Ok(Page::of(items, page, total))
    }

    /// Sets the status of endpoint `id`; returns the endpoint.
    ///
    /// # Errors
    /// [`RepositoryError::NotFound`], [`RepositoryError::Unavailable`] or
    /// [`RepositoryError::Database`].
    pub async fn set_status<X: Executor>(
        exec: &X,
        id: i64,
        status: EndpointStatus,
    ) -> Result<webhook_endpoint::Model, RepositoryError> {
        webhook_endpoint::Entity::update_many()
            .col_expr(webhook_endpoint::Column::Status, Expr::value(status))
            .col_expr(webhook_endpoint::Column::UpdatedAt, Expr::value(now()))
            .filter(webhook_endpoint::Column::Id.eq(id))
            .exec(exec.connection())
            .await
            .map_err(|e| map_db_err(e, context(exec, ENDPOINT, Op::Write)))?;
        Self::get(exec, id).await
    }

    /// Deletes endpoint `id` and its deliveries; `false` when it was absent.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or [`RepositoryError::Database`].
    pub async fn delete(tx: &Transaction, id: i64) -> Result<bool, RepositoryError> {
        let cx = || context(tx, ENDPOINT, Op::Delete);
        let deliveries = webhook_delivery::Entity::find()
            .select_only()
            .column(webhook_delivery::Column::Id)
            .filter(webhook_delivery::Column::EndpointId.eq(id))
            .into_tuple::<i64>()
            .all(tx.connection())
            .await
            .map_err(|e| map_db_err(e, cx()))?;
        for chunk in deliveries.chunks(500) {
            webhook_attempt::Entity::delete_many()
                .filter(webhook_attempt::Column::DeliveryId.is_in(chunk.to_vec()))
                .exec(tx.connection())
                .await
                .map_err(|e| map_db_err(e, cx()))?;
        }
        webhook_delivery::Entity::delete_many()
            .filter(webhook_delivery::Column::EndpointId.eq(id))
            .exec(tx.connection())
            .await
            .map_err(|e| map_db_err(e, cx()))?;
        let result = webhook_endpoint::Entity::delete_by_id(id)
            .exec(tx.connection())
            .await
            .map_err(|e| map_db_err(e, cx()))?;
        Ok(result.rows_affected == 1)
    }
}

/// A delivery to queue: one published event for one endpoint.
#[derive(Clone, Debug)]
pub struct NewDelivery {
    /// The endpoint.
    pub endpoint_id: i64,
    /// The event (published: it has a position).
    pub event: event::Model,
}

/// What to list of the deliveries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeliveryFilter {
    /// Only deliveries after this id.
    pub after_id: Option<i64>,
    /// Only to this endpoint.
    pub endpoint_id: Option<i64>,
    /// Only of this event.
    pub event_id: Option<i64>,
    /// Only in this status.
    pub status: Option<DeliveryStatus>,
}

/// The queries of `webhook_delivery` and `webhook_attempt`.
#[derive(Clone, Copy, Debug)]
pub struct WebhookDeliveries;

impl WebhookDeliveries {
    /// Queues `deliveries` (due at once) in `tx`; one already queued (same
    /// endpoint and event) is left as it is.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or [`RepositoryError::Database`].
    pub async fn queue(
        tx: &Transaction,
        deliveries: Vec<NewDelivery>,
    ) -> Result<(), RepositoryError> {
        let at = now();
        for chunk in deliveries.chunks(200) {
            let rows = chunk.iter().map(|new| webhook_delivery::ActiveModel {
                id: ActiveValue::NotSet,
                endpoint_id: ActiveValue::Set(new.endpoint_id),
                event_id: ActiveValue::Set(new.event.id),
                event_position: ActiveValue::Set(new.event.position.unwrap_or(0)),
                event_type: ActiveValue::Set(new.event.event_type),
                resource_kind: ActiveValue::Set(new.event.resource_kind),
                resource_id: ActiveValue::Set(new.event.resource_id),
                status: ActiveValue::Set(DeliveryStatus::Pending),
                attempts: ActiveValue::Set(0),
                next_attempt_at: ActiveValue::Set(Some(at)),
                last_status_code: ActiveValue::Set(None),
                created_at: ActiveValue::Set(at),
                updated_at: ActiveValue::Set(at),
            });
            webhook_delivery::Entity::insert_many(rows)
                .on_conflict(
                    OnConflict::columns([
                        webhook_delivery::Column::EndpointId,
                        webhook_delivery::Column::EventId,
                    ])
                    .do_nothing()
                    .to_owned(),
                )
                .exec_without_returning(tx.connection())
                .await
                .map_err(|e| map_db_err(e, context(tx, DELIVERY, Op::Write)))?;
        }
        Ok(())
    }

    /// Up to `limit` deliveries due at `now` to enabled endpoints, each the
    /// first pending one of its endpoint and resource (a resource's events
    /// reach an endpoint in order), by event position.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or [`RepositoryError::Database`].
    pub async fn due<X: Executor>(
        exec: &X,
        now: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<webhook_delivery::Model>, RepositoryError> {
        webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::Status.eq(DeliveryStatus::Pending))
            .filter(webhook_delivery::Column::NextAttemptAt.lte(now))
            .filter(Expr::cust(
                "EXISTS (SELECT 1 FROM webhook_endpoint w \
                 WHERE w.id = webhook_delivery.endpoint_id AND w.status = 'enabled')",
            ))
            .filter(Expr::cust(
                "NOT EXISTS (SELECT 1 FROM webhook_delivery p \
                 WHERE p.endpoint_id = webhook_delivery.endpoint_id \
                 AND p.resource_kind = webhook_delivery.resource_kind \
                 AND p.resource_id = webhook_delivery.resource_id \
                 AND p.status = 'pending' \
                 AND p.event_position < webhook_delivery.event_position)",
            ))
            .order_by_asc(webhook_delivery::Column::EventPosition)
            .limit(limit)
            .all(exec.connection())
            .await
            .map_err(|e| map_db_err(e, context(exec, DELIVERY, Op::Read)))
    }

    /// Delivery `id`.
    ///
    /// # Errors
    /// [`RepositoryError::NotFound`], [`RepositoryError::Unavailable`] or
    /// [`RepositoryError::Database`].
    pub async fn get<X: Executor>(
        exec: &X,
        id: i64,
    ) -> Result<webhook_delivery::Model, RepositoryError> {
        webhook_delivery::Entity::find_by_id(id)
            .one(exec.connection())
            .await
            .map_err(|e| map_db_err(e, context(exec, DELIVERY, Op::Read)))?
            .ok_or(RepositoryError::NotFound {
                entity: DELIVERY,
                id,
            })
    }

    /// Up to `limit` deliveries matching `filter`, by id.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or [`RepositoryError::Database`].
    pub async fn list<X: Executor>(
        exec: &X,
        filter: &DeliveryFilter,
        limit: u64,
    ) -> Result<Vec<webhook_delivery::Model>, RepositoryError> {
        let mut select = webhook_delivery::Entity::find();
        if let Some(after) = filter.after_id {
            select = select.filter(webhook_delivery::Column::Id.gt(after));
        }
        if let Some(endpoint) = filter.endpoint_id {
            select = select.filter(webhook_delivery::Column::EndpointId.eq(endpoint));
        }
        if let Some(event) = filter.event_id {
            select = select.filter(webhook_delivery::Column::EventId.eq(event));
        }
        if let Some(status) = filter.status {
            select = select.filter(webhook_delivery::Column::Status.eq(status));
        }
        select
            .order_by_asc(webhook_delivery::Column::Id)
            .limit(limit)
            .all(exec.connection())
            .await
            .map_err(|e| map_db_err(e, context(exec, DELIVERY, Op::Read)))
    }

    /// The attempts of delivery `id`, oldest first.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or [`RepositoryError::Database`].
    pub async fn attempts<X: Executor>(
        exec: &X,
        id: i64,
    ) -> Result<Vec<webhook_attempt::Model>, RepositoryError> {
        webhook_attempt::Entity::find()
            .filter(webhook_attempt::Column::DeliveryId.eq(id))
            .order_by_asc(webhook_attempt::Column::Id)
            .all(exec.connection())
            .await
            .map_err(|e| map_db_err(e, context(exec, ATTEMPT, Op::Read)))
    }

    /// Records `attempt` of `delivery` and its outcome (the delivery's new
    /// `status`, `next_attempt_at` and last status code), in `tx`.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or [`RepositoryError::Database`].
    pub async fn record_attempt(
        tx: &Transaction,
        attempt: webhook_attempt::Model,
        status: DeliveryStatus,
        next_attempt_at: Option<DateTime<Utc>>,
    ) -> Result<(), RepositoryError> {
        let delivery_id = attempt.delivery_id;
        let status_code = attempt.status_code;
        let row = webhook_attempt::ActiveModel {
            id: ActiveValue::NotSet,
            delivery_id: ActiveValue::Set(attempt.delivery_id),
            attempted_at: ActiveValue::Set(attempt.attempted_at),
            status_code: ActiveValue::Set(attempt.status_code),
            error: ActiveValue::Set(attempt.error),
            duration_ms: ActiveValue::Set(attempt.duration_ms),
        };
        webhook_attempt::Entity::insert(row)
            .exec_without_returning(tx.connection())
            .await
            .map_err(|e| map_db_err(e, context(tx, ATTEMPT, Op::Write)))?;
        webhook_delivery::Entity::update_many()
            .col_expr(webhook_delivery::Column::Status, Expr::value(status))
            .col_expr(
                webhook_delivery::Column::Attempts,
                Expr::col(webhook_delivery::Column::Attempts).add(1),
            )
            .col_expr(
                webhook_delivery::Column::NextAttemptAt,
                Expr::value(next_attempt_at),
            )
            .col_expr(
                webhook_delivery::Column::LastStatusCode,
                Expr::value(status_code),
            )
            .col_expr(webhook_delivery::Column::UpdatedAt, Expr::value(now()))
            .filter(webhook_delivery::Column::Id.eq(delivery_id))
            .exec(tx.connection())
            .await
            .map_err(|e| map_db_err(e, context(tx, DELIVERY, Op::Write)))
            .map(drop)
    }

    /// Queues delivery `id` again, due at once, with a new retry window
    /// (its attempts are kept).
    ///
    /// # Errors
    /// [`RepositoryError::NotFound`], [`RepositoryError::Unavailable`] or
    /// [`RepositoryError::Database`].
    pub async fn redeliver<X: Executor>(
        exec: &X,
        id: i64,
    ) -> Result<webhook_delivery::Model, RepositoryError> {
        let at = now();
        webhook_delivery::Entity::update_many()
            .col_expr(
                webhook_delivery::Column::Status,
                Expr::value(DeliveryStatus::Pending),
            )
            .col_expr(webhook_delivery::Column::NextAttemptAt, Expr::value(at))
            .col_expr(webhook_delivery::Column::CreatedAt, Expr::value(at))
            .col_expr(webhook_delivery::Column::UpdatedAt, Expr::value(at))
            .filter(webhook_delivery::Column::Id.eq(id))
            .exec(exec.connection())
            .await
            .map_err(|e| map_db_err(e, context(exec, DELIVERY, Op::Write)))?;
        Self::get(exec, id).await
    }
}
