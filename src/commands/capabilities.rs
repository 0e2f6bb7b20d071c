//! The IRCv3 capabilities this server offers: their bits in a client's enabled set, names, and
//! the values advertised to `CAP LS 302`. Kept apart from negotiation (`cap.rs`) so that the
//! many modules that test a client's capabilities depend on this table only.

use crate::config::Config;

/// One bit per capability in a client's enabled set.
pub mod bits {
    pub const CAP_NOTIFY: u64 = 1 << 0;
    pub const MESSAGE_TAGS: u64 = 1 << 1;
    pub const SERVER_TIME: u64 = 1 << 2;
    pub const ECHO_MESSAGE: u64 = 1 << 3;
    pub const MULTI_PREFIX: u64 = 1 << 4;
    pub const USERHOST_IN_NAMES: u64 = 1 << 5;
    pub const AWAY_NOTIFY: u64 = 1 << 6;
    pub const EXTENDED_JOIN: u64 = 1 << 7;
    pub const ACCOUNT_NOTIFY: u64 = 1 << 8;
    pub const ACCOUNT_TAG: u64 = 1 << 9;
    pub const CHGHOST: u64 = 1 << 10;
    pub const INVITE_NOTIFY: u64 = 1 << 11;
    pub const SETNAME: u64 = 1 << 12;
    pub const BATCH: u64 = 1 << 13;
    pub const LABELED_RESPONSE: u64 = 1 << 14;
    pub const STANDARD_REPLIES: u64 = 1 << 15;
    pub const EXTENDED_MONITOR: u64 = 1 << 16;
    pub const STS: u64 = 1 << 17;
    pub const SASL: u64 = 1 << 18;
    pub const CHATHISTORY: u64 = 1 << 19;
    pub const EVENT_PLAYBACK: u64 = 1 << 20;
    pub const READ_MARKER: u64 = 1 << 21;
    pub const REDACTION: u64 = 1 << 22;
    pub const MULTILINE: u64 = 1 << 23;
    pub const METADATA: u64 = 1 << 24;
    pub const CHANNEL_RENAME: u64 = 1 << 25;
}

/// What decides whether a capability is offered now, and its value: the config, whether the
/// client is on TLS, and the SASL mechanisms services announced (`None`: no SASL server).
pub struct Offer<'a> {
    pub cfg: &'a Config,
    pub secure: bool,
    pub mechs: Option<&'a str>,
}

pub struct CapDef {
    pub name: &'static str,
    pub bit: u64,
    /// The value advertised to `CAP LS 302` clients; `None` from it means the capability is not
    /// offered now (sts without TLS, sasl without services).
    pub value: Option<fn(&Offer<'_>) -> Option<String>>,
    /// Clients may not REQ it (sts is a policy, not a mode).
    pub requestable: bool,
}

const fn offer(name: &'static str, bit: u64) -> CapDef {
    CapDef { name, bit, value: None, requestable: true }
}

/// The capabilities this server offers. A capability is listed only once it works across
/// shards exactly as on one shard.
pub static CAPS: &[CapDef] = &[
    offer("account-notify", bits::ACCOUNT_NOTIFY),
    offer("account-tag", bits::ACCOUNT_TAG),
    offer("away-notify", bits::AWAY_NOTIFY),
    offer("batch", bits::BATCH),
    offer("cap-notify", bits::CAP_NOTIFY),
    offer("chghost", bits::CHGHOST),
    offer("draft/channel-rename", bits::CHANNEL_RENAME),
    CapDef { name: "draft/chathistory", bit: bits::CHATHISTORY, value: Some(history_value), requestable: true },
    CapDef { name: "draft/event-playback", bit: bits::EVENT_PLAYBACK, value: Some(history_value), requestable: true },
    CapDef { name: METADATA_CAP, bit: bits::METADATA, value: Some(metadata_value), requestable: true },
    CapDef { name: "draft/multiline", bit: bits::MULTILINE, value: Some(multiline_value), requestable: true },
    CapDef { name: "draft/message-redaction", bit: bits::REDACTION, value: Some(history_value), requestable: true },
    offer("draft/read-marker", bits::READ_MARKER),
    offer("echo-message", bits::ECHO_MESSAGE),
    offer("extended-join", bits::EXTENDED_JOIN),
    offer("extended-monitor", bits::EXTENDED_MONITOR),
    offer("invite-notify", bits::INVITE_NOTIFY),
    offer("labeled-response", bits::LABELED_RESPONSE),
    offer("message-tags", bits::MESSAGE_TAGS),
    offer("multi-prefix", bits::MULTI_PREFIX),
    CapDef { name: "sasl", bit: bits::SASL, value: Some(sasl_value), requestable: true },
    offer("server-time", bits::SERVER_TIME),
    offer("setname", bits::SETNAME),
    offer("standard-replies", bits::STANDARD_REPLIES),
    CapDef { name: "sts", bit: bits::STS, value: Some(sts_value), requestable: false },
    offer("userhost-in-names", bits::USERHOST_IN_NAMES),
];

/// `sts`: on a plain connection, where the TLS port is and for how long to stick to it; on a TLS
/// connection, the duration alone. Not offered without a TLS listener.
fn sts_value(o: &Offer<'_>) -> Option<String> {
    let (cfg, secure) = (o.cfg, o.secure);
    let port = cfg.tls_port()?;
    // Without a [tls] section the default applies, as with one that leaves the key out (0 would
    // tell a client on TLS to drop its policy).
    let duration = cfg.tls.as_ref().map_or(crate::config::DEFAULT_STS_DURATION, |t| t.sts_duration).as_secs();
    Some(if secure { format!("duration={duration}") } else { format!("port={port},duration={duration}") })
}

/// `draft/chathistory` and `draft/event-playback`: offered while history is kept.
fn history_value(o: &Offer<'_>) -> Option<String> {
    o.cfg.history.enabled.then(String::new)
}

/// The draft metadata capability, under the name irctest and Ergo use.
pub const METADATA_CAP: &str = "draft/metadata-3";

/// The metadata capability: its limits.
fn metadata_value(_: &Offer<'_>) -> Option<String> {
    use super::metadata::{MAX_KEYS, MAX_SUBS, MAX_VALUE_BYTES};
    Some(format!("before-connect,max-subs={MAX_SUBS},max-keys={MAX_KEYS},max-value-bytes={MAX_VALUE_BYTES}"))
}

/// `draft/multiline`: its limits.
fn multiline_value(_: &Offer<'_>) -> Option<String> {
    Some(format!("max-bytes={},max-lines={}", MULTILINE_MAX_BYTES, MULTILINE_MAX_LINES))
}

/// A multiline message's limits: its lines' text together, and its lines.
pub const MULTILINE_MAX_BYTES: usize = 4096;
pub const MULTILINE_MAX_LINES: usize = 100;

/// `sasl`: the mechanisms of the services server that announced them (`ENCAP * MECHLIST`);
/// not offered while none is linked.
fn sasl_value(o: &Offer<'_>) -> Option<String> {
    o.mechs.map(str::to_string)
}

/// Whether `c` is offered now (a capability with a value function may not be).
pub fn available(c: &CapDef, o: &Offer<'_>) -> bool {
    c.value.is_none_or(|v| v(o).is_some())
}

pub fn find(name: &str) -> Option<&'static CapDef> {
    CAPS.iter().find(|c| c.name.eq_ignore_ascii_case(name))
}

/// The capabilities offered to a client now, as `name` or `name=value` (302).
pub fn offered(o: &Offer<'_>, with_values: bool) -> Vec<String> {
    CAPS.iter()
        .filter_map(|c| match c.value {
            None => Some(c.name.to_string()),
            Some(v) => {
                let value = v(o)?;
                Some(if with_values && !value.is_empty() { format!("{}={value}", c.name) } else { c.name.to_string() })
            }
        })
        .collect()
}
