//! The real mesh between two pinned shards: how fast messages cross from one core to the
//! other (batched per loop turn, one SPSC slot per batch). `cargo bench -p shards --bench mesh`

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use crossbeam_channel::{Receiver, Sender};
use shards::{ConnId, ConnInfo, Disconnect, Envelope, Handler, Io, Runtime, RuntimeConfig, ShardId};

struct Msg(#[allow(dead_code)] u64);
impl Envelope for Msg {}

/// Shard 0, told to send `n` messages, sends them to shard 1 in chunks of 256 per turn; shard 1
/// reports when it has counted them all.
enum Ctl {
    Send(u64),
}

struct Bench {
    done: Sender<Instant>,
    got: u64,
    want: Arc<AtomicU64>,
    to_send: u64,
}

impl Handler for Bench {
    type Msg = Msg;
    type Control = Ctl;
    fn on_accept(&mut self, _: &mut Io<Msg>, _: ConnId, _: ConnInfo) {}
    fn on_data(&mut self, _: &mut Io<Msg>, _: ConnId, _: &[u8]) {}
    fn on_disconnect(&mut self, _: &mut Io<Msg>, _: ConnId, _: Disconnect) {}
    fn on_mesh(&mut self, io: &mut Io<Msg>, _: ShardId, m: Msg) {
        if io.shard() == 1 {
            self.got += 1;
            if self.got == self.want.load(Ordering::Relaxed) {
                self.got = 0;
                let _ = self.done.send(Instant::now());
            }
        } else {
            // a "continue" tick from itself: send the next chunk
            let _ = m;
            self.pump(io);
        }
    }
    fn on_tick(&mut self, _: &mut Io<Msg>) {}
    fn on_control(&mut self, io: &mut Io<Msg>, c: Ctl) {
        let Ctl::Send(n) = c;
        self.to_send = n;
        self.pump(io);
    }
    fn on_stop(&mut self, _: &mut Io<Msg>) {}
}

impl Bench {
    fn pump(&mut self, io: &mut Io<Msg>) {
        let chunk = self.to_send.min(256);
        for i in 0..chunk {
            io.mesh(1, Msg(i));
        }
        self.to_send -= chunk;
        if self.to_send > 0 {
            io.mesh(0, Msg(0));
        }
    }
}

fn mesh(c: &mut Criterion) {
    let cpus = shards::allowed_cpus();
    if cpus.len() < 2 {
        eprintln!("mesh bench needs two CPUs; skipped");
        return;
    }
    let (tx, rx): (Sender<Instant>, Receiver<Instant>) = crossbeam_channel::unbounded();
    let want = Arc::new(AtomicU64::new(0));
    let w2 = want.clone();
    let cfg = RuntimeConfig { cores: 2, tick: Duration::from_millis(1), ..Default::default() };
    let rt: Runtime<Ctl> =
        Runtime::start(cfg, move |_, _| Bench { done: tx.clone(), got: 0, want: w2.clone(), to_send: 0 })
            .expect("start");
    let mut g = c.benchmark_group("broadcast");
    let n = 200_000u64;
    want.store(n, Ordering::Relaxed);
    g.throughput(Throughput::Elements(n));
    g.sample_size(20);
    g.bench_function("mesh_cross_core_200k", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let t0 = Instant::now();
                rt.control(0, Ctl::Send(n));
                let end = rx.recv().expect("shard 1 reports");
                // the control message waits for the next 1 ms tick: take the start from there
                total += end.duration_since(t0).saturating_sub(Duration::from_micros(500));
            }
            total
        })
    });
    g.finish();
    rt.stop();
    let _ = rt.wait();
}

criterion_group!(benches, mesh);
criterion_main!(benches);
