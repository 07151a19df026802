//! Provider health: each provider's public status page, read into one
//! indicator and a one-line description. Polled beside usage with its own
//! TTL; shown in the status line and in `status --json` as `status_page`.
//!
//! Two feeds (`reference/provider-wire-formats.md` §8):
//! - Atlassian Statuspage `status.json` (Claude, OpenAI for Codex, GitHub
//!   for Copilot): `status.indicator` is the reading, `status.description`
//!   its text;
//! - the Google Workspace incidents feed (Gemini, Antigravity): an array of
//!   incidents; the ones still open (`end` absent, null or empty) that
//!   affect the Gemini product count, and the worst of them is the reading.
//!
//! Kiro and Z.ai have no status page. A page that cannot be read is an
//! error, never a reading: the engine records it as `unknown` and the
//! projection keeps the last good indicator.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::answers::{Reading, Reply};
use crate::events::Event;
use crate::exchange::RecordedExchange;
use crate::providers::decode::{array_at, at, text, text_at};
use crate::providers::{AuthScheme, Method, ProviderId, Response};
use crate::transport::{Purpose, Request};

/// The Gemini product in the Google incidents feed (Antigravity runs on it too).
pub const GEMINI_PRODUCT: &str = "npdyhgECDJ6tB66MxXyo";

/// How healthy a provider says it is, from best to worst; `Unknown` when
/// the page could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Indicator {
    /// All systems operational.
    None,
    /// Planned maintenance.
    Maintenance,
    /// Degraded or a minor outage.
    Minor,
    /// A partial outage.
    Major,
    /// A major outage.
    Critical,
    /// The page could not be read.
    Unknown,
}

impl Indicator {
    /// Every indicator, as written.
    pub const ALL: [Indicator; 6] = [
        Indicator::None,
        Indicator::Maintenance,
        Indicator::Minor,
        Indicator::Major,
        Indicator::Critical,
        Indicator::Unknown,
    ];

    /// The name as written in events and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Indicator::None => "none",
            Indicator::Maintenance => "maintenance",
            Indicator::Minor => "minor",
            Indicator::Major => "major",
            Indicator::Critical => "critical",
            Indicator::Unknown => "unknown",
        }
    }

    /// Reads a written name; anything else is `None`.
    pub fn parse(name: &str) -> Option<Indicator> {
        Indicator::ALL.into_iter().find(|indicator| indicator.as_str() == name)
    }

    /// The word the status line shows, `None` when all is well or unknown.
    pub fn word(self) -> Option<&'static str> {
        match self {
            Indicator::None | Indicator::Unknown => None,
            Indicator::Maintenance => Some("maintenance"),
            Indicator::Minor => Some("degraded"),
            Indicator::Major => Some("partial outage"),
            Indicator::Critical => Some("outage"),
        }
    }
}

impl fmt::Display for Indicator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One status page reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// The indicator.
    pub indicator: Indicator,
    /// The page's one-line description, when it gives one.
    pub description: Option<String>,
}

/// Where a provider's health is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    /// An Atlassian Statuspage (`/api/v2/status.json`).
    Statuspage {
        /// Scheme and host.
        origin: &'static str,
    },
    /// The Google Workspace incidents feed, filtered to one product.
    GoogleIncidents {
        /// The product id.
        product: &'static str,
    },
}

impl Feed {
    /// The feed of `provider`, if it has one.
    pub fn of(provider: ProviderId) -> Option<Feed> {
        match provider {
            ProviderId::Anthropic => Some(Feed::Statuspage {
                origin: "https://status.claude.com",
            }),
            ProviderId::Codex => Some(Feed::Statuspage {
                origin: "https://status.openai.com",
            }),
            ProviderId::Copilot => Some(Feed::Statuspage {
                origin: "https://www.githubstatus.com",
            }),
            ProviderId::Gemini | ProviderId::Antigravity => Some(Feed::GoogleIncidents {
                product: GEMINI_PRODUCT,
            }),
            ProviderId::Kiro | ProviderId::Zai => None,
        }
    }

    /// The origin the feed is served from.
    pub fn origin(self) -> &'static str {
        match self {
            Feed::Statuspage { origin } => origin,
            Feed::GoogleIncidents { .. } => "https://www.google.com",
        }
    }

    /// The path (after the origin) of the feed.
    pub fn path(self) -> &'static str {
        match self {
            Feed::Statuspage { .. } => "/api/v2/status.json",
            Feed::GoogleIncidents { .. } => "/appsstatus/dashboard/incidents.json",
        }
    }

    /// Reads one response of this feed.
    pub fn parse(self, response: &Response) -> Result<Health, String> {
        if !(200..300).contains(&response.status) {
            return Err(format!("status page answered HTTP {}", response.status));
        }
        let json: Value = serde_json::from_slice(response.body).map_err(|error| {
            let start = String::from_utf8_lossy(&response.body[..response.body.len().min(40)]).into_owned();
            format!("status page is not JSON ({error}): {start:?}")
        })?;
        match self {
            Feed::Statuspage { .. } => statuspage(&json),
            Feed::GoogleIncidents { product } => google(&json, product),
        }
    }
}

fn statuspage(json: &Value) -> Result<Health, String> {
    let name =
        text_at(json, &["status", "indicator"]).ok_or_else(|| "status page has no `status.indicator`".to_owned())?;
    let indicator = Indicator::parse(&name.to_ascii_lowercase())
        .filter(|indicator| *indicator != Indicator::Unknown)
        .ok_or_else(|| {
            format!("status page indicator {name:?} is not one of none, minor, major, critical, maintenance")
        })?;
    Ok(Health {
        indicator,
        description: text_at(json, &["status", "description"]),
    })
}

fn google(json: &Value, product: &str) -> Result<Health, String> {
    let incidents = json
        .as_array()
        .ok_or_else(|| "incidents feed is not a JSON array".to_owned())?;
    let mut worst = Health {
        indicator: Indicator::None,
        description: None,
    };
    for incident in incidents
        .iter()
        .filter(|incident| open(incident) && affects(incident, product))
    {
        let indicator = google_indicator(incident);
        if indicator > worst.indicator {
            worst = Health {
                indicator,
                description: at(incident, &["external_desc"])
                    .and_then(text)
                    .and_then(|desc| summary(&desc)),
            };
        }
    }
    Ok(worst)
}

/// An incident without an end (absent, null or empty) is still open.
fn open(incident: &Value) -> bool {
    at(incident, &["end"]).and_then(text).is_none()
}

/// Whether the incident affects `product`: `currently_affected_products`
/// when the feed gives it, else `affected_products`.
fn affects(incident: &Value, product: &str) -> bool {
    let products = match at(incident, &["currently_affected_products"]) {
        Some(_) => array_at(incident, &["currently_affected_products"]),
        None => array_at(incident, &["affected_products"]),
    };
    products
        .iter()
        .any(|entry| text_at(entry, &["id"]).as_deref() == Some(product))
}

fn google_indicator(incident: &Value) -> Indicator {
    let status = text_at(incident, &["most_recent_update", "status"]).or_else(|| text_at(incident, &["status_impact"]));
    match status.as_deref() {
        Some("AVAILABLE") => Indicator::None,
        Some("SERVICE_OUTAGE") => Indicator::Critical,
        Some("SERVICE_DISRUPTION") => Indicator::Major,
        Some("SERVICE_INFORMATION") => Indicator::Minor,
        Some("SERVICE_MAINTENANCE" | "SCHEDULED_MAINTENANCE") => Indicator::Maintenance,
        _ => match text_at(incident, &["severity"]).as_deref() {
            Some("high") => Indicator::Critical,
            Some("medium") => Indicator::Major,
            _ => Indicator::Minor,
        },
    }
}

/// The first line of a Markdown description that says something, without
/// the `**Summary**` heading and Markdown emphasis.
fn summary(markdown: &str) -> Option<String> {
    markdown
        .lines()
        .map(|line| line.trim().trim_start_matches(['-', '*', '#', ' ']).replace("**", ""))
        .map(|line| line.trim().to_owned())
        .find(|line| !line.is_empty() && !line.eq_ignore_ascii_case("summary"))
}

/// Reads a recorded status page exchange of `provider`.
pub fn read(provider: ProviderId, exchange: &RecordedExchange) -> Result<Health, String> {
    let feed = Feed::of(provider).ok_or_else(|| format!("{provider} has no status page"))?;
    exchange.response.read(|response| feed.parse(response))
}

/// The status page request of `provider`, if it has a status page.
pub fn request(provider: ProviderId) -> Option<Request> {
    request_from(provider, None)
}

/// The status page request of `provider`, if it has a status page: its
/// own, or `url` when the settings name one (read in the same format).
pub fn request_from(provider: ProviderId, url: Option<&crate::transport::Url>) -> Option<Request> {
    let feed = Feed::of(provider)?;
    let (origin, path) = match url {
        Some(url) => {
            let origin = url.origin().ascii_serialization();
            let path = match url.query() {
                Some(query) => format!("{}?{query}", url.path()),
                None => url.path().to_owned(),
            };
            (origin, path)
        }
        None => (feed.origin().to_owned(), feed.path().to_owned()),
    };
    Some(Request {
        provider,
        purpose: Purpose::StatusPage,
        method: Method::Get,
        origin,
        path,
        headers: vec![("accept".to_owned(), "application/json".to_owned())],
        secret_headers: Vec::new(),
        body: None,
        auth: AuthScheme::Bearer,
        credential: None,
    })
}

/// The event recording what a status page request came to: the reading
/// (with the page, so replay reads it again), or `unknown` with the reason
/// it could not be read.
pub fn checked(provider: ProviderId, reply: Reply) -> Event {
    let (reading, exchange) = match reply {
        Reply::Response(exchange) => (read(provider, &exchange), Some(Box::new(exchange))),
        Reply::Failed { reason, .. } => (Err(format!("status page: {reason}")), None),
        Reply::Read(Reading::Page { indicator, description }) => {
            return Event::StatusChecked {
                provider,
                indicator,
                description,
                exchange: None,
                body_repeated: false,
            };
        }
        Reply::Read(Reading::Usage(_)) => (Err("status page: no page recorded".to_owned()), None),
    };
    let (indicator, description) = match reading {
        Ok(health) => (health.indicator, health.description),
        Err(reason) => (Indicator::Unknown, Some(reason)),
    };
    Event::StatusChecked {
        provider,
        indicator: indicator.as_str().to_owned(),
        description,
        exchange,
        body_repeated: false,
    }
}
