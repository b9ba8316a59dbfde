//! Users, their personal details and their support cases.

use argon2::password_hash::phc::{Output, ParamsString, Salt};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, mpsc};

use argon2::{Algorithm, Argon2, Block, Params, Version};
use billing_domain::PasswordHash;
use billing_domain::entities::{user, user_case, user_details};
use billing_domain::enums::{CaseStatus, UserRole, UserStatus};
use billing_domain::events::ResourceKind;
use billing_domain::values::{CountryCode, EmailAddress};
use billing_repository::{
    Executor, IdempotencyRecords, Outbox, Page, Repository, RepositoryError, UserCases,
    UserDetailsRepository, Users,
};

use crate::events::{append_events, event_of, scrub_user_data};
use crate::rules::{
    ADDRESS_MAX_CHARS, CASE_DESCRIPTION_MAX_CHARS, CASE_SUBJECT_MAX_CHARS, CITY_MAX_CHARS,
    PERSON_NAME_MAX_CHARS, PHONE_MAX_CHARS, POSTAL_CODE_MAX_CHARS,
};
use crate::text::{optional_bounded_text, valid_text};
use crate::versioned::{check_expected_version, save_or_conflict};
use crate::{Billing, BillingError, Contended, PageRequest, Resource, now};

/// Shorter passwords are refused.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longer passwords are refused (hashing cost is bounded).
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// A user to register.
#[derive(Clone)]
pub struct NewUser {
    /// E-mail address; stored lower-case, unique.
    pub email: String,
    /// Password, 8 to 1024 characters; only its argon2id hash is kept.
    pub password: String,
    /// Role; `user` when absent.
    pub role: Option<UserRole>,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("email", &self.email)
            .field("password", &"<redacted>")
            .field("role", &self.role)
            .finish()
    }
}

/// Changes to a user; absent fields stay as they are.
#[derive(Clone, Debug, Default)]
pub struct UserChanges {
    /// New status (`deleted` is final).
    pub status: Option<UserStatus>,
    /// New role.
    pub role: Option<UserRole>,
    /// New e-mail address.
    pub email: Option<String>,
}

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
    /// Registers a user (status `pending`) with an argon2id password hash.
    ///
    /// # Errors
    /// [`BillingError::Validation`] for a malformed e-mail or a password of
    /// the wrong length; [`BillingError::AlreadyExists`] when the e-mail is
    /// taken (case-insensitively).
    pub async fn register_user(&self, new: NewUser) -> Result<user::Model, BillingError> {
        let email = EmailAddress::parse(&new.email)?;
        let password_hash = hash_password(self.hasher(), new.password).await?;
        let user = user::Model {
            id: 0,
            email: email.into_string(),
            password_hash,
            status: UserStatus::Pending,
            role: new.role.unwrap_or(UserRole::User),
            created_at: now(),
            updated_at: now(),
            version: 1,
        };
        self.recording_transaction(move |tx| {
            let user = user.clone();
            Box::pin(async move {
                let user = Users::insert(tx, user).await?;
                append_events(tx, [event_of(None, &user)?]).await?;
                Ok(Some(user))
            })
        })
        .await
    }

    /// The user `id`.
    ///
    /// # Errors
    /// [`BillingError::NotFound`].
    pub async fn user(&self, id: i64) -> Result<user::Model, BillingError> {
        Ok(Users::get(self.db(), id).await?)
    }

    /// Users, optionally filtered by status and role, by id.
    ///
    /// # Errors
    /// [`BillingError::Unavailable`] when the database cannot be read.
    pub async fn list_users(
        &self,
        status: Option<UserStatus>,
        role: Option<UserRole>,
        page: PageRequest,
    ) -> Result<Page<user::Model>, BillingError> {
        Ok(Users::list(self.db(), status, role, page).await?)
    }

    /// Changes a user's status, role or e-mail. A change to `deleted`
    /// erases the user as [`delete_user`](Self::delete_user) does, in one
    /// transaction. A deleted user cannot be changed.
    ///
    /// # Errors
    /// [`BillingError::NotFound`], [`BillingError::VersionMismatch`],
    /// [`BillingError::Validation`] (malformed e-mail),
    /// [`BillingError::InvalidTransition`] (the user is deleted),
    /// [`BillingError::AlreadyExists`] (e-mail taken).
    pub async fn update_user(
        &self,
        id: i64,
        changes: UserChanges,
        expected_version: Option<i32>,
    ) -> Result<user::Model, BillingError> {
        let email = changes
            .email
            .as_deref()
            .map(EmailAddress::parse)
            .transpose()?;
        let apply = move |user: &mut user::Model| -> Result<(), BillingError> {
            user.ensure_changeable("change")?;
            if let Some(role) = changes.role {
                user.role = role;
            }
            if let Some(email) = &email {
                user.email = email.to_string();
            }
            if let Some(status) = changes.status {
                // Last: a change to `deleted` erases the e-mail just set.
                user.change_status(status)?;
            }
            Ok(())
        };
        if changes.status == Some(UserStatus::Deleted) {
            return self.erase_user(id, expected_version, apply).await;
        }
        self.update_versioned::<user::Entity, _>(id, expected_version, apply)
            .await
    }

    /// Deletes a user: status `deleted`, e-mail and password replaced by
    /// placeholders, personal details erased, and the subject and text of
    /// the user's support cases erased (the cases closed), in one
    /// transaction. The row stays, so the user's invoices keep their
    /// customer. Deleting a deleted user writes nothing.
    ///
    /// # Errors
    /// [`BillingError::NotFound`], [`BillingError::VersionMismatch`].
    pub async fn delete_user(
        &self,
        id: i64,
        expected_version: Option<i32>,
    ) -> Result<(), BillingError> {
        self.erase_user(id, expected_version, |user: &mut user::Model| {
            user.erase();
            Ok(())
        })
        .await
        .map(drop)
    }

    /// Reads user `id`, lets `delete` turn it `deleted` (erasing its row),
    /// and erases the user's details and case text, all in one transaction;
    /// only rows that change are written.
    async fn erase_user<F>(
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
        let first_name = text("first_name", &input.first_name, PERSON_NAME_MAX_CHARS)?;
        let last_name = text("last_name", &input.last_name, PERSON_NAME_MAX_CHARS)?;
        let phone = text("phone", &input.phone, PHONE_MAX_CHARS)?;
        let company = text("company", &input.company, ADDRESS_MAX_CHARS)?;
        let tax_id = text("tax_id", &input.tax_id, PHONE_MAX_CHARS)?;
        let address_line1 = text("address_line1", &input.address_line1, ADDRESS_MAX_CHARS)?;
        let address_line2 = text("address_line2", &input.address_line2, ADDRESS_MAX_CHARS)?;
        let city = text("city", &input.city, CITY_MAX_CHARS)?;
        let postal_code = text("postal_code", &input.postal_code, POSTAL_CODE_MAX_CHARS)?;
        let fill = |details: &mut user_details::Model| {
            details.first_name.clone_from(&first_name);
            details.last_name.clone_from(&last_name);
            details.phone.clone_from(&phone);
            details.company.clone_from(&company);
            details.tax_id.clone_from(&tax_id);
            details.address_line1.clone_from(&address_line1);
            details.address_line2.clone_from(&address_line2);
            details.city.clone_from(&city);
            details.postal_code.clone_from(&postal_code);
            details.country_code.clone_from(&country_code);
        };
        match UserDetailsRepository::find_by_user(self.db(), user_id).await? {
            Some(existing) => {
                self.update_versioned::<user_details::Entity, _>(
                    existing.id,
                    expected_version,
                    |details| {
                        fill(details);
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
                fill(&mut details);
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

/// Hashes a password with argon2id (OWASP parameters: 19 MiB, 2 passes) on
/// the hashing thread, so the async workers keep serving.
///
/// Fails at once with [`BillingError::Overloaded`] when the hashing queue
/// is full, rather than making the caller wait behind a burst.
async fn hash_password(
    hasher: &PasswordHasher,
    password: String,
) -> Result<PasswordHash, BillingError> {
    let chars = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&chars) {
        return Err(BillingError::invalid(format!(
            "password must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters"
        )));
    }
    hasher
        .submit(password)?
        .await
        .map_err(|_| internal("the password hashing thread stopped"))?
}

/// A password to hash and where to send its hash.
type HashJob = (
    String,
    tokio::sync::oneshot::Sender<Result<PasswordHash, BillingError>>,
);

/// The hash function the thread runs ([`hash_now`]; another in tests).
type HashFn = Arc<dyn Fn(&str, &mut [Block]) -> Result<PasswordHash, BillingError> + Send + Sync>;

/// The one thread of a [`Billing`] that runs argon2, fed through a bounded
/// queue.
///
/// Each hash needs a 19 MiB block. Hashed on the blocking pool, every
/// thread that ever hashed kept its block resident in its own malloc arena
/// (measured: about 19 MiB more per registration, 435 MiB after 23); one
/// hashing thread keeps one block, and also bounds the CPU registrations
/// can take from the requests being served.
///
/// The queue holds at most `capacity` passwords besides the one being
/// hashed: a burst beyond that is refused at once
/// ([`BillingError::Overloaded`]) instead of growing memory and latency
/// without limit. A job whose caller has gone (its request was dropped)
/// by the time the thread reaches it is skipped, not hashed. The thread
/// starts with the first hash and ends when the [`Billing`] is dropped.
pub(crate) struct PasswordHasher {
    capacity: usize,
    hash: HashFn,
    queue: OnceLock<Option<mpsc::SyncSender<HashJob>>>,
    counts: Arc<HashCounts>,
}

/// What the hashing thread did, for tests and diagnostics.
#[derive(Debug, Default)]
struct HashCounts {
    /// Passwords hashed.
    hashed: AtomicU64,
    /// Jobs skipped because their caller had gone.
    skipped: AtomicU64,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("capacity", &self.capacity)
            .field("counts", &self.counts)
            .finish_non_exhaustive()
    }
}

impl PasswordHasher {
    /// A hasher whose queue holds at most `capacity` (at least 1) waiting
    /// passwords.
    pub(crate) fn new(capacity: usize) -> Self {
        Self::with_hash(capacity, Arc::new(hash_now))
    }

    fn with_hash(capacity: usize, hash: HashFn) -> Self {
        Self {
            capacity: capacity.max(1),
            hash,
            queue: OnceLock::new(),
            counts: Arc::default(),
        }
    }

    /// Queues `password`; the receiver gets its hash.
    ///
    /// # Errors
    /// [`BillingError::Overloaded`] when the queue is full;
    /// [`BillingError::Internal`] when the thread does not run.
    fn submit(
        &self,
        password: String,
    ) -> Result<tokio::sync::oneshot::Receiver<Result<PasswordHash, BillingError>>, BillingError>
    {
        let jobs = self
            .queue
            .get_or_init(|| self.start())
            .as_ref()
            .ok_or_else(|| internal("the password hashing thread is not running"))?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        jobs.try_send((password, reply))
            .map_err(|error| match error {
                mpsc::TrySendError::Full(_) => BillingError::Overloaded {
                    resource: "password hashing",
                },
                mpsc::TrySendError::Disconnected(_) => {
                    internal("the password hashing thread stopped")
                }
            })?;
        Ok(answer)
    }

    /// Starts the thread; `None` (logged) when the system refuses.
    fn start(&self) -> Option<mpsc::SyncSender<HashJob>> {
        let (jobs, queue) = mpsc::sync_channel::<HashJob>(self.capacity);
        let hash = Arc::clone(&self.hash);
        let counts = Arc::clone(&self.counts);
        let started = std::thread::Builder::new()
            .name("password-hasher".to_owned())
            .spawn(move || {
                // Allocated once for the life of the thread, reused by every hash.
                let mut memory = vec![Block::default(); HASH_MEMORY_KIB as usize];
                for (password, reply) in queue {
                    if reply.is_closed() {
                        // The caller has gone: nobody would read this hash.
                        counts.skipped.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    let hashed = hash(&password, &mut memory);
                    counts.hashed.fetch_add(1, Ordering::Relaxed);
                    // The caller may have gone meanwhile; the hash is then unused.
                    let _ = reply.send(hashed);
                }
            });
        match started {
            Ok(_) => Some(jobs),
            Err(error) => {
                tracing::error!(%error, "cannot start the password hashing thread");
                None
            }
        }
    }
}

/// Argon2 memory cost in KiB (OWASP: 19 MiB).
const HASH_MEMORY_KIB: u32 = 19 * 1024;

/// Hashes `password` with argon2id (19 MiB, 2 passes, 1 lane) into a PHC
/// string, using `memory` (`HASH_MEMORY_KIB` blocks) instead of allocating.
fn hash_now(password: &str, memory: &mut [Block]) -> Result<PasswordHash, BillingError> {
    let params = Params::new(HASH_MEMORY_KIB, 2, 1, None).map_err(internal)?;
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let salt = Salt::generate();
    let mut raw = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2
        .hash_password_into_with_memory(password.as_bytes(), &salt, &mut raw, &mut *memory)
        .map_err(internal)?;
    let output = Output::new(&raw).map_err(internal)?;
    let phc = argon2::PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(internal)?,
        salt: Some(salt),
        hash: Some(output),
    };
    Ok(PasswordHash(phc.to_string()))
}

fn internal(error: impl std::fmt::Display) -> BillingError {
    BillingError::Internal {
        source: error.to_string().into(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use argon2::PasswordVerifier;

    use super::*;

    /// A hasher whose hashes each wait for one `gate` message, and report
    /// on `started` when they begin.
    fn gated_hasher(capacity: usize) -> (PasswordHasher, mpsc::Sender<()>, mpsc::Receiver<()>) {
        let (gate, gate_rx) = mpsc::channel::<()>();
        let (started_tx, started) = mpsc::channel::<()>();
        let gate_rx = Mutex::new(gate_rx);
        let started_tx = Mutex::new(started_tx);
        let hash: HashFn = Arc::new(move |password: &str, _memory: &mut [Block]| {
            let _ = started_tx.lock().unwrap().send(());
            gate_rx
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(30))
                .map_err(internal)?;
            Ok(PasswordHash(format!("hash of {password}")))
        });
        (PasswordHasher::with_hash(capacity, hash), gate, started)
    }

    fn wait_started(started: &mpsc::Receiver<()>) {
        started
            .recv_timeout(Duration::from_secs(30))
            .expect("the hashing thread started a hash");
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once_and_then_drains() {
        let (hasher, gate, started) = gated_hasher(2);
        let first = hasher.submit("first password".into()).unwrap();
        wait_started(&started); // the thread holds the first: the queue is empty
        let queued = [
            hasher.submit("second password".into()).unwrap(),
            hasher.submit("third password".into()).unwrap(),
        ];
        let refused = hasher.submit("fourth password".into()).unwrap_err();
        assert!(
            matches!(refused, BillingError::Overloaded { .. }),
            "{refused:?}"
        );
        assert!(refused.is_transient() && refused.is_server_fault());
        for _ in 0..3 {
            gate.send(()).unwrap();
        }
        assert_eq!(first.await.unwrap().unwrap().0, "hash of first password");
        for (answer, password) in queued.into_iter().zip(["second", "third"]) {
            assert_eq!(
                answer.await.unwrap().unwrap().0,
                format!("hash of {password} password")
            );
        }
        // Drained: a new password is accepted and hashed.
        let later = hasher.submit("fifth password".into()).unwrap();
        gate.send(()).unwrap();
        assert_eq!(later.await.unwrap().unwrap().0, "hash of fifth password");
        assert_eq!(hasher.counts.hashed.load(Ordering::Relaxed), 4);
    }

    #[tokio::test]
    async fn a_password_whose_caller_has_gone_is_not_hashed() {
        let (hasher, gate, started) = gated_hasher(4);
        let first = hasher.submit("first password".into()).unwrap();
        wait_started(&started);
        let gone = hasher.submit("abandoned password".into()).unwrap();
        let kept = hasher.submit("kept password".into()).unwrap();
        drop(gone); // the request was dropped while queued
        gate.send(()).unwrap();
        gate.send(()).unwrap();
        assert_eq!(first.await.unwrap().unwrap().0, "hash of first password");
        assert_eq!(kept.await.unwrap().unwrap().0, "hash of kept password");
        assert_eq!(hasher.counts.skipped.load(Ordering::Relaxed), 1);
        assert_eq!(hasher.counts.hashed.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn hashes_verify_with_argon2_and_reuse_the_memory() {
        let mut memory = vec![Block::default(); HASH_MEMORY_KIB as usize];
        let first = hash_now("correct horse battery", &mut memory).unwrap();
        let second = hash_now("correct horse battery", &mut memory).unwrap();
        assert_ne!(first, second, "a fresh salt each time");
        for hash in [&first, &second] {
            assert!(
                hash.0.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
                "{}",
                hash.0
            );
            let parsed = argon2::PasswordHash::new(&hash.0).unwrap();
            assert!(
                Argon2::default()
                    .verify_password(b"correct horse battery", &parsed)
                    .is_ok()
            );
            assert!(
                Argon2::default()
                    .verify_password(b"wrong", &parsed)
                    .is_err()
            );
        }
    }
}
