//! The `quotatrack` command: parse the arguments, run the command through
//! the library (`quotatrack::commands`), and map the result to an exit code
//! here and nowhere else (0 ok, 1 the command's own check failed, 2 usage
//! or unreadable input, 3 the data dir is owned by another process).

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use quotatrack::cli::{Args, Command, ParseArgs, ReplayArgs, StatusArgs};
use quotatrack::commands::{self, is_broken_pipe, is_owned, one_line};

fn main() -> ExitCode {
    let args = Args::parse();
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
