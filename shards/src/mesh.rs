//! Outgoing side of the shard mesh: messages are gathered per destination shard during a loop
//! turn and leave as one batch (one SPSC queue slot) per destination.

use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use crate::notify::Notify;
use crate::{Envelope, ShardId};

/// How messages to one destination shard are batched (from the `[batch]` config section).
#[derive(Clone, Debug)]
pub struct BatchPolicy {
    /// A batch is sealed once it holds this many messages; the next one starts.
    pub max_messages: usize,
    /// ...or once the weights of its messages add up to this many bytes.
    pub max_bytes: usize,
    /// How long the flusher may wait after the first message of a turn for more to join the
    /// batch. Zero (the default) sends at the end of the loop turn that produced the message.
    pub max_delay: Duration,
}

impl Default for BatchPolicy {
    fn default() -> Self {
        BatchPolicy { max_messages: 1024, max_bytes: 256 * 1024, max_delay: Duration::ZERO }
    }
}

pub(crate) struct Batch<M> {
    pub(crate) msgs: Vec<M>,
    bytes: usize,
}

/// Pending batches per destination, drained by the shard's flusher task.
/// Per-destination batching of mesh messages (public for benchmarks; the runtime owns one per
/// shard).
pub struct Batcher<M> {
    pub(crate) pending: Vec<VecDeque<Batch<M>>>,
    pub(crate) policy: BatchPolicy,
    pub(crate) notify: Rc<Notify>,
    /// Messages queued but not yet handed to the SPSC queues, per destination.
    pub(crate) depth: Vec<usize>,
    pub(crate) sent_msgs: u64,
    pub(crate) sent_batches: u64,
}

impl<M: Envelope> Batcher<M> {
    pub fn new(cores: usize, policy: BatchPolicy) -> Self {
        Batcher {
            pending: (0..cores).map(|_| VecDeque::new()).collect(),
            policy,
            notify: Rc::new(Notify::default()),
            depth: vec![0; cores],
            sent_msgs: 0,
            sent_batches: 0,
        }
    }

    pub fn push(&mut self, to: ShardId, msg: M) {
        let w = msg.weight();
        let q = &mut self.pending[to];
        let full = match q.back() {
            Some(b) => b.msgs.len() >= self.policy.max_messages || b.bytes + w > self.policy.max_bytes,
            None => true,
        };
        if full {
            q.push_back(Batch { msgs: Vec::with_capacity(8), bytes: 0 });
        }
        let b = q.back_mut().expect("a batch was just ensured");
        b.msgs.push(msg);
        b.bytes += w;
        self.depth[to] += 1;
        self.notify.notify();
    }

    /// True when nothing waits to leave for any shard.
    pub fn is_empty(&self) -> bool {
        self.depth.iter().all(|&d| d == 0)
    }

    /// True when some destination has a batch that is already sealed (full).
    pub(crate) fn has_full_batch(&self) -> bool {
        self.pending.iter().any(|q| q.len() > 1)
    }

    pub fn take(&mut self, to: ShardId) -> Option<Vec<M>> {
        let b = self.pending[to].pop_front()?;
        self.depth[to] -= b.msgs.len();
        self.sent_msgs += b.msgs.len() as u64;
        self.sent_batches += 1;
        Some(b.msgs)
    }
}
