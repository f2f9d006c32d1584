//! The alert channels. Each channel's module holds all there is to know about it: its
//! destination (where it delivers) and the environment variables and config-file keys that name
//! it, its kill switch, its payload, and the request that carries the payload. The delivery
//! (`super::delivery`) only sends requests, retries them and keeps the 429 pauses.
//!
//! A channel is registered once, by one line in `channels!` below: a variant of [`Channel`],
//! the field of [`ChannelSettings`] holding its settings, and its [`Destination`] type. The list
//! is a macro rather than a trait object registry because a channel is itself a plain `Copy`
//! enum (rules name it, queued jobs and the alert book store it by name), while each destination
//! is a different type; the macro writes the enum, its names, the settings and the single `match`
//! from a channel to its settings from that one list. Adding a channel is a module implementing
//! [`Destination`] plus its line.

pub mod discord;
pub mod email;
mod keys;
pub mod pagerduty;
mod request;
pub mod slack;
pub mod text;
pub mod twilio;
pub mod webhook;

use serde::{Deserialize, Serialize};

pub use keys::{AlertChannels, Setting, Switch, Vars};
pub use request::{Body, HttpRequest, Request, RequestError};
pub use text::Notification;

/// Writes [`Channel`] and [`ChannelSettings`] from the list of channels.
macro_rules! channels {
    ($($variant:ident $field:ident => $destination:ty,)*) => {
        /// Where notifications go.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum Channel {
            $($variant,)*
            /// The demo's built-in channel.
            Demo,
        }

        impl Channel {
            /// The real channels (not the demo's).
            pub const ALL: [Channel; [$(stringify!($variant)),*].len()] = [$(Channel::$variant),*];

            /// Its name in rules, commands and on screen: `slack`, `sms`, ...
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Channel::$variant => stringify!($field),)*
                    Channel::Demo => "demo",
                }
            }
        }

        /// Where each channel delivers, and whether it may.
        #[derive(Debug, Clone, Default)]
        pub struct ChannelSettings {
            $(pub $field: Switched<$destination>,)*
            /// The demo: channels without a destination deliver to the built-in demo channel.
            pub demo: bool,
        }

        impl ChannelSettings {
            /// Each channel's settings from `var`, which looks up an environment variable's name.
            pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
                let vars = Vars::new(&var);
                ChannelSettings {
                    $($field: Switched::read(&vars),)*
                    demo: false,
                }
            }

            /// The settings of `channel`; none for the demo's channel, which needs none.
            fn of(&self, channel: Channel) -> Option<&dyn Setup> {
                match channel {
                    $(Channel::$variant => Some(&self.$field),)*
                    Channel::Demo => None,
                }
            }
        }

        /// Every key any channel reads.
        fn every_key() -> impl Iterator<Item = Setting> {
            std::iter::empty()$(.chain(keys_of::<$destination>()))*
        }
    };
}

channels! {
    Slack slack => slack::SlackWebhook,
    Discord discord => discord::DiscordWebhook,
    Email email => email::Smtp,
    Sms sms => twilio::Twilio,
    Webhook webhook => webhook::Webhook,
    Pagerduty pagerduty => pagerduty::PagerDuty,
}

impl Channel {
    /// `slack, discord or sms`: the channels' names, for a message.
    pub fn named(channels: &[Channel]) -> String {
        let names: Vec<&str> = channels.iter().map(|c| c.as_str()).collect();
        match names.split_last() {
            Some((last, [])) => (*last).to_owned(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        }
    }
}

/// What a channel's module tells about its channel, through the type of its destination.
pub trait Destination: std::fmt::Debug + Clone + Sized {
    /// The kill switch, when the channel has one (without one it is always on).
    const SWITCH: Option<Switch>;
    /// What names a destination (the switch aside).
    const KEYS: &'static [Setting];
    /// What a destination needs, for "no destination (…)".
    const NEEDS: &'static str;

    /// Tries per notification, when the channel needs more than the queue's (a page must
    /// outlast a longer outage than a chat message).
    const ATTEMPTS: Option<u32> = None;

    /// The destination, when the variables name a whole one.
    fn read(vars: &Vars) -> Option<Self>;

    /// What carries one notification there.
    fn request(&self, notification: &Notification<'_>) -> Result<Request, RequestError>;

    /// The most notifications this destination takes in a window, kept by every instance
    /// together; none when only the queue's global limit applies.
    fn rate_limit(&self) -> Option<RateLimit> {
        None
    }
}

/// At most `limit` notifications in any `window`, counted under `scope` (shared by every
/// instance on one Redis).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    /// Names the counter; never a secret.
    pub scope: String,
    pub limit: u32,
    pub window: std::time::Duration,
}

/// The keys of the destination `D`, its switch's included.
fn keys_of<D: Destination>() -> impl Iterator<Item = Setting> {
    D::KEYS.iter().copied().chain(D::SWITCH.map(|s| s.key))
}

/// One channel's settings: its destination, if it has one, and its kill switch.
#[derive(Debug, Clone)]
pub struct Switched<D> {
    pub on: bool,
    pub destination: Option<D>,
}

/// Off, and nowhere to go.
impl<D> Default for Switched<D> {
    fn default() -> Self {
        Switched {
            on: false,
            destination: None,
        }
    }
}

impl<D: Destination> Switched<D> {
    /// On, delivering to `destination`.
    pub fn to(destination: D) -> Self {
        Switched {
            on: true,
            destination: Some(destination),
        }
    }

    fn read(vars: &Vars) -> Self {
        Switched {
            on: D::SWITCH.is_none_or(|switch| vars.switch(&switch)),
            destination: D::read(vars),
        }
    }
}

/// Whether a channel sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// It does not, and why: switched off, or no destination.
    Off(String),
    /// The demo delivers it to the built-in demo channel.
    Demo,
}

/// What the delivery asks of a channel's settings, whatever its destination.
trait Setup {
    fn readiness(&self, demo: bool) -> Readiness;
    fn request(&self, notification: &Notification<'_>) -> Option<Result<Request, RequestError>>;
    fn attempts(&self) -> Option<u32>;
    fn rate_limit(&self) -> Option<RateLimit>;
}

impl<D: Destination> Setup for Switched<D> {
    fn readiness(&self, demo: bool) -> Readiness {
        if !self.on {
            let switch = D::SWITCH.map_or("", |switch| switch.key.env);
            Readiness::Off(format!("switched off ({switch})"))
        } else if self.destination.is_some() {
            Readiness::Ready
        } else if demo {
            Readiness::Demo
        } else {
            Readiness::Off(format!("no destination ({})", D::NEEDS))
        }
    }

    fn request(&self, notification: &Notification<'_>) -> Option<Result<Request, RequestError>> {
        self.destination.as_ref().map(|d| d.request(notification))
    }

    fn attempts(&self) -> Option<u32> {
        D::ATTEMPTS
    }

    fn rate_limit(&self) -> Option<RateLimit> {
        self.destination.as_ref()?.rate_limit()
    }
}

impl ChannelSettings {
    /// From the environment (each channel's variables: `SLACK_WEBHOOK_URL`, `SMTP_URL`,
    /// `TWILIO_*`, the `*_ALERTS_ENABLED` switches, ...), else the config file's
    /// `[alert_channels]`.
    pub fn from_env_and(file: &AlertChannels) -> Self {
        Self::from_vars(|name| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .or_else(|| file.value_for(name))
        })
    }

    /// Whether `channel` sends: it may be switched off, have no destination (in the demo, it
    /// then delivers to the demo channel), or be ready. The demo's channel always is.
    pub fn readiness(&self, channel: Channel) -> Readiness {
        match self.of(channel) {
            Some(setup) => setup.readiness(self.demo),
            None => Readiness::Ready,
        }
    }

    /// What carries `notification` to `channel`; none when the channel has no destination (the
    /// demo's channel: the notice in the log is its delivery).
    pub fn request(
        &self,
        channel: Channel,
        notification: &Notification<'_>,
    ) -> Option<Result<Request, RequestError>> {
        self.of(channel)?.request(notification)
    }

    /// Tries per notification to `channel`, when it needs other than the queue's.
    pub fn attempts(&self, channel: Channel) -> Option<u32> {
        self.of(channel)?.attempts()
    }

    /// How many notifications `channel`'s destination takes in a window, if it says.
    pub fn rate_limit(&self, channel: Channel) -> Option<RateLimit> {
        self.of(channel)?.rate_limit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_is_named_alike_everywhere() {
        for channel in Channel::ALL.into_iter().chain([Channel::Demo]) {
            let serialised = serde_json::to_value(channel).expect("serialises");
            assert_eq!(serialised, channel.as_str());
        }
    }

    #[test]
    fn channels_are_named_for_messages() {
        assert_eq!(Channel::named(&[]), "");
        assert_eq!(Channel::named(&[Channel::Sms]), "sms");
        assert_eq!(
            Channel::named(&Channel::ALL),
            "slack, discord, email, sms, webhook or pagerduty"
        );
    }

    #[test]
    fn no_two_channels_read_the_same_key() {
        let keys: Vec<Setting> = every_key().collect();
        for (i, key) in keys.iter().enumerate() {
            for other in &keys[i + 1..] {
                assert!(key.env != other.env && key.file != other.file, "{key:?}");
            }
        }
    }
}
