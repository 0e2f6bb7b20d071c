//! HELP (and HELPOP): `HELP [<subject>]` — 704, 705 lines, 706; 524 for an unknown subject.

use super::{CmdResult, Ctx, COMMANDS};
use crate::proto::{Message, Numeric};

/// Usage by subject: one line per command, more for CMODE (one 705 each).
const TOPICS: &[(&str, &str)] = &[
    ("ADMIN", "ADMIN [<server>] — who runs this server"),
    ("AUTHENTICATE", "AUTHENTICATE <mechanism> | <base64> | * — log in with SASL before registering (needs the sasl capability; services check it)"),
    ("AWAY", "AWAY [:<message>] — mark yourself away (no message: back)"),
    ("BATCH", "BATCH +<id> draft/multiline <target> … BATCH -<id> — send the PRIVMSG or NOTICE lines tagged batch=<id> in between as one message (IRCv3 draft/multiline)"),
    ("CAP", "CAP LS [302] | LIST | REQ :<caps> | END — IRCv3 capability negotiation"),
    ("CAPAB", "CAPAB :<tokens> — a linking server's capabilities (TS6)"),
    ("CHATHISTORY", "CHATHISTORY LATEST|BEFORE|AFTER|AROUND <target> <*|msgid=|timestamp=> <limit> | BETWEEN <target> <ref> <ref> <limit> | TARGETS <timestamp=> <timestamp=> <limit> — replay a channel's or a conversation's history (IRCv3 draft/chathistory)"),
    ("CMODE", "Channel modes (MODE <channel> +<letters> [<params>]; ops set them):\n\
b <mask>, e <mask>, I <mask> — ban, ban exception, invite exception; no mask: the list\n\
k <key> — a key to join; l <n> — at most n members\n\
o <nick>, v <nick> — op, voice\n\
i invite only; m moderated (voice to speak); n no messages from outside; p private; s secret; t ops set the topic\n\
C no CTCP but ACTION (404); c no colour codes (404); everyone, ops too\n\
M only users logged in to an account speak, or voice (477); R only they join (477)\n\
S only TLS connections join (489)\n\
Extbans (005 EXTBAN=$,am), in b, e and I: $a any logged-in user; $a:<account mask>\n\
$m:<mask> in b mutes (join, but not speak: 404); in e lifts such a mute"),
    ("CONNECT", "CONNECT <server> [<port>] — link to a server of a [[links]] block now (operators)"),
    ("DIE", "DIE — stop the server (operators, when allow_die is set)"),
    ("DLINE", "DLINE [<minutes>] <ip[/bits]> :<reason> — ban an address or block (operators)"),
    ("HELP", "HELP [<subject>] — this help"),
    ("HELPOP", "HELPOP [<subject>] — the same as HELP"),
    ("INFO", "INFO — about this server"),
    ("KILL", "KILL <nick> [:<reason>] — disconnect a user (operators)"),
    ("KLINE", "KLINE [<minutes>] <user@host> :<reason> — ban user@host masks (operators)"),
    ("INVITE", "INVITE <nick> <channel> — invite someone; INVITE alone lists your invitations"),
    ("ISON", "ISON <nick> [<nick>...] — which of these nicks are online"),
    ("JOIN", "JOIN <channel>[,<channel>] [<key>[,<key>]] — join channels; JOIN 0 leaves all"),
    ("KICK", "KICK <channel> <nick>[,<nick>] [:<reason>] — remove someone from a channel (ops)"),
    ("KNOCK", "KNOCK <channel> [:<message>] — ask the ops of a closed channel for an invitation"),
    ("LINKS", "LINKS [<mask>] — the servers of the network"),
    ("LIST", "LIST [<channels>|<filters>] — channels; filters: >N <N users, C>N C<N created, T>N T<N topic (minutes), masks, !mask"),
    ("LUSERS", "LUSERS — user, channel and server counts"),
    ("MAP", "MAP — the network as a tree, with each server's users (operators)"),
    ("MARKREAD", "MARKREAD <target> [timestamp=<time>] — get or raise your read marker for a channel or nick, shared by your sessions (IRCv3 draft/read-marker)"),
    ("METADATA", "METADATA <target|*> GET <keys> | LIST | SET <key> [:<value>] | CLEAR | SYNC; METADATA * SUB|UNSUB <keys> | SUBS — key/value data on users and channels (ops set a channel's), told to subscribers (IRCv3 draft metadata)"),
    ("MODE", "MODE <channel> [<modes> [<params>]] | MODE <nick> [<modes>] — show or change modes (HELP CMODE: the channel modes and extbans)"),
    ("MONITOR", "MONITOR + <nicks> | - <nicks> | C | L | S — be told when nicks come and go"),
    ("MOTD", "MOTD — the message of the day"),
    ("NAMES", "NAMES <channel>[,<channel>] — who is in a channel"),
    ("NICK", "NICK <nick> — choose or change your nickname"),
    ("NOTICE", "NOTICE <target>[,<target>] :<text> — like PRIVMSG, never answered automatically"),
    ("OPER", "OPER <name> <password> — become an operator"),
    ("PART", "PART <channel>[,<channel>] [:<reason>] — leave channels"),
    ("PASS", "PASS <password> — the connection password, before NICK/USER"),
    ("PING", "PING <token> — the server answers PONG <token>"),
    ("PONG", "PONG <token> — the answer to the server's PING"),
    ("PRIVMSG", "PRIVMSG <target>[,<target>] :<text> — message nicks or channels (@#chan: ops only)"),
    ("QUIT", "QUIT [:<reason>] — leave"),
    ("REDACT", "REDACT <target> <msgid> [:<reason>] — take back a message you sent (channel ops: anyone's in their channel); it leaves the history (IRCv3 draft/message-redaction)"),
    ("REHASH", "REHASH — re-read the configuration; on any error the old one stays (operators)"),
    ("RENAME", "RENAME <channel> <new name> [:<reason>] — rename a channel you are an operator of, keeping its members, modes, topic and history (IRCv3 draft/channel-rename)"),
    ("RESTART", "RESTART — restart the server (operators, when allow_restart is set)"),
    ("SERVER", "SERVER <name> 1 <SID> + :<description> — a server linking in (TS6; after PASS and CAPAB)"),
    ("SQUIT", "SQUIT <server> [:<reason>] — unlink a server: a direct link is closed, a farther one is asked to (operators)"),
    ("SETNAME", "SETNAME :<realname> — change your realname (IRCv3 setname)"),
    ("STATS", "STATS <letter> — server statistics: u uptime, m commands, l server links (operators: every connection); c links blocks, k K-lines, d D-lines, o operators, y classes, S shards (operators)"),
    ("TAGMSG", "TAGMSG <target> — a message of tags only (IRCv3 message-tags)"),
    ("TIME", "TIME — the server's time"),
    ("TOPIC", "TOPIC <channel> [:<topic>] — show or set a channel's topic"),
    ("UNDLINE", "UNDLINE <ip[/bits]> — lift a D-line (operators)"),
    ("UNKLINE", "UNKLINE <user@host> — lift a K-line (operators)"),
    ("USER", "USER <username> 0 * :<realname> — register, with NICK"),
    ("USERHOST", "USERHOST <nick> [<nick>...] — user@host of up to five nicks"),
    ("VERSION", "VERSION — the server's version and features"),
    ("WALLOPS", "WALLOPS :<text> — a message to every +w user (operators)"),
    ("WHO", "WHO <mask> [o][%<fields>[,<token>]] — list users (channel members or a mask)"),
    ("WHOIS", "WHOIS <nick> — about a user"),
    ("WHOWAS", "WHOWAS <nick> [<count>] — about a nick that left"),
];

pub fn help(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let Some(subject) = msg.param(0).filter(|s| !s.is_empty()) else {
        let names: Vec<&str> = COMMANDS.iter().filter(|c| c.for_clients).map(|c| c.name).collect();
        ctx.reply(Numeric::RPL_HELPSTART, &["index", "Commands this server knows (HELP <command> for each):"]);
        for chunk in names.chunks(8) {
            ctx.reply(Numeric::RPL_HELPTXT, &["index", &chunk.join(" ")]);
        }
        ctx.reply(Numeric::RPL_HELPTXT, &["index", "HELP CMODE: the channel modes and extbans"]);
        ctx.reply(Numeric::RPL_ENDOFHELP, &["index", "End of /HELP"]);
        return Ok(());
    };
    let upper = subject.to_ascii_uppercase();
    let Some((name, text)) = TOPICS.iter().find(|(n, _)| *n == upper) else {
        ctx.reply(Numeric::ERR_HELPNOTFOUND, &[subject]);
        return Ok(());
    };
    ctx.reply(Numeric::RPL_HELPSTART, &[name, &format!("Help for {name}")]);
    for line in text.lines() {
        ctx.reply(Numeric::RPL_HELPTXT, &[name, line]);
    }
    ctx.reply(Numeric::RPL_ENDOFHELP, &[name, "End of /HELP"]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_client_command_has_help() {
        for c in COMMANDS.iter().filter(|c| c.for_clients) {
            assert!(TOPICS.iter().any(|(n, _)| *n == c.name), "no help for {}", c.name);
        }
    }

    /// Every channel mode letter 005 CHANMODES and PREFIX advertise has a line in HELP CMODE.
    #[test]
    fn every_channel_mode_has_help() {
        let (_, text) = TOPICS.iter().find(|(n, _)| *n == "CMODE").unwrap();
        for c in crate::commands::info::CHANNEL_MODES.chars() {
            let listed = text.lines().any(|l| {
                l.starts_with(&format!("{c} ")) || l.contains(&format!("; {c} ")) || l.contains(&format!(", {c} "))
            });
            assert!(listed, "no help for channel mode {c}");
        }
        assert!(text.lines().all(|l| l.len() < 400), "each line fits one 705");
    }
}
