//! The metadata database: image records ([`ImageRepo`]) and job records
//! ([`JobRepo`]), each a small trait with one implementation per backend
//! ([`SqliteRepo`], [`PgRepo`]). [`connect`] opens the database a URL names
//! and hands out both repositories.

pub mod access;
pub mod images;
pub mod jobs;
mod sql;

use std::sync::Arc;

pub use access::{AccessRepo, NewToken, Scope, TokenRecord, UserRecord};
pub use images::ImageRepo;
pub use jobs::{JobRecord, JobRepo, JobState};
pub use sql::{PgRepo, SqliteRepo};

use crate::error::StoreError;

/// The repositories of one database.
#[derive(Clone)]
pub struct Records {
    /// Image records.
    pub images: Arc<dyn ImageRepo>,
    /// Job records.
    pub jobs: Arc<dyn JobRepo>,
    /// Users, keys, visibility, settings.
    pub access: Arc<dyn AccessRepo>,
}

impl Records {
    fn of<R: ImageRepo + JobRepo + AccessRepo + 'static>(repo: R) -> Records {
        let repo = Arc::new(repo);
        Records {
            images: repo.clone(),
            jobs: repo.clone(),
            access: repo,
        }
    }
}

/// Which backend a connection URL names.
pub fn backend_of(url: &str) -> Option<&'static str> {
    if url.starts_with("sqlite:") {
        Some("sqlite")
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Some("postgres")
    } else {
        None
    }
}

/// Connects to the database a URL names (`sqlite://…` or `postgres://…`)
/// and applies migrations.
pub async fn connect(url: &str) -> Result<Records, StoreError> {
    match backend_of(url) {
        Some("sqlite") => Ok(Records::of(SqliteRepo::connect_url(url).await?)),
        Some(_) => Ok(Records::of(PgRepo::connect_url(url).await?)),
        None => Err(StoreError::Corrupt(format!(
            "unsupported database URL {:?}: use sqlite://PATH or postgres://USER@HOST/DB",
            url.split('@').next_back().unwrap_or(url)
        ))),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::record::{now_rfc3339, ImageDetails, ImageId, ImageKind, ImageRecord};
    use pentascope_core::tiff::Flavour;
    use pentascope_core::{DType, Shape5};
    use sqlx::postgres::PgPoolOptions;
    use std::time::Duration;

    /// A fresh, empty PostgreSQL database for one test on
    /// `PENTASCOPE_TEST_POSTGRES` (default: the local server).
    async fn fresh_postgres() -> String {
        let admin = std::env::var("PENTASCOPE_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let pool = match PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .connect(&admin)
            .await
        {
            Ok(p) => p,
            Err(e) => panic!("PostgreSQL does not answer at {admin}: {e}"),
        };
        let name = format!(
            "pentascope_test_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&pool)
            .await
            .unwrap();
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        format!("{base}/{name}")
    }

    fn record(id: ImageId) -> ImageRecord {
        ImageRecord {
            id,
            kind: ImageKind::Upload,
            source_image_id: None,
            original_filename: Some("a.tif".into()),
            byte_size: 10,
            created_at: now_rfc3339(),
            dtype: DType::U16,
            shape: Shape5::new(1, 2, 3, 4, 5),
            flavour: Flavour::Ome,
            details: ImageDetails::default(),
            statistics: Vec::new(),
            owner: Some("ada".into()),
            public: false,
        }
    }

    /// The repository contract every backend must meet.
    async fn ids_never_reused_and_pending_invisible(url: &str) {
        let repo = connect(url).await.unwrap().images;
        let a = repo.reserve(ImageKind::Upload).await.unwrap();
        assert!(repo.get(a).await.unwrap().is_none(), "pending is invisible");
        let published = record(a);
        repo.publish(&published).await.unwrap();
        assert_eq!(repo.get(a).await.unwrap(), Some(published));
        assert_eq!(repo.list().await.unwrap().len(), 1);
        assert!(repo.delete(a).await.unwrap());
        assert!(!repo.delete(a).await.unwrap());
        drop(repo);
        let repo = connect(url).await.unwrap().images;
        let b = repo.reserve(ImageKind::Upload).await.unwrap();
        assert!(b.0 > a.0, "{b} after deleting {a}");
        assert_eq!(repo.pending("9999").await.unwrap(), vec![b]);
        assert!(
            repo.pending("2000").await.unwrap().is_empty(),
            "reserved now"
        );
        repo.discard(b).await.unwrap();
        assert!(repo.pending("9999").await.unwrap().is_empty());
        assert!(repo.list().await.unwrap().is_empty());
        repo.ping().await.unwrap();
    }

    /// Jobs: claimed once, leases expire, outcomes are kept.
    async fn jobs_are_claimed_once_and_leases_expire(url: &str) {
        let repo = connect(url).await.unwrap().jobs;
        let kwargs = serde_json::json!({"image_id": "image_1", "n_components": 2});
        repo.create_job("j1", "heavy_pca", &kwargs, Some("ada"))
            .await
            .unwrap();
        repo.create_job("j2", "heavy_pca", &kwargs, None)
            .await
            .unwrap();
        let first = repo.claim_job(60).await.unwrap().unwrap();
        assert_eq!(
            (first.id.as_str(), first.state, first.attempts),
            ("j1", JobState::Started, 1)
        );
        assert_eq!(first.kwargs, kwargs);
        let second = repo.claim_job(-1).await.unwrap().unwrap();
        assert_eq!(second.id, "j2", "a started job is not claimed twice");
        // j2's lease (-1 s) has already run out: its runner is presumed dead
        let again = repo.claim_job(60).await.unwrap().unwrap();
        assert_eq!((again.id.as_str(), again.attempts), ("j2", 2));
        assert!(repo.claim_job(60).await.unwrap().is_none());
        repo.job_progress("j1", 0.5, 60).await.unwrap();
        assert_eq!(repo.get_job("j1").await.unwrap().unwrap().progress, 0.5);
        let result = serde_json::json!({"n_components": 2});
        repo.finish_job("j1", Ok(&result)).await.unwrap();
        repo.finish_job("j2", Err("image image_1 not found"))
            .await
            .unwrap();
        let j1 = repo.get_job("j1").await.unwrap().unwrap();
        assert_eq!(
            (j1.state, j1.result, j1.progress),
            (JobState::Success, Some(result), 1.0)
        );
        let j2 = repo.get_job("j2").await.unwrap().unwrap();
        assert_eq!(j2.state, JobState::Failure);
        assert_eq!(j2.error.as_deref(), Some("image image_1 not found"));
        assert!(repo.get_job("nope").await.unwrap().is_none());
    }

    /// Users are unique, keys join their user and are revoked once, the
    /// first value of a setting stays, visibility follows derived images.
    async fn access_records_behave(url: &str) {
        let records = connect(url).await.unwrap();
        let access = records.access;
        let ada = access.create_user("ada", true).await.unwrap().unwrap();
        assert!(access.create_user("ada", false).await.unwrap().is_none());
        access.create_user("bob", false).await.unwrap().unwrap();
        assert_eq!(access.user("ada").await.unwrap(), Some(ada.clone()));
        assert_eq!(access.users().await.unwrap().len(), 2);
        let id = access
            .create_token(&NewToken {
                user_id: ada.id,
                name: Some("laptop"),
                scope: Scope::Write,
                secret_sha256: "ab",
                expires_at: Some(5),
            })
            .await
            .unwrap();
        let token = access.token(id).await.unwrap().unwrap();
        assert_eq!(
            (
                token.user.as_str(),
                token.user_admin,
                token.scope,
                token.expires_at
            ),
            ("ada", true, Scope::Write, Some(5))
        );
        assert!(access.tokens(Some("bob")).await.unwrap().is_empty());
        assert_eq!(access.tokens(None).await.unwrap().len(), 1);
        access.touch_token(id).await.unwrap();
        assert!(access.token(id).await.unwrap().unwrap().last_used.is_some());
        assert!(access.revoke_token(id).await.unwrap());
        assert!(!access.revoke_token(id).await.unwrap());
        assert!(access
            .token(id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some());
        assert_eq!(access.setting_or_init("k", "1").await.unwrap(), "1");
        assert_eq!(access.setting_or_init("k", "2").await.unwrap(), "1");

        let images = records.images;
        let source = images.reserve(ImageKind::Upload).await.unwrap();
        images.publish(&record(source)).await.unwrap();
        let derived = images.reserve(ImageKind::PcaScores).await.unwrap();
        images
            .publish(&ImageRecord {
                source_image_id: Some(source),
                ..record(derived)
            })
            .await
            .unwrap();
        assert!(access.set_public(source, true).await.unwrap());
        for id in [source, derived] {
            let r = images.get(id).await.unwrap().unwrap();
            assert!(r.public && r.owner.as_deref() == Some("ada"), "{id}");
        }
        assert!(!access.set_public(ImageId(999), true).await.unwrap());
    }

    #[tokio::test]
    async fn sqlite_meets_the_repository_contract() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
        ids_never_reused_and_pending_invisible(&url).await;
        jobs_are_claimed_once_and_leases_expire(&url).await;
        access_records_behave(&url.replace("db.sqlite", "access.sqlite")).await;
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL; run with --ignored (.ci/run does)"]
    async fn postgres_meets_the_repository_contract() {
        let url = fresh_postgres().await;
        ids_never_reused_and_pending_invisible(&url).await;
        jobs_are_claimed_once_and_leases_expire(&url).await;
        access_records_behave(&fresh_postgres().await).await;
    }

    #[tokio::test]
    async fn unknown_schemes_are_refused_without_leaking_credentials() {
        let err = connect("mysql://user:secret@host/db").await.err().unwrap();
        assert!(!err.to_string().contains("secret"), "{err}");
    }
}
