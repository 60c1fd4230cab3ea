//! The audit trail: every use case that changes something records who did
//! it (a user and the id of their key, or a signed link by its image and
//! expiry: never a secret), from which address, to which object, when.
//! Admins read it page by page ([`App::audit_trail`]); it is kept for
//! [`crate::Config::audit_retention`] ([`App::sweep_audit`]).
//!
//! An action is recorded once it is done; if recording fails, the action
//! stands and the failure is logged as an error (the trail then misses it).

use pentascope_store::records::audit::{AuditQuery, AuditRecord, NewAuditEntry};
use pentascope_store::records::catalogue::SortKey;
use pentascope_store::records::Scope;

use crate::access::{Caller, Who};
use crate::app::App;
use crate::catalogue::{filter_text, invalid, limit, query_digest, time_bound, Listing};
use crate::error::AppError;

/// What was done, and to what kind of object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// An image uploaded or imported.
    ImageUpload,
    /// An image deleted (with the images derived from it).
    ImageDelete,
    /// An image's name, description, tags or annotations changed.
    ImageUpdate,
    /// An image's default look changed.
    ImageRendering,
    /// An image made public or private.
    ImageVisibility,
    /// A signed link to an image made.
    LinkCreate,
    /// An API key created.
    TokenCreate,
    /// An API key revoked.
    TokenRevoke,
    /// A user created.
    UserCreate,
    /// A dataset created.
    DatasetCreate,
    /// A dataset renamed, described or shared.
    DatasetUpdate,
    /// A dataset deleted.
    DatasetDelete,
    /// An image put into a dataset.
    DatasetLink,
    /// An image taken out of a dataset.
    DatasetUnlink,
    /// A job submitted.
    JobSubmit,
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 15] = [
        Action::ImageUpload,
        Action::ImageDelete,
        Action::ImageUpdate,
        Action::ImageRendering,
        Action::ImageVisibility,
        Action::LinkCreate,
        Action::TokenCreate,
        Action::TokenRevoke,
        Action::UserCreate,
        Action::DatasetCreate,
        Action::DatasetUpdate,
        Action::DatasetDelete,
        Action::DatasetLink,
        Action::DatasetUnlink,
        Action::JobSubmit,
    ];

    /// Its stored name.
    pub fn name(self) -> &'static str {
        match self {
            Action::ImageUpload => "image.upload",
            Action::ImageDelete => "image.delete",
            Action::ImageUpdate => "image.update",
            Action::ImageRendering => "image.rendering",
            Action::ImageVisibility => "image.visibility",
            Action::LinkCreate => "link.create",
            Action::TokenCreate => "token.create",
            Action::TokenRevoke => "token.revoke",
            Action::UserCreate => "user.create",
            Action::DatasetCreate => "dataset.create",
            Action::DatasetUpdate => "dataset.update",
            Action::DatasetDelete => "dataset.delete",
            Action::DatasetLink => "dataset.link",
            Action::DatasetUnlink => "dataset.unlink",
            Action::JobSubmit => "job.submit",
        }
    }

    /// The kind of object it is done to.
    pub fn object_kind(self) -> &'static str {
        match self {
            Action::ImageUpload
            | Action::ImageDelete
            | Action::ImageUpdate
            | Action::ImageRendering
            | Action::ImageVisibility
            | Action::LinkCreate => "image",
            Action::TokenCreate | Action::TokenRevoke => "token",
            Action::UserCreate => "user",
            Action::DatasetCreate
            | Action::DatasetUpdate
            | Action::DatasetDelete
            | Action::DatasetLink
            | Action::DatasetUnlink => "dataset",
            Action::JobSubmit => "job",
        }
    }
}

/// The kinds of object actions are done to.
const OBJECT_KINDS: [&str; 5] = ["image", "token", "user", "dataset", "job"];

/// A page of the trail as a client asks for it, every value as sent.
#[derive(Debug, Clone, Default)]
pub struct AuditSearch {
    /// A user's name.
    pub user: Option<String>,
    /// An action's name (`image.upload`, …).
    pub action: Option<String>,
    /// An object kind: `image`, `dataset`, `token`, `user`, `job`.
    pub kind: Option<String>,
    /// An object's id (`image_5`, `dataset_2`, a key's number, a user's
    /// name, a job's id).
    pub object: Option<String>,
    /// RFC 3339 time (UTC) or date: at or after.
    pub after: Option<String>,
    /// RFC 3339 time (UTC) or date: before.
    pub before: Option<String>,
    /// Rows per page (default 100, at most 1,000).
    pub limit: Option<String>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// The names of the fields a change sets, as `(name, set)` pairs say.
pub(crate) fn fields_set<const N: usize>(fields: [(&'static str, bool); N]) -> Vec<&'static str> {
    fields
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
}

impl App {
    /// Records that `caller` did `action` to `object` (see the module
    /// documentation for failures).
    pub(crate) async fn audit(&self, caller: &Caller, action: Action, object: &str, detail: &str) {
        let (user, key_id, link) = match &caller.who {
            Who::User { name, key, .. } => (Some(name.as_str()), *key, None),
            Who::Link { image, expires_at } => {
                let at = std::time::UNIX_EPOCH
                    + std::time::Duration::from_secs((*expires_at).max(0) as u64);
                let until = humantime::format_rfc3339_seconds(at);
                (None, None, Some(format!("{image} until {until}")))
            }
            Who::Open | Who::Anonymous => (None, None, None),
        };
        let address = caller.address.map(|a| a.to_string());
        let entry = NewAuditEntry {
            user,
            key_id,
            link: link.as_deref(),
            address: address.as_deref(),
            action: action.name(),
            object_kind: action.object_kind(),
            object_id: object,
            detail,
        };
        if let Err(e) = self.audit.record(&entry).await {
            tracing::error!(
                action = action.name(),
                object,
                "the audit trail misses an action: {e}"
            );
        }
    }

    /// A page of the audit trail, newest first (admin).
    pub async fn audit_trail(
        &self,
        caller: &Caller,
        search: &AuditSearch,
    ) -> Result<Listing<AuditRecord>, AppError> {
        caller.require(Scope::Admin)?;
        let limit = limit(search.limit.as_deref())?;
        let action = search
            .action
            .as_deref()
            .map(|a| {
                Action::ALL
                    .iter()
                    .find(|known| known.name() == a)
                    .map(|known| known.name().to_string())
                    .ok_or_else(|| {
                        let names: Vec<&str> = Action::ALL.iter().map(|k| k.name()).collect();
                        invalid(format!(
                            "action must be one of {}; got {a:?}",
                            names.join(", ")
                        ))
                    })
            })
            .transpose()?;
        let object_kind = search
            .kind
            .as_deref()
            .map(|k| {
                OBJECT_KINDS
                    .iter()
                    .find(|known| **known == k)
                    .map(|known| known.to_string())
                    .ok_or_else(|| {
                        invalid(format!(
                            "kind must be one of {}; got {k:?}",
                            OBJECT_KINDS.join(", ")
                        ))
                    })
            })
            .transpose()?;
        let text = |value: &Option<String>, parameter| {
            value
                .as_deref()
                .map(|v| filter_text(v, parameter))
                .transpose()
        };
        let time = |value: &Option<String>, parameter| {
            value
                .as_deref()
                .map(|t| time_bound(t, parameter))
                .transpose()
        };
        let query = AuditQuery {
            user: text(&search.user, "user")?,
            action,
            object_kind,
            object_id: text(&search.object, "object")?,
            after: time(&search.after, "after")?,
            before: time(&search.before, "before")?,
            below_id: None,
            limit: 0,
        };
        // the page size may change from page to page
        let digest = query_digest(&format!("audit\n{query:?}"));
        let below_id = self
            .after(search.cursor.as_deref(), &digest)
            .await?
            .map(|after| after.id);
        let page = self
            .audit
            .query_audit(&AuditQuery {
                below_id,
                limit,
                ..query
            })
            .await?;
        self.listing(page, &digest, |last| (SortKey::Int(last.id), last.id))
            .await
    }

    /// Forgets the actions older than the retention; returns how many.
    pub async fn sweep_audit(&self) -> Result<u64, AppError> {
        let Some(retention) = self.config.audit_retention else {
            return Ok(0);
        };
        let cutoff = std::time::SystemTime::now()
            .checked_sub(retention)
            .unwrap_or(std::time::UNIX_EPOCH);
        let cutoff = humantime::format_rfc3339_millis(cutoff).to_string();
        Ok(self.audit.forget_audit_before(&cutoff).await?)
    }
}
