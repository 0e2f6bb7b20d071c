//! What the fuzz targets run (`fuzz/`), kept in the library so that `cargo test` replays the
//! committed corpus through exactly the same checks (`tests/fuzz_corpus.rs`).

use std::sync::Arc;

use crate::config::Config;
use crate::proto::framer::{Frame, Framer};
use crate::proto::{Line, Message};
use crate::sim::Sim;

/// The framer and the parser on arbitrary bytes: no panic; framed lines hold no CR, LF or
/// NUL; and a parsed message serializes to a line that parses back to the same message.
pub fn parse(data: &[u8]) {
    // Framing in two pieces at every split the input suggests.
    let split = data.first().map_or(0, |&b| b as usize % (data.len() + 1));
    let mut framer = Framer::default();
    let mut lines = Vec::new();
    for part in [&data[..split], &data[split..]] {
        framer.feed(part, |f| {
            if let Frame::Line(l) = f {
                assert!(!l.is_empty() && !l.contains(&b'\r') && !l.contains(&b'\n') && !l.contains(&0));
                lines.push(l.to_vec());
            }
        });
    }
    for raw in lines {
        let text = String::from_utf8_lossy(&raw);
        let Ok(msg) = Message::parse(&text) else { continue };
        let _ = msg.tags().count();
        // Re-serialized, the message reads back the same (verb and parameters). Only real
        // verbs (letters or digits) can: "@x" after the tags would read back as tags.
        if !msg.verb.bytes().all(|b| b.is_ascii_alphanumeric()) {
            continue;
        }
        let mut line = Line::new();
        if let Some(src) = msg.source {
            line = line.source(src);
        }
        line = line.verb(msg.verb);
        if let Some((last, mid)) = msg.params.split_last() {
            if mid.iter().all(|p| !p.is_empty() && !p.starts_with(':') && !p.contains(' ')) {
                for p in mid {
                    line = line.param(p);
                }
                line = line.trailing(last);
                let out = line.finish();
                if out.len() - 2 + 4 > crate::proto::line::MAX_BODY {
                    // Possibly cut to the 512-byte limit (at a character boundary, so up to 3
                    // bytes short of it): what is left need not be the same message.
                    continue;
                }
                let again = String::from_utf8_lossy(&out);
                let back = Message::parse(again.trim_end_matches(['\r', '\n'])).expect("a serialized message parses");
                assert_eq!(back.verb, msg.verb);
                assert_eq!(back.params, msg.params);
            }
        }
    }
}

const CONFIG: &str = r#"
[server]
name = "irc.fuzz.local"
sid = "0FZ"
[[classes]]
name = "all"
hosts = ["*"]
exempt = true
[[opers]]
name = "op"
password = "pw"
allow_plaintext = true
privileges = ["all"]
"#;

/// The command dispatcher on arbitrary input: two shards (the in-process simulator), a few
/// clients (registered, one an operator, one not) spread over them, and the input fed to them
/// interleaved. Nothing may panic, and once all is delivered the shards must agree.
pub fn dispatch(data: &[u8]) {
    static CFG: std::sync::OnceLock<Arc<Config>> = std::sync::OnceLock::new();
    let cfg =
        CFG.get_or_init(|| Arc::new(Config::parse("fuzz", CONFIG, None).expect("the fuzz config is valid"))).clone();
    let mut sim = Sim::new(cfg, 2, false);
    let mut conns =
        vec![(0, sim.client(0, "alice")), (1, sim.client(1, "bob")), (0, sim.client(0, "carol")), (1, sim.connect(1))];
    sim.feed(1, conns[1].1, b"OPER op pw\r\nJOIN #a,#b\r\n");
    sim.feed(0, conns[0].1, b"JOIN #a\r\n");
    // Each chunk: one byte picks the client, the rest (up to the next 0xFF) is its input.
    for chunk in data.split(|&b| b == 0xFF) {
        let Some((&who, bytes)) = chunk.split_first() else { continue };
        let (shard, conn) = conns[who as usize % conns.len()];
        sim.feed(shard, conn, bytes);
        if who == 0xFE {
            // A new connection now and then.
            let s = conns.len() % 2;
            conns.push((s, sim.connect(s)));
        }
    }
    sim.pump();
    sim.check_consistent();
}
