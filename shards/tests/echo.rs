//! The runtime on its own: two shards, an echo service that tags each reply with the shard that
//! holds the connection, and a mesh relay between connections on different shards.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use shards::{ConnId, ConnInfo, Disconnect, Envelope, Handler, Io, ListenSpec, Runtime, RuntimeConfig, ShardId};

struct Relay(Vec<u8>);
impl Envelope for Relay {}

enum Ctl {}

#[derive(Default)]
struct Echo {
    conns: Vec<ConnId>,
}

impl Handler for Echo {
    type Msg = Relay;
    type Control = Ctl;
    fn on_accept(&mut self, io: &mut Io<Relay>, conn: ConnId, info: ConnInfo) {
        self.conns.push(conn);
        let line = format!("shard {} port {}\n", io.shard(), info.peer.port());
        io.send(conn, line.as_bytes());
    }
    fn on_data(&mut self, io: &mut Io<Relay>, conn: ConnId, data: &[u8]) {
        if data.starts_with(b"relay ") {
            // to every other shard, which writes it to all its connections
            for s in 0..io.cores() {
                if s != io.shard() {
                    io.mesh(s, Relay(data[6..].to_vec()));
                }
            }
        } else if data.starts_with(b"bye") {
            io.send(conn, b"later\n");
            io.close(conn);
        } else {
            io.send(conn, data);
        }
    }
    fn on_disconnect(&mut self, _io: &mut Io<Relay>, conn: ConnId, _why: Disconnect) {
        self.conns.retain(|c| *c != conn);
    }
    fn on_mesh(&mut self, io: &mut Io<Relay>, _from: ShardId, msg: Relay) {
        for &c in &self.conns {
            io.send(c, &msg.0);
        }
    }
    fn on_tick(&mut self, _io: &mut Io<Relay>) {}
    fn on_control(&mut self, _io: &mut Io<Relay>, c: Ctl) {
        match c {}
    }
    fn on_stop(&mut self, io: &mut Io<Relay>) {
        for &c in &self.conns {
            io.send(c, b"stopping\n");
            io.close(c);
        }
    }
}

fn line(r: &mut BufReader<TcpStream>) -> String {
    let mut s = String::new();
    r.read_line(&mut s).unwrap();
    s
}

#[test]
fn echo_steering_relay_and_stop() {
    let cfg = RuntimeConfig {
        cores: 2,
        listeners: vec![ListenSpec { addr: "127.0.0.1:0".parse().unwrap(), tag: 0, tls: None, websocket: false }],
        ..Default::default()
    };
    let rt: Runtime<Ctl> = Runtime::start(cfg, |_, _| Echo::default()).expect("start");
    let addr = rt.bound()[0];
    let mut clients = Vec::new();
    let mut on = [0usize; 2];
    // The kernel spreads connections by a hash: connect until both shards hold two.
    while on[0] < 2 || on[1] < 2 {
        assert!(clients.len() < 64, "connections never reached both shards: {on:?}");
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let port = s.local_addr().unwrap().port();
        let mut r = BufReader::new(s);
        let hello = line(&mut r);
        let shard: usize = hello.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert!(hello.ends_with(&format!("port {port}\n")), "{hello}");
        on[shard] += 1;
        clients.push((r, shard));
    }
    assert_eq!(rt.open_connections(), clients.len());
    // echo
    for (r, _) in clients.iter_mut() {
        r.get_mut().write_all(b"ping\n").unwrap();
        assert_eq!(line(r), "ping\n");
    }
    // relay from a shard-0 client reaches every shard-1 client
    let i0 = clients.iter().position(|(_, s)| *s == 0).unwrap();
    clients[i0].0.get_mut().write_all(b"relay hi\n").unwrap();
    for (r, s) in clients.iter_mut() {
        if *s == 1 {
            assert_eq!(line(r), "hi\n");
        }
    }
    // a handler-initiated close delivers the last line first
    let (mut r, _) = clients.pop().unwrap();
    r.get_mut().write_all(b"bye\n").unwrap();
    assert_eq!(line(&mut r), "later\n");
    assert_eq!(line(&mut r), "");
    // stop: every remaining client gets its goodbye and EOF
    rt.stop();
    for (r, _) in clients.iter_mut() {
        assert_eq!(line(r), "stopping\n");
        assert_eq!(line(r), "");
    }
    rt.wait().unwrap();
}
