//! [`Versioned`]: the entities of `billing-domain` with the bookkeeping
//! columns `id`, `created_at`, `updated_at` and `version`.

use billing_domain::Resource;
use billing_domain::entities::{
    currency, subscription, tarif_plan, tax, tax_rate, user, user_case, user_details, user_invoice,
};
use sea_orm::{EntityTrait, IntoActiveModel};

mod sealed {
    /// Only the entities of `billing-domain` listed in this crate.
    pub trait Sealed {}
}

/// An entity of `billing-domain` with the bookkeeping columns `id`
/// (BIGINT), `created_at`, `updated_at` and `version` (INTEGER, from 1).
/// Sealed: implemented for every such entity of the schema.
pub trait Versioned:
    EntityTrait<
        Model: Clone + Send + Sync + IntoActiveModel<Self::ActiveModel>,
        ActiveModel: Send + Sync,
    > + sealed::Sealed
{
    /// What the entity is, as errors name it (its table: `user`,
    /// `user_invoice` …).
    const RESOURCE: Resource;
    /// The primary key column.
    const ID: Self::Column;
    /// The optimistic-lock version column.
    const VERSION: Self::Column;
    /// The creation instant column.
    const CREATED_AT: Self::Column;
    /// The last-change instant column.
    const UPDATED_AT: Self::Column;

    /// The id of a model.
    fn id_of(model: &Self::Model) -> i64;

    /// The version of a model.
    fn version_of(model: &Self::Model) -> i32;
}

macro_rules! versioned {
    ($($module:ident => $resource:ident),+ $(,)?) => {$(
        impl sealed::Sealed for $module::Entity {}

        impl Versioned for $module::Entity {
            const RESOURCE: Resource = Resource::$resource;
            const ID: $module::Column = $module::Column::Id;
            const VERSION: $module::Column = $module::Column::Version;
            const CREATED_AT: $module::Column = $module::Column::CreatedAt;
            const UPDATED_AT: $module::Column = $module::Column::UpdatedAt;

            fn id_of(model: &$module::Model) -> i64 {
                model.id
            }

            fn version_of(model: &$module::Model) -> i32 {
                model.version
            }
        }
    )+};
}

versioned!(
    user => User,
    user_details => UserDetails,
    user_case => Case,
    currency => Currency,
    tax => Tax,
    tax_rate => TaxRate,
    tarif_plan => Plan,
    subscription => Subscription,
    user_invoice => Invoice,
);

#[cfg(test)]
mod tests {
    use super::*;

    /// Each versioned entity's [`Resource`] names its table.
    #[test]
    fn resources_name_the_tables() {
        fn check<E: Versioned>() {
            assert_eq!(E::RESOURCE.table(), E::default().table_name());
        }
        check::<user::Entity>();
        check::<user_details::Entity>();
        check::<user_case::Entity>();
        check::<currency::Entity>();
        check::<tax::Entity>();
        check::<tax_rate::Entity>();
        check::<tarif_plan::Entity>();
        check::<subscription::Entity>();
        check::<user_invoice::Entity>();
    }
}
