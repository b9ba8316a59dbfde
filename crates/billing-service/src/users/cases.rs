//! Support cases.

use billing_domain::entities::user_case;
use billing_domain::enums::CaseStatus;
use billing_repository::{Page, Repository, UserCases, Users};

use crate::rules::{CASE_DESCRIPTION_MAX_CHARS, CASE_SUBJECT_MAX_CHARS};
use crate::text::valid_text;
use crate::{Billing, BillingError, PageRequest, now};

/// A support case to open.
#[derive(Clone, Debug)]
pub struct NewCase {
    /// One-line summary, 1 to 200 characters.
    pub subject: String,
    /// Full text, not empty.
    pub description: String,
}

/// Changes to a support case; absent fields stay as they are.
#[derive(Clone, Debug, Default)]
pub struct CaseChanges {
    /// New status (`closed` is final).
    pub status: Option<CaseStatus>,
    /// New summary.
    pub subject: Option<String>,
    /// New text.
    pub description: Option<String>,
}

impl Billing {
    /// Opens a support case for user `user_id`.
    ///
    /// # Errors
    /// [`BillingError::NotFound`] for an unknown user;
    /// [`BillingError::Validation`] for an empty subject or description.
    pub async fn open_case(
        &self,
        user_id: i64,
        new: NewCase,
    ) -> Result<user_case::Model, BillingError> {
        Users::get(self.db(), user_id)
            .await?
            .ensure_changeable("open a case for")?;
        let case = user_case::Model {
            id: 0,
            user_id,
            subject: valid_text("subject", &new.subject, CASE_SUBJECT_MAX_CHARS)?,
            description: valid_text("description", &new.description, CASE_DESCRIPTION_MAX_CHARS)?,
            status: CaseStatus::Open,
            created_at: now(),
            updated_at: now(),
            version: 1,
        };
        self.recording_transaction(move |tx| {
            let case = case.clone();
            Box::pin(async move {
                // Checked again under a shared lock, so an erasure cannot
                // commit between the check and the insert.
                Users::get_shared(tx, user_id)
                    .await?
                    .ensure_changeable("open a case for")?;
                Ok(Some(UserCases::insert(tx, case).await?))
            })
        })
        .await
    }

    /// The support cases of user `user_id`, by id.
    ///
    /// # Errors
    /// [`BillingError::NotFound`] for an unknown user.
    pub async fn list_cases(
        &self,
        user_id: i64,
        status: Option<CaseStatus>,
        page: PageRequest,
    ) -> Result<Page<user_case::Model>, BillingError> {
        Users::get(self.db(), user_id).await?;
        Ok(UserCases::by_user(self.db(), user_id, status, page).await?)
    }

    /// Changes a support case.
    ///
    /// # Errors
    /// [`BillingError::NotFound`], [`BillingError::VersionMismatch`],
    /// [`BillingError::InvalidTransition`] (a closed case),
    /// [`BillingError::Validation`].
    pub async fn update_case(
        &self,
        id: i64,
        changes: CaseChanges,
        expected_version: Option<i32>,
    ) -> Result<user_case::Model, BillingError> {
        let subject = changes
            .subject
            .as_deref()
            .map(|s| valid_text("subject", s, CASE_SUBJECT_MAX_CHARS))
            .transpose()?;
        let description = changes
            .description
            .as_deref()
            .map(|d| valid_text("description", d, CASE_DESCRIPTION_MAX_CHARS))
            .transpose()?;
        let case = Repository::<user_case::Entity>::get(self.db(), id).await?;
        // A deleted user's cases are erased and closed, and stay so.
        Users::get(self.db(), case.user_id)
            .await?
            .ensure_changeable("change a case of")?;
        self.update_versioned::<user_case::Entity, _>(id, expected_version, |case| {
            if case.status == CaseStatus::Closed {
                return Err(BillingError::invalid_transition(
                    "cannot change the case: it is closed",
                ));
            }
            if let Some(status) = changes.status {
                case.status = status;
            }
            if let Some(subject) = &subject {
                case.subject.clone_from(subject);
            }
            if let Some(description) = &description {
                case.description.clone_from(description);
            }
            Ok(())
        })
        .await
    }

    /// The support case `id`.
    ///
    /// # Errors
    /// [`BillingError::NotFound`].
    pub async fn case(&self, id: i64) -> Result<user_case::Model, BillingError> {
        Ok(Repository::<user_case::Entity>::get(self.db(), id).await?)
    }
}
