//! The `quotatrack` command: parse arguments, run one library call per
//! command, format its output, and map the result to an exit code here and
//! nowhere else (0 ok, 1 the command's own check failed, 2 usage or
//! unreadable input, 3 the data dir is owned by another process).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use jiff::{SignedDuration, Timestamp};
use quotatrack::cli::{Args, Command, DemoArgs, LogArgs, LogCommand, ParseArgs, RecordArgs, ReplayArgs, StatusArgs};
use quotatrack::clock::{Clock, FileClock, ShiftedClock};
use quotatrack::credentials::{Discovery, FixedCredentials, Lookup};
use quotatrack::engine::Engine;
use quotatrack::events::{Event, HostEvent, Stream};
use quotatrack::exchange::RecordedExchange;
use quotatrack::journal::Journal;
use quotatrack::log::{Log, LogError, damage};
use quotatrack::machines::controller::Effect;
use quotatrack::providers::{ProviderId, Response};
use quotatrack::session::input::HostLines as HostInput;
use quotatrack::session::{EngineEvent, Follower};
use quotatrack::settings::Settings;
use quotatrack::status::{self, StatusOptions};
use quotatrack::transport::{ExchangePlayer, HttpTransport, Url};
use quotatrack::wire::{ParseOutput, Status, rfc3339_seconds};
use quotatrack::{control, footer, record, replay, scenario};

// Every line the command prints goes through these instead of std's: a
// closed stdout (`quotatrack status | true`, `… | head -1`) comes back as
// a `BrokenPipe` error through `?`, which `main` takes as done (exit 0),
// where std's `println!` panics. Writing to stderr is best effort: a
// closed stderr is no reason to fail, let alone panic.
macro_rules! println {
    ($($arg:tt)*) => {
        writeln!(std::io::stdout().lock(), $($arg)*)?
    };
}
macro_rules! print {
    ($($arg:tt)*) => {
        write!(std::io::stdout().lock(), $($arg)*)?
    };
}
macro_rules! eprintln {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

fn main() -> ExitCode {
    let args = Args::parse();
    let json = matches!(
        &args.command,
        Command::Status(StatusArgs { json: true, .. })
            | Command::Parse(ParseArgs { json: true, .. })
            | Command::Replay(ReplayArgs { json: true, .. })
    );
    match run(args) {
        Ok(code) => code,
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            let message = one_line(&error);
            eprintln!("quotatrack: {message}");
            if json {
                let object = serde_json::json!({"error": {"message": message}});
                let _ = writeln!(std::io::stdout().lock(), "{object}");
            }
            if is_owned(&error) {
                ExitCode::from(3)
            } else {
                ExitCode::from(2)
            }
        }
    }
}

/// The error and its causes on one line, each said once: a cause whose
/// text its parent already shows (a transparent wrapper, an I/O error
/// shown by the error that carries it) is not repeated.
fn one_line(error: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if !message.contains(&text) {
            if !message.is_empty() {
                message.push_str(": ");
            }
            message.push_str(&text);
        }
    }
    message
}

/// The log error a cause is or carries (the engine and the demo's
/// scenario wrap the log's, transparently).
fn log_error<'e>(cause: &'e (dyn std::error::Error + 'static)) -> Option<&'e LogError> {
    use quotatrack::engine::EngineError;
    use quotatrack::scenario::ScenarioError;
    let engine = cause
        .downcast_ref::<EngineError>()
        .or_else(|| match cause.downcast_ref::<ScenarioError>() {
            Some(ScenarioError::Engine(engine)) => Some(engine),
            _ => None,
        });
    match engine {
        Some(EngineError::Log(log)) => Some(log),
        _ => cause.downcast_ref::<LogError>(),
    }
}

/// A reader that stopped reading (`quotatrack log export | head`) is not an error.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        let io = cause
            .downcast_ref::<std::io::Error>()
            .or_else(|| match log_error(cause) {
                Some(LogError::Output(io)) => Some(io),
                _ => None,
            });
        io.is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Whether the data dir is owned by another process (exit 3), however
/// deep the log's error sits.
fn is_owned(error: &anyhow::Error) -> bool {
    error
        .chain()
        .any(|cause| matches!(log_error(cause), Some(LogError::Owned { .. })))
}

/// What every engine-running command shares: where, from what, how long.
struct Sources {
    clock: Arc<dyn Clock>,
    data_dir: PathBuf,
    fixtures: Option<PathBuf>,
    timeout: Duration,
    /// The settings file (`--config` / `QUOTATRACK_CONFIG`) as read before
    /// the command does anything, or the defaults for a command that reads
    /// no settings.
    settings: Settings,
    /// `QUOTATRACK_<ID>_BASE_URL`.
    origins: BTreeMap<ProviderId, Url>,
}

/// Whether `command` reads the settings file: it is then read, and a bad
/// one reported, before anything else happens.
fn reads_settings(command: &Command) -> bool {
    matches!(
        command,
        Command::Status(_)
            | Command::Demo(_)
            | Command::Watch
            | Command::Serve(_)
            | Command::Record(_)
            | Command::Credentials
    )
}

/// The settings file read, or the defaults when there is none at the
/// default place.
fn load_settings(config: Option<&Path>) -> anyhow::Result<Settings> {
    let (path, explicit) = quotatrack::config::settings_file(config, |name| std::env::var(name).ok());
    Ok(Settings::load(&path, explicit)?)
}

fn run(args: Args) -> anyhow::Result<ExitCode> {
    let settings = if reads_settings(&args.command) {
        load_settings(args.config.as_deref())?
    } else {
        Settings::default()
    };
    // A base URL that cannot be honoured stops every command before it starts.
    let origins = HttpTransport::origins_from(|name| std::env::var(name).ok())?;
    let data_dir = quotatrack::config::data_dir(args.data_dir.as_deref(), |name| std::env::var(name).ok());
    let sources = Sources {
        clock: match &args.clock_file {
            Some(path) => Arc::new(FileClock { path: path.clone() }),
            None => Arc::new(ShiftedClock {
                frozen: args.clock_at,
                offset: SignedDuration::from_secs(args.now_offset),
            }),
        },
        data_dir: data_dir.clone(),
        fixtures: args.fixtures.clone(),
        timeout: Duration::from_secs_f64(args.timeout),
        settings,
        origins,
    };
    match args.command {
        Command::Parse(parse) => run_parse(parse),
        Command::Status(status) => run_status(&sources, &status),
        Command::Log(log) => run_log(&data_dir, log, sources.clock.now()),
        Command::Store => run_store(&data_dir),
        Command::Replay(replay) => run_replay(&replay),
        Command::Demo(demo) => run_demo(args.data_dir.as_deref(), &demo),
        Command::Watch => run_watch(&sources),
        Command::Record(record) => run_record(&sources, &record),
        Command::Credentials => run_credentials(sources.clock.now(), &sources.settings.providers),
        Command::Serve(_) => run_serve(&sources),
    }
}

/// The engine of `watch` and `status --refresh`: over `--fixtures` when
/// given, else live (credential discovery and HTTP).
fn engine(sources: &Sources) -> anyhow::Result<Engine> {
    let clock = Arc::clone(&sources.clock);
    let settings = sources.settings.clone();
    let builder = Engine::builder()
        .data_dir(&sources.data_dir)
        .clock(clock.clone())
        .fetch_timeout(sources.timeout);
    let builder = match &sources.fixtures {
        Some(fixtures) => {
            let player = ExchangePlayer::from_dir(fixtures, clock)?;
            let recorded = player.providers();
            let credentials = FixedCredentials::present(recorded.clone(), "fixtures");
            let mut settings = settings;
            settings.providers.retain(|id| recorded.contains(id));
            builder
                .settings(settings)
                .transport(Arc::new(player))
                .credentials(Arc::new(credentials))
        }
        None => builder
            .settings(settings)
            .transport(Arc::new(live_transport(sources)?))
            .credentials(Arc::new(Discovery::from_process_env())),
    };
    Ok(builder.build()?)
}

fn live_transport(sources: &Sources) -> anyhow::Result<HttpTransport> {
    Ok(HttpTransport::new(
        sources.clock.clone(),
        sources.timeout,
        sources.origins.clone(),
    )?)
}

/// `quotatrack credentials`: one line per provider; one the settings do
/// not enable says so instead of how to log in.
fn run_credentials(now: Timestamp, enabled: &[ProviderId]) -> anyhow::Result<ExitCode> {
    let discovery = Discovery::from_process_env();
    for id in ProviderId::ALL {
        if enabled.contains(&id) {
            println!("{}", discovery.lookup(id).describe(id, now));
        } else {
            println!("{id}: not enabled in the settings (`providers`)");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `quotatrack record PROVIDER`: one real request, written redacted.
fn run_record(sources: &Sources, args: &RecordArgs) -> anyhow::Result<ExitCode> {
    let discovery = Discovery::from_process_env();
    let transport = live_transport(sources)?;
    let now = sources.clock.now();
    let recorded = runtime()?.block_on(record::record(args.provider, &discovery, &transport, now))?;
    let path = recorded
        .save(args.output.as_deref())
        .with_context(|| format!("cannot write the fixture for {}", args.provider))?;
    eprintln!(
        "wrote {} (HTTP {}, secrets redacted: check it before attaching it to a report)",
        path.display(),
        recorded.exchange.response.status
    );
    println!("{}", recorded.summary);
    Ok(ExitCode::SUCCESS)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
}

fn run_status(sources: &Sources, args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let data_dir = sources.data_dir.as_path();
    if args.refresh {
        if sources.fixtures.is_none() {
            report_missing_credentials(&args.providers, &sources.settings.providers, sources.clock.now());
        }
        match engine(sources) {
            Ok(mut engine) => {
                runtime()?.block_on(engine.refresh(None))?;
                engine.close()?;
            }
            Err(error) => match error.downcast_ref::<quotatrack::engine::EngineError>() {
                Some(quotatrack::engine::EngineError::Log(owned @ LogError::Owned { .. })) => {
                    eprintln!("quotatrack: {owned}; showing its latest snapshot");
                }
                _ => return Err(error),
            },
        }
    }
    let now = sources.clock.now();
    let mut view = status::read_snapshot(data_dir)
        .context("cannot read the last snapshot")?
        .unwrap_or_else(|| Status {
            schema: 1,
            generated_at: rfc3339_seconds(now),
            providers: Vec::new(),
        });
    if view.providers.is_empty() && !args.refresh {
        eprintln!(
            "quotatrack: nothing fetched yet in {}: run `quotatrack status --refresh` or `quotatrack watch`",
            data_dir.display()
        );
    }
    status::settle(&mut view, now, &StatusOptions::default());
    if !args.providers.is_empty() {
        view.providers.retain(|provider| args.providers.contains(&provider.id));
    }
    let text = match (&args.format, args.json) {
        (Some(template), _) => footer::render(template, &view, now)?,
        (None, true) => serde_json::to_string(&view)?,
        (None, false) => status::line(&view, now, None),
    };
    println!("{text}");
    Ok(ExitCode::SUCCESS)
}

fn run_replay(args: &ReplayArgs) -> anyhow::Result<ExitCode> {
    let input = open_input(&args.file)?;
    let request = replay::Request {
        at: args.at,
        timeline: args.timeline,
        json: args.json,
        options: replay::Options::default(),
    };
    let rendered =
        replay::command(input, &request).with_context(|| format!("cannot replay {}", args.file.display()))?;
    println!("{}", rendered.text);
    Ok(if rendered.identical {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn run_demo(explicit_dir: Option<&Path>, args: &DemoArgs) -> anyhow::Result<ExitCode> {
    let chosen = match &args.scenario {
        Some(name) => scenario::incident(name).with_context(|| {
            let names: Vec<&str> = scenario::INCIDENTS.iter().map(|s| s.name).collect();
            format!("no scenario {name:?} (known: {})", names.join(", "))
        })?,
        None => &scenario::DEMO,
    };
    let minutes = args.hours.map_or(chosen.minutes, |hours| hours * 60);
    let temporary = tempfile::tempdir()?;
    let data_dir = explicit_dir.unwrap_or(temporary.path());
    println!(
        "quotatrack {}: {} ({} min of virtual time)",
        chosen.name, chosen.about, minutes
    );
    let timeline = runtime()?.block_on(scenario::run(chosen, minutes, data_dir))?;
    for (time, line) in &timeline.changes {
        println!("{time}  {line}");
    }
    println!("final  {}", timeline.last);
    let requests: Vec<String> = timeline.requests.iter().map(|(id, n)| format!("{id} {n}")).collect();
    println!("requests: {}", requests.join(", "));
    if let Some(dir) = explicit_dir {
        let dir = dir.display();
        println!("log kept in {dir}: quotatrack --data-dir {dir} log export | quotatrack replay -");
    }
    Ok(ExitCode::SUCCESS)
}

/// Tells on stderr, per enabled provider, why there is no usable credential.
fn report_missing_credentials(only: &[ProviderId], enabled: &[ProviderId], now: Timestamp) {
    let discovery = Discovery::from_process_env();
    for id in ProviderId::ALL {
        if !enabled.contains(&id) || (!only.is_empty() && !only.contains(&id)) {
            continue;
        }
        let lookup = discovery.lookup(id);
        let usable = matches!(&lookup, Lookup::Found(credential) if !credential.expired(now));
        if !usable {
            eprintln!("{}", lookup.describe(id, now));
        }
    }
}

fn run_watch(sources: &Sources) -> anyhow::Result<ExitCode> {
    let mut engine = engine(sources)?;
    let mut updates = engine.subscribe();
    runtime()?.block_on(async {
        // Ends when stdout is closed (`quotatrack watch | head -1`): the
        // engine then stops as at a signal.
        let mut printer = tokio::spawn(async move {
            while let Ok(view) = updates.recv().await {
                let line = status::line(&view, Timestamp::now(), None);
                if writeln!(std::io::stdout().lock(), "{line}").is_err() {
                    return;
                }
            }
            std::future::pending::<()>().await;
        });
        let shutdown = shutdown_signal();
        tokio::pin!(shutdown);
        let mut requests = None;
        let every = engine.driver().rules().interval.unsigned_abs();
        let mut timer = tokio::time::interval(every);
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                _ = &mut printer => break,
                Some((request, done)) = next_request(&mut requests) => {
                    engine.force_refresh(request.refresh).await?;
                    let _ = done.send(());
                }
                _ = timer.tick() => {
                    engine.cycle().await?;
                    // Followers may ask once the first snapshot is out.
                    if requests.is_none() {
                        requests = listen(sources);
                    }
                }
            }
        }
        if requests.is_some() {
            control::unlisten(&sources.data_dir);
        }
        engine.close()?;
        printer.abort();
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The owner's control socket, or `None` (said on stderr) when it cannot be bound.
fn listen(sources: &Sources) -> Option<tokio::sync::mpsc::Receiver<control::Asked>> {
    control::listen(&sources.data_dir)
        .inspect_err(|error| eprintln!("quotatrack: followers cannot reach this engine: {error}"))
        .ok()
}

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
/// `ready`) when the owner goes away.
fn run_serve(sources: &Sources) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let mut out = std::io::stdout().lock();
        let mut input = HostLines::new(tokio::io::BufReader::new(tokio::io::stdin()));
        let (engine, model) = match engine(sources) {
            Ok(engine) => (engine, None),
            Err(error) if is_owned(&error) => match follow(sources, &mut input, &mut out).await? {
                Some(taken) => taken,
                None => return Ok(ExitCode::SUCCESS),
            },
            Err(error) => return Err(error),
        };
        own(engine, sources, model, &mut input, &mut out).await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// The host's input lines on stdin (`session::input`: bounded, numbered).
type HostLines = HostInput<tokio::io::BufReader<tokio::io::Stdin>>;

/// The owner's loop: host events, the interval, and followers' refreshes,
/// until `session_shutdown` or the end of input; then the checkpoint.
async fn own(
    mut engine: Engine,
    sources: &Sources,
    model: Option<HostEvent>,
    input: &mut HostLines,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let mut requests = None;
    let session = serve_owned(&mut engine, sources, model, input, out, &mut requests).await;
    if requests.is_some() {
        control::unlisten(&sources.data_dir);
    }
    // The checkpoint is written however the session ended (a closed
    // stdout included); the session's own error, if any, comes after.
    engine.close()?;
    session
}

/// The owner's session itself: `ready`, then the loop until the host is
/// done; `requests` is the control socket once it is bound.
async fn serve_owned(
    engine: &mut Engine,
    sources: &Sources,
    model: Option<HostEvent>,
    input: &mut HostLines,
    out: &mut impl Write,
    requests: &mut Option<tokio::sync::mpsc::Receiver<control::Asked>>,
) -> anyhow::Result<()> {
    send(out, None, engine.start().await?)?;
    engine.cycle().await?;
    if let Some(model) = model {
        send(out, None, engine.handle(model).await?)?;
    }
    *requests = listen(sources);
    let every = Duration::from_secs(engine.settings().refresh_interval_s);
    let mut timer = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
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
                    }
                    Err(error) => send(out, Some(number), vec![error])?,
                }
            }
            Some((request, done)) = next_request(requests) => {
                engine.force_refresh(request.refresh).await?;
                let _ = done.send(());
            }
            _ = timer.tick() => {
                engine.cycle().await?;
                send(out, None, engine.handle(HostEvent::Interval).await?)?;
            }
        }
    }
    Ok(())
}

async fn next_request(requests: &mut Option<tokio::sync::mpsc::Receiver<control::Asked>>) -> Option<control::Asked> {
    match requests {
        Some(requests) => requests.recv().await,
        None => std::future::pending().await,
    }
}

/// The follower's loop: every host event is answered with the owner's
/// latest snapshot; `refresh` and `model_changed` first ask the owner to
/// refresh the host's provider (the owner's gates apply to everyone).
/// When the owner goes away (its connection closes, or, without one, at
/// each interval) this engine tries to take the data dir over; it returns
/// the engine and the host's last model change when it did, `None` when
/// the host finished.
async fn follow(
    sources: &Sources,
    input: &mut HostLines,
    out: &mut impl Write,
) -> anyhow::Result<Option<(Engine, Option<HostEvent>)>> {
    let (mut follower, first) = Follower::start();
    if first.contains(&Effect::EmitAlreadyActive) {
        send(out, None, vec![EngineEvent::AlreadyActive])?;
    }
    let mut owner = control::Owner::connect(&sources.data_dir).await.ok();
    let mut model = None;
    let every = Duration::from_secs(sources.settings.refresh_interval_s);
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
                    return Ok(Some((engine, model)));
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
            return Ok(Some((engine, model)));
        }
    }
}

/// Completes when the owner's connection closes; never without one.
async fn owner_gone(owner: &mut Option<control::Owner>) {
    match owner {
        Some(owner) => owner.gone().await,
        None => std::future::pending().await,
    }
}

/// Without an owner to talk to: takes the data dir over, or connects to
/// the engine that did; `attempts` tries 50 ms apart (after that the
/// interval tries again).
async fn take_over(
    sources: &Sources,
    owner: &mut Option<control::Owner>,
    attempts: usize,
) -> anyhow::Result<Option<Engine>> {
    for attempt in 1..=attempts {
        match engine(sources) {
            Ok(engine) => return Ok(Some(engine)),
            Err(error) if is_owned(&error) => {}
            Err(error) => return Err(error),
        }
        if let Ok(connection) = control::Owner::connect(&sources.data_dir).await {
            *owner = Some(connection);
            return Ok(None);
        }
        if attempt < attempts {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(None)
}

/// The owner's latest snapshot, as it stands now.
fn snapshot(sources: &Sources) -> anyhow::Result<Option<Status>> {
    let Some(mut view) = status::read_snapshot(&sources.data_dir)? else {
        return Ok(None);
    };
    status::settle(&mut view, sources.clock.now(), &StatusOptions::default());
    Ok(Some(view))
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

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn run_log(data_dir: &Path, args: LogArgs, now: Timestamp) -> anyhow::Result<ExitCode> {
    match args.command {
        LogCommand::Export { since } => {
            let report = damage::export(data_dir, since, &mut std::io::stdout().lock())?;
            for (seq, reason) in &report.skipped {
                eprintln!("quotatrack: skipped log entry {seq}: {reason}");
            }
            if let Some(damage) = &report.damage {
                eprintln!(
                    "quotatrack: the log in {} is damaged ({damage}); exported {} readable events ({} from the raw files), skipped {}; run `quotatrack log repair`",
                    data_dir.display(),
                    report.written,
                    report.from_raw,
                    report.skipped.len()
                );
            }
            Ok(if report.skipped.is_empty() && report.damage.is_none() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        LogCommand::Import { file } => {
            let input = open_input(&file)?;
            let imported = damage::import(data_dir, input)?;
            println!("imported {imported} events into {}", data_dir.display());
            Ok(ExitCode::SUCCESS)
        }
        LogCommand::Verify => {
            let verified = damage::verify(data_dir)?;
            for line in verified.lines() {
                println!("{line}");
            }
            Ok(if verified.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        LogCommand::Repair => {
            match damage::repair(data_dir, now)? {
                Some(report) => {
                    for line in report.lines() {
                        println!("{line}");
                    }
                }
                None => println!("the log in {} is not damaged; nothing to repair", data_dir.display()),
            }
            Ok(ExitCode::SUCCESS)
        }
        LogCommand::Stats => {
            let stats = damage::stats(data_dir)?;
            for line in stats.lines() {
                println!("{line}");
            }
            if let Some(damage) = &stats.damage {
                eprintln!(
                    "quotatrack: the log in {} is damaged ({damage}); counted {} readable events ({} from the raw files); run `quotatrack log repair`",
                    data_dir.display(),
                    stats.events,
                    stats.from_raw
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        LogCommand::Compact { keep_days } => {
            let mut log = Log::open(data_dir)?;
            let keep = SignedDuration::from_hours(24 * i64::from(keep_days));
            let shortened = log.compact(now, keep)?;
            log.close()?;
            println!("dropped the bodies of {shortened} fetches older than {keep_days} days");
            Ok(ExitCode::SUCCESS)
        }
        LogCommand::Stress { count } => stress(Journal::from_log(data_dir, Log::open(data_dir)?)?, count),
    }
}

/// Appends batches of one to three events, printing each batch's last
/// sequence number once `record` returned (the append is then durable).
fn stress(journal: Journal, count: Option<u64>) -> anyhow::Result<ExitCode> {
    let mut journal = journal.checkpoint_every(50);
    let start = Timestamp::from_second(1_800_000_000)?;
    let mut out = std::io::stdout().lock();
    for round in 0..count.unwrap_or(u64::MAX) {
        let at = start + SignedDuration::from_secs(round as i64);
        let provider = ProviderId::ALL[(round % 7) as usize];
        let stream = Stream::Tracker(provider);
        let mut batch = vec![(at, stream, Event::FetchStarted { provider })];
        for _ in 0..round % 3 {
            batch.push((
                at,
                stream,
                Event::StoreUpdated {
                    provider,
                    fails: (round % 5) as u32,
                    active: true,
                    blocked_until: None,
                },
            ));
        }
        let envelopes = journal.record(batch)?;
        if let Some(last) = envelopes.last() {
            writeln!(out, "{}", last.seq)?;
            out.flush()?;
        }
    }
    journal.close()?;
    Ok(ExitCode::SUCCESS)
}

fn run_store(data_dir: &Path) -> anyhow::Result<ExitCode> {
    let journal = Journal::open(data_dir)?;
    print!("{}", status::store_table(journal.store()));
    Ok(ExitCode::SUCCESS)
}

fn open_input(path: &PathBuf) -> anyhow::Result<Box<dyn BufRead>> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(BufReader::new(std::io::stdin())));
    }
    let file = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Box::new(BufReader::new(file)))
}

fn run_parse(args: ParseArgs) -> anyhow::Result<ExitCode> {
    let input = read_input(&args.file)?;
    let (status, headers, body, recorded_at) = if args.exchange {
        let exchange: RecordedExchange = serde_json::from_slice(&input)
            .with_context(|| format!("{} is not a recorded exchange", args.file.display()))?;
        let response = exchange.response;
        (
            response.status,
            response.header_pairs(),
            response.body_bytes(),
            Some(exchange.recorded_at),
        )
    } else {
        (args.status, args.headers, input, None)
    };
    let response = Response {
        status,
        headers: &headers,
        body: &body,
    };
    let now = args.now.or(recorded_at).unwrap_or_else(jiff::Timestamp::now);
    let result = args.provider.provider().parse(&response, now);
    let output = ParseOutput::new(args.provider, &result);
    let text = if args.json {
        let mut json = serde_json::to_string_pretty(&output)?;
        json.push('\n');
        json
    } else {
        output.to_text()
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(if result.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn read_input(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    let mut body = Vec::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .read_to_end(&mut body)
            .context("cannot read standard input")?;
    } else {
        body = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    }
    Ok(body)
}
