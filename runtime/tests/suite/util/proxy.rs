//! A TCP proxy between weir and an emulator, for faults the emulators do not make: every open
//! connection cut at once ([`Proxy::cut`]), or frozen (kept open, nothing more reaching weir:
//! a half-open connection, [`Proxy::freeze`]; when weir gives up and closes it, the emulator's
//! side is closed too). Connections made afterwards work.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// A proxy listening on a free local port.
pub struct Proxy {
    /// `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL_KINESIS`.
    pub endpoint: String,
    faults: Arc<Faults>,
}

/// Connections are numbered as they come; a fault applies to those up to a number.
#[derive(Default)]
struct Faults {
    opened: AtomicU64,
    cut_through: AtomicU64,
    frozen_through: AtomicU64,
}

impl Proxy {
    /// A proxy to `upstream` (`http://HOST:PORT`).
    pub fn to(upstream: &str) -> Proxy {
        let upstream = upstream.trim_start_matches("http://").trim_end_matches('/').to_string();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let faults = Arc::new(Faults::default());
        let shared = faults.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(&upstream) else { continue };
                let number = shared.opened.fetch_add(1, Ordering::SeqCst) + 1;
                let closed = Arc::new(AtomicBool::new(false));
                for (from, to, down) in [(&client, &server, false), (&server, &client, true)] {
                    let (from, to) = (from.try_clone().unwrap(), to.try_clone().unwrap());
                    let (faults, closed) = (shared.clone(), closed.clone());
                    std::thread::spawn(move || pump(from, to, Link { number, down, closed }, &faults));
                }
            }
        });
        Proxy { endpoint, faults }
    }

    /// Close every connection open now, both ways.
    pub fn cut(&self) {
        self.faults.cut_through.store(self.faults.opened.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    /// Stop forwarding on every connection open now, leaving them open.
    pub fn freeze(&self) {
        self.faults.frozen_through.store(self.faults.opened.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    /// Connections made through the proxy so far.
    pub fn connections(&self) -> u64 {
        self.faults.opened.load(Ordering::SeqCst)
    }
}

/// One direction of one connection.
struct Link {
    /// The connection's number.
    number: u64,
    /// From the emulator to weir (what a freeze holds back).
    down: bool,
    /// Set when either direction ends: the other ends too.
    closed: Arc<AtomicBool>,
}

/// Copy `from` to `to` until either side closes or the connection is cut; hold the bytes
/// towards weir while it is frozen.
fn pump(mut from: TcpStream, mut to: TcpStream, link: Link, faults: &Faults) {
    from.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let end = |from: &TcpStream, to: &TcpStream| {
        link.closed.store(true, Ordering::SeqCst);
        let _ = from.shutdown(Shutdown::Both);
        let _ = to.shutdown(Shutdown::Both);
    };
    loop {
        if link.closed.load(Ordering::SeqCst) || faults.cut_through.load(Ordering::SeqCst) >= link.number {
            return end(&from, &to);
        }
        if link.down && faults.frozen_through.load(Ordering::SeqCst) >= link.number {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        match from.read(&mut buf) {
            Ok(0) => return end(&from, &to),
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    return end(&from, &to);
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return end(&from, &to),
        }
    }
}
