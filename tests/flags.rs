//! Numeric flags of the real binary: every out-of-range, negative,
//! non-numeric or absurd value is refused by the argument parser (exit 2)
//! with a message saying what is allowed, before anything runs; values in
//! range are taken.

use std::process::Command;

/// Runs the binary on an empty data dir with `args` and `env`.
fn run(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let home = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_quotatrack"));
    command
        .env_clear()
        .env("HOME", home.path())
        .arg("--data-dir")
        .arg(home.path().join("data"))
        .args(args);
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn an_invalid_flag_value_says_what_is_allowed() {
    let cases: &[(&[&str], &str)] = &[
        (&["--timeout", "0", "status"], "a number of seconds from 0.1 to 300"),
        (&["--timeout", "0.0", "status"], "from 0.1 to 300"),
        (&["--timeout", "-1", "status"], "from 0.1 to 300"),
        (&["--timeout", "-0.5", "status"], "from 0.1 to 300"),
        (&["--timeout", "five", "status"], "from 0.1 to 300"),
        (&["--timeout", "5s", "status"], "from 0.1 to 300"),
        (&["--timeout", "", "status"], "from 0.1 to 300"),
        (&["--timeout", "nan", "status"], "from 0.1 to 300"),
        (&["--timeout", "inf", "status"], "from 0.1 to 300"),
        (&["--timeout", "1e308", "status"], "from 0.1 to 300"),
        (&["--timeout", "301", "status"], "from 0.1 to 300"),
        (&["status", "--timeout", "0"], "from 0.1 to 300"),
        (&["demo", "--hours", "0"], "whole number of hours from 1 to 168"),
        (&["demo", "--hours", "-3"], "from 1 to 168"),
        (&["demo", "--hours", "4294967295"], "from 1 to 168"),
        (&["demo", "--hours", "1.5"], "from 1 to 168"),
        (
            &["log", "compact", "--keep-days", "-1"],
            "whole number of days from 0 to 3650",
        ),
        (&["log", "compact", "--keep-days", "999999999"], "from 0 to 3650"),
        (
            &["log", "export", "--since", "-1"],
            "a sequence number must be a whole number",
        ),
        (
            &["log", "export", "--since", "x"],
            "a sequence number must be a whole number",
        ),
        (
            &["parse", "anthropic", "-", "--status", "0"],
            "an HTTP status must be a whole number from 100 to 599",
        ),
        (&["parse", "anthropic", "-", "--status", "99999"], "from 100 to 599"),
        (&["parse", "anthropic", "-", "--status", "-200"], "from 100 to 599"),
        (
            &["--now-offset", "99999999999999", "status"],
            "seconds from -315360000 to 315360000",
        ),
        (
            &["--now-offset", "-99999999999999", "status"],
            "seconds from -315360000 to 315360000",
        ),
    ];
    for (args, allowed) in cases {
        let (code, stderr) = run(args, &[]);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(allowed), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    // The environment variable is checked the same way.
    let (code, stderr) = run(&["status"], &[("QUOTATRACK_TIMEOUT", "0")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("from 0.1 to 300"), "{stderr}");
}

#[test]
fn values_in_range_are_taken() {
    for args in [
        &["--timeout", "0.1", "status"][..],
        &["--timeout", "300", "status"],
        &["--timeout", " 2.5 ", "status"],
        &["--now-offset", "-60", "status"],
        &["log", "export", "--since", "18446744073709551615"],
        &["log", "compact", "--keep-days", "0"],
        &["log", "compact", "--keep-days", "3650"],
    ] {
        let (code, stderr) = run(args, &[]);
        assert!(
            !stderr.contains("invalid value") && code != Some(101),
            "{args:?}: {code:?} {stderr}"
        );
    }
}
