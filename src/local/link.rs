//! A server link's session on the shard that holds it: who the peer is, what it can do, how far
//! the handshake got, and its counters (STATS l). The connection itself is a `Client` of kind
//! `Server` (framing, queue, timeouts are shared with clients).

use std::time::Instant;

use crate::state::servers::Sid;

/// The TS6 family a peer speaks, told by its SERVER line: hybrid's (5 parameters, the SID in
/// it) or charybdis' (3 parameters, the SID in its PASS; Atheme, solanum). What we send it
/// follows: the UID form (11 parameters or 9).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Form {
    #[default]
    Hybrid,
    Charybdis,
}

/// The form of the user introductions a peer gets: `EUID` if it said so in CAPAB, else the
/// UID of its family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UidForm {
    Hybrid,
    Charybdis,
    Euid,
}

/// How far a link got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The peer opened it and said CAPAB; its SERVER has not come.
    Registering,
    /// We opened it and sent PASS/CAPAB/SERVER; waiting for the peer's.
    Connecting,
    /// Its SERVER is being checked against the network (shard 0 holds the register of SIDs).
    Claiming,
    /// Registered: part of the network, bursting or synced.
    Up,
}

pub struct Link {
    /// Which `[[links]]` block it matched (or was opened for).
    pub block: Option<usize>,
    pub phase: Phase,
    /// We opened the connection (the initiator sends first).
    pub outbound: bool,
    /// The peer's CAPAB tokens.
    pub caps: Vec<Box<str>>,
    /// The peer said `MTAGS`: client-only message tags and TAGMSG cross this link.
    pub tags: bool,
    /// The SID its `PASS <pw> TS 6 :<SID>` gave (a charybdis SERVER line carries none).
    pub pass_sid: Option<Sid>,
    pub form: Form,
    /// Known once its SERVER is accepted.
    pub peer: Option<(Sid, Box<str>)>,
    pub opened: Instant,
    /// When our burst went out, and when the peer's ended (EOB or PONG).
    pub burst_sent: Option<Instant>,
    pub synced: Option<Instant>,
    /// Lines written to the peer (lines read are the connection's `lines_in`).
    pub lines_out: u64,
    /// A server it brought in, waiting for shard 0's register.
    pub pending: Option<Box<crate::state::servers::Server>>,
    /// A user it introduced or renamed, waiting for the nick owner's verdict.
    pub pending_user: Option<Box<crate::state::User>>,
    /// The operator whose SQUIT is closing it: the SQUIT the other links hear names them.
    pub squit_by: Option<crate::state::Uid>,
    /// Channel requests sent to their homes and not yet answered and applied here: the
    /// link's channel lines are pipelined (`commands::link::pipelined`); any other line waits
    /// until this is back to 0.
    pub in_flight: u32,
}

impl Link {
    pub fn new(block: Option<usize>, outbound: bool, now: Instant) -> Link {
        Link {
            block,
            phase: if outbound { Phase::Connecting } else { Phase::Registering },
            outbound,
            caps: Vec::new(),
            tags: false,
            pass_sid: None,
            form: Form::Hybrid,
            peer: None,
            opened: now,
            burst_sent: None,
            synced: None,
            lines_out: 0,
            pending: None,
            pending_user: None,
            squit_by: None,
            in_flight: 0,
        }
    }

    pub fn has_cap(&self, cap: &str) -> bool {
        self.caps.iter().any(|c| c.eq_ignore_ascii_case(cap))
    }

    pub fn uid_form(&self) -> UidForm {
        match self.form {
            _ if self.has_cap("EUID") => UidForm::Euid,
            Form::Charybdis => UidForm::Charybdis,
            Form::Hybrid => UidForm::Hybrid,
        }
    }

    pub fn sid(&self) -> Option<Sid> {
        self.peer.as_ref().map(|(s, _)| *s)
    }

    pub fn is_up(&self) -> bool {
        self.phase == Phase::Up
    }
}

/// A netsplit's users not yet departed (`commands::link::split` departs them a piece a turn).
pub struct Splitting {
    pub users: Vec<(crate::state::Uid, usize)>,
    /// The QUIT reason of each lost server's users (`users` index it).
    pub reasons: Vec<String>,
    /// The servers lost, released at shard 0's register once every user has gone.
    pub sids: Vec<Sid>,
    /// The server the split was seen behind, and how many users it took (for the log line).
    pub sid: Sid,
    pub count: usize,
    pub started: Instant,
}

/// An outgoing link this shard keeps trying (autoconnect or CONNECT): the attempt under way,
/// and when the next may start (the wait doubles after each failure, up to the block's max).
#[derive(Clone, Debug)]
pub struct Dial {
    pub conn: Option<crate::local::conn::Conn>,
    pub next: Instant,
    pub backoff: std::time::Duration,
}
