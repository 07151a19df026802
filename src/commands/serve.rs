//! `quotatrack serve --stdio`: host events as JSON lines in, engine events
//! as JSON lines out, for one host session. The first engine on a data dir
//! owns it ([`own`]); another follows the owner's snapshot and forwards
//! refreshes ([`follow`]), and takes the data dir over when the owner goes
//! away. The loops are generic over their input and output, so tests drive
//! them with in-memory pipes.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncBufRead;

use super::endpoint::Bound;
use super::{Sources, engine, is_owned, listen, runtime, snapshot};
use crate::alerts::Alert;
use crate::alerts::deliver::Delivery;
use crate::engine::{Engine, Ticker};
use crate::events::HostEvent;
use crate::http::Published;
use crate::machines::controller::{Effect, worth_showing};
use crate::owner;
use crate::providers::ProviderId;
use crate::session::input::HostLines;
use crate::session::{EngineEvent, Follower};

/// `quotatrack serve --stdio`: host events as JSON lines on stdin, engine
/// events as JSON lines on stdout. A line that is not a host event (too
/// long, not UTF-8, not JSON, an unknown type) gets an `error` event naming
/// the line, and nothing changes (`session::input`). The interval runs
/// on the wall clock (a tracker cycle, then the controller's `interval`).
/// At `session_shutdown` or the end of input the engine writes its
/// checkpoint and the process exits 0.
///
/// The first engine on a data dir owns it. Another gets `already_active`,
/// answers every host event from the owner's snapshot, forwards refreshes
/// to the owner (`control.rs`), and takes the data dir over (saying
/// `ready`) when the owner goes away, showing the provider its host was
/// shown ([`Resume`]).
///
/// With `--http ADDR` too, the same process serves `serve --http`'s
/// endpoints from this session's engine (`http` is the address and the
/// token file): as a follower from the owner's snapshot, as the owner from
/// the engine after each step.
pub(super) fn run_serve(sources: &Sources, http: Option<(SocketAddr, Option<&Path>)>) -> anyhow::Result<ExitCode> {
    let http = match http {
        Some((address, token_file)) => Some((address, super::endpoint::access(address, token_file)?)),
        None => None,
    };
    let every = sources.settings.interval().unsigned_abs();
    let published = Arc::new(
        Published::follower(&sources.data_dir, sources.clock.clone(), every)
            .with_stale_after(sources.settings.stale_after()),
    );
    runtime()?.block_on(async {
        let server = match http {
            Some((address, token)) => Some(Bound::bind(address, token).await?.serve(&published)?),
            None => None,
        };
        let session = async {
            let mut out = std::io::stdout().lock();
            let mut input = HostLines::new(tokio::io::BufReader::new(tokio::io::stdin()));
            let (engine, resume) = match engine(sources) {
                Ok(engine) => (engine, Resume::default()),
                Err(error) if is_owned(&error) => match follow(sources, &mut input, &mut out).await? {
                    Some(taken) => taken,
                    None => return Ok(()),
                },
                Err(error) => return Err(error),
            };
            let shown = server.is_some().then_some(published.as_ref());
            own(engine, sources, resume, &mut input, &mut out, shown).await
        };
        let session = session.await;
        if let Some(server) = server {
            server.stop().await;
        }
        session.map(|()| ExitCode::SUCCESS)
    })
}

/// What a host session had chosen before this engine owned the data dir
/// (as a follower's): the owner starts from it, so the host's footer does
/// not jump back to another provider when a follower takes over.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resume {
    /// The host's last model change (`model_changed`).
    pub model: Option<HostEvent>,
    /// The provider the host was shown: its model's, or the one it cycled to.
    pub current: Option<ProviderId>,
}

/// The owner's loop: host events, the interval, and followers' refreshes,
/// until `session_shutdown` or the end of input; then the checkpoint.
pub async fn own<R: AsyncBufRead + Unpin>(
    mut engine: Engine,
    sources: &Sources,
    resume: Resume,
    input: &mut HostLines<R>,
    out: &mut impl Write,
    published: Option<&Published>,
) -> anyhow::Result<()> {
    let mut requests = None;
    let session = serve_owned(&mut engine, sources, resume, input, out, &mut requests, published).await;
    if let Some(requests) = requests {
        requests.stop(&sources.data_dir);
    }
    // The checkpoint is written however the session ended (a closed
    // stdout included); the session's own error, if any, comes after.
    engine.close()?;
    session
}

/// The owner's session itself: `ready`, the host's choices made as a
/// follower ([`resumed`]), then the loop until the host is done;
/// `requests` is the control socket once it is bound.
async fn serve_owned<R: AsyncBufRead + Unpin>(
    engine: &mut Engine,
    sources: &Sources,
    resume: Resume,
    input: &mut HostLines<R>,
    out: &mut impl Write,
    requests: &mut Option<owner::Listening>,
    published: Option<&Published>,
) -> anyhow::Result<()> {
    let show = |engine: &Engine| {
        if let Some(published) = published {
            published.update(engine);
        }
    };
    let mut alerts = engine.subscribe_alerts();
    let mut delivering = Vec::new();
    send(out, None, engine.start().await?)?;
    engine.cycle().await?;
    send(out, None, fired(&mut alerts, engine, &mut delivering))?;
    send(out, None, resumed(engine, sources, resume).await?)?;
    show(engine);
    *requests = listen(sources, engine);
    let mut ticker = Ticker::new(engine);
    loop {
        tokio::select! {
            line = input.next() => {
                let Some((number, event)) = line? else { break };
                match event {
                    Ok(host) => {
                        let last = host == HostEvent::SessionShutdown;
                        send(out, Some(number), engine.handle(host).await?)?;
                        if last {
                            break;
                        }
                        // A patched interval retimes the timer at once.
                        ticker.follow(engine);
                    }
                    Err(error) => send(out, Some(number), vec![error])?,
                }
            }
            Some((request, done)) = next_request(requests) => {
                engine.force_refresh(request.refresh).await?;
                let _ = done.send(());
            }
            () = ticker.tick() => {
                engine.cycle().await?;
                send(out, None, engine.handle(HostEvent::Interval).await?)?;
            }
        }
        show(engine);
        send(out, None, fired(&mut alerts, engine, &mut delivering))?;
        delivering.retain(|task| !task.is_finished());
    }
    // Deliveries under way get a short grace (each is bounded anyway).
    let grace = tokio::time::Instant::now() + DELIVERY_GRACE;
    for task in delivering {
        let _ = tokio::time::timeout_at(grace, task).await;
    }
    Ok(())
}

/// Makes the host's choices as a follower the owner's: its model change,
/// then as many `cycle_provider` as it takes to show the provider the host
/// was shown (host events like any other, so the log records them and
/// replays). When the provider is not one a cycle can move to here (not
/// enabled, nothing to show), the model's rule stands. Returns what the
/// host is told: the views as they end (not the ones along the way, so
/// the footer does not flicker through other providers).
async fn resumed(engine: &mut Engine, sources: &Sources, resume: Resume) -> anyhow::Result<Vec<EngineEvent>> {
    let mut told = Vec::new();
    if let Some(model) = resume.model {
        told.extend(engine.handle(model).await?);
    }
    let Some(wanted) = resume.current.filter(|wanted| cycles_to(engine, sources, *wanted)) else {
        return Ok(told);
    };
    let mut shown = shown_provider(engine).await?;
    for _ in 0..engine.settings().providers.len() {
        if shown == Some(wanted) {
            break;
        }
        let cycled = engine.handle(HostEvent::CycleProvider).await?;
        let stayed = cycled
            .iter()
            .any(|event| matches!(event, EngineEvent::CycleUnchanged { .. }));
        told.extend(cycled);
        if stayed {
            break;
        }
        shown = shown_provider(engine).await?;
    }
    told.retain(|event| {
        !matches!(
            event,
            EngineEvent::UpdateCurrent { .. } | EngineEvent::UpdateAll { .. } | EngineEvent::CycleUnchanged { .. }
        )
    });
    told.extend(engine.handle(HostEvent::GetCurrent).await?);
    told.extend(engine.handle(HostEvent::GetAll).await?);
    Ok(told)
}

/// The provider the owner shows (a query: nothing fetched or recorded).
async fn shown_provider(engine: &mut Engine) -> anyhow::Result<Option<ProviderId>> {
    let told = engine.handle(HostEvent::GetCurrent).await?;
    Ok(told.into_iter().find_map(|event| match event {
        EngineEvent::UpdateCurrent { provider, .. } => provider,
        _ => None,
    }))
}

/// Whether the owner's cycle can move to `provider` now: the settings
/// enable it and the store has something to show for it (the rule a
/// cycle probes with), so cycles reach it before they wrap around.
fn cycles_to(engine: &Engine, sources: &Sources, provider: ProviderId) -> bool {
    let facts = crate::session::facts(engine.store(), engine.settings(), None, sources.clock.now());
    facts.enabled.contains(&provider) && facts.providers.get(&provider).is_some_and(worth_showing)
}

/// A delivery under way.
pub(super) type Delivering = tokio::task::JoinHandle<Result<(), crate::alerts::deliver::DeliveryError>>;

/// How long a session that ends waits for alert deliveries under way.
const DELIVERY_GRACE: Duration = Duration::from_secs(5);

/// The alerts fired since the last call, as `alert` events, each also
/// handed to the command and the webhook the settings in force name (in
/// tasks of their own).
pub(super) fn fired(
    alerts: &mut tokio::sync::broadcast::Receiver<Arc<Alert>>,
    engine: &Engine,
    delivering: &mut Vec<Delivering>,
) -> Vec<EngineEvent> {
    let delivery = Delivery::from_settings(&engine.settings().alerts).reporting(engine.outside());
    let mut told = Vec::new();
    loop {
        match alerts.try_recv() {
            Ok(alert) => {
                delivering.extend(delivery.spawn(&alert));
                told.push(EngineEvent::Alert(Box::new(Alert::clone(&alert))));
            }
            Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {}
            Err(_) => return told,
        }
    }
}

pub(crate) async fn next_request(requests: &mut Option<owner::Listening>) -> Option<owner::Asked> {
    match requests {
        Some(requests) => requests.next().await,
        None => std::future::pending().await,
    }
}

/// The follower's loop: every host event is answered with the owner's
/// latest snapshot; `refresh` and `model_changed` first ask the owner to
/// refresh the host's provider (the owner's gates apply to everyone).
/// When the owner goes away (its connection closes, or, without one, at
/// each interval) this engine tries to take the data dir over; it returns
/// the engine and what the host had chosen (its last model change, the
/// provider it was shown) when it did, `None` when the host finished.
pub async fn follow<R: AsyncBufRead + Unpin>(
    sources: &Sources,
    input: &mut HostLines<R>,
    out: &mut impl Write,
) -> anyhow::Result<Option<(Engine, Resume)>> {
    let (mut follower, first) = Follower::start();
    follower.set_enabled(&sources.settings.providers);
    if first.contains(&Effect::EmitAlreadyActive) {
        send(out, None, vec![EngineEvent::AlreadyActive])?;
    }
    let mut owner = owner::Connection::connect(&sources.data_dir).await.ok();
    let mut model = None;
    let every = sources.settings.interval().unsigned_abs();
    let mut timer = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            line = input.next() => {
                let Some((number, event)) = line? else { return Ok(None) };
                let host = match event {
                    Ok(host) => host,
                    Err(error) => {
                        send(out, Some(number), vec![error])?;
                        continue;
                    }
                };
                if crate::session::query(&host).is_some() {
                    // Answered from the owner's snapshot (empty before its first).
                    let now = sources.clock.now();
                    let view = match snapshot(sources)? {
                        Some(view) => view,
                        None => crate::status::view(&crate::store::Store::default(), now, &Default::default()),
                    };
                    send(out, Some(number), follower.answer(&host, &view, now).into_iter().collect())?;
                    continue;
                }
                match &host {
                    HostEvent::ModelChanged { .. } => model = Some(host.clone()),
                    HostEvent::SettingsPatch { .. } => {
                        let message = "settings_patch: another engine owns the data dir and its settings are in force; \
                                       patch that engine or the settings file"
                            .to_owned();
                        send(out, Some(number), vec![EngineEvent::Error { line: None, message }])?;
                    }
                    _ => {}
                }
                let effects = follower.handle(&host, snapshot(sources)?.as_ref());
                for effect in effects {
                    match effect {
                        Effect::Forward(_) => {
                            if let Some(connection) = &mut owner {
                                if connection.refresh(follower.current()).await.is_err() {
                                    owner = None;
                                }
                            }
                        }
                        Effect::EmitCycled(cycled) => {
                            send(out, None, follower.cycled(cycled).into_iter().collect())?;
                        }
                        Effect::EmitCurrent => {
                            // Read again: a forwarded refresh has just changed it.
                            if let Some(view) = snapshot(sources)? {
                                send(out, None, follower.shown(&view, sources.clock.now()))?;
                            }
                        }
                        _ => {}
                    }
                }
                if follower.is_shut_down() {
                    return Ok(None);
                }
                if owner.is_some() {
                    continue;
                }
            }
            () = owner_gone(&mut owner) => {
                // Its lock goes as its process ends: keep trying a while.
                owner = None;
                if let Some(engine) = take_over(sources, &mut owner, 200).await? {
                    let current = follower.current();
                    return Ok(Some((engine, Resume { model, current })));
                }
                continue;
            }
            _ = timer.tick() => {
                if owner.is_some() {
                    continue;
                }
            }
        }
        if let Some(engine) = take_over(sources, &mut owner, 1).await? {
            let current = follower.current();
            return Ok(Some((engine, Resume { model, current })));
        }
    }
}

/// Completes when the owner's connection closes; never without one.
pub(super) async fn owner_gone(owner: &mut Option<owner::Connection>) {
    match owner {
        Some(owner) => owner.gone().await,
        None => std::future::pending().await,
    }
}

/// Without an owner to talk to: takes the data dir over, or connects to
/// the engine that did; `attempts` tries 50 ms apart (after that the
/// interval tries again).
pub(super) async fn take_over(
    sources: &Sources,
    owner: &mut Option<owner::Connection>,
    attempts: usize,
) -> anyhow::Result<Option<Engine>> {
    for attempt in 1..=attempts {
        match engine(sources) {
            Ok(engine) => return Ok(Some(engine)),
            Err(error) if is_owned(&error) => {}
            Err(error) => return Err(error),
        }
        if let Ok(connection) = owner::Connection::connect(&sources.data_dir).await {
            *owner = Some(connection);
            return Ok(None);
        }
        if attempt < attempts {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(None)
}

/// Writes engine events as JSON lines, errors naming input line `line`.
fn send(out: &mut impl Write, line: Option<usize>, events: Vec<EngineEvent>) -> anyhow::Result<()> {
    for mut event in events {
        if let EngineEvent::Error { line: at, .. } = &mut event {
            *at = at.or(line);
        }
        serde_json::to_writer(&mut *out, &event)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}
