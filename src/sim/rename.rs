//! RENAME under chosen interleavings (`commands::channel::rename`): a renamer that goes away
//! mid-way, and members that leave the network while their channel is between homes. After
//! everything is delivered, every shard agrees, no name stays reserved, and no channel keeps
//! a member the network has forgotten (at its home or in any view).

use std::sync::Arc;

use super::Sim;
use crate::commands::envelope::{Answer, Env, Ordered, Request};
use crate::config::Config;

fn config() -> Arc<Config> {
    let mut cfg = Config::embedded();
    for c in &mut cfg.classes {
        c.exempt = true;
    }
    Arc::new(cfg)
}

/// A channel name with this prefix whose home is `shard` of 2.
fn homed_at(sim: &Sim, prefix: &str, shard: usize) -> String {
    let cm = sim.shards[0].0.cm;
    (0..).map(|i| format!("{prefix}{i}")).find(|n| cm.fold(n).owner(2) == shard).expect("some name")
}

/// Every shard agrees; no reservation is left; every member of every channel (view and home)
/// is a user the shard knows; each home's copy has the members its view has.
fn check(sim: &Sim) {
    sim.check_consistent();
    for (i, (st, _)) in sim.shards.iter().enumerate() {
        assert!(st.reserved.is_empty(), "shard {i} still reserves {:?}", st.reserved);
        for (name, v) in &st.channels {
            for uid in v.ch.members.keys() {
                assert!(st.directory.get(uid).is_some(), "shard {i}: {name} keeps departed {uid}");
            }
        }
        for (name, ch) in &st.homes {
            let view = st.channels.get(name).unwrap_or_else(|| panic!("shard {i} is home to {name} without a view"));
            let mut a: Vec<_> = ch.members.keys().collect();
            let mut b: Vec<_> = view.ch.members.keys().collect();
            a.sort();
            b.sort();
            assert_eq!(a, b, "shard {i}: home and view of {name} disagree");
        }
    }
}

fn is_chan_request(e: &Env) -> bool {
    matches!(e, Env::Request(Request::Chan { .. }))
}

fn is_chan_answer(e: &Env) -> bool {
    matches!(e, Env::Answer(Answer::Chan { .. }))
}

/// `#old` (home 0) with `r` (shard 0, its op) and `m` (shard 1); `r` renames it to `#new`
/// (home 1) and the steps are delivered up to the old home's answer (`Moved` numbered).
fn renamed_up_to_the_hand_over(
    sim: &mut Sim,
    old: &str,
    new: &str,
) -> (crate::commands::outbox::Conn, crate::commands::outbox::Conn) {
    let r = sim.client(0, "r");
    let m = sim.client(1, "m");
    sim.feed(0, r, format!("JOIN {old}\r\n").as_bytes());
    sim.feed(1, m, format!("JOIN {old}\r\n").as_bytes());
    sim.feed_only(0, r, format!("RENAME {old} {new} :tidy\r\n").as_bytes());
    // Reserve at home 1, its answer, then Rename at home 0 and its answer.
    assert!(sim.deliver_until(0, 1, is_chan_request));
    assert!(sim.deliver_until(1, 0, is_chan_answer));
    assert!(sim.deliver_until(0, 0, is_chan_request));
    (r, m)
}

/// Once all is delivered: consistent, and every shard sees `new` with one member.
fn left_with_one_member(sim: &mut Sim, new: &str) {
    sim.pump();
    check(sim);
    for (st, _) in &sim.shards {
        let v = st.channels.get(&st.cm.fold(new)).expect("the channel arrived");
        assert_eq!(v.ch.members.len(), 1, "one member left");
    }
}

#[test]
fn a_renamer_that_goes_away_during_the_barrier_still_lands_the_channel() {
    let mut sim = Sim::new(config(), 2, true);
    let (old, new) = (homed_at(&sim, "#old", 0), homed_at(&sim, "#new", 1));
    let (r, m) = renamed_up_to_the_hand_over(&mut sim, &old, &new);
    // Shard 0 applies Moved and waits for shard 1 (the barrier); the connection drops.
    assert!(sim.deliver_until(0, 0, is_chan_answer));
    let (st, out) = &mut sim.shards[0];
    crate::commands::connection::disconnected(st, out, r, "Connection reset by peer");
    left_with_one_member(&mut sim, &new);
    let t = sim.text(1, m);
    assert!(t.contains(&format!("PART {old} :tidy")) && t.contains(&format!("JOIN {new}")), "{t}");
}

/// The member's QUIT reaches the old home after the hand-over (its shard had not applied
/// Moved when it left).
#[test]
fn a_member_whose_departure_asks_the_old_home_too_late_is_no_ghost() {
    let mut sim = Sim::new(config(), 2, true);
    let (old, new) = (homed_at(&sim, "#old", 0), homed_at(&sim, "#new", 1));
    let (_r, m) = renamed_up_to_the_hand_over(&mut sim, &old, &new);
    sim.feed_only(1, m, b"QUIT :bye\r\n");
    left_with_one_member(&mut sim, &new);
}

/// The member's shard applied Moved, not yet Arrived, when it left: its departure knew of
/// neither name.
#[test]
fn a_member_leaving_between_the_two_halves_is_no_ghost() {
    let mut sim = Sim::new(config(), 2, true);
    let (old, new) = (homed_at(&sim, "#old", 0), homed_at(&sim, "#new", 1));
    let (_r, m) = renamed_up_to_the_hand_over(&mut sim, &old, &new);
    assert!(sim.deliver_until(0, 0, is_chan_answer));
    // Moved reaches shard 1 and is applied there; m leaves before Arrived is numbered.
    assert!(sim.deliver_until(0, 1, |e| matches!(e, Env::Ordered(Ordered::Chan(_)))));
    sim.feed_only(1, m, b"QUIT :bye\r\n");
    left_with_one_member(&mut sim, &new);
}

/// A case change keeps the name reserved while the channel is out: a JOIN meanwhile waits
/// (437) instead of taking the name.
#[test]
fn a_case_change_cannot_be_taken_over_by_a_join() {
    let mut sim = Sim::new(config(), 2, true);
    let old = homed_at(&sim, "#case", 0);
    let new = old.to_uppercase();
    let r = sim.client(0, "r");
    let j = sim.client(1, "j");
    sim.feed(0, r, format!("JOIN {old}\r\n").as_bytes());
    sim.feed_only(0, r, format!("RENAME {old} {new}\r\n").as_bytes());
    // Reserve (home 0, no reservation for a case change), its answer, the hand-over.
    assert!(sim.deliver_until(0, 0, is_chan_request));
    assert!(sim.deliver_until(0, 0, is_chan_answer));
    assert!(sim.deliver_until(0, 0, is_chan_request));
    sim.feed_only(1, j, format!("JOIN {old}\r\n").as_bytes());
    assert!(sim.deliver_until(1, 0, is_chan_request));
    sim.pump();
    check(&sim);
    assert!(sim.text(1, j).contains(" 437 "), "{}", sim.text(1, j));
    for (st, _) in &sim.shards {
        let v = st.channels.get(&st.cm.fold(&old)).expect("still there");
        assert_eq!(&*v.ch.name, new.as_str());
        assert_eq!(v.ch.members.len(), 1);
    }
}
