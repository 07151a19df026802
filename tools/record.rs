//! `record PROVIDER [--output FILE]`: the same command as `quotatrack
//! record`, as its own binary: one real usage request with your own
//! credentials, written as a redacted recorded-exchange fixture for a bug
//! report. Exit codes: 0 written, 2 no credential, no answer or a refusal.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use quotatrack::cli::RecordArgs;
use quotatrack::clock::SystemClock;
use quotatrack::credentials::Discovery;
use quotatrack::record;
use quotatrack::transport::HttpTransport;

/// Record one provider's usage response, redacted.
#[derive(Parser)]
#[command(name = "record", version)]
struct Args {
    #[command(flatten)]
    record: RecordArgs,
}

fn main() -> ExitCode {
    let args = Args::parse().record;
    let outcome = HttpTransport::origins_from(|name| std::env::var(name).ok())
        .map_err(|error| error.to_string())
        .and_then(|origins| {
            HttpTransport::new(Arc::new(SystemClock), Duration::from_secs(5), origins)
                .map_err(|error| error.to_string())
        })
        .and_then(|transport| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|error| error.to_string())?;
            let discovery = Discovery::from_process_env();
            let recorded = runtime
                .block_on(record::record(
                    args.provider,
                    &discovery,
                    &transport,
                    jiff::Timestamp::now(),
                ))
                .map_err(|error| error.to_string())?;
            let path = recorded
                .save(args.output.as_deref())
                .map_err(|error| format!("cannot write the fixture: {error}"))?;
            Ok((path, recorded.summary))
        });
    match outcome {
        Ok((path, summary)) => {
            eprintln!(
                "wrote {} (secrets redacted: check it before attaching it)",
                path.display()
            );
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("record: {message}");
            ExitCode::from(2)
        }
    }
}
