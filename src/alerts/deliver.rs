//! Alert delivery beyond the terminal: `alerts.command` (run through
//! `sh -c`, the details in `QUOTATRACK_ALERT_*` environment variables and
//! as JSON on stdin, killed with its process group at a time limit) and
//! `alerts.webhook_url` (a JSON POST, retried with a doubling backoff a
//! bounded number of times). The commands spawn each delivery as its own
//! tokio task ([`Delivery::spawn`]), so a hanging command or receiver never
//! holds up a cycle; every wait here is bounded, and a failure is said on
//! stderr in one line (the webhook's URL never: it usually holds a secret)
//! and, with [`Delivery::reporting`], reported to the engine, whose next
//! cycle records it (`alert_delivery_failed`).

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::task::JoinHandle;

use super::Alert;
use crate::engine::Outside;
use crate::events::{Event, Stream};
use crate::settings::Alerts;
use crate::transport::{Url, post_json};

/// How long a command or a webhook may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The command is killed after this long.
    pub command: Duration,
    /// One webhook attempt gives up after this long.
    pub webhook: Duration,
    /// Webhook attempts in all (at least 1).
    pub attempts: u32,
    /// The wait before the second attempt, doubled before each next one.
    pub backoff: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            command: Duration::from_secs(10),
            webhook: Duration::from_secs(5),
            attempts: 3,
            backoff: Duration::from_secs(1),
        }
    }
}

/// Why a delivery failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// The command could not be started.
    #[error("alert command could not start: {0}; check alerts.command")]
    Spawn(String),
    /// The command ran past its time limit and was killed.
    #[error("alert command ran longer than {0} ms and was killed; make alerts.command finish sooner")]
    TimedOut(u128),
    /// The command exited with a failure.
    #[error("alert command failed ({0}); check alerts.command")]
    Failed(String),
    /// Every webhook attempt failed; the last reason.
    #[error("alert webhook failed after {attempts} attempts: {last}; check alerts.webhook_url")]
    Webhook {
        /// Attempts made.
        attempts: u32,
        /// What the last one got.
        last: String,
    },
}

/// Where alerts go besides the terminal, from the settings.
#[derive(Debug, Clone, Default)]
pub struct Delivery {
    /// `alerts.command`.
    pub command: Option<String>,
    /// `alerts.webhook_url`.
    pub webhook_url: Option<Url>,
    /// The bounds.
    pub limits: Limits,
    /// Where failures are reported for the log.
    pub failures: Option<Outside>,
}

impl Delivery {
    /// The delivery the `[alerts]` settings ask for, with the default limits.
    pub fn from_settings(alerts: &Alerts) -> Delivery {
        Delivery {
            command: alerts.command.clone(),
            webhook_url: alerts.webhook_url.clone(),
            limits: Limits::default(),
            failures: None,
        }
    }

    /// The same delivery, its failures reported to `outside` (an engine's:
    /// its next cycle records them).
    pub fn reporting(self, outside: Outside) -> Delivery {
        Delivery {
            failures: Some(outside),
            ..self
        }
    }

    /// Starts delivering `alert` to the command and the webhook, each in
    /// its own task, and returns at once; a failure is said on stderr.
    /// The handles end when the deliveries do (every one is bounded).
    pub fn spawn(&self, alert: &Arc<Alert>) -> Vec<JoinHandle<Result<(), DeliveryError>>> {
        let mut tasks = Vec::new();
        if let Some(command) = self.command.clone() {
            let (alert, limit, failures) = (Arc::clone(alert), self.limits.command, self.failures.clone());
            tasks.push(tokio::spawn(async move {
                let result = run_command(&command, &alert, limit).await;
                said(result, "command", &alert, failures.as_ref())
            }));
        }
        if let Some(url) = self.webhook_url.clone() {
            let (alert, limits, failures) = (Arc::clone(alert), self.limits, self.failures.clone());
            tasks.push(tokio::spawn(async move {
                let result = post_webhook(&url, &alert, limits).await;
                said(result, "webhook", &alert, failures.as_ref())
            }));
        }
        tasks
    }
}

/// A failure said on stderr and reported for the log.
fn said(
    result: Result<(), DeliveryError>,
    via: &str,
    alert: &Alert,
    failures: Option<&Outside>,
) -> Result<(), DeliveryError> {
    if let Err(error) = &result {
        eprintln!("quotatrack: {error}");
        if let Some(failures) = failures {
            failures.report(
                Stream::Tracker(alert.provider),
                Event::AlertDeliveryFailed {
                    provider: alert.provider,
                    window: alert.window.clone(),
                    kind: alert.kind,
                    via: via.to_owned(),
                    reason: error.to_string(),
                },
            );
        }
    }
    result
}

/// Runs `command` through `sh -c` with the alert in its environment and
/// on stdin; its stdout is discarded (it must not mix with `serve
/// --stdio`'s protocol), its stderr is ours. Killed, with every process it
/// started, after `limit`.
pub async fn run_command(command: &str, alert: &Alert, limit: Duration) -> Result<(), DeliveryError> {
    let json = serde_json::to_vec(alert).unwrap_or_default();
    let ratio = |value: Option<f64>| value.map_or_else(String::new, |value| value.to_string());
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .env_remove(crate::commands::FRONT_VERSION)
        .env("QUOTATRACK_ALERT_KIND", alert.kind.as_str())
        .env("QUOTATRACK_ALERT_PROVIDER", alert.provider.to_string())
        .env("QUOTATRACK_ALERT_WINDOW", alert.window.as_deref().unwrap_or(""))
        .env("QUOTATRACK_ALERT_THRESHOLD", ratio(alert.threshold))
        .env("QUOTATRACK_ALERT_USED_RATIO", ratio(alert.used_ratio))
        .env("QUOTATRACK_ALERT_MESSAGE", &alert.message)
        .env("QUOTATRACK_ALERT_AT", &alert.at)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|error| DeliveryError::Spawn(error.to_string()))?;
    let group = child.id();
    let mut stdin = child.stdin.take();
    let run = async {
        if let Some(stdin) = stdin.as_mut() {
            // A command that does not read its input is not an error.
            let _ = stdin.write_all(&json).await;
            let _ = stdin.shutdown().await;
        }
        drop(stdin);
        child.wait().await
    };
    match tokio::time::timeout(limit, run).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(DeliveryError::Failed(status.to_string())),
        Ok(Err(error)) => Err(DeliveryError::Failed(error.to_string())),
        Err(_) => {
            if let Some(group) = group.and_then(|pid| i32::try_from(pid).ok()) {
                // SAFETY: kill(2) with a negative pid signals the process
                // group the child leads; it has no memory effects.
                unsafe {
                    libc::kill(-group, libc::SIGKILL);
                }
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), child.wait()).await;
            Err(DeliveryError::TimedOut(limit.as_millis()))
        }
    }
}

/// POSTs the alert as JSON to `url`: a 2xx answer is delivered; anything
/// else is tried again after a doubling backoff, `limits.attempts` times
/// in all, each attempt bounded by `limits.webhook`.
pub async fn post_webhook(url: &Url, alert: &Alert, limits: Limits) -> Result<(), DeliveryError> {
    let body = serde_json::to_vec(alert).unwrap_or_default();
    let attempts = limits.attempts.max(1);
    let mut wait = limits.backoff;
    let mut last = String::new();
    for attempt in 1..=attempts {
        match post_json(url, body.clone(), limits.webhook).await {
            Ok(status) if (200..300).contains(&status) => return Ok(()),
            Ok(status) => last = format!("HTTP {status}"),
            Err(reason) => last = reason,
        }
        if attempt < attempts {
            tokio::time::sleep(wait).await;
            wait = wait.saturating_mul(2);
        }
    }
    Err(DeliveryError::Webhook { attempts, last })
}
