//! Server bans: K-lines (`user@host` masks) and D-lines (IP addresses and CIDR blocks), with an
//! optional expiry, and the line format they are kept in on disk.

use std::net::IpAddr;
use std::sync::Arc;

use crate::proto::{mask, CaseMapping};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BanKind {
    /// `user@host`, matched against the user's host and IP.
    K,
    /// An IP address or CIDR block, matched at connect time.
    D,
}

impl BanKind {
    pub fn letter(self) -> char {
        match self {
            BanKind::K => 'K',
            BanKind::D => 'D',
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ban {
    pub kind: BanKind,
    pub mask: Arc<str>,
    pub reason: Arc<str>,
    pub setter: Arc<str>,
    pub set_at: u64,
    /// UNIX time it lapses; 0 = never.
    pub expires: u64,
}

impl Ban {
    pub fn live(&self, now: u64) -> bool {
        self.expires == 0 || now < self.expires
    }

    /// Whether a connection from `ip` falls under this D-line.
    pub fn matches_ip(&self, ip: IpAddr) -> bool {
        self.kind == BanKind::D && cidr_contains(&self.mask, ip)
    }

    /// Whether `user` at `host`/`ip` falls under this K-line.
    pub fn matches_user(&self, user: &str, host: &str, ip: &str) -> bool {
        if self.kind != BanKind::K {
            return false;
        }
        let (u, h) = self.mask.split_once('@').unwrap_or(("*", &self.mask));
        let cm = CaseMapping::Ascii;
        // A leading ~ on the username (no ident) does not dodge a ban on the name.
        let user_ok = mask::matches(cm, u, user) || mask::matches(cm, u, user.trim_start_matches('~'));
        user_ok && (mask::matches(cm, h, host) || mask::matches(cm, h, ip))
    }

    /// One line of the ban file: `K <set_at> <expires> <setter> <mask> :<reason>`.
    pub fn to_line(&self) -> String {
        format!(
            "{} {} {} {} {} :{}",
            self.kind.letter(),
            self.set_at,
            self.expires,
            self.setter,
            self.mask,
            self.reason
        )
    }

    pub fn from_line(line: &str) -> Option<Ban> {
        let (head, reason) = line.split_once(" :")?;
        let mut it = head.split(' ');
        let kind = match it.next()? {
            "K" => BanKind::K,
            "D" => BanKind::D,
            _ => return None,
        };
        let set_at = it.next()?.parse().ok()?;
        let expires = it.next()?.parse().ok()?;
        let setter = it.next()?.into();
        let mask = it.next()?.into();
        Some(Ban { kind, mask, reason: reason.into(), setter, set_at, expires })
    }
}

/// `1.2.3.4`, `1.2.3.0/24`, `2001:db8::/32` — or a wildcard mask on the address text.
pub fn cidr_contains(spec: &str, ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    let (addr, bits) = match spec.split_once('/') {
        Some((a, b)) => (a, b.parse::<u32>().ok()),
        None => (spec, None),
    };
    let Ok(net) = addr.parse::<IpAddr>() else {
        return mask::matches(CaseMapping::Ascii, spec, &ip.to_string());
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let bits = bits.unwrap_or(32).min(32);
            let m = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
            u32::from(n) & m == u32::from(i) & m
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let bits = bits.unwrap_or(128).min(128);
            let m = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
            u128::from(n) & m == u128::from(i) & m
        }
        _ => false,
    }
}

/// Whether a D-line mask is well formed (an address, a CIDR block, or a wildcard IP mask).
pub fn valid_dline(spec: &str) -> bool {
    match spec.split_once('/') {
        Some((a, b)) => {
            a.parse::<IpAddr>().is_ok_and(|ip| b.parse::<u32>().is_ok_and(|n| n <= if ip.is_ipv4() { 32 } else { 128 }))
        }
        None => {
            spec.parse::<IpAddr>().is_ok()
                || (spec.contains('*') && spec.bytes().all(|b| b.is_ascii_hexdigit() || b".:*?".contains(&b)))
        }
    }
}

/// The address block an IP counts in for per-CIDR limits.
pub fn block_of(ip: IpAddr, v4: u8, v6: u8) -> (IpAddr, u8) {
    match ip {
        IpAddr::V4(a) => {
            let m = if v4 == 0 { 0 } else { u32::MAX << (32 - v4 as u32) };
            (IpAddr::V4((u32::from(a) & m).into()), v4)
        }
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(a4) => block_of(IpAddr::V4(a4), v4, v6),
            None => {
                let m = if v6 == 0 { 0 } else { u128::MAX << (128 - v6 as u32) };
                (IpAddr::V6((u128::from(a) & m).into()), v6)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ban(kind: BanKind, mask: &str) -> Ban {
        Ban { kind, mask: mask.into(), reason: "r".into(), setter: "op".into(), set_at: 1, expires: 0 }
    }

    #[test]
    fn cidr_matching() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(cidr_contains("10.1.2.0/24", ip("10.1.2.99")));
        assert!(!cidr_contains("10.1.2.0/24", ip("10.1.3.1")));
        assert!(cidr_contains("127.0.0.1", ip("127.0.0.1")));
        assert!(cidr_contains("127.0.0.*", ip("127.0.0.7")));
        assert!(!cidr_contains("::ffff:0:0/96", ip("::1")));
        assert!(cidr_contains("2001:db8::/32", ip("2001:db8:1::5")));
        assert!(cidr_contains("10.0.0.0/8", ip("::ffff:10.9.8.7")));
        assert!(valid_dline("10.0.0.0/8") && valid_dline("1.2.3.4") && valid_dline("1.2.*"));
        assert!(!valid_dline("10.0.0.0/33") && !valid_dline("bob@host"));
    }

    #[test]
    fn klines_match_user_and_host_or_ip() {
        let k = ban(BanKind::K, "*bad*@*.example.com");
        assert!(k.matches_user("~thebadguy", "a.example.com", "1.2.3.4"));
        assert!(!k.matches_user("~good", "a.example.com", "1.2.3.4"));
        let k = ban(BanKind::K, "evil@127.0.0.1");
        assert!(k.matches_user("~evil", "localhost", "127.0.0.1"));
    }

    #[test]
    fn file_lines_round_trip() {
        let b = Ban {
            kind: BanKind::D,
            mask: "10.0.0.0/8".into(),
            reason: "go away: now".into(),
            setter: "op".into(),
            set_at: 5,
            expires: 99,
        };
        assert_eq!(Ban::from_line(&b.to_line()), Some(b.clone()));
        assert!(b.live(98) && !b.live(99));
        assert_eq!(Ban::from_line("garbage"), None);
    }

    #[test]
    fn blocks() {
        let (n, bits) = block_of("10.1.2.3".parse().unwrap(), 24, 64);
        assert_eq!((n.to_string(), bits), ("10.1.2.0".to_string(), 24));
    }
}
