//! Listening sockets: one SO_REUSEPORT socket per shard on each address, bound in shard order by
//! the main thread, with a classic-BPF steering program so that the kernel hands a new
//! connection to shard `source_port % shards`. The steering is deterministic (a client can tell
//! its shard from its own port) and spreads ephemeral ports evenly, where the kernel's default
//! hash was measured at 64/36 for two shards.

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
        let domain = if addr.is_ipv6() {
            Domain::IPV6
        } else {
            Domain::IPV4
        };
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
            if shards > 1 {
                if let Err(e) = attach_port_steering(&sk, shards, addr.is_ipv6()) {
                    log::warn!("listener {bound}: port steering unavailable ({e}); the kernel's hash spreads connections");
                }
            }
        }
        fds.push(sk.into_raw_fd());
    }
    Ok((fds, bound))
}

/// The shard a connection from `peer_port` lands on when steering is active.
pub fn steered_shard(peer_port: u16, shards: usize) -> usize {
    peer_port as usize % shards
}

fn attach_port_steering(sk: &Socket, shards: usize, v6: bool) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // The program sees the packet past the TCP header; SKF_NET_OFF addresses it from the IP
    // header instead. The TCP source port follows a 20-byte IPv4 header (loopback and ordinary
    // SYNs carry no IP options) or the 40-byte IPv6 header.
    const SKF_NET_OFF: i32 = -0x100000;
    let port_off = if v6 { 40 } else { 20 };
    let prog = [
        bpf(0x28, (SKF_NET_OFF + port_off) as u32), // ldh [net + port_off]
        bpf(0x94, shards as u32),                   // mod #shards
        bpf(0x16, 0),                               // ret a
    ];
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut _,
    };
    // SAFETY: the kernel copies the program during the call; both structs outlive it.
    let rc = unsafe {
        libc::setsockopt(
            sk.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_REUSEPORT_CBPF,
            &fprog as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn bpf(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}
