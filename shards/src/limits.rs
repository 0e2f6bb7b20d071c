//! Process limits: the open-file limit decides how many connections the process can hold.

/// The open-file limits after [`raise_nofile_limit`].
#[derive(Clone, Copy, Debug)]
pub struct FdLimits {
    pub soft: u64,
    pub hard: u64,
}

impl FdLimits {
    /// Connections the process can accept: the soft limit less a reserve for listeners,
    /// io_uring rings, eventfds, log files and the like (`per_shard` for each shard).
    pub fn connection_capacity(&self, shards: usize, per_shard: u64) -> usize {
        let reserve = 32 + per_shard * shards as u64;
        self.soft.saturating_sub(reserve) as usize
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and returns both.
pub fn raise_nofile_limit() -> std::io::Result<FdLimits> {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read or write the struct passed in.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if lim.rlim_cur < lim.rlim_max {
            let want = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                lim = want;
            }
        }
    }
    Ok(FdLimits { soft: lim.rlim_cur, hard: lim.rlim_max })
}
