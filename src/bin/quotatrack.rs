//! `quotatrack`, the program users run. `status` read from the snapshot and
//! `statusline claude`, the commands status lines and prompts run again and
//! again, are answered here: this program holds only that path (the
//! settings, the snapshot, the renderers), so it starts at about the cost of
//! a hello world. The plainest lines (`quotatrack status`, `quotatrack
//! statusline claude`, with a data dir, settings file or clock) are read
//! without building clap's parser ([`FrontArgs::plain`]); the rest through
//! it. Every other command, and anything the parser does not take
//! (`--help`, a usage error, `status --refresh`), replaces this process
//! with `quotatrack-engine` from the same directory: same pid, same
//! arguments, same environment, so signals, exit codes and output are the
//! engine's own.

use std::convert::Infallible;
use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, bail};
use clap::{CommandFactory, FromArgMatches};
use quotatrack::cli::{FrontArgs, FrontCommand};
use quotatrack::commands::{self, FRONT_VERSION, Sources};

fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let args = FrontArgs::plain(&argv, |name| std::env::var_os(name)).or_else(|| parse(&argv));
    match args {
        Some(FrontArgs {
            globals,
            command: FrontCommand::Status(status),
        }) if !status.refresh => {
            let result = Sources::new(&globals, true).and_then(|sources| commands::print_status(&sources, &status));
            commands::exit_code(result, status.json)
        }
        Some(FrontArgs {
            globals,
            command: FrontCommand::Statusline(line),
        }) => {
            let result = Sources::new(&globals, false)
                .and_then(|sources| commands::print_statusline(&sources, globals.config.as_deref(), &line));
            commands::exit_code(result, false)
        }
        _ => engine(argv),
    }
}

/// The command line as [`FrontArgs`] reads it, `None` when it does not
/// take it. The parser is freed before the snapshot is read, so that the
/// snapshot's values reuse its memory rather than touch new pages.
fn parse(argv: &[OsString]) -> Option<FrontArgs> {
    let mut command = FrontArgs::command();
    let mut matches = command.try_get_matches_from_mut(argv).ok()?;
    FrontArgs::from_arg_matches_mut(&mut matches).ok()
}

/// Becomes `quotatrack-engine` (found beside this program) with the same
/// arguments; returns only when it cannot be started, with a one-line
/// error (and on stdout as JSON when the line asks for `--json`).
fn engine(argv: Vec<OsString>) -> ExitCode {
    let json = argv
        .iter()
        .skip(1)
        .take_while(|word| *word != "--")
        .any(|word| word == "--json");
    commands::exit_code(exec_engine(argv).map(|never| match never {}), json)
}

/// Replaces this process with the engine; the error says why it did not.
fn exec_engine(argv: Vec<OsString>) -> anyhow::Result<Infallible> {
    let me = std::env::current_exe().map_err(|error| {
        anyhow!("cannot find this program's own path ({error}); run quotatrack-engine with the same arguments")
    })?;
    let path = me.with_file_name("quotatrack-engine");
    let reinstall = "install both programs with `cargo install --locked --path .`";
    if std::env::var_os(FRONT_VERSION).is_some_and(|value| commands::front_version_here(&value).is_some()) {
        // This process was a front before: what is installed as the engine
        // is a front too, and would start itself again and again. (A value
        // inherited from elsewhere is not ours, and is replaced below.)
        bail!(
            "{} is not the engine but another quotatrack; {reinstall}",
            path.display()
        );
    }
    // Set in this process's own environment, which then passes on exactly
    // as it is (a variable set twice keeps the value a reader takes first).
    // SAFETY: no other thread runs yet: the front starts none before this.
    unsafe { std::env::set_var(FRONT_VERSION, commands::front_mark()) };
    let error = exec(&path, argv);
    bail!(
        "cannot start {} ({error}): every command but `status` and `statusline` runs there; {reinstall}",
        path.display()
    )
}

/// `execv`: the program at `path` with `argv` (its `argv[0]` as given) and
/// this process's environment; returns only on failure. Not
/// `Command::exec`, whose `execvp` hands a file the system will not run
/// (no ELF header or `#!` line, a truncated program) to `/bin/sh`.
fn exec(path: &Path, argv: Vec<OsString>) -> std::io::Error {
    let to_c = |text: &OsStr| CString::new(text.as_bytes()).map_err(std::io::Error::other);
    let words = (|| {
        let program = to_c(path.as_os_str())?;
        let mut words = argv
            .iter()
            .map(|word| to_c(word))
            .collect::<std::io::Result<Vec<_>>>()?;
        if words.is_empty() {
            words.push(program.clone());
        }
        Ok::<_, std::io::Error>((program, words))
    })();
    let (program, words) = match words {
        Ok(words) => words,
        Err(error) => return error,
    };
    let mut pointers: Vec<*const libc::c_char> = words.iter().map(|word| word.as_ptr()).collect();
    pointers.push(std::ptr::null());
    // SAFETY: `program` and every pointer of `pointers` are NUL-terminated
    // strings that outlive the call, and `pointers` ends with a null.
    unsafe { libc::execv(program.as_ptr(), pointers.as_ptr()) };
    std::io::Error::last_os_error()
}
