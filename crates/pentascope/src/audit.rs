//! `pentascope audit`: the audit trail, as `GET /admin/audit` pages it,
//! for the operator on the server's machine: one line per action, or one
//! JSON object per line (`--json`).

use std::sync::Arc;

use clap::Args;
use pentascope_app::audit::AuditSearch;
use pentascope_app::jobs::InProcessQueue;
use pentascope_app::{App, Caller};
use pentascope_store::records::AuditRecord;

use crate::StoreSettings;

/// Arguments of `pentascope audit`.
#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    /// Only this user's actions.
    #[arg(long)]
    user: Option<String>,
    /// Only this action (image.upload, image.delete, image.update,
    /// image.rendering, image.visibility, link.create, token.create,
    /// token.revoke, user.create, dataset.create, dataset.update,
    /// dataset.delete, dataset.link, dataset.unlink, job.submit).
    #[arg(long)]
    action: Option<String>,
    /// Only actions on this kind of object: image, dataset, token, user,
    /// job.
    #[arg(long)]
    kind: Option<String>,
    /// Only actions on this object (image_5, dataset_2, a key's number, a
    /// user's name, a job's id).
    #[arg(long)]
    object: Option<String>,
    /// Only actions at or after this time (RFC 3339 in UTC, or a date).
    #[arg(long)]
    after: Option<String>,
    /// Only actions before this time.
    #[arg(long)]
    before: Option<String>,
    /// Most actions shown (newest first).
    #[arg(long, default_value_t = 100)]
    limit: u64,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    settings: StoreSettings,
}

/// Prints the newest `--limit` actions that match, newest first.
pub async fn run(args: AuditArgs) -> Result<(), String> {
    let app = App::open(args.settings.config(), Arc::new(InProcessQueue::default()))
        .await
        .map_err(|e| e.to_string())?;
    let mut search = AuditSearch {
        user: args.user,
        action: args.action,
        kind: args.kind,
        object: args.object,
        after: args.after,
        before: args.before,
        ..AuditSearch::default()
    };
    let mut left = args.limit;
    while left > 0 {
        search.limit = Some(left.min(1000).to_string());
        let page = app
            .audit_trail(&Caller::OPEN, &search)
            .await
            .map_err(|e| e.to_string())?;
        for entry in &page.items {
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string(entry).map_err(|e| e.to_string())?
                );
            } else {
                println!("{}", line(entry));
            }
        }
        left = left.saturating_sub(page.items.len() as u64);
        match page.next_cursor {
            Some(cursor) => search.cursor = Some(cursor),
            None => break,
        }
    }
    Ok(())
}

/// `time  who  action  kind object  detail`.
fn line(e: &AuditRecord) -> String {
    let mut who = e.user.clone().unwrap_or_else(|| match &e.link {
        Some(link) => format!("link {link}"),
        None => "-".into(),
    });
    if let Some(key) = e.key_id {
        who.push_str(&format!(" (key {key})"));
    }
    let from = e.address.as_deref().unwrap_or("command line");
    format!(
        "{}  {who}  from {from}  {}  {} {}  {}",
        e.at, e.action, e.object_kind, e.object_id, e.detail
    )
    .trim_end()
    .to_string()
}
