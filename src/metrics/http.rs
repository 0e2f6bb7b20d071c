//! The `/metrics` endpoint: a small HTTP/1.x server, one request per connection, each on a
//! short-lived thread (at most `MAX_ACTIVE` at once, so a client that connects and never
//! speaks cannot hold up the scrapes). It never touches shard state: the scrape function asks
//! the shards (control messages, each answered by its own thread at its next tick) and the
//! answers are rendered here.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A request may take this long to arrive, and the answer this long to leave.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest request head read.
const MAX_HEAD: usize = 8 * 1024;
/// Requests served at once; beyond, a request gets 503 at once.
const MAX_ACTIVE: usize = 4;

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
pub fn serve(listener: TcpListener, scrape: impl Fn() -> String + Send + Sync + 'static) -> std::io::Result<()> {
    let scrape = Arc::new(scrape);
    let active = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new().name("metrics".into()).spawn(move || {
        for stream in listener.incoming() {
            match stream {
                Ok(mut s) => {
                    if active.fetch_add(1, Ordering::AcqRel) >= MAX_ACTIVE {
                        active.fetch_sub(1, Ordering::AcqRel);
                        let _ = s.set_write_timeout(Some(Duration::from_millis(100)));
                        let _ = s.write_all(&response("503 Service Unavailable", "text/plain", "busy\n", false));
                        continue;
                    }
                    let (scrape, done) = (scrape.clone(), active.clone());
                    let spawned = std::thread::Builder::new().name("metrics-req".into()).spawn(move || {
                        if let Err(e) = answer(s, &*scrape) {
                            log::debug!("Metrics request failed: {e}");
                        }
                        done.fetch_sub(1, Ordering::AcqRel);
                    });
                    if let Err(e) = spawned {
                        active.fetch_sub(1, Ordering::AcqRel);
                        log::warn!("Metrics endpoint: cannot start a request thread: {e}");
                    }
                }
                Err(e) => {
                    log::warn!("Metrics endpoint: accept failed: {e}");
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    })?;
    Ok(())
}

fn answer(mut s: TcpStream, scrape: &dyn Fn() -> String) -> std::io::Result<()> {
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > MAX_HEAD {
            break;
        }
    }
    let head = String::from_utf8_lossy(&head);
    let is_head = head.starts_with("HEAD ");
    let (status, kind, body) = match route(&head) {
        Route::Metrics => ("200 OK", "text/plain; version=0.0.4; charset=utf-8", scrape()),
        Route::Index => ("200 OK", "text/plain; charset=utf-8", "rustircd: metrics at /metrics\n".to_string()),
        Route::NotFound => ("404 Not Found", "text/plain", "not found; try /metrics\n".to_string()),
        Route::MethodNotAllowed => ("405 Method Not Allowed", "text/plain", "only GET\n".to_string()),
        Route::BadRequest => ("400 Bad Request", "text/plain", "bad request\n".to_string()),
    };
    s.write_all(&response(status, kind, &body, is_head))?;
    s.flush()
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
