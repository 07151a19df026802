//! The `quotatrack` command: parse arguments, run one library call per
//! command, format its output, and map the result to an exit code here and
//! nowhere else (0 ok, 1 the command's own check failed, 2 usage or
//! unreadable input).

use std::io::{Read, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use quotatrack::cli::{Args, Command, ParseArgs};
use quotatrack::exchange::RecordedExchange;
use quotatrack::providers::Response;
use quotatrack::wire::ParseOutput;

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("quotatrack: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Parse(parse) => run_parse(parse),
    }
}

fn run_parse(args: ParseArgs) -> anyhow::Result<ExitCode> {
    let input = read_input(&args.file)?;
    let (status, headers, body, recorded_at) = if args.exchange {
        let exchange: RecordedExchange = serde_json::from_slice(&input)
            .with_context(|| format!("{} is not a recorded exchange", args.file.display()))?;
        let response = exchange.response;
        (
            response.status,
            response.header_pairs(),
            response.body_bytes(),
            Some(exchange.recorded_at),
        )
    } else {
        (args.status, args.headers, input, None)
    };
    let response = Response {
        status,
        headers: &headers,
        body: &body,
    };
    let now = args.now.or(recorded_at).unwrap_or_else(jiff::Timestamp::now);
    let result = args.provider.provider().parse(&response, now);
    let output = ParseOutput::new(args.provider, &result);
    let text = if args.json {
        let mut json = serde_json::to_string_pretty(&output)?;
        json.push('\n');
        json
    } else {
        output.to_text()
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(if result.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn read_input(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    let mut body = Vec::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .read_to_end(&mut body)
            .context("cannot read standard input")?;
    } else {
        body = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    }
    Ok(body)
}
