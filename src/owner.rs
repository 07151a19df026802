//! The owner's socket: how a follower reaches the engine that owns a data
//! dir to ask for a refresh. The Unix socket `DATA_DIR/control.sock`, one
//! JSON line per request and one per answer; a [`Connection`] is a
//! follower's end.
//!
//! ```text
//! follower → owner   {"refresh":"anthropic"}    ({"refresh":null}: every provider)
//! owner → follower   {"done":true}              once the refresh is in the snapshot
//!
//! follower → owner   {"history":{"provider":null,"window":null,"since":"…","until":"…","every_s":3600}}
//! owner → follower   {"series":[…]}             the series its `/v1/history` shows
//!                    {"error":"…"}              an owner that serves no history says why
//! ```
//!
//! A history request is answered by the socket's own task from what the
//! owner gave [`listen_answering`] (a `serve --http` owner's published
//! readings), never through the engine loop, so it never waits for a cycle.
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
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

use crate::history::{Query, Series};
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

/// How an owner answers a history request: the series, or why not.
pub type Historian = Arc<dyn Fn(Query) -> Result<Vec<Series>, String> + Send + Sync>;

/// A history request on the wire: [`Query`] with its times in RFC 3339
/// and its step in seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryRequest {
    /// One provider, or all.
    pub provider: Option<ProviderId>,
    /// One window id, or all.
    pub window: Option<String>,
    /// Readings at or after this time.
    pub since: Option<Timestamp>,
    /// Readings at or before this time.
    pub until: Option<Timestamp>,
    /// The bucket width in seconds; `None` keeps every reading.
    pub every_s: Option<i64>,
}

impl From<&Query> for HistoryRequest {
    fn from(query: &Query) -> Self {
        HistoryRequest {
            provider: query.provider,
            window: query.window.clone(),
            since: query.since,
            until: query.until,
            every_s: query.every.map(|every| every.as_secs()),
        }
    }
}

impl From<HistoryRequest> for Query {
    fn from(request: HistoryRequest) -> Self {
        Query {
            provider: request.provider,
            window: request.window,
            since: request.since,
            until: request.until,
            every: request.every_s.map(SignedDuration::from_secs),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct HistoryLine {
    history: HistoryRequest,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum HistoryAnswer {
    Series(Vec<Series>),
    Error(String),
}

/// The owner's end: binds the socket (0600) and passes on every request.
/// History requests are refused: this owner keeps no series (see
/// [`listen_answering`]). The error names the socket's path, once.
pub fn listen(data_dir: &Path) -> io::Result<mpsc::Receiver<Asked>> {
    listen_answering(data_dir, None)
}

/// [`listen`], with history requests answered by `historian`.
pub fn listen_answering(data_dir: &Path, historian: Option<Historian>) -> io::Result<mpsc::Receiver<Asked>> {
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
    let served = data_dir.display().to_string();
    let historian: Historian = historian.unwrap_or_else(|| {
        Arc::new(move |_| {
            Err(format!(
                "the engine that owns {served} (`watch` or `serve --stdio`) serves no history: run `quotatrack history` once it stops, or run the owner as `serve --http`"
            ))
        })
    });
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream, sender.clone(), Arc::clone(&historian)));
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
async fn serve(stream: UnixStream, owner: mpsc::Sender<Asked>, historian: Historian) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Ok(HistoryLine { history }) = serde_json::from_str::<HistoryLine>(&line) {
            let answer = match historian(history.into()) {
                Ok(series) => HistoryAnswer::Series(series),
                Err(reason) => HistoryAnswer::Error(reason),
            };
            let mut text = serde_json::to_vec(&answer).unwrap_or_default();
            text.push(b'\n');
            if write.write_all(&text).await.is_err() {
                return;
            }
            continue;
        }
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

/// Asks the owner of `data_dir` for the history series `query` selects,
/// on a connection of its own, waiting at most `limit`; the error says
/// why in one line (no owner, no answer in time, the owner's refusal).
pub async fn ask_history(data_dir: &Path, query: &Query, limit: Duration) -> Result<Vec<Series>, String> {
    let path = data_dir.join(SOCKET);
    let ask = async {
        let stream = UnixStream::connect(&path).await.map_err(|error| {
            format!(
                "no engine answers on {} ({error}): start one (`quotatrack serve --http`) or run `quotatrack history`",
                path.display()
            )
        })?;
        let (read, mut write) = stream.into_split();
        let mut text = serde_json::to_vec(&HistoryLine {
            history: HistoryRequest::from(query),
        })
        .map_err(|error| error.to_string())?;
        text.push(b'\n');
        let lost = |error: io::Error| format!("the engine that owns {} hung up: {error}", data_dir.display());
        write.write_all(&text).await.map_err(lost)?;
        let line = BufReader::new(read)
            .lines()
            .next_line()
            .await
            .map_err(lost)?
            .ok_or_else(|| lost(io::ErrorKind::UnexpectedEof.into()))?;
        match serde_json::from_str::<HistoryAnswer>(&line) {
            Ok(HistoryAnswer::Series(series)) => Ok(series),
            Ok(HistoryAnswer::Error(reason)) => Err(reason),
            Err(_) => Err(format!(
                "the engine that owns {} does not answer history requests (an older version?): restart it",
                data_dir.display()
            )),
        }
    };
    tokio::time::timeout(limit, ask).await.unwrap_or_else(|_| {
        Err(format!(
            "the engine that owns {} did not answer within {} s: try again",
            data_dir.display(),
            limit.as_secs_f64()
        ))
    })
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
