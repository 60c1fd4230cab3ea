//! Access control: who is calling ([`Caller`]), what they may see and do,
//! API keys and signed links. Every use case that touches an image takes
//! the caller and asks it; front doors only say who is calling.
//!
//! Keys are `ps_<id>_<secret>` with 32 random bytes of secret; the database
//! keeps the secret's SHA-256 only, compared in constant time. A signed
//! link is `<image_id>.<expiry>.<signature>`, an HMAC-SHA256 over the
//! image, the scope `read` and the expiry with the server's link key.

use std::net::IpAddr;
use std::time::Duration;

use hmac::{Hmac, Mac};
use pentascope_store::record::now_rfc3339;
use pentascope_store::records::jobs::unix_now;
use pentascope_store::records::{NewToken, Scope, TokenRecord, UserRecord};
use pentascope_store::{ImageId, ImageRecord, StoreError};
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::app::App;
use crate::audit::Action;
use crate::error::AppError;

/// Whether requests must present a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Every request may do everything (a laptop, a trusted network).
    Off,
    /// Every route but the public ones needs a key or a signed link.
    Required,
}

impl AuthMode {
    /// Parses `off` or `required`.
    pub fn parse(s: &str) -> Option<AuthMode> {
        match s {
            "off" => Some(AuthMode::Off),
            "required" => Some(AuthMode::Required),
            _ => None,
        }
    }

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::Off => "off",
            AuthMode::Required => "required",
        }
    }
}

/// Who is calling a use case, and from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Whose rights the call has.
    pub who: Who,
    /// The client's address, for the audit trail; `None` for the command
    /// line and jobs.
    pub address: Option<IpAddr>,
}

/// Whose rights a call has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// Access control is off, or the caller is the local operator (the
    /// command line): everything is allowed and nothing is owned.
    Open,
    /// No credentials, with access control required.
    Anonymous,
    /// A user, by an API key or as whom a job acts.
    User {
        /// The user.
        name: String,
        /// What the key may do.
        scope: Scope,
        /// The key's id (`None`: acting for the user without a key).
        key: Option<i64>,
    },
    /// A signed link: reading one image.
    Link {
        /// The image it opens.
        image: ImageId,
        /// When it stops working (seconds since the Unix epoch).
        expires_at: i64,
    },
}

impl Caller {
    /// The local operator (the command line), or anyone with access
    /// control off when the address is unknown.
    pub const OPEN: Caller = Caller {
        who: Who::Open,
        address: None,
    };

    /// `who`, calling from nowhere in particular.
    pub fn new(who: Who) -> Caller {
        Caller { who, address: None }
    }

    /// The same caller, calling from `address`.
    pub fn at_address(self, address: Option<IpAddr>) -> Caller {
        Caller { address, ..self }
    }

    /// Whether the caller holds at least `scope`.
    pub fn has(&self, scope: Scope) -> bool {
        match &self.who {
            Who::Open => true,
            Who::User { scope: held, .. } => *held >= scope,
            Who::Link { .. } => scope == Scope::Read,
            Who::Anonymous => false,
        }
    }

    /// Refuses a caller without `scope` (403; 401 for no credentials).
    pub fn require(&self, scope: Scope) -> Result<(), AppError> {
        if self.has(scope) {
            return Ok(());
        }
        Err(match &self.who {
            Who::Anonymous => AppError::Unauthenticated(format!(
                "this needs an API key with scope {}: send Authorization: Bearer <key>",
                scope.as_str()
            )),
            Who::Link { .. } => {
                AppError::Forbidden("a signed link only reads the image it was made for".into())
            }
            Who::User { scope: held, .. } => AppError::Forbidden(format!(
                "this needs scope {}; the key has scope {}",
                scope.as_str(),
                held.as_str()
            )),
            Who::Open => unreachable!("an open caller has every scope"),
        })
    }

    /// The owner recorded on what this caller creates.
    pub fn owner(&self) -> Option<&str> {
        match &self.who {
            Who::User { name, .. } => Some(name),
            _ => None,
        }
    }

    /// Whether the caller may read an image.
    pub fn can_read(&self, r: &ImageRecord) -> bool {
        match &self.who {
            Who::Open => true,
            Who::Anonymous => false,
            Who::Link { image, .. } => *image == r.id,
            Who::User { name, scope, .. } => {
                *scope == Scope::Admin || r.public || r.owner.as_deref() == Some(name)
            }
        }
    }

    /// Whether the caller may change what `owner` owns (an image's
    /// visibility, a dataset, a job's result): its owner with a write key,
    /// or an admin.
    pub fn may_change(&self, owner: Option<&str>) -> bool {
        match &self.who {
            Who::Open => true,
            Who::User { name, scope, .. } => {
                *scope == Scope::Admin || *scope == Scope::Write && owner == Some(name)
            }
            Who::Anonymous | Who::Link { .. } => false,
        }
    }

    /// Whether the caller may delete an image or change its visibility.
    pub fn can_modify(&self, r: &ImageRecord) -> bool {
        self.may_change(r.owner.as_deref())
    }
}

/// A key as `token create` answers it: its record and, this once, the key.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct CreatedToken {
    /// The key's record.
    #[serde(flatten)]
    pub record: TokenRecord,
    /// `ps_<id>_<secret>`: shown once, never stored.
    pub key: String,
}

/// A signed link.
#[derive(Debug, Clone, Serialize)]
pub struct SignedLink {
    /// The image it opens.
    pub image_id: ImageId,
    /// The path segment that carries it: `/s/<token>/`.
    pub token: String,
    /// When it stops working (RFC 3339).
    pub expires_at: String,
}

/// Longest lifetime of a signed link.
pub const MAX_LINK_SECS: u64 = 30 * 24 * 3600;

const LINK_KEY_SETTING: &str = "link_signing_key";

type HmacSha256 = Hmac<Sha256>;

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn random_hex(bytes: usize) -> Result<String, AppError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| AppError::Internal(format!("no random numbers: {e}")))?;
    Ok(hex::encode(buf))
}

/// A user or key name: 1 to 64 letters, digits, `.`, `_`, `-`, `@`.
fn check_name(what: &str, name: &str) -> Result<(), AppError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(AppError::InvalidArguments(format!(
            "{what} {name:?}: use 1 to 64 letters, digits, '.', '_', '-' or '@'"
        )))
    }
}

impl App {
    /// Who sends `authorization` (the header's value, if any). With access
    /// control off everyone is [`Caller::OPEN`]. A key that is unknown,
    /// revoked, expired or malformed is refused at once (401).
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Caller, AppError> {
        if self.config.auth() == AuthMode::Off {
            return Ok(Caller::OPEN);
        }
        let Some(header) = authorization else {
            return Ok(Caller::new(Who::Anonymous));
        };
        let invalid = |why: &str| AppError::Unauthenticated(format!("invalid API key: {why}"));
        // the scheme is case-insensitive (RFC 9110)
        let key = header
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, key)| key.trim())
            .ok_or_else(|| invalid("send Authorization: Bearer ps_<id>_<secret>"))?;
        let (id, secret) = key
            .strip_prefix("ps_")
            .and_then(|rest| rest.split_once('_'))
            .ok_or_else(|| invalid("a key looks like ps_<id>_<secret>"))?;
        let id: i64 = id
            .parse()
            .map_err(|_| invalid("a key looks like ps_<id>_<secret>"))?;
        let token = self
            .access
            .token(id)
            .await?
            .ok_or_else(|| invalid("unknown key"))?;
        let hash = sha256_hex(secret.as_bytes());
        if !bool::from(hash.as_bytes().ct_eq(token.secret_sha256.as_bytes())) {
            return Err(invalid("unknown key"));
        }
        if token.revoked_at.is_some() {
            return Err(AppError::Unauthenticated(format!(
                "API key {id} was revoked"
            )));
        }
        if token.expires_at.is_some_and(|at| at <= unix_now()) {
            return Err(AppError::Unauthenticated(format!(
                "API key {id} has expired"
            )));
        }
        // a write per request would cost more than the request; a minute's
        // precision is what `token list` needs
        let stale = token.last_used.as_deref().is_none_or(|used| {
            humantime::parse_rfc3339(used).map_or(true, |t| {
                t.elapsed().unwrap_or_default() > Duration::from_secs(60)
            })
        });
        if stale {
            self.access.touch_token(id).await?;
        }
        // an admin key of a user who is no longer an admin acts as write
        let scope = if token.scope == Scope::Admin && !token.user_admin {
            Scope::Write
        } else {
            token.scope
        };
        Ok(Caller::new(Who::User {
            name: token.user,
            scope,
            key: Some(id),
        }))
    }

    /// The caller a signed link token stands for; 401 if it is tampered
    /// with or expired.
    pub async fn authenticate_link(&self, token: &str) -> Result<Caller, AppError> {
        let invalid = |why: &str| AppError::Unauthenticated(format!("invalid signed link: {why}"));
        let mut parts = token.split('.');
        let (Some(image), Some(expiry), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid("malformed"));
        };
        let image: ImageId = image.parse().map_err(|_| invalid("malformed"))?;
        let expires_at: i64 = expiry.parse().map_err(|_| invalid("malformed"))?;
        let signature = hex::decode(signature).map_err(|_| invalid("malformed"))?;
        self.link_mac(image, expires_at)
            .await?
            .verify_slice(&signature)
            .map_err(|_| invalid("bad signature"))?;
        if expires_at <= unix_now() {
            return Err(AppError::Unauthenticated(
                "this signed link has expired; ask its owner for a new one".into(),
            ));
        }
        Ok(Caller::new(Who::Link { image, expires_at }))
    }

    /// A link that lets anyone holding it read image `id` for
    /// `expires_in` (at most [`MAX_LINK_SECS`]).
    pub async fn create_link(
        &self,
        caller: &Caller,
        id: &str,
        expires_in: u64,
    ) -> Result<SignedLink, AppError> {
        caller.require(Scope::Write)?;
        let record = self.image(caller, id).await?;
        if !(1..=MAX_LINK_SECS).contains(&expires_in) {
            return Err(AppError::InvalidArguments(format!(
                "expires_in must be 1 to {MAX_LINK_SECS} seconds (30 days), got {expires_in}"
            )));
        }
        let expires_at = unix_now().saturating_add(expires_in as i64);
        let signature = self
            .link_mac(record.id, expires_at)
            .await?
            .finalize()
            .into_bytes();
        let at = std::time::UNIX_EPOCH + Duration::from_secs(expires_at as u64);
        let until = humantime::format_rfc3339_seconds(at).to_string();
        self.audit(
            caller,
            Action::LinkCreate,
            &record.id.to_string(),
            &format!("until {until}"),
        )
        .await;
        Ok(SignedLink {
            image_id: record.id,
            token: format!("{}.{expires_at}.{}", record.id, hex::encode(signature)),
            expires_at: until,
        })
    }

    async fn link_mac(&self, image: ImageId, expires_at: i64) -> Result<HmacSha256, AppError> {
        let mut mac = self.server_mac("pentascope-link-v1").await?;
        mac.update(format!("\n{image}\nread\n{expires_at}").as_bytes());
        Ok(mac)
    }

    /// A MAC keyed with the server's key (configured, or generated once and
    /// kept in the database), begun with `domain` so that what one use signs
    /// is no signature for another.
    pub(crate) async fn server_mac(&self, domain: &str) -> Result<HmacSha256, AppError> {
        let key = match &self.config.secret_key {
            Some(key) => key.clone(),
            None => self
                .link_key
                .get_or_try_init(|| async {
                    let fresh = random_hex(32)?;
                    Ok::<_, AppError>(
                        self.access
                            .setting_or_init(LINK_KEY_SETTING, &fresh)
                            .await?,
                    )
                })
                .await?
                .clone(),
        };
        let mut mac = HmacSha256::new_from_slice(key.as_bytes())
            .map_err(|e| AppError::Internal(e.to_string()))?;
        mac.update(domain.as_bytes());
        Ok(mac)
    }

    /// The caller that acts for user `name` without a key (a job, the
    /// command line's `--owner`): an admin keeps admin rights, anyone else
    /// writes.
    pub async fn act_as(&self, name: &str) -> Result<Caller, AppError> {
        let user = self.access.user(name).await?.ok_or_else(|| {
            AppError::InvalidArguments(format!(
                "{name:?} is not a user (pentascope user create {name})"
            ))
        })?;
        Ok(Caller::new(Who::User {
            name: user.name,
            scope: if user.admin {
                Scope::Admin
            } else {
                Scope::Write
            },
            key: None,
        }))
    }

    /// Creates a user (admin).
    pub async fn create_user(
        &self,
        caller: &Caller,
        name: &str,
        admin: bool,
    ) -> Result<UserRecord, AppError> {
        caller.require(Scope::Admin)?;
        check_name("user name", name)?;
        let user = self
            .access
            .create_user(name, admin)
            .await?
            .ok_or_else(|| AppError::Conflict(format!("user {name:?} already exists")))?;
        let detail = if admin { "admin" } else { "" };
        self.audit(caller, Action::UserCreate, name, detail).await;
        Ok(user)
    }

    /// Every user (admin).
    pub async fn users(&self, caller: &Caller) -> Result<Vec<UserRecord>, AppError> {
        caller.require(Scope::Admin)?;
        Ok(self.access.users().await?)
    }

    /// Creates an API key for `user` (admin); the key is in the answer
    /// and nowhere else.
    pub async fn create_token(
        &self,
        caller: &Caller,
        user: &str,
        scope: Scope,
        expires_in: Option<Duration>,
        label: Option<&str>,
    ) -> Result<CreatedToken, AppError> {
        caller.require(Scope::Admin)?;
        if let Some(label) = label {
            check_name("key name", label)?;
        }
        let owner = self
            .access
            .user(user)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no user {user:?}")))?;
        if scope == Scope::Admin && !owner.admin {
            return Err(AppError::InvalidArguments(format!(
                "user {user:?} is not an admin; admin keys are for admins \
                 (pentascope user create NAME --admin)"
            )));
        }
        let expires_at = expires_in
            .map(|d| {
                i64::try_from(d.as_secs())
                    .ok()
                    .and_then(|s| unix_now().checked_add(s))
                    .ok_or_else(|| AppError::InvalidArguments("expiry too far away".into()))
            })
            .transpose()?;
        let secret = random_hex(32)?;
        let id = self
            .access
            .create_token(&NewToken {
                user_id: owner.id,
                name: label,
                scope,
                secret_sha256: &sha256_hex(secret.as_bytes()),
                expires_at,
            })
            .await?;
        let record = self
            .access
            .token(id)
            .await?
            .ok_or_else(|| AppError::Internal(format!("key {id} vanished")))?;
        let detail = format!("for {user}, scope {}", scope.as_str());
        self.audit(caller, Action::TokenCreate, &id.to_string(), &detail)
            .await;
        Ok(CreatedToken {
            record,
            key: format!("ps_{id}_{secret}"),
        })
    }

    /// Every key, or one user's (admin); secrets are never shown.
    pub async fn tokens(
        &self,
        caller: &Caller,
        user: Option<&str>,
    ) -> Result<Vec<TokenRecord>, AppError> {
        caller.require(Scope::Admin)?;
        Ok(self.access.tokens(user).await?)
    }

    /// Revokes a key (admin): refused from the next request on.
    pub async fn revoke_token(&self, caller: &Caller, id: i64) -> Result<TokenRecord, AppError> {
        caller.require(Scope::Admin)?;
        let token = self
            .access
            .token(id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("API key {id} not found")))?;
        if token.revoked_at.is_none() && self.access.revoke_token(id).await? {
            let detail = format!("of {}", token.user);
            self.audit(caller, Action::TokenRevoke, &id.to_string(), &detail)
                .await;
        }
        Ok(TokenRecord {
            revoked_at: Some(token.revoked_at.unwrap_or_else(now_rfc3339)),
            ..token
        })
    }

    /// Makes an image (and the images derived from it) readable by every
    /// user, or only by its owner (owner or admin).
    pub async fn set_public(
        &self,
        caller: &Caller,
        id: &str,
        public: bool,
    ) -> Result<ImageRecord, AppError> {
        caller.require(Scope::Write)?;
        let record = self.image_to_modify(caller, id).await?;
        if !self.access.set_public(record.id, public).await? {
            return Err(StoreError::NotFound(record.id.to_string()).into());
        }
        let detail = if public { "public" } else { "private" };
        self.audit(
            caller,
            Action::ImageVisibility,
            &record.id.to_string(),
            detail,
        )
        .await;
        self.image(caller, id).await
    }
}

/// A key's lifetime as people write it: a positive whole number of days,
/// hours, minutes or seconds (`90d`, `12h`, `30m`, `45s`), at most 999,999
/// of them, without leading zeros.
pub fn parse_lifetime(text: &str) -> Option<Duration> {
    let (at, _) = text.char_indices().next_back()?;
    let (count, unit) = text.split_at(at);
    if count.is_empty()
        || count.len() > 6
        || count.starts_with('0')
        || !count.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let count: u64 = count.parse().ok().filter(|&n| n > 0)?;
    let seconds = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" => 1,
        _ => return None,
    };
    Some(Duration::from_secs(count * seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_are_whole_days_hours_or_minutes() {
        assert_eq!(
            parse_lifetime("90d"),
            Some(Duration::from_secs(90 * 86_400))
        );
        assert_eq!(parse_lifetime("12h"), Some(Duration::from_secs(12 * 3_600)));
        assert_eq!(parse_lifetime("30m"), Some(Duration::from_secs(1_800)));
        assert_eq!(parse_lifetime("2s"), Some(Duration::from_secs(2)));
        for refused in [
            "", "d", "0d", "01d", "1.5h", "-1d", "90", "1w", "1234567d", "5é", "é", " 1d",
        ] {
            assert_eq!(parse_lifetime(refused), None, "{refused:?}");
        }
    }
}
