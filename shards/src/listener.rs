//! Listening sockets: one SO_REUSEPORT socket per shard on each address, bound by the main
//! thread before the shards start, so that no early connection can find a shard missing. The
//! kernel spreads new connections over the group by a hash of the address pair.
//!
//! (Steering by `source_port % shards` with a classic-BPF program was tried and dropped: Linux
//! gives `connect()` ports of one parity, so every loopback client landed on the same shard.)

use std::io;
use std::net::SocketAddr;
use std::os::fd::{IntoRawFd, RawFd};

use socket2::{Domain, Protocol, Socket, Type};

/// Backlog asked of the kernel (it caps it at `net.core.somaxconn`).
const BACKLOG: i32 = 4096;

/// Binds `shards` listening sockets on `addr` (a port of 0 picks one port for all of them).
/// Returns the raw fds in shard order and the address actually bound.
pub(crate) fn bind_group(addr: SocketAddr, shards: usize) -> io::Result<(Vec<RawFd>, SocketAddr)> {
    let mut fds = Vec::with_capacity(shards);
    let mut bound = addr;
    for i in 0..shards {
        let domain = if addr.is_ipv6() { Domain::IPV6 } else { Domain::IPV4 };
        let sk = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
        if addr.is_ipv6() {
            sk.set_only_v6(true)?;
        }
        sk.set_reuse_address(true)?;
        sk.set_reuse_port(true)?;
        sk.set_nonblocking(true)?;
        sk.bind(&bound.into())?;
        sk.listen(BACKLOG)?;
        if i == 0 {
            bound = sk.local_addr()?.as_socket().unwrap_or(addr);
        }
        fds.push(sk.into_raw_fd());
    }
    Ok((fds, bound))
}
