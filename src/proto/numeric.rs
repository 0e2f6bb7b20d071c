//! Numeric replies as one enum with their RFC names. Each carries its three-digit code and,
//! where the reply has a fixed text, that text (the trailing parameter servers conventionally send).
//!
//! Every numeric is one row of the `numerics!` table below: name, code as sent on the wire, where
//! it is defined (the variant's doc) and, optionally, its fixed text. The macro expands the rows
//! into the enum and its lookups, so a numeric is written once and its copies cannot drift apart.

#![allow(non_camel_case_types)]

/// The enum discriminant of a wire code such as `"001"`, computed at compile time. Writing each
/// code once, as the wire spells it, serves both `as_str` and `code` without padding at run time;
/// a code that is not three digits fails the build.
const fn parse_code(code: &str) -> u16 {
    let b = code.as_bytes();
    assert!(b.len() == 3, "a numeric code is three digits");
    let mut n = 0;
    let mut i = 0;
    while i < 3 {
        assert!(b[i].is_ascii_digit(), "a numeric code is three digits");
        n = n * 10 + (b[i] - b'0') as u16;
        i += 1;
    }
    n
}

/// Rows are `NAME = "code", "origin" [, "fixed text"];`.
macro_rules! numerics {
    (@text) => { None };
    (@text $text:literal) => { Some($text) };
    ($($name:ident = $code:literal, $origin:literal $(, $text:literal)?;)*) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u16)]
        pub enum Numeric {
            $(#[doc = $origin] $name = parse_code($code),)*
        }

        impl Numeric {
            /// Every numeric, in table order, for the consistency test.
            #[cfg(test)]
            const ALL: &'static [Numeric] = &[$(Numeric::$name),*];

            pub fn code(self) -> u16 {
                self as u16
            }

            /// The three-digit code as written on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Numeric::$name => $code,)*
                }
            }

            /// The RFC name, e.g. `ERR_NICKNAMEINUSE`.
            pub fn name(self) -> &'static str {
                match self {
                    $(Numeric::$name => stringify!($name),)*
                }
            }

            /// The fixed text of the reply, if it has one.
            pub fn text(self) -> Option<&'static str> {
                match self {
                    $(Numeric::$name => numerics!(@text $($text)?),)*
                }
            }
        }
    };
}

numerics! {
    RPL_WELCOME           = "001", "RFC 2812";
    RPL_YOURHOST          = "002", "RFC 2812";
    RPL_CREATED           = "003", "RFC 2812";
    RPL_MYINFO            = "004", "RFC 2812";
    RPL_ISUPPORT          = "005", "Modern",        "are supported by this server";
    RPL_MAP               = "015", "ircd-ratbox/Solanum";
    RPL_MAPEND            = "017", "ircd-ratbox/Solanum", "End of /MAP";
    RPL_STATSLINKINFO     = "211", "RFC 2812";
    RPL_STATSCOMMANDS     = "212", "RFC 2812";
    RPL_STATSCLINE        = "213", "RFC 1459";
    RPL_STATSILINE        = "215", "RFC 1459";
    RPL_STATSKLINE        = "216", "RFC 1459";
    RPL_STATSYLINE        = "218", "RFC 1459";
    RPL_ENDOFSTATS        = "219", "RFC 2812",      "End of /STATS report";
    RPL_UMODEIS           = "221", "RFC 2812";
    RPL_STATSDLINE        = "225", "ircd-hybrid";
    RPL_STATSUPTIME       = "242", "RFC 2812";
    RPL_STATSOLINE        = "243", "RFC 2812";
    RPL_STATSDEBUG        = "249", "ircd-hybrid (free-form STATS lines)";
    RPL_LUSERCLIENT       = "251", "RFC 2812";
    RPL_LUSEROP           = "252", "RFC 2812",      "operator(s) online";
    RPL_LUSERUNKNOWN      = "253", "RFC 2812",      "unknown connection(s)";
    RPL_LUSERCHANNELS     = "254", "RFC 2812",      "channels formed";
    RPL_LUSERME           = "255", "RFC 2812";
    RPL_ADMINME           = "256", "RFC 2812",      "Administrative info";
    RPL_ADMINLOC1         = "257", "RFC 2812";
    RPL_ADMINLOC2         = "258", "RFC 2812";
    RPL_ADMINEMAIL        = "259", "RFC 2812";
    RPL_TRYAGAIN          = "263", "RFC 2812",
        "Server load is temporarily too heavy. Please wait a while and try again.";
    RPL_LOCALUSERS        = "265", "Modern";
    RPL_GLOBALUSERS       = "266", "Modern";
    RPL_WHOISCERTFP       = "276", "Modern";
    RPL_NONE              = "300", "RFC 2812";
    RPL_AWAY              = "301", "RFC 2812";
    RPL_USERHOST          = "302", "RFC 2812";
    RPL_ISON              = "303", "RFC 2812";
    RPL_UNAWAY            = "305", "RFC 2812",      "You are no longer marked as being away";
    RPL_NOWAWAY           = "306", "RFC 2812",      "You have been marked as being away";
    RPL_WHOISREGNICK      = "307", "Modern",        "has identified for this nick";
    RPL_WHOISUSER         = "311", "RFC 2812";
    RPL_WHOISSERVER       = "312", "RFC 2812";
    RPL_WHOISOPERATOR     = "313", "RFC 2812",      "is an IRC operator";
    RPL_WHOWASUSER        = "314", "RFC 2812";
    RPL_ENDOFWHO          = "315", "RFC 2812",      "End of WHO list";
    RPL_WHOISIDLE         = "317", "RFC 2812",      "seconds idle, signon time";
    RPL_ENDOFWHOIS        = "318", "RFC 2812",      "End of /WHOIS list";
    RPL_WHOISCHANNELS     = "319", "RFC 2812";
    RPL_WHOISSPECIAL      = "320", "Modern";
    RPL_LISTSTART         = "321", "RFC 2812",      "Users  Name";
    RPL_LIST              = "322", "RFC 2812";
    RPL_LISTEND           = "323", "RFC 2812",      "End of /LIST";
    RPL_CHANNELMODEIS     = "324", "RFC 2812";
    RPL_CREATIONTIME      = "329", "Modern";
    RPL_WHOISACCOUNT      = "330", "Modern",        "is logged in as";
    RPL_NOTOPIC           = "331", "RFC 2812",      "No topic is set";
    RPL_TOPIC             = "332", "RFC 2812";
    RPL_TOPICWHOTIME      = "333", "Modern";
    RPL_WHOISBOT          = "335", "Modern",        "is a bot";
    RPL_INVITELIST        = "336", "Modern (invites pending for the user)";
    RPL_ENDOFINVITELIST   = "337", "Modern",        "End of /INVITE list";
    RPL_WHOISACTUALLY     = "338", "Modern",        "is actually using host";
    RPL_INVITING          = "341", "RFC 2812";
    RPL_INVEXLIST         = "346", "RFC 2812";
    RPL_ENDOFINVEXLIST    = "347", "RFC 2812",      "End of Channel Invite Exception List";
    RPL_EXCEPTLIST        = "348", "RFC 2812";
    RPL_ENDOFEXCEPTLIST   = "349", "RFC 2812",      "End of Channel Exception List";
    RPL_VERSION           = "351", "RFC 2812";
    RPL_WHOREPLY          = "352", "RFC 2812";
    RPL_NAMREPLY          = "353", "RFC 2812";
    RPL_WHOSPCRPL         = "354", "WHOX";
    RPL_LINKS             = "364", "RFC 2812";
    RPL_ENDOFLINKS        = "365", "RFC 2812",      "End of /LINKS list";
    RPL_ENDOFNAMES        = "366", "RFC 2812",      "End of /NAMES list";
    RPL_BANLIST           = "367", "RFC 2812";
    RPL_ENDOFBANLIST      = "368", "RFC 2812",      "End of Channel Ban List";
    RPL_ENDOFWHOWAS       = "369", "RFC 2812",      "End of WHOWAS";
    RPL_INFO              = "371", "RFC 2812";
    RPL_MOTD              = "372", "RFC 2812";
    RPL_ENDOFINFO         = "374", "RFC 2812",      "End of /INFO list";
    RPL_MOTDSTART         = "375", "RFC 2812";
    RPL_ENDOFMOTD         = "376", "RFC 2812",      "End of /MOTD command";
    RPL_WHOISHOST         = "378", "Modern";
    RPL_WHOISMODES        = "379", "Modern";
    RPL_YOUREOPER         = "381", "RFC 2812",      "You are now an IRC operator";
    RPL_REHASHING         = "382", "RFC 2812",      "Rehashing";
    RPL_TIME              = "391", "RFC 2812";
    ERR_UNKNOWNERROR      = "400", "Modern";
    ERR_NOSUCHNICK        = "401", "RFC 2812",      "No such nick/channel";
    ERR_NOSUCHSERVER      = "402", "RFC 2812",      "No such server";
    ERR_NOSUCHCHANNEL     = "403", "RFC 2812",      "No such channel";
    ERR_CANNOTSENDTOCHAN  = "404", "RFC 2812; sent with the reason (+n, +m, +C, +c, a ban, a mute)";
    ERR_TOOMANYCHANNELS   = "405", "RFC 2812",      "You have joined too many channels";
    ERR_WASNOSUCHNICK     = "406", "RFC 2812",      "There was no such nickname";
    ERR_TOOMANYTARGETS    = "407", "RFC 2812",      "Too many recipients";
    ERR_NOORIGIN          = "409", "RFC 2812",      "No origin specified";
    ERR_INVALIDCAPCMD     = "410", "IRCv3",         "Invalid CAP subcommand";
    ERR_NORECIPIENT       = "411", "RFC 2812";
    ERR_NOTEXTTOSEND      = "412", "RFC 2812",      "No text to send";
    ERR_INPUTTOOLONG      = "417", "Modern",        "Input line was too long";
    ERR_UNKNOWNCOMMAND    = "421", "RFC 2812",      "Unknown command";
    ERR_NOMOTD            = "422", "RFC 2812",      "MOTD File is missing";
    ERR_NOADMININFO       = "423", "RFC 2812",      "No administrative info available";
    ERR_NONICKNAMEGIVEN   = "431", "RFC 2812",      "No nickname given";
    ERR_ERRONEUSNICKNAME  = "432", "RFC 2812",      "Erroneous nickname";
    ERR_NICKNAMEINUSE     = "433", "RFC 2812",      "Nickname is already in use";
    ERR_NICKCOLLISION     = "436", "RFC 2812",      "Nickname collision KILL";
    ERR_UNAVAILRESOURCE   = "437", "RFC 2812",      "Nick/channel is temporarily unavailable";
    ERR_USERNOTINCHANNEL  = "441", "RFC 2812",      "They aren't on that channel";
    ERR_NOTONCHANNEL      = "442", "RFC 2812",      "You're not on that channel";
    ERR_USERONCHANNEL     = "443", "RFC 2812",      "is already on channel";
    ERR_NOTREGISTERED     = "451", "RFC 2812",      "You have not registered";
    ERR_NEEDMOREPARAMS    = "461", "RFC 2812",      "Not enough parameters";
    ERR_ALREADYREGISTERED = "462", "RFC 2812",      "You may not reregister";
    ERR_PASSWDMISMATCH    = "464", "RFC 2812",      "Password incorrect";
    ERR_YOUREBANNEDCREEP  = "465", "RFC 2812",      "You are banned from this server";
    ERR_KEYSET            = "467", "RFC 2812",      "Channel key already set";
    ERR_CHANNELISFULL     = "471", "RFC 2812",      "Cannot join channel (+l)";
    ERR_UNKNOWNMODE       = "472", "RFC 2812",      "is unknown mode char to me";
    ERR_INVITEONLYCHAN    = "473", "RFC 2812",      "Cannot join channel (+i)";
    ERR_BANNEDFROMCHAN    = "474", "RFC 2812",      "Cannot join channel (+b)";
    ERR_BADCHANNELKEY     = "475", "RFC 2812",      "Cannot join channel (+k)";
    ERR_BADCHANMASK       = "476", "RFC 2812",      "Bad Channel Mask";
    ERR_NEEDREGGEDNICK    = "477", "ircdocs (ircd-hybrid, InspIRCd): +R and +M, with the reason";
    ERR_BANLISTFULL       = "478", "RFC 2812",      "Channel list is full";
    ERR_NOPRIVILEGES      = "481", "RFC 2812",      "Permission Denied- You're not an IRC operator";
    ERR_CHANOPRIVSNEEDED  = "482", "RFC 2812",      "You're not channel operator";
    ERR_CANTKILLSERVER    = "483", "RFC 2812",      "You can't kill a server!";
    ERR_SECUREONLYCHAN    = "489", "ircdocs (ircd-hybrid's ERR_SSLONLYCHAN): +S, with the reason";
    ERR_NOOPERHOST        = "491", "RFC 2812",      "No O-lines for your host";
    ERR_UMODEUNKNOWNFLAG  = "501", "RFC 2812",      "Unknown MODE flag";
    ERR_USERSDONTMATCH    = "502", "RFC 2812",      "Can't change mode for other users";
    ERR_HELPNOTFOUND      = "524", "Modern",        "No help available on this topic";
    ERR_INVALIDKEY        = "525", "Modern",        "Key is not well-formed";
    RPL_STARTTLS          = "670", "Modern",        "STARTTLS successful, proceed with TLS handshake";
    RPL_WHOISSECURE       = "671", "Modern",        "is using a secure connection";
    ERR_STARTTLS          = "691", "Modern",        "STARTTLS failed";
    ERR_INVALIDMODEPARAM  = "696", "Modern";
    RPL_HELPSTART         = "704", "Modern";
    RPL_HELPTXT           = "705", "Modern";
    RPL_ENDOFHELP         = "706", "Modern";
    RPL_KNOCK             = "710", "Modern",        "has asked for an invite";
    RPL_KNOCKDLVR         = "711", "Modern",        "Your KNOCK has been delivered";
    ERR_TOOMANYKNOCK      = "712", "Modern",        "Too many KNOCKs";
    ERR_CHANOPEN          = "713", "Modern",        "Channel is open";
    ERR_KNOCKONCHAN       = "714", "Modern",        "You are already on that channel";
    ERR_NOPRIVS           = "723", "Modern",        "Insufficient oper privileges";
    RPL_MONONLINE         = "730", "IRCv3 MONITOR";
    RPL_MONOFFLINE        = "731", "IRCv3 MONITOR";
    RPL_MONLIST           = "732", "IRCv3 MONITOR";
    RPL_ENDOFMONLIST      = "733", "IRCv3 MONITOR", "End of MONITOR list";
    ERR_MONLISTFULL       = "734", "IRCv3 MONITOR", "Monitor list is full";
    ERR_MLOCKRESTRICTED   = "742", "Solanum",       "MODE cannot be set due to channel having an active MLOCK restriction policy";
    RPL_WHOISKEYVALUE     = "760", "IRCv3 metadata";
    RPL_KEYVALUE          = "761", "IRCv3 metadata";
    RPL_KEYNOTSET         = "766", "IRCv3 metadata", "key not set";
    RPL_METADATASUBOK     = "770", "IRCv3 metadata";
    RPL_METADATAUNSUBOK   = "771", "IRCv3 metadata";
    RPL_METADATASUBS      = "772", "IRCv3 metadata";
    RPL_LOGGEDIN          = "900", "IRCv3 SASL";
    RPL_LOGGEDOUT         = "901", "IRCv3 SASL",    "You are now logged out";
    ERR_NICKLOCKED        = "902", "IRCv3 SASL",    "You must use a nick assigned to you";
    RPL_SASLSUCCESS       = "903", "IRCv3 SASL",    "SASL authentication successful";
    ERR_SASLFAIL          = "904", "IRCv3 SASL",    "SASL authentication failed";
    ERR_SASLTOOLONG       = "905", "IRCv3 SASL",    "SASL message too long";
    ERR_SASLABORTED       = "906", "IRCv3 SASL",    "SASL authentication aborted";
    ERR_SASLALREADY       = "907", "IRCv3 SASL",    "You have already authenticated using SASL";
    RPL_SASLMECHS         = "908", "IRCv3 SASL",    "are available SASL mechanisms";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_names_texts() {
        assert_eq!(Numeric::RPL_WELCOME.as_str(), "001");
        assert_eq!(Numeric::ERR_NICKNAMEINUSE.code(), 433);
        assert_eq!(Numeric::ERR_NICKNAMEINUSE.as_str(), "433");
        assert_eq!(Numeric::ERR_NICKNAMEINUSE.name(), "ERR_NICKNAMEINUSE");
        assert_eq!(Numeric::ERR_NOTREGISTERED.text(), Some("You have not registered"));
        assert_eq!(Numeric::RPL_NAMREPLY.text(), None);
    }

    /// The compiler already rejects two rows with one code (equal discriminants); this checks
    /// the rest of the table: the wire form reads back as the code, and names are the variants'.
    #[test]
    fn every_code_unique_and_every_name_round_trips() {
        let mut codes = std::collections::HashSet::new();
        for &n in Numeric::ALL {
            assert!(codes.insert(n.as_str()), "{} is used twice", n.as_str());
            assert_eq!(n.as_str(), format!("{:03}", n.code()));
            assert_eq!(n.name(), format!("{n:?}"));
            assert_eq!(Numeric::ALL.iter().find(|m| m.name() == n.name()), Some(&n));
        }
    }
}
