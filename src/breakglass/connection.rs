//! Connections: who logged in to which Vercel team, with their tokens sealed by the vault.
//! Kept in the ordinary state store (`connections:{id}`, and the index `connections`), which
//! every dashboard may read: the tokens in it are useless without `TOKEN_ENCRYPTION_KEY`.

use serde::{Deserialize, Serialize};

use super::keys::Keyring;
use super::vault::{self, Context};
use super::VaultError;
use crate::log::entry::rfc3339_ms;
use crate::secret::Secret;
use crate::store::{StateStore, StoreError};

/// The plan's connection record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    pub connection_id: String,
    pub user_id: String,
    pub team_id: Option<String>,
    pub team_name: Option<String>,
    #[serde(default)]
    pub project_ids: Vec<String>,
    /// Sealed (see `vault`).
    pub access_token: String,
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(with = "rfc3339_ms")]
    pub created_at: i64,
    #[serde(with = "rfc3339_ms")]
    pub updated_at: i64,
    /// The API origin the login was made for (`https://api.vercel.com`); the token goes to no
    /// other. Sealed into the tokens, so editing it makes them unreadable. Logins stored before
    /// it was recorded were made for Vercel's API.
    #[serde(default)]
    pub api_origin: Option<String>,
}

/// The origin of Vercel's own API, for logins that do not record one.
pub const VERCEL_ORIGIN: &str = "https://api.vercel.com";

/// `scheme://host[:port]` of an API URL, as a stored login records it.
pub fn api_origin(api_url: &str) -> Option<String> {
    let url = reqwest::Url::parse(api_url).ok()?;
    Some(url.origin().ascii_serialization()).filter(|origin| origin != "null")
}

/// What a connection's tokens are sealed to: the connection, and the API origin when recorded.
pub fn token_binding(connection_id: &str, api_origin: Option<&str>) -> String {
    match api_origin {
        Some(origin) => format!("{connection_id} for {origin}"),
        None => connection_id.to_owned(),
    }
}

impl Connection {
    /// A new connection id: `conn_` and 12 random characters.
    pub fn new_id() -> String {
        let ulid = ulid::Ulid::new().to_string().to_lowercase();
        format!("conn_{}", &ulid[ulid.len() - 12..])
    }

    /// The access token, opened with the token keys.
    pub fn access_token(&self, keys: &Keyring) -> Result<Secret, VaultError> {
        let binding = self.binding();
        let context = Context {
            purpose: vault::TOKEN,
            connection_id: &binding,
            field: "access_token",
        };
        vault::open(keys, context, &self.access_token)
    }

    /// The API origin this login's token may be sent to.
    pub fn origin(&self) -> &str {
        self.api_origin.as_deref().unwrap_or(VERCEL_ORIGIN)
    }

    fn binding(&self) -> String {
        token_binding(&self.connection_id, self.api_origin.as_deref())
    }

    /// The plan's `requireScope()` for this login (see [`require_scopes`]).
    pub fn require_scopes(&self, needed: &[&str]) -> Result<(), MissingScope> {
        require_scopes(&self.scopes, needed)
    }

    /// Seals both tokens again with the newest key (`shiplog vault rotate`).
    pub fn reseal(&mut self, keys: &Keyring, now: i64) -> Result<(), VaultError> {
        let id = &self.binding();
        let (access, refresh) = vault::open_tokens(
            keys,
            vault::TOKEN,
            id,
            &self.access_token,
            self.refresh_token.as_deref(),
        )?;
        (self.access_token, self.refresh_token) =
            vault::seal_tokens(keys, vault::TOKEN, id, &access, refresh.as_ref())?;
        self.updated_at = now;
        Ok(())
    }
}

/// What an OAuth login must be granted: an identity, and a refresh token (Vercel's access
/// tokens last an hour).
pub const REQUIRED_SCOPES: [&str; 2] = ["openid", "offline_access"];

/// A stored login without a scope shiplog needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the stored login lacks the scope {missing} (it was granted: {granted}); log in again and allow it")]
pub struct MissingScope {
    pub missing: String,
    pub granted: String,
}

/// The plan's `requireScope()`: when the authorization server reported a token's scopes
/// (`granted`), every scope in `needed` must be among them. A personal token reports none.
pub fn require_scopes(granted: &[String], needed: &[&str]) -> Result<(), MissingScope> {
    if granted.is_empty() {
        return Ok(());
    }
    match needed
        .iter()
        .find(|scope| !granted.iter().any(|g| g == *scope))
    {
        Some(missing) => Err(MissingScope {
            missing: (*missing).to_owned(),
            granted: granted.join(" "),
        }),
        None => Ok(()),
    }
}

const INDEX: &str = "connections";

/// The connections in the state store.
#[derive(Clone)]
pub struct Connections {
    store: StateStore,
}

impl Connections {
    pub fn new(store: StateStore) -> Self {
        Connections { store }
    }

    pub async fn get(&self, id: &str) -> Result<Option<Connection>, StoreError> {
        self.store.get_json(&format!("connections:{id}")).await
    }

    /// Every connection, the most recently updated first.
    pub async fn list(&self) -> Result<Vec<Connection>, StoreError> {
        let ids: Vec<String> = self.store.get_json(INDEX).await?.unwrap_or_default();
        let mut all = Vec::new();
        for id in ids {
            if let Some(connection) = self.get(&id).await? {
                all.push(connection);
            }
        }
        all.sort_by_key(|c| std::cmp::Reverse(c.updated_at));
        Ok(all)
    }

    /// The connection of this user and team, if there is one (a new login replaces it).
    pub async fn find(
        &self,
        user_id: &str,
        team_id: Option<&str>,
    ) -> Result<Option<Connection>, StoreError> {
        Ok(self
            .list()
            .await?
            .into_iter()
            .find(|c| c.user_id == user_id && c.team_id.as_deref() == team_id))
    }

    pub async fn save(&self, connection: &Connection) -> Result<(), StoreError> {
        let key = format!("connections:{}", connection.connection_id);
        self.store
            .put_json(&key, connection, std::time::Duration::ZERO)
            .await?;
        let mut ids: Vec<String> = self.store.get_json(INDEX).await?.unwrap_or_default();
        if !ids.contains(&connection.connection_id) {
            ids.push(connection.connection_id.clone());
            self.store
                .put_json(INDEX, &ids, std::time::Duration::ZERO)
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_scopes(scopes: &[&str]) -> Connection {
        Connection {
            connection_id: "conn_a".to_owned(),
            user_id: "u".to_owned(),
            team_id: None,
            team_name: None,
            project_ids: Vec::new(),
            access_token: String::new(),
            refresh_token: None,
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            created_at: 0,
            updated_at: 0,
            api_origin: None,
        }
    }

    #[test]
    fn a_missing_scope_is_named_and_unreported_scopes_are_not_checked() {
        let needed = REQUIRED_SCOPES;
        assert_eq!(with_scopes(&[]).require_scopes(&needed), Ok(()));
        assert_eq!(
            with_scopes(&["openid", "offline_access", "email"]).require_scopes(&needed),
            Ok(())
        );
        let err = with_scopes(&["openid", "email"])
            .require_scopes(&needed)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the stored login lacks the scope offline_access (it was granted: openid email); log in again and allow it"
        );
    }
}
