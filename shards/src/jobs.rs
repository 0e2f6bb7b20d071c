//! Blocking jobs: work a handler hands to [`Io::blocking`](crate::Io::blocking), run off the
//! shard's thread.

use std::rc::Rc;
use std::time::Instant;

use crate::runtime::Handler;
use crate::shard::Shard;

/// Runs the jobs handlers gave to `Io::blocking` on glommio's blocking pool; each result
/// comes back to the handler as a message from this shard.
pub(crate) async fn blocking_jobs<H: Handler>(shard: Rc<Shard<H>>) {
    let notify = shard.state.borrow().io.jobs_notify.clone();
    loop {
        notify.wait().await;
        shard.activity.worked();
        let jobs = std::mem::take(&mut shard.state.borrow_mut().io.jobs);
        for job in jobs {
            let shard = shard.clone();
            glommio::spawn_local(async move {
                let msg = glommio::executor().spawn_blocking(job).await;
                shard.activity.worked();
                let mut st = shard.state.borrow_mut();
                let st = &mut *st;
                st.io.now = Instant::now();
                let me = st.io.shard();
                st.handler.on_mesh(&mut st.io, me, msg);
            })
            .detach();
        }
    }
}
