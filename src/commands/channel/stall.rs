//! The stall guard: a sequenced change that has waited for its turn longer than
//! [`STALL_AFTER`] is logged with what it waits for and counted (`STATS S`, `/metrics`), so a
//! wedge in channel ordering can never again be silent. Checked on the shard's once-a-second
//! timer; it costs nothing while events move.

use std::time::{Duration, Instant};

use super::{ChanEvent, Sequenced};
use crate::commands::envelope::Ordered;
use crate::local::shard::ShardState;
use crate::state::channel::Mutation;

/// How long a change may wait for its turn before it counts as stalled. Turns normally come
/// within a mesh round trip (well under a millisecond); seconds mean something is wrong.
pub const STALL_AFTER: Duration = Duration::from_secs(5);

/// Held events now, and how long the oldest of them has waited.
pub fn waiting(st: &ShardState, now: Instant) -> (u64, Duration) {
    let held = st.mine.len() + st.blocked.iter().map(|q| q.events.len()).sum::<usize>();
    let oldest = st
        .mine
        .iter()
        .map(|m| m.since)
        .chain(st.blocked.iter().filter_map(|q| q.since))
        .map(|t| now.saturating_duration_since(t))
        .max()
        .unwrap_or_default();
    (held as u64, oldest)
}

/// Logs and counts each change that has just passed [`STALL_AFTER`] (once per change).
pub fn check(st: &mut ShardState, now: Instant) {
    let mut found = Vec::new();
    for m in st.mine.iter_mut().filter(|m| !m.noted && now.saturating_duration_since(m.since) >= STALL_AFTER) {
        m.noted = true;
        found.push((st.me, now.saturating_duration_since(m.since), describe(&m.event)));
    }
    for (from, q) in st.blocked.iter_mut().enumerate() {
        let Some(since) = q.since.filter(|&t| !q.noted && now.saturating_duration_since(t) >= STALL_AFTER) else {
            continue;
        };
        q.noted = true;
        let what = match q.events.front() {
            Some(Ordered::Chan(ev)) => describe(ev),
            _ => "an event".to_string(),
        };
        found.push((
            from,
            now.saturating_duration_since(since),
            format!("{what}, {} more behind it", q.events.len() - 1),
        ));
    }
    for (from, waited, what) in found {
        st.metrics.c.seq_stalls += 1;
        let applied: Vec<u64> = (0..st.cores).map(|h| st.seq.applied(h)).collect();
        log::warn!(
            "Sequencer stall on shard {}: from shard {from}, waiting {} s: {what}; applied here per home: {applied:?}",
            st.me,
            waited.as_secs()
        );
    }
}

/// What a held event is and which number it waits for.
fn describe(ev: &Sequenced) -> String {
    let what = match &ev.ev {
        ChanEvent::Change { name, mutation, actor, .. } => {
            let kind = match mutation {
                Mutation::Join { .. } => "join",
                Mutation::Leave { .. } => "part",
                Mutation::Modes(_) => "mode",
                Mutation::Topic(_) => "topic",
                Mutation::Mlock(_) => "mlock",
                Mutation::Metadata(_) => "metadata",
                Mutation::Burst { .. } => "burst",
                Mutation::Moved { .. } | Mutation::Arrived { .. } => "rename",
            };
            format!("{kind} of {actor} on {name}")
        }
        ChanEvent::Quit { parts } => match parts.as_slice() {
            [p] => format!("departure of {} from {} channel(s)", p.uid, p.chans.len()),
            _ => format!("departure of {} users", parts.len()),
        },
    };
    match ev.dep {
        Some((home, seq)) => format!("{what} waits for number {seq} of home {home}"),
        None => what,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::commands::channel::QuitPart;
    use crate::commands::envelope::Env;
    use crate::commands::inbox::receive;
    use crate::commands::outgoing::Shared;
    use crate::config::Config;
    use crate::sim::Sim;

    /// An event whose number can never come (home 0's number 99 while 1 is next) is held; the
    /// guard reports it once, after the limit, and the report shows it held.
    #[test]
    fn a_held_change_is_reported_once_after_the_limit() {
        let mut sim = Sim::new(Arc::new(Config::embedded()), 2, true);
        let uid = sim.shards[0].0.uids.allocate();
        let ev = Sequenced {
            dep: Some((0, 99)),
            ev: ChanEvent::Quit {
                parts: vec![QuitPart {
                    uid,
                    line: Shared::plain(b"QUIT\r\n".to_vec().into()),
                    chans: Vec::new(),
                    last: false,
                }],
            },
            ack: None,
        };
        let t0 = Instant::now();
        let (st, out) = &mut sim.shards[1];
        receive(st, out, 0, Env::Ordered(Ordered::Chan(Box::new(ev))), t0, 1);
        assert_eq!(waiting(st, t0 + Duration::from_secs(2)), (1, Duration::from_secs(2)));
        check(st, t0 + Duration::from_secs(1));
        assert_eq!(st.metrics.c.seq_stalls, 0);
        check(st, t0 + STALL_AFTER);
        check(st, t0 + STALL_AFTER * 2);
        assert_eq!(st.metrics.c.seq_stalls, 1, "reported once");
        assert!(describe(&match st.blocked[0].events.front() {
            Some(Ordered::Chan(ev)) => (**ev).clone(),
            _ => panic!("held"),
        })
        .contains("waits for number 99 of home 0"));
    }
}
