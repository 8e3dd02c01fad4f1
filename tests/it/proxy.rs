//! A TCP proxy between the binary and MariaDB, so tests can cut the database away for real:
//! every connection through it is closed at once, and new ones are refused, until restored. It
//! can also freeze (a host that vanished without closing its connections: the server keeps
//! them) and slow every answer down (a busy database).
//! (The URL carries `prefer_socket=false`, or mysql_async would move a loopback connection onto
//! the server's Unix socket and bypass the proxy.)

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A running proxy to the test server; dropping it stops accepting.
pub struct DbProxy {
    port: u16,
    state: Arc<State>,
}

#[derive(Default)]
struct State {
    refusing: AtomicBool,
    stopped: AtomicBool,
    /// Nothing passes either way, not even a close.
    frozen: AtomicBool,
    /// Each chunk from the server waits this long.
    answer_delay_ms: AtomicU64,
    /// A client's close reaches the server this much later.
    close_delay_ms: AtomicU64,
    open: Mutex<Vec<TcpStream>>,
}

impl DbProxy {
    /// A proxy to the MariaDB server of `server_url` (`mysql://user@host:port`).
    pub fn start(server_url: &str) -> Self {
        let upstream = server_url.trim_start_matches("mysql://");
        let upstream = upstream.rsplit_once('@').map_or(upstream, |(_, host)| host).to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(State::default());
        let accepting = state.clone();
        std::thread::spawn(move || accept(listener, &upstream, &accepting));
        DbProxy { port, state }
    }

    /// `database`'s URL through the proxy, for the binary.
    pub fn url(&self, user: &str, database: &str) -> String {
        format!("mysql://{user}@127.0.0.1:{}/{database}?prefer_socket=false", self.port)
    }

    /// Closes every connection through the proxy and refuses new ones.
    pub fn cut(&self) {
        self.state.refusing.store(true, Ordering::SeqCst);
        for stream in self.state.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Accepts connections again.
    pub fn restore(&self) {
        self.state.refusing.store(false, Ordering::SeqCst);
    }

    /// Stops forwarding anything, closes included, on every connection: to the server its
    /// clients look alive and silent, as when their host lost power. Lasts until the proxy is
    /// dropped (which cuts everything).
    pub fn freeze(&self) {
        self.state.frozen.store(true, Ordering::SeqCst);
    }

    /// Delays every chunk the server sends by `delay`: each statement takes at least that long.
    pub fn delay_answers(&self, delay: Duration) {
        self.state.answer_delay_ms.store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// Passes each client's close on to the server `delay` late: the server keeps a dead
    /// client's session, and its locks, that long (as MariaDB does while it finishes a commit).
    pub fn delay_closes(&self, delay: Duration) {
        self.state.close_delay_ms.store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// Cuts the database away for `outage`, then restores it.
    pub fn blink(&self, outage: Duration) {
        self.cut();
        std::thread::sleep(outage);
        self.restore();
    }
}

impl Drop for DbProxy {
    fn drop(&mut self) {
        self.state.stopped.store(true, Ordering::SeqCst);
        self.cut();
        // Wake the accept loop so it sees the stop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn accept(listener: TcpListener, upstream: &str, state: &Arc<State>) {
    for client in listener.incoming() {
        if state.stopped.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        if state.refusing.load(Ordering::SeqCst) {
            drop(client);
            continue;
        }
        let Ok(server) = TcpStream::connect(upstream) else { continue };
        let _ = (client.set_nodelay(true), server.set_nodelay(true));
        {
            let mut open = state.open.lock().unwrap();
            open.push(client.try_clone().unwrap());
            open.push(server.try_clone().unwrap());
        }
        let (client_read, server_write) = (client.try_clone().unwrap(), server.try_clone().unwrap());
        let (upward, downward) = (state.clone(), state.clone());
        std::thread::spawn(move || pipe(client_read, server_write, &upward, false));
        std::thread::spawn(move || pipe(server, client, &downward, true));
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream, state: &State, answers: bool) {
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let read = from.read(&mut buffer);
        while state.frozen.load(Ordering::SeqCst) && !state.stopped.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(10));
        }
        let delay = state.answer_delay_ms.load(Ordering::SeqCst);
        if answers && delay > 0 {
            std::thread::sleep(Duration::from_millis(delay));
        }
        match read {
            Ok(0) | Err(_) => {
                let delay = state.close_delay_ms.load(Ordering::SeqCst);
                if !answers && delay > 0 && !state.refusing.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(delay));
                }
                break;
            }
            Ok(n) => {
                if to.write_all(&buffer[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}
