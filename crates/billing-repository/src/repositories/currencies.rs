//! [`Currencies`]: currencies by ISO 4217 code, and the default one.

use billing_domain::PageRequest;
use billing_domain::entities::currency;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::database::Executor;
use crate::error::RepositoryError;
use crate::repository::{Page, Repository, fetch_all, fetch_one, paginate};

/// The repository of `currency`.
pub type Currencies = Repository<currency::Entity>;

impl Repository<currency::Entity> {
    /// The currency with this ISO 4217 code (compared upper-case, as
    /// stored).
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or [`RepositoryError::Database`].
    pub async fn find_by_code<X: Executor>(
        exec: &X,
        code: &str,
    ) -> Result<Option<currency::Model>, RepositoryError> {
        fetch_one(
            exec,
            currency::Entity::find()
                .filter(currency::Column::Code.eq(code.trim().to_ascii_uppercase())),
        )
        .await
    }

    /// The default currency (at most one exists: a partial unique index).
    ///
    /// # Errors
    /// As [`Self::find_by_code`].
    pub async fn find_default<X: Executor>(
        exec: &X,
    ) -> Result<Option<currency::Model>, RepositoryError> {
        fetch_one(
            exec,
            currency::Entity::find().filter(currency::Column::IsDefault.eq(true)),
        )
        .await
    }

    /// One page of currencies ordered by code.
    ///
    /// # Errors
    /// As [`Self::find_by_code`].
    pub async fn list<X: Executor>(
        exec: &X,
        page: PageRequest,
    ) -> Result<Page<currency::Model>, RepositoryError> {
        paginate(
            exec,
            currency::Entity::find().order_by_asc(currency::Column::Code),
            page,
        )
        .await
    }

    /// Every currency by code (the order of [`Self::list`]), at most
    /// `limit` of them (a catalogue cache loads them whole).
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or [`RepositoryError::Database`].
    pub async fn all_by_code<X: Executor>(
        exec: &X,
        limit: u64,
    ) -> Result<Vec<currency::Model>, RepositoryError> {
        fetch_all(
            exec,
            currency::Entity::find()
                .order_by_asc(currency::Column::Code)
                .limit(limit),
        )
        .await
    }
}
