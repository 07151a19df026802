//! A real HTTP/1.1 server on 127.0.0.1 (or another loopback address, for
//! an origin on another host) for the live transport: it answers with a
//! script of recorded responses, redirects and faults, in order (the last
//! one repeats), counts requests and keeps the head and body of every
//! request it receives, so a test can show what reached each origin.
//! It runs on its own thread and runtime, so real processes can use it too.

use std::sync::{Arc, Mutex};

use quotatrack::exchange::RecordedExchange;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A response: status, headers, body bytes.
    Http {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// A redirect to this same server under another name (`localhost`
    /// for 127.0.0.1): the same socket, another origin.
    RedirectToSelf {
        status: u16,
        host: String,
        /// The path and query.
        target: String,
    },
    /// Read the request, then never answer (the connection stays open).
    Hang,
    /// Promise a body, send half of it, close the connection.
    CloseMidBody,
}

impl Reply {
    /// The response of a recorded exchange.
    pub fn exchange(exchange: &RecordedExchange) -> Reply {
        Reply::Http {
            status: exchange.response.status,
            headers: exchange.response.header_pairs(),
            body: exchange.response.body_bytes(),
        }
    }

    /// A JSON response.
    pub fn json(status: u16, body: &str) -> Reply {
        Reply::Http {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    /// A redirect (`status` 301, 302, 303, 307 or 308) to `location`.
    pub fn redirect(status: u16, location: &str) -> Reply {
        Reply::Http {
            status,
            headers: vec![("location".into(), location.to_owned())],
            body: Vec::new(),
        }
    }

    /// The same reply with one more header.
    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        if let Reply::Http { headers, .. } = &mut self {
            headers.push((name.to_owned(), value.to_owned()));
        }
        self
    }
}

/// A request as the server received it.
#[derive(Debug, Clone)]
pub struct Received {
    /// `GET /api/oauth/usage HTTP/1.1` and the header lines, as sent.
    pub head: String,
    pub body: Vec<u8>,
}

impl Received {
    /// The request target, `/api/oauth/usage?x=1`.
    pub fn target(&self) -> &str {
        self.head.split_whitespace().nth(1).unwrap_or("")
    }

    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim().to_owned())
        })
    }
}

/// The server; requests are answered until the test process ends.
/// Status page requests (`/api/v2/status.json`, `/appsstatus/…`) have their
/// own script and log, so usage counts stay exact.
pub struct Server {
    pub origin: String,
    received: Arc<Mutex<Vec<Received>>>,
    status_received: Arc<Mutex<Vec<Received>>>,
}

/// Whether a request head asks for a status page.
fn is_status_page(head: &str) -> bool {
    let path = head.split_whitespace().nth(1).unwrap_or("");
    path.starts_with("/api/v2/status.json") || path.starts_with("/appsstatus/")
}

impl Server {
    /// Starts a server answering usage requests with `script` and status
    /// pages with 404.
    pub fn start(script: Vec<Reply>) -> Server {
        Server::with_status_pages(script, vec![Reply::json(404, r#"{"error":"not found"}"#)])
    }

    /// Starts a server answering usage requests with `script` and status
    /// page requests with `status`.
    pub fn with_status_pages(script: Vec<Reply>, status: Vec<Reply>) -> Server {
        Server::at("127.0.0.1", script, status)
    }

    /// Starts a server on loopback address `host` (e.g. `127.0.0.2`, another
    /// host than the usual 127.0.0.1) answering usage requests with
    /// `script` and status pages with `status`.
    pub fn at(host: &str, script: Vec<Reply>, status: Vec<Reply>) -> Server {
        assert!(
            !script.is_empty() && !status.is_empty(),
            "a server needs at least one reply"
        );
        let std_listener = std::net::TcpListener::bind((host, 0)).unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let address = std_listener.local_addr().unwrap();
        let origin = format!("http://{address}");
        let received = Arc::new(Mutex::new(Vec::new()));
        let status_received = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&received);
        let status_log = Arc::clone(&status_received);
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = TcpListener::from_std(std_listener).unwrap();
                loop {
                    let Ok((mut stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let log = Arc::clone(&log);
                    let status_log = Arc::clone(&status_log);
                    let script = script.clone();
                    let status = status.clone();
                    tokio::spawn(async move {
                        let Some(request) = read_request(&mut stream).await else {
                            return;
                        };
                        if is_status_page(&request.head) {
                            serve(stream, request, &status_log, &status, address.port()).await
                        } else {
                            serve(stream, request, &log, &script, address.port()).await
                        }
                    });
                }
            });
        });
        Server {
            origin,
            received,
            status_received,
        }
    }

    /// How many status page requests arrived.
    pub fn status_requests(&self) -> usize {
        self.status_received.lock().unwrap().len()
    }

    /// How many usage requests arrived.
    pub fn requests(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    /// Every usage request so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Every request this origin received, usage and status pages alike.
    pub fn every_request(&self) -> Vec<Received> {
        let mut all = self.received();
        all.extend(self.status_received.lock().unwrap().iter().cloned());
        all
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.origin.rsplit(':').next().unwrap().parse().unwrap()
    }
}

async fn serve(mut stream: TcpStream, request: Received, log: &Mutex<Vec<Received>>, script: &[Reply], port: u16) {
    let index = {
        let mut log = log.lock().unwrap();
        log.push(request);
        (log.len() - 1).min(script.len() - 1)
    };
    let reply = match &script[index] {
        Reply::RedirectToSelf { status, host, target } => {
            Reply::redirect(*status, &format!("http://{host}:{port}{target}"))
        }
        reply => reply.clone(),
    };
    match &reply {
        Reply::Http { status, headers, body } => {
            let mut head = format!(
                "HTTP/1.1 {status} Scripted\r\ncontent-length: {}\r\nconnection: close\r\n",
                body.len()
            );
            for (name, value) in headers {
                if !name.eq_ignore_ascii_case("content-length") && !name.eq_ignore_ascii_case("content-encoding") {
                    head.push_str(&format!("{name}: {value}\r\n"));
                }
            }
            head.push_str("\r\n");
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(body).await;
            let _ = stream.shutdown().await;
        }
        Reply::Hang | Reply::RedirectToSelf { .. } => {
            std::future::pending::<()>().await;
        }
        Reply::CloseMidBody => {
            let body = br#"{"five_hour":{"utilization":40"#;
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                body.len() * 2
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(body).await;
            let _ = stream.flush().await;
            drop(stream);
        }
    }
}

async fn read_request(stream: &mut TcpStream) -> Option<Received> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = buffer[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Received { head, body })
}

/// An origin on 127.0.0.1 where nothing listens (connection refused).
pub fn closed_origin() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    origin
}
