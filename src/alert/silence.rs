//! Silences, as Alertmanager has them: label matchers, a start and an end, who made it and why.
//! A silence is pending before its start, active until its end, expired after; only an active
//! one mutes, and it mutes notifications only: the alert is still recorded and shown (muted).
//! A silence is never deleted, it is expired (its end set to now), so the list keeps the
//! history for [`RETENTION`].
//!
//! Every instance reads the same list from the state store (`silences`); a change is made under
//! a lock in the store (`silences:lock`), so two instances adding at once both keep theirs.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::labels::Labels;
use super::matcher::{self, Matcher};
use crate::log::entry::rfc3339_ms;
use crate::store::{StateStore, StoreError};

/// How long a silence lasts unless said otherwise (amtool's default).
pub const DEFAULT_DURATION: Duration = Duration::from_secs(60 * 60);
/// How long an expired silence stays listed (Alertmanager's default retention).
pub const RETENTION: Duration = Duration::from_secs(120 * 60 * 60);
/// The most silences kept, expired ones included.
pub const MOST: usize = 1000;
/// The longest comment kept, in characters.
pub const COMMENT_MAX: usize = 1000;
/// The longest a silence may last: a mute for longer is a rule to change, not a silence.
pub const LONGEST: Duration = Duration::from_secs(365 * 24 * 60 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SilenceState {
    Pending,
    Active,
    Expired,
}

impl SilenceState {
    pub fn as_str(self) -> &'static str {
        match self {
            SilenceState::Pending => "pending",
            SilenceState::Active => "active",
            SilenceState::Expired => "expired",
        }
    }
}

/// One silence, stored and printed (`silences list --json`) with Alertmanager's field names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Silence {
    /// A ULID.
    pub id: String,
    pub matchers: Vec<Matcher>,
    #[serde(with = "rfc3339_ms")]
    pub starts_at: i64,
    #[serde(with = "rfc3339_ms")]
    pub ends_at: i64,
    pub created_by: String,
    pub comment: String,
    #[serde(with = "rfc3339_ms")]
    pub updated_at: i64,
}

/// What a new silence is asked to be.
#[derive(Debug, Clone)]
pub struct NewSilence {
    pub matchers: Vec<Matcher>,
    /// None: now. A start in the past is moved to now.
    pub starts_at: Option<i64>,
    pub duration: Duration,
    pub created_by: String,
    pub comment: String,
}

/// Why a silence was refused, or the list could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum SilenceError {
    #[error("a silence needs at least one matcher")]
    NoMatchers,
    #[error("{0} matches every alert (each matcher matches an alert without that label)")]
    MatchesEverything(String),
    #[error("a silence needs a comment saying why")]
    NoComment,
    #[error("a silence needs an author")]
    NoAuthor,
    #[error("a silence must end after it starts and not in the past")]
    EndsTooSoon,
    #[error("there are already {MOST} silences; expire some first")]
    TooMany,
    #[error("a silence lasts at most {} days", LONGEST.as_secs() / 86_400)]
    TooLong,
    #[error("the shared state store (Redis) is unreachable: a silence changed now would not reach the other instances; try again once it is back")]
    Degraded,
    #[error("the stored silences cannot be read ({0}); they are left as they are")]
    Unreadable(String),
    #[error("no silence has an id starting with {0:?}")]
    Unknown(String),
    #[error("{0:?} names more than one silence; give more of the id")]
    Ambiguous(String),
    #[error("another instance is changing the silences; try again")]
    Busy,
    #[error("the silences could not be read or written: {0}")]
    Store(#[from] StoreError),
}

impl Silence {
    /// A silence made now (`now`, ms), or why it cannot be.
    pub fn new(asked: NewSilence, now: i64) -> Result<Silence, SilenceError> {
        if asked.matchers.is_empty() {
            return Err(SilenceError::NoMatchers);
        }
        if asked.matchers.iter().all(Matcher::matches_empty) {
            return Err(SilenceError::MatchesEverything(matcher::describe(
                &asked.matchers,
            )));
        }
        let comment = crate::printable::one_line(asked.comment.trim())
            .chars()
            .take(COMMENT_MAX)
            .collect::<String>();
        if comment.is_empty() {
            return Err(SilenceError::NoComment);
        }
        let created_by = crate::printable::one_line(asked.created_by.trim()).into_owned();
        if created_by.is_empty() {
            return Err(SilenceError::NoAuthor);
        }
        if asked.duration > LONGEST {
            return Err(SilenceError::TooLong);
        }
        let starts_at = asked.starts_at.unwrap_or(now).max(now);
        let ends_at = asked
            .starts_at
            .unwrap_or(now)
            .saturating_add(i64::try_from(asked.duration.as_millis()).unwrap_or(i64::MAX));
        if ends_at <= starts_at {
            return Err(SilenceError::EndsTooSoon);
        }
        Ok(Silence {
            id: ulid::Ulid::new().to_string(),
            matchers: asked.matchers,
            starts_at,
            ends_at,
            created_by,
            comment,
            updated_at: now,
        })
    }

    /// Pending before its start, expired after its end, active between.
    pub fn state(&self, now: i64) -> SilenceState {
        if now < self.starts_at {
            SilenceState::Pending
        } else if now >= self.ends_at {
            SilenceState::Expired
        } else {
            SilenceState::Active
        }
    }

    /// Does it mute an alert with these labels at `now`?
    pub fn mutes(&self, labels: &Labels, now: i64) -> bool {
        self.state(now) == SilenceState::Active && matcher::all_match(&self.matchers, labels)
    }

    /// Ends it now; a pending one ends before it began.
    fn expire(&mut self, now: i64) {
        if self.state(now) == SilenceState::Pending {
            self.starts_at = now;
        }
        self.ends_at = self.ends_at.min(now);
        self.updated_at = now;
    }

    /// `01JD…` shortened for a line.
    pub fn short_id(&self) -> &str {
        short_id(&self.id)
    }
}

/// A silence's id cut to its first 10 characters (its time), as lines show it.
pub fn short_id(id: &str) -> &str {
    id.get(..10).unwrap_or(id)
}

/// The active silence that mutes an alert with `labels`, if one does (the one ending last).
pub fn muting<'a>(silences: &'a [Silence], labels: &Labels, now: i64) -> Option<&'a Silence> {
    silences
        .iter()
        .filter(|s| s.mutes(labels, now))
        .max_by_key(|s| s.ends_at)
}

const KEY: &str = "silences";
const LOCK: &str = "silences:lock";
/// A lock held longer than this was left by an instance that died holding it.
const LOCK_TTL: Duration = Duration::from_secs(10);
/// How long a change waits for the lock.
const LOCK_WAIT: Duration = Duration::from_secs(5);

/// The silences in the state store, shared by every instance.
#[derive(Clone)]
pub struct Silences {
    store: StateStore,
}

impl Silences {
    pub fn new(store: StateStore) -> Self {
        Silences { store }
    }

    /// Every silence kept, newest first. A list that is there but cannot be read is an error,
    /// not "no silences" (it is neither overwritten nor taken as empty).
    pub async fn all(&self) -> Result<Vec<Silence>, SilenceError> {
        match self.store.get_json::<serde_json::Value>(KEY).await? {
            None => Ok(Vec::new()),
            Some(value) => serde_json::from_value(value)
                .map_err(|err| SilenceError::Unreadable(err.to_string())),
        }
    }

    /// Adds a silence.
    pub async fn add(&self, silence: Silence) -> Result<Silence, SilenceError> {
        self.change(silence.updated_at, |list| {
            if list.len() >= MOST {
                return Err(SilenceError::TooMany);
            }
            list.insert(0, silence.clone());
            Ok(silence.clone())
        })
        .await
    }

    /// Expires the silence whose id starts with `id` (the whole id, or enough of it to be
    /// unique), and says whether it was still pending or active (expiring an expired silence
    /// changes nothing).
    pub async fn expire(&self, id: &str, now: i64) -> Result<(Silence, bool), SilenceError> {
        let id = id.trim().to_ascii_uppercase();
        self.change(now, |list| {
            let mut matching = list
                .iter()
                .enumerate()
                .filter(|(_, s)| !id.is_empty() && s.id.starts_with(&id))
                .map(|(i, _)| i);
            let index = match (matching.next(), matching.next()) {
                (Some(i), None) => i,
                (None, _) => return Err(SilenceError::Unknown(id.clone())),
                (Some(_), Some(_)) => return Err(SilenceError::Ambiguous(id.clone())),
            };
            let silence = &mut list[index];
            let ended = silence.state(now) != SilenceState::Expired;
            if ended {
                silence.expire(now);
            }
            Ok((silence.clone(), ended))
        })
        .await
    }

    /// Changes the list under the store's lock, dropping silences past their retention.
    async fn change<T>(
        &self,
        now: i64,
        edit: impl FnOnce(&mut Vec<Silence>) -> Result<T, SilenceError>,
    ) -> Result<T, SilenceError> {
        if self.store.is_degraded() {
            return Err(SilenceError::Degraded);
        }
        let Some(lock) = self.store.lock(LOCK, LOCK_TTL, LOCK_WAIT).await? else {
            return Err(SilenceError::Busy);
        };
        let changed = async {
            let mut list = self.all().await?;
            let kept_until = |s: &Silence| s.ends_at + RETENTION.as_millis() as i64;
            list.retain(|s| kept_until(s) > now);
            let result = edit(&mut list)?;
            // Kept until the last one's retention ends.
            let ttl = list
                .iter()
                .map(|s| kept_until(s) - now)
                .max()
                .map_or(Duration::from_secs(1), |ms| {
                    Duration::from_millis(ms as u64)
                });
            self.store.put_json(KEY, &list, ttl).await?;
            Ok(result)
        }
        .await;
        lock.release().await;
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::matcher::parse;

    const MIN: i64 = 60_000;

    fn asked(matchers: &str) -> NewSilence {
        NewSilence {
            matchers: parse(matchers).expect("valid matchers"),
            starts_at: None,
            duration: DEFAULT_DURATION,
            created_by: "ana".to_owned(),
            comment: "known flaky test, fix in #482".to_owned(),
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().map(|(k, v)| (*k, Some(*v))))
    }

    #[test]
    fn a_silence_is_pending_then_active_then_expired() {
        let mut ask = asked("rule=build_failed");
        ask.starts_at = Some(10 * MIN);
        let silence = Silence::new(ask, 0).expect("valid");
        let alert = labels(&[("rule", "build_failed"), ("project", "shop")]);
        let states: Vec<(i64, &str, bool)> = [0, 10 * MIN - 1, 10 * MIN, 69 * MIN, 70 * MIN]
            .into_iter()
            .map(|t| (t, silence.state(t).as_str(), silence.mutes(&alert, t)))
            .collect();
        assert_eq!(
            states,
            [
                (0, "pending", false),
                (10 * MIN - 1, "pending", false),
                (10 * MIN, "active", true),
                (69 * MIN, "active", true),
                (70 * MIN, "expired", false),
            ]
        );
        assert!(!silence.mutes(&labels(&[("rule", "deploy_failed")]), 20 * MIN));
    }

    #[test]
    fn a_start_in_the_past_is_now_and_bad_silences_are_refused() {
        let mut ask = asked("rule=build_failed");
        ask.starts_at = Some(-30 * MIN);
        let silence = Silence::new(ask, 0).expect("valid");
        assert_eq!((silence.starts_at, silence.ends_at), (0, 30 * MIN));
        let mut ask = asked("rule=build_failed");
        ask.starts_at = Some(-2 * 60 * MIN);
        assert!(matches!(
            Silence::new(ask, 0),
            Err(SilenceError::EndsTooSoon)
        ));
        for everything in ["branch=~.*", "{project=\"\", tier!=\"x\"}"] {
            let err = Silence::new(asked(everything), 0).expect_err(everything);
            assert!(err.to_string().contains("matches every alert"), "{err}");
        }
        assert!(matches!(
            Silence::new(asked(""), 0),
            Err(SilenceError::NoMatchers)
        ));
        let mut ask = asked("rule=x");
        ask.comment = "  \n ".to_owned();
        assert!(matches!(Silence::new(ask, 0), Err(SilenceError::NoComment)));
        // One matcher that needs a value is enough, as in Alertmanager.
        assert!(Silence::new(asked("{branch=~.*, rule=x}"), 0).is_ok());
    }

    #[test]
    fn the_silence_ending_last_is_the_one_muting() {
        let short = Silence::new(asked("rule=build_failed"), 0).expect("valid");
        let mut ask = asked("project=shop");
        ask.duration = Duration::from_secs(2 * 60 * 60);
        let long = Silence::new(ask, 0).expect("valid");
        let list = vec![short.clone(), long.clone()];
        let alert = labels(&[("rule", "build_failed"), ("project", "shop")]);
        assert_eq!(muting(&list, &alert, MIN).map(|s| &s.id), Some(&long.id));
        assert_eq!(
            muting(&list, &labels(&[("rule", "build_failed")]), MIN).map(|s| &s.id),
            Some(&short.id)
        );
        assert!(muting(&list, &alert, 3 * 60 * MIN).is_none());
    }

    #[tokio::test]
    async fn expiring_keeps_the_silence_and_ids_may_be_shortened() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = StateStore::embedded(dir.path(), "t:").expect("store");
        let silences = Silences::new(store);
        let now = crate::clock::now_ms();
        let first = silences
            .add(Silence::new(asked("rule=a"), now).expect("valid"))
            .await
            .expect("added");
        let second = silences
            .add(Silence::new(asked("rule=b"), now).expect("valid"))
            .await
            .expect("added");
        assert!(matches!(
            silences.expire("", now).await,
            Err(SilenceError::Unknown(_))
        ));
        // Two ULIDs made within years of each other share their first two characters.
        assert!(matches!(
            silences.expire(&first.id[..2], now).await,
            Err(SilenceError::Ambiguous(_))
        ));
        let (expired, ended) = silences
            .expire(&first.id.to_ascii_lowercase(), now + 1)
            .await
            .expect("expired");
        assert!(ended);
        assert_eq!(expired.state(now + 1), SilenceState::Expired);
        let (_, again) = silences.expire(&first.id, now + 2).await.expect("found");
        assert!(!again, "already expired");
        let all = silences.all().await.expect("read");
        let ids: Vec<&str> = all.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, [second.id.as_str(), first.id.as_str()]);
        assert_eq!(all[1].ends_at, now + 1);
        assert_eq!(all[0].state(now + 1), SilenceState::Active);
    }

    /// The states as time passes, on tokio's paused clock: a silence made to start in ten
    /// minutes mutes nothing until then, mutes for its hour, and is expired after, while the
    /// list keeps it.
    #[tokio::test(start_paused = true)]
    async fn states_follow_the_clock() {
        let t0 = tokio::time::Instant::now();
        let start = 1_795_684_800_000;
        let now = || start + t0.elapsed().as_millis() as i64;
        let mut ask = asked("rule=build_failed");
        ask.starts_at = Some(now() + 10 * MIN);
        let silence = Silence::new(ask, now()).expect("valid");
        let alert = labels(&[("rule", "build_failed")]);
        let mut seen = Vec::new();
        for minutes in [0, 9, 1, 30, 29, 1] {
            tokio::time::advance(Duration::from_secs(minutes * 60)).await;
            seen.push((silence.state(now()).as_str(), silence.mutes(&alert, now())));
        }
        assert_eq!(
            seen,
            [
                ("pending", false),
                ("pending", false),
                ("active", true),
                ("active", true),
                ("active", true),
                ("expired", false),
            ]
        );
    }

    #[tokio::test]
    async fn a_list_that_cannot_be_read_is_left_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = StateStore::embedded(dir.path(), "t:").expect("store");
        store
            .put_json(KEY, &serde_json::json!([{"id": 5}]), Duration::ZERO)
            .await
            .expect("written");
        let silences = Silences::new(store.clone());
        assert!(matches!(
            silences.all().await,
            Err(SilenceError::Unreadable(_))
        ));
        let now = crate::clock::now_ms();
        let added = silences
            .add(Silence::new(asked("rule=a"), now).expect("valid"))
            .await;
        assert!(
            matches!(added, Err(SilenceError::Unreadable(_))),
            "{added:?}"
        );
        let kept: serde_json::Value = store.get_json(KEY).await.expect("read").expect("kept");
        assert_eq!(kept, serde_json::json!([{"id": 5}]), "not overwritten");
    }
}
