//! Criterion benchmarks of the IRC core (no sockets): the state tables, the WHOWAS cache,
//! channel fan-out to 10/100/1000 members on one shard and across two, one line's dispatch,
//! mesh batching, modes.
//! `cargo bench --bench core`

use std::sync::Arc;

use criterion::{black_box, criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use rustircd::config::Config;
use rustircd::proto::modes::parse_channel_modes;
use rustircd::proto::CaseMapping;
use rustircd::sim::Sim;
use rustircd::state::channel::{Channel, Mutation, Status};
use rustircd::state::whowas::{WasEntry, Whowas};
use rustircd::state::{Directory, Location, UidAllocator, User, UserModes};
use shards::{BatchPolicy, Batcher, Envelope};

fn user(a: &mut UidAllocator, nick: &str) -> User {
    User {
        uid: a.allocate(),
        nick: nick.into(),
        folded: CaseMapping::Ascii.fold(nick),
        nick_ts: 0,
        user: "~user".into(),
        host: "127.0.0.1".into(),
        ip: "127.0.0.1".into(),
        realname: "Real Name".into(),
        modes: UserModes::default(),
        away: None,
        account: None,
        location: Location::local(0),
        signon: 0,
        channels: Vec::new(),
        metadata: None,
    }
}

fn database(c: &mut Criterion) {
    let mut g = c.benchmark_group("database");
    let cm = CaseMapping::Ascii;
    let mut a = UidAllocator::new("0RC", 0, 1);
    let users: Vec<User> = (0..10_000).map(|i| user(&mut a, &format!("nick{i}"))).collect();
    g.bench_function("user_add_remove", |b| {
        let mut d = Directory::default();
        let u = users[0].clone();
        b.iter(|| {
            d.insert(u.clone());
            d.remove(&u.uid)
        })
    });
    let mut d = Directory::default();
    for u in &users {
        d.insert(u.clone());
    }
    let probe = cm.fold("NICK5000");
    g.bench_function("lookup_by_nick_10k", |b| b.iter(|| d.by_nick(black_box(&probe)).map(|u| u.uid)));
    g.bench_function("lookup_by_nick_casefold_10k", |b| {
        b.iter(|| d.by_nick(&cm.fold(black_box("NiCk5000"))).map(|u| u.uid))
    });
    let uid = users[42].uid;
    g.bench_function("user_update_rename", |b| {
        let mut flip = false;
        b.iter(|| {
            flip = !flip;
            let n = if flip { "renamed42" } else { "nick42" };
            d.rename(&uid, n.into(), cm.fold(n), 1);
        })
    });
    let mut ch = Channel::new("#bench".into(), cm.fold("#bench"), 0, 1);
    for u in users.iter().take(1000) {
        ch.apply(&Mutation::Join { uid: u.uid, status: Status::NONE, created: None, at: Location::local(0) });
    }
    g.bench_function("channel_join_leave_1000", |b| {
        let extra = users[5000].uid;
        b.iter(|| {
            ch.apply(&Mutation::Join { uid: extra, status: Status::NONE, created: None, at: Location::local(0) });
            ch.apply(&Mutation::Leave { uid: extra })
        })
    });
    let member = users[500].uid;
    g.bench_function("membership_check_1000", |b| b.iter(|| ch.status(black_box(&member))));
    g.finish();
}

fn cache(c: &mut Criterion) {
    let mut g = c.benchmark_group("cache");
    let cm = CaseMapping::Ascii;
    let entry = |i: usize| WasEntry {
        folded: cm.fold(&format!("gone{i}")),
        nick: format!("gone{i}").into(),
        user: "~u".into(),
        host: "h".into(),
        realname: "r".into(),
        server: "s".into(),
        when: 100,
    };
    g.bench_function("whowas_record", |b| {
        let mut w = Whowas::new(10_000, 86_400);
        let mut i = 0;
        b.iter(|| {
            i += 1;
            w.record(entry(i % 20_000))
        })
    });
    let mut w = Whowas::new(10_000, 86_400);
    for i in 0..10_000 {
        w.record(entry(i));
    }
    let probe = cm.fold("gone9000");
    g.bench_function("whowas_lookup_10k", |b| b.iter(|| w.lookup(black_box(&probe), 1, 200).len()));
    g.finish();
}

/// A server of `cores` shards with `members` clients in #bench, spread round-robin.
fn channel_of(cores: usize, members: usize) -> (Sim, rustircd::commands::Conn) {
    let mut sim = Sim::new(Arc::new(Config::embedded()), cores, false);
    let mut first = None;
    for i in 0..members {
        let shard = i % cores;
        let c = sim.client(shard, &format!("m{i}"));
        sim.feed(shard, c, b"JOIN #bench\r\n");
        first.get_or_insert(c);
    }
    (sim, first.expect("at least one member"))
}

fn broadcast(c: &mut Criterion) {
    let mut g = c.benchmark_group("broadcast");
    for n in [10usize, 100, 1000] {
        let (mut sim, sender) = channel_of(1, n);
        g.throughput(Throughput::Elements(n as u64 - 1));
        g.bench_with_input(BenchmarkId::new("local_members", n), &n, |b, _| {
            b.iter(|| sim.feed(0, sender, b"PRIVMSG #bench :hello everyone, this is a benchmark\r\n"))
        });
    }
    for n in [10usize, 100, 1000] {
        let (mut sim, sender) = channel_of(2, n);
        g.throughput(Throughput::Elements(n as u64 - 1));
        g.bench_with_input(BenchmarkId::new("two_shards", n), &n, |b, _| {
            b.iter(|| sim.feed(0, sender, b"PRIVMSG #bench :hello everyone, this is a benchmark\r\n"))
        });
    }
    g.finish();
}

/// One line from a registered client through the whole input path (framing, flood control,
/// the table lookup, the handler, the reply): PING has a short handler, an unknown verb none.
fn dispatch(c: &mut Criterion) {
    let mut g = c.benchmark_group("dispatch");
    let mut sim = Sim::new(Arc::new(Config::embedded()), 1, false);
    let me = sim.client(0, "bencher");
    g.bench_function("ping", |b| b.iter(|| sim.feed(0, me, black_box(b"PING :token\r\n"))));
    g.bench_function("pong", |b| b.iter(|| sim.feed(0, me, black_box(b"PONG :token\r\n"))));
    g.bench_function("unknown", |b| b.iter(|| sim.feed(0, me, black_box(b"FOOBAR x\r\n"))));
    g.finish();
}

struct Msg(#[allow(dead_code)] u64);
impl Envelope for Msg {
    fn weight(&self) -> usize {
        64
    }
}

fn batch_optimizer(c: &mut Criterion) {
    let mut g = c.benchmark_group("batch_optimizer");
    for per_turn in [1usize, 16, 256] {
        g.throughput(Throughput::Elements(per_turn as u64));
        g.bench_with_input(BenchmarkId::new("push_take", per_turn), &per_turn, |b, &k| {
            b.iter_batched_ref(
                || Batcher::<Msg>::new(4, BatchPolicy::default()),
                |batcher| {
                    for i in 0..k {
                        batcher.push(1 + i % 3, Msg(i as u64));
                    }
                    let mut n = 0;
                    for to in 1..4 {
                        while let Some(batch) = batcher.take(to) {
                            n += batch.len();
                        }
                    }
                    n
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

fn user_modes(c: &mut Criterion) {
    let mut g = c.benchmark_group("user_modes");
    g.bench_function("render_and_parse", |b| {
        b.iter(|| {
            let mut m = UserModes::default();
            for ch in black_box("+iws-s+o").chars() {
                if let Some(f) = UserModes::from_letter(ch) {
                    m.set(f, true);
                }
            }
            m.to_mode_string()
        })
    });
    g.bench_function("channel_mode_string", |b| {
        b.iter(|| parse_channel_modes(black_box("+ntlkov-b"), black_box(&["10", "key", "alice", "bob", "*!*@bad"])))
    });
    g.finish();
}

criterion_group!(benches, database, cache, broadcast, dispatch, batch_optimizer, user_modes);
criterion_main!(benches);
