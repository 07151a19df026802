//! Fault injection with real processes: a log written by `demo`, damaged
//! in every way the files can be (flipped bytes inside an event and inside
//! sled's metadata, truncation, a zeroed page, a file deleted or replaced by
//! a directory), then every command run on it as the binary. Each must end
//! within 10 s, never panic (exit 101) and answer with its documented exit
//! code and message; `log repair` then gives back a data dir on which every
//! command works and which holds every event the raw files still held.
//!
//! Offsets come from a seeded generator; the seed is printed
//! (`QUOTATRACK_FAULT_SEED` reruns one).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use quotatrack::events::Envelope;
use quotatrack::log::salvage;

use crate::support::{Rng, finish_within};

/// How long any one command may take.
const LIMIT: Duration = Duration::from_secs(60);

/// What a finished command left.
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the binary with `args` on `data_dir`, `stdin` as its whole input,
/// killing it (and failing) when it runs past [`LIMIT`].
fn run(data_dir: &Path, args: &[&str], stdin: &[u8], what: &str) -> Ran {
    let mut child = Command::new(env!("CARGO_BIN_EXE_quotatrack"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).ok();
    let output = finish_within(child, LIMIT, &format!("{what}: `quotatrack {}`", args.join(" ")));
    let ran = Ran {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    assert_ne!(ran.code, 101, "{what}: `{}` panicked: {}", args.join(" "), ran.stderr);
    assert_ne!(ran.code, -1, "{what}: `{}` was killed by a signal", args.join(" "));
    ran
}

/// `watch` until its first status line (then SIGTERM) or its exit.
fn watch(data_dir: &Path, fixtures: &Path, what: &str) -> Ran {
    let mut child = Command::new(env!("CARGO_BIN_EXE_quotatrack"))
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--fixtures")
        .arg(fixtures)
        .arg("watch")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let stdout = child.stdout.take().unwrap();
    let (lines, first) = mpsc::channel();
    std::thread::spawn(move || {
        let mut read = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            read.push(line);
            let _ = lines.send(read.len());
        }
        read
    });
    let (sender, exited) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(child.wait_with_output());
    });
    let kill = |signal: &str| {
        let _ = Command::new("kill").args([signal, &pid]).status();
    };
    // Either it printed a line (running: stop it) or it ends by itself.
    if first.recv_timeout(LIMIT).is_ok() {
        kill("-TERM");
    }
    let output = match exited.recv_timeout(LIMIT) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            kill("-KILL");
            panic!("{what}: watch did not stop within {LIMIT:?}");
        }
    };
    let ran = Ran {
        code: output.status.code().unwrap_or(-1),
        stdout: String::new(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    assert_ne!(ran.code, 101, "{what}: watch panicked: {}", ran.stderr);
    ran
}

/// The one-line refusal of an engine command on a damaged log.
fn assert_refused(ran: &Ran, what: &str) {
    let lines: Vec<&str> = ran.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{what}: {}", ran.stderr);
    assert!(
        lines[0].starts_with("quotatrack: the log in ")
            && lines[0].contains("is damaged")
            && lines[0].ends_with("run `quotatrack log repair`"),
        "{what}: {}",
        ran.stderr
    );
}

/// Exit 0, or exit 2 with the one-line refusal.
fn works_or_refuses(ran: &Ran, what: &str) -> bool {
    match ran.code {
        0 => false,
        2 => {
            assert_refused(ran, what);
            true
        }
        other => panic!("{what}: exit {other}: {}", ran.stderr),
    }
}

/// One way of damaging the log directory.
enum Damage {
    Flip { file: &'static str, offset: u64 },
    Truncate { file: &'static str, length: u64 },
    ZeroPage { file: &'static str, page: u64 },
    Delete { file: &'static str },
    Directory { file: &'static str },
}

impl Damage {
    fn apply(&self, log_dir: &Path) {
        let path = |file: &str| -> PathBuf {
            if file == "snap" {
                std::fs::read_dir(log_dir)
                    .unwrap()
                    .flatten()
                    .map(|entry| entry.path())
                    .find(|path| path.file_name().unwrap().to_string_lossy().starts_with("snap."))
                    .expect("sled wrote a snapshot file")
            } else {
                log_dir.join(file)
            }
        };
        match self {
            Damage::Flip { file, offset } => {
                let path = path(file);
                let mut bytes = std::fs::read(&path).unwrap();
                let at = (*offset as usize) % bytes.len();
                bytes[at] ^= 0x5a;
                std::fs::write(&path, bytes).unwrap();
            }
            Damage::Truncate { file, length } => {
                let file = std::fs::OpenOptions::new().write(true).open(path(file)).unwrap();
                file.set_len(*length).unwrap();
            }
            Damage::ZeroPage { file, page } => {
                let path = path(file);
                let mut bytes = std::fs::read(&path).unwrap();
                let start = ((*page as usize) * 4096).min(bytes.len());
                let end = (start + 4096).min(bytes.len());
                bytes[start..end].fill(0);
                std::fs::write(&path, bytes).unwrap();
            }
            Damage::Delete { file } => std::fs::remove_file(path(file)).unwrap(),
            Damage::Directory { file } => {
                let path = path(file);
                std::fs::remove_file(&path).unwrap();
                std::fs::create_dir(&path).unwrap();
            }
        }
    }

    fn name(&self) -> String {
        match self {
            Damage::Flip { file, offset } => format!("byte flipped in {file} at {offset}"),
            Damage::Truncate { file, length } => format!("{file} truncated to {length} bytes"),
            Damage::ZeroPage { file, page } => format!("page {page} of {file} zeroed"),
            Damage::Delete { file } => format!("{file} deleted"),
            Damage::Directory { file } => format!("{file} replaced by a directory"),
        }
    }
}

/// Every event of an export, by sequence number.
fn exported(text: &str) -> BTreeMap<u64, Envelope> {
    text.lines()
        .map(|line| {
            let envelope = Envelope::from_json(line.as_bytes()).expect("export writes events");
            (envelope.seq, envelope)
        })
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().mode(0o700).create(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn every_command_on_every_damage_ends_in_time_and_repair_restores_the_data_dir() {
    let mut rng = Rng::seeded("QUOTATRACK_FAULT_SEED", 0x0dd_f1a9_u64);
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/providers");
    let root = tempfile::tempdir().unwrap();
    let base = root.path().join("base");
    let demo = run(&base, &["demo", "--hours", "1"], b"", "demo");
    assert_eq!(demo.code, 0, "{}", demo.stderr);
    let before = exported(&run(&base, &["log", "export"], b"", "base export").stdout);
    assert!(before.len() > 500, "{}", before.len());
    let db_len = std::fs::metadata(base.join("log/db")).unwrap().len();
    // An offset inside a stored frame of events (past its 47-byte header,
    // in the compressed text): where the raw file holds one.
    let db = std::fs::read(base.join("log/db")).unwrap();
    let event_starts: Vec<usize> = db
        .windows(4)
        .enumerate()
        .filter(|(_, window)| *window == quotatrack::log::frame::MAGIC)
        .map(|(at, _)| at)
        .collect();
    let inside_event = event_starts[rng.below(event_starts.len() as u64) as usize] as u64 + 50;
    let last_event = *event_starts.last().unwrap() as u64 + 50;

    let damages = [
        Damage::Flip {
            file: "db",
            offset: inside_event,
        },
        Damage::Flip {
            file: "db",
            offset: last_event,
        },
        Damage::Flip {
            file: "db",
            offset: rng.below(64),
        },
        Damage::Flip {
            file: "snap",
            offset: rng.below(1_000),
        },
        Damage::Flip {
            file: "db",
            offset: rng.below(db_len),
        },
        Damage::Truncate {
            file: "db",
            length: rng.below(db_len),
        },
        Damage::Truncate {
            file: "db",
            length: db_len - 1 - rng.below(4_096),
        },
        Damage::ZeroPage {
            file: "db",
            page: (db_len / 4096).saturating_sub(1 + rng.below(8)),
        },
        Damage::Delete { file: "conf" },
        Damage::Delete { file: "db" },
        Damage::Delete { file: "snap" },
        Damage::Directory { file: "db" },
        Damage::Directory { file: "conf" },
    ];
    std::thread::scope(|scope| {
        for (index, damage) in damages.iter().enumerate() {
            let data_dir = root.path().join(format!("case-{index}"));
            let (base, fixtures, before) = (&base, &fixtures, &before);
            scope.spawn(move || {
                copy_dir(base, &data_dir);
                damage.apply(&data_dir.join("log"));
                check_case(&data_dir, fixtures, before, &damage.name());
            });
        }
    });
}

/// Every command on one damaged data dir, then `log repair`, then every
/// command again.
fn check_case(data_dir: &Path, fixtures: &Path, before: &BTreeMap<u64, Envelope>, damage: &str) {
    let fixtures = fixtures.to_str().unwrap();
    // What the raw files hold, read before any command touches them.
    let raw: BTreeMap<u64, Envelope> = salvage::scan(&data_dir.join("log"))
        .index
        .events(0)
        .map(|(envelope, _)| (envelope.seq, envelope))
        .collect();

    let status = run(data_dir, &["status", "--json"], b"", damage);
    assert_eq!(status.code, 0, "{damage}: status: {}", status.stderr);

    let verify = run(data_dir, &["log", "verify"], b"", damage);
    let damaged = match verify.code {
        0 => false,
        1 => {
            assert!(
                verify.stdout.contains("events readable") && verify.stdout.contains("`quotatrack log repair`"),
                "{damage}: verify: {}",
                verify.stdout
            );
            true
        }
        other => panic!("{damage}: verify exit {other}: {}{}", verify.stdout, verify.stderr),
    };

    let export = run(data_dir, &["log", "export"], b"", damage);
    assert_eq!(
        export.code,
        if damaged { 1 } else { 0 },
        "{damage}: export: {}",
        export.stderr
    );
    let seqs: Vec<u64> = exported(&export.stdout).into_keys().collect();
    assert!(
        seqs.windows(2).all(|pair| pair[0] < pair[1]),
        "{damage}: export out of order"
    );
    for seq in raw.keys() {
        assert!(
            seqs.contains(seq),
            "{damage}: event {seq} is in the raw files but not exported"
        );
    }
    if damaged {
        assert!(export.stderr.contains("is damaged"), "{damage}: {}", export.stderr);
    }

    let stats = run(data_dir, &["log", "stats"], b"", damage);
    assert_eq!(stats.code, 0, "{damage}: stats: {}", stats.stderr);
    assert!(
        stats.stdout.contains(&format!("events        {}\n", seqs.len())),
        "{damage}: stats disagrees with export ({} events): {}",
        seqs.len(),
        stats.stdout
    );

    let replay_input = export.stdout.as_bytes();
    let replay = run(data_dir, &["replay", "-"], replay_input, damage);
    assert!(
        matches!(replay.code, 0 | 1),
        "{damage}: replay exit {}: {}",
        replay.code,
        replay.stderr
    );

    let store = run(data_dir, &["store"], b"", damage);
    let store_refused = works_or_refuses(&store, &format!("{damage}: store"));
    let refresh = run(data_dir, &["--fixtures", fixtures, "status", "--refresh"], b"", damage);
    let refresh_refused = works_or_refuses(&refresh, &format!("{damage}: status --refresh"));
    let serve = run(data_dir, &["--fixtures", fixtures, "serve", "--stdio"], b"", damage);
    let serve_refused = works_or_refuses(&serve, &format!("{damage}: serve --stdio"));
    let watched = watch(data_dir, Path::new(fixtures), damage);
    let watch_refused = works_or_refuses(&watched, &format!("{damage}: watch"));
    // The engine commands agree, and only refuse what verify calls damaged.
    assert_eq!(
        [store_refused, refresh_refused, serve_refused],
        [watch_refused; 3],
        "{damage}: store/refresh/serve/watch disagree"
    );
    if watch_refused {
        assert!(damaged, "{damage}: the engine refused a log verify passed");
    }
    let compact = run(data_dir, &["log", "compact"], b"", damage);
    works_or_refuses(&compact, &format!("{damage}: compact"));

    // sled's own recovery, when an engine command opens the damaged files,
    // may cut them short: what repair must keep is what is left then.
    let raw: BTreeMap<u64, Envelope> = salvage::scan(&data_dir.join("log"))
        .index
        .events(0)
        .map(|(envelope, _)| (envelope.seq, envelope))
        .collect();
    let repair = run(data_dir, &["log", "repair"], b"", damage);
    assert_eq!(repair.code, 0, "{damage}: repair: {}{}", repair.stdout, repair.stderr);
    if damaged {
        assert!(repair.stdout.starts_with("kept "), "{damage}: {}", repair.stdout);
        let aside = std::fs::read_dir(data_dir)
            .unwrap()
            .flatten()
            .any(|entry| entry.file_name().to_string_lossy().starts_with("log.damaged-"));
        assert!(aside, "{damage}: the damaged files were not kept aside");
    }

    // Everything works again, and nothing the raw files held is lost.
    let verify = run(data_dir, &["log", "verify"], b"", damage);
    assert_eq!(verify.code, 0, "{damage}: verify after repair: {}", verify.stdout);
    let export = run(data_dir, &["log", "export"], b"", damage);
    assert_eq!(export.code, 0, "{damage}: export after repair: {}", export.stderr);
    let after = exported(&export.stdout);
    for (seq, envelope) in &raw {
        let kept = after
            .get(seq)
            .unwrap_or_else(|| panic!("{damage}: repair lost readable event {seq}"));
        assert_eq!(
            (kept.at, kept.payload.name()),
            (envelope.at, envelope.payload.name()),
            "{damage}"
        );
        if let Some(original) = before.get(seq) {
            assert_eq!(
                (kept.at, kept.payload.name()),
                (original.at, original.payload.name()),
                "{damage}: event {seq} changed"
            );
        }
    }
    for args in [
        &["store"][..],
        &["log", "stats"],
        &["log", "compact"],
        &["--fixtures", fixtures, "status", "--refresh"],
        &["--fixtures", fixtures, "serve", "--stdio"],
    ] {
        let ran = run(data_dir, args, b"", damage);
        assert_eq!(
            ran.code,
            0,
            "{damage}: `{}` after repair: {}",
            args.join(" "),
            ran.stderr
        );
        assert!(!ran.stderr.contains("damaged"), "{damage}: {}", ran.stderr);
    }
    let watched = watch(data_dir, Path::new(fixtures), damage);
    assert_eq!(watched.code, 0, "{damage}: watch after repair: {}", watched.stderr);
    let verify = run(data_dir, &["log", "verify"], b"", damage);
    assert_eq!(verify.code, 0, "{damage}: verify at the end: {}", verify.stdout);
}

#[test]
fn a_log_that_lost_acknowledged_events_is_refused_until_repaired() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/providers");
    let fixtures = fixtures.to_str().unwrap();
    let root = tempfile::tempdir().unwrap();
    for (what, damage) in [
        (
            "db deleted",
            (|db: &Path| std::fs::remove_file(db).unwrap()) as fn(&Path),
        ),
        ("db emptied", |db: &Path| std::fs::write(db, b"").unwrap()),
        ("log dir deleted", |db: &Path| {
            std::fs::remove_dir_all(db.parent().unwrap()).unwrap()
        }),
        ("log dir emptied", |db: &Path| {
            for entry in std::fs::read_dir(db.parent().unwrap()).unwrap().flatten() {
                if entry.path().is_dir() {
                    std::fs::remove_dir_all(entry.path()).unwrap();
                } else {
                    std::fs::remove_file(entry.path()).unwrap();
                }
            }
        }),
    ] {
        let data = root.path().join(what.replace(' ', "-"));
        let demo = run(&data, &["demo", "--hours", "1"], b"", what);
        assert_eq!(demo.code, 0, "{what}: {}", demo.stderr);
        damage(&data.join("log/db"));
        // sled alone would start an empty log here and number new events
        // over the lost ones; the end marker beside the log says otherwise.
        for args in [
            vec!["--fixtures", fixtures, "status", "--refresh"],
            vec!["--fixtures", fixtures, "serve", "--stdio"],
            vec!["store"],
        ] {
            let ran = run(&data, &args, b"", what);
            assert_eq!(ran.code, 2, "{what}: {args:?}: {}", ran.stderr);
            assert!(
                ran.stderr.contains("run `quotatrack log repair`"),
                "{what}: {}",
                ran.stderr
            );
        }
        let verify = run(&data, &["log", "verify"], b"", what);
        assert_eq!(verify.code, 1, "{what}: {}", verify.stdout);
        assert!(verify.stdout.contains("lost"), "{what}: {}", verify.stdout);
        let repair = run(&data, &["log", "repair"], b"", what);
        assert_eq!(repair.code, 0, "{what}: {}{}", repair.stdout, repair.stderr);
        assert_eq!(run(&data, &["log", "verify"], b"", what).code, 0, "{what}");
        let refresh = run(&data, &["--fixtures", fixtures, "status", "--refresh"], b"", what);
        assert_eq!(refresh.code, 0, "{what}: {}", refresh.stderr);
    }
}

#[test]
fn a_damaged_end_marker_or_sled_conf_is_refused_in_bounded_time_and_repaired() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/providers");
    let fixtures = fixtures.to_str().unwrap();
    let root = tempfile::tempdir().unwrap();
    let outside = root.path().join("outside");
    std::fs::write(&outside, "mine").unwrap();
    for (what, damage) in [
        // An endless file must be read with a bound, not into memory.
        (
            "marker is /dev/zero",
            (|data: &Path| std::os::unix::fs::symlink("/dev/zero", data.join("log.end")).unwrap()) as fn(&Path),
        ),
        ("marker is junk", |data: &Path| {
            std::fs::write(data.join("log.end"), "junk").unwrap()
        }),
        ("sled conf is garbage", |data: &Path| {
            std::fs::write(data.join("log/conf"), [0x5a; 62]).unwrap()
        }),
    ] {
        let data = root.path().join(what.replace(' ', "-").replace('/', ""));
        let demo = run(&data, &["demo", "--hours", "1"], b"", what);
        assert_eq!(demo.code, 0, "{what}: {}", demo.stderr);
        let before = exported(&run(&data, &["log", "export"], b"", what).stdout);
        let _ = std::fs::remove_file(data.join("log.end"));
        damage(&data);
        let refresh = run(&data, &["--fixtures", fixtures, "status", "--refresh"], b"", what);
        assert_eq!(refresh.code, 2, "{what}: {}", refresh.stderr);
        assert!(
            refresh.stderr.contains("run `quotatrack log repair`"),
            "{what}: {}",
            refresh.stderr
        );
        let repair = run(&data, &["log", "repair"], b"", what);
        assert_eq!(repair.code, 0, "{what}: {}{}", repair.stdout, repair.stderr);
        let after = exported(&run(&data, &["log", "export"], b"", what).stdout);
        assert_eq!(after.len(), before.len(), "{what}: events lost in repair");
        let refresh = run(&data, &["--fixtures", fixtures, "status", "--refresh"], b"", what);
        assert_eq!(refresh.code, 0, "{what}: {}", refresh.stderr);
    }
    // A symlink in the marker's place is never written through.
    let data = root.path().join("marker-symlink");
    assert_eq!(run(&data, &["demo", "--hours", "1"], b"", "symlink").code, 0);
    std::fs::remove_file(data.join("log.end")).unwrap();
    std::os::unix::fs::symlink(&outside, data.join("log.end")).unwrap();
    run(&data, &["--fixtures", fixtures, "status", "--refresh"], b"", "symlink");
    run(&data, &["log", "repair"], b"", "symlink");
    run(&data, &["--fixtures", fixtures, "status", "--refresh"], b"", "symlink");
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "mine");
}
