//! The `/metrics` endpoint: a small HTTP/1.x server, one request per connection, all on one
//! thread. Sockets are non-blocking and multiplexed with `poll`, so a client that speaks slowly
//! or not at all holds a slot, never the thread: each request has one deadline from accept, and
//! when every slot is taken a new connection evicts the oldest one still sending its request.
//! It never touches shard state: the scrape function asks the shards (control messages, each
//! answered by its own thread at its next tick) and the answers are rendered here.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// The whole request head must arrive within this time of accept (not per read).
const READ_DEADLINE: Duration = Duration::from_secs(3);
/// The answer must leave within this time of being ready.
const WRITE_DEADLINE: Duration = Duration::from_secs(5);
/// Longest request head read.
const MAX_HEAD: usize = 8 * 1024;
/// Connections held at once (memory: at most `MAX_HEAD` each while reading). Few enough to stay
/// within the file descriptors the process keeps beside its clients (the runtime's reserve); a
/// scraper still always gets in, as a newcomer evicts the oldest incomplete request.
const MAX_OPEN: usize = 16;
/// Longest wait in `poll` when no deadline is nearer.
const IDLE_WAIT: Duration = Duration::from_secs(1);

/// What a request asked for.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    Metrics,
    Index,
    NotFound,
    MethodNotAllowed,
    BadRequest,
}

/// Reads the request line of an HTTP request head.
pub fn route(head: &str) -> Route {
    let line = head.lines().next().unwrap_or("");
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next()) else {
        return Route::BadRequest;
    };
    if !version.starts_with("HTTP/1.") {
        return Route::BadRequest;
    }
    let path = target.split('?').next().unwrap_or("");
    if method != "GET" && method != "HEAD" {
        return Route::MethodNotAllowed;
    }
    match path {
        "/metrics" => Route::Metrics,
        "/" => Route::Index,
        _ => Route::NotFound,
    }
}

/// Serves until the process ends. `scrape` produces the exposition text.
pub fn serve(listener: TcpListener, scrape: impl Fn() -> String + Send + 'static) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    std::thread::Builder::new().name("metrics".into()).spawn(move || {
        let mut open: Vec<Exchange> = Vec::new();
        loop {
            let ready = wait(&listener, &open);
            let now = Instant::now();
            for (x, &revents) in open.iter_mut().zip(&ready[1..]) {
                if revents != 0 {
                    x.progress(now);
                }
            }
            if ready[0] != 0 {
                accept_all(&listener, &mut open, now);
            }
            answer_complete(&mut open, &scrape);
            open.retain(|x| !x.finished(now));
        }
    })?;
    Ok(())
}

/// One connection: reading its request, then writing the answer.
struct Exchange {
    s: TcpStream,
    deadline: Instant,
    state: Phase,
}

enum Phase {
    Reading(Vec<u8>),
    /// The request head, complete (or all the client sent before its end or `MAX_HEAD`).
    Complete(Vec<u8>),
    Writing {
        out: Vec<u8>,
        sent: usize,
    },
    Done,
}

impl Exchange {
    /// Reads or writes what the socket takes now.
    fn progress(&mut self, now: Instant) {
        match &mut self.state {
            Phase::Reading(head) => self.state = read_some(&mut self.s, std::mem::take(head)),
            Phase::Writing { out, sent } => {
                if write_some(&mut self.s, out, sent) {
                    let _ = self.s.shutdown(Shutdown::Write);
                    self.state = Phase::Done;
                }
            }
            Phase::Complete(_) | Phase::Done => {}
        }
        if now >= self.deadline {
            self.state = Phase::Done;
        }
    }

    fn finished(&self, now: Instant) -> bool {
        matches!(self.state, Phase::Done) || now >= self.deadline
    }

    fn events(&self) -> libc::c_short {
        match self.state {
            Phase::Reading(_) => libc::POLLIN,
            Phase::Writing { .. } => libc::POLLOUT,
            Phase::Complete(_) | Phase::Done => 0,
        }
    }
}

/// Waits for the listener or a connection to be ready, or the nearest deadline; the listener's
/// readiness first, then each connection's, in `open`'s order.
fn wait(listener: &TcpListener, open: &[Exchange]) -> Vec<libc::c_short> {
    let mut fds = Vec::with_capacity(open.len() + 1);
    fds.push(libc::pollfd { fd: listener.as_raw_fd(), events: libc::POLLIN, revents: 0 });
    fds.extend(open.iter().map(|x| libc::pollfd { fd: x.s.as_raw_fd(), events: x.events(), revents: 0 }));
    let now = Instant::now();
    let next = open.iter().map(|x| x.deadline).min().map_or(IDLE_WAIT, |d| d.saturating_duration_since(now));
    // Rounded up, so a deadline is not polled for just before it passes.
    let ms = next.min(IDLE_WAIT).as_millis() as libc::c_int + 1;
    // SAFETY: `fds` is a valid array of `fds.len()` pollfd structures for the whole call.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if n < 0 {
        let e = std::io::Error::last_os_error();
        if e.kind() != ErrorKind::Interrupted {
            log::warn!("Metrics endpoint: poll failed: {e}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    fds.iter().map(|p| p.revents).collect()
}

/// Reads what has arrived of a request head; `Complete` once it ends (or the client stopped).
fn read_some(s: &mut TcpStream, mut head: Vec<u8>) -> Phase {
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Phase::Complete(head),
            Ok(n) => {
                // Only the new bytes and the 3 before them can complete the terminator.
                let from = head.len().saturating_sub(3);
                head.extend_from_slice(&buf[..n]);
                let tail = &head[from..];
                if tail.windows(4).any(|w| w == b"\r\n\r\n") || tail.windows(2).any(|w| w == b"\n\n") {
                    return Phase::Complete(head);
                }
                if head.len() > MAX_HEAD {
                    return Phase::Complete(head);
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Phase::Reading(head),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                log::debug!("Metrics request failed: {e}");
                return Phase::Done;
            }
        }
    }
}

/// Writes what the socket takes of an answer; true once all of it left (or it cannot).
fn write_some(s: &mut TcpStream, out: &[u8], sent: &mut usize) -> bool {
    while *sent < out.len() {
        match s.write(&out[*sent..]) {
            Ok(0) => return true,
            Ok(n) => *sent += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                log::debug!("Metrics answer failed: {e}");
                return true;
            }
        }
    }
    true
}

/// Answers every complete request. Those that ask for the metrics at once share one scrape:
/// a burst of requests costs the shards one report each, not one per request.
fn answer_complete(open: &mut [Exchange], scrape: &dyn Fn() -> String) {
    let mut metrics: Option<String> = None;
    for x in open.iter_mut() {
        let Phase::Complete(head) = &x.state else { continue };
        let head = String::from_utf8_lossy(head);
        let is_head = head.starts_with("HEAD ");
        let (status, kind, body) = match route(&head) {
            Route::Metrics => {
                let text = metrics.get_or_insert_with(scrape);
                ("200 OK", "text/plain; version=0.0.4; charset=utf-8", text.as_str())
            }
            Route::Index => ("200 OK", "text/plain; charset=utf-8", "rustircd: metrics at /metrics\n"),
            Route::NotFound => ("404 Not Found", "text/plain", "not found; try /metrics\n"),
            Route::MethodNotAllowed => ("405 Method Not Allowed", "text/plain", "only GET\n"),
            Route::BadRequest => ("400 Bad Request", "text/plain", "bad request\n"),
        };
        let out = response(status, kind, body, is_head);
        x.state = Phase::Writing { out, sent: 0 };
        // The scrape may have taken a while: the write gets its own time.
        let now = Instant::now();
        x.deadline = now + WRITE_DEADLINE;
        x.progress(now);
    }
}

/// Takes the connections waiting in the listener's queue while there is room (see
/// [`make_room`]); the rest wait there for the next pass.
fn accept_all(listener: &TcpListener, open: &mut Vec<Exchange>, now: Instant) {
    while make_room(open) {
        let s = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                // EMFILE and the like: leave the rest queued until the next pass.
                log::warn!("Metrics endpoint: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(50));
                return;
            }
        };
        if s.set_nonblocking(true).is_err() {
            continue;
        }
        let mut x = Exchange { s, deadline: now + READ_DEADLINE, state: Phase::Reading(Vec::new()) };
        // A scraper's request is usually there already: once read whole, it cannot be evicted.
        x.progress(now);
        open.push(x);
    }
}

/// Below `MAX_OPEN` connections, or once one made room: the oldest one still sending its
/// request (slow clients cannot lock a scraper out), else the oldest being answered. A complete
/// request waiting for its answer is never dropped.
fn make_room(open: &mut Vec<Exchange>) -> bool {
    if open.len() < MAX_OPEN {
        return true;
    }
    let victim = open
        .iter()
        .position(|x| matches!(x.state, Phase::Reading(_) | Phase::Done))
        .or_else(|| open.iter().position(|x| matches!(x.state, Phase::Writing { .. })));
    let Some(i) = victim else { return false };
    log::debug!("Metrics endpoint: {MAX_OPEN} connections open, the oldest one closed");
    open.remove(i);
    true
}

fn response(status: &str, kind: &str, body: &str, head_only: bool) -> Vec<u8> {
    let mut reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        reply.extend_from_slice(body.as_bytes());
    }
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), Route::Metrics);
        assert_eq!(route("GET /metrics?x=1 HTTP/1.0\r\n\r\n"), Route::Metrics);
        assert_eq!(route("HEAD / HTTP/1.1\r\n\r\n"), Route::Index);
        assert_eq!(route("GET /other HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(route("POST /metrics HTTP/1.1\r\n\r\n"), Route::MethodNotAllowed);
        assert_eq!(route("garbage"), Route::BadRequest);
        assert_eq!(route("GET /metrics SPDY/3\r\n\r\n"), Route::BadRequest);
        assert_eq!(route(""), Route::BadRequest);
    }
}
