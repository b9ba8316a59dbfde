//! Users, their personal details and their support cases.

mod accounts;
mod cases;
mod details;
mod erasure;
mod password;

pub use accounts::{NewUser, UserChanges};
pub use cases::{CaseChanges, NewCase};
pub use details::UserDetailsInput;
pub(crate) use password::PasswordHasher;
pub use password::{MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS};
