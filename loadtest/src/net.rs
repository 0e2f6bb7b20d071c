//! Many client connections on one thread: mio readiness, per-connection line buffers, kernel
//! receive timestamps (`SO_TIMESTAMPNS`) so that the generator's own scheduling delays do not
//! count as server latency, automatic PONG.

use std::io::{self, ErrorKind, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

/// Wall-clock nanoseconds (the clock `SO_TIMESTAMPNS` uses).
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the struct passed in.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

pub struct Conn {
    pub stream: TcpStream,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    pub registered: bool,
    pub closed: bool,
    pub nick: String,
    /// A raw connection (a server link): no NICK/USER, and its PINGs go to the caller.
    pub raw: bool,
    /// Where it connects.
    pub server: SocketAddr,
    /// Whether anything came from the server yet.
    got_data: bool,
    /// The socket error that broke it (connecting, writing or reading), if one did.
    io_error: Option<std::io::Error>,
    /// The last `ERROR` line the server sent.
    pub error_line: Option<String>,
    /// Why it ended, once it did (not when the harness closed it itself).
    pub ended: Option<String>,
}

/// What `Pool::poll` reports for each complete line.
pub struct LineEvent<'a> {
    pub conn: usize,
    pub line: &'a str,
    /// Kernel receive time of the data that completed the line (ns, wall clock).
    pub recv_ns: u64,
}

pub struct Pool {
    poll: Poll,
    events: Events,
    pub conns: Vec<Conn>,
    pub disconnects: u64,
    /// The first client connection (not raw) that ended before it registered, and why.
    pub first_failure: Option<(usize, String)>,
    pub bytes_in: u64,
    scratch: Vec<u8>,
}

impl Pool {
    pub fn new() -> io::Result<Pool> {
        Ok(Pool {
            poll: Poll::new()?,
            events: Events::with_capacity(4096),
            conns: Vec::new(),
            disconnects: 0,
            first_failure: None,
            bytes_in: 0,
            scratch: vec![0; 256 * 1024],
        })
    }

    /// Opens a connection (from `source`, a loopback address, when given) and sends NICK/USER.
    pub fn connect(&mut self, server: SocketAddr, source: Option<IpAddr>, nick: &str) -> io::Result<usize> {
        let idx = self.open(server, source, nick, false)?;
        self.send(idx, format!("NICK {nick}\r\nUSER lt 0 * :loadtest\r\n").as_bytes());
        Ok(idx)
    }

    /// Opens a raw connection (a server link speaking for itself): nothing is sent, and PING
    /// lines are handed to the caller instead of being answered.
    pub fn connect_raw(&mut self, server: SocketAddr, name: &str) -> io::Result<usize> {
        self.open(server, None, name, true)
    }

    fn open(&mut self, server: SocketAddr, source: Option<IpAddr>, nick: &str, raw: bool) -> io::Result<usize> {
        let domain = if server.is_ipv6() { socket2::Domain::IPV6 } else { socket2::Domain::IPV4 };
        let sk = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
        if let Some(ip) = source {
            sk.bind(&SocketAddr::new(ip, 0).into())?;
        }
        sk.set_nonblocking(true)?;
        sk.set_nodelay(true)?;
        let on: libc::c_int = 1;
        // SAFETY: setsockopt with a valid int option on a socket we own.
        unsafe {
            libc::setsockopt(
                sk.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMPNS,
                &on as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        match sk.connect(&server.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        let mut stream = TcpStream::from_std(sk.into());
        let idx = self.conns.len();
        self.poll.registry().register(&mut stream, Token(idx), Interest::READABLE | Interest::WRITABLE)?;
        self.conns.push(Conn {
            stream,
            rbuf: Vec::new(),
            wbuf: Vec::new(),
            registered: false,
            closed: false,
            nick: nick.to_string(),
            raw,
            server,
            got_data: false,
            io_error: None,
            error_line: None,
            ended: None,
        });
        Ok(idx)
    }

    /// Bytes queued for `idx` that the socket has not taken yet.
    pub fn unsent(&self, idx: usize) -> usize {
        self.conns[idx].wbuf.len()
    }

    /// Queues bytes and writes what the socket takes now.
    pub fn send(&mut self, idx: usize, bytes: &[u8]) {
        let c = &mut self.conns[idx];
        if c.closed {
            return;
        }
        c.wbuf.extend_from_slice(bytes);
        flush(c);
    }

    pub fn close(&mut self, idx: usize) {
        let c = &mut self.conns[idx];
        if !c.closed {
            c.closed = true;
            let _ = self.poll.registry().deregister(&mut c.stream);
            let _ = c.stream.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Waits up to `timeout` for activity; calls `f` for every complete line (answering PINGs
    /// itself and marking registrations on 001).
    pub fn poll(&mut self, timeout: Duration, mut f: impl FnMut(&mut Pool, LineEvent<'_>)) -> io::Result<()> {
        self.poll.poll(&mut self.events, Some(timeout))?;
        let ready: Vec<(usize, bool, bool)> = self
            .events
            .iter()
            .map(|e| (e.token().0, e.is_readable() || e.is_read_closed() || e.is_error(), e.is_writable()))
            .collect();
        for (idx, readable, writable) in ready {
            if idx >= self.conns.len() || self.conns[idx].closed {
                continue;
            }
            if writable {
                flush(&mut self.conns[idx]);
            }
            if readable {
                self.read(idx, &mut f);
            }
        }
        Ok(())
    }

    fn read(&mut self, idx: usize, f: &mut impl FnMut(&mut Pool, LineEvent<'_>)) {
        loop {
            let (n, ts) = match recv_with_timestamp(&self.conns[idx].stream, &mut self.scratch) {
                Ok((0, _)) => {
                    self.lost(idx, None);
                    return;
                }
                Ok(x) => x,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.lost(idx, Some(e));
                    return;
                }
            };
            self.conns[idx].got_data = true;
            self.bytes_in += n as u64;
            let ts = if ts == 0 { now_ns() } else { ts };
            let mut data = std::mem::take(&mut self.conns[idx].rbuf);
            data.extend_from_slice(&self.scratch[..n]);
            let mut start = 0;
            while let Some(pos) = data[start..].iter().position(|&b| b == b'\n') {
                let end = start + pos;
                let raw = &data[start..end];
                let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
                start = end + 1;
                let Ok(line) = std::str::from_utf8(raw) else { continue };
                if line.starts_with("ERROR ") || line.split(' ').nth(1) == Some("ERROR") {
                    self.conns[idx].error_line = Some(line.to_string());
                }
                if let (false, Some(rest)) = (self.conns[idx].raw, line.strip_prefix("PING ")) {
                    let pong = format!("PONG {rest}\r\n");
                    self.send(idx, pong.as_bytes());
                    continue;
                }
                if !self.conns[idx].registered && !self.conns[idx].raw {
                    match line.split(' ').nth(1) {
                        Some("001") => self.conns[idx].registered = true,
                        // nick taken (a previous run's client may still be leaving): another
                        Some("433") => {
                            let c = &mut self.conns[idx];
                            c.nick.push('_');
                            let nick = format!("NICK {}\r\n", c.nick);
                            self.send(idx, nick.as_bytes());
                        }
                        _ => {}
                    }
                }
                f(self, LineEvent { conn: idx, line, recv_ns: ts });
            }
            data.drain(..start);
            if idx < self.conns.len() && !self.conns[idx].closed {
                self.conns[idx].rbuf = data;
            }
        }
    }

    /// The server closed connection `idx`, or its socket failed (`e`): says why, and
    /// remembers the first client that never registered.
    fn lost(&mut self, idx: usize, e: Option<io::Error>) {
        self.disconnects += 1;
        let c = &mut self.conns[idx];
        let server = c.server;
        let why = match (c.io_error.take().or(e), &c.error_line) {
            // Nothing ever came: the connection itself failed (refused, unreachable).
            (Some(e), None) if !c.got_data => {
                let hint =
                    if e.kind() == ErrorKind::ConnectionRefused { " (is a server listening there?)" } else { "" };
                format!("cannot connect to {server}: {e}{hint}")
            }
            (Some(e), None) => format!("the connection to {server} failed: {e}"),
            // (a reset after an ERROR line is only how the server closed it)
            (_, Some(l)) => format!("{server} closed the connection: {l:?}"),
            (None, None) => format!("{server} closed the connection without an ERROR line"),
        };
        if !c.registered && !c.raw && self.first_failure.is_none() {
            let why = if c.got_data || c.error_line.is_some() {
                format!("{why} (client {} before it registered)", c.nick)
            } else {
                why.clone()
            };
            self.first_failure = Some((idx, why));
        }
        c.ended = Some(why);
        self.close(idx);
    }

    pub fn registered(&self) -> usize {
        self.conns.iter().filter(|c| c.registered && !c.closed).count()
    }

    /// Runs `poll` until `done` holds or `limit` passes; returns whether `done` held.
    pub fn run_until(
        &mut self,
        limit: Duration,
        mut f: impl FnMut(&mut Pool, LineEvent<'_>),
        mut done: impl FnMut(&Pool) -> bool,
    ) -> io::Result<bool> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if done(self) {
                return Ok(true);
            }
            self.poll(Duration::from_millis(5), &mut f)?;
        }
        Ok(done(self))
    }
}

/// Writes what the socket takes; the written part leaves the buffer once per call (a burst of
/// a megabyte is not moved down after every partial write).
fn flush(c: &mut Conn) {
    let mut done = 0;
    while done < c.wbuf.len() {
        match c.stream.write(&c.wbuf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            // The read side reports it when the socket says it is closed.
            Err(e) => {
                c.io_error.get_or_insert(e);
                break;
            }
        }
    }
    c.wbuf.drain(..done);
}

/// `recvmsg` with the kernel's receive timestamp of the data (0 when none came).
fn recv_with_timestamp(s: &TcpStream, buf: &mut [u8]) -> io::Result<(usize, u64)> {
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr() as *mut libc::c_void, iov_len: buf.len() };
    let mut cmsg = [0u64; 16];
    // SAFETY: msghdr points at buffers that live across the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = std::mem::size_of_val(&cmsg);
    // SAFETY: a non-blocking recvmsg into the buffers above.
    let n = unsafe { libc::recvmsg(s.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut ts = 0u64;
    // SAFETY: walking the control messages the kernel wrote into `cmsg`.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let t = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::timespec);
                ts = t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64;
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok((n as usize, ts))
}
