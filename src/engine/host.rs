//! The host side of the engine: a host event in, the controller machine
//! stepped with the facts of the moment, its effects performed (fetches
//! through the one update cycle, settings patches through the one place
//! settings take effect, updates for the host), and what the host should
//! be told out. `serve --stdio` and replay both come through here.

use serde_json::Value;

use super::{Engine, EngineError};
use crate::events::{Event, HostEvent, Stream};
use crate::machines::controller::{self, Context, Controller, Effect, Input};
use crate::providers::ProviderId;
use crate::providers::detect::detect;
use crate::session::{EngineEvent, Told, cycled_answer, decisions, facts, fetched, patched, query, trigger, updates};
use crate::status;

/// The controller machine and what it works with.
pub struct Session {
    machine: controller::Machine,
    /// The provider of the host's current model.
    model: Option<ProviderId>,
    /// The host's current model id, for what a request to it costs.
    model_id: Option<String>,
    /// A patch waiting for the controller's `LoadSettings`.
    patch: Option<Value>,
    /// Why the last patch was refused.
    rejection: Option<String>,
    /// The last `update_current` and `update_all` sent, to send only changes.
    told: Told,
    /// A host event is being handled: its records are held until it shows
    /// it changed something ([`Engine::handle`]).
    holding: bool,
}

impl Session {
    pub(crate) fn new() -> Session {
        Session {
            machine: Controller::machine(),
            model: None,
            model_id: None,
            patch: None,
            rejection: None,
            told: Told::default(),
            holding: false,
        }
    }
}

impl Engine {
    /// Starts a host session's controller as the owner of the data dir:
    /// it loads the settings and says `ready`.
    pub async fn start(&mut self) -> Result<Vec<EngineEvent>, EngineError> {
        self.session = Session::new();
        self.drive(Input::Start).await
    }

    /// Handles one host event; returns what the host should be told.
    ///
    /// The host event and the controller's decisions are recorded only
    /// when handling it changed something: something else was recorded (a
    /// fetch, settings), the host was told something besides the view, or
    /// the controller (its state, its storage, the model) is not as it was.
    /// A host event that changed nothing leaves no trace, so the log and
    /// the memory of a long session grow with what happened, not with how
    /// often the host spoke. The view (`update_current`, `update_all`) is
    /// left out of that test: its countdowns move with the clock, and what
    /// is recorded must not depend on the instant the view was drawn, or a
    /// replay could not tell it.
    ///
    /// A query (`get_current`, `get_all`) is answered from the store as it
    /// is, whatever state the controller is in: no fetch, no record.
    pub async fn handle(&mut self, host: HostEvent) -> Result<Vec<EngineEvent>, EngineError> {
        if let Some(which) = query(&host) {
            let updates = self.views();
            return Ok(vec![self.session.told.answer(updates, which)]);
        }
        let at = self.clock.now();
        let before = (
            self.session.machine.state().clone(),
            self.session.machine.inner().clone(),
            self.session.model,
            self.journal.next_seq(),
        );
        let recorded = match &host {
            HostEvent::SettingsPatch { patch } => HostEvent::SettingsPatch {
                patch: crate::settings::without_targets(patch),
            },
            other => other.clone(),
        };
        let reported = Event::HostReported { host: recorded };
        self.journal.hold([(at, Stream::Controller, reported)]);
        let trigger = trigger(&host);
        match host {
            HostEvent::ModelChanged { provider, model } => {
                self.session.model = detect(provider.as_deref(), &model);
                self.session.model_id = Some(model);
            }
            HostEvent::SettingsPatch { patch } => self.session.patch = Some(patch),
            _ => {}
        }
        self.session.holding = true;
        let told = self.drive(Input::Trigger(trigger)).await;
        self.session.holding = false;
        let told = told?;
        let after = (
            self.session.machine.state().clone(),
            self.session.machine.inner().clone(),
            self.session.model,
            self.journal.next_seq(),
        );
        let only_views = told
            .iter()
            .all(|event| matches!(event, EngineEvent::UpdateCurrent { .. } | EngineEvent::UpdateAll { .. }));
        if only_views && after == before {
            self.journal.drop_held();
        } else {
            self.journal.record(Vec::new())?;
        }
        Ok(told)
    }

    /// Feeds `input` and every answer and step after it to the controller.
    async fn drive(&mut self, input: Input) -> Result<Vec<EngineEvent>, EngineError> {
        let mut told = Vec::new();
        let mut next = Some(input);
        while let Some(input) = next.take() {
            let now = self.clock.now();
            let mut facts = facts(self.journal.store(), &self.settings, self.session.model, now);
            for (provider, seen) in &mut facts.providers {
                seen.status_due = self.status_page_due(*provider, now);
            }
            let mut context = Context::new(facts);
            self.session.machine.handle_with_context(&input, &mut context);
            if self.session.holding {
                self.journal.hold(decisions(&context));
            } else {
                self.journal.record(decisions(&context))?;
            }
            for effect in context.effects {
                if let Some(answer) = self.perform(effect, &mut told).await? {
                    next = Some(answer);
                }
            }
            if next.is_none() && self.session.machine.state().steps() {
                next = Some(Input::Step);
            }
        }
        Ok(told)
    }

    /// Performs one effect; returns the answer it has for the controller.
    async fn perform(&mut self, effect: Effect, told: &mut Vec<EngineEvent>) -> Result<Option<Input>, EngineError> {
        let settings = || self.settings.to_json();
        Ok(match effect {
            // Building the engine took the data dir's lock.
            Effect::Guard => Some(Input::Guarded { owner: true }),
            Effect::LoadSettings => Some(Input::SettingsLoaded {
                accepted: self.load_settings()?,
            }),
            Effect::EmitReady => {
                told.push(EngineEvent::Ready { settings: settings() });
                None
            }
            Effect::EmitAlreadyActive => {
                told.push(EngineEvent::AlreadyActive);
                None
            }
            Effect::EmitSettingsUpdated => {
                told.push(EngineEvent::SettingsUpdated { settings: settings() });
                None
            }
            Effect::EmitSettingsRejected => {
                let message = self.session.rejection.take().unwrap_or_default();
                told.push(EngineEvent::Error { line: None, message });
                None
            }
            Effect::FetchUsage { provider, force } => {
                let report = self.fetch_usage(provider, force).await?;
                let sent = report.fetched.contains(&provider);
                Some(Input::Fetched(fetched(self.journal.store(), provider, sent)))
            }
            Effect::FetchStatus(provider) => {
                self.fetch_status(provider).await?;
                None
            }
            Effect::EmitCurrent => {
                self.emit(told);
                None
            }
            Effect::EmitCycled(cycled) => {
                let current = self.session.machine.inner().current();
                told.extend(cycled_answer(&mut self.session.told, cycled, current));
                None
            }
            // Selections were recorded with the transitions; an owner has no
            // one to forward to.
            Effect::Select(_) | Effect::Forward(_) => None,
        })
    }

    /// Applies the pending patch, if any: recorded when accepted, the
    /// reason kept when not. Loading without a patch always succeeds.
    fn load_settings(&mut self) -> Result<bool, EngineError> {
        let Some(patch) = self.session.patch.take() else {
            return Ok(true);
        };
        let (next, changed) = match patched(&self.settings, &patch) {
            Ok(patched) => patched,
            Err(error) => {
                self.session.rejection = Some(format!("settings_patch: {error}"));
                return Ok(false);
            }
        };
        self.apply_settings(next, changed, Stream::Controller)?;
        // What the patch changed (providers turned off, the stale
        // threshold) is in the snapshot at once, not at the next cycle.
        self.journal
            .publish(self.clock.now(), &self.status_options, self.file_stale_after)?;
        Ok(true)
    }

    /// Tells the host the current provider and all providers, each only
    /// when it differs from what it was last told.
    fn emit(&mut self, told: &mut Vec<EngineEvent>) {
        let updates = self.views();
        told.extend(self.session.told.changed(updates));
    }

    /// `update_current` and `update_all` at the clock's reading.
    /// `update_all` lists every provider ([`status::every_provider`]).
    fn views(&self) -> [EngineEvent; 2] {
        let now = self.clock.now();
        let view = status::view(self.journal.store(), now, &self.status_options);
        let current = self.session.machine.inner().current();
        let shown = status::every_provider(&view, &self.settings.providers);
        let model = self.session.model_id.as_deref();
        updates(&view, current, model, shown.iter(), now)
    }
}
