//! The SQL behind [`ImageRepo`] and [`JobRepo`], one implementation per
//! backend: [`SqliteRepo`] (embedded, the default) and [`PgRepo`]
//! (PostgreSQL, for several API processes and workers).
//!
//! Both speak the same SQL (`$n` placeholders work in SQLite and
//! PostgreSQL), so macros stamp out both implementations and each backend
//! keeps only its connection set-up and migrations.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::Row;

use super::access::{AccessRepo, NewToken, Scope, TokenRecord, UserRecord};
use super::catalogue_sql::{write_catalogue, Backend};
use super::images::ImageRepo;
use super::jobs::{unix_now, JobRecord, JobRepo, JobState};
use crate::error::StoreError;
use crate::record::{now_rfc3339, Catalogue, ImageDetails, ImageId, ImageKind, ImageRecord};

/// SQLite, embedded, in one file.
#[derive(Debug, Clone)]
pub struct SqliteRepo {
    pub(super) pool: SqlitePool,
}

impl SqliteRepo {
    /// Opens (creating if needed) the database file and applies migrations.
    pub async fn open(path: &Path) -> Result<SqliteRepo, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(10));
        Self::connect(options).await
    }

    /// Connects with a `sqlite://` URL and applies migrations.
    pub async fn connect_url(url: &str) -> Result<SqliteRepo, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(10));
        Self::connect(options).await
    }

    async fn connect(options: SqliteConnectOptions) -> Result<SqliteRepo, StoreError> {
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(SqliteRepo { pool })
    }
}

/// Writes a copy of the SQLite database at `url` to the new file `dest`,
/// consistent as of one moment, while other connections go on writing to
/// it (`VACUUM INTO`, which reads in one transaction and leaves out free
/// pages).
pub async fn sqlite_snapshot(url: &str, dest: &Path) -> Result<(), StoreError> {
    use sqlx::{ConnectOptions, Connection};
    let dest = dest
        .to_str()
        .ok_or_else(|| StoreError::Corrupt(format!("{} is not UTF-8", dest.display())))?;
    let mut connection = SqliteConnectOptions::from_str(url)?
        .busy_timeout(Duration::from_secs(10))
        .connect()
        .await?;
    sqlx::query("VACUUM INTO $1")
        .bind(dest)
        .execute(&mut connection)
        .await?;
    connection.close().await?;
    Ok(())
}

/// PostgreSQL, shared by any number of API processes and workers.
#[derive(Debug, Clone)]
pub struct PgRepo {
    pub(super) pool: PgPool,
}

impl PgRepo {
    /// Connects with a `postgres://` URL and applies migrations. The pool
    /// connects lazily, so a database that is down at start-up or later
    /// gives errors (503) until it is back, not a dead process.
    pub async fn connect_url(url: &str) -> Result<PgRepo, StoreError> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(PgRepo { pool })
    }
}

macro_rules! record_from_row {
    ($name:ident, $row:ty) => {
        pub(super) fn $name(row: &$row) -> Result<ImageRecord, StoreError> {
            let corrupt = |what: &str| StoreError::Corrupt(what.to_string());
            let id: i64 = row.try_get("id")?;
            let kind: String = row.try_get("kind")?;
            let source: Option<String> = row.try_get("source_image_id")?;
            let dtype: String = row.try_get("dtype")?;
            let flavour: String = row.try_get("flavour")?;
            let metadata: String = row.try_get("metadata")?;
            let statistics: String = row.try_get("statistics")?;
            let size =
                |c: &str| -> Result<u64, StoreError> { Ok(row.try_get::<i64, _>(c)? as u64) };
            Ok(ImageRecord {
                id: ImageId(id),
                kind: ImageKind::parse(&kind).ok_or_else(|| corrupt("kind"))?,
                source_image_id: source
                    .map(|s| s.parse().map_err(|_| corrupt("source_image_id")))
                    .transpose()?,
                original_filename: row.try_get("original_filename")?,
                byte_size: row.try_get::<i64, _>("byte_size")? as u64,
                created_at: row.try_get("created_at")?,
                dtype: pentascope_core::DType::from_name(&dtype).ok_or_else(|| corrupt("dtype"))?,
                shape: pentascope_core::Shape5::new(
                    size("size_t")?,
                    size("size_z")?,
                    size("size_c")?,
                    size("size_y")?,
                    size("size_x")?,
                ),
                flavour: serde_json::from_value(serde_json::Value::String(flavour))
                    .map_err(|_| corrupt("flavour"))?,
                details: serde_json::from_str::<ImageDetails>(&metadata)
                    .map_err(|_| corrupt("metadata"))?,
                statistics: serde_json::from_str(&statistics).map_err(|_| corrupt("statistics"))?,
                owner: row.try_get("owner")?,
                public: row.try_get("public")?,
                catalogue: Catalogue {
                    name: row.try_get("name")?,
                    description: row.try_get("description")?,
                    tags: serde_json::from_str(&row.try_get::<String, _>("tags")?)
                        .map_err(|_| corrupt("tags"))?,
                    annotations: serde_json::from_str(&row.try_get::<String, _>("annotations")?)
                        .map_err(|_| corrupt("annotations"))?,
                },
            })
        }
    };
}

record_from_row!(sqlite_record, sqlx::sqlite::SqliteRow);
record_from_row!(pg_record, sqlx::postgres::PgRow);

macro_rules! job_from_row {
    ($name:ident, $row:ty) => {
        fn $name(row: &$row) -> Result<JobRecord, StoreError> {
            let corrupt = |what: &str| StoreError::Corrupt(format!("job {what}"));
            let json = |text: Option<String>| -> Result<Option<serde_json::Value>, StoreError> {
                text.map(|t| serde_json::from_str(&t).map_err(|_| corrupt("json")))
                    .transpose()
            };
            let state: String = row.try_get("state")?;
            Ok(JobRecord {
                id: row.try_get("id")?,
                task: row.try_get("task")?,
                kwargs: json(Some(row.try_get("kwargs")?))?.unwrap_or_default(),
                state: JobState::parse(&state).ok_or_else(|| corrupt("state"))?,
                progress: row.try_get("progress")?,
                result: json(row.try_get("result")?)?,
                error: row.try_get("error")?,
                attempts: i64::from(row.try_get::<i32, _>("attempts")?),
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
                owner: row.try_get("owner")?,
            })
        }
    };
}

job_from_row!(sqlite_job, sqlx::sqlite::SqliteRow);
job_from_row!(pg_job, sqlx::postgres::PgRow);

/// `(name, count)` rows of a `GROUP BY` as the values `parse` makes of
/// the names.
fn parse_counts<T>(
    rows: Vec<(String, i64)>,
    what: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Vec<(T, u64)>, StoreError> {
    rows.into_iter()
        .map(|(name, n)| {
            let value =
                parse(&name).ok_or_else(|| StoreError::Corrupt(format!("{what} {name:?}")))?;
            Ok((value, n.max(0) as u64))
        })
        .collect()
}

macro_rules! image_repo {
    ($repo:ty, $from_row:ident, $backend:expr) => {
        #[async_trait]
        impl ImageRepo for $repo {
            async fn reserve(&self, kind: ImageKind) -> Result<ImageId, StoreError> {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO images (state, kind, created_at) \
                     VALUES ('pending', $1, $2) RETURNING id",
                )
                .bind(kind.as_str())
                .bind(now_rfc3339())
                .fetch_one(&self.pool)
                .await?;
                Ok(ImageId(id))
            }

            async fn publish(&self, r: &ImageRecord) -> Result<(), StoreError> {
                let json = |v: Result<String, serde_json::Error>| {
                    v.map_err(|e| StoreError::Corrupt(e.to_string()))
                };
                let flavour = serde_json::to_value(r.flavour)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default();
                let mut tx = self.pool.begin().await?;
                let done = sqlx::query(
                    "UPDATE images SET state = 'ready', kind = $1, source_image_id = $2, \
                     original_filename = $3, byte_size = $4, created_at = $5, dtype = $6, \
                     size_t = $7, size_z = $8, size_c = $9, size_y = $10, size_x = $11, \
                     flavour = $12, metadata = $13, statistics = $14, owner = $15, public = $16, \
                     series_of = $17 WHERE id = $18 AND state = 'pending'",
                )
                .bind(r.kind.as_str())
                .bind(r.source_image_id.map(|s| s.to_string()))
                .bind(&r.original_filename)
                .bind(r.byte_size as i64)
                .bind(&r.created_at)
                .bind(r.dtype.name())
                .bind(r.shape.t as i64)
                .bind(r.shape.z as i64)
                .bind(r.shape.c as i64)
                .bind(r.shape.y as i64)
                .bind(r.shape.x as i64)
                .bind(flavour)
                .bind(json(serde_json::to_string(&r.details))?)
                .bind(json(serde_json::to_string(&r.statistics))?)
                .bind(&r.owner)
                .bind(r.public)
                .bind(r.details.series.as_ref().map(|s| s.first.0))
                .bind(r.id.0)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() != 1 {
                    return Err(StoreError::NotFound(r.id.to_string()));
                }
                write_catalogue!(tx, $backend, r, &[]);
                tx.commit().await?;
                Ok(())
            }

            async fn discard(&self, id: ImageId) -> Result<(), StoreError> {
                sqlx::query("DELETE FROM images WHERE id = $1 AND state = 'pending'")
                    .bind(id.0)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn get(&self, id: ImageId) -> Result<Option<ImageRecord>, StoreError> {
                sqlx::query("SELECT * FROM images WHERE id = $1 AND state = 'ready'")
                    .bind(id.0)
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map($from_row)
                    .transpose()
            }

            async fn list(&self) -> Result<Vec<ImageRecord>, StoreError> {
                sqlx::query("SELECT * FROM images WHERE state = 'ready' ORDER BY id")
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map($from_row)
                    .collect()
            }

            async fn derived_from(&self, source: ImageId) -> Result<Vec<ImageId>, StoreError> {
                let ids: Vec<i64> = sqlx::query_scalar(
                    "SELECT id FROM images WHERE source_image_id = $1 AND state = 'ready' \
                     ORDER BY id",
                )
                .bind(source.to_string())
                .fetch_all(&self.pool)
                .await?;
                Ok(ids.into_iter().map(ImageId).collect())
            }

            async fn series_of(&self, first: ImageId) -> Result<Vec<ImageId>, StoreError> {
                let ids: Vec<i64> = sqlx::query_scalar(
                    "SELECT id FROM images WHERE series_of = $1 AND state = 'ready' ORDER BY id",
                )
                .bind(first.0)
                .fetch_all(&self.pool)
                .await?;
                Ok(ids.into_iter().map(ImageId).collect())
            }

            async fn update_details(
                &self,
                id: ImageId,
                details: &ImageDetails,
            ) -> Result<bool, StoreError> {
                let text = serde_json::to_string(details)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let done =
                    sqlx::query("UPDATE images SET metadata = $1 WHERE id = $2 AND state = 'ready'")
                        .bind(text)
                        .bind(id.0)
                        .execute(&self.pool)
                        .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn delete(&self, id: ImageId) -> Result<bool, StoreError> {
                let mut tx = self.pool.begin().await?;
                let done = sqlx::query("DELETE FROM images WHERE id = $1 AND state = 'ready'")
                    .bind(id.0)
                    .execute(&mut *tx)
                    .await?;
                if $backend == Backend::Sqlite {
                    // a virtual table has no foreign key to cascade along
                    sqlx::query("DELETE FROM image_search WHERE rowid = $1")
                        .bind(id.0)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(done.rows_affected() == 1)
            }

            async fn pending(&self, reserved_before: &str) -> Result<Vec<ImageId>, StoreError> {
                let ids: Vec<i64> = sqlx::query_scalar(
                    "SELECT id FROM images WHERE state = 'pending' AND created_at < $1 ORDER BY id",
                )
                .bind(reserved_before)
                .fetch_all(&self.pool)
                .await?;
                Ok(ids.into_iter().map(ImageId).collect())
            }

            async fn put_original_metadata(
                &self,
                id: ImageId,
                format: &str,
                text: &str,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO original_metadata (image_id, format, text) VALUES ($1, $2, $3)",
                )
                .bind(id.0)
                .bind(format)
                .bind(text)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn original_metadata(
                &self,
                id: ImageId,
            ) -> Result<Option<(String, String)>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT format, text FROM original_metadata WHERE image_id = $1",
                )
                .bind(id.0)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn count_by_kind(&self) -> Result<Vec<(ImageKind, u64)>, StoreError> {
                let rows: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT kind, COUNT(*) FROM images WHERE state = 'ready' GROUP BY kind",
                )
                .fetch_all(&self.pool)
                .await?;
                parse_counts(rows, "image kind", ImageKind::parse)
            }

            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            fn backend(&self) -> &'static str {
                $backend.name()
            }

            fn embedded(&self) -> bool {
                $backend == Backend::Sqlite
            }

            fn pool_connections(&self) -> (u32, usize) {
                (self.pool.size(), self.pool.num_idle())
            }

            async fn close(&self) {
                if $backend == Backend::Sqlite {
                    // merge the write-ahead log into the file now: the last
                    // connection's close would, but may end after the
                    // process has, leaving a file without its last writes
                    // (a backup copies the file alone)
                    let merged = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                        .execute(&self.pool)
                        .await;
                    if let Err(e) = merged {
                        tracing::warn!("cannot merge the SQLite write-ahead log: {e}");
                    }
                }
                self.pool.close().await;
            }
        }
    };
}

macro_rules! job_repo {
    ($repo:ty, $job_row:ident) => {
        #[async_trait]
        impl JobRepo for $repo {
            async fn create_job(
                &self,
                id: &str,
                task: &str,
                kwargs: &serde_json::Value,
                owner: Option<&str>,
            ) -> Result<(), StoreError> {
                let now = now_rfc3339();
                sqlx::query(
                    "INSERT INTO jobs (id, task, kwargs, state, created_at, updated_at, owner) \
                     VALUES ($1, $2, $3, 'PENDING', $4, $4, $5)",
                )
                .bind(id)
                .bind(task)
                .bind(kwargs.to_string())
                .bind(now)
                .bind(owner)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn claim_job(&self, lease_secs: i64) -> Result<Option<JobRecord>, StoreError> {
                let now = unix_now();
                // the outer condition repeats the inner one so that of two
                // concurrent claimers only the first update matches
                sqlx::query(
                    "UPDATE jobs SET state = 'STARTED', attempts = attempts + 1, \
                     lease_until = $1, updated_at = $2 \
                     WHERE id = (SELECT id FROM jobs WHERE state = 'PENDING' \
                                 OR (state = 'STARTED' AND lease_until < $3) \
                                 ORDER BY created_at, id LIMIT 1) \
                     AND (state = 'PENDING' OR (state = 'STARTED' AND lease_until < $3)) \
                     RETURNING *",
                )
                .bind(now + lease_secs)
                .bind(now_rfc3339())
                .bind(now)
                .fetch_optional(&self.pool)
                .await?
                .as_ref()
                .map($job_row)
                .transpose()
            }

            async fn start_job(
                &self,
                id: &str,
                lease_secs: i64,
            ) -> Result<Option<JobRecord>, StoreError> {
                sqlx::query(
                    "UPDATE jobs SET state = 'STARTED', attempts = attempts + 1, \
                     lease_until = $1, updated_at = $2 \
                     WHERE id = $3 AND state IN ('PENDING', 'STARTED') RETURNING *",
                )
                .bind(unix_now() + lease_secs)
                .bind(now_rfc3339())
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                .as_ref()
                .map($job_row)
                .transpose()
            }

            async fn job_progress(
                &self,
                id: &str,
                progress: f64,
                lease_secs: i64,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "UPDATE jobs SET progress = $1, lease_until = $2, updated_at = $3 \
                     WHERE id = $4 AND state = 'STARTED'",
                )
                .bind(progress)
                .bind(unix_now() + lease_secs)
                .bind(now_rfc3339())
                .bind(id)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn finish_job(
                &self,
                id: &str,
                outcome: Result<&serde_json::Value, &str>,
            ) -> Result<(), StoreError> {
                let (state, result, error) = match outcome {
                    Ok(v) => (JobState::Success, Some(v.to_string()), None),
                    Err(e) => (JobState::Failure, None, Some(e.to_string())),
                };
                sqlx::query(
                    "UPDATE jobs SET state = $1, result = $2, error = $3, progress = \
                     CASE WHEN $1 = 'SUCCESS' THEN 1.0 ELSE progress END, updated_at = $4 \
                     WHERE id = $5",
                )
                .bind(state.as_str())
                .bind(result)
                .bind(error)
                .bind(now_rfc3339())
                .bind(id)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn release_started_jobs(&self) -> Result<u64, StoreError> {
                let done = sqlx::query("UPDATE jobs SET lease_until = 0 WHERE state = 'STARTED'")
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            }

            async fn count_by_state(&self) -> Result<Vec<(JobState, u64)>, StoreError> {
                let rows: Vec<(String, i64)> =
                    sqlx::query_as("SELECT state, COUNT(*) FROM jobs GROUP BY state")
                        .fetch_all(&self.pool)
                        .await?;
                parse_counts(rows, "job state", JobState::parse)
            }

            async fn get_job(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
                sqlx::query("SELECT * FROM jobs WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map($job_row)
                    .transpose()
            }
        }
    };
}

macro_rules! user_from_row {
    ($name:ident, $row:ty) => {
        fn $name(row: &$row) -> Result<UserRecord, StoreError> {
            Ok(UserRecord {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
                admin: row.try_get("admin")?,
                created_at: row.try_get("created_at")?,
            })
        }
    };
}

user_from_row!(sqlite_user, sqlx::sqlite::SqliteRow);
user_from_row!(pg_user, sqlx::postgres::PgRow);

macro_rules! token_from_row {
    ($name:ident, $row:ty) => {
        fn $name(row: &$row) -> Result<TokenRecord, StoreError> {
            let scope: String = row.try_get("scope")?;
            Ok(TokenRecord {
                id: row.try_get("id")?,
                user: row.try_get("user_name")?,
                user_admin: row.try_get("user_admin")?,
                name: row.try_get("name")?,
                scope: Scope::parse(&scope)
                    .ok_or_else(|| StoreError::Corrupt(format!("token scope {scope:?}")))?,
                secret_sha256: row.try_get("secret_sha256")?,
                created_at: row.try_get("created_at")?,
                expires_at: row.try_get("expires_at")?,
                last_used: row.try_get("last_used")?,
                revoked_at: row.try_get("revoked_at")?,
            })
        }
    };
}

token_from_row!(sqlite_token, sqlx::sqlite::SqliteRow);
token_from_row!(pg_token, sqlx::postgres::PgRow);

/// Keys with their user's name and role.
const TOKENS: &str = "SELECT tokens.*, users.name AS user_name, users.admin AS user_admin \
                      FROM tokens JOIN users ON users.id = tokens.user_id";

macro_rules! access_repo {
    ($repo:ty, $user_row:ident, $token_row:ident) => {
        #[async_trait]
        impl AccessRepo for $repo {
            async fn create_user(
                &self,
                name: &str,
                admin: bool,
            ) -> Result<Option<UserRecord>, StoreError> {
                sqlx::query(
                    "INSERT INTO users (name, admin, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO NOTHING RETURNING *",
                )
                .bind(name)
                .bind(admin)
                .bind(now_rfc3339())
                .fetch_optional(&self.pool)
                .await?
                .as_ref()
                .map($user_row)
                .transpose()
            }

            async fn user(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
                sqlx::query("SELECT * FROM users WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map($user_row)
                    .transpose()
            }

            async fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
                sqlx::query("SELECT * FROM users ORDER BY id")
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map($user_row)
                    .collect()
            }

            async fn create_token(&self, t: &NewToken<'_>) -> Result<i64, StoreError> {
                Ok(sqlx::query_scalar(
                    "INSERT INTO tokens (user_id, name, scope, secret_sha256, created_at, \
                     expires_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                )
                .bind(t.user_id)
                .bind(t.name)
                .bind(t.scope.as_str())
                .bind(t.secret_sha256)
                .bind(now_rfc3339())
                .bind(t.expires_at)
                .fetch_one(&self.pool)
                .await?)
            }

            async fn token(&self, id: i64) -> Result<Option<TokenRecord>, StoreError> {
                sqlx::query(&format!("{TOKENS} WHERE tokens.id = $1"))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map($token_row)
                    .transpose()
            }

            async fn tokens(&self, user: Option<&str>) -> Result<Vec<TokenRecord>, StoreError> {
                sqlx::query(&format!(
                    "{TOKENS} WHERE $1 IS NULL OR users.name = $1 ORDER BY tokens.id"
                ))
                .bind(user)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map($token_row)
                .collect()
            }

            async fn revoke_token(&self, id: i64) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
                )
                .bind(now_rfc3339())
                .bind(id)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn touch_token(&self, id: i64) -> Result<(), StoreError> {
                sqlx::query("UPDATE tokens SET last_used = $1 WHERE id = $2")
                    .bind(now_rfc3339())
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn set_public(&self, id: ImageId, public: bool) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE images SET public = $1 WHERE state = 'ready' \
                     AND (id = $2 OR source_image_id = $3)",
                )
                .bind(public)
                .bind(id.0)
                .bind(id.to_string())
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn setting_or_init(&self, key: &str, value: &str) -> Result<String, StoreError> {
                sqlx::query(
                    "INSERT INTO settings (key, value) VALUES ($1, $2) \
                     ON CONFLICT (key) DO NOTHING",
                )
                .bind(key)
                .bind(value)
                .execute(&self.pool)
                .await?;
                Ok(
                    sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
                        .bind(key)
                        .fetch_one(&self.pool)
                        .await?,
                )
            }
        }
    };
}

access_repo!(SqliteRepo, sqlite_user, sqlite_token);
access_repo!(PgRepo, pg_user, pg_token);
image_repo!(SqliteRepo, sqlite_record, Backend::Sqlite);
image_repo!(PgRepo, pg_record, Backend::Postgres);
job_repo!(SqliteRepo, sqlite_job);
job_repo!(PgRepo, pg_job);
