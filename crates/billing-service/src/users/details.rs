//! The personal details of users.

use billing_domain::entities::user_details;
use billing_domain::values::CountryCode;
use billing_repository::{RepositoryError, UserDetailsRepository, Users};

use crate::rules::{
    ADDRESS_MAX_CHARS, CITY_MAX_CHARS, PERSON_NAME_MAX_CHARS, PHONE_MAX_CHARS,
    POSTAL_CODE_MAX_CHARS,
};
use crate::text::optional_bounded_text;
use crate::{Billing, BillingError, Contended, Resource, now};

/// The personal details of a user, replaced as a whole.
#[derive(Clone, Debug, Default)]
pub struct UserDetailsInput {
    /// Given name.
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
    /// Telephone number.
    pub phone: Option<String>,
    /// Company.
    pub company: Option<String>,
    /// Tax identification number.
    pub tax_id: Option<String>,
    /// Street address.
    pub address_line1: Option<String>,
    /// Second address line.
    pub address_line2: Option<String>,
    /// City.
    pub city: Option<String>,
    /// Postal code.
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2 country code.
    pub country_code: Option<String>,
}

impl Billing {
    /// Stores the personal details of user `user_id`, replacing the old ones.
    ///
    /// # Errors
    /// [`BillingError::NotFound`] for an unknown user;
    /// [`BillingError::Validation`] for a bad country code.
    pub async fn put_user_details(
        &self,
        user_id: i64,
        input: UserDetailsInput,
        expected_version: Option<i32>,
    ) -> Result<user_details::Model, BillingError> {
        Users::get(self.db(), user_id)
            .await?
            .ensure_changeable("store the details of")?;
        let checked = CheckedDetails::of(&input)?;
        match UserDetailsRepository::find_by_user(self.db(), user_id).await? {
            Some(existing) => {
                self.update_versioned::<user_details::Entity, _>(
                    existing.id,
                    expected_version,
                    |details| {
                        checked.fill(details);
                        Ok(())
                    },
                )
                .await
            }
            None => {
                let mut details = user_details::Model {
                    id: 0,
                    user_id,
                    first_name: None,
                    last_name: None,
                    phone: None,
                    company: None,
                    tax_id: None,
                    address_line1: None,
                    address_line2: None,
                    city: None,
                    postal_code: None,
                    country_code: None,
                    created_at: now(),
                    updated_at: now(),
                    version: 1,
                };
                checked.fill(&mut details);
                self.retrying_transaction(move |tx| {
                    let details = details.clone();
                    Box::pin(async move {
                        // Checked again under a shared lock, so an erasure
                        // cannot commit between the check and the insert.
                        Users::get_shared(tx, user_id)
                            .await?
                            .ensure_changeable("store the details of")?;
                        Ok(Some(UserDetailsRepository::insert(tx, details).await?))
                    })
                })
                .await
            }
        }
    }

    /// The personal details of user `user_id`.
    ///
    /// # Errors
    /// [`BillingError::NotFound`] when the user or their details are absent.
    pub async fn user_details(&self, user_id: i64) -> Result<user_details::Model, BillingError> {
        Users::get(self.db(), user_id).await?;
        UserDetailsRepository::find_by_user(self.db(), user_id)
            .await?
            .ok_or_else(|| BillingError::not_found(Resource::UserDetails, user_id))
    }

    /// Erases the personal details of user `user_id` (the row is deleted);
    /// invoices are kept. Erasing absent details succeeds.
    ///
    /// With `expected_version`, details at another version are not erased
    /// ([`BillingError::VersionMismatch`]); without one, a concurrent change
    /// is re-read and the erase retried.
    ///
    /// # Errors
    /// [`BillingError::NotFound`] for an unknown user,
    /// [`BillingError::VersionMismatch`].
    pub async fn erase_user_details(
        &self,
        user_id: i64,
        expected_version: Option<i32>,
    ) -> Result<(), BillingError> {
        Users::get(self.db(), user_id).await?;
        for _ in 0..self.settings().max_attempts {
            let Some(details) = UserDetailsRepository::find_by_user(self.db(), user_id).await?
            else {
                return Ok(());
            };
            let version = expected_version.unwrap_or(details.version);
            match UserDetailsRepository::delete(self.db(), details.id, version).await {
                Ok(()) => return Ok(()),
                Err(RepositoryError::ConcurrentModification { actual, .. })
                    if expected_version.is_some() =>
                {
                    return Err(BillingError::VersionMismatch {
                        resource: Resource::UserDetails,
                        current: actual,
                    });
                }
                Err(RepositoryError::ConcurrentModification { .. }) => {}
                // Erased by someone else meanwhile: erased all the same.
                Err(RepositoryError::NotFound { .. }) => return Ok(()),
                Err(other) => return Err(other.into()),
            }
        }
        Err(BillingError::Locked {
            contended: Contended::DetailsOf { user_id },
        })
    }
}

/// The personal details of a user, checked: a well-formed country code and
/// each text within its column's length.
struct CheckedDetails {
    first_name: Option<String>,
    last_name: Option<String>,
    phone: Option<String>,
    company: Option<String>,
    tax_id: Option<String>,
    address_line1: Option<String>,
    address_line2: Option<String>,
    city: Option<String>,
    postal_code: Option<String>,
    country_code: Option<String>,
}

impl CheckedDetails {
    /// Checks `input`, field by field: the country code first, then each
    /// text in turn.
    fn of(input: &UserDetailsInput) -> Result<Self, BillingError> {
        let country_code = input
            .country_code
            .as_deref()
            .map(CountryCode::parse)
            .transpose()?
            .map(CountryCode::into_string);
        // The longest value of each field is its column's length.
        let text = |field: &str, value: &Option<String>, max_chars: usize| {
            optional_bounded_text(field, value.as_deref(), max_chars)
        };
        Ok(Self {
            first_name: text("first_name", &input.first_name, PERSON_NAME_MAX_CHARS)?,
            last_name: text("last_name", &input.last_name, PERSON_NAME_MAX_CHARS)?,
            phone: text("phone", &input.phone, PHONE_MAX_CHARS)?,
            company: text("company", &input.company, ADDRESS_MAX_CHARS)?,
            tax_id: text("tax_id", &input.tax_id, PHONE_MAX_CHARS)?,
            address_line1: text("address_line1", &input.address_line1, ADDRESS_MAX_CHARS)?,
            address_line2: text("address_line2", &input.address_line2, ADDRESS_MAX_CHARS)?,
            city: text("city", &input.city, CITY_MAX_CHARS)?,
            postal_code: text("postal_code", &input.postal_code, POSTAL_CODE_MAX_CHARS)?,
            country_code,
        })
    }

    /// Writes the checked fields into `details`.
    fn fill(&self, details: &mut user_details::Model) {
        details.first_name.clone_from(&self.first_name);
        details.last_name.clone_from(&self.last_name);
        details.phone.clone_from(&self.phone);
        details.company.clone_from(&self.company);
        details.tax_id.clone_from(&self.tax_id);
        details.address_line1.clone_from(&self.address_line1);
        details.address_line2.clone_from(&self.address_line2);
        details.city.clone_from(&self.city);
        details.postal_code.clone_from(&self.postal_code);
        details.country_code.clone_from(&self.country_code);
    }
}
