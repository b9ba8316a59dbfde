//! The erasure of a deleted user's data: its row, details, case text,
//! events and idempotent outcomes, in one transaction.

use billing_domain::entities::{user, user_case};
use billing_domain::enums::UserStatus;
use billing_domain::events::ResourceKind;
use billing_repository::{
    Executor, IdempotencyRecords, Outbox, RepositoryError, UserCases, UserDetailsRepository, Users,
};

use crate::events::{append_events, event_of, scrub_user_data};
use crate::versioned::{check_expected_version, save_or_conflict};
use crate::{Billing, BillingError, PageRequest, Resource};

impl Billing {
    /// Reads user `id`, lets `delete` turn it `deleted` (erasing its row),
    /// and erases the user's details and case text, all in one transaction;
    /// only rows that change are written.
    pub(super) async fn erase_user<F>(
        &self,
        id: i64,
        expected_version: Option<i32>,
        delete: F,
    ) -> Result<user::Model, BillingError>
    where
        F: Fn(&mut user::Model) -> Result<(), BillingError> + Clone + Send + Sync + 'static,
    {
        self.retrying_transaction(move |tx| {
            let delete = delete.clone();
            Box::pin(async move {
                let mut user = Users::get(tx, id).await?;
                let read_version = user.version;
                check_expected_version(Resource::User, expected_version, read_version)?;
                let stored = user.clone();
                delete(&mut user)?;
                if user.status != UserStatus::Deleted {
                    return Err(BillingError::Internal {
                        source: "a user deletion left the user undeleted".into(),
                    });
                }
                if user != stored {
                    match save_or_conflict::<user::Entity, _>(
                        tx,
                        &user,
                        read_version,
                        expected_version,
                    )
                    .await?
                    {
                        Some(saved) => {
                            append_events(tx, [event_of(Some(&stored), &saved)?]).await?;
                            user = saved;
                        }
                        None => return Ok(None),
                    }
                }
                // The user's events held the e-mail it had.
                Outbox::scrub(tx, ResourceKind::User, id, |data| {
                    scrub_user_data(data, &user.email)
                })
                .await?;
                if let Some(details) = UserDetailsRepository::find_by_user(tx, id).await? {
                    match UserDetailsRepository::delete(tx, details.id, details.version).await {
                        Ok(()) => {}
                        Err(RepositoryError::ConcurrentModification { .. }) => return Ok(None),
                        Err(other) => return Err(other.into()),
                    }
                }
                for case in all_cases(tx, id).await? {
                    let mut erased = case.clone();
                    erased.erase();
                    if erased != case
                        && save_or_conflict::<user_case::Entity, _>(tx, &erased, case.version, None)
                            .await?
                            .is_none()
                    {
                        return Ok(None);
                    }
                }
                // The outcomes of the user's idempotent requests hold their
                // data too (e-mail, case text).
                IdempotencyRecords::delete_for_user(tx, id).await?;
                Ok(Some(user))
            })
        })
        .await
    }
}

/// Every support case of user `user_id`, through `exec`.
async fn all_cases<X: Executor>(
    exec: &X,
    user_id: i64,
) -> Result<Vec<user_case::Model>, BillingError> {
    let mut all = Vec::new();
    let mut page = PageRequest::largest_first();
    loop {
        let batch = UserCases::by_user(exec, user_id, None, page).await?;
        let done = batch.items.len() < usize::try_from(batch.per_page).unwrap_or(usize::MAX);
        all.extend(batch.items);
        match page.next() {
            Some(next) if !done => page = next,
            Some(_) | None => return Ok(all),
        }
    }
}
