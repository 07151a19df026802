//! `replay FILE [--at TIME] [--timeline] [--why PROVIDER --at TIME] [--reparse] [--json]`: the same command as
//! `quotatrack replay`, as its own binary for incident work. Exit codes: 0
//! identical, 1 diverged (or a reading reparses differently), 2 unreadable input.

use std::io::BufReader;
use std::process::ExitCode;

use clap::Parser;
use quotatrack::cli::ReplayArgs;
use quotatrack::replay;

/// Re-drive a recorded log through the current machines and parsers.
#[derive(Parser)]
#[command(name = "replay", version)]
struct Args {
    #[command(flatten)]
    replay: ReplayArgs,
}

fn main() -> ExitCode {
    let args = Args::parse().replay;
    let input: Box<dyn std::io::BufRead> = if args.file.as_os_str() == "-" {
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        match std::fs::File::open(&args.file) {
            Ok(file) => Box::new(BufReader::new(file)),
            Err(error) => {
                eprintln!("replay: cannot read {}: {error}", args.file.display());
                return ExitCode::from(2);
            }
        }
    };
    let request = replay::Request::from(&args);
    match replay::command(input, &request) {
        Ok(rendered) => {
            println!("{}", rendered.text);
            ExitCode::from(if rendered.identical { 0 } else { 1 })
        }
        Err(error) => {
            eprintln!("replay: {}: {error}", args.file.display());
            ExitCode::from(2)
        }
    }
}
