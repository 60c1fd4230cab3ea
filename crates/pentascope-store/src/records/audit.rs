//! The audit trail: one row per action that changed something (an upload,
//! a deletion, a key created…), saying who did it, from where, to which
//! object and when. Credentials are named by what identifies them, never
//! by what opens them: a key by its id, a signed link by its image and
//! expiry (its signature is the secret).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::catalogue::Page;
use super::sql::{PgRepo, SqliteRepo};
use crate::error::StoreError;
use crate::record::now_rfc3339;

/// An action about to be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEntry<'a> {
    /// The user who acted (a key's user, or the user a job acts for).
    pub user: Option<&'a str>,
    /// The id of the key the request carried.
    pub key_id: Option<i64>,
    /// The signed link the request came through: `image_<n> until <time>`.
    pub link: Option<&'a str>,
    /// The client's address; `None` for the command line.
    pub address: Option<&'a str>,
    /// What was done, e.g. `image.upload`, `token.revoke`.
    pub action: &'a str,
    /// What kind of object it was done to: `image`, `dataset`, `token`,
    /// `user`, `job`.
    pub object_kind: &'a str,
    /// Which one: `image_5`, `dataset_2`, `12`, `ada`, a job id.
    pub object_id: &'a str,
    /// More about it, short (which fields a change touched, a link's
    /// expiry); never a secret.
    pub detail: &'a str,
}

/// A recorded action.
#[derive(schemars::JsonSchema)]
#[schemars(rename = "AuditEntry")]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Its position in the trail (increasing).
    pub id: i64,
    /// When it happened (RFC 3339, UTC, milliseconds).
    pub at: String,
    /// The user who acted.
    pub user: Option<String>,
    /// The id of the key used.
    pub key_id: Option<i64>,
    /// The signed link used.
    pub link: Option<String>,
    /// The client's address (`None`: the command line).
    pub address: Option<String>,
    /// What was done.
    pub action: String,
    /// The kind of object.
    pub object_kind: String,
    /// The object.
    pub object_id: String,
    /// More about it.
    pub detail: String,
}

/// Which actions a listing holds (every field narrows it), newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only this user's.
    pub user: Option<String>,
    /// Only this action.
    pub action: Option<String>,
    /// Only actions on this object kind.
    pub object_kind: Option<String>,
    /// Only actions on this object (with its kind).
    pub object_id: Option<String>,
    /// At or after this time (RFC 3339 as stored).
    pub after: Option<String>,
    /// Before this time.
    pub before: Option<String>,
    /// Only rows older than this one (the previous page's last id).
    pub below_id: Option<i64>,
    /// Rows per page.
    pub limit: u32,
}

/// The audit trail.
#[async_trait]
pub trait AuditRepo: Send + Sync {
    /// Appends an action, stamped now; returns its id.
    async fn record(&self, entry: &NewAuditEntry<'_>) -> Result<i64, StoreError>;
    /// A page of the actions that match, newest first.
    async fn query_audit(&self, query: &AuditQuery) -> Result<Page<AuditRecord>, StoreError>;
    /// Deletes the actions recorded before `before` (RFC 3339); returns how
    /// many.
    async fn forget_audit_before(&self, before: &str) -> Result<u64, StoreError>;
}

/// The conditions of a query, `$1`–`$7`; `$7` is the keyset bound.
const WHERE: &str = "WHERE ($1 IS NULL OR user_name = $1) AND ($2 IS NULL OR action = $2) \
                     AND ($3 IS NULL OR object_kind = $3) AND ($4 IS NULL OR object_id = $4) \
                     AND ($5 IS NULL OR at >= $5) AND ($6 IS NULL OR at < $6)";

macro_rules! audit_from_row {
    ($name:ident, $row:ty) => {
        fn $name(row: &$row) -> Result<AuditRecord, StoreError> {
            Ok(AuditRecord {
                id: row.try_get("id")?,
                at: row.try_get("at")?,
                user: row.try_get("user_name")?,
                key_id: row.try_get("key_id")?,
                link: row.try_get("link")?,
                address: row.try_get("address")?,
                action: row.try_get("action")?,
                object_kind: row.try_get("object_kind")?,
                object_id: row.try_get("object_id")?,
                detail: row.try_get("detail")?,
            })
        }
    };
}

audit_from_row!(sqlite_audit, sqlx::sqlite::SqliteRow);
audit_from_row!(pg_audit, sqlx::postgres::PgRow);

macro_rules! audit_repo {
    ($repo:ty, $from_row:ident) => {
        #[async_trait]
        impl AuditRepo for $repo {
            async fn record(&self, e: &NewAuditEntry<'_>) -> Result<i64, StoreError> {
                Ok(sqlx::query_scalar(
                    "INSERT INTO audit (at, user_name, key_id, link, address, action, \
                     object_kind, object_id, detail) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
                )
                .bind(now_rfc3339())
                .bind(e.user)
                .bind(e.key_id)
                .bind(e.link)
                .bind(e.address)
                .bind(e.action)
                .bind(e.object_kind)
                .bind(e.object_id)
                .bind(e.detail)
                .fetch_one(&self.pool)
                .await?)
            }

            async fn query_audit(&self, q: &AuditQuery) -> Result<Page<AuditRecord>, StoreError> {
                // $1–$6, in WHERE's order
                let filters = [
                    &q.user,
                    &q.action,
                    &q.object_kind,
                    &q.object_id,
                    &q.after,
                    &q.before,
                ];
                let count_sql = format!("SELECT COUNT(*) FROM audit {WHERE}");
                let count: i64 = filters
                    .iter()
                    .fold(sqlx::query_scalar(&count_sql), |query, value| {
                        query.bind(*value)
                    })
                    .fetch_one(&self.pool)
                    .await?;
                let page_sql = format!(
                    "SELECT * FROM audit {WHERE} AND ($7 IS NULL OR id < $7) \
                     ORDER BY id DESC LIMIT $8"
                );
                let mut items = filters
                    .iter()
                    .fold(sqlx::query(&page_sql), |query, value| query.bind(*value))
                    .bind(q.below_id)
                    .bind(i64::from(q.limit) + 1)
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map($from_row)
                    .collect::<Result<Vec<_>, _>>()?;
                let more = items.len() > q.limit as usize;
                items.truncate(q.limit as usize);
                Ok(Page {
                    count: count.max(0) as u64,
                    items,
                    more,
                })
            }

            async fn forget_audit_before(&self, before: &str) -> Result<u64, StoreError> {
                let done = sqlx::query("DELETE FROM audit WHERE at < $1")
                    .bind(before)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            }
        }
    };
}

audit_repo!(SqliteRepo, sqlite_audit);
audit_repo!(PgRepo, pg_audit);
