//! A real HTTP receiver for alert and check-in tests: a TCP server on a free
//! local port that records every request (method, path with query, body).
//! `Receiver::answering()` replies 200 to each; `Receiver::silent()` reads
//! the request and never answers (holds the socket until the test ends).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query, as sent: `/hc/abc/start?rid=…`.
    pub target: String,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    pub fn query(&self, key: &str) -> Option<String> {
        let (_, q) = self.target.split_once('?')?;
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_string())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} {}: body is not JSON ({e}): {}",
                self.method,
                self.target,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

type Log = Arc<(Mutex<Vec<Request>>, Condvar)>;

pub struct Receiver {
    pub port: u16,
    log: Log,
    /// Sockets a silent receiver holds open.
    _held: Arc<Mutex<Vec<TcpStream>>>,
}

impl Receiver {
    pub fn answering() -> Receiver {
        Self::start(true)
    }

    pub fn silent() -> Receiver {
        Self::start(false)
    }

    fn start(answer: bool) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding a receiver port");
        let port = listener.local_addr().expect("receiver address").port();
        let log: Log = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let held = Arc::new(Mutex::new(Vec::new()));
        let (log2, held2) = (log.clone(), held.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (log, held) = (log2.clone(), held2.clone());
                std::thread::spawn(move || serve(stream, answer, &log, &held));
            }
        });
        Receiver {
            port,
            log,
            _held: held,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.log.0.lock().unwrap().clone()
    }

    /// Requests whose path starts with `prefix`.
    pub fn to(&self, prefix: &str) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.path().starts_with(prefix))
            .collect()
    }

    /// Waits until at least `n` requests have arrived (or `limit` passes).
    pub fn wait_for(&self, n: usize, limit: Duration) -> bool {
        let start = Instant::now();
        let (lock, cv) = &*self.log;
        let mut got = lock.lock().unwrap();
        while got.len() < n {
            let left = limit.saturating_sub(start.elapsed());
            if left.is_zero() {
                return false;
            }
            got = cv.wait_timeout(got, left).unwrap().0;
        }
        true
    }
}

fn serve(stream: TcpStream, answer: bool, log: &Log, held: &Arc<Mutex<Vec<TcpStream>>>) {
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() || line.is_empty() {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let (mut length, mut chunked, mut content_type) = (0usize, false, None);
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h == "\r\n" || h.is_empty() {
            break;
        }
        if let Some((name, value)) = h.split_once(':') {
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
            match name.as_str() {
                "content-length" => length = value.parse().unwrap_or(0),
                "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
                "content-type" => content_type = Some(value.to_string()),
                _ => {}
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            if reader.read_line(&mut size).is_err() {
                break;
            }
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            let mut chunk = vec![0; n + 2];
            if n == 0 || reader.read_exact(&mut chunk).is_err() {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else {
        body.resize(length, 0);
        let _ = reader.read_exact(&mut body);
    }
    let (lock, cv) = &**log;
    lock.lock().unwrap().push(Request {
        method,
        target,
        content_type,
        body,
    });
    cv.notify_all();
    let mut stream = stream;
    if answer {
        let _ = stream.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK",
        );
    } else {
        held.lock().unwrap().push(stream);
    }
}
