//! The `quotatrack` command: parse the arguments, run the command through
//! the library (`quotatrack::commands`), and map the result to an exit code
//! here and nowhere else (0 ok, 1 the command's own check failed, 2 usage
//! or unreadable input, 3 the data dir is owned by another process).

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use quotatrack::cli::{Args, Command, ParseArgs, ReplayArgs, StatusArgs};
use quotatrack::commands::{self, is_broken_pipe, is_owned, one_line};

fn main() -> ExitCode {
    let args = parse_args();
    let json = matches!(
        &args.command,
        Command::Status(StatusArgs { json: true, .. })
            | Command::Parse(ParseArgs { json: true, .. })
            | Command::Replay(ReplayArgs { json: true, .. })
            | Command::History(quotatrack::cli::HistoryArgs { json: true, .. })
    );
    match commands::run(args) {
        Ok(code) => code,
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
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
    }
}

/// The arguments, as `Args::parse` reads them (a usage error or `--help`
/// exits here). The parser's command tree, every subcommand's arguments,
/// is left for the process's exit to free: dropping it costs about a
/// twentieth of `status`'s whole run.
fn parse_args() -> Args {
    let mut command = Args::command();
    let matches = command.get_matches_mut();
    let args = Args::from_arg_matches(&matches).unwrap_or_else(|error| error.format(&mut command).exit());
    std::mem::forget(command);
    args
}
