//! [`Plans`]: tariff plans by slug, and the active ones in listing order.

use billing_domain::PageRequest;
use billing_domain::entities::tarif_plan;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select};

use crate::database::Executor;
use crate::error::RepositoryError;
use crate::repository::{Page, Repository, fetch_all, fetch_one, paginate};

/// The repository of `tarif_plan`.
pub type Plans = Repository<tarif_plan::Entity>;

/// Which plans a listing shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanFilter {
    /// Only the active plans (what customers may subscribe to).
    ActiveOnly,
    /// Every plan, active or not.
    All,
}

impl PlanFilter {
    /// [`PlanFilter::All`] when inactive plans are to be included, else
    /// [`PlanFilter::ActiveOnly`].
    #[must_use]
    pub fn including_inactive(include_inactive: bool) -> Self {
        if include_inactive {
            Self::All
        } else {
            Self::ActiveOnly
        }
    }

    /// Whether a plan that is active (or not) is listed.
    #[must_use]
    pub fn keeps(self, is_active: bool) -> bool {
        match self {
            Self::ActiveOnly => is_active,
            Self::All => true,
        }
    }
}

/// Plans in listing order: `sort_order`, then id.
fn in_listing_order(select: Select<tarif_plan::Entity>) -> Select<tarif_plan::Entity> {
    select
        .order_by_asc(tarif_plan::Column::SortOrder)
        .order_by_asc(tarif_plan::Column::Id)
}

impl Repository<tarif_plan::Entity> {
    /// The plan with this slug.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or [`RepositoryError::Database`].
    pub async fn find_by_slug<X: Executor>(
        exec: &X,
        slug: &str,
    ) -> Result<Option<tarif_plan::Model>, RepositoryError> {
        fetch_one(
            exec,
            tarif_plan::Entity::find().filter(tarif_plan::Column::Slug.eq(slug)),
        )
        .await
    }

    /// Every active plan, by `sort_order` (then id).
    ///
    /// # Errors
    /// As [`Self::find_by_slug`].
    pub async fn active_by_sort_order<X: Executor>(
        exec: &X,
    ) -> Result<Vec<tarif_plan::Model>, RepositoryError> {
        fetch_all(
            exec,
            in_listing_order(
                tarif_plan::Entity::find().filter(tarif_plan::Column::IsActive.eq(true)),
            ),
        )
        .await
    }

    /// One page of plans by `sort_order` (then id): those `filter` keeps.
    ///
    /// # Errors
    /// As [`Self::find_by_slug`].
    pub async fn list<X: Executor>(
        exec: &X,
        filter: PlanFilter,
        page: PageRequest,
    ) -> Result<Page<tarif_plan::Model>, RepositoryError> {
        let select = match filter {
            PlanFilter::ActiveOnly => {
                tarif_plan::Entity::find().filter(tarif_plan::Column::IsActive.eq(true))
            }
            PlanFilter::All => tarif_plan::Entity::find(),
        };
        paginate(exec, in_listing_order(select), page).await
    }

    /// Every plan, active or not, in listing order, at most `limit` of them
    /// (a catalogue cache loads them whole).
    ///
    /// # Errors
    /// As [`Self::find_by_slug`].
    pub async fn all_in_listing_order<X: Executor>(
        exec: &X,
        limit: u64,
    ) -> Result<Vec<tarif_plan::Model>, RepositoryError> {
        fetch_all(
            exec,
            in_listing_order(tarif_plan::Entity::find()).limit(limit),
        )
        .await
    }
}
