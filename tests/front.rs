//! `quotatrack` and `quotatrack-engine`: the front answers `status` from
//! the snapshot by itself, byte for byte as the engine would, and hands
//! every other command line to the engine beside it.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::render::demo_dir;
use crate::support::finish_within;

/// Runs `program` as `quotatrack` (its `argv[0]`, which clap's usage
/// lines name) with `args`, `env` over an environment without the
/// settings, data dir, timeout, colour or front variables a developer may have set,
/// and `input` on stdin, then stdin closed; at most 20 s.
fn run_as_quotatrack(program: &Path, args: &[&str], env: &[(&str, &str)], input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new(program)
        .arg0("quotatrack")
        .args(args)
        .env_remove("QUOTATRACK_CONFIG")
        .env_remove("QUOTATRACK_DATA_DIR")
        .env_remove("QUOTATRACK_TIMEOUT")
        .env_remove("NO_COLOR")
        .env_remove("QUOTATRACK_FRONT_VERSION")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).ok();
    finish_within(
        child,
        Duration::from_secs(20),
        &format!("{} {args:?}", program.display()),
    )
}

fn text(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A copy of the front alone in a directory of its own: no engine beside it.
fn lonely_front() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let front = dir.path().join("quotatrack");
    place_front(&front);
    (dir, front)
}

/// The front at `path`: a hard link where it can be, as a copy is open for
/// writing while it is made, and a process another test forks meanwhile
/// would keep it so (then running it fails with "text file busy").
fn place_front(path: &Path) {
    if std::fs::hard_link(env!("CARGO_BIN_EXE_quotatrack"), path).is_err() {
        std::fs::copy(env!("CARGO_BIN_EXE_quotatrack"), path).unwrap();
    }
}

/// The `status` command lines the front answers, over `data`: every
/// form, width, filter, template and ready output, fresh and late.
fn status_lines(data: &str, config: &str) -> Vec<Vec<String>> {
    let forms: &[&[&str]] = &[
        &[],
        &["--json"],
        &["--line"],
        &["--table"],
        &["--line", "--width", "40"],
        &["--line", "--width", "200", "--color", "always"],
        &["--table", "--width", "80", "--color", "never"],
        &["--provider", "codex", "--provider", "kiro"],
        &["--format", "{anthropic.7d.used_percent}% ↺{anthropic.7d.resets_in}"],
        &["--output", "waybar"],
        &["--output", "tmux"],
        &["--output", "i3bar"],
        &["--output", "prompt"],
    ];
    let mut lines = Vec::new();
    for clock in ["2026-08-22T12:59:30Z", "2026-08-23T12:00:00Z", "2026-11-30T00:00:00Z"] {
        for form in forms {
            let mut line: Vec<String> = ["--data-dir", data, "--clock-at", clock, "status"]
                .iter()
                .map(|arg| arg.to_string())
                .collect();
            line.extend(form.iter().map(|arg| arg.to_string()));
            lines.push(line);
        }
        // The options after the command's name, and a settings file.
        lines.push(
            [
                "status",
                "--line",
                "--data-dir",
                data,
                "--config",
                config,
                "--clock-at",
                clock,
            ]
            .iter()
            .map(|arg| arg.to_string())
            .collect(),
        );
    }
    lines
}

#[test]
fn the_front_answers_status_alone_and_exactly_as_the_engine_does() {
    let scratch = tempfile::tempdir().unwrap();
    let config = scratch.path().join("config.toml");
    std::fs::write(
        &config,
        "providers = [\"codex\", \"anthropic\", \"zai\"]\nstale_after_s = 600\n",
    )
    .unwrap();
    let (_keep, front) = lonely_front();
    let engine = Path::new(env!("CARGO_BIN_EXE_quotatrack-engine"));
    let data = demo_dir().to_str().unwrap();
    let lines = status_lines(data, config.to_str().unwrap());
    for line in &lines {
        let args: Vec<&str> = line.iter().map(String::as_str).collect();
        // The front with no engine beside it: answered here or not at all.
        let answered = run_as_quotatrack(&front, &args, &[], b"");
        let engines = run_as_quotatrack(engine, &args, &[], b"");
        assert!(answered.status.success(), "{args:?}\n{}", text(&answered));
        assert!(!answered.stdout.is_empty(), "{args:?}");
        assert_eq!(text(&answered), text(&engines), "{args:?}");
    }
}

/// A command line and the environment it runs in.
type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>);

/// The plain lines the front reads without clap, and their near misses
/// that clap reads (or refuses), with the environment variables the
/// options fall back on: every one answers exactly as the engine does.
#[test]
fn the_plain_status_lines_and_their_near_misses_answer_as_the_engine_does() {
    let scratch = tempfile::tempdir().unwrap();
    let config = scratch.path().join("config.toml");
    std::fs::write(&config, "providers = [\"zai\", \"codex\"]\n").unwrap();
    let config = config.to_str().unwrap();
    let data = demo_dir().to_str().unwrap();
    let at = "--clock-at=2026-08-23T12:00:00Z";
    let data_eq = format!("--data-dir={data}");
    let config_eq = format!("--config={config}");
    let answered: Vec<Case> = vec![
        (vec![at, "status"], vec![("QUOTATRACK_DATA_DIR", data)]),
        (vec![at, &data_eq, "status"], vec![]),
        (vec!["--data-dir", data, at, "--config", config, "status"], vec![]),
        (vec![&config_eq, at, "--data-dir", data, "status"], vec![]),
        (
            vec!["--data-dir", data, at, "status"],
            vec![("QUOTATRACK_CONFIG", config)],
        ),
        (
            vec!["--data-dir", data, at, "status"],
            vec![("QUOTATRACK_TIMEOUT", "0.5")],
        ),
        (
            vec!["--data-dir", data, at, "status"],
            vec![("QUOTATRACK_DATA_DIR", "/nowhere")],
        ),
        (vec![at, "status", "--data-dir", data], vec![]),
    ];
    let refused: Vec<Case> = vec![
        (vec![at, "status"], vec![("QUOTATRACK_DATA_DIR", "")]),
        (vec!["--data-dir", data, at, "status"], vec![("QUOTATRACK_CONFIG", "")]),
        (
            vec!["--data-dir", data, at, "status"],
            vec![("QUOTATRACK_DATA_DIR", "")],
        ),
        (
            vec![&config_eq, "--data-dir", data, at, "status"],
            vec![("QUOTATRACK_CONFIG", "")],
        ),
        (
            vec!["--data-dir", data, at, "statusline", "claude"],
            vec![("QUOTATRACK_DATA_DIR", "")],
        ),
        (
            vec!["--data-dir", data, at, "status"],
            vec![("QUOTATRACK_TIMEOUT", "soon")],
        ),
        (vec!["--data-dir", data, "--data-dir", data, "status"], vec![]),
        (vec!["--data-dir=", "status"], vec![]),
        (vec!["--data-dir", "-d", "status"], vec![]),
        (vec!["--clock-at", "noon", "--data-dir", data, "status"], vec![]),
        (vec!["--data-dir", data, "status", "now"], vec![]),
        (vec!["--data-dir", data, "statusline", "codex"], vec![]),
    ];
    let front = Path::new(env!("CARGO_BIN_EXE_quotatrack"));
    let engine = Path::new(env!("CARGO_BIN_EXE_quotatrack-engine"));
    let (_keep, lonely) = lonely_front();
    for (cases, ok) in [(&answered, true), (&refused, false)] {
        for (args, env) in cases {
            let fronts = run_as_quotatrack(front, args, env, b"");
            let engines = run_as_quotatrack(engine, args, env, b"");
            assert_eq!(fronts.status.success(), ok, "{args:?} {env:?}\n{}", text(&fronts));
            assert_eq!(text(&fronts), text(&engines), "{args:?} {env:?}");
            if ok {
                // Answered by the front itself: no engine needed.
                assert_eq!(text(&run_as_quotatrack(&lonely, args, env, b"")), text(&engines));
            }
        }
    }
}

#[test]
fn the_front_reports_a_bad_snapshot_or_settings_as_the_engine_does() {
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path();
    let broken = root.join("broken");
    std::fs::create_dir(&broken).unwrap();
    std::fs::write(broken.join("status.json"), b"{\"schema\":1,\"providers\":[{\"id\":").unwrap();
    let bad_config = root.join("bad.toml");
    std::fs::write(&bad_config, "refresh_interval_s = \"soon\"\n").unwrap();
    let data = demo_dir().to_str().unwrap();
    let empty = root.join("empty");
    let absent = root.join("absent.toml");
    let cases: Vec<Vec<&str>> = vec![
        vec!["--data-dir", broken.to_str().unwrap(), "status"],
        vec!["--data-dir", broken.to_str().unwrap(), "status", "--json"],
        vec!["--data-dir", data, "--config", bad_config.to_str().unwrap(), "status"],
        vec!["--data-dir", data, "--config", absent.to_str().unwrap(), "status"],
        vec!["--data-dir", empty.to_str().unwrap(), "status"],
        vec!["--data-dir", empty.to_str().unwrap(), "status", "--json"],
    ];
    let (_keep, front) = lonely_front();
    let engine = Path::new(env!("CARGO_BIN_EXE_quotatrack-engine"));
    for args in &cases {
        let answered = run_as_quotatrack(&front, args, &[("COLUMNS", "100")], b"");
        let engines = run_as_quotatrack(engine, args, &[("COLUMNS", "100")], b"");
        assert_eq!(text(&answered), text(&engines), "{args:?}");
    }
    // An unreadable snapshot is a one-line error and exit 2, on stdout as
    // JSON when JSON was asked for.
    let json = run_as_quotatrack(&front, &cases[1], &[], b"");
    assert_eq!(json.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&json.stdout);
    let object: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert!(
        object["error"]["message"].as_str().unwrap().contains("snapshot"),
        "{stdout}"
    );
    assert_eq!(String::from_utf8_lossy(&json.stderr).lines().count(), 1);
}

#[test]
fn every_other_command_line_runs_in_the_engine_beside_the_front() {
    let front = Path::new(env!("CARGO_BIN_EXE_quotatrack"));
    let data = demo_dir().to_str().unwrap();
    // Answered by the engine: its version, its help, its usage errors
    // (named as `quotatrack`), its commands.
    let version = run_as_quotatrack(front, &["--version"], &[], b"");
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        concat!("quotatrack ", env!("CARGO_PKG_VERSION"))
    );
    let help = run_as_quotatrack(front, &["status", "--help"], &[], b"");
    assert!(help.status.success());
    assert!(
        String::from_utf8_lossy(&help.stdout).contains("Usage: quotatrack status"),
        "{}",
        text(&help)
    );
    let usage = run_as_quotatrack(front, &["status", "--no-such-flag"], &[], b"");
    assert_eq!(usage.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&usage.stderr).contains("Usage: quotatrack status"),
        "{}",
        text(&usage)
    );
    let stats = run_as_quotatrack(front, &["--data-dir", data, "log", "stats", "--json"], &[], b"");
    assert!(stats.status.success(), "{}", text(&stats));
    let stats: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert!(stats["events"].as_u64().unwrap() > 0, "{stats}");
}

#[test]
fn a_front_without_its_engine_says_so_in_one_line_and_still_answers_status() {
    let (dir, front) = lonely_front();
    let data = demo_dir().to_str().unwrap();
    for args in [
        vec!["--version"],
        vec!["--data-dir", data, "log", "stats"],
        vec!["--data-dir", data, "status", "--refresh"],
    ] {
        let output = run_as_quotatrack(&front, &args, &[], b"");
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(output.stdout.is_empty());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains(&dir.path().join("quotatrack-engine").display().to_string()),
            "{stderr}"
        );
        assert!(stderr.contains("cargo install"), "{stderr}");
    }
    // Asked for JSON, the reason is also a JSON object on stdout.
    let json = run_as_quotatrack(&front, &["--data-dir", data, "log", "stats", "--json"], &[], b"");
    assert_eq!(json.status.code(), Some(2));
    let object: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let message = object["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("quotatrack-engine") && message.contains("cargo install"),
        "{message}"
    );
    let status = run_as_quotatrack(&front, &["--data-dir", data, "status", "--line"], &[], b"");
    assert!(status.status.success(), "{}", text(&status));
}

#[test]
fn an_engine_that_is_not_a_program_is_refused_not_run_by_the_shell() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, front) = lonely_front();
    let marker = dir.path().join("ran");
    let engine = dir.path().join("quotatrack-engine");
    let touch = format!("touch {}\n", marker.display());
    let mut truncated = std::fs::read(env!("CARGO_BIN_EXE_quotatrack-engine")).unwrap();
    truncated.truncate(64);
    // Files the system will not run, which `execvp` would hand to /bin/sh:
    // shell text, shell text under an ELF header, a truncated program, a
    // file too short for any header.
    let bad: Vec<Vec<u8>> = vec![
        touch.clone().into_bytes(),
        [b"\x7fELF\n".as_slice(), touch.as_bytes()].concat(),
        truncated,
        b"id\n".to_vec(),
    ];
    for contents in &bad {
        std::fs::write(&engine, contents).unwrap();
        std::fs::set_permissions(&engine, std::fs::Permissions::from_mode(0o755)).unwrap();
        for args in [&["log", "stats"][..], &["log", "stats", "--json"]] {
            let output = run_as_quotatrack(&front, args, &[], b"");
            assert_eq!(output.status.code(), Some(2), "{}", text(&output));
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
            assert!(stderr.contains("cannot start"), "{stderr}");
            assert!(!marker.exists(), "the shell ran the engine file");
            let json = args.contains(&"--json");
            assert_eq!(
                serde_json::from_slice::<serde_json::Value>(&output.stdout).is_ok(),
                json
            );
        }
    }
    // A FIFO in the engine's place is not waited on.
    std::fs::remove_file(&engine).unwrap();
    let name = std::ffi::CString::new(engine.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o700) }, 0);
    let output = run_as_quotatrack(&front, &["log", "stats"], &[], b"");
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    // A script with its interpreter named is a program (a packager's wrapper).
    std::fs::remove_file(&engine).unwrap();
    std::fs::write(&engine, format!("#!/bin/sh\n{touch}")).unwrap();
    std::fs::set_permissions(&engine, std::fs::Permissions::from_mode(0o755)).unwrap();
    let output = run_as_quotatrack(&front, &["log", "stats"], &[], b"");
    assert!(output.status.success(), "{}", text(&output));
    assert!(marker.exists());
}

#[test]
fn an_engine_from_another_install_refuses_in_one_line() {
    let engine = Path::new(env!("CARGO_BIN_EXE_quotatrack-engine"));
    // As an older front would start it: the mark set, then `exec` (the
    // shell's pid, `$$`, is the engine's).
    let output = Command::new("sh")
        .arg("-c")
        .arg(r#"QUOTATRACK_FRONT_VERSION="0.0.0-older $$" exec "$0" --version"#)
        .arg(engine)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("0.0.0-older") && stderr.contains(env!("CARGO_PKG_VERSION")),
        "{stderr}"
    );
}

#[test]
fn the_front_answers_claudes_statusline_and_spools_as_the_engine_does() {
    let payloads = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/statusline");
    let mut inputs: Vec<Vec<u8>> = std::fs::read_dir(&payloads)
        .unwrap()
        .map(|entry| std::fs::read(entry.unwrap().path()).unwrap())
        .collect();
    inputs.push(Vec::new());
    inputs.push(b"{\"rate_limits\": [1, 2".to_vec());
    assert!(inputs.len() >= 4);
    let (_keep, front) = lonely_front();
    let engine = Path::new(env!("CARGO_BIN_EXE_quotatrack-engine"));
    let snapshot = std::fs::read(demo_dir().join("status.json")).unwrap();
    let mut spooled = 0;
    for input in &inputs {
        for extra in [&[][..], &["--width", "60"], &["--color", "always"]] {
            // Each its own data dir: the line spools Claude's numbers there.
            let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
            let outputs: Vec<(String, Option<Vec<u8>>)> = [front.as_path(), engine]
                .iter()
                .zip(&dirs)
                .map(|(program, dir)| {
                    std::fs::write(dir.path().join("status.json"), &snapshot).unwrap();
                    let data = dir.path().to_str().unwrap();
                    let mut args = vec![
                        "--data-dir",
                        data,
                        "--clock-at",
                        "2026-08-22T12:59:30Z",
                        "statusline",
                        "claude",
                    ];
                    args.extend_from_slice(extra);
                    let output = run_as_quotatrack(program, &args, &[], input);
                    assert!(output.status.success(), "{}", text(&output));
                    (text(&output), std::fs::read(dir.path().join("statusline.spool")).ok())
                })
                .collect();
            assert_eq!(outputs[0], outputs[1], "{extra:?} {}", String::from_utf8_lossy(input));
            spooled += usize::from(outputs[0].1.is_some());
        }
    }
    // The payload with `rate_limits` was spooled, at each of its three runs.
    assert_eq!(spooled, 3);
}

#[test]
fn a_snapshot_or_settings_file_that_is_a_fifo_or_a_device_neither_hangs_nor_fills_memory() {
    let scratch = tempfile::tempdir().unwrap();
    let fifo = scratch.path().join("fifo");
    std::fs::create_dir(&fifo).unwrap();
    let name = std::ffi::CString::new(fifo.join("status.json").to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
    let device = scratch.path().join("device");
    std::fs::create_dir(&device).unwrap();
    std::os::unix::fs::symlink("/dev/zero", device.join("status.json")).unwrap();
    let front = Path::new(env!("CARGO_BIN_EXE_quotatrack"));
    for dir in [&fifo, &device] {
        let data = dir.to_str().unwrap();
        let status = run_as_quotatrack(front, &["--data-dir", data, "status"], &[], b"");
        assert_eq!(status.status.code(), Some(2), "{}", text(&status));
        let stderr = String::from_utf8_lossy(&status.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains("not a plain file"), "{stderr}");
        // A status line never fails: it shows what it has.
        let line = run_as_quotatrack(front, &["--data-dir", data, "statusline", "claude"], &[], b"");
        assert!(line.status.success(), "{}", text(&line));
        assert_eq!(String::from_utf8_lossy(&line.stdout).trim(), "no usage data yet");
    }
    // The same for a settings file, in the front and in the engine.
    let demo = demo_dir().to_str().unwrap();
    let engine = Path::new(env!("CARGO_BIN_EXE_quotatrack-engine"));
    for config in [fifo.join("status.json"), device.join("status.json")] {
        let config = config.to_str().unwrap();
        for (program, args) in [
            (front, &["--data-dir", demo, "--config", config, "status"][..]),
            (engine, &["--data-dir", demo, "--config", config, "status", "--json"]),
            (engine, &["--config", config, "credentials"]),
        ] {
            let output = run_as_quotatrack(program, args, &[], b"");
            assert_eq!(output.status.code(), Some(2), "{args:?} {}", text(&output));
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
            assert!(
                stderr.contains("not a plain file") && stderr.contains(config),
                "{stderr}"
            );
        }
    }
}

#[test]
fn a_front_installed_as_the_engine_is_refused_not_run_again_and_again() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    for name in ["quotatrack", "quotatrack-engine"] {
        place_front(&dir.path().join(name));
    }
    let output = run_as_quotatrack(&dir.path().join("quotatrack"), &["--version"], &[], b"");
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("not the engine"), "{stderr}");
}

#[test]
fn a_long_running_command_is_still_named_quotatrack() {
    use std::io::{BufRead, BufReader, Write};
    let data = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/example");
    let mut serve = Command::new(env!("CARGO_BIN_EXE_quotatrack"))
        .args(["--data-dir", data.path().to_str().unwrap(), "--fixtures"])
        .arg(&fixtures)
        .args(["--clock-at", "2026-08-22T12:00:00Z", "serve", "--stdio"])
        .env_remove("QUOTATRACK_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = serve.id();
    let stdout = serve.stdout.take().unwrap();
    let (sender, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                return;
            }
        }
    });
    let mut stdin = serve.stdin.take().unwrap();
    writeln!(stdin, r#"{{"type":"session_start"}}"#).unwrap();
    stdin.flush().unwrap();
    // The engine answers once it runs (a failure guard, not a pause).
    lines
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("serve answers session_start");
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    drop(stdin);
    let _ = serve.kill();
    let _ = serve.wait();
    // The engine runs in the process the user started, under its name.
    assert_eq!(exe.file_name().unwrap(), "quotatrack-engine");
    assert_eq!(comm.trim(), "quotatrack");
}

#[test]
fn an_error_about_a_path_with_a_newline_is_still_one_line() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("two\nlines");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("status.json"), b"{\"schema\":").unwrap();
    let data = dir.to_str().unwrap();
    for program in [
        env!("CARGO_BIN_EXE_quotatrack"),
        env!("CARGO_BIN_EXE_quotatrack-engine"),
    ] {
        for args in [
            vec!["--data-dir", data, "status"],
            vec!["--data-dir", data, "status", "--json"],
        ] {
            let output = run_as_quotatrack(Path::new(program), &args, &[], b"");
            assert_eq!(output.status.code(), Some(2), "{}", text(&output));
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
            assert!(stderr.contains("two\\nlines"), "{stderr}");
        }
    }
}

/// `QUOTATRACK_FRONT_VERSION` set by anyone but the front this process was
/// (a user, a parent that is a front) is not a front's word: neither the
/// front nor the engine refuses for it, and the engine answers as usual.
#[test]
fn a_front_mark_the_process_inherited_is_ignored() {
    let front = Path::new(env!("CARGO_BIN_EXE_quotatrack"));
    let engine = Path::new(env!("CARGO_BIN_EXE_quotatrack-engine"));
    let expected = run_as_quotatrack(engine, &["--version"], &[], b"");
    assert!(expected.status.success(), "{}", text(&expected));
    let parent = format!("{} 1", env!("CARGO_PKG_VERSION"));
    for value in [
        "0.0.0-older",
        "0.0.0-older 1",
        parent.as_str(),
        "",
        "garbage 99999999999",
    ] {
        for program in [front, engine] {
            let output = run_as_quotatrack(program, &["--version"], &[("QUOTATRACK_FRONT_VERSION", value)], b"");
            assert!(output.status.success(), "{program:?} with {value:?}: {}", text(&output));
            assert_eq!(output.stdout, expected.stdout, "{program:?} with {value:?}");
        }
    }
}
