//! The breakglass service: creating an entry at login, and granting access
//! (`getBreakglassCredentials(connection, admin, justification)` in the plan) only when all
//! hold: the kill switch `VERCEL_BREAKGLASS_ENABLED=true`; an admin role; a justification of
//! real content; an active, unexpired, unrestricted entry under its use limit (counted
//! atomically). Every attempt is audited; a grant's record is written before anything is
//! revealed, and an access that cannot be audited is denied.

mod answer;
mod request;

use std::time::Duration;

use super::audit::{AuditRecord, Outcome};
use super::connection::Connection;
use super::entry::{BreakglassEntry, Storage};
use super::keys::Keyring;
use super::store::{BreakglassStore, BreakglassStoreError, Reservation};
use super::vault;
use super::VaultError;
use crate::clock::now_ms;
use crate::log::{LogEntry, Logger, Severity, Tier};
use crate::secret::Secret;
pub use answer::{Denial, Grant};
use request::is_connection_id;
pub use request::{justification_problem, Requester, MIN_JUSTIFICATION};

/// How long an entry allows access after the login that made it (the plan's 24 h).
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// Uses per entry (the plan's 10).
pub const DEFAULT_MAX_USES: u32 = 10;

/// Why an entry could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("no breakglass copy was made: BREAKGLASS_KEY is not set (or set BREAKGLASS_STORAGE=plaintext, which the screen warns about)")]
    NoKey,
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Store(#[from] BreakglassStoreError),
}

pub struct Breakglass {
    /// `VERCEL_BREAKGLASS_ENABLED=true`
    pub enabled: bool,
    pub storage: Storage,
    keys: Option<Keyring>,
    store: BreakglassStore,
    /// Where the `VERCEL_BREAKGLASS_ACCESS` entry of a grant goes (and the alerting engine).
    logger: Option<Logger>,
    pub ttl: Duration,
    pub max_uses: u32,
}

impl Breakglass {
    pub fn new(
        enabled: bool,
        storage: Storage,
        keys: Option<Keyring>,
        store: BreakglassStore,
        logger: Option<Logger>,
    ) -> Self {
        Breakglass {
            enabled,
            storage,
            keys,
            store,
            logger,
            ttl: DEFAULT_TTL,
            max_uses: DEFAULT_MAX_USES,
        }
    }

    pub fn store(&self) -> &BreakglassStore {
        &self.store
    }

    /// The entry of a login (replacing the connection's previous one): the emergency copy of
    /// `access` and `refresh`, sealed with the breakglass key.
    pub async fn create_entry(
        &self,
        connection: &Connection,
        access: &Secret,
        refresh: Option<&Secret>,
        reason: &str,
        admin: Option<&str>,
    ) -> Result<BreakglassEntry, EntryError> {
        let id = &connection.connection_id;
        let (access_copy, refresh_copy) = match (self.storage, &self.keys) {
            (Storage::Plaintext, _) => (
                access.expose().to_owned(),
                refresh.map(|r| r.expose().to_owned()),
            ),
            (Storage::Sealed, Some(keys)) => {
                vault::seal_tokens(keys, vault::BREAKGLASS, id, access, refresh)?
            }
            (Storage::Sealed, None) => return Err(EntryError::NoKey),
        };
        let now = now_ms();
        let entry = BreakglassEntry {
            id: format!("bg_{}", ulid::Ulid::new().to_string().to_lowercase()),
            connection_id: id.clone(),
            user_id: connection.user_id.clone(),
            access_token: access_copy,
            refresh_token: refresh_copy,
            storage: self.storage,
            team_id: connection.team_id.clone(),
            team_name: connection.team_name.clone(),
            vercel_project_id: connection.project_ids.first().cloned(),
            created_by_admin_id: admin.map(str::to_owned),
            reason: reason.to_owned(),
            justification: None,
            expires_at: now + self.ttl.as_millis() as i64,
            accessed_at: None,
            access_count: 0,
            max_access_count: self.max_uses,
            is_active: true,
            access_restricted_until: None,
            created_at: now,
            updated_at: now,
        };
        self.store.put_entry(&entry).await?;
        Ok(entry.public())
    }

    /// Every entry without its tokens, newest first; expired ones are made inactive first.
    pub async fn entries(&self) -> Result<Vec<BreakglassEntry>, BreakglassStoreError> {
        let (entries, _) = self.read_and_sweep(now_ms()).await?;
        Ok(entries.iter().map(BreakglassEntry::public).collect())
    }

    /// Seals every emergency copy again with the newest breakglass key: how many, and the
    /// connections whose copy could not be opened.
    pub async fn reseal_copies(&self) -> Result<(usize, Vec<(String, String)>), EntryError> {
        let Some(keys) = &self.keys else {
            return Err(EntryError::NoKey);
        };
        let mut resealed = 0;
        let mut problems = Vec::new();
        for mut entry in self.store.entries().await? {
            if entry.storage != Storage::Sealed {
                continue;
            }
            let id = entry.connection_id.clone();
            let copy = self.open_copy(&entry).map_err(|denial| denial.to_string());
            let sealed = copy.and_then(|(access, refresh)| {
                vault::seal_tokens(keys, vault::BREAKGLASS, &id, &access, refresh.as_ref())
                    .map_err(|e| e.to_string())
            });
            match sealed {
                Ok((access, refresh)) => {
                    entry.access_token = access;
                    entry.refresh_token = refresh;
                    entry.updated_at = now_ms();
                    if self.store.update_entry(&entry).await? {
                        resealed += 1;
                    }
                }
                Err(problem) => problems.push((id, problem)),
            }
        }
        Ok((resealed, problems))
    }

    /// Marks expired entries inactive; how many.
    pub async fn sweep(&self, now: i64) -> Result<usize, BreakglassStoreError> {
        self.read_and_sweep(now).await.map(|(_, swept)| swept)
    }

    /// Every entry, read once, expired ones made inactive on the way; and how many were.
    async fn read_and_sweep(
        &self,
        now: i64,
    ) -> Result<(Vec<BreakglassEntry>, usize), BreakglassStoreError> {
        let mut entries = self.store.entries().await?;
        let mut swept = 0;
        for entry in &mut entries {
            if self.deactivate_if_expired(entry, now).await? {
                swept += 1;
            }
        }
        Ok((entries, swept))
    }

    /// Makes an active entry past its expiry inactive, in the store too unless a login has
    /// replaced it meanwhile; true if it did.
    async fn deactivate_if_expired(
        &self,
        entry: &mut BreakglassEntry,
        now: i64,
    ) -> Result<bool, BreakglassStoreError> {
        if !entry.is_active || now < entry.expires_at {
            return Ok(false);
        }
        entry.is_active = false;
        entry.updated_at = now;
        self.store.update_entry(entry).await
    }

    /// The audit trail, newest first.
    /// The newest `limit` records; on files sealed with `BREAKGLASS_KEY`, only after the whole
    /// chain checks out (a broken one raises the alarm).
    pub async fn audit(&self, limit: usize) -> Result<Vec<AuditRecord>, BreakglassStoreError> {
        let records = self.store.audit(limit).await;
        if let Err(err @ BreakglassStoreError::Tampered(_)) = &records {
            self.alarm(&err.to_string());
        }
        records
    }

    /// A critical `breakglass_access` entry: the store was tampered with.
    fn alarm(&self, reason: &str) {
        if let Some(logger) = &self.logger {
            logger.write(LogEntry::new(
                Tier::System,
                Severity::Critical,
                "breakglass_access",
                format!("VERCEL_BREAKGLASS_ACCESS: {reason}"),
            ));
        }
    }

    /// What keeps people out: the files' owner and key, or Redis's ACL users.
    pub fn boundary(&self) -> super::store::Boundary {
        self.store.boundary()
    }

    /// Recovers a connection's tokens, if every rule allows it. Audited either way.
    pub async fn request_access(
        &self,
        connection_id: &str,
        requester: &Requester,
        justification: &str,
    ) -> Result<Grant, Denial> {
        let result = self
            .try_access(connection_id, requester, justification)
            .await;
        if let Err(Denial::Tampered { reason }) = &result {
            self.alarm(reason);
        }
        if let Err(denial) = &result {
            // A denial is recorded too; if even that fails the answer stays no.
            let record = self.record(
                connection_id,
                requester,
                justification,
                Outcome::Denied,
                denial.to_string(),
            );
            if let Err(err) = self.store.append_audit(&record).await {
                tracing::warn!(error = %err, "could not audit a denied breakglass request");
            }
            tracing::warn!(connection_id, user = %requester.user, %denial, "breakglass denied");
        }
        result
    }

    async fn try_access(
        &self,
        connection_id: &str,
        requester: &Requester,
        justification: &str,
    ) -> Result<Grant, Denial> {
        self.admit(requester, justification)?;
        let entry = self.usable_entry(connection_id).await?;
        let used = self.reserve(connection_id, &entry).await?;
        let revealed = self
            .reveal(connection_id, &entry, used, requester, justification)
            .await;
        let (checked, (access_token, refresh_token)) = match revealed {
            Ok(revealed) => revealed,
            Err(denial) => {
                if let Err(err) = self.store.release_use(connection_id, &entry.id).await {
                    tracing::warn!(error = %err, "could not give back an unused breakglass use");
                }
                return Err(denial);
            }
        };
        self.announce(&checked, requester, justification);
        Ok(Grant {
            connection_id: connection_id.to_owned(),
            access_token,
            refresh_token,
            team_id: checked.team_id.clone(),
            expires_at: checked.expires_at,
            uses_left: checked.max_access_count.saturating_sub(used),
            warning: "Emergency credentials: use them to restore access, then log in again and revoke these tokens.".to_owned(),
        })
    }

    /// The rules that need no store: the kill switch, the role, the justification.
    fn admit(&self, requester: &Requester, justification: &str) -> Result<(), Denial> {
        if !self.enabled {
            return Err(Denial::SwitchedOff);
        }
        if !requester.role.may_break_glass() {
            return Err(Denial::Role {
                role: requester.role.as_str(),
            });
        }
        match justification_problem(justification) {
            Some(problem) => Err(Denial::Justification { problem }),
            None => Ok(()),
        }
    }

    /// The connection's entry, if it may be used now.
    async fn usable_entry(&self, connection_id: &str) -> Result<BreakglassEntry, Denial> {
        let no_entry = || Denial::NoEntry {
            connection: connection_id.to_owned(),
        };
        if !is_connection_id(connection_id) {
            return Err(no_entry());
        }
        let entry = self
            .store
            .entry(connection_id)
            .await
            .map_err(store_denial)?
            .ok_or_else(no_entry)?;
        self.check_entry(&entry, now_ms()).await?;
        Ok(entry)
    }

    /// Takes one use of `entry`: which one it is.
    async fn reserve(&self, connection_id: &str, entry: &BreakglassEntry) -> Result<u32, Denial> {
        let reservation = self
            .store
            .reserve_use(
                connection_id,
                &entry.id,
                entry.max_access_count,
                entry.expires_at,
            )
            .await
            .map_err(store_denial)?;
        match reservation {
            Reservation::Reserved(used) => Ok(used),
            Reservation::LimitReached => Err(Denial::LimitReached {
                max: entry.max_access_count,
            }),
            Reservation::Replaced => Err(Denial::Changed),
        }
    }

    /// With use `used` of `reserved` taken: the entry read and checked again at the time now
    /// (it may have been deactivated, restricted, replaced or expired meanwhile), its copy
    /// opened in memory, and the grant audited. What is revealed is the entry checked here,
    /// and only once the audit record is written.
    async fn reveal(
        &self,
        connection_id: &str,
        reserved: &BreakglassEntry,
        used: u32,
        requester: &Requester,
        justification: &str,
    ) -> Result<(BreakglassEntry, (Secret, Option<Secret>)), Denial> {
        let checked = match self.store.entry(connection_id).await {
            Ok(Some(current)) if current.id == reserved.id => current,
            Ok(_) => return Err(Denial::Changed),
            Err(err) => return Err(store_denial(err)),
        };
        self.check_entry(&checked, now_ms()).await?;
        let tokens = self.open_copy(&checked)?;
        let record = self.record(
            connection_id,
            requester,
            justification,
            Outcome::Granted,
            format!("use {used} of {}", reserved.max_access_count),
        );
        self.store
            .append_audit(&record)
            .await
            .map_err(|err| match err {
                BreakglassStoreError::Tampered(_) => store_denial(err),
                err => Denial::AuditUnavailable {
                    reason: err.to_string(),
                },
            })?;
        Ok((checked, tokens))
    }

    /// Active, not expired, not restricted at `now`; an expired entry is made inactive.
    async fn check_entry(&self, entry: &BreakglassEntry, now: i64) -> Result<(), Denial> {
        let expired = || Denial::Expired {
            at: crate::log::entry::rfc3339(entry.expires_at),
        };
        if now >= entry.expires_at {
            let _ = self.deactivate_if_expired(&mut entry.clone(), now).await;
            return Err(expired());
        }
        if !entry.is_active {
            return Err(Denial::Inactive);
        }
        if let Some(until) = entry.access_restricted_until.filter(|until| now < *until) {
            return Err(Denial::Restricted {
                until: crate::log::entry::rfc3339(until),
            });
        }
        Ok(())
    }

    fn open_copy(&self, entry: &BreakglassEntry) -> Result<(Secret, Option<Secret>), Denial> {
        match entry.storage {
            Storage::Plaintext => Ok((
                Secret::new(entry.access_token.clone()),
                entry.refresh_token.clone().map(Secret::new),
            )),
            Storage::Sealed => {
                let keys = self.keys.as_ref().ok_or(Denial::CopyUnavailable {
                    reason: "BREAKGLASS_KEY is not set".to_owned(),
                })?;
                vault::open_tokens(
                    keys,
                    vault::BREAKGLASS,
                    &entry.connection_id,
                    &entry.access_token,
                    entry.refresh_token.as_deref(),
                )
                .map_err(|err| Denial::CopyUnavailable {
                    reason: err.to_string(),
                })
            }
        }
    }

    fn record(
        &self,
        connection_id: &str,
        requester: &Requester,
        justification: &str,
        outcome: Outcome,
        reason: String,
    ) -> AuditRecord {
        AuditRecord {
            at: now_ms(),
            admin_id: printable(&requester.user),
            role: requester.role.as_str().to_owned(),
            connection_id: printable(connection_id),
            justification: printable(justification.trim()),
            outcome,
            reason,
        }
    }

    /// The plan's `VERCEL_BREAKGLASS_ACCESS` system entry, which the `breakglass_access`
    /// rule turns into a critical alert.
    fn announce(&self, entry: &BreakglassEntry, requester: &Requester, justification: &str) {
        let Some(logger) = &self.logger else { return };
        let mut notice = LogEntry::new(
            Tier::System,
            Severity::Critical,
            "breakglass_access",
            format!(
                "VERCEL_BREAKGLASS_ACCESS: {} ({}) recovered the tokens of connection {}: {}",
                printable(&requester.user),
                requester.role.as_str(),
                entry.connection_id,
                printable(justification.trim())
            ),
        )
        .with_meta("connection_id", entry.connection_id.as_str())
        .with_meta("admin_id", requester.user.as_str());
        if let Some(team) = &entry.team_id {
            notice = notice.with_meta("vercel_team_id", team.as_str());
        }
        logger.write(notice);
    }
}

fn store_denial(err: BreakglassStoreError) -> Denial {
    match err {
        BreakglassStoreError::Tampered(_) => Denial::Tampered {
            reason: err.to_string(),
        },
        err => Denial::StoreUnavailable {
            reason: err.to_string(),
        },
    }
}

/// Text from a person, fit for an audit trail or a terminal: one line, no control characters.
fn printable(text: &str) -> String {
    crate::printable::one_line(text).into_owned()
}
