//! Credential discovery from fake homes built here, per provider: present,
//! missing, expired, malformed; and a canary token that must never leave
//! memory, checked through the real binary.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use jiff::Timestamp;
use quotatrack::credentials::{Discovery, Lookup};
use quotatrack::providers::ProviderId::{self, *};

use crate::support::server::{Reply, Server};

/// A fake home and environment.
struct Home {
    dir: tempfile::TempDir,
    env: BTreeMap<String, String>,
}

impl Home {
    fn new() -> Home {
        let dir = tempfile::tempdir().unwrap();
        let env = BTreeMap::from([("HOME".to_owned(), dir.path().display().to_string())]);
        Home { dir, env }
    }

    fn file(&self, relative: &str, text: &str) -> &Home {
        let path = self.dir.path().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        self
    }

    fn var(&mut self, name: &str, value: &str) -> &mut Home {
        self.env.insert(name.to_owned(), value.to_owned());
        self
    }

    fn lookup(&self, provider: ProviderId) -> Lookup {
        let env = self.env.clone();
        Discovery::with_env(Arc::new(move |name: &str| env.get(name).cloned())).lookup(provider)
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

fn now() -> Timestamp {
    "2026-08-22T12:00:00Z".parse().unwrap()
}

/// The token found, with its source; panics with the report otherwise.
fn found(home: &Home, provider: ProviderId) -> (String, String, Option<Timestamp>) {
    match home.lookup(provider) {
        Lookup::Found(credential) => (
            credential.secret.expose().to_owned(),
            credential.source.clone(),
            credential.expires_at,
        ),
        missing => panic!("{}", missing.describe(provider, now())),
    }
}

fn describe(home: &Home, provider: ProviderId) -> String {
    home.lookup(provider).describe(provider, now())
}

/// An unsigned JWT with these claims.
fn jwt(claims: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = claims.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, b| (n << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    format!("eyJhbGciOiJub25lIn0.{out}.sig")
}

#[test]
fn claude_present_expired_malformed_and_missing() {
    let home = Home::new();
    home.file(
        ".claude/.credentials.json",
        r#"{"claudeAiOauth":{"accessToken":"sk-ant-oat01-a","expiresAt":1787403600000}}"#,
    );
    let (token, source, expiry) = found(&home, Anthropic);
    assert_eq!(
        (token.as_str(), source.as_str()),
        ("sk-ant-oat01-a", "~/.claude/.credentials.json")
    );
    assert_eq!(expiry, Some(Timestamp::from_millisecond(1_787_403_600_000).unwrap()));

    home.file(
        ".claude/.credentials.json",
        r#"{"claudeAiOauth":{"accessToken":"sk-ant-oat01-a","expiresAt":1000}}"#,
    );
    assert_eq!(
        describe(&home, Anthropic),
        "anthropic: the token in ~/.claude/.credentials.json has expired; run `claude /login`"
    );

    home.file(".claude/.credentials.json", r#"{"claudeAiOauth": {"accessToken": "#);
    assert_eq!(
        describe(&home, Anthropic),
        "anthropic: ~/.claude/.credentials.json is not JSON (line 1, column 34); run `claude /login`"
    );

    home.file(".claude/.credentials.json", r#"{"mcpOAuth":{}}"#);
    assert_eq!(
        describe(&home, Anthropic),
        "anthropic: ~/.claude/.credentials.json holds no Claude login (no claudeAiOauth entry); run `claude /login`"
    );

    assert_eq!(
        describe(&Home::new(), Anthropic),
        "no credentials found for anthropic (looked in $QUOTATRACK_ANTHROPIC_TOKEN, ~/.claude/.credentials.json, \
         ~/.pi/agent/auth.json); run `claude /login`"
    );
}

#[test]
fn the_quotatrack_variable_wins_over_every_file() {
    let mut home = Home::new();
    home.file(
        ".claude/.credentials.json",
        r#"{"claudeAiOauth":{"accessToken":"from-file","expiresAt":1}}"#,
    );
    home.var("QUOTATRACK_ANTHROPIC_TOKEN", "from-env");
    let (token, source, expiry) = found(&home, Anthropic);
    assert_eq!(
        (token.as_str(), source.as_str(), expiry),
        ("from-env", "$QUOTATRACK_ANTHROPIC_TOKEN", None)
    );
}

#[test]
fn codex_reads_codex_home_and_the_jwt_for_expiry_and_account() {
    let mut home = Home::new();
    let access = jwt(r#"{"exp":1787403600,"https://api.openai.com/auth":{"chatgpt_account_id":"acct-from-jwt"}}"#);
    home.file(
        "codex-home/auth.json",
        &format!(r#"{{"auth_mode":"chatgpt","tokens":{{"access_token":"{access}","refresh_token":"rt"}}}}"#),
    );
    home.var("CODEX_HOME", &home.path().join("codex-home").display().to_string());
    match home.lookup(Codex) {
        Lookup::Found(credential) => {
            assert_eq!(credential.source, "~/codex-home/auth.json");
            assert_eq!(
                credential.expires_at,
                Some(Timestamp::from_second(1_787_403_600).unwrap())
            );
            assert_eq!(credential.extras["account_id"].expose(), "acct-from-jwt");
        }
        other => panic!("{other:?}"),
    }

    let home = Home::new();
    home.file(".codex/auth.json", r#"{"OPENAI_API_KEY":"sk-proj-x","tokens":null}"#);
    assert_eq!(
        describe(&home, Codex),
        "codex: ~/.codex/auth.json holds no ChatGPT login (an API key alone cannot read subscription usage); \
         run `codex login`"
    );
}

#[test]
fn copilot_prefers_its_own_files_then_gh_then_the_environment() {
    let mut home = Home::new();
    home.var("GH_TOKEN", "gho_env");
    assert_eq!(found(&home, Copilot).1, "$GH_TOKEN");
    home.file(
        ".config/gh/hosts.yml",
        "github.com:\n    user: octo\n    oauth_token: gho_cli\n    git_protocol: https\n",
    );
    assert_eq!(found(&home, Copilot).0, "gho_cli");
    home.file(
        ".config/github-copilot/hosts.json",
        r#"{"github.com":{"user":"octo","oauth_token":"gho_hosts"}}"#,
    );
    assert_eq!(found(&home, Copilot).0, "gho_hosts");
    home.file(
        ".config/github-copilot/apps.json",
        r#"{"github.com:Iv1.b507a08c87ecfe98":{"user":"octo","oauth_token":"ghu_apps"}}"#,
    );
    assert_eq!(
        found(&home, Copilot),
        ("ghu_apps".into(), "~/.config/github-copilot/apps.json".into(), None)
    );

    let home = Home::new();
    home.file(".config/github-copilot/apps.json", "[1, 2]");
    home.file(".config/gh/hosts.yml", "github.com:\n    user: octo\n");
    let report = describe(&home, Copilot);
    assert!(
        report.contains("~/.config/github-copilot/apps.json is not an object"),
        "{report}"
    );
    assert!(
        report.contains("~/.config/gh/hosts.yml has no github.com oauth_token"),
        "{report}"
    );
}

#[test]
fn gemini_antigravity_and_kiro_stores() {
    let home = Home::new();
    home.file(
        ".gemini/oauth_creds.json",
        r#"{"access_token":"ya29.g","refresh_token":"1//r","expiry_date":1787409999123.5}"#,
    );
    let (token, _, expiry) = found(&home, Gemini);
    assert_eq!(token, "ya29.g");
    assert_eq!(expiry, Some(Timestamp::from_millisecond(1_787_409_999_123).unwrap()));

    let home = Home::new();
    home.file(
        ".pi/agent/auth.json",
        r#"{"google-antigravity":{"type":"oauth","access":"ya29.agy","expires":1787409999000,"projectId":"proj-1"},
            "kiro":{"type":"oauth","access":"aoa-kiro","expires":1000}}"#,
    );
    match home.lookup(Antigravity) {
        Lookup::Found(credential) => {
            assert_eq!(credential.secret.expose(), "ya29.agy");
            assert_eq!(credential.extras["project"].expose(), "proj-1");
            assert_eq!(credential.source, "~/.pi/agent/auth.json");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        describe(&home, Kiro),
        "kiro: the token in ~/.pi/agent/auth.json has expired; run `kiro-cli login`"
    );
    home.file(
        ".aws/sso/cache/kiro-auth-token.json",
        r#"{"accessToken":"aoa-ide","expiresAt":"2026-09-01T00:00:00Z","profileArn":"arn:aws:codewhisperer:us-east-1:1:profile/P"}"#,
    );
    match home.lookup(Kiro) {
        Lookup::Found(credential) => {
            assert_eq!(credential.secret.expose(), "aoa-ide");
            assert_eq!(
                credential.extras["profile_arn"].expose(),
                "arn:aws:codewhisperer:us-east-1:1:profile/P"
            );
            assert!(!credential.expired(now()));
        }
        other => panic!("{other:?}"),
    }
    assert!(describe(&home, Gemini).starts_with("no credentials found for gemini"));
}

#[test]
fn zai_keys_from_variables_and_files() {
    let mut home = Home::new();
    home.file(".zai/token", "zai-key-from-file\n");
    assert_eq!(
        found(&home, Zai),
        ("zai-key-from-file".into(), "~/.zai/token".into(), None)
    );
    home.file(".config/zai/key.json", r#"{"apiKey":"zai-key-json"}"#);
    assert_eq!(found(&home, Zai).0, "zai-key-json");
    home.var("ZAI_API_KEY", "zai-key-env");
    assert_eq!(found(&home, Zai).1, "$ZAI_API_KEY");

    let home = Home::new();
    home.file(".zai/token", "two words\n");
    assert_eq!(
        describe(&home, Zai),
        "zai: ~/.zai/token does not hold a single token; run `export ZAI_API_KEY=<key>`"
    );
}

#[test]
fn unreadable_and_binary_files_are_named_never_a_panic() {
    let home = Home::new();
    home.file(".gemini/oauth_creds.json", "");
    std::fs::write(home.path().join(".gemini/oauth_creds.json"), [0xff, 0xfe, 0x00]).unwrap();
    assert_eq!(
        describe(&home, Gemini),
        "gemini: ~/.gemini/oauth_creds.json is not UTF-8 text; run `gemini`"
    );
    std::fs::remove_file(home.path().join(".gemini/oauth_creds.json")).unwrap();
    std::fs::create_dir(home.path().join(".gemini/oauth_creds.json")).unwrap();
    assert_eq!(
        describe(&home, Gemini),
        "gemini: ~/.gemini/oauth_creds.json is not a credential file; run `gemini`"
    );
}

const CANARY: &str = "CANARY-7d1e0c5b-never-leaves-memory";

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
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

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle.as_bytes())
}

#[test]
fn a_canary_token_never_reaches_disk_exports_fixtures_or_output() {
    // Every provider's store holds the canary; every server echoes it back.
    let home = Home::new();
    home.file(
        ".claude/.credentials.json",
        &format!(r#"{{"claudeAiOauth":{{"accessToken":"{CANARY}-claude","expiresAt":4102444800000}}}}"#),
    );
    home.file(
        ".codex/auth.json",
        &format!(r#"{{"tokens":{{"access_token":"{CANARY}-codex","account_id":"{CANARY}-account"}}}}"#),
    );
    home.file(
        ".config/github-copilot/apps.json",
        &format!(r#"{{"github.com:app":{{"user":"octo","oauth_token":"{CANARY}-copilot"}}}}"#),
    );
    home.file(
        ".gemini/oauth_creds.json",
        &format!(r#"{{"access_token":"{CANARY}-gemini","expiry_date":4102444800000}}"#),
    );
    home.file(
        ".pi/agent/auth.json",
        &format!(r#"{{"google-antigravity":{{"access":"{CANARY}-agy","projectId":"{CANARY}-project"}}}}"#),
    );
    home.file(
        ".aws/sso/cache/kiro-auth-token.json",
        &format!(r#"{{"accessToken":"{CANARY}-kiro","profileArn":"{CANARY}-arn"}}"#),
    );
    home.file(".zai/token", &format!("{CANARY}-zai"));

    // Each server echoes back the secrets it was sent, in its body and headers.
    let sent = |provider: ProviderId| match provider {
        Anthropic => format!("{CANARY}-claude"),
        Codex => format!("{CANARY}-codex {CANARY}-account"),
        Copilot => format!("{CANARY}-copilot"),
        Gemini => format!("{CANARY}-gemini"),
        Antigravity => format!("{CANARY}-agy {CANARY}-project"),
        Kiro => format!("{CANARY}-kiro {CANARY}-arn"),
        Zai => format!("{CANARY}-zai"),
    };
    let mut env: Vec<(String, String)> = Vec::new();
    let mut servers = Vec::new();
    for provider in ProviderId::ALL {
        let echoed = sent(provider);
        let body = format!(r#"{{"message":"token {echoed} was refused","email":"someone@example.com"}}"#);
        let server = Server::start(vec![
            Reply::json(401, &body)
                .with_header("x-echo", &echoed)
                .with_header("set-cookie", &format!("session={echoed}")),
        ]);
        env.push((
            format!("QUOTATRACK_{}_BASE_URL", provider.as_str().to_uppercase()),
            server.origin.clone(),
        ));
        servers.push(server);
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();

    let run = |args: &[&str]| crate::live::run(home.path(), &env, args);
    let mut outputs = vec![
        run(&["status", "--refresh", "--json"]),
        run(&["status"]),
        run(&["credentials"]),
        run(&["log", "export"]),
    ];
    let fixture = home.path().join("recorded.json");
    outputs.push(crate::live::run(
        home.path(),
        &env,
        &["record", "anthropic", "--output", fixture.to_str().unwrap()],
    ));
    for (provider, server) in ProviderId::ALL.iter().zip(&servers) {
        let expected = if *provider == Anthropic { 2 } else { 1 };
        assert_eq!(server.requests(), expected, "{provider}: one refresh (and the record)");
    }
    for output in &outputs {
        assert!(
            !contains(&output.stdout, CANARY),
            "stdout: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        assert!(
            !contains(&output.stderr, CANARY),
            "stderr: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!contains(&output.stdout, "someone@example.com"));
    }
    let export = &outputs[3].stdout;
    assert!(
        contains(export, "\"fetch_completed\""),
        "the export holds the exchanges"
    );
    assert!(contains(export, "[redacted]"));

    let written = std::fs::read(&fixture).expect("record wrote the fixture");
    assert!(!contains(&written, CANARY));
    let data = home.path().join("data");
    for path in files(&data) {
        let bytes = std::fs::read(&path).unwrap();
        assert!(!contains(&bytes, CANARY), "{} holds the canary", path.display());
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&fixture), 0o600);
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("status.json")), 0o600);
}

/// Each provider's first vendor file, holding `{`.
const PRIMARY_FILES: [(ProviderId, &str); 7] = [
    (Anthropic, ".claude/.credentials.json"),
    (Codex, ".codex/auth.json"),
    (Copilot, ".config/github-copilot/apps.json"),
    (Gemini, ".gemini/oauth_creds.json"),
    (Antigravity, ".pi/agent/auth.json"),
    (Kiro, ".aws/sso/cache/kiro-auth-token.json"),
    (Zai, ".config/zai/key.json"),
];

#[test]
fn every_provider_reports_a_missing_login_and_names_a_malformed_file() {
    for (provider, file) in PRIMARY_FILES {
        let report = describe(&Home::new(), provider);
        assert!(
            report.starts_with(&format!("no credentials found for {provider} (looked in $QUOTATRACK_")),
            "{report}"
        );
        let home = Home::new();
        home.file(file, "{");
        let report = describe(&home, provider);
        assert!(
            report.starts_with(&format!("{provider}: ~/{file} is not JSON (line 1, column 1)")),
            "{report}"
        );
        assert!(report.ends_with(&format!("; run `{}`", quotatrack::credentials::fix_command(provider))));
    }
}

#[test]
fn every_store_with_an_expiry_is_honoured() {
    let past = r#""expires":1000"#;
    let cases: [(ProviderId, &str, String); 6] = [
        (
            Anthropic,
            ".claude/.credentials.json",
            r#"{"claudeAiOauth":{"accessToken":"t","expiresAt":1000}}"#.into(),
        ),
        (
            Codex,
            ".codex/auth.json",
            format!(r#"{{"tokens":{{"access_token":"{}"}}}}"#, jwt(r#"{"exp":1000}"#)),
        ),
        (
            Gemini,
            ".gemini/oauth_creds.json",
            r#"{"access_token":"t","expiry_date":1000}"#.into(),
        ),
        (
            Antigravity,
            ".pi/agent/auth.json",
            format!(r#"{{"google-antigravity":{{"access":"t",{past}}}}}"#),
        ),
        (
            Kiro,
            ".aws/sso/cache/kiro-auth-token.json",
            r#"{"accessToken":"t","expiresAt":"2001-01-01T00:00:00Z"}"#.into(),
        ),
        (
            Zai,
            ".pi/agent/auth.json",
            format!(r#"{{"zai":{{"access":"t",{past}}}}}"#),
        ),
    ];
    for (provider, file, text) in cases {
        let home = Home::new();
        home.file(file, &text);
        assert_eq!(
            describe(&home, provider),
            format!(
                "{provider}: the token in ~/{file} has expired; run `{}`",
                quotatrack::credentials::fix_command(provider)
            )
        );
    }
    // GitHub tokens carry no expiry in their stores: a dead one is found
    // by its 401, which asks for `gh auth login`.
}

#[test]
fn zai_reads_openusage_and_its_own_token_files_in_order() {
    let home = Home::new();
    home.file(".zai/token", "zai-home-token\n");
    home.file(".config/zai/token", "zai-config-token\n");
    assert_eq!(
        found(&home, Zai),
        ("zai-config-token".into(), "~/.config/zai/token".into(), None)
    );
    home.file(".config/openusage/zai.json", r#"{"apiKey":"zai-openusage-key"}"#);
    assert_eq!(
        found(&home, Zai),
        ("zai-openusage-key".into(), "~/.config/openusage/zai.json".into(), None)
    );
}

#[test]
fn claude_config_dir_and_gh_config_dir_move_the_files_read() {
    let mut home = Home::new();
    // The default places hold other tokens: the variables must win.
    home.file(
        ".claude/.credentials.json",
        r#"{"claudeAiOauth":{"accessToken":"sk-ant-oat01-default"}}"#,
    );
    home.file(
        "moved/claude/.credentials.json",
        r#"{"claudeAiOauth":{"accessToken":"sk-ant-oat01-moved"}}"#,
    );
    home.file(".config/gh/hosts.yml", "github.com:\n    oauth_token: gho_default\n");
    home.file("moved/gh/hosts.yml", "github.com:\n    oauth_token: gho_moved\n");
    let moved = home.path().join("moved");
    home.var("CLAUDE_CONFIG_DIR", moved.join("claude").to_str().unwrap());
    home.var("GH_CONFIG_DIR", moved.join("gh").to_str().unwrap());
    let (token, source, _) = found(&home, Anthropic);
    assert_eq!(token, "sk-ant-oat01-moved");
    assert_eq!(source, "~/moved/claude/.credentials.json");
    let (token, source, _) = found(&home, Copilot);
    assert_eq!(token, "gho_moved");
    assert_eq!(source, "~/moved/gh/hosts.yml");
}
