//! The bodies of the user routes: registration, changes, personal details,
//! and the support cases of a user.

use billing_domain::enums::{CaseStatus, UserRole, UserStatus};
use billing_service as service;
use serde::Deserialize;
use utoipa::ToSchema;

/// A user to register.
#[derive(Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// E-mail address; stored lower-case, unique.
    pub email: String,
    /// Password, 8 to 1024 characters; only its argon2id hash is kept.
    pub password: String,
    /// Role; `user` when absent.
    #[serde(default)]
    #[schema(value_type = Option<crate::wire::enums::UserRole>)]
    pub role: Option<UserRole>,
}

impl From<NewUser> for service::NewUser {
    fn from(wire: NewUser) -> Self {
        let NewUser {
            email,
            password,
            role,
        } = wire;
        Self {
            email,
            password,
            role,
        }
    }
}

/// Changes to a user; absent fields stay as they are.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserChanges {
    /// New status (`deleted` is final).
    #[serde(default)]
    #[schema(value_type = Option<crate::wire::enums::UserStatus>)]
    pub status: Option<UserStatus>,
    /// New role.
    #[serde(default)]
    #[schema(value_type = Option<crate::wire::enums::UserRole>)]
    pub role: Option<UserRole>,
    /// New e-mail address.
    #[serde(default)]
    pub email: Option<String>,
}

impl From<UserChanges> for service::UserChanges {
    fn from(wire: UserChanges) -> Self {
        let UserChanges {
            status,
            role,
            email,
        } = wire;
        Self {
            status,
            role,
            email,
        }
    }
}

/// The personal details of a user, replaced as a whole.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserDetailsInput {
    /// Given name.
    #[serde(default)]
    pub first_name: Option<String>,
    /// Family name.
    #[serde(default)]
    pub last_name: Option<String>,
    /// Telephone number.
    #[serde(default)]
    pub phone: Option<String>,
    /// Company.
    #[serde(default)]
    pub company: Option<String>,
    /// Tax identification number.
    #[serde(default)]
    pub tax_id: Option<String>,
    /// Street address.
    #[serde(default)]
    pub address_line1: Option<String>,
    /// Second address line.
    #[serde(default)]
    pub address_line2: Option<String>,
    /// City.
    #[serde(default)]
    pub city: Option<String>,
    /// Postal code.
    #[serde(default)]
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2 country code.
    #[serde(default)]
    pub country_code: Option<String>,
}

impl From<UserDetailsInput> for service::UserDetailsInput {
    fn from(wire: UserDetailsInput) -> Self {
        let UserDetailsInput {
            first_name,
            last_name,
            phone,
            company,
            tax_id,
            address_line1,
            address_line2,
            city,
            postal_code,
            country_code,
        } = wire;
        Self {
            first_name,
            last_name,
            phone,
            company,
            tax_id,
            address_line1,
            address_line2,
            city,
            postal_code,
            country_code,
        }
    }
}

/// A support case to open.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCase {
    /// One-line summary, 1 to 200 characters.
    pub subject: String,
    /// Full text, not empty.
    pub description: String,
}

impl From<NewCase> for service::NewCase {
    fn from(wire: NewCase) -> Self {
        let NewCase {
            subject,
            description,
        } = wire;
        Self {
            subject,
            description,
        }
    }
}

/// Changes to a support case; absent fields stay as they are.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseChanges {
    /// New status (`closed` is final).
    #[serde(default)]
    #[schema(value_type = Option<crate::wire::enums::CaseStatus>)]
    pub status: Option<CaseStatus>,
    /// New summary.
    #[serde(default)]
    pub subject: Option<String>,
    /// New text.
    #[serde(default)]
    pub description: Option<String>,
}

impl From<CaseChanges> for service::CaseChanges {
    fn from(wire: CaseChanges) -> Self {
        let CaseChanges {
            status,
            subject,
            description,
        } = wire;
        Self {
            status,
            subject,
            description,
        }
    }
}
