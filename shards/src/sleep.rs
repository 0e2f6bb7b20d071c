//! Quiet connections sleep without a task. A plain client that has sent nothing for
//! `RuntimeConfig::sleep_after` (15 s by default; counted by the tick's scans, one a second)
//! gives up its glommio task (436 bytes) and the readiness source its pending read holds
//! (492 bytes): its socket waits in the shard's epoll
//! instead, watched by one thread per shard that sleeps in `epoll_wait`. What it is sent still
//! goes out through the shard's writer (writer.rs), which needs only the slot's fd. Input, a
//! peer's close, or anything that would wake the connection's task (a full socket, a close, a
//! drain) starts a new task for it, which serves it as before.
//!
//! Why a thread: glommio 0.9 has no public way to wait for an arbitrary fd (its poll is for its
//! own socket types, which try `recv` first), and an epoll fd is not a socket. The thread only
//! runs when a sleeping connection wakes, which for an idle client is once a ping.
//!
//! Invariant: a connection's socket is in the epoll exactly while the connection sleeps.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Wake, Waker};

use glommio::net::TcpStream;

use crate::conn::ConnId;
use crate::conn_task::serve;
use crate::runtime::Handler;
use crate::shard::Shard;
use crate::stream::Stream;

/// The epoll data that tells the thread to end (a connection's id is never all ones).
const STOP: u64 = u64::MAX;

/// Ids of sleeping connections to wake, and the waker of the task that wakes them.
#[derive(Default)]
struct Woken {
    inner: Mutex<WokenInner>,
}

#[derive(Default)]
struct WokenInner {
    ids: Vec<u64>,
    waker: Option<Waker>,
}

impl Woken {
    fn push(&self, ids: impl IntoIterator<Item = u64>) {
        let waker = {
            let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            inner.ids.extend(ids);
            inner.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// What a sleeping connection's slot holds as its waker: waking it wakes the connection.
struct SleeperWaker {
    id: u64,
    woken: Arc<Woken>,
}

impl Wake for SleeperWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.push([self.id]);
    }
}

/// A shard's epoll of sleeping connections and the thread that waits on it.
pub(crate) struct Sleepers {
    epoll: OwnedFd,
    stop: OwnedFd,
    woken: Arc<Woken>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sleepers {
    pub(crate) fn new(shard: usize) -> io::Result<Sleepers> {
        // SAFETY: plain system calls; each fd is checked and owned at once.
        let epoll = unsafe { owned(libc::epoll_create1(libc::EPOLL_CLOEXEC))? };
        let stop = unsafe { owned(libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK))? };
        ctl(epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, stop.as_raw_fd(), libc::EPOLLIN as u32, STOP)?;
        let woken = Arc::new(Woken::default());
        let thread = {
            let (epfd, woken) = (epoll.as_raw_fd(), woken.clone());
            std::thread::Builder::new().name(format!("sleepers-{shard}")).spawn(move || watch(epfd, &woken))?
        };
        Ok(Sleepers { epoll, stop, woken, thread: Some(thread) })
    }

    fn arm(&self, fd: RawFd, id: ConnId) -> io::Result<()> {
        let events = (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLONESHOT) as u32;
        ctl(self.epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, events, id.to_u64())
    }

    fn disarm(&self, fd: RawFd) {
        let _ = ctl(self.epoll.as_raw_fd(), libc::EPOLL_CTL_DEL, fd, 0, 0);
    }

    fn waker(&self, id: ConnId) -> Waker {
        Waker::from(Arc::new(SleeperWaker { id: id.to_u64(), woken: self.woken.clone() }))
    }
}

impl Drop for Sleepers {
    fn drop(&mut self) {
        let one: u64 = 1;
        // SAFETY: an 8-byte write to our eventfd.
        unsafe {
            libc::write(self.stop.as_raw_fd(), &one as *const u64 as *const _, 8);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// # Safety
/// `fd` is a new descriptor returned by a system call (or -1 with errno set).
unsafe fn owned(fd: RawFd) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(OwnedFd::from_raw_fd(fd))
}

fn ctl(epfd: RawFd, op: libc::c_int, fd: RawFd, events: u32, data: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event { events, u64: data };
    // SAFETY: an epoll_ctl with a valid event struct.
    if unsafe { libc::epoll_ctl(epfd, op, fd, &mut ev) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The thread: hands the ids of sleeping connections that became ready to the shard.
fn watch(epfd: RawFd, woken: &Woken) {
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
    loop {
        // SAFETY: waiting into a buffer we own, of the length given.
        let n = unsafe { libc::epoll_wait(epfd, events.as_mut_ptr(), events.len() as i32, -1) };
        if n < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            log::error!("epoll_wait of sleeping connections failed: {}", io::Error::last_os_error());
            return;
        }
        let ready = &events[..n as usize];
        if ready.iter().any(|e| e.u64 == STOP) {
            return;
        }
        woken.push(ready.iter().map(|e| e.u64));
    }
}

/// Puts connection `id` to sleep: its socket goes to the epoll, its task ends. The socket is
/// duplicated first (glommio's stream closes its own when dropped). Gives the stream back if
/// that fails, to be served as before.
pub(crate) fn sleep<H: Handler>(shard: &Shard<H>, id: ConnId, tcp: TcpStream) -> Result<(), TcpStream> {
    let Some(sleepers) = &shard.sleepers else { return Err(tcp) };
    // SAFETY: dup of a socket we own.
    let fd = unsafe { libc::fcntl(tcp.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
    if fd < 0 {
        return Err(tcp);
    }
    drop(tcp);
    let mut st = shard.state.borrow_mut();
    let st = &mut *st;
    let Some(slot) = st.io.conns.get(id) else {
        // SAFETY: the duplicate is ours and nobody else knows it.
        unsafe { libc::close(fd) };
        return Ok(());
    };
    slot.fd = Some(fd);
    slot.waker = Some(sleepers.waker(id));
    slot.asleep = true;
    st.io.stats.asleep += 1;
    if let Err(e) = sleepers.arm(fd, id) {
        log::warn!("connection {id:?} stays awake: {e}");
        slot.wake();
    }
    Ok(())
}

/// The task that wakes sleeping connections: a new task serves each (see the module's note).
pub(crate) async fn waker_task<H: Handler>(shard: Rc<Shard<H>>) {
    let Some(sleepers) = &shard.sleepers else { return };
    let mut ids = Vec::new();
    loop {
        std::future::poll_fn(|cx| {
            let mut inner = sleepers.woken.inner.lock().unwrap_or_else(|e| e.into_inner());
            if inner.ids.is_empty() {
                inner.waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
            std::mem::swap(&mut ids, &mut inner.ids);
            Poll::Ready(())
        })
        .await;
        shard.activity.worked();
        for id in ids.drain(..) {
            wake_one(&shard, sleepers, ConnId::from_u64(id));
        }
    }
}

fn wake_one<H: Handler>(shard: &Rc<Shard<H>>, sleepers: &Sleepers, id: ConnId) {
    let fd = {
        let mut st = shard.state.borrow_mut();
        let st = &mut *st;
        // Woken twice (its socket and a close, say), or gone: nothing to do.
        let Some(slot) = st.io.conns.get(id).filter(|s| s.asleep) else { return };
        let Some(fd) = slot.fd else { return };
        slot.asleep = false;
        slot.quiet = 0;
        slot.waker = None;
        st.io.stats.asleep -= 1;
        fd
    };
    sleepers.disarm(fd);
    // SAFETY: the fd is the connection's socket, which only this new stream owns from now on.
    let tcp = unsafe { TcpStream::from_raw_fd(fd) };
    glommio::spawn_local(serve(shard.clone(), Stream::Plain(tcp), id)).detach();
}
