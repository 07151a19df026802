//! The HTTP endpoint of `serve --http` (alone or beside `--stdio`): the
//! token read and the address checked before anything else, the listener
//! bound, the server started on the runtime and stopped with the command.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use crate::http::{self, Published};

/// The token a `--http` address needs, read and checked against the
/// address before anything else happens (a non-loopback address without
/// one stops the command).
pub(super) fn access(address: SocketAddr, token_file: Option<&Path>) -> anyhow::Result<Option<http::Token>> {
    let token = token_file.map(http::Token::read).transpose()?;
    http::check_address(address, token.as_ref())?;
    Ok(token)
}

/// A bound listener, not serving yet.
pub(super) struct Bound {
    listener: tokio::net::TcpListener,
    options: http::Options,
}

/// The server, running on the runtime until [`Serving::stop`].
pub(super) struct Serving {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Bound {
    /// Binds `address` (the token as [`access`] checked it).
    pub(super) async fn bind(address: SocketAddr, token: Option<http::Token>) -> anyhow::Result<Bound> {
        let listener = http::bind(address, token.as_ref()).await?;
        let options = http::Options {
            token,
            ..http::Options::default()
        };
        Ok(Bound { listener, options })
    }

    /// Starts serving `published`, and says where on stderr.
    pub(super) fn serve(self, published: &Arc<Published>) -> anyhow::Result<Serving> {
        let bound = self.listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let stopped = async { drop(stopped.await) };
        let task = tokio::spawn(http::serve(self.listener, Arc::clone(published), self.options, stopped));
        eprintln!("quotatrack: serving http on http://{bound}");
        Ok(Serving { stop, task })
    }
}

impl Serving {
    /// Stops the server and waits for its connections to drain (bounded by
    /// the server's own drain time).
    pub(super) async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}
