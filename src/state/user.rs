//! A user as every shard knows it (the replicated directory entry).

use std::sync::Arc;

use super::location::Location;
use super::uid::Uid;
use crate::proto::Folded;

/// User modes as bit flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserModes(u32);

impl UserModes {
    pub const INVISIBLE: UserModes = UserModes(1 << 0); // +i
    pub const WALLOPS: UserModes = UserModes(1 << 1); // +w
    pub const OPER: UserModes = UserModes(1 << 2); // +o
    pub const SNOTICE: UserModes = UserModes(1 << 3); // +s
    pub const SECURE: UserModes = UserModes(1 << 4); // +Z
    pub const BOT: UserModes = UserModes(1 << 5); // +B
    /// +r: the nick is registered with services and its user identified (services set it).
    pub const REGISTERED: UserModes = UserModes(1 << 6);

    /// Mode letters in display order.
    pub const TABLE: [(char, UserModes); 7] = [
        ('B', UserModes::BOT),
        ('Z', UserModes::SECURE),
        ('i', UserModes::INVISIBLE),
        ('o', UserModes::OPER),
        ('r', UserModes::REGISTERED),
        ('s', UserModes::SNOTICE),
        ('w', UserModes::WALLOPS),
    ];

    pub fn has(self, m: UserModes) -> bool {
        self.0 & m.0 != 0
    }

    pub fn set(&mut self, m: UserModes, on: bool) {
        if on {
            self.0 |= m.0
        } else {
            self.0 &= !m.0
        }
    }

    pub fn from_letter(c: char) -> Option<UserModes> {
        UserModes::TABLE.iter().find(|(l, _)| *l == c).map(|(_, m)| *m)
    }

    /// `+iw` style, or `+` when none.
    pub fn to_mode_string(self) -> String {
        let mut s = String::from("+");
        for (c, m) in UserModes::TABLE {
            if self.has(m) {
                s.push(c);
            }
        }
        s
    }
}

#[derive(Clone, Debug)]
pub struct User {
    pub uid: Uid,
    pub nick: Arc<str>,
    pub folded: Folded,
    /// When the nick was taken (TS6 nick TS).
    pub nick_ts: u64,
    pub user: Arc<str>,
    pub host: Arc<str>,
    pub ip: Arc<str>,
    pub realname: Arc<str>,
    pub modes: UserModes,
    pub away: Option<Arc<str>>,
    pub account: Option<Arc<str>>,
    /// Where the user is: which shard delivers to it, over a connection or a server link.
    pub location: Location,
    pub signon: u64,
    /// Channels the user is in, as this shard's views say (kept by each shard itself).
    pub channels: Vec<Folded>,
    /// IRCv3 metadata (draft/metadata).
    pub metadata: super::Metadata,
}

impl User {
    /// `nick!user@host`, the source of the user's messages.
    pub fn mask(&self) -> String {
        // Built by hand: `format!` costs several times as much, once per message sent.
        let mut m = String::with_capacity(self.nick.len() + self.user.len() + self.host.len() + 2);
        m.push_str(&self.nick);
        m.push('!');
        m.push_str(&self.user);
        m.push('@');
        m.push_str(&self.host);
        m
    }
}
