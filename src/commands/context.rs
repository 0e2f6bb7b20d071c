//! The context a command runs in, its reply sink, and the one error type handlers return.

use std::time::Instant;

use smallvec::SmallVec;

use super::outbox::{Conn, Outbox};
use crate::local::client::Client;
use crate::local::shard::ShardState;
use crate::proto::{Line, Numeric};

/// A refusal: the numeric and its parameters (its fixed text, if any, is added when sent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub numeric: Numeric,
    pub params: SmallVec<[String; 2]>,
}

impl Reply {
    pub fn new(numeric: Numeric, params: &[&str]) -> Reply {
        Reply { numeric, params: params.iter().map(|s| s.to_string()).collect() }
    }

    /// The line it becomes, from `server` to `target`: the one way a `Reply` is written.
    pub fn write(&self, server: &str, target: &str, buf: &mut Vec<u8>) {
        let params: SmallVec<[&str; 4]> = self.params.iter().map(|s| s.as_str()).collect();
        buf.extend_from_slice(&numeric_line(server, target, self.numeric, &params));
    }
}

pub type CmdResult = Result<(), Reply>;

/// `Err(err!(ERR_NOSUCHNICK, nick))` — a refusal with its parameters.
#[macro_export]
macro_rules! err {
    ($num:ident $(, $p:expr)* $(,)?) => {
        $crate::commands::Reply::new($crate::proto::Numeric::$num, &[$(&$p),*])
    };
}

pub struct Ctx<'a> {
    pub st: &'a mut ShardState,
    pub out: &'a mut dyn Outbox,
    pub conn: Conn,
    pub now: Instant,
    pub unix: u64,
}

/// Builds a numeric line from this server: `:server NNN target params... [:text]`. Without a
/// fixed text, the last parameter is written as trailing.
pub fn numeric_line(server: &str, target: &str, n: Numeric, params: &[&str]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(128);
    numeric_into(&mut buf, server, target, n, params);
    buf
}

/// [`numeric_line`] appended to `buf`.
pub fn numeric_into(buf: &mut Vec<u8>, server: &str, target: &str, n: Numeric, params: &[&str]) {
    let mut l = Line::after(std::mem::take(buf)).source(server).verb(n.as_str()).param(target);
    match n.text() {
        Some(text) => {
            for p in params {
                l = l.param(p);
            }
            l = l.trailing(text);
        }
        None => {
            if let Some((last, mid)) = params.split_last() {
                for p in mid {
                    l = l.param(p);
                }
                l = l.trailing(last);
            }
        }
    }
    *buf = l.finish();
}

impl Ctx<'_> {
    /// The client whose command is running (it exists for the whole command).
    pub fn me(&self) -> &Client {
        self.st.clients.get(&self.conn).expect("the running client exists")
    }

    pub fn me_mut(&mut self) -> &mut Client {
        self.st.clients.get_mut(&self.conn).expect("the running client exists")
    }

    pub fn server(&self) -> &str {
        &self.st.cfg.server.name
    }

    /// Appends a numeric to the reply.
    pub fn reply(&mut self, n: Numeric, params: &[&str]) {
        // Written straight into the reply buffer (no line or target string of its own: a
        // registration's ~30 numerics were ~40,000 instructions of allocation, callgrind).
        let st = &mut *self.st;
        let target = st.clients.get(&self.conn).expect("the running client exists").target();
        numeric_into(&mut st.reply, &st.cfg.server.name, target, n, params);
    }

    pub fn reply_err(&mut self, r: &Reply) {
        let target = self.me().target().to_string();
        r.write(&self.st.cfg.server.name, &target, &mut self.st.reply);
    }

    /// Appends a finished line to the reply.
    pub fn send(&mut self, line: &[u8]) {
        self.st.reply.extend_from_slice(line);
    }

    /// Sends what the command produced for its client.
    pub fn flush(&mut self) {
        if self.st.reply.is_empty() {
            return;
        }
        let conn = self.conn;
        let buf = std::mem::take(&mut self.st.reply);
        super::delivery::reply(self.st, self.out, conn, &buf);
        self.st.reply = buf;
        self.st.reply.clear();
    }
}
