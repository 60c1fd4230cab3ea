//! Access-control records: users, API keys (only a hash of each secret is
//! kept), image visibility and server-wide settings.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::record::ImageId;

/// What an API key may do, from least to most.
#[derive(
    schemars::JsonSchema,
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// `GET` routes.
    Read,
    /// Uploads, analyses and other jobs, deleting one's own images.
    Write,
    /// Users, keys, every image.
    Admin,
}

impl Scope {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }

    /// Parses a stored or requested name.
    pub fn parse(s: &str) -> Option<Scope> {
        [Scope::Read, Scope::Write, Scope::Admin]
            .into_iter()
            .find(|scope| scope.as_str() == s)
    }
}

/// A user.
#[derive(schemars::JsonSchema)]
#[schemars(rename = "User")]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// Database id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// Whether the user may hold `admin` keys.
    pub admin: bool,
    /// When it was created (RFC 3339).
    pub created_at: String,
}

/// An API key, without its secret.
#[derive(schemars::JsonSchema)]
#[schemars(rename = "Token")]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Database id, the `<id>` of `ps_<id>_<secret>`.
    pub id: i64,
    /// The user it acts for.
    pub user: String,
    /// Whether that user is an admin.
    #[serde(skip)]
    pub user_admin: bool,
    /// A label given at creation.
    pub name: Option<String>,
    /// What it may do.
    pub scope: Scope,
    /// Hex SHA-256 of the secret.
    #[serde(skip)]
    pub secret_sha256: String,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// When it stops working (seconds since the Unix epoch), if ever.
    pub expires_at: Option<i64>,
    /// When it was last used (RFC 3339; updated at most once a minute).
    pub last_used: Option<String>,
    /// When it was revoked (RFC 3339).
    pub revoked_at: Option<String>,
}

/// A key about to be stored.
#[derive(Debug, Clone)]
pub struct NewToken<'a> {
    /// The user it acts for.
    pub user_id: i64,
    /// A label.
    pub name: Option<&'a str>,
    /// What it may do.
    pub scope: Scope,
    /// Hex SHA-256 of the secret.
    pub secret_sha256: &'a str,
    /// Expiry (seconds since the Unix epoch).
    pub expires_at: Option<i64>,
}

/// Users, keys, visibility and settings.
#[async_trait]
pub trait AccessRepo: Send + Sync {
    /// Creates a user; `None` if the name is taken.
    async fn create_user(&self, name: &str, admin: bool) -> Result<Option<UserRecord>, StoreError>;
    /// A user by name.
    async fn user(&self, name: &str) -> Result<Option<UserRecord>, StoreError>;
    /// Every user, oldest first.
    async fn users(&self) -> Result<Vec<UserRecord>, StoreError>;
    /// Stores a key; returns its id.
    async fn create_token(&self, token: &NewToken<'_>) -> Result<i64, StoreError>;
    /// A key by id, with its user.
    async fn token(&self, id: i64) -> Result<Option<TokenRecord>, StoreError>;
    /// Every key (of one user, if named), oldest first.
    async fn tokens(&self, user: Option<&str>) -> Result<Vec<TokenRecord>, StoreError>;
    /// Revokes a key; `false` if there is none or it was already revoked.
    async fn revoke_token(&self, id: i64) -> Result<bool, StoreError>;
    /// Records that a key was used now.
    async fn touch_token(&self, id: i64) -> Result<(), StoreError>;
    /// Makes an image and the images derived from it public or private;
    /// `false` if there is no such image.
    async fn set_public(&self, id: ImageId, public: bool) -> Result<bool, StoreError>;
    /// The setting `key`, set to `value` first if it has none (so that
    /// processes sharing a database agree on it).
    async fn setting_or_init(&self, key: &str, value: &str) -> Result<String, StoreError>;
}
