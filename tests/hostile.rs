//! Hostile input: many connections at once send garbage — random bytes, NULs, bare CRs,
//! invalid UTF-8, 100 KB lines, lines of 10,000 targets, half-finished registrations — or
//! never read what they asked for. Meanwhile ordinary clients on both shards chat. The server
//! must stay up, the ordinary clients must get every message in order and stay connected, and
//! only offenders may be disconnected.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

/// A small deterministic generator, so a failure can be replayed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[derive(Clone, Copy, Debug)]
enum Attack {
    RandomBytes,
    Nuls,
    BareCr,
    BadUtf8,
    HugeLines,
    TenThousandTargets,
    HalfRegistered,
    NeverReads,
}

const ATTACKS: [Attack; 8] = [
    Attack::RandomBytes,
    Attack::Nuls,
    Attack::BareCr,
    Attack::BadUtf8,
    Attack::HugeLines,
    Attack::TenThousandTargets,
    Attack::HalfRegistered,
    Attack::NeverReads,
];

/// What an attacker saw: the numerics (and standard-reply codes) it was answered with, and
/// whether it was disconnected.
#[derive(Debug, Default)]
struct Outcome {
    numerics: Vec<String>,
    closed: bool,
    port: u16,
}

fn attack(addr: std::net::SocketAddr, kind: Attack, seed: u64, stop: Arc<AtomicBool>) -> Outcome {
    let mut rng = XorShift(seed | 1);
    let mut s = if matches!(kind, Attack::NeverReads) { tiny_window(addr) } else { TcpStream::connect(addr).unwrap() };
    let port = s.local_addr().unwrap().port();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    let reg = format!("NICK bad{seed}\r\nUSER bad 0 * :bad\r\n");
    let mut payload: Vec<u8> = Vec::new();
    match kind {
        Attack::RandomBytes => payload.extend(rng.bytes(64 * 1024)),
        Attack::Nuls => {
            payload.extend(reg.as_bytes());
            for _ in 0..200 {
                payload.extend(b"PRIVMSG bad\0one :\0\0\0\r\n\0\0\0\0\r\n");
            }
        }
        Attack::BareCr => {
            payload.extend(format!("NICK bad{seed}\rUSER bad 0 * :bad\r").as_bytes());
            for _ in 0..200 {
                payload.extend(b"PING :a\rPING :b\r\r\rMODE\r");
            }
        }
        Attack::BadUtf8 => {
            payload.extend(reg.as_bytes());
            for _ in 0..200 {
                payload.extend(b"PRIVMSG nosuch\xff\xfe :\xc3\x28\xa0\xa1\xe2\x28\xa1\r\nNICK \xf0\x28\x8c\xbc\r\n");
            }
        }
        Attack::HugeLines => {
            payload.extend(reg.as_bytes());
            for _ in 0..5 {
                payload.extend(b"PRIVMSG #calm :");
                payload.extend(std::iter::repeat_n(b'a', 100 * 1024));
                payload.extend(b"\r\n");
            }
        }
        Attack::TenThousandTargets => {
            payload.extend(reg.as_bytes());
            let targets: Vec<String> = (0..10_000).map(|i| format!("t{i}")).collect();
            payload.extend(format!("PRIVMSG {} :hi\r\n", targets.join(",")).as_bytes());
            payload.extend(
                format!("JOIN {}\r\n", targets.iter().map(|t| format!("#{t}")).collect::<Vec<_>>().join(","))
                    .as_bytes(),
            );
            // and as many as fit in one line
            let fit: Vec<&str> = std::iter::repeat_n("x", 250).collect();
            payload.extend(format!("PRIVMSG {} :hi\r\n", fit.join(",")).as_bytes());
        }
        Attack::HalfRegistered => payload.extend(format!("NICK half{seed}\r\n").as_bytes()),
        // joins the busy channel, then never reads a byte of it
        Attack::NeverReads => payload.extend(format!("{reg}JOIN #firehose\r\n").as_bytes()),
    }
    // write in pieces (some attackers stall midway: the server must not care)
    for chunk in payload.chunks(4096) {
        if stop.load(Ordering::Relaxed) || s.write_all(chunk).is_err() {
            break;
        }
    }
    let mut out = Outcome { port, ..Outcome::default() };
    if matches!(kind, Attack::NeverReads) {
        // Not reading at all: the server must give up on it alone.
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(20));
        }
        out.closed = is_closed(&mut s);
        return out;
    }
    s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    while !stop.load(Ordering::Relaxed) {
        match s.read(&mut chunk) {
            Ok(0) => {
                out.closed = true;
                break;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => {
                out.closed = true;
                break;
            }
        }
    }
    for line in String::from_utf8_lossy(&buf).lines() {
        let mut words = line.split(' ');
        if line.starts_with(':') {
            words.next();
        }
        match words.next() {
            Some(v) if v.len() == 3 && v.bytes().all(|b| b.is_ascii_digit()) => out.numerics.push(v.to_string()),
            // A standard reply counts as its code: `FAIL PRIVMSG INVALID_UTF8` is `INVALID_UTF8`.
            Some("FAIL") => out.numerics.extend(words.nth(1).map(str::to_string)),
            _ => {}
        }
    }
    out
}

/// A connection with the smallest receive buffer, so that output it never reads backs up in
/// the server at once rather than after megabytes of kernel buffers.
fn tiny_window(addr: std::net::SocketAddr) -> TcpStream {
    use std::os::fd::FromRawFd;
    let std::net::SocketAddr::V4(dst) = addr else { panic!("IPv4 only") };
    let to = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: dst.port().to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from(*dst.ip()).to_be() },
        sin_zero: [0; 8],
    };
    // SAFETY: socket calls on a fresh descriptor with values of the sizes given; TcpStream
    // owns the descriptor afterwards.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0);
        let size: libc::c_int = 4096;
        let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &size as *const _ as *const libc::c_void, len);
        let alen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        assert_eq!(libc::connect(fd, &to as *const _ as *const libc::sockaddr, alen), 0);
        TcpStream::from_raw_fd(fd)
    }
}

/// Drains what is readable; true if the peer closed.
fn is_closed(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut chunk = [0u8; 65536];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn garbage_from_many_connections_harms_no_one_else() {
    // An untrusted class, as on the internet: flood control and small queues apply to all.
    let cfg = BASE_CONFIG
        .replace(
            "exempt = true",
            "exempt = false\nmax_per_ip = 0\nthrottle_count = 0\nflood_burst = 30\nflood_rate = 50",
        )
        .replace("sendq = \"256KiB\"", "sendq = \"128KiB\"")
        .replacen(
            "[[classes]]",
            "[[classes]]\nname = \"trusted\"\nhosts = [\"127.0.0.2\"]\nexempt = true\n\n[[classes]]",
            1,
        );
    let srv = Server::with_config(2, &cfg);
    // ordinary clients, two on each shard, in one channel
    let mut calm: Vec<Client> = srv.clients_on_both_shards("calm", 2).into_iter().map(|(c, _)| c).collect();
    for c in &mut calm {
        c.send("JOIN #calm");
        c.expect_verb("366");
    }
    for c in &mut calm {
        c.sync();
    }
    let calm_ports: Vec<u16> = calm.iter().map(|c| c.local_port()).collect();

    let stop = Arc::new(AtomicBool::new(false));
    let attackers: Vec<_> = (0..48u64)
        .map(|i| {
            let (addr, stop) = (srv.addr, stop.clone());
            let kind = ATTACKS[i as usize % ATTACKS.len()];
            std::thread::spawn(move || (kind, attack(addr, kind, 1000 + i, stop)))
        })
        .collect();

    // a trusted client floods #firehose once the never-readers are in it
    let firehose = {
        let addr = srv.addr;
        std::thread::spawn(move || {
            let mut f = Client::connect_from(addr, "127.0.0.2".parse().unwrap());
            f.register("firehose");
            f.send("JOIN #firehose");
            f.expect_verb("366");
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                f.send("NAMES #firehose");
                let names = f.collect_until("366");
                let members: usize =
                    names.iter().filter(|m| m.verb == "353").map(|m| m.last().split(' ').count()).sum();
                if members > 6 || Instant::now() > deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            // ~5.5 MB to each member: more than a socket's send buffer can grow to (4 MB,
            // tcp_wmem's maximum) plus the 128 KiB sendq. With 1.7 MB the kernel sometimes took
            // everything and nobody was cut off (seen: 1 run in 15).
            let text = "x".repeat(400);
            let mut blast = String::new();
            for i in 0..12_000 {
                blast.push_str(&format!("PRIVMSG #firehose :{i} {text}\r\n"));
            }
            f.send_raw(blast.as_bytes());
            f.sync();
            f
        })
    };

    // the ordinary clients chat through it all: channel and private messages across shards
    let rounds = 30;
    let n = calm.len();
    for r in 0..rounds {
        for i in 0..n {
            let to = &calm[(i + 1) % n].nick.clone();
            calm[i].send(&format!("PRIVMSG #calm :round {r} from {i}"));
            calm[i].send(&format!("PRIVMSG {to} :private {r} from {i}"));
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    for (i, c) in calm.iter_mut().enumerate() {
        let mut chan_next = vec![0usize; n];
        let mut priv_next = 0usize;
        let from_prev = (i + n - 1) % n;
        let want_chan = rounds * (n - 1);
        let (mut got_chan, mut got_priv) = (0, 0);
        let deadline = Instant::now() + Duration::from_secs(30);
        while got_chan < want_chan || got_priv < rounds {
            assert!(
                Instant::now() < deadline,
                "{}: {got_chan}/{want_chan} channel, {got_priv}/{rounds} private",
                c.nick
            );
            let m = c.expect_verb("PRIVMSG");
            let words: Vec<&str> = m.last().split(' ').collect();
            let (r, from): (usize, usize) = (words[1].parse().unwrap(), words[3].parse().unwrap());
            if m.p(0) == "#calm" {
                assert_eq!(r, chan_next[from], "{}: channel messages from {from} in order", c.nick);
                chan_next[from] += 1;
                got_chan += 1;
            } else {
                assert_eq!((from, r), (from_prev, priv_next), "{}: private messages in order", c.nick);
                priv_next += 1;
                got_priv += 1;
            }
        }
    }

    let mut firehose = firehose.join().unwrap();
    // The never-readers' fate is settled before they look (to look they read, and a reader is
    // no longer cut off): the firehose's shard has handled the blast, but the other shard may
    // still be fanning it out.
    let never_readers = (0..48).filter(|&i| matches!(ATTACKS[i % ATTACKS.len()], Attack::NeverReads)).count();
    let deadline = Instant::now() + Duration::from_secs(10);
    while srv.log_lines().iter().filter(|l| l.contains("reason=SendQ exceeded")).count() < never_readers
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    let outcomes: Vec<(Attack, Outcome)> = attackers.into_iter().map(|t| t.join().unwrap()).collect();

    firehose.sync();
    // the server is up, the ordinary clients still connected, and a newcomer is served
    let mut newcomer = srv.client("newcomer");
    newcomer.send("JOIN #calm");
    newcomer.expect_verb("366");
    for c in &mut calm {
        c.expect_verb("JOIN");
        c.sync();
    }
    let log = srv.log_lines();
    assert!(!log.iter().any(|l| l.contains("panicked")), "a panic: {log:#?}");
    for port in &calm_ports {
        let tag = format!(":{port}]");
        assert!(
            !log.iter().any(|l| l.contains("Client disconnected") && l.contains(&tag)),
            "an ordinary client was disconnected"
        );
    }
    // the offenders got answers, and the ones that overran their queues were cut off
    let of = |k: fn(&Attack) -> bool| outcomes.iter().filter(move |(a, _)| k(a)).map(|(_, o)| o);
    assert!(
        of(|a| matches!(a, Attack::HugeLines)).all(|o| o.numerics.iter().any(|n| n == "417")),
        "417 for 100 KB lines"
    );
    assert!(
        of(|a| matches!(a, Attack::TenThousandTargets)).all(|o| o.numerics.iter().any(|n| n == "417" || n == "407"))
    );
    // UTF8ONLY: every line that is not UTF-8 is refused with FAIL ... INVALID_UTF8.
    assert!(of(|a| matches!(a, Attack::BadUtf8)).all(|o| o.numerics.iter().any(|n| n == "INVALID_UTF8")));
    for o in of(|a| matches!(a, Attack::NeverReads)) {
        let tag = format!(":{}]", o.port);
        let about: Vec<&String> = log.iter().filter(|l| l.contains(&tag)).collect();
        assert!(
            o.closed,
            "a client that never reads is dropped: port {} still open; its log lines: {about:#?}",
            o.port
        );
    }
    assert!(
        of(|a| matches!(a, Attack::HalfRegistered)).all(|o| !o.closed),
        "half-registered clients wait their timeout"
    );
    for (kind, o) in &outcomes {
        if o.closed {
            let tag = format!(":{}]", o.port);
            let why = log.iter().find(|l| l.contains("Client disconnected") && l.contains(&tag));
            assert!(why.is_some(), "{kind:?} closed without a logged reason");
            if matches!(kind, Attack::NeverReads) {
                assert!(why.unwrap().contains("reason=SendQ exceeded"), "{why:?}");
            }
        }
    }
    assert!(srv.stop().success());
}
