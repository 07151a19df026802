//! The owner's socket: how a follower reaches the engine that owns a data
//! dir to ask for a refresh. The Unix socket `DATA_DIR/control.sock`, one
//! JSON line per request and one per answer; a [`Connection`] is a
//! follower's end.
//!
//! ```text
//! follower → owner   {"refresh":"anthropic"}    ({"refresh":null}: every provider)
//! owner → follower   {"done":true}              once the refresh is in the snapshot
//! ```
//!
//! The owner binds the socket once it holds the log; a socket left by an
//! owner that died is removed first (holding the log proves nobody else
//! serves it). Anything else at that path (a file, a directory, a link) is
//! the user's: it is reported with its path and never removed. The owner runs a forwarded refresh as a forced refresh of
//! the engine, so the minimum interval, backoff and rate limits hold for
//! every process together. A follower keeps its connection open: when the
//! owner dies its end closes at once, and the follower tries to take the
//! data dir over.

use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

use crate::providers::ProviderId;

/// The socket's name in the data dir.
pub const SOCKET: &str = "control.sock";

/// A follower's request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Refresh this provider (`None`: every provider).
    pub refresh: Option<ProviderId>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Answer {
    done: bool,
}

/// A request as the owner receives it, with the way to say it is done.
pub type Asked = (Request, oneshot::Sender<()>);

/// The owner's end: binds the socket (0600) and passes on every request.
/// The error names the socket's path, once.
pub fn listen(data_dir: &Path) -> io::Result<mpsc::Receiver<Asked>> {
    let path = data_dir.join(SOCKET);
    let at_path = |error: io::Error| io::Error::new(error.kind(), format!("{}: {error}", path.display()));
    match std::fs::symlink_metadata(&path) {
        Ok(found) if found.file_type().is_socket() => std::fs::remove_file(&path).map_err(at_path)?,
        Ok(found) => {
            let what = if found.is_dir() {
                "a directory"
            } else if found.file_type().is_symlink() {
                "a symbolic link"
            } else {
                "a file that is not a socket"
            };
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} is {what}, in the way of the control socket: move it away",
                    path.display()
                ),
            ));
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(at_path(error)),
    }
    let listener = UnixListener::bind(&path).map_err(at_path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(at_path)?;
    let (sender, receiver) = mpsc::channel(16);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream, sender.clone()));
        }
    });
    Ok(receiver)
}

/// Removes the socket `listen` bound, and only a socket: whatever else is
/// at its path now is not ours.
pub fn unlisten(data_dir: &Path) {
    let path = data_dir.join(SOCKET);
    if std::fs::symlink_metadata(&path).is_ok_and(|found| found.file_type().is_socket()) {
        let _ = std::fs::remove_file(&path);
    }
}

/// Answers one follower's requests, in order, until it hangs up.
async fn serve(stream: UnixStream, owner: mpsc::Sender<Asked>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let Ok(request) = serde_json::from_str::<Request>(&line) else {
            continue;
        };
        let (done, answered) = oneshot::channel();
        if owner.send((request, done)).await.is_err() {
            return;
        }
        let answer = Answer {
            done: answered.await.is_ok(),
        };
        let mut text = serde_json::to_vec(&answer).expect("answers serialize");
        text.push(b'\n');
        if write.write_all(&text).await.is_err() {
            return;
        }
    }
}

/// The follower's end: a connection to the owner.
pub struct Connection {
    lines: Lines<BufReader<OwnedReadHalf>>,
    write: OwnedWriteHalf,
}

impl Connection {
    /// Connects to the owner of `data_dir`.
    pub async fn connect(data_dir: &Path) -> io::Result<Connection> {
        let stream = UnixStream::connect(data_dir.join(SOCKET)).await?;
        let (read, write) = stream.into_split();
        Ok(Connection {
            lines: BufReader::new(read).lines(),
            write,
        })
    }

    /// Asks the owner to refresh `provider` and waits until it has.
    pub async fn refresh(&mut self, provider: Option<ProviderId>) -> io::Result<()> {
        let mut text = serde_json::to_vec(&Request { refresh: provider }).expect("requests serialize");
        text.push(b'\n');
        self.write.write_all(&text).await?;
        match self.lines.next_line().await? {
            Some(_) => Ok(()),
            None => Err(io::ErrorKind::UnexpectedEof.into()),
        }
    }

    /// Completes when the owner's end closes (the owner exited or died).
    pub async fn gone(&mut self) {
        while let Ok(Some(_)) = self.lines.next_line().await {}
    }
}
