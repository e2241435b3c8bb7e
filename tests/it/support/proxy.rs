//! A TCP proxy between a job and PostgreSQL that can freeze: while frozen
//! it keeps every connection open and keeps reading, but forwards nothing
//! (not even a close), in either direction, on old and new connections
//! alike. To both ends the peer is alive and silent: a black hole, as a
//! dead NAT entry or a hung load balancer makes one. Plain threads, no
//! external tool.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

#[derive(Default)]
struct State {
    frozen: AtomicBool,
    closed: AtomicBool,
    /// Bytes forwarded so far, both directions.
    forwarded: AtomicUsize,
}

pub struct FreezableProxy {
    pub port: u16,
    state: Arc<State>,
}

impl FreezableProxy {
    /// Listens on a free loopback port and forwards to `127.0.0.1:upstream`.
    pub fn start(upstream: u16) -> FreezableProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let state = Arc::new(State::default());
        let accept_state = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if accept_state.closed.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
                    continue;
                };
                pump(client, server, accept_state.clone());
                pump(s2, c2, accept_state.clone());
            }
        });
        FreezableProxy { port, state }
    }

    /// `postgres://postgres@127.0.0.1:<proxy>/db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    pub fn freeze(&self) {
        self.state.frozen.store(true, Ordering::SeqCst);
    }

    pub fn thaw(&self) {
        self.state.frozen.store(false, Ordering::SeqCst);
    }

    pub fn forwarded(&self) -> usize {
        self.state.forwarded.load(Ordering::SeqCst)
    }
}

impl Drop for FreezableProxy {
    fn drop(&mut self) {
        // Let held bytes and closes through, then stop accepting.
        self.state.closed.store(true, Ordering::SeqCst);
        self.thaw();
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn wait_while_frozen(state: &State) {
    while state.frozen.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, state: Arc<State>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            wait_while_frozen(&state);
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
            state.forwarded.fetch_add(n, Ordering::SeqCst);
        }
        // A close is news too: a black hole does not pass it on.
        wait_while_frozen(&state);
        let _ = to.shutdown(Shutdown::Write);
    });
}
