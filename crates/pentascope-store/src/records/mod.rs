//! The metadata database: image records ([`ImageRepo`]) and job records
//! ([`JobRepo`]), each a small trait with one implementation per backend
//! ([`SqliteRepo`], [`PgRepo`]). [`connect`] opens the database a URL names
//! and hands out both repositories.

pub mod access;
pub mod audit;
pub mod catalogue;
mod catalogue_sql;
pub mod images;
pub mod jobs;
mod sql;

use std::sync::Arc;

pub use access::{AccessRepo, NewToken, Scope, TokenRecord, UserRecord};
pub use audit::{AuditQuery, AuditRecord, AuditRepo, NewAuditEntry};
pub use catalogue::{CatalogueRepo, DatasetId, DatasetRecord, Visibility};
pub use images::ImageRepo;
pub use jobs::{JobRecord, JobRepo, JobState};
pub use sql::{sqlite_snapshot, PgRepo, SqliteRepo};

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
    /// Names, tags, annotations, datasets and search.
    pub catalogue: Arc<dyn CatalogueRepo>,
    /// Who did what, when, from where.
    pub audit: Arc<dyn AuditRepo>,
}

impl Records {
    fn of<R: ImageRepo + JobRepo + AccessRepo + CatalogueRepo + AuditRepo + 'static>(
        repo: R,
    ) -> Records {
        let repo = Arc::new(repo);
        Records {
            images: repo.clone(),
            jobs: repo.clone(),
            access: repo.clone(),
            catalogue: repo.clone(),
            audit: repo,
        }
    }
}

/// Whether the database `url` names is one file on this machine, which
/// [`sqlite_snapshot`] copies while it is in use (SQLite; a PostgreSQL
/// server is backed up with its own tools).
pub fn is_one_file(url: &str) -> bool {
    backend_of(url) == Some("sqlite")
}

/// Which backend a connection URL names.
fn backend_of(url: &str) -> Option<&'static str> {
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
    use pentascope_core::{DType, Shape5};
    use pentascope_tiff::Flavour;
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
            catalogue: crate::record::Catalogue::named("a.tif"),
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

    /// Search, filters, visibility, keyset pages, tags and datasets.
    async fn catalogue_queries_behave(url: &str) {
        use crate::record::Catalogue;
        use catalogue::*;
        let records = connect(url).await.unwrap();
        let (images, cat) = (records.images, records.catalogue);
        let publish = |owner: &'static str, public: bool, catalogue: Catalogue| {
            let images = images.clone();
            async move {
                let id = images.reserve(ImageKind::Upload).await.unwrap();
                images
                    .publish(&ImageRecord {
                        owner: Some(owner.into()),
                        public,
                        catalogue,
                        ..record(id)
                    })
                    .await
                    .unwrap();
                id
            }
        };
        let entry = |name: &str, tags: &[&str], annotations: &[(&str, &str)]| Catalogue {
            name: name.into(),
            description: "Confocal stack".into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            annotations: annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let a = publish(
            "ada",
            false,
            entry(
                "Mouse brain ÉCOLE",
                &["dapi", "brain"],
                &[("Stain", "DAPI"), ("Mouse", "M12")],
            ),
        )
        .await;
        let b = publish(
            "ada",
            true,
            entry("liver 2", &["dapi"], &[("Stain", "GFP")]),
        )
        .await;
        let c = publish(
            "bob",
            false,
            entry("bob's kidney", &["kidney"], &[("Mouse", "M12")]),
        )
        .await;
        let query = |visibility: Visibility, filter: ImageFilter| ImageQuery {
            visibility,
            filter,
            sort: Sort::parse("-created").unwrap(),
            after: None,
            limit: 100,
        };
        let ids = |page: Page<ImageRecord>| {
            let mut ids: Vec<ImageId> = page.items.iter().map(|r| r.id).collect();
            ids.sort();
            (page.count, ids)
        };
        let words = |q: &str| ImageFilter {
            words: search_words(q).collect(),
            ..ImageFilter::default()
        };
        let all = Visibility::All;
        let bob = Visibility::OwnOrPublic("bob".into());
        // word prefixes over name, description, tags, annotations; any case
        assert_eq!(
            ids(cat
                .query_images(&query(all.clone(), words("brai")))
                .await
                .unwrap()),
            (1, vec![a])
        );
        assert_eq!(
            ids(cat
                .query_images(&query(all.clone(), words("école")))
                .await
                .unwrap()),
            (1, vec![a])
        );
        assert_eq!(
            ids(cat
                .query_images(&query(all.clone(), words("m12")))
                .await
                .unwrap()),
            (2, vec![a, c])
        );
        assert_eq!(
            ids(cat
                .query_images(&query(all.clone(), words("CONFOCAL st")))
                .await
                .unwrap())
            .0,
            3
        );
        assert_eq!(
            ids(cat
                .query_images(&query(all.clone(), words("dapi brain")))
                .await
                .unwrap()),
            (1, vec![a])
        );
        assert_eq!(
            ids(cat
                .query_images(&query(all.clone(), words("near")))
                .await
                .unwrap())
            .0,
            0
        );
        // visibility is part of the query: ada's private image is not counted
        assert_eq!(
            ids(cat
                .query_images(&query(bob.clone(), words("m12")))
                .await
                .unwrap()),
            (1, vec![c])
        );
        assert_eq!(
            ids(cat
                .query_images(&query(bob.clone(), ImageFilter::default()))
                .await
                .unwrap()),
            (2, vec![b, c])
        );
        assert_eq!(
            ids(cat
                .query_images(&query(Visibility::Nothing, ImageFilter::default()))
                .await
                .unwrap())
            .0,
            0
        );
        let tagged = ImageFilter {
            tags: vec!["dapi".into()],
            annotations: vec![("Stain".into(), "DAPI".into())],
            ..ImageFilter::default()
        };
        assert_eq!(
            ids(cat.query_images(&query(all.clone(), tagged)).await.unwrap()),
            (1, vec![a])
        );
        let owned = ImageFilter {
            owner: Some("bob".into()),
            ..ImageFilter::default()
        };
        assert_eq!(
            ids(cat.query_images(&query(all.clone(), owned)).await.unwrap()),
            (1, vec![c])
        );
        // keyset pages of one walk every image once, in every order
        for sort in ["created", "-created", "name", "-name", "size", "-size"] {
            let mut after = None;
            let mut seen = Vec::new();
            loop {
                let page = cat
                    .query_images(&ImageQuery {
                        sort: Sort::parse(sort).unwrap(),
                        after: after.clone(),
                        limit: 2,
                        ..query(all.clone(), ImageFilter::default())
                    })
                    .await
                    .unwrap();
                assert_eq!(page.count, 3);
                let last = page.items.last().unwrap();
                after = Some(After {
                    key: Sort::parse(sort).unwrap().key_of(last),
                    id: last.id.0,
                });
                seen.extend(page.items.iter().map(|r| r.id));
                if !page.more {
                    break;
                }
            }
            let mut sorted = seen.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted, vec![a, b, c], "{sort}: {seen:?}");
        }
        // tags: counts of visible images, prefixes, pages
        let tags = cat.tags(&all, None, None, 10).await.unwrap();
        assert_eq!(
            tags.items,
            [
                ("brain".into(), 1),
                ("dapi".into(), 2),
                ("kidney".into(), 1)
            ]
        );
        let tags = cat.tags(&bob, Some("d"), None, 10).await.unwrap();
        assert_eq!((tags.count, tags.items), (1, vec![("dapi".to_string(), 1)]));
        let page = cat.tags(&all, None, Some("brain"), 1).await.unwrap();
        assert_eq!(
            (page.items, page.more),
            (vec![("dapi".to_string(), 2)], true)
        );
        // datasets: counts follow visibility, names are searchable words
        let d = cat
            .create_dataset("Kidney study", "the 2026 cohort", Some("ada"))
            .await
            .unwrap();
        assert!(cat.link(d.dataset_id, a).await.unwrap());
        assert!(!cat.link(d.dataset_id, a).await.unwrap(), "linked once");
        assert!(cat.link(d.dataset_id, c).await.unwrap());
        assert_eq!(
            cat.dataset(d.dataset_id, &all)
                .await
                .unwrap()
                .unwrap()
                .image_count,
            2
        );
        assert_eq!(
            cat.dataset(d.dataset_id, &bob)
                .await
                .unwrap()
                .unwrap()
                .image_count,
            1
        );
        // a private dataset's name finds its owner's images only
        assert_eq!(
            ids(cat
                .query_images(&query(all.clone(), words("kidney")))
                .await
                .unwrap())
            .1,
            vec![a, c]
        );
        assert_eq!(
            ids(cat
                .query_images(&query(all.clone(), words("study")))
                .await
                .unwrap())
            .1,
            vec![a]
        );
        cat.update_dataset(
            d.dataset_id,
            &DatasetChange {
                name: Some("Renal".into()),
                public: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(
            ids(cat
                .query_images(&query(all.clone(), words("renal")))
                .await
                .unwrap())
            .1,
            vec![a, c]
        );
        assert_eq!(
            ids(cat
                .query_images(&query(all.clone(), words("study")))
                .await
                .unwrap())
            .0,
            0
        );
        let in_dataset = ImageFilter {
            dataset: Some(d.dataset_id),
            ..ImageFilter::default()
        };
        assert_eq!(
            ids(cat
                .query_images(&query(bob.clone(), in_dataset))
                .await
                .unwrap())
            .1,
            vec![c]
        );
        let found = cat
            .query_datasets(&DatasetQuery {
                visibility: bob.clone(),
                words: vec!["ren".into()],
                owner: None,
                sort: Sort::parse("name").unwrap(),
                after: None,
                limit: 10,
            })
            .await
            .unwrap();
        assert_eq!((found.count, found.items[0].image_count), (1, 1));
        assert_eq!(
            cat.dataset_named("Renal", Some("ada")).await.unwrap(),
            Some(d.dataset_id)
        );
        assert_eq!(
            cat.datasets_of(a, &all).await.unwrap(),
            vec![(d.dataset_id, "Renal".to_string())]
        );
        // replacing an entry replaces its rows and words
        assert!(cat
            .set_catalogue(a, &entry("renamed", &["new"], &[]))
            .await
            .unwrap());
        assert_eq!(
            ids(cat
                .query_images(&query(all.clone(), words("brain")))
                .await
                .unwrap())
            .0,
            0
        );
        assert_eq!(
            ids(cat
                .query_images(&query(all.clone(), words("renamed new")))
                .await
                .unwrap())
            .1,
            vec![a]
        );
        assert_eq!(
            images.get(a).await.unwrap().unwrap().catalogue.tags,
            ["new"]
        );
        // deleting an image drops its links and words; deleting a dataset keeps images
        assert!(images.delete(c).await.unwrap());
        assert_eq!(
            cat.dataset(d.dataset_id, &all)
                .await
                .unwrap()
                .unwrap()
                .image_count,
            1
        );
        assert_eq!(
            ids(cat
                .query_images(&query(all.clone(), words("kidney")))
                .await
                .unwrap())
            .0,
            0
        );
        assert!(cat.delete_dataset(d.dataset_id).await.unwrap());
        assert_eq!(
            ids(cat
                .query_images(&query(all.clone(), ImageFilter::default()))
                .await
                .unwrap())
            .0,
            2
        );
        assert_eq!(cat.index_unindexed().await.unwrap(), 0);
    }

    /// The audit trail: appended in order, filtered, paged newest first,
    /// forgotten by age.
    async fn audit_records_behave(url: &str) {
        let audit = connect(url).await.unwrap().audit;
        let entry = |user, action, kind, object| NewAuditEntry {
            user,
            key_id: user.map(|_| 7),
            link: None,
            address: Some("192.0.2.1"),
            action,
            object_kind: kind,
            object_id: object,
            detail: "",
        };
        let first = audit
            .record(&entry(Some("ada"), "image.upload", "image", "image_1"))
            .await
            .unwrap();
        let second = audit
            .record(&NewAuditEntry {
                link: Some("image_1 until 2026-12-07T00:00:00Z"),
                ..entry(None, "image.delete", "image", "image_1")
            })
            .await
            .unwrap();
        let third = audit
            .record(&entry(
                Some("bob"),
                "dataset.create",
                "dataset",
                "dataset_1",
            ))
            .await
            .unwrap();
        assert!(first < second && second < third);
        let all = |limit| AuditQuery {
            limit,
            ..AuditQuery::default()
        };
        let page = audit.query_audit(&all(10)).await.unwrap();
        let ids: Vec<i64> = page.items.iter().map(|r| r.id).collect();
        assert_eq!(
            (page.count, ids, page.more),
            (3, vec![third, second, first], false)
        );
        let deleted = &page.items[1];
        assert_eq!(
            (
                deleted.user.as_deref(),
                deleted.link.as_deref(),
                deleted.address.as_deref(),
                deleted.action.as_str()
            ),
            (
                None,
                Some("image_1 until 2026-12-07T00:00:00Z"),
                Some("192.0.2.1"),
                "image.delete"
            )
        );
        assert_eq!(page.items[2].key_id, Some(7));
        // keyset pages walk every row once
        let page = audit.query_audit(&all(2)).await.unwrap();
        assert!(page.more);
        let rest = audit
            .query_audit(&AuditQuery {
                below_id: Some(page.items[1].id),
                ..all(2)
            })
            .await
            .unwrap();
        assert_eq!(
            (rest.items.len(), rest.items[0].id, rest.more),
            (1, first, false)
        );
        let only = |q: AuditQuery| {
            let audit = audit.clone();
            async move {
                let page = audit.query_audit(&q).await.unwrap();
                (
                    page.count,
                    page.items.iter().map(|r| r.id).collect::<Vec<_>>(),
                )
            }
        };
        assert_eq!(
            only(AuditQuery {
                user: Some("ada".into()),
                ..all(10)
            })
            .await,
            (1, vec![first])
        );
        assert_eq!(
            only(AuditQuery {
                object_kind: Some("image".into()),
                object_id: Some("image_1".into()),
                ..all(10)
            })
            .await,
            (2, vec![second, first])
        );
        assert_eq!(
            only(AuditQuery {
                action: Some("dataset.create".into()),
                ..all(10)
            })
            .await,
            (1, vec![third])
        );
        assert_eq!(
            only(AuditQuery {
                before: Some("2000-01-01T00:00:00.000Z".into()),
                ..all(10)
            })
            .await
            .0,
            0
        );
        assert_eq!(
            only(AuditQuery {
                after: Some("2000-01-01T00:00:00.000Z".into()),
                ..all(10)
            })
            .await
            .0,
            3
        );
        assert_eq!(
            audit
                .forget_audit_before("2000-01-01T00:00:00.000Z")
                .await
                .unwrap(),
            0
        );
        assert_eq!(audit.forget_audit_before("9999").await.unwrap(), 3);
        assert_eq!(only(all(10)).await.0, 0);
    }

    #[tokio::test]
    async fn sqlite_meets_the_repository_contract() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
        ids_never_reused_and_pending_invisible(&url).await;
        jobs_are_claimed_once_and_leases_expire(&url).await;
        access_records_behave(&url.replace("db.sqlite", "access.sqlite")).await;
        catalogue_queries_behave(&url.replace("db.sqlite", "catalogue.sqlite")).await;
        audit_records_behave(&url.replace("db.sqlite", "audit.sqlite")).await;
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL; run with --ignored (.ci/run does)"]
    async fn postgres_meets_the_repository_contract() {
        let url = fresh_postgres().await;
        ids_never_reused_and_pending_invisible(&url).await;
        jobs_are_claimed_once_and_leases_expire(&url).await;
        access_records_behave(&fresh_postgres().await).await;
        catalogue_queries_behave(&fresh_postgres().await).await;
        audit_records_behave(&fresh_postgres().await).await;
    }

    #[test]
    fn only_sqlite_is_one_file() {
        assert!(is_one_file(
            "sqlite:///var/lib/pentascope/pentascope.sqlite"
        ));
        assert!(!is_one_file("postgres://u@host/db"));
        assert!(!is_one_file("postgresql://u@host/db"));
    }

    #[tokio::test]
    async fn unknown_schemes_are_refused_without_leaking_credentials() {
        let err = connect("mysql://user:secret@host/db").await.err().unwrap();
        assert!(!err.to_string().contains("secret"), "{err}");
    }
}
