//! A circuit breaker per endpoint family: after repeated failures, calls stop for a cool-down,
//! then one trial call decides whether to close it again. With a shared store (Redis) every
//! instance sees the same open circuit.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::error::VercelError;
use crate::clock::now_ms;
use crate::store::StateStore;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failures that open the circuit.
    pub failure_threshold: u32,
    /// How long it stays open before a trial call.
    pub cool_down: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 5,
            cool_down: Duration::from_secs(15),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

#[derive(Debug)]
struct Local {
    failures: u32,
    open_until: Option<Instant>,
    trial_in_flight: bool,
}

/// What is kept in the shared store under `circuit:{family}`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SharedCircuit {
    open_until_ms: i64,
}

#[derive(Debug)]
pub struct CircuitBreaker {
    family: &'static str,
    config: BreakerConfig,
    local: Mutex<Local>,
    shared: Option<StateStore>,
}

impl CircuitBreaker {
    pub fn new(family: &'static str, config: BreakerConfig, shared: Option<StateStore>) -> Self {
        CircuitBreaker {
            family,
            config,
            local: Mutex::new(Local {
                failures: 0,
                open_until: None,
                trial_in_flight: false,
            }),
            shared,
        }
    }

    pub fn family(&self) -> &'static str {
        self.family
    }

    fn key(&self) -> String {
        format!("circuit:{}", self.family)
    }

    /// May a call go ahead? `Err(wait)` while the circuit is open.
    pub async fn allow(&self) -> Result<(), Duration> {
        if let Some(store) = &self.shared {
            if let Ok(Some(shared)) = store.get_json::<SharedCircuit>(&self.key()).await {
                let wait = shared.open_until_ms - now_ms();
                if wait > 0 {
                    return Err(Duration::from_millis(wait as u64));
                }
            }
        }
        let Ok(mut local) = self.local.lock() else {
            return Ok(());
        };
        match local.open_until {
            Some(until) if Instant::now() < until => Err(until - Instant::now()),
            Some(_) if local.trial_in_flight => {
                Err(self.config.cool_down.min(Duration::from_secs(1)))
            }
            Some(_) => {
                local.trial_in_flight = true;
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// [`CircuitBreaker::allow`] as the client's error.
    pub async fn check(&self) -> Result<(), VercelError> {
        self.allow()
            .await
            .map_err(|retry_in| VercelError::CircuitOpen {
                family: self.family,
                retry_in,
            })
    }

    /// Counts a call's outcome: success closes, a service failure (429, 5xx, network) counts
    /// towards opening; other errors say nothing about the service's health.
    pub async fn record<T>(&self, outcome: &Result<T, VercelError>) {
        match outcome {
            Ok(_) => self.record_success().await,
            Err(err) if err.is_service_failure() => {
                self.record_failure().await;
            }
            Err(_) => {}
        }
    }

    pub fn state(&self) -> CircuitState {
        let Ok(local) = self.local.lock() else {
            return CircuitState::Closed;
        };
        match local.open_until {
            None => CircuitState::Closed,
            Some(until) if Instant::now() < until => CircuitState::Open,
            Some(_) => CircuitState::HalfOpen,
        }
    }

    pub async fn record_success(&self) {
        let was_open = match self.local.lock() {
            Ok(mut local) => {
                let was_open = local.open_until.is_some();
                *local = Local {
                    failures: 0,
                    open_until: None,
                    trial_in_flight: false,
                };
                was_open
            }
            Err(_) => false,
        };
        if was_open {
            if let Some(store) = &self.shared {
                let _ = store.delete(&self.key()).await;
            }
        }
    }

    /// Returns true when this failure opened (or re-opened) the circuit.
    pub async fn record_failure(&self) -> bool {
        let opened = match self.local.lock() {
            Ok(mut local) => {
                local.failures += 1;
                let trial_failed = local.trial_in_flight;
                local.trial_in_flight = false;
                if trial_failed || local.failures >= self.config.failure_threshold {
                    local.open_until = Some(Instant::now() + self.config.cool_down);
                    true
                } else {
                    false
                }
            }
            Err(_) => false,
        };
        if opened {
            tracing::warn!(family = self.family, cool_down = ?self.config.cool_down, "circuit opened");
            if let Some(store) = &self.shared {
                let shared = SharedCircuit {
                    open_until_ms: now_ms() + self.config.cool_down.as_millis() as i64,
                };
                let _ = store
                    .put_json(&self.key(), &shared, self.config.cool_down)
                    .await;
            }
        }
        opened
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn opens_after_the_threshold_and_half_opens_after_the_cool_down() {
        let breaker = CircuitBreaker::new(
            "events",
            BreakerConfig {
                failure_threshold: 3,
                cool_down: Duration::from_secs(10),
            },
            None,
        );
        for _ in 0..2 {
            assert!(breaker.allow().await.is_ok());
            assert!(!breaker.record_failure().await);
        }
        assert!(breaker.record_failure().await);
        assert_eq!(breaker.state(), CircuitState::Open);
        assert!(breaker.allow().await.is_err());
    }

    #[test]
    fn a_failed_trial_reopens_and_a_good_one_closes() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let breaker = CircuitBreaker::new(
                "events",
                BreakerConfig {
                    failure_threshold: 1,
                    cool_down: Duration::from_millis(1),
                },
                None,
            );
            breaker.record_failure().await;
            let deadline = Instant::now() + Duration::from_secs(5);
            while breaker.state() == CircuitState::Open && Instant::now() < deadline {
                tokio::task::yield_now().await;
            }
            assert_eq!(breaker.state(), CircuitState::HalfOpen);
            assert!(breaker.allow().await.is_ok(), "one trial goes through");
            assert!(breaker.allow().await.is_err(), "only one trial at a time");
            assert!(breaker.record_failure().await, "a failed trial re-opens");
            while breaker.state() == CircuitState::Open && Instant::now() < deadline {
                tokio::task::yield_now().await;
            }
            assert!(breaker.allow().await.is_ok());
            breaker.record_success().await;
            assert_eq!(breaker.state(), CircuitState::Closed);
        });
    }
}
