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
//! owner → follower   {"series":[…]}             the series, read from the owner's own log
//!                    {"error":"…"}              why not (stopping, too slow, an unreadable log)
//! ```
//!
//! A history request is answered by the socket's own task, never through
//! the engine loop, so it never waits for a cycle and never holds one up:
//! the owner's open log is read (through a [`LogReader`]) on a blocking
//! thread, one request at a time, and a request not answered within
//! [`ANSWER_WITHIN`] gets an error instead. Every owner answers: `watch`,
//! `serve --stdio` and `serve --http`. The socket's tasks hold the reader
//! weakly: the strong handle is the owner's [`Listening`], dropped before
//! the engine closes its log.
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
use std::sync::{Arc, Weak};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::history::{Query, Series};
use crate::log::{Log, LogReader};
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

/// The longest an owner takes to answer a history request (waiting for
/// the one before it included); after that it answers with an error.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// The owner's end of the socket, bound: the requests that need the
/// engine, and the handle on the log its history answers are read from.
pub struct Listening {
    asked: mpsc::Receiver<Asked>,
    /// The strong handle; the socket's tasks hold it weakly, so the log is
    /// released when this is dropped (a read under way finishes first).
    _log: Option<Arc<LogReader>>,
}

impl Listening {
    /// The next request that needs the engine (a refresh).
    pub async fn next(&mut self) -> Option<Asked> {
        self.asked.recv().await
    }

    /// Removes the socket and lets go of the log: history requests from
    /// now on are refused. Call it before the engine closes its log.
    pub fn stop(self, data_dir: &Path) {
        unlisten(data_dir);
    }
}

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

/// The owner's end: binds the socket (0600) and passes on every request
/// that needs the engine; history requests are answered from `log` (the
/// owner's open log) on a blocking thread. The error names the socket's
/// path, once.
pub fn listen(data_dir: &Path, log: Option<&Log>) -> io::Result<Listening> {
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
    let (sender, asked) = mpsc::channel(16);
    let log = log.map(|log| Arc::new(log.reader()));
    let historian = Historian {
        log: log.as_ref().map_or_else(Weak::new, Arc::downgrade),
        data_dir: data_dir.to_owned(),
        one_at_a_time: Arc::new(Semaphore::new(1)),
    };
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream, sender.clone(), historian.clone()));
        }
    });
    Ok(Listening { asked, _log: log })
}

/// How the socket's tasks answer history requests.
#[derive(Clone)]
struct Historian {
    log: Weak<LogReader>,
    data_dir: std::path::PathBuf,
    one_at_a_time: Arc<Semaphore>,
}

impl Historian {
    /// The series `query` selects from the owner's log, read on a blocking
    /// thread, or why not; at most [`ANSWER_WITHIN`].
    async fn answer(&self, query: Query) -> HistoryAnswer {
        let dir = self.data_dir.display();
        let read = async {
            let _turn = self.one_at_a_time.acquire().await.ok();
            let log = self.log.clone();
            let read = tokio::task::spawn_blocking(move || {
                let log = log.upgrade()?;
                Some(crate::history::read_log(&log, query).map_err(|error| error.to_string()))
            });
            match read.await {
                Ok(Some(Ok(read))) => HistoryAnswer::Series(read.series),
                Ok(Some(Err(error))) => {
                    HistoryAnswer::Error(format!("the engine that owns {dir} cannot read its log: {error}"))
                }
                Ok(None) => HistoryAnswer::Error(format!("the engine that owns {dir} is stopping: try again")),
                Err(_) => HistoryAnswer::Error(format!("the engine that owns {dir} failed reading its log: try again")),
            }
        };
        tokio::time::timeout(ANSWER_WITHIN, read).await.unwrap_or_else(|_| {
            HistoryAnswer::Error(format!(
                "the engine that owns {dir} did not read its history within {} s: ask for a shorter span (--since) or try again",
                ANSWER_WITHIN.as_secs()
            ))
        })
    }
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
            let answer = historian.answer(history.into()).await;
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
        let mut text = serde_json::to_vec(&answer).unwrap_or_default();
        text.push(b'\n');
        if write.write_all(&text).await.is_err() {
            return;
        }
    }
}

/// Why the owner did not give its history.
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    /// Nothing answers on the socket (no owner, one that does not listen,
    /// or one before its first cycle).
    #[error("no engine answers on {} ({error}): start one (`quotatrack serve --http`) or run `quotatrack history`", path.display())]
    Unreachable {
        /// The socket.
        path: std::path::PathBuf,
        /// Why connecting failed.
        error: io::Error,
    },
    /// The owner closed the connection before answering.
    #[error("the engine that owns {} hung up: {error}", dir.display())]
    HungUp {
        /// The data dir.
        dir: std::path::PathBuf,
        /// What failed.
        error: io::Error,
    },
    /// No answer in time.
    #[error("the engine that owns {} did not answer within {} s: try again", dir.display(), limit.as_secs_f64())]
    Late {
        /// The data dir.
        dir: std::path::PathBuf,
        /// How long the asker waited.
        limit: Duration,
    },
    /// The owner answered with why not.
    #[error("{0}")]
    Refused(String),
    /// The answer is not one this version reads.
    #[error("the engine that owns {} does not answer history requests (an older version?): restart it", dir.display())]
    Unknown {
        /// The data dir.
        dir: std::path::PathBuf,
    },
}

/// Asks the owner of `data_dir` for the history series `query` selects,
/// on a connection of its own, waiting at most `limit`; the error says
/// why in one line (no owner, no answer in time, the owner's refusal).
pub async fn ask_history(data_dir: &Path, query: &Query, limit: Duration) -> Result<Vec<Series>, String> {
    ask_history_typed(data_dir, query, limit)
        .await
        .map_err(|error| error.to_string())
}

/// [`ask_history`], with the reason typed.
pub async fn ask_history_typed(data_dir: &Path, query: &Query, limit: Duration) -> Result<Vec<Series>, AskError> {
    let path = data_dir.join(SOCKET);
    let ask = async {
        let stream = UnixStream::connect(&path)
            .await
            .map_err(|error| AskError::Unreachable {
                path: path.clone(),
                error,
            })?;
        let (read, mut write) = stream.into_split();
        let mut text = serde_json::to_vec(&HistoryLine {
            history: HistoryRequest::from(query),
        })
        .map_err(|error| AskError::Refused(error.to_string()))?;
        text.push(b'\n');
        let lost = |error: io::Error| AskError::HungUp {
            dir: data_dir.to_owned(),
            error,
        };
        write.write_all(&text).await.map_err(lost)?;
        let line = BufReader::new(read)
            .lines()
            .next_line()
            .await
            .map_err(lost)?
            .ok_or_else(|| lost(io::ErrorKind::UnexpectedEof.into()))?;
        match serde_json::from_str::<HistoryAnswer>(&line) {
            Ok(HistoryAnswer::Series(series)) => Ok(series),
            Ok(HistoryAnswer::Error(reason)) => Err(AskError::Refused(reason)),
            Err(_) => Err(AskError::Unknown {
                dir: data_dir.to_owned(),
            }),
        }
    };
    tokio::time::timeout(limit, ask).await.unwrap_or_else(|_| {
        Err(AskError::Late {
            dir: data_dir.to_owned(),
            limit,
        })
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
