//! OPER: `OPER <name> <password>` — 381 and +o on success; 491 when no oper block fits the
//! name and host; 464 for a wrong password. The password hash is checked on a blocking thread
//! (argon2 is slow on purpose); the client's further input waits for the answer.

use super::super::delivery::broadcast;
use super::super::envelope::Env;
use super::super::outbox::{Conn, Outbox};
use super::super::{CmdResult, Ctx};
use super::snotice::snotice;
use crate::err;
use crate::proto::{mask, CaseMapping, Line, Message, Numeric};
use crate::state::client::Wait;
use crate::state::shard::ShardState;
use crate::state::UserModes;

pub fn oper(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let (name, password) = (msg.params[0], msg.params.get(1).copied().unwrap_or(""));
    if msg.params.len() < 2 {
        return Err(err!(ERR_NEEDMOREPARAMS, "OPER"));
    }
    let uid = ctx.me().uid;
    let Some(u) = ctx.st.directory.get(&uid) else { return Ok(()) };
    let (userhost, userip) = (format!("{}@{}", u.user, u.host), format!("{}@{}", u.user, u.ip));
    let block = ctx.st.cfg.opers.iter().find(|o| o.name == name).filter(|o| {
        o.hosts
            .iter()
            .any(|h| mask::matches(CaseMapping::Ascii, h, &userhost) || mask::matches(CaseMapping::Ascii, h, &userip))
    });
    let Some(block) = block else {
        let text = format!("Failed OPER attempt as {name} by {} ({userhost}): no matching oper block", u.nick);
        log::warn!("Oper failed: {text}");
        snotice(ctx.st, ctx.out, &text);
        return Err(err!(ERR_NOOPERHOST));
    };
    let (hash, plain_ok) = (block.password.clone(), block.allow_plaintext);
    let password = password.to_string();
    let conn = ctx.conn;
    let name = name.to_string();
    ctx.me_mut().wait = Some(Wait::Remote);
    ctx.out.blocking(Box::new(move || Env::OperChecked { conn, name, ok: check_password(&hash, &password, plain_ok) }));
    Ok(())
}

/// argon2 or bcrypt by the hash's prefix; plain text only where the oper block allows it.
pub fn check_password(hash: &str, password: &str, plain_ok: bool) -> bool {
    if hash.starts_with("$argon2") {
        use argon2::{PasswordHash, PasswordVerifier};
        return PasswordHash::new(hash)
            .is_ok_and(|h| argon2::Argon2::default().verify_password(password.as_bytes(), &h).is_ok());
    }
    if hash.starts_with("$2") {
        return bcrypt::verify(password, hash).unwrap_or(false);
    }
    plain_ok && !hash.is_empty() && constant_time_eq(hash.as_bytes(), password.as_bytes())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// An argon2id hash of a password, for `rustircd --mkpasswd`.
pub fn hash_password(password: &str) -> String {
    use argon2::password_hash::{rand_core::OsRng, SaltString};
    use argon2::PasswordHasher;
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default().hash_password(password.as_bytes(), &salt).expect("argon2 hashing").to_string()
}

/// The password check came back.
pub fn checked(
    st: &mut ShardState,
    out: &mut dyn Outbox,
    conn: Conn,
    name: String,
    ok: bool,
    now: std::time::Instant,
    unix: u64,
) {
    let Some(c) = st.clients.get_mut(&conn) else { return };
    if c.wait == Some(Wait::Remote) {
        c.wait = None;
    }
    let uid = c.uid;
    let mut ctx = Ctx { st, out, conn, now, unix };
    let who = ctx.st.directory.get(&uid).map(|u| format!("{} ({}@{})", u.nick, u.user, u.host)).unwrap_or_default();
    if !ok {
        ctx.reply(Numeric::ERR_PASSWDMISMATCH, &[]);
        let text = format!("Failed OPER attempt as {name} by {who}: wrong password");
        log::warn!("Oper failed: {text}");
        snotice(ctx.st, ctx.out, &text);
    } else {
        ctx.me_mut().oper = Some(name.clone());
        let before = ctx.st.directory.get(&uid).map(|u| u.modes).unwrap_or_default();
        let mut modes = before;
        modes.set(UserModes::OPER, true);
        modes.set(UserModes::SNOTICE, true);
        modes.set(UserModes::WALLOPS, true);
        ctx.st.directory.set_modes(&uid, modes);
        ctx.st.snotice_targets = None;
        let ack = Some(conn);
        broadcast(ctx.st, ctx.out, || Env::UserModes { uid, modes, ack });
        let nick = ctx.me().target().to_string();
        let mut added = String::from("+");
        for (c, m) in UserModes::TABLE {
            if modes.has(m) && !before.has(m) {
                added.push(c);
            }
        }
        let line = Line::new().source(&nick).verb("MODE").param(&nick).trailing(&added).finish();
        ctx.send(&line);
        ctx.reply(Numeric::RPL_YOUREOPER, &[]);
        // Shown once every shard knows the user is an operator (WHOIS 313 anywhere at once).
        let held = std::mem::take(&mut ctx.st.reply);
        super::super::registration::hold_until_applied(&mut ctx, held);
        log::info!("Oper up: {who} as {name}");
        snotice(ctx.st, ctx.out, &format!("{who} is now an operator ({name})"));
    }
    ctx.flush();
    super::super::connection::resume(st, out, conn, now, unix);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes() {
        let h = hash_password("hunter2");
        assert!(h.starts_with("$argon2id$"));
        assert!(check_password(&h, "hunter2", false));
        assert!(!check_password(&h, "hunter3", false));
        let b = bcrypt::hash("pw", 4).unwrap();
        assert!(check_password(&b, "pw", false));
        assert!(!check_password("plain", "plain", false), "plain text refused unless allowed");
        assert!(check_password("plain", "plain", true));
        assert!(!check_password("plain", "plai", true));
    }
}
