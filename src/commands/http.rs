//! `quotatrack serve --http ADDR`: the engine as `watch` runs it, with the
//! HTTP server (`crate::http`) on the same runtime; as a follower it serves
//! the owner's snapshot and takes the data dir over when the owner goes.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use super::endpoint::{Bound, access};
use super::serve::{fired, next_request, owner_gone, take_over};
use super::{Sources, runtime, shutdown_signal};
use crate::http::Published;

/// `quotatrack serve --http ADDR`: the engine as `watch` runs it, and the
/// HTTP server (`quotatrack::http`) on the same runtime, until SIGINT or
/// SIGTERM. The bound address is said on stderr once the first cycle has
/// run. On a data dir another engine owns, it serves that engine's
/// snapshot as a follower and takes the data dir over when the owner goes
/// (its control connection closes) or, without one, at an interval. A
/// failed cycle is said on stderr and in `/healthz`; the next interval
/// tries again.
pub(super) fn serve_http(
    sources: &Sources,
    address: std::net::SocketAddr,
    token_file: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let token = access(address, token_file)?;
    let every = sources.settings.interval().unsigned_abs();
    let published = Arc::new(
        Published::follower(&sources.data_dir, sources.clock.clone(), every)
            .with_stale_after(sources.settings.stale_after()),
    );
    runtime()?.block_on(async {
        // Bound now, served from the end of the first round.
        let mut pending = Some(Bound::bind(address, token).await?);
        let (mut engine, mut owner, mut requests) = (None, None, None);
        // The owner's alerts go to the command and the webhook.
        let (mut alerts, mut delivering) = (None, Vec::new());
        let mut server = None;
        let mut timer = tokio::time::interval(every);
        let shutdown = shutdown_signal();
        tokio::pin!(shutdown);
        loop {
            let asked = tokio::select! {
                biased;
                () = &mut shutdown => break,
                Some((request, done)) = next_request(&mut requests) => Some((request.refresh, done)),
                () = owner_gone(&mut owner) => {
                    owner = None;
                    engine = take_over(sources, &mut owner, 200).await?;
                    alerts = None;
                    if engine.is_some() {
                        eprintln!("quotatrack: the engine that owned {} stopped; this one owns it now", sources.data_dir.display());
                    }
                    None
                }
                _ = timer.tick() => None,
            };
            if engine.is_none() && owner.is_none() {
                engine = take_over(sources, &mut owner, 1).await?;
                alerts = None;
            }
            if let Some(engine) = &mut engine {
                let receiver = alerts.get_or_insert_with(|| engine.subscribe_alerts());
                let cycled = match &asked {
                    Some((provider, _)) => engine.force_refresh(*provider).await,
                    None => engine.cycle().await,
                };
                match cycled {
                    Ok(_) => {
                        published.update(engine);
                        fired(receiver, engine, &mut delivering);
                        delivering.retain(|task| !task.is_finished());
                    }
                    Err(error) => {
                        eprintln!("quotatrack: the cycle failed: {error}");
                        published.failed(&error);
                    }
                }
                if requests.is_none() {
                    // Followers ask this owner for its history too (read from its log).
                    requests = super::listen(sources, engine);
                }
            }
            if let Some((_, done)) = asked {
                let _ = done.send(());
            }
            if let Some(bound) = pending.take() {
                server = Some(bound.serve(&published)?);
            }
        }
        if let Some(server) = server {
            server.stop().await;
        }
        if let Some(requests) = requests {
            requests.stop(&sources.data_dir);
        }
        if let Some(engine) = engine {
            engine.close()?;
        }
        Ok(ExitCode::SUCCESS)
    })
}
