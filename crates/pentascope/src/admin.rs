//! `pentascope user …` and `pentascope token …`: what a lab admin runs on
//! the server's machine (with the server's database settings) to give
//! people keys. The same use cases answer `/admin/users` and
//! `/admin/tokens` over HTTP.

use std::sync::Arc;

use clap::{Args, Subcommand};
use pentascope_app::jobs::InProcessQueue;
use pentascope_app::{App, Caller};
use pentascope_store::records::{Scope, TokenRecord};

use crate::StoreSettings;

/// `pentascope user`.
#[derive(Debug, Clone, Args)]
pub struct UserArgs {
    #[command(subcommand)]
    action: UserAction,
}

#[derive(Debug, Clone, Subcommand)]
enum UserAction {
    /// Create a user.
    Create {
        /// The user's name (letters, digits, '.', '_', '-', '@').
        name: String,
        /// May hold admin keys (users, keys, every image).
        #[arg(long)]
        admin: bool,
        #[command(flatten)]
        settings: StoreSettings,
    },
    /// List users.
    List {
        #[command(flatten)]
        settings: StoreSettings,
    },
}

/// `pentascope token`.
#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    action: TokenAction,
}

#[derive(Debug, Clone, Subcommand)]
enum TokenAction {
    /// Create an API key and print it (once: only its hash is kept).
    Create {
        /// The user the key acts for.
        #[arg(long)]
        user: String,
        /// read (GET routes), write (also upload, analyze, delete own
        /// images) or admin (also users, keys, every image).
        #[arg(long, value_parser = ["read", "write", "admin"])]
        scope: String,
        /// Lifetime, e.g. 90d, 12h; default: until revoked.
        #[arg(long)]
        expires: Option<String>,
        /// A label to recognise the key by.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        settings: StoreSettings,
    },
    /// List keys (never their secrets).
    List {
        /// Only this user's keys.
        #[arg(long)]
        user: Option<String>,
        #[command(flatten)]
        settings: StoreSettings,
    },
    /// Revoke a key: refused from the next request on.
    Revoke {
        /// The key's id (the number in ps_<id>_…).
        id: i64,
        #[command(flatten)]
        settings: StoreSettings,
    },
}

async fn open(settings: &StoreSettings) -> Result<Arc<App>, String> {
    Ok(Arc::new(
        App::open(settings.config(), Arc::new(InProcessQueue::default()))
            .await
            .map_err(|e| e.to_string())?,
    ))
}

/// Runs `pentascope user …` as the local operator.
pub async fn user(args: UserArgs) -> Result<(), String> {
    let (UserAction::Create { settings, .. } | UserAction::List { settings }) = &args.action;
    let app = open(settings).await?;
    match args.action {
        UserAction::Create { name, admin, .. } => {
            let user = app
                .create_user(&Caller::OPEN, &name, admin)
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "created user {} (id {}{})",
                user.name,
                user.id,
                if user.admin { ", admin" } else { "" }
            );
        }
        UserAction::List { .. } => {
            let users = app.users(&Caller::OPEN).await.map_err(|e| e.to_string())?;
            println!("{:<6} {:<24} {:<6} created", "id", "name", "admin");
            for u in users {
                println!(
                    "{:<6} {:<24} {:<6} {}",
                    u.id,
                    u.name,
                    if u.admin { "yes" } else { "no" },
                    u.created_at
                );
            }
        }
    }
    Ok(())
}

/// Runs `pentascope token …` as the local operator.
pub async fn token(args: TokenArgs) -> Result<(), String> {
    let (TokenAction::Create { settings, .. }
    | TokenAction::List { settings, .. }
    | TokenAction::Revoke { settings, .. }) = &args.action;
    let app = open(settings).await?;
    let open = Caller::OPEN;
    match args.action {
        TokenAction::Create {
            user,
            scope,
            expires,
            name,
            ..
        } => {
            let scope = Scope::parse(&scope).ok_or("scope must be read, write or admin")?;
            let expires = expires
                .as_deref()
                .map(|e| {
                    pentascope_app::parse_lifetime(e).ok_or_else(|| {
                        format!("--expires must be a whole number of days, hours, minutes or seconds such as 90d, 12h or 30m, got {e:?}")
                    })
                })
                .transpose()?;
            let created = app
                .create_token(&open, &user, scope, expires, name.as_deref())
                .await
                .map_err(|e| e.to_string())?;
            eprintln!(
                "key {} for {} (scope {}, {}); shown once, keep it safe:",
                created.record.id,
                created.record.user,
                scope.as_str(),
                expiry(&created.record)
            );
            println!("{}", created.key);
        }
        TokenAction::List { user, .. } => {
            let tokens = app
                .tokens(&open, user.as_deref())
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "{:<6} {:<16} {:<6} {:<16} {:<26} {:<26} state",
                "id", "user", "scope", "name", "last used", "expires"
            );
            for t in tokens {
                println!(
                    "{:<6} {:<16} {:<6} {:<16} {:<26} {:<26} {}",
                    t.id,
                    t.user,
                    t.scope.as_str(),
                    t.name.as_deref().unwrap_or("-"),
                    t.last_used.as_deref().unwrap_or("never"),
                    expiry(&t),
                    if t.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "active"
                    }
                );
            }
        }
        TokenAction::Revoke { id, .. } => {
            let t = app
                .revoke_token(&open, id)
                .await
                .map_err(|e| e.to_string())?;
            println!("revoked key {} of {}", t.id, t.user);
        }
    }
    Ok(())
}

fn expiry(t: &TokenRecord) -> String {
    match t.expires_at {
        Some(at) => {
            let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(at.max(0) as u64);
            format!("expires {}", humantime::format_rfc3339_seconds(at))
        }
        None => "no expiry".into(),
    }
}
