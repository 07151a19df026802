//! Canary tests: a distinctive token, account id, project and profile ARN
//! are planted (through `QUOTATRACK_ANTHROPIC_TOKEN` and a fake home's
//! Codex, Antigravity and Kiro logins), and
//! loopback servers echo them back everywhere a hostile or careless server
//! could: JSON keys and values at any depth, inside longer strings, header
//! names and values, query strings of URLs in the body and in a redirect,
//! plain-text and HTML bodies, a body that is not JSON or not UTF-8, and
//! their percent-encoded, JSON-escaped, HTML-escaped, hex and base64 forms,
//! in 200, 302, 401, 429 and 500 answers. The real binary then runs every
//! command that can write (`status --refresh`, `watch`, `serve --stdio`,
//! `record`, `log export`, `credentials`, `replay`, the error paths), and
//! every byte it wrote is searched for every form of both secrets: each
//! file under the home (sled files, snapshot, checkpoint, fixtures; the
//! planted credential files excepted), and the stdout and stderr of each
//! process.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc::channel;
use std::time::Duration;

use quotatrack::providers::ProviderId;
use serde_json::Value;

use crate::support::exchange;
use crate::support::server::{Reply, Server};

/// The token: letters in both cases and characters that percent-encoding,
/// HTML and base64 all change, yet still a valid header name.
const TOKEN: &str = "qtCANARY+Tok&9f3e.Zx_41b7~Q";

/// Codex's account id: a space, a slash and `=` besides.
const ACCOUNT: &str = "acct CANARY/5e0d=Ahq7";

/// Antigravity's Cloud Code project, sent in the request body.
const PROJECT: &str = "proj-CANARY-8c1f2a";

/// Kiro's profile ARN, sent in the request body.
const PROFILE_ARN: &str = "arn:aws:codewhisperer:us-east-1:CANARY7731:profile/QT9XK2";

/// The providers given a login, each with its own server.
const PROVIDERS: [ProviderId; 4] = [
    ProviderId::Anthropic,
    ProviderId::Codex,
    ProviderId::Antigravity,
    ProviderId::Kiro,
];

/// How long a process may take before the test gives up on it (a failure
/// guard, not a pause: each normally ends in well under a second).
const PATIENCE: Duration = Duration::from_secs(60);

/// The clock of the first run; each later run of a scenario is an hour on,
/// so whatever is due (not blocked or waiting for a login) is fetched again.
const START: &str = "2026-08-22T12:00:00Z";

/// A home with the planted credentials, one server per provider, and every
/// output of the processes run in it.
struct Canary {
    home: tempfile::TempDir,
    /// The files the test wrote itself (the planted credentials).
    planted: Vec<PathBuf>,
    env: Vec<(String, String)>,
    outputs: Vec<(String, Output)>,
    hour: i64,
}

impl Canary {
    /// A fresh home with the planted logins, each provider of [`PROVIDERS`]
    /// sent to its server in `servers`.
    fn new(servers: &[Server]) -> Canary {
        let home = tempfile::tempdir().unwrap();
        let logins = [
            (
                ".codex/auth.json",
                serde_json::json!({"tokens": {"access_token": TOKEN, "account_id": ACCOUNT}}),
            ),
            (
                ".pi/agent/auth.json",
                serde_json::json!({"google-antigravity": {"type": "oauth", "access": TOKEN, "projectId": PROJECT}}),
            ),
            (
                ".aws/sso/cache/kiro-auth-token.json",
                serde_json::json!({"accessToken": TOKEN, "profileArn": PROFILE_ARN}),
            ),
        ];
        let mut planted = Vec::new();
        for (relative, login) in logins {
            let path = home.path().join(relative);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, login.to_string()).unwrap();
            planted.push(path);
        }
        std::fs::create_dir_all(home.path().join("cwd")).unwrap();
        let mut env = vec![("QUOTATRACK_ANTHROPIC_TOKEN".to_owned(), TOKEN.to_owned())];
        for (provider, server) in PROVIDERS.iter().zip(servers) {
            let name = format!("QUOTATRACK_{}_BASE_URL", provider.as_str().to_uppercase());
            env.push((name, server.origin.clone()));
        }
        Canary {
            home,
            planted,
            env,
            outputs: Vec::new(),
            hour: 0,
        }
    }

    fn path(&self, relative: &str) -> String {
        self.home.path().join(relative).display().to_string()
    }

    /// The command with this home's environment, data dir, clock and cwd.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_quotatrack"));
        let clock = START.parse::<jiff::Timestamp>().unwrap() + jiff::SignedDuration::from_hours(self.hour);
        command
            .env_clear()
            .env("HOME", self.home.path())
            .env("NO_COLOR", "1")
            .envs(self.env.iter().map(|(name, value)| (name, value)))
            .current_dir(self.home.path().join("cwd"))
            .args(["--data-dir", &self.path("data"), "--clock-at", &clock.to_string()])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Runs a command to its end with `stdin` as input, keeps its output.
    fn run(&mut self, args: &[&str], stdin: &str) -> &Output {
        let mut child = self.command(args).spawn().unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        let pid = child.id();
        let (done, finished) = channel();
        std::thread::spawn(move || {
            let _ = done.send(child.wait_with_output());
        });
        let output = match finished.recv_timeout(PATIENCE) {
            Ok(output) => output.unwrap(),
            Err(_) => {
                let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
                panic!("quotatrack {args:?} did not finish within {PATIENCE:?}");
            }
        };
        self.keep(args, output)
    }

    /// Runs `watch` until it printed its first status line, then stops it
    /// with SIGTERM as a user would, and keeps its output.
    fn watch(&mut self) -> &Output {
        let mut child = self.command(&["watch"]).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (lines, printed) = channel();
        let reader = std::thread::spawn(move || {
            let mut all = Vec::new();
            for line in BufReader::new(stdout).split(b'\n').map_while(Result::ok) {
                all.extend_from_slice(&line);
                all.push(b'\n');
                let _ = lines.send(());
            }
            all
        });
        let pid = child.id().to_string();
        let first = printed.recv_timeout(PATIENCE);
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let (done, finished) = channel();
        std::thread::spawn(move || {
            let _ = done.send(child.wait_with_output());
        });
        let Ok(output) = finished.recv_timeout(PATIENCE) else {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
            panic!("watch did not stop on SIGTERM within {PATIENCE:?}");
        };
        let mut output = output.unwrap();
        output.stdout = reader.join().unwrap();
        assert!(
            first.is_ok(),
            "watch printed nothing: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        self.keep(&["watch"], output)
    }

    fn keep(&mut self, args: &[&str], output: Output) -> &Output {
        assert_ne!(
            output.status.code(),
            Some(101),
            "{args:?} panicked: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        self.outputs.push((args.join(" "), output));
        &self.outputs.last().unwrap().1
    }

    /// Every command that can write, an hour apart: refresh, watch, serve,
    /// record (both providers), then the readers of what was written.
    fn run_everything(&mut self) {
        self.run(&["status", "--refresh", "--json"], "");
        self.run(&["status", "--refresh"], "");
        self.hour += 1;
        self.watch();
        self.hour += 1;
        let session = [
            r#"{"type":"session_start"}"#,
            r#"{"type":"model_changed","provider":"codex","model":"gpt-5-codex"}"#,
            r#"{"type":"refresh"}"#,
            r#"{"type":"get_all"}"#,
            r#"{"type":"session_shutdown"}"#,
        ]
        .join("\n");
        self.run(&["serve", "--stdio"], &session);
        for provider in PROVIDERS.map(ProviderId::as_str) {
            let fixture = self.path(&format!("cwd/{provider}.json"));
            self.run(&["record", provider, "--output", &fixture], "");
        }
        self.run(&["record", "anthropic"], "");
        self.run(&["credentials"], "");
        self.run(&["status", "--json"], "");
        self.run(&["status"], "");
        self.run(
            &[
                "status",
                "--format",
                "{anthropic.5h.used_percent} {anthropic.state} {codex.label} {codex.plan}",
            ],
            "",
        );
        self.run(&["store"], "");
        self.run(&["log", "stats"], "");
        self.run(&["log", "verify"], "");
        let export = self.run(&["log", "export"], "").stdout.clone();
        assert!(contains(&export, "fetch_completed"), "the log holds the exchanges");
        let export_file = self.path("cwd/export.jsonl");
        std::fs::write(&export_file, &export).unwrap();
        self.run(&["replay", &export_file], "");
        self.run(&["replay", &export_file, "--json"], "");
        self.run(&["replay", &export_file, "--timeline"], "");
    }

    /// Asserts that no form of either secret is in any output or in any
    /// file under the home but the planted ones; names every leak found.
    fn assert_nothing_leaked(&self) {
        let forms: Vec<(String, Vec<u8>)> = [TOKEN, ACCOUNT, PROJECT, PROFILE_ARN]
            .into_iter()
            .flat_map(forms)
            .collect();
        let mut leaks = Vec::new();
        let mut searched = 0;
        for (args, output) in &self.outputs {
            for (stream, bytes) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
                searched += bytes.len();
                if let Some(form) = leaked(bytes, &forms) {
                    let shown = String::from_utf8_lossy(bytes);
                    leaks.push(format!("`quotatrack {args}` printed the {form} on {stream}: {shown}"));
                }
            }
        }
        let files = files(self.home.path());
        assert!(
            files.iter().any(|path| path.starts_with(self.home.path().join("data"))),
            "the data dir was written"
        );
        for path in files.iter().filter(|path| !self.planted.contains(path)) {
            let bytes = std::fs::read(path).unwrap();
            searched += bytes.len();
            if let Some(form) = leaked(&bytes, &forms) {
                leaks.push(format!("{} holds the {form}", path.display()));
            }
        }
        assert!(leaks.is_empty(), "{} leaks:\n{}", leaks.len(), leaks.join("\n"));
        assert!(searched > 10_000, "only {searched} bytes were written");
    }

    /// The JSON of every `status --json` run.
    fn views(&self) -> Vec<Value> {
        self.outputs
            .iter()
            .filter(|(args, output)| args.starts_with("status") && args.ends_with("--json") && output.status.success())
            .map(|(_, output)| serde_json::from_slice(&output.stdout).unwrap())
            .collect()
    }
}

/// The forms of `secret` a leak could take, named: as is, percent-encoded
/// (reserved characters or every byte, `+` for a space, twice), hex, and
/// base64 (standard or URL-safe, padded or not, alone or as `user:secret`).
fn forms(secret: &str) -> Vec<(String, Vec<u8>)> {
    let named = |name: &str, form: String| (format!("{name} of {secret:?}"), form.into_bytes());
    let basic = format!("user:{secret}");
    vec![
        named("value", secret.to_owned()),
        named("percent-encoding", percent(secret, false)),
        named("percent-encoding of every byte", percent(secret, true)),
        named("form encoding", percent(secret, false).replace("%20", "+")),
        named("double percent-encoding", percent(&percent(secret, false), false)),
        named("hex", secret.bytes().map(|byte| format!("{byte:02x}")).collect()),
        named("base64", base64(secret.as_bytes(), STANDARD, true)),
        named("unpadded base64", base64(secret.as_bytes(), STANDARD, false)),
        named("URL-safe base64", base64(secret.as_bytes(), URL_SAFE, true)),
        named("unpadded URL-safe base64", base64(secret.as_bytes(), URL_SAFE, false)),
        named("base64 of user:secret", base64(basic.as_bytes(), STANDARD, true)),
        named(
            "URL-safe base64 of user:secret",
            base64(basic.as_bytes(), URL_SAFE, false),
        ),
    ]
}

/// The names of the forms found in `bytes`, compared without case
/// (header names arrive in lower case; hex digits come in either).
fn leaked(bytes: &[u8], forms: &[(String, Vec<u8>)]) -> Option<String> {
    let haystack = bytes.to_ascii_lowercase();
    let found: Vec<&str> = forms
        .iter()
        .filter(|(_, form)| {
            let needle = form.to_ascii_lowercase();
            haystack.windows(needle.len()).any(|window| window == needle)
        })
        .map(|(name, _)| name.as_str())
        .collect();
    (!found.is_empty()).then(|| found.join(", "))
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle.as_bytes())
}

/// RFC 3986 percent-encoding (upper-case hex), of every byte if `all`.
fn percent(text: &str, all: bool) -> String {
    text.bytes()
        .map(|byte| {
            if !all && (byte.is_ascii_alphanumeric() || b"-._~".contains(&byte)) {
                char::from(byte).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn base64(bytes: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, b| (n << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(alphabet[((n >> (18 - 6 * i)) & 63) as usize]));
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files(&path));
        } else {
            found.push(path);
        }
    }
    found
}

/// The secrets a provider's server was sent, which it echoes.
fn secrets_of(provider: ProviderId) -> Vec<&'static str> {
    match provider {
        ProviderId::Codex => vec![TOKEN, ACCOUNT],
        ProviderId::Antigravity => vec![TOKEN, PROJECT],
        ProviderId::Kiro => vec![TOKEN, PROFILE_ARN],
        _ => vec![TOKEN],
    }
}

/// Every form of every secret, echoed into JSON fields: keys and values,
/// nested, inside longer strings, in a URL's query string, JSON-escaped,
/// base64 as a key, and a key that redaction would make collide.
fn echo_fields(provider: ProviderId) -> serde_json::Map<String, Value> {
    let mut fields = serde_json::Map::new();
    for (n, secret) in secrets_of(provider).into_iter().enumerate() {
        let url = format!(
            "https://example.test/callback?token={}&basic={}",
            percent(secret, false),
            percent(&base64(format!("user:{secret}").as_bytes(), STANDARD, true), false)
        );
        fields.insert(secret.to_owned(), Value::from(1));
        fields.insert(percent(secret, false), Value::from(n));
        fields.insert(base64(secret.as_bytes(), URL_SAFE, false), Value::from("base64 key"));
        fields.insert(
            format!("echo_{n}"),
            serde_json::json!({
                "value": secret,
                "sentence": format!("the credential {secret} was seen"),
                "deeper": [{"url": url, "text": format!("retry at {url} later")}],
                "base64": base64(secret.as_bytes(), STANDARD, true),
                "url_safe": base64(secret.as_bytes(), URL_SAFE, false),
                "basic": format!("Basic {}", base64(format!("user:{secret}").as_bytes(), STANDARD, true)),
                "every_byte": percent(secret, true),
                "hex": secret.bytes().map(|byte| format!("{byte:02X}")).collect::<String>(),
                "keyed": Value::Object(serde_json::Map::from_iter([(
                    secret.to_owned(),
                    serde_json::json!({"utilization": 99}),
                )])),
            }),
        );
    }
    fields.insert("[redacted]".to_owned(), Value::from("was here first"));
    fields
}

/// `fields` added to a JSON object body, plus a JSON-escaped copy of each
/// secret written by hand (`\u` escapes and `\/`).
fn with_echoes(body: &Value, provider: ProviderId) -> Vec<u8> {
    let mut body = body.clone();
    body.as_object_mut().unwrap().extend(echo_fields(provider));
    let text = body.to_string();
    let escaped: Vec<String> = secrets_of(provider)
        .into_iter()
        .enumerate()
        .map(|(n, secret)| {
            let escaped: String = secret
                .chars()
                .map(|c| match c {
                    '/' => "\\/".to_owned(),
                    c if c.is_ascii_alphabetic() => format!("\\u{:04x}", u32::from(c)),
                    c => c.to_string(),
                })
                .collect();
            format!(r#""escaped_{n}":"{escaped}","{escaped}":"escaped key""#)
        })
        .collect();
    format!("{{{},{}", escaped.join(","), &text[1..]).into_bytes()
}

/// A reply with the secrets echoed in header values and as a header name.
fn with_echoed_headers(reply: Reply, provider: ProviderId) -> Reply {
    let mut reply = reply.with_header(TOKEN, "1");
    for secret in secrets_of(provider) {
        reply = reply
            .with_header("x-echo", secret)
            .with_header("x-echo-base64", &base64(secret.as_bytes(), STANDARD, true))
            .with_header(
                "link",
                &format!("<https://example.test/next?token={}>", percent(secret, false)),
            )
            .with_header(
                "www-authenticate",
                &format!(r#"Bearer error="invalid_token", token="{secret}""#),
            )
            .with_header("set-cookie", &format!("session={secret}"));
    }
    reply
}

fn reply(status: u16, content_type: &str, body: Vec<u8>) -> Reply {
    Reply::Http {
        status,
        headers: vec![("content-type".to_owned(), content_type.to_owned())],
        body,
    }
}

/// A 200 with the provider's real usage body and every echo added: it
/// must still parse to the same windows.
fn ok_with_echoes(provider: ProviderId, fixture: &str) -> Reply {
    let body = exchange(provider, fixture).response.body;
    with_echoed_headers(reply(200, "application/json", with_echoes(&body, provider)), provider)
}

/// A 401 JSON error envelope quoting the secrets, with every echo.
fn unauthorized(provider: ProviderId) -> Reply {
    let message = format!("invalid bearer token {}", secrets_of(provider).join(" for account "));
    let body = serde_json::json!({"error": {"type": "authentication_error", "message": message}, "detail": message});
    with_echoed_headers(reply(401, "application/json", with_echoes(&body, provider)), provider)
}

/// A 429 in plain text naming the secrets, with a Retry-After.
fn rate_limited(provider: ProviderId) -> Reply {
    let mut text = String::from("Too many requests.\n");
    for secret in secrets_of(provider) {
        text.push_str(&format!(
            "key {secret} is limited; base64 {}; retry at /retry?key={}\n",
            base64(secret.as_bytes(), URL_SAFE, false),
            percent(secret, true)
        ));
    }
    with_echoed_headers(reply(429, "text/plain", text.into_bytes()), provider).with_header("retry-after", "60")
}

/// A 500 HTML error page quoting the secrets raw, HTML-escaped and in links.
fn server_error(provider: ProviderId) -> Reply {
    let mut page = String::from("<!DOCTYPE html><html><head><title>500 for ");
    page.push_str(&secrets_of(provider).join(" "));
    page.push_str("</title></head><body><h1>Internal Server Error</h1>");
    for secret in secrets_of(provider) {
        let html: String = secret
            .chars()
            .map(|c| match c {
                '&' => "&amp;".to_owned(),
                '+' => "&#43;".to_owned(),
                '/' => "&#x2F;".to_owned(),
                c => c.to_string(),
            })
            .collect();
        page.push_str(&format!(
            "<p>session {html}</p><a href=\"/retry?token={}&amp;b={}\">retry</a>",
            percent(secret, false),
            base64(secret.as_bytes(), STANDARD, true)
        ));
    }
    page.push_str("</body></html>");
    with_echoed_headers(reply(500, "text/html; charset=utf-8", page.into_bytes()), provider)
}

/// A 200 that is not JSON (cut short) and not UTF-8 either.
fn broken(provider: ProviderId) -> Reply {
    let mut body = format!(r#"{{"five_hour":{{"note":"{}"#, secrets_of(provider).join("\",\""),).into_bytes();
    body.extend_from_slice(&[0xff, 0xfe, b' ']);
    body.extend_from_slice(percent(TOKEN, false).as_bytes());
    body.push(0x80);
    with_echoed_headers(reply(200, "application/json", body), provider)
}

/// A redirect to the same origin with the secrets in the query string,
/// again and again, so the redirect's URL is what an error would quote.
fn redirect_loop(provider: ProviderId) -> Reply {
    let query: Vec<String> = secrets_of(provider)
        .into_iter()
        .map(|secret| format!("token={}", percent(secret, false)))
        .collect();
    with_echoed_headers(reply(302, "text/plain", b"moved".to_vec()), provider)
        .with_header("location", &format!("/moved?{}", query.join("&")))
}

/// One scenario: every provider's server answers with `make`'s reply,
/// every command runs, nothing leaks; returns the runs and the servers (in
/// [`PROVIDERS`] order) for further checks.
fn scenario(make: fn(ProviderId) -> Reply) -> (Canary, Vec<Server>) {
    let servers: Vec<Server> = PROVIDERS
        .iter()
        .map(|provider| Server::start(vec![make(*provider)]))
        .collect();
    let mut canary = Canary::new(&servers);
    canary.run_everything();
    for (provider, server) in PROVIDERS.iter().zip(&servers) {
        assert!(server.requests() >= 1, "{provider}'s server was asked");
        let sent = server.received()[0].header("authorization");
        assert_eq!(
            sent.as_deref(),
            Some(format!("Bearer {TOKEN}").as_str()),
            "{provider} sent the canary"
        );
    }
    assert_eq!(
        servers[1].received()[0].header("chatgpt-account-id").as_deref(),
        Some(ACCOUNT)
    );
    let body = |index: usize| String::from_utf8_lossy(&servers[index].received()[0].body).into_owned();
    assert!(
        body(2).contains(PROJECT) && body(3).contains(PROFILE_ARN),
        "the extras were sent"
    );
    canary.assert_nothing_leaked();
    (canary, servers)
}

/// The state and error message of `provider` in a status view.
fn state(view: &Value, provider: &str) -> (String, String) {
    let entry = view["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["id"] == provider)
        .unwrap_or_else(|| panic!("{provider} missing from {view}"));
    (
        entry["state"].as_str().unwrap_or_default().to_owned(),
        entry["error"]["message"].as_str().unwrap_or_default().to_owned(),
    )
}

#[test]
fn a_200_echoing_the_secrets_everywhere_parses_the_same_and_leaks_nothing() {
    let (canary, servers) = scenario(|provider| match provider {
        ProviderId::Codex => ok_with_echoes(provider, "ok-plus"),
        ProviderId::Antigravity => ok_with_echoes(provider, "ok-models"),
        ProviderId::Kiro => ok_with_echoes(provider, "ok-free"),
        _ => ok_with_echoes(provider, "ok-full"),
    });
    // Refresh, watch and serve each fetched (an hour apart), record twice.
    assert!(servers[0].requests() >= 5, "refresh, watch, serve, two records");
    assert!(servers[1].requests() >= 4);
    let view = &canary.views()[0];
    for provider in PROVIDERS {
        assert_eq!(state(view, provider.as_str()).0, "fresh", "{view}");
    }
    let claude_5h = &view["providers"][0]["windows"][0];
    assert_eq!(
        (claude_5h["id"].as_str(), claude_5h["used_ratio"].as_f64()),
        (Some("5h"), Some(0.37))
    );
    let fixture = std::fs::read_to_string(canary.home.path().join("cwd/anthropic.json")).unwrap();
    let recorded: Value = serde_json::from_str(&fixture).unwrap();
    let body = &recorded["response"]["body"];
    assert_eq!(
        body["[redacted]"], "was here first",
        "the field already named so is kept"
    );
    assert_eq!(body["five_hour"]["utilization"], 37.0, "the usage is untouched");
    let echo_keys = body
        .as_object()
        .unwrap()
        .keys()
        .filter(|key| key.starts_with("[redacted]#"))
        .count();
    assert!(echo_keys >= 3, "each echoed key is kept under its own name: {fixture}");
    assert!(
        recorded["response"]["headers"]["x-echo"]
            .as_str()
            .unwrap()
            .contains("[redacted]")
    );
}

#[test]
fn a_401_quoting_the_secrets_asks_for_a_login_and_leaks_nothing() {
    let (canary, _) = scenario(unauthorized);
    let view = &canary.views()[0];
    for provider in PROVIDERS {
        let (state, message) = state(view, provider.as_str());
        assert_eq!(state, "auth_required", "{view}");
        assert!(message.contains("[redacted]"), "{provider}: {message}");
    }
}

#[test]
fn a_429_in_plain_text_naming_the_secrets_blocks_and_leaks_nothing() {
    let (canary, _) = scenario(rate_limited);
    let view = &canary.views()[0];
    assert_eq!(state(view, "anthropic").0, "rate_limited", "{view}");
}

#[test]
fn a_500_html_page_quoting_the_secrets_leaks_nothing() {
    let (canary, _) = scenario(server_error);
    assert_eq!(state(&canary.views()[0], "codex").0, "unavailable");
}

#[test]
fn a_body_that_is_neither_json_nor_utf8_leaks_nothing() {
    let (canary, _) = scenario(broken);
    let (state, message) = state(&canary.views()[0], "anthropic");
    assert_eq!(state, "unavailable", "{message}");
}

#[test]
fn a_redirect_carrying_the_secrets_in_its_url_leaks_nothing() {
    scenario(redirect_loop);
}
