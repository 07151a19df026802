//! The commands of `quotatrack`, one function each: what the binary runs
//! once it has parsed the arguments. They read the settings, build the
//! engine over the right seams (live, or `--fixtures`), and print; the
//! binary maps what they return to an exit code. This is the one layer
//! with `anyhow`: below it every error is a typed enum.
//!
//! [`serve`] holds the `serve --stdio` loop (owner, follower, takeover);
//! `log` the `log` subcommands.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use jiff::{SignedDuration, Timestamp};

use crate::alerts::deliver::Delivery;
use crate::cli::{Args, Command, DemoArgs, Globals, ParseArgs, RecordArgs, ReplayArgs, StatusArgs, StatuslineArgs};
use crate::clock::{Clock, FileClock, ShiftedClock};
use crate::credentials::{Discovery, FixedCredentials, Lookup};
use crate::engine::Engine;
use crate::exchange::RecordedExchange;
use crate::journal::Journal;
use crate::log::LogError;
use crate::providers::{ProviderId, Response};
use crate::settings::Settings;
use crate::status::{self, StatusOptions};
use crate::transport::{ExchangePlayer, HttpTransport, Url};
use crate::wire::{ParseOutput, Status, rfc3339_seconds};
use crate::{owner, record, replay, scenario};

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

mod endpoint;
pub mod history;
mod http;
mod log;
pub mod serve;

/// The error and its causes on one line, each said once: a cause whose
/// text its parent already shows (a transparent wrapper, an I/O error
/// shown by the error that carries it) is not repeated. A control
/// character (a newline in a path) is written as its escape, so the line
/// stays one.
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
    if !message.contains(char::is_control) {
        return message;
    }
    let mut escaped = String::with_capacity(message.len() + 8);
    for c in message.chars() {
        if c.is_control() {
            escaped.extend(c.escape_default());
        } else {
            escaped.push(c);
        }
    }
    escaped
}

/// The log error a cause is or carries (the engine and the demo's
/// scenario wrap the log's, transparently).
pub fn log_error<'e>(cause: &'e (dyn std::error::Error + 'static)) -> Option<&'e LogError> {
    use crate::engine::EngineError;
    use crate::scenario::ScenarioError;
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

/// The exit code for what a command returned, the error reported first:
/// on stderr as one line, and on stdout as `{"error": {"message"}}` when
/// the command was asked for JSON. 0 ok, 1 the command's own check failed,
/// 2 usage or unreadable input, 3 the data dir is owned by another process.
/// A closed stdout is success: the reader has what it wanted.
pub fn exit_code(result: anyhow::Result<ExitCode>, json: bool) -> ExitCode {
    let error = match result {
        Ok(code) => return code,
        Err(error) if is_broken_pipe(&error) => return ExitCode::SUCCESS,
        Err(error) => error,
    };
    let message = one_line(&error);
    let _ = writeln!(std::io::stderr().lock(), "quotatrack: {message}");
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

/// Whether the data dir is owned by another process (exit 3), however
/// deep the log's error sits.
pub(crate) fn is_owned(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        matches!(log_error(cause), Some(LogError::Owned { .. }))
            || matches!(
                cause.downcast_ref::<history::CommandError>(),
                Some(history::CommandError::Unanswered { .. })
            )
    })
}

/// The environment variable through which `quotatrack` tells the
/// `quotatrack-engine` it starts its own version (they must match), as
/// [`front_mark`] writes it.
pub const FRONT_VERSION: &str = "QUOTATRACK_FRONT_VERSION";

/// [`FRONT_VERSION`]'s value: the front's version and its process id,
/// which `exec` keeps. So the engine, or a front that finds the variable
/// set, tells a value this very process set (it was a front a moment ago)
/// from one it inherited: set by a user, or by a front that started it as
/// a child.
pub fn front_mark() -> String {
    format!("{} {}", env!("CARGO_PKG_VERSION"), std::process::id())
}

/// The version a front set in `value` before becoming this process;
/// `None` for a value set by anyone else, or not in [`front_mark`]'s form.
pub fn front_version_here(value: &std::ffi::OsStr) -> Option<&str> {
    let (version, pid) = value.to_str()?.rsplit_once(' ')?;
    (pid.parse::<u32>().ok()? == std::process::id()).then_some(version)
}

/// What every engine-running command shares: where, from what, how long.
pub struct Sources {
    /// The clock (`--now-offset`, `--clock-at`, `--clock-file`, or the system's).
    pub clock: Arc<dyn Clock>,
    /// The data dir.
    pub data_dir: PathBuf,
    /// `--fixtures`: answer from recorded exchanges instead of the network.
    pub fixtures: Option<PathBuf>,
    /// The bound on one fetch.
    pub timeout: Duration,
    /// The settings file (`--config` / `QUOTATRACK_CONFIG`) as read before
    /// the command does anything, or the defaults for a command that reads
    /// no settings.
    pub settings: Settings,
    /// `QUOTATRACK_<ID>_BASE_URL`.
    pub origins: BTreeMap<ProviderId, Url>,
    /// Where `settings` came from (the path, and whether it was named),
    /// for `watch` to read again at SIGHUP; `None` for a command that
    /// reads no settings.
    pub settings_file: Option<(PathBuf, bool)>,
}

impl Sources {
    /// The sources the options name: the settings file read when
    /// `settings` (else the defaults), the clock, the data dir. A base URL
    /// that cannot be honoured stops every command before it starts.
    pub fn new(globals: &Globals, settings: bool) -> anyhow::Result<Sources> {
        let (settings, settings_file) = if settings {
            let (settings, file) = load_settings(globals.config.as_deref())?;
            (settings, Some(file))
        } else {
            (Settings::default(), None)
        };
        let origins = HttpTransport::origins_from(|name| std::env::var(name).ok())?;
        Ok(Sources {
            clock: match &globals.clock_file {
                Some(path) => Arc::new(FileClock { path: path.clone() }),
                None => Arc::new(ShiftedClock {
                    frozen: globals.clock_at,
                    offset: SignedDuration::from_secs(globals.now_offset),
                }),
            },
            data_dir: crate::config::data_dir(globals.data_dir.as_deref(), |name| std::env::var(name).ok()),
            fixtures: globals.fixtures.clone(),
            timeout: Duration::from_secs_f64(globals.timeout),
            settings,
            origins,
            settings_file,
        })
    }
}

/// Whether `command` reads the settings file: it is then read, and a bad
/// one reported, before anything else happens.
fn reads_settings(command: &Command) -> bool {
    matches!(
        command,
        Command::Status(_)
            | Command::Demo(_)
            | Command::Watch(_)
            | Command::Serve(_)
            | Command::Record(_)
            | Command::Credentials(_)
    )
}

/// The settings file read, or the defaults when there is none at the
/// default place; and where it is.
fn load_settings(config: Option<&Path>) -> anyhow::Result<(Settings, (PathBuf, bool))> {
    let (path, explicit) = crate::config::settings_file(config, |name| std::env::var(name).ok());
    Ok((Settings::load(&path, explicit)?, (path, explicit)))
}

/// Runs the command `args` asks for; its exit code, or the error the
/// binary reports (exit 2, or 3 when [`is_owned`]).
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let sources = Sources::new(&args.globals, reads_settings(&args.command))?;
    let data_dir = sources.data_dir.clone();
    match args.command {
        Command::Parse(parse) => run_parse(parse),
        Command::Status(status) => run_status(&sources, &status),
        Command::Log(log) => log::run_log(&data_dir, log, sources.clock.now()),
        Command::Store(output) => run_store(&data_dir, output.json),
        Command::Replay(replay) => run_replay(&replay),
        Command::Demo(demo) => run_demo(args.globals.data_dir.as_deref(), &demo, &sources.settings),
        Command::Watch(watch) => run_watch(&sources, watch.json),
        Command::Record(record) => run_record(&sources, &record),
        Command::Credentials(output) => run_credentials(sources.clock.now(), &sources.settings.providers, output.json),
        Command::Serve(serve) => match (serve.http, serve.stdio) {
            (Some(address), false) => http::serve_http(&sources, address, serve.http_token_file.as_deref()),
            (http, _) => serve::run_serve(
                &sources,
                http.map(|address| (address, serve.http_token_file.as_deref())),
            ),
        },
        Command::History(history) => {
            let source = match &history.from {
                Some(file) => crate::history::Source::File(file.clone()),
                None => crate::history::Source::DataDir(data_dir.clone()),
            };
            let options = crate::render::terminal::history_options(&history, sources.clock.now());
            print!("{}", history::command(&source, &history, &options)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions { shell } => {
            std::io::stdout().lock().write_all(&crate::cli::completions(shell))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Manpage => {
            std::io::stdout().lock().write_all(&crate::cli::manpage())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Statusline(line) => print_statusline(&sources, args.globals.config.as_deref(), &line),
    }
}

/// The engine of `watch` and `status --refresh`: over `--fixtures` when
/// given, else live (credential discovery and HTTP).
pub fn engine(sources: &Sources) -> anyhow::Result<Engine> {
    let clock = Arc::clone(&sources.clock);
    let settings = sources.settings.clone();
    let builder = Engine::builder()
        .data_dir(&sources.data_dir)
        .clock(clock.clone())
        .fetch_timeout(sources.timeout);
    let Some(fixtures) = &sources.fixtures else {
        let builder = builder
            .settings(settings)
            .transport(Arc::new(live_transport(sources)?))
            .credentials(Arc::new(Discovery::from_process_env()));
        return Ok(builder.build()?);
    };
    let player = Arc::new(ExchangePlayer::from_dir(fixtures, clock)?);
    let recorded = player.providers();
    let credentials = FixedCredentials::present(recorded.clone(), "fixtures");
    let mut settings = settings;
    settings.providers.retain(|id| recorded.contains(id));
    let engine = builder
        .settings(settings)
        .transport(player.clone())
        .credentials(Arc::new(credentials))
        .build()?;
    // The fixtures go on where the data dir's earlier runs left them.
    let served = engine.store().providers.iter().map(|(id, entry)| {
        let fetches: u64 = entry.fetches.values().sum();
        (*id, usize::try_from(fetches).unwrap_or(usize::MAX))
    });
    player.resume(served);
    Ok(engine)
}

pub(crate) fn live_transport(sources: &Sources) -> anyhow::Result<HttpTransport> {
    Ok(HttpTransport::new(
        sources.clock.clone(),
        sources.timeout,
        sources.origins.clone(),
    )?)
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
}

/// The owner's control socket, answering history from `engine`'s log, or
/// `None` (said on stderr) when it cannot be bound.
pub(crate) fn listen(sources: &Sources, engine: &Engine) -> Option<owner::Listening> {
    owner::listen(&sources.data_dir, engine.log())
        .inspect_err(|error| eprintln!("quotatrack: followers cannot reach this engine: {error}"))
        .ok()
}

/// Completes on SIGINT or SIGTERM.
pub(crate) async fn shutdown_signal() {
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

/// Completes at each SIGHUP; never without a handler.
async fn hung_up(hangup: &mut Option<tokio::signal::unix::Signal>) {
    match hangup {
        Some(hangup) => {
            hangup.recv().await;
        }
        None => std::future::pending().await,
    }
}

/// `watch` at SIGHUP: the settings file read again and put in force as at
/// a start (recorded where it changed; keys hosts patched that the file
/// did not change stay), or, when it is bad, one line saying why and the
/// settings in force kept.
fn reload_settings(engine: &mut Engine, sources: &Sources) -> anyhow::Result<()> {
    let Some((path, explicit)) = &sources.settings_file else {
        return Ok(());
    };
    match Settings::load(path, *explicit) {
        Ok(mut settings) => {
            if let Some(fixtures) = &sources.fixtures {
                // Only the providers the fixtures answer for, as at start
                // (not the ones in force: a host's patch of them would read
                // as a change of the file, and be lost).
                let answered = ExchangePlayer::from_dir(fixtures, Arc::clone(&sources.clock))?.providers();
                settings.providers.retain(|id| answered.contains(id));
            }
            engine.configure(settings)?;
            let every = engine.settings().refresh_interval_s;
            eprintln!(
                "quotatrack: settings reloaded from {} (refresh_interval_s = {every})",
                path.display()
            );
        }
        Err(error) => eprintln!("quotatrack: {error}; the settings in force stay"),
    }
    Ok(())
}

/// The owner's latest snapshot, as it stands now.
pub(crate) fn snapshot(sources: &Sources) -> anyhow::Result<Option<Status>> {
    let Some(mut view) = status::read_snapshot(&sources.data_dir)? else {
        return Ok(None);
    };
    let options = StatusOptions::from_settings(&sources.settings);
    status::settle(&mut view, sources.clock.now(), &options);
    Ok(Some(view))
}

/// `quotatrack credentials`: one line per provider; one the settings do
/// not enable says so instead of how to log in.
fn run_credentials(now: Timestamp, enabled: &[ProviderId], json: bool) -> anyhow::Result<ExitCode> {
    let discovery = Discovery::from_process_env();
    if json {
        let providers: Vec<serde_json::Value> = ProviderId::ALL
            .iter()
            .map(|id| credentials_json(*id, enabled.contains(id).then(|| discovery.lookup(*id)), now))
            .collect();
        println!("{}", serde_json::json!({"schema": 1, "providers": providers}));
        return Ok(ExitCode::SUCCESS);
    }
    for id in ProviderId::ALL {
        if enabled.contains(&id) {
            println!("{}", discovery.lookup(id).describe(id, now));
        } else {
            println!("{id}: not enabled in the settings (`providers`)");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One provider's entry in `credentials --json`: where its credential
/// comes from (never the credential) or where discovery looked, and the
/// line `credentials` prints. `lookup` is `None` for a provider not enabled.
fn credentials_json(id: ProviderId, lookup: Option<Lookup>, now: Timestamp) -> serde_json::Value {
    let message = match &lookup {
        Some(lookup) => lookup.describe(id, now),
        None => format!("{id}: not enabled in the settings (`providers`)"),
    };
    let (found, source, expired, searched, problems) = match &lookup {
        Some(Lookup::Found(credential)) => (
            true,
            Some(credential.source.clone()),
            Some(credential.expired(now)),
            Vec::new(),
            Vec::new(),
        ),
        Some(Lookup::Missing { searched, problems }) => (false, None, None, searched.clone(), problems.clone()),
        None => (false, None, None, Vec::new(), Vec::new()),
    };
    serde_json::json!({
        "provider": id,
        "enabled": lookup.is_some(),
        "found": found,
        "source": source,
        "expired": expired,
        "searched": searched,
        "problems": problems,
        "message": message,
    })
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

fn run_status(sources: &Sources, args: &StatusArgs) -> anyhow::Result<ExitCode> {
    if args.refresh {
        match engine(sources) {
            Ok(mut engine) => {
                // Hints for the providers in force: the file's, with what
                // hosts patched laid over it.
                if sources.fixtures.is_none() {
                    report_missing_credentials(&args.providers, &engine.settings().providers, sources.clock.now());
                }
                runtime()?.block_on(engine.refresh(None))?;
                engine.close()?;
            }
            Err(error) => match error.downcast_ref::<crate::engine::EngineError>() {
                Some(crate::engine::EngineError::Log(owned @ LogError::Owned { .. })) => {
                    eprintln!("quotatrack: {owned}; showing its latest snapshot");
                }
                _ => return Err(error),
            },
        }
    }
    print_status(sources, args)
}

/// `statusline HOST`: the host's JSON on stdin, the snapshot, one line
/// (`quotatrack` runs this without starting the engine too). A status line
/// never fails: a bad settings file means the defaults.
pub fn print_statusline(sources: &Sources, config: Option<&Path>, args: &StatuslineArgs) -> anyhow::Result<ExitCode> {
    let settings = load_settings(config).map(|(settings, _)| settings).unwrap_or_default();
    let options = crate::render::terminal::statusline_options(args, &settings, sources.clock.now());
    let input = crate::statusline::read_stdin();
    println!(
        "{}",
        crate::statusline::claude_line(&sources.data_dir, &input, &settings, &options)
    );
    Ok(ExitCode::SUCCESS)
}

/// `status` from the snapshot alone: the settings and the snapshot file
/// are all it reads (`quotatrack` runs this without starting the engine).
pub fn print_status(sources: &Sources, args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let data_dir = sources.data_dir.as_path();
    let now = sources.clock.now();
    let mut view = status::read_snapshot(data_dir)
        .context("cannot read the last snapshot")?
        .unwrap_or_else(|| Status {
            schema: 1,
            stale_after_s: None,
            file_stale_after_s: None,
            generated_at: rfc3339_seconds(now),
            providers: Vec::new(),
        });
    if view.providers.is_empty() && !args.refresh {
        eprintln!(
            "quotatrack: nothing fetched yet in {}: run `quotatrack status --refresh` or `quotatrack watch`",
            data_dir.display()
        );
    }
    let stale = StatusOptions::from_settings(&sources.settings);
    status::settle(&mut view, now, &stale);
    if !args.providers.is_empty() {
        view.providers.retain(|provider| args.providers.contains(&provider.id));
    }
    crate::render::order_by(&mut view, &sources.settings.providers);
    let (form, options) = crate::render::terminal::status_form(args, &sources.settings, now);
    let text = crate::render::status_text(&view, form, args.format.as_deref(), &options)?;
    println!("{}", text.trim_end());
    // The process ends next: freeing every window and string of the view
    // one by one would cost `status` a thirtieth of its run.
    std::mem::forget(view);
    Ok(ExitCode::SUCCESS)
}

fn run_replay(args: &ReplayArgs) -> anyhow::Result<ExitCode> {
    let input = open_input(&args.file)?;
    let request = replay::Request::from(args);
    let rendered =
        replay::command(input, &request).with_context(|| format!("cannot replay {}", args.file.display()))?;
    println!("{}", rendered.text);
    Ok(if rendered.identical {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn run_demo(explicit_dir: Option<&Path>, args: &DemoArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let chosen = match &args.scenario {
        Some(name) => scenario::incident(name).with_context(|| {
            let names: Vec<&str> = scenario::INCIDENTS.iter().map(|s| s.name).collect();
            format!("no scenario {name:?} (known: {})", names.join(", "))
        })?,
        None => &scenario::DEMO,
    };
    let minutes = args.hours.map_or(chosen.minutes, |hours| hours * 60);
    // Private like every directory quotatrack makes (0700, whatever the umask).
    let temporary = {
        use std::os::unix::fs::PermissionsExt;
        tempfile::Builder::new()
            .prefix("quotatrack-demo")
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir()?
    };
    let data_dir = explicit_dir.unwrap_or(temporary.path());
    if args.json {
        let timeline = runtime()?.block_on(scenario::run(chosen, minutes, data_dir, settings.clone()))?;
        let changes: Vec<serde_json::Value> = timeline
            .changes
            .iter()
            .map(|(time, line)| serde_json::json!({"time": time, "line": line}))
            .collect();
        let requests: BTreeMap<String, serde_json::Value> = timeline
            .requests
            .iter()
            .map(|(id, n)| (id.to_string(), serde_json::json!(n)))
            .collect();
        let demo = serde_json::json!({
            "scenario": chosen.name,
            "about": chosen.about,
            "minutes": minutes,
            "changes": changes,
            "final": timeline.last,
            "requests": requests,
            "log_dir": explicit_dir.map(|dir| dir.display().to_string()),
        });
        println!("{demo}");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "quotatrack {}: {} ({} min of virtual time)",
        chosen.name, chosen.about, minutes
    );
    let timeline = runtime()?.block_on(scenario::run(chosen, minutes, data_dir, settings.clone()))?;
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

/// `quotatrack watch`: the engine's cycles until a signal (or a closed
/// stdout), each update printed as the status line, or with `json` as the
/// `status --json` object on one line (settled at the clock's reading and
/// in the settings' provider order, as `status --json` prints the snapshot
/// the cycle wrote). An alert is a line `alert: …` of its own before its
/// cycle's update; with `json` it goes to stderr, so every stdout line is
/// one object.
fn run_watch(sources: &Sources, json: bool) -> anyhow::Result<ExitCode> {
    let mut engine = engine(sources)?;
    let mut updates = engine.subscribe();
    let mut alerts = engine.subscribe_alerts();
    let delivery = Delivery::from_settings(&engine.settings().alerts).reporting(engine.outside());
    let clock = Arc::clone(&sources.clock);
    // How the printer judges age and orders providers: by the settings in
    // force (the file with the hosts' patches laid over it), again after
    // every SIGHUP.
    let in_force = |engine: &Engine| {
        let settings = engine.settings();
        let stale = StatusOptions::from_settings(settings);
        (stale, settings.providers.clone())
    };
    let (judging, mut judged) = tokio::sync::watch::channel(in_force(&engine));
    runtime()?.block_on(async {
        // Ends when stdout is closed (`quotatrack watch | head -1`): the
        // engine then stops as at a signal. Alerts go to the command and
        // the webhook in tasks of their own.
        let mut printer = tokio::spawn(async move {
            loop {
                let line = tokio::select! {
                    biased;
                    Ok(alert) = alerts.recv() => {
                        delivery.spawn(&alert);
                        let line = format!("alert: {}", alert.message);
                        if json {
                            let _ = writeln!(std::io::stderr().lock(), "quotatrack: {line}");
                            continue;
                        }
                        line
                    }
                    view = updates.recv() => match view {
                        Ok(view) if json => {
                            let (stale, order) = judged.borrow_and_update().clone();
                            let mut view = Status::clone(&view);
                            view.stale_after_s = None;
                            status::settle(&mut view, clock.now(), &stale);
                            crate::render::order_by(&mut view, &order);
                            match serde_json::to_string(&view) {
                                Ok(line) => line,
                                Err(_) => continue,
                            }
                        }
                        Ok(view) => {
                            let options = crate::render::Options {
                                age_room: crate::render::terminal::AGE_ROOM,
                                ..crate::render::Options::plain(clock.now(), crate::render::terminal::LINE_WIDTH)
                            };
                            crate::render::line::line(&view, &options)
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                    },
                };
                if writeln!(std::io::stdout().lock(), "{line}").is_err() {
                    return;
                }
            }
            std::future::pending::<()>().await;
        });
        let shutdown = shutdown_signal();
        tokio::pin!(shutdown);
        let mut requests = None;
        // A cycle at once, then every interval of the settings in force
        // (retimed at once when they change it).
        let mut ticker = crate::engine::Ticker::starting_now(&engine);
        let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                _ = &mut printer => break,
                () = hung_up(&mut hangup) => {
                    reload_settings(&mut engine, sources)?;
                    judging.send_replace(in_force(&engine));
                }
                Some((request, done)) = serve::next_request(&mut requests) => {
                    engine.force_refresh(request.refresh).await?;
                    let _ = done.send(());
                }
                () = ticker.tick() => {
                    engine.cycle().await?;
                    // Followers may ask once the first snapshot is out.
                    if requests.is_none() {
                        requests = listen(sources, &engine);
                    }
                }
            }
            ticker.follow(&engine);
        }
        if let Some(requests) = requests {
            requests.stop(&sources.data_dir);
        }
        engine.close()?;
        printer.abort();
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn run_store(data_dir: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let journal = Journal::open(data_dir)?;
    if json {
        println!("{}", serde_json::to_string(journal.store())?);
    } else {
        print!("{}", status::store_table(journal.store()));
    }
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
