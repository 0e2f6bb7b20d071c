//! Hostname and ident lookups for new clients: reverse DNS confirmed by a forward lookup, and an
//! RFC 1413 ident query. Both block, so a shard runs them as a blocking job; each runs on a
//! thread of its own and the job returns at the deadline whatever has come back, so a dead DNS
//! server or a firewalled port 113 costs a client at most the configured timeout.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Lookup threads alive at once, across the process. A lookup that would exceed it is skipped
/// (the client keeps its IP), so a connection flood against a hung resolver cannot pile up
/// threads.
const MAX_THREADS: usize = 64;
static THREADS: AtomicUsize = AtomicUsize::new(0);

/// What the lookups found (`None`: nothing usable, or not asked).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Found {
    pub host: Option<String>,
    pub ident: Option<String>,
}

/// Runs the asked-for lookups in parallel and returns by `timeout` with what came back.
pub fn lookup(peer: SocketAddr, local: SocketAddr, dns: bool, ident: bool, timeout: Duration) -> Found {
    let deadline = Instant::now() + timeout;
    let (tx, rx) = mpsc::channel::<(bool, Option<String>)>();
    let mut waiting = 0;
    if dns {
        let tx = tx.clone();
        waiting += spawn(move || {
            let _ = tx.send((true, reverse_confirmed(peer.ip())));
        }) as usize;
    }
    if ident {
        let tx = tx.clone();
        waiting += spawn(move || {
            let _ = tx.send((false, query_ident(peer, local, timeout)));
        }) as usize;
    }
    let mut found = Found::default();
    while waiting > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((true, h)) => found.host = h,
            Ok((false, i)) => found.ident = i,
            Err(_) => break,
        }
        waiting -= 1;
    }
    found
}

fn spawn(f: impl FnOnce() + Send + 'static) -> bool {
    if THREADS.fetch_add(1, Ordering::Relaxed) >= MAX_THREADS {
        THREADS.fetch_sub(1, Ordering::Relaxed);
        return false;
    }
    let ok = std::thread::Builder::new()
        .name("lookup".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            f();
            THREADS.fetch_sub(1, Ordering::Relaxed);
        })
        .is_ok();
    if !ok {
        THREADS.fetch_sub(1, Ordering::Relaxed);
    }
    ok
}

/// The name `ip` resolves back to, if that name resolves forward to `ip` and is a valid
/// hostname of at most 63 characters (longer ones do not fit in a mask).
pub fn reverse_confirmed(ip: IpAddr) -> Option<String> {
    let name = reverse(ip)?;
    if name.len() > 63 || !crate::proto::names::valid_client_host(&name) || name.parse::<IpAddr>().is_ok() {
        return None;
    }
    let forward = (name.as_str(), 0).to_socket_addrs().ok()?;
    let same = |a: IpAddr| match (a, ip) {
        (IpAddr::V6(a6), IpAddr::V4(b4)) => a6.to_ipv4_mapped() == Some(b4),
        (IpAddr::V4(a4), IpAddr::V6(b6)) => b6.to_ipv4_mapped() == Some(a4),
        (a, b) => a == b,
    };
    forward.into_iter().any(|a| same(a.ip())).then_some(name)
}

/// getnameinfo(3) with NI_NAMEREQD: the PTR name of `ip`, if it has one.
fn reverse(ip: IpAddr) -> Option<String> {
    let sa = raw_sockaddr(ip);
    let mut host = [0 as libc::c_char; 256];
    // SAFETY: `sa` is a valid sockaddr of the length given; `host` is a writable buffer of the
    // length given; no service buffer is requested.
    let rc = unsafe {
        libc::getnameinfo(
            sa.as_ptr(),
            sa.len(),
            host.as_mut_ptr(),
            host.len() as libc::socklen_t,
            std::ptr::null_mut(),
            0,
            libc::NI_NAMEREQD,
        )
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: getnameinfo wrote a NUL-terminated string into `host`.
    let name = unsafe { std::ffi::CStr::from_ptr(host.as_ptr()) };
    name.to_str().ok().map(|s| s.trim_end_matches('.').to_string())
}

/// A sockaddr for `ip`, port 0, as getnameinfo wants it.
enum RawAddr {
    V4(libc::sockaddr_in),
    V6(libc::sockaddr_in6),
}

impl RawAddr {
    fn as_ptr(&self) -> *const libc::sockaddr {
        match self {
            RawAddr::V4(a) => a as *const _ as *const libc::sockaddr,
            RawAddr::V6(a) => a as *const _ as *const libc::sockaddr,
        }
    }
    fn len(&self) -> libc::socklen_t {
        match self {
            RawAddr::V4(_) => std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            RawAddr::V6(_) => std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
        }
    }
}

fn raw_sockaddr(ip: IpAddr) -> RawAddr {
    match ip {
        IpAddr::V4(v4) => {
            // SAFETY: sockaddr_in is plain data; all-zero is a valid value.
            let mut a: libc::sockaddr_in = unsafe { std::mem::zeroed() };
            a.sin_family = libc::AF_INET as libc::sa_family_t;
            a.sin_addr = libc::in_addr { s_addr: u32::from(v4).to_be() };
            RawAddr::V4(a)
        }
        IpAddr::V6(v6) => {
            // SAFETY: as above.
            let mut a: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
            a.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            a.sin6_addr = libc::in6_addr { s6_addr: v6.octets() };
            RawAddr::V6(a)
        }
    }
}

/// RFC 1413: asks the client's identd which user owns the connection `peer` → `local`.
pub fn query_ident(peer: SocketAddr, local: SocketAddr, timeout: Duration) -> Option<String> {
    query_ident_at(SocketAddr::new(peer.ip(), 113), peer, local, timeout)
}

/// [`query_ident`] against the identd at `identd`.
fn query_ident_at(identd: SocketAddr, peer: SocketAddr, local: SocketAddr, timeout: Duration) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&identd, timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.set_write_timeout(Some(timeout)).ok()?;
    // One write: some identds read the query with a single read.
    s.write_all(format!("{}, {}\r\n", peer.port(), local.port()).as_bytes()).ok()?;
    let mut buf = [0u8; 512];
    let mut n = 0;
    while n < buf.len() {
        match s.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => {
                n += k;
                if buf[..n].contains(&b'\n') {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    parse_ident_reply(std::str::from_utf8(&buf[..n]).ok()?, peer.port(), local.port())
}

/// `<port>, <port> : USERID : <os> : <user>` for the ports asked about; the user name cut to
/// what may stand in a mask.
pub fn parse_ident_reply(reply: &str, peer_port: u16, local_port: u16) -> Option<String> {
    let line = reply.lines().next()?;
    let mut parts = line.splitn(4, ':');
    let ports = parts.next()?;
    let (a, b) = ports.split_once(',')?;
    if a.trim().parse::<u16>().ok()? != peer_port || b.trim().parse::<u16>().ok()? != local_port {
        return None;
    }
    if parts.next()?.trim() != "USERID" {
        return None;
    }
    let _os = parts.next()?;
    let user: String = parts
        .next()?
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-_.[]{}\\`^|".contains(*c))
        .take(10)
        .collect();
    (!user.is_empty()).then_some(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ident_replies() {
        assert_eq!(parse_ident_reply("6193, 23 : USERID : UNIX : stjohns\r\n", 6193, 23).as_deref(), Some("stjohns"));
        assert_eq!(parse_ident_reply("6193,23:USERID:UNIX,UTF-8:bob smith\r\n", 6193, 23).as_deref(), Some("bobsmith"));
        assert_eq!(parse_ident_reply("6193, 23 : ERROR : NO-USER\r\n", 6193, 23), None);
        assert_eq!(parse_ident_reply("1, 2 : USERID : UNIX : x\r\n", 6193, 23), None, "other ports");
        assert_eq!(parse_ident_reply("garbage", 1, 2), None);
        assert_eq!(
            parse_ident_reply("1, 2 : USERID : UNIX : averyveryverylongname", 1, 2).as_deref(),
            Some("averyveryv")
        );
    }

    #[test]
    fn ident_against_a_real_socket() {
        use std::net::TcpListener;
        let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:6667".parse().unwrap();
        // an identd that answers
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let at = l.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut q = Vec::new();
            let mut b = [0u8; 64];
            while !q.ends_with(b"\n") {
                let n = s.read(&mut b).unwrap();
                assert!(n > 0, "closed early: {q:?}");
                q.extend_from_slice(&b[..n]);
            }
            assert_eq!(q, b"40000, 6667\r\n");
            s.write_all(b"40000 , 6667 : USERID : UNIX : alice\r\n").unwrap();
        });
        assert_eq!(query_ident_at(at, peer, local, Duration::from_secs(5)).as_deref(), Some("alice"));
        server.join().unwrap();
        // one that accepts and never answers: given up at the timeout
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let at = l.local_addr().unwrap();
        let start = Instant::now();
        assert_eq!(query_ident_at(at, peer, local, Duration::from_millis(200)), None);
        assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
        drop(l);
    }

    #[test]
    fn loopback_resolves_forward_confirmed_or_not_at_all() {
        // /etc/hosts maps 127.0.0.1 to localhost on any sane machine; either way the answer
        // must be a name that resolves back, never garbage.
        if let Some(h) = reverse_confirmed("127.0.0.1".parse().unwrap()) {
            assert!(crate::proto::names::valid_client_host(&h));
        }
        assert_eq!(
            lookup(
                "127.0.0.1:1".parse().unwrap(),
                "127.0.0.1:2".parse().unwrap(),
                false,
                false,
                Duration::from_millis(10)
            ),
            Found::default()
        );
    }
}
