//! A line-logging TCP relay put between two servers (as the ts6-lab's `relay.py`): every
//! connection accepted on `addr` is joined to `target`, and every line either way is recorded
//! with the name of its sender. The interop tests read the server-to-server lines from it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// See the module.
pub struct Relay {
    pub addr: SocketAddr,
    lines: Arc<Mutex<Vec<(&'static str, String)>>>,
    stop: Arc<AtomicBool>,
    socks: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    /// `dialer`/`target_name`: who connects to the relay and who is behind `target` (the names
    /// the lines are recorded under).
    pub fn start(target: SocketAddr, dialer: &'static str, target_name: &'static str) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let r = Relay {
            addr: listener.local_addr().unwrap(),
            lines: Default::default(),
            stop: Default::default(),
            socks: Default::default(),
        };
        let (lines, stop, socks) = (r.lines.clone(), r.stop.clone(), r.socks.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let a = match listener.accept() {
                    Ok((a, _)) => a,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                    Err(_) => break,
                };
                a.set_nonblocking(false).unwrap();
                // Nothing behind (hybrid down): the dialer sees its connection closed.
                let Ok(b) = TcpStream::connect(target) else { continue };
                {
                    let mut s = socks.lock().unwrap();
                    s.push(a.try_clone().unwrap());
                    s.push(b.try_clone().unwrap());
                }
                let pump = |from: TcpStream, to: TcpStream, who: &'static str| {
                    let lines = lines.clone();
                    std::thread::spawn(move || relay_pump(from, to, who, lines))
                };
                pump(a.try_clone().unwrap(), b.try_clone().unwrap(), dialer);
                pump(b, a, target_name);
            }
        });
        r
    }

    /// Every line so far, as `(sender, line)`.
    pub fn lines(&self) -> Vec<(&'static str, String)> {
        self.lines.lock().unwrap().clone()
    }

    /// The lines `who` sent so far.
    pub fn sent_by(&self, who: &str) -> Vec<String> {
        self.lines().into_iter().filter(|(w, _)| *w == who).map(|(_, l)| l).collect()
    }

    /// Everything, one line each, for failure messages.
    pub fn transcript(&self) -> String {
        self.lines().iter().map(|(w, l)| format!("{w:>8}: {l}\n")).collect()
    }

    /// Waits (bounded) until `who` has sent a line containing every one of `needles`; returns it.
    pub fn wait_line(&self, who: &str, needles: &[&str], within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(l) = self.sent_by(who).into_iter().find(|l| needles.iter().all(|n| l.contains(n))) {
                return l;
            }
            assert!(
                Instant::now() < deadline,
                "{who} sent no line with {needles:?} within {within:?}:\n{}",
                self.transcript()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn relay_pump(
    mut from: TcpStream,
    mut to: TcpStream,
    who: &'static str,
    lines: Arc<Mutex<Vec<(&'static str, String)>>>,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    while let Ok(n) = from.read(&mut chunk) {
        if n == 0 || to.write_all(&chunk[..n]).is_err() {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        while let Some(i) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=i).collect();
            let line = String::from_utf8_lossy(&line).trim_end_matches(['\r', '\n']).to_string();
            lines.lock().unwrap().push((who, line));
        }
    }
    // One side closed (or died): close the other, so it sees the link go.
    let _ = to.shutdown(std::net::Shutdown::Both);
    let _ = from.shutdown(std::net::Shutdown::Both);
}

impl Drop for Relay {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("=== server-to-server lines ===\n{}", self.transcript());
        }
        self.stop.store(true, Ordering::Relaxed);
        for s in self.socks.lock().unwrap().iter() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}
