//! Where channel settings come from: each setting has an environment variable and a key in the
//! config file's `[alert_channels]` table ([`Setting`]); the environment wins over the file.

use std::collections::BTreeMap;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

use crate::secret::Secret;

/// One setting of a channel: its environment variable and its config-file key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// `SLACK_WEBHOOK_URL`, ...
    pub env: &'static str,
    /// `slack_webhook_url`, ... in `[alert_channels]`.
    pub file: &'static str,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    /// Printed as `[REDACTED]`.
    Secret,
    /// `true`/`false` (`1`/`0` in the environment).
    Switch,
}

impl Setting {
    pub const fn text(env: &'static str, file: &'static str) -> Setting {
        Setting {
            env,
            file,
            kind: Kind::Text,
        }
    }

    pub const fn secret(env: &'static str, file: &'static str) -> Setting {
        Setting {
            env,
            file,
            kind: Kind::Secret,
        }
    }
}

/// A channel's kill switch, and whether the channel is on when nothing says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switch {
    pub key: Setting,
    pub default: bool,
}

impl Switch {
    pub const fn new(env: &'static str, file: &'static str, default: bool) -> Switch {
        Switch {
            key: Setting {
                env,
                file,
                kind: Kind::Switch,
            },
            default,
        }
    }
}

/// Looks settings up by their environment variable's name.
pub struct Vars<'a> {
    var: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> Vars<'a> {
    pub fn new(var: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Vars { var }
    }

    pub fn text(&self, key: Setting) -> Option<String> {
        (self.var)(key.env)
    }

    /// A secret, when it is not blank.
    pub fn secret(&self, key: Setting) -> Option<Secret> {
        self.text(key)
            .filter(|v| !v.trim().is_empty())
            .map(Secret::new)
    }

    /// `false`/`0` or `true`/`1` (any case); anything else leaves the default.
    pub fn switch(&self, switch: &Switch) -> bool {
        match self.text(switch.key).as_deref().map(str::trim) {
            Some(v) if v.eq_ignore_ascii_case("false") || v == "0" => false,
            Some(v) if v.eq_ignore_ascii_case("true") || v == "1" => true,
            _ => switch.default,
        }
    }
}

/// `[alert_channels]` in the config file: every channel's keys (see each channel's module),
/// no other. Webhook URLs and tokens are secrets: they print as `[REDACTED]`.
#[derive(Debug, Default, Clone)]
pub struct AlertChannels {
    /// By environment variable name.
    values: BTreeMap<&'static str, Value>,
}

#[derive(Debug, Clone)]
enum Value {
    Text(String),
    Secret(Secret),
    Switch(bool),
}

/// A value as the file writes it.
#[derive(Deserialize)]
#[serde(untagged, expecting = "a string, or true or false")]
enum Written {
    Switch(bool),
    Text(String),
}

impl AlertChannels {
    /// The file's value for an environment variable's name (`SLACK_WEBHOOK_URL`, ...).
    pub fn value_for(&self, env_name: &str) -> Option<String> {
        Some(match self.values.get(env_name)? {
            Value::Text(text) => text.clone(),
            Value::Secret(secret) => secret.expose().to_owned(),
            Value::Switch(on) => on.to_string(),
        })
    }
}

impl<'de> Deserialize<'de> for AlertChannels {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let written = BTreeMap::<String, Written>::deserialize(deserializer)?;
        let mut values = BTreeMap::new();
        for (name, value) in written {
            let Some(key) = super::every_key().find(|key| key.file == name) else {
                let known: Vec<String> = super::every_key()
                    .map(|key| format!("`{}`", key.file))
                    .collect();
                return Err(D::Error::custom(format!(
                    "unknown field `{name}`, expected one of {}",
                    known.join(", ")
                )));
            };
            let value = match (key.kind, value) {
                (Kind::Switch, Written::Switch(on)) => Value::Switch(on),
                (Kind::Switch, Written::Text(_)) => {
                    return Err(D::Error::custom(format!("`{name}` is true or false")))
                }
                (_, Written::Switch(_)) => {
                    return Err(D::Error::custom(format!("`{name}` is a string")))
                }
                (Kind::Secret, Written::Text(text)) => Value::Secret(Secret::new(text)),
                (Kind::Text, Written::Text(text)) => Value::Text(text),
            };
            values.insert(key.env, value);
        }
        Ok(AlertChannels { values })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> Result<AlertChannels, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn the_file_knows_every_channel_key_and_no_other() {
        let channels = file(
            "slack_webhook_url = \"https://hooks.slack.com/services/T/B/s3cr3t\"\nsms_enabled = true\nemail_to = \"a@b.c\"\n",
        )
        .expect("valid");
        assert_eq!(
            channels.value_for("SMS_ALERTS_ENABLED").as_deref(),
            Some("true")
        );
        assert_eq!(
            channels.value_for("ALERT_EMAIL_TO").as_deref(),
            Some("a@b.c")
        );
        assert_eq!(channels.value_for("SLACK_ALERTS_ENABLED"), None);
        assert!(!format!("{channels:?}").contains("s3cr3t"));

        let unknown = file("slack_webhook = \"x\"\n").expect_err("unknown key");
        assert!(unknown.to_string().contains("slack_webhook"), "{unknown}");
        let wrong = file("slack_enabled = \"yes\"\n").expect_err("not a switch");
        assert!(wrong.to_string().contains("slack_enabled"), "{wrong}");
    }
}
