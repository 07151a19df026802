//! `quotatrack-engine`: every command of `quotatrack` (the program users
//! run starts this one for all but `status` from the snapshot; see
//! `src/bin/quotatrack.rs`). Parses the arguments, runs the command through
//! the library (`quotatrack::commands`), and maps the result to an exit
//! code (0 ok, 1 the command's own check failed, 2 usage or unreadable
//! input, 3 the data dir is owned by another process).

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use quotatrack::cli::{Args, Command, ParseArgs, ReplayArgs, StatusArgs};
use quotatrack::commands::{self, FRONT_VERSION};

fn main() -> ExitCode {
    if let Some(value) = std::env::var_os(FRONT_VERSION) {
        // Read; not passed on: a process this engine starts (an alert's
        // command) that runs `quotatrack` starts a front of its own.
        // SAFETY: no other thread runs yet.
        unsafe { std::env::remove_var(FRONT_VERSION) };
        // Set by the front this process was a moment ago (a value set by
        // anyone else is no front's word, and is ignored).
        if let Some(front) = commands::front_version_here(&value) {
            // A front of another version: the two must be one install, or
            // a command would run code the user did not install.
            if front != env!("CARGO_PKG_VERSION") {
                let _ = writeln!(
                    std::io::stderr().lock(),
                    "quotatrack: this quotatrack ({front}) and the quotatrack-engine beside it ({}) come from \
                     different installs; install both again with `cargo install --locked --path .`",
                    env!("CARGO_PKG_VERSION")
                );
                return ExitCode::from(2);
            }
            // Started as `quotatrack`: named so again, so that `killall
            // quotatrack`, `pgrep -x quotatrack` and `ps -C quotatrack` find
            // a `watch` or a `serve` (the name would be `quotatrack-engi`).
            // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most
            // 16 bytes, which this is; it changes only the thread's name.
            unsafe { libc::prctl(libc::PR_SET_NAME, c"quotatrack".as_ptr()) };
        }
    }
    let args = parse_args();
    let json = matches!(
        &args.command,
        Command::Status(StatusArgs { json: true, .. })
            | Command::Parse(ParseArgs { json: true, .. })
            | Command::Replay(ReplayArgs { json: true, .. })
            | Command::History(quotatrack::cli::HistoryArgs { json: true, .. })
    );
    commands::exit_code(commands::run(args), json)
}

/// The arguments, as `Args::parse` reads them (a usage error or `--help`
/// exits here). The parser's command tree, every subcommand's arguments,
/// is left for the process's exit to free: dropping it costs about a
/// twentieth of a short command's run.
fn parse_args() -> Args {
    let mut command = Args::command();
    let matches = command.get_matches_mut();
    let args = Args::from_arg_matches(&matches).unwrap_or_else(|error| error.format(&mut command).exit());
    std::mem::forget(command);
    args
}
