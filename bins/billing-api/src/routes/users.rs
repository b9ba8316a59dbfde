//! `/users`: register, list, read, change and delete users, and their
//! personal details (`/users/{id}/details`), kept apart from the user so
//! they can be erased on their own. A user's password hash never leaves
//! the server.

use actix_web::{HttpResponse, web};
use billing_domain::entities::{user, user_details};
use billing_domain::enums::{UserRole, UserStatus};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::idempotency::KeyParam;
use crate::problem::responses::{KeyReused, Locked, NoSuchUser, VersionMismatch};
use crate::problem::{ApiError, Problem};
use crate::request::{IfMatch, IfMatchHeader, JsonBody, page_request};
use crate::response::{ListResponse, Reply, Versioned, versioned};
use crate::routes::operation::KeyedCreation;
use crate::state::AppState;
use crate::wire::{NewUser, UserChanges, UserDetailsInput};

/// Registers the routes of this module.
pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(
            web::resource("/users")
                .route(web::get().to(list_users))
                .route(web::post().to(create_user)),
        )
        .service(
            web::resource("/users/{id}")
                .route(web::get().to(get_user))
                .route(web::patch().to(update_user))
                .route(web::delete().to(delete_user)),
        )
        .service(
            web::resource("/users/{id}/details")
                .route(web::get().to(get_user_details))
                .route(web::put().to(put_user_details))
                .route(web::delete().to(delete_user_details)),
        );
}

/// A user (never with the password or its hash).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct UserResponse {
    /// Identity.
    pub id: i64,
    /// E-mail address, lower-case.
    #[schema(example = "ada@example.com")]
    pub email: String,
    /// Where the account stands.
    #[schema(value_type = crate::wire::enums::UserStatus)]
    pub status: UserStatus,
    /// What the account may do.
    #[schema(value_type = crate::wire::enums::UserRole)]
    pub role: UserRole,
    /// Creation time (RFC 3339, UTC).
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    /// Last change (RFC 3339, UTC).
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: DateTime<Utc>,
    /// Version, also sent as `ETag`.
    pub version: i32,
}

impl From<user::Model> for UserResponse {
    fn from(user: user::Model) -> Self {
        Self {
            id: user.id,
            email: user.email,
            status: user.status,
            role: user.role,
            created_at: user.created_at,
            updated_at: user.updated_at,
            version: user.version,
        }
    }
}

/// The personal details of a user.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct UserDetailsResponse {
    /// Identity of the details record.
    pub id: i64,
    /// The user they belong to.
    pub user_id: i64,
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
    /// Creation time (RFC 3339, UTC).
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    /// Last change (RFC 3339, UTC).
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: DateTime<Utc>,
    /// Version, also sent as `ETag`.
    pub version: i32,
}

impl From<user_details::Model> for UserDetailsResponse {
    fn from(details: user_details::Model) -> Self {
        Self {
            id: details.id,
            user_id: details.user_id,
            first_name: details.first_name,
            last_name: details.last_name,
            phone: details.phone,
            company: details.company,
            tax_id: details.tax_id,
            address_line1: details.address_line1,
            address_line2: details.address_line2,
            city: details.city,
            postal_code: details.postal_code,
            country_code: details.country_code,
            created_at: details.created_at,
            updated_at: details.updated_at,
            version: details.version,
        }
    }
}

versioned!(
    UserDetailsResponse,
    user_details::Model,
    "/api/v1/users/{}/details",
    user_id
);

/// `?status=&role=&page=&per_page=` of `GET /users`.
#[derive(Clone, Copy, Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserListQuery {
    /// Only users with this status.
    #[param(value_type = Option<crate::wire::enums::UserStatus>)]
    pub status: Option<UserStatus>,
    /// Only users with this role.
    #[param(value_type = Option<crate::wire::enums::UserRole>)]
    pub role: Option<UserRole>,
    /// The page, from 1 (default 1).
    #[param(minimum = 1)]
    pub page: Option<u64>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<u64>,
}

versioned!(UserResponse, user::Model, "/api/v1/users/{}", id);

/// Registers a user (status `pending`); only an argon2id hash of the
/// password is kept.
#[utoipa::path(
    post,
    path = "/api/v1/users",
    tag = "users",
    params(KeyParam),
    request_body = NewUser,
    responses(
        (status = 201, description = "Registered", body = UserResponse,
            headers(("Location" = String, description = "Its path"), ("ETag" = String, description = "Its version"))),
        (status = 409, description = "The e-mail is taken (`already_exists`), or the key is in flight", body = Problem, content_type = "application/problem+json"),
        KeyReused,
    )
)]
pub async fn create_user(
    state: web::Data<AppState>,
    creation: KeyedCreation,
) -> Result<HttpResponse, ApiError> {
    let billing = state.billing();
    let register_user = |new: NewUser| billing.register_user(new.into());
    creation
        .run(billing, register_user, UserResponse::created)
        .await
}

/// Lists users by id, optionally of one status and role.
#[utoipa::path(
    get,
    path = "/api/v1/users",
    tag = "users",
    params(UserListQuery),
    responses((status = 200, description = "A page of users", body = ListResponse<UserResponse>))
)]
pub async fn list_users(
    state: web::Data<AppState>,
    query: web::Query<UserListQuery>,
) -> Result<Reply, ApiError> {
    let query = query.into_inner();
    let page = page_request(query.page, query.per_page)?;
    let users = state
        .billing()
        .list_users(query.status, query.role, page)
        .await?;
    Reply::ok(&ListResponse::from_page(users, UserResponse::from))
}

/// Reads a user.
#[utoipa::path(
    get,
    path = "/api/v1/users/{id}",
    tag = "users",
    params(("id" = i64, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The user", body = UserResponse,
            headers(("ETag" = String, description = "Its version"))),
        NoSuchUser,
    )
)]
pub async fn get_user(state: web::Data<AppState>, id: web::Path<i64>) -> Result<Reply, ApiError> {
    UserResponse::reply(state.billing().user(id.into_inner()).await?)
}

/// Changes a user's status, role or e-mail. `deleted` erases the user as
/// `DELETE` does and is final: a deleted user cannot be changed. A change
/// that changes nothing writes nothing (200, same `ETag`).
#[utoipa::path(
    patch,
    path = "/api/v1/users/{id}",
    tag = "users",
    params(("id" = i64, Path, description = "The user's id"), IfMatchHeader),
    request_body = UserChanges,
    responses(
        (status = 200, description = "The changed user", body = UserResponse,
            headers(("ETag" = String, description = "Its new version"))),
        NoSuchUser,
        (status = 409, description = "The e-mail is taken (`already_exists`), the user is deleted (`invalid_transition`) or changed concurrently too often (`locked`)", body = Problem, content_type = "application/problem+json"),
        VersionMismatch,
    )
)]
pub async fn update_user(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    if_match: IfMatch,
    body: JsonBody,
) -> Result<Reply, ApiError> {
    let changes: UserChanges = body.parse()?;
    UserResponse::reply(
        state
            .billing()
            .update_user(id.into_inner(), changes.into(), if_match.0)
            .await?,
    )
}

/// Deletes a user: status `deleted`, e-mail and password replaced by
/// placeholders, personal details erased, the user's support cases erased
/// (subject and text) and closed, in one transaction. The row stays for the
/// invoices; the user is read-only from then on. Deleting a deleted user
/// writes nothing (204).
#[utoipa::path(
    delete,
    path = "/api/v1/users/{id}",
    tag = "users",
    params(("id" = i64, Path, description = "The user's id"), IfMatchHeader),
    responses(
        (status = 204, description = "Deleted"),
        NoSuchUser,
        Locked,
        VersionMismatch,
    )
)]
pub async fn delete_user(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    if_match: IfMatch,
) -> Result<Reply, ApiError> {
    state
        .billing()
        .delete_user(id.into_inner(), if_match.0)
        .await?;
    Ok(Reply::no_content())
}

/// Stores a user's personal details, replacing the old ones as a whole.
#[utoipa::path(
    put,
    path = "/api/v1/users/{id}/details",
    tag = "users",
    params(("id" = i64, Path, description = "The user's id"), IfMatchHeader),
    request_body = UserDetailsInput,
    responses(
        (status = 200, description = "The stored details", body = UserDetailsResponse,
            headers(("ETag" = String, description = "Their version"))),
        NoSuchUser,
        (status = 409, description = "The user is deleted (`invalid_transition`) or the details changed concurrently too often (`locked`)", body = Problem, content_type = "application/problem+json"),
        VersionMismatch,
    )
)]
pub async fn put_user_details(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    if_match: IfMatch,
    body: JsonBody,
) -> Result<Reply, ApiError> {
    let input: UserDetailsInput = body.parse()?;
    UserDetailsResponse::reply(
        state
            .billing()
            .put_user_details(id.into_inner(), input.into(), if_match.0)
            .await?,
    )
}

/// Reads a user's personal details.
#[utoipa::path(
    get,
    path = "/api/v1/users/{id}/details",
    tag = "users",
    params(("id" = i64, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The details", body = UserDetailsResponse,
            headers(("ETag" = String, description = "Their version"))),
        (status = 404, description = "No such user, or no details stored", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_user_details(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<Reply, ApiError> {
    UserDetailsResponse::reply(state.billing().user_details(id.into_inner()).await?)
}

/// Erases a user's personal details (invoices are kept). Erasing absent
/// details succeeds.
#[utoipa::path(
    delete,
    path = "/api/v1/users/{id}/details",
    tag = "users",
    params(("id" = i64, Path, description = "The user's id"), IfMatchHeader),
    responses(
        (status = 204, description = "Erased"),
        NoSuchUser,
        Locked,
        VersionMismatch,
    )
)]
pub async fn delete_user_details(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    if_match: IfMatch,
) -> Result<Reply, ApiError> {
    state
        .billing()
        .erase_user_details(id.into_inner(), if_match.0)
        .await?;
    Ok(Reply::no_content())
}
