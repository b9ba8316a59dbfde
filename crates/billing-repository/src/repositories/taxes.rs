//! [`Taxes`] and [`TaxRates`]: taxes by code, and the rate of a tax in force
//! at an instant (rates hold on the half-open interval
//! `[valid_from, valid_to)`).

use billing_domain::PageRequest;
use billing_domain::entities::{tax, tax_rate};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Condition;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::database::Executor;
use crate::error::RepositoryError;
use crate::repository::{Page, Repository, fetch_all, fetch_one, paginate};

/// The repository of `tax`.
pub type Taxes = Repository<tax::Entity>;

/// The repository of `tax_rate`.
pub type TaxRates = Repository<tax_rate::Entity>;

/// A tax with the historical rate in force at the instant asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaxWithRate {
    /// The tax.
    pub tax: tax::Model,
    /// The rate in force at that instant; `None` when no recorded rate
    /// covers it (before the first one, or in a gap of the history).
    pub rate: Option<tax_rate::Model>,
}

impl Repository<tax::Entity> {
    /// The tax with this code.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or [`RepositoryError::Database`].
    pub async fn find_by_code<X: Executor>(
        exec: &X,
        code: &str,
    ) -> Result<Option<tax::Model>, RepositoryError> {
        fetch_one(exec, tax::Entity::find().filter(tax::Column::Code.eq(code))).await
    }

    /// The tax with this code and its rate in force at `at`.
    ///
    /// # Errors
    /// As [`Self::find_by_code`].
    pub async fn find_by_code_with_rate_at<X: Executor>(
        exec: &X,
        code: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<TaxWithRate>, RepositoryError> {
        let Some(tax) = Self::find_by_code(exec, code).await? else {
            return Ok(None);
        };
        let rate = TaxRates::in_force_at(exec, tax.id, at).await?;
        Ok(Some(TaxWithRate { tax, rate }))
    }

    /// One page of taxes ordered by code.
    ///
    /// # Errors
    /// As [`Self::find_by_code`].
    pub async fn list<X: Executor>(
        exec: &X,
        page: PageRequest,
    ) -> Result<Page<tax::Model>, RepositoryError> {
        paginate(
            exec,
            tax::Entity::find().order_by_asc(tax::Column::Code),
            page,
        )
        .await
    }
}

impl Repository<tax::Entity> {
    /// Every tax by code (the order of [`Self::list`]), at most `limit` of
    /// them (a catalogue cache loads them whole).
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or [`RepositoryError::Database`].
    pub async fn all_by_code<X: Executor>(
        exec: &X,
        limit: u64,
    ) -> Result<Vec<tax::Model>, RepositoryError> {
        fetch_all(
            exec,
            tax::Entity::find()
                .order_by_asc(tax::Column::Code)
                .limit(limit),
        )
        .await
    }
}

impl Repository<tax_rate::Entity> {
    /// Every rate of every tax, by tax id, each tax's newest first (the
    /// order of [`Self::history`]), at most `limit` of them.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or [`RepositoryError::Database`].
    pub async fn all_histories<X: Executor>(
        exec: &X,
        limit: u64,
    ) -> Result<Vec<tax_rate::Model>, RepositoryError> {
        fetch_all(
            exec,
            tax_rate::Entity::find()
                .order_by_asc(tax_rate::Column::TaxId)
                .order_by_desc(tax_rate::Column::ValidFrom)
                .order_by_desc(tax_rate::Column::Id)
                .limit(limit),
        )
        .await
    }

    /// The rate of tax `tax_id` in force at `at`: `valid_from <= at` and
    /// (`valid_to` open or `at < valid_to`). Should overlapping rates exist,
    /// the one that started last wins.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or [`RepositoryError::Database`].
    pub async fn in_force_at<X: Executor>(
        exec: &X,
        tax_id: i64,
        at: DateTime<Utc>,
    ) -> Result<Option<tax_rate::Model>, RepositoryError> {
        fetch_one(
            exec,
            tax_rate::Entity::find()
                .filter(tax_rate::Column::TaxId.eq(tax_id))
                .filter(tax_rate::Column::ValidFrom.lte(at))
                .filter(
                    Condition::any()
                        .add(tax_rate::Column::ValidTo.is_null())
                        .add(tax_rate::Column::ValidTo.gt(at)),
                )
                .order_by_desc(tax_rate::Column::ValidFrom)
                .order_by_desc(tax_rate::Column::Id),
        )
        .await
    }

    /// The open (current) rate of a tax: `valid_to` not set. At most one
    /// exists (a partial unique index).
    ///
    /// # Errors
    /// As [`Self::in_force_at`].
    pub async fn open_rate<X: Executor>(
        exec: &X,
        tax_id: i64,
    ) -> Result<Option<tax_rate::Model>, RepositoryError> {
        fetch_one(
            exec,
            tax_rate::Entity::find()
                .filter(tax_rate::Column::TaxId.eq(tax_id))
                .filter(tax_rate::Column::ValidTo.is_null()),
        )
        .await
    }

    /// The rate history of a tax, newest first.
    ///
    /// # Errors
    /// As [`Self::in_force_at`].
    pub async fn history<X: Executor>(
        exec: &X,
        tax_id: i64,
    ) -> Result<Vec<tax_rate::Model>, RepositoryError> {
        fetch_all(
            exec,
            tax_rate::Entity::find()
                .filter(tax_rate::Column::TaxId.eq(tax_id))
                .order_by_desc(tax_rate::Column::ValidFrom)
                .order_by_desc(tax_rate::Column::Id),
        )
        .await
    }
}
