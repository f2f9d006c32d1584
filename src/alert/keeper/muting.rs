//! Muting at notification time: a fired alert that an active silence matches, or that an open
//! alert inhibits, is recorded and shown muted and not told. Every few seconds the open alerts
//! are looked at again (a silence added or ended on any instance, an inhibiting alert resolved),
//! and an alert still firing whose muting ended is told, once among every instance, so that
//! nothing comes back silently.

use std::time::Duration;

use super::Keeper;
use crate::alert::book::{AlertRecord, AlertState, Muted};
use crate::alert::delivery::DeliveryStatus;
use crate::alert::evaluator::Alert;
use crate::alert::inhibit::{inhibitor, InhibitRule};
use crate::alert::matcher;
use crate::alert::runner::notice_entry;
use crate::alert::runner::SilenceCommand;
use crate::alert::silence::{self, Silence};
use crate::clock::now_ms;

/// How long the word that an alert's muting ended is kept, so no instance says it again.
const ENDED_KEPT: Duration = Duration::from_secs(48 * 60 * 60);

impl Keeper {
    /// The notice in the log, and the alert put in its groups, unless it is muted: then it is
    /// recorded as muted and its notifications counted as suppressed.
    pub(super) async fn announce(&mut self, alert: &Alert) {
        let fingerprint = alert.fingerprint.as_str();
        let silenced = match self.book.get(fingerprint) {
            Some(record) => self.silence_of(record).await.map(|s| Muted::by(&s)),
            None => None,
        };
        let muted = silenced.or_else(|| {
            let record = self.book.get(fingerprint)?;
            let open: Vec<&AlertRecord> = self.book.open().collect();
            inhibited(&open, &self.routing.inhibit, record)
        });
        let Some(muted) = muted else {
            self.logger.write(notice_entry(alert, None));
            self.group(alert).await;
            return;
        };
        self.logger.write(notice_entry(alert, Some(&muted)));
        for &channel in &alert.channels {
            self.metrics.alert_suppressed(&alert.rule);
            let why = muted.describe();
            self.book
                .set_delivery(fingerprint, channel, DeliveryStatus::Off { why });
        }
        self.book.set_muted(fingerprint, Some(muted));
    }

    /// The active silence muting `record`, read from the store now (a silence added a moment
    /// ago on another instance counts). None when it cannot be read: better a notification too
    /// many than a page missed.
    async fn silence_of(&self, record: &AlertRecord) -> Option<Silence> {
        let list = match self.silences.as_ref()?.all().await {
            Ok(list) => list,
            Err(err) => {
                tracing::warn!(error = %err, "could not read the silences; not muting");
                return None;
            }
        };
        silence::muting(&list, &record.labels, now_ms()).cloned()
    }

    /// Marks the open alerts muted, or not, as the silences and inhibitions now say; tells the
    /// alerts whose muting ended while they still fire.
    pub(super) async fn review(&mut self) {
        // A list that cannot be read, or read from a local copy while Redis is away, is not
        // taken for "no silences": that would unmute everything and say so.
        let degraded = self.store.as_ref().is_some_and(|store| store.is_degraded());
        let silences = match &self.silences {
            Some(_) if degraded => return,
            Some(silences) => match silences.all().await {
                Ok(list) => list,
                Err(err) => {
                    tracing::warn!(error = %err, "could not read the silences");
                    return;
                }
            },
            None => Vec::new(),
        };
        self.shown_silences.send_if_modified(|shown| {
            let changed = *shown != silences;
            if changed {
                shown.clone_from(&silences);
            }
            changed
        });
        let now = now_ms();
        let mut ended = Vec::new();
        let open: Vec<&AlertRecord> = self.book.open().collect();
        let changes: Vec<(String, Option<Muted>)> = open
            .iter()
            .filter_map(|record| {
                let muted = silence::muting(&silences, &record.labels, now)
                    .map(Muted::by)
                    .or_else(|| inhibited(&open, &self.routing.inhibit, record));
                if muted == record.muted {
                    return None;
                }
                if let (Some(was), None, AlertState::Firing) =
                    (&record.muted, &muted, &record.state)
                {
                    ended.push((AlertRecord::clone(record), was.clone()));
                }
                Some((record.fingerprint.clone(), muted))
            })
            .collect();
        drop(open);
        for (fingerprint, muted) in changes {
            self.book.set_muted(&fingerprint, muted);
        }
        for (record, was) in ended {
            self.muting_ended(&record, &was).await;
        }
    }

    /// A silence added or expired from the dashboard, by this instance's user; the alerts are
    /// looked at again at once.
    pub(in crate::alert) async fn silence(&mut self, command: SilenceCommand) {
        let Some(silences) = &self.silences else {
            return;
        };
        let now = now_ms();
        let done = match command {
            SilenceCommand::Add(mut asked) => {
                asked.created_by = self.user.clone();
                match Silence::new(asked, now) {
                    Ok(silence) => silences
                        .add(silence)
                        .await
                        .map(|s| format!("Silenced {} ({})", matcher::describe(&s.matchers), s.id)),
                    Err(err) => Err(err),
                }
            }
            SilenceCommand::Expire { id } => silences
                .expire(&id, now)
                .await
                .map(|(s, _)| format!("Expired silence {}", s.id)),
        };
        match done {
            Ok(said) => tracing::info!(user = %self.user, "{said}"),
            Err(err) => tracing::warn!(error = %err, "a silence from the dashboard was not kept"),
        }
        self.review().await;
    }

    /// Tells the alert's channels that it still fires now that its silence ended (or what
    /// inhibited it was resolved), unless another instance already did.
    async fn muting_ended(&mut self, record: &AlertRecord, was: &Muted) {
        let (what, why) = match was {
            Muted::Silence { silence, .. } => {
                let id = silence::short_id(silence);
                (
                    silence.as_str(),
                    format!("silence {id} ended and it still fires"),
                )
            }
            Muted::Inhibited { rule, fingerprint } => (
                fingerprint.as_str(),
                format!("{rule} no longer mutes it and it still fires"),
            ),
        };
        if let Some(store) = &self.store {
            let key = format!("mute_ended:{what}:{}", record.fingerprint);
            match store.first_claim(&key, ENDED_KEPT).await {
                Ok(false) => return,
                Ok(true) => {}
                // Better told twice than not at all.
                Err(err) => tracing::warn!(error = %err, "could not share a muting's end"),
            }
        }
        let alert = record.reminder(&why);
        self.logger.write(notice_entry(&alert, None));
        self.group(&alert).await;
    }
}

/// The inhibition muting `record`, if one of the `open` alerts inhibits it.
pub(super) fn inhibited(
    open: &[&AlertRecord],
    rules: &[InhibitRule],
    record: &AlertRecord,
) -> Option<Muted> {
    inhibitor(rules, record, open).map(|(_, source)| Muted::Inhibited {
        rule: source.rule.clone(),
        fingerprint: source.fingerprint.clone(),
    })
}
