//! `/admin/users`, `/admin/tokens` and `/admin/audit`: what `pentascope
//! user`, `pentascope token` and `pentascope audit` do, over HTTP, for
//! admins.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use pentascope_app::access::CreatedToken;
use pentascope_app::audit::AuditSearch;
use pentascope_app::Caller;
use pentascope_store::records::Scope;
use pentascope_store::records::{TokenRecord, UserRecord};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use crate::answers::{AuditPage, TokenList, UserList};
use crate::error::ApiError;
use crate::handlers::catalogue::{once, query_pairs};
use crate::handlers::params::Params;
use crate::AppState;

fn body<T: DeserializeOwned>(
    body: Result<Json<Value>, JsonRejection>,
    example: &str,
) -> Result<T, ApiError> {
    let Json(value) = body.map_err(|e| {
        ApiError::bad_request(format!(
            "expected a JSON body like {example} ({})",
            e.body_text()
        ))
    })?;
    serde_json::from_value(value)
        .map_err(|e| ApiError::bad_request(format!("expected a JSON body like {example} ({e})")))
}

/// The body of `POST /admin/users`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// The user's name: 1 to 64 letters, digits, `.`, `_`, `@` or `-`.
    #[schemars(regex(pattern = "^[A-Za-z0-9._@-]{1,64}$"))]
    name: String,
    /// Whether the user may hold `admin` keys.
    #[serde(default)]
    admin: bool,
}

/// `GET /admin/users`.
pub async fn users(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<UserList>, ApiError> {
    let users = app.users(&caller).await?;
    Ok(Json(UserList {
        count: users.len(),
        users,
    }))
}

/// `POST /admin/users` with `{"name": "ada", "admin": false}`.
pub async fn create_user(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    request: Result<Json<Value>, JsonRejection>,
) -> Result<(StatusCode, Json<UserRecord>), ApiError> {
    let new: NewUser = body(request, r#"{"name": "ada", "admin": false}"#)?;
    let user = app.create_user(&caller, &new.name, new.admin).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// The body of `POST /admin/tokens`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// The user the key acts for.
    user: String,
    /// What it may do: `read`, `write` or `admin` (`admin` only for admin
    /// users).
    #[schemars(with = "Scope")]
    scope: String,
    /// Its lifetime: a whole number of days, hours, minutes or seconds
    /// such as `90d`, `12h`, `30m`; default: until revoked.
    #[serde(default)]
    #[schemars(regex(pattern = "^[1-9][0-9]{0,5}[dhms]$"))]
    expires: Option<String>,
    /// A label: 1 to 64 letters, digits, `.`, `_`, `@` or `-`.
    #[serde(default)]
    #[schemars(regex(pattern = "^[A-Za-z0-9._@-]{1,64}$"))]
    name: Option<String>,
}

/// `GET /admin/tokens?user=`: keys without their secrets.
pub async fn tokens(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(params): Query<Params>,
) -> Result<Json<TokenList>, ApiError> {
    let tokens = app
        .tokens(&caller, params.get("user").map(String::as_str))
        .await?;
    Ok(Json(TokenList {
        count: tokens.len(),
        tokens,
    }))
}

/// `POST /admin/tokens` with `{"user": "ada", "scope": "write",
/// "expires": "90d", "name": "laptop"}`: the key, shown this once.
pub async fn create_token(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    request: Result<Json<Value>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let new: NewToken = body(
        request,
        r#"{"user": "ada", "scope": "read|write|admin", "expires": "90d", "name": "laptop"}"#,
    )?;
    let scope = parse_scope(&new.scope)?;
    let expires = new.expires.as_deref().map(parse_expiry).transpose()?;
    let created = app
        .create_token(&caller, &new.user, scope, expires, new.name.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// `DELETE /admin/tokens/{id}`: refused from the next request on.
pub async fn revoke_token(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<TokenRecord>, ApiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::not_found(format!("API key {id:?} not found")))?;
    Ok(Json(app.revoke_token(&caller, id).await?))
}

/// `GET /admin/audit`: a page of the audit trail, newest first, filtered
/// by user, action, object kind, object and time, paged by cursor.
pub async fn audit(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> Result<Json<AuditPage>, ApiError> {
    let mut s = AuditSearch::default();
    for (name, value) in query_pairs(raw) {
        let slot = match name.as_str() {
            "user" => &mut s.user,
            "action" => &mut s.action,
            "kind" => &mut s.kind,
            "object" => &mut s.object,
            "after" => &mut s.after,
            "before" => &mut s.before,
            "limit" => &mut s.limit,
            "cursor" => &mut s.cursor,
            // the route's guard refuses every other name
            _ => continue,
        };
        once(slot, &name, value)?;
    }
    let listing = app.audit_trail(&caller, &s).await?;
    Ok(Json(AuditPage {
        count: listing.count,
        entries: listing.items,
        next_cursor: listing.next_cursor,
    }))
}

/// `read`, `write` or `admin`.
pub fn parse_scope(s: &str) -> Result<Scope, ApiError> {
    Scope::parse(s).ok_or_else(|| {
        ApiError::bad_request(format!("scope must be read, write or admin, got {s:?}"))
    })
}

/// A lifetime such as `90d`, `12h` or `30m`.
pub fn parse_expiry(s: &str) -> Result<std::time::Duration, ApiError> {
    pentascope_app::parse_lifetime(s).ok_or_else(|| {
        ApiError::bad_request(format!(
            "expires must be a whole number of days, hours, minutes or seconds such as 90d, 12h or 30m, got {s:?}"
        ))
    })
}
