//! Numeric replies as one enum with their RFC names. Each carries its three-digit code and,
//! where the reply has a fixed text, that text (the trailing parameter servers conventionally send).
//! Generated from a table; the doc comment of each variant says where it is defined.

#![allow(non_camel_case_types)]

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum Numeric {
    /// RFC 2812
    RPL_WELCOME = 1,
    /// RFC 2812
    RPL_YOURHOST = 2,
    /// RFC 2812
    RPL_CREATED = 3,
    /// RFC 2812
    RPL_MYINFO = 4,
    /// Modern
    RPL_ISUPPORT = 5,
    /// RFC 2812
    RPL_STATSLINKINFO = 211,
    /// RFC 2812
    RPL_STATSCOMMANDS = 212,
    /// RFC 1459
    RPL_STATSCLINE = 213,
    /// RFC 1459
    RPL_STATSILINE = 215,
    /// RFC 1459
    RPL_STATSKLINE = 216,
    /// RFC 1459
    RPL_STATSYLINE = 218,
    /// RFC 2812
    RPL_ENDOFSTATS = 219,
    /// RFC 2812
    RPL_UMODEIS = 221,
    /// ircd-hybrid
    RPL_STATSDLINE = 225,
    /// RFC 2812
    RPL_STATSUPTIME = 242,
    /// RFC 2812
    RPL_STATSOLINE = 243,
    /// ircd-hybrid (free-form STATS lines)
    RPL_STATSDEBUG = 249,
    /// RFC 2812
    RPL_LUSERCLIENT = 251,
    /// RFC 2812
    RPL_LUSEROP = 252,
    /// RFC 2812
    RPL_LUSERUNKNOWN = 253,
    /// RFC 2812
    RPL_LUSERCHANNELS = 254,
    /// RFC 2812
    RPL_LUSERME = 255,
    /// RFC 2812
    RPL_ADMINME = 256,
    /// RFC 2812
    RPL_ADMINLOC1 = 257,
    /// RFC 2812
    RPL_ADMINLOC2 = 258,
    /// RFC 2812
    RPL_ADMINEMAIL = 259,
    /// RFC 2812
    RPL_TRYAGAIN = 263,
    /// Modern
    RPL_LOCALUSERS = 265,
    /// Modern
    RPL_GLOBALUSERS = 266,
    /// Modern
    RPL_WHOISCERTFP = 276,
    /// RFC 2812
    RPL_NONE = 300,
    /// RFC 2812
    RPL_AWAY = 301,
    /// RFC 2812
    RPL_USERHOST = 302,
    /// RFC 2812
    RPL_ISON = 303,
    /// RFC 2812
    RPL_UNAWAY = 305,
    /// RFC 2812
    RPL_NOWAWAY = 306,
    /// Modern
    RPL_WHOISREGNICK = 307,
    /// RFC 2812
    RPL_WHOISUSER = 311,
    /// RFC 2812
    RPL_WHOISSERVER = 312,
    /// RFC 2812
    RPL_WHOISOPERATOR = 313,
    /// RFC 2812
    RPL_WHOWASUSER = 314,
    /// RFC 2812
    RPL_ENDOFWHO = 315,
    /// RFC 2812
    RPL_WHOISIDLE = 317,
    /// RFC 2812
    RPL_ENDOFWHOIS = 318,
    /// RFC 2812
    RPL_WHOISCHANNELS = 319,
    /// Modern
    RPL_WHOISSPECIAL = 320,
    /// RFC 2812
    RPL_LISTSTART = 321,
    /// RFC 2812
    RPL_LIST = 322,
    /// RFC 2812
    RPL_LISTEND = 323,
    /// RFC 2812
    RPL_CHANNELMODEIS = 324,
    /// Modern
    RPL_CREATIONTIME = 329,
    /// Modern
    RPL_WHOISACCOUNT = 330,
    /// RFC 2812
    RPL_NOTOPIC = 331,
    /// RFC 2812
    RPL_TOPIC = 332,
    /// Modern
    RPL_TOPICWHOTIME = 333,
    /// Modern
    RPL_WHOISBOT = 335,
    /// Modern (invites pending for the user)
    RPL_INVITELIST = 336,
    /// Modern
    RPL_ENDOFINVITELIST = 337,
    /// Modern
    RPL_WHOISACTUALLY = 338,
    /// RFC 2812
    RPL_INVITING = 341,
    /// RFC 2812
    RPL_INVEXLIST = 346,
    /// RFC 2812
    RPL_ENDOFINVEXLIST = 347,
    /// RFC 2812
    RPL_EXCEPTLIST = 348,
    /// RFC 2812
    RPL_ENDOFEXCEPTLIST = 349,
    /// RFC 2812
    RPL_VERSION = 351,
    /// RFC 2812
    RPL_WHOREPLY = 352,
    /// RFC 2812
    RPL_NAMREPLY = 353,
    /// WHOX
    RPL_WHOSPCRPL = 354,
    /// RFC 2812
    RPL_LINKS = 364,
    /// RFC 2812
    RPL_ENDOFLINKS = 365,
    /// RFC 2812
    RPL_ENDOFNAMES = 366,
    /// RFC 2812
    RPL_BANLIST = 367,
    /// RFC 2812
    RPL_ENDOFBANLIST = 368,
    /// RFC 2812
    RPL_ENDOFWHOWAS = 369,
    /// RFC 2812
    RPL_INFO = 371,
    /// RFC 2812
    RPL_MOTD = 372,
    /// RFC 2812
    RPL_ENDOFINFO = 374,
    /// RFC 2812
    RPL_MOTDSTART = 375,
    /// RFC 2812
    RPL_ENDOFMOTD = 376,
    /// Modern
    RPL_WHOISHOST = 378,
    /// Modern
    RPL_WHOISMODES = 379,
    /// RFC 2812
    RPL_YOUREOPER = 381,
    /// RFC 2812
    RPL_REHASHING = 382,
    /// RFC 2812
    RPL_TIME = 391,
    /// Modern
    ERR_UNKNOWNERROR = 400,
    /// RFC 2812
    ERR_NOSUCHNICK = 401,
    /// RFC 2812
    ERR_NOSUCHSERVER = 402,
    /// RFC 2812
    ERR_NOSUCHCHANNEL = 403,
    /// RFC 2812
    ERR_CANNOTSENDTOCHAN = 404,
    /// RFC 2812
    ERR_TOOMANYCHANNELS = 405,
    /// RFC 2812
    ERR_WASNOSUCHNICK = 406,
    /// RFC 2812
    ERR_TOOMANYTARGETS = 407,
    /// RFC 2812
    ERR_NOORIGIN = 409,
    /// IRCv3
    ERR_INVALIDCAPCMD = 410,
    /// RFC 2812
    ERR_NORECIPIENT = 411,
    /// RFC 2812
    ERR_NOTEXTTOSEND = 412,
    /// Modern
    ERR_INPUTTOOLONG = 417,
    /// RFC 2812
    ERR_UNKNOWNCOMMAND = 421,
    /// RFC 2812
    ERR_NOMOTD = 422,
    /// RFC 2812
    ERR_NOADMININFO = 423,
    /// RFC 2812
    ERR_NONICKNAMEGIVEN = 431,
    /// RFC 2812
    ERR_ERRONEUSNICKNAME = 432,
    /// RFC 2812
    ERR_NICKNAMEINUSE = 433,
    /// RFC 2812
    ERR_NICKCOLLISION = 436,
    /// RFC 2812
    ERR_USERNOTINCHANNEL = 441,
    /// RFC 2812
    ERR_NOTONCHANNEL = 442,
    /// RFC 2812
    ERR_USERONCHANNEL = 443,
    /// RFC 2812
    ERR_NOTREGISTERED = 451,
    /// RFC 2812
    ERR_NEEDMOREPARAMS = 461,
    /// RFC 2812
    ERR_ALREADYREGISTERED = 462,
    /// RFC 2812
    ERR_PASSWDMISMATCH = 464,
    /// RFC 2812
    ERR_YOUREBANNEDCREEP = 465,
    /// RFC 2812
    ERR_KEYSET = 467,
    /// RFC 2812
    ERR_CHANNELISFULL = 471,
    /// RFC 2812
    ERR_UNKNOWNMODE = 472,
    /// RFC 2812
    ERR_INVITEONLYCHAN = 473,
    /// RFC 2812
    ERR_BANNEDFROMCHAN = 474,
    /// RFC 2812
    ERR_BADCHANNELKEY = 475,
    /// RFC 2812
    ERR_BADCHANMASK = 476,
    /// RFC 2812
    ERR_BANLISTFULL = 478,
    /// RFC 2812
    ERR_NOPRIVILEGES = 481,
    /// RFC 2812
    ERR_CHANOPRIVSNEEDED = 482,
    /// RFC 2812
    ERR_CANTKILLSERVER = 483,
    /// RFC 2812
    ERR_NOOPERHOST = 491,
    /// RFC 2812
    ERR_UMODEUNKNOWNFLAG = 501,
    /// RFC 2812
    ERR_USERSDONTMATCH = 502,
    /// Modern
    ERR_HELPNOTFOUND = 524,
    /// Modern
    ERR_INVALIDKEY = 525,
    /// Modern
    RPL_STARTTLS = 670,
    /// Modern
    RPL_WHOISSECURE = 671,
    /// Modern
    ERR_STARTTLS = 691,
    /// Modern
    ERR_INVALIDMODEPARAM = 696,
    /// Modern
    RPL_HELPSTART = 704,
    /// Modern
    RPL_HELPTXT = 705,
    /// Modern
    RPL_ENDOFHELP = 706,
    /// Modern
    RPL_KNOCK = 710,
    /// Modern
    RPL_KNOCKDLVR = 711,
    /// Modern
    ERR_TOOMANYKNOCK = 712,
    /// Modern
    ERR_CHANOPEN = 713,
    /// Modern
    ERR_KNOCKONCHAN = 714,
    /// Modern
    ERR_NOPRIVS = 723,
    /// IRCv3 MONITOR
    RPL_MONONLINE = 730,
    /// IRCv3 MONITOR
    RPL_MONOFFLINE = 731,
    /// IRCv3 MONITOR
    RPL_MONLIST = 732,
    /// IRCv3 MONITOR
    RPL_ENDOFMONLIST = 733,
    /// IRCv3 MONITOR
    ERR_MONLISTFULL = 734,
    /// IRCv3 SASL
    RPL_LOGGEDIN = 900,
    /// IRCv3 SASL
    RPL_LOGGEDOUT = 901,
    /// IRCv3 SASL
    ERR_NICKLOCKED = 902,
    /// IRCv3 SASL
    RPL_SASLSUCCESS = 903,
    /// IRCv3 SASL
    ERR_SASLFAIL = 904,
    /// IRCv3 SASL
    ERR_SASLTOOLONG = 905,
    /// IRCv3 SASL
    ERR_SASLABORTED = 906,
    /// IRCv3 SASL
    ERR_SASLALREADY = 907,
    /// IRCv3 SASL
    RPL_SASLMECHS = 908,
}

impl Numeric {
    pub fn code(self) -> u16 {
        self as u16
    }

    /// The three-digit code as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Numeric::RPL_WELCOME => "001",
            Numeric::RPL_YOURHOST => "002",
            Numeric::RPL_CREATED => "003",
            Numeric::RPL_MYINFO => "004",
            Numeric::RPL_ISUPPORT => "005",
            Numeric::RPL_STATSLINKINFO => "211",
            Numeric::RPL_STATSCOMMANDS => "212",
            Numeric::RPL_STATSCLINE => "213",
            Numeric::RPL_STATSILINE => "215",
            Numeric::RPL_STATSKLINE => "216",
            Numeric::RPL_STATSYLINE => "218",
            Numeric::RPL_ENDOFSTATS => "219",
            Numeric::RPL_UMODEIS => "221",
            Numeric::RPL_STATSDLINE => "225",
            Numeric::RPL_STATSUPTIME => "242",
            Numeric::RPL_STATSOLINE => "243",
            Numeric::RPL_STATSDEBUG => "249",
            Numeric::RPL_LUSERCLIENT => "251",
            Numeric::RPL_LUSEROP => "252",
            Numeric::RPL_LUSERUNKNOWN => "253",
            Numeric::RPL_LUSERCHANNELS => "254",
            Numeric::RPL_LUSERME => "255",
            Numeric::RPL_ADMINME => "256",
            Numeric::RPL_ADMINLOC1 => "257",
            Numeric::RPL_ADMINLOC2 => "258",
            Numeric::RPL_ADMINEMAIL => "259",
            Numeric::RPL_TRYAGAIN => "263",
            Numeric::RPL_LOCALUSERS => "265",
            Numeric::RPL_GLOBALUSERS => "266",
            Numeric::RPL_WHOISCERTFP => "276",
            Numeric::RPL_NONE => "300",
            Numeric::RPL_AWAY => "301",
            Numeric::RPL_USERHOST => "302",
            Numeric::RPL_ISON => "303",
            Numeric::RPL_UNAWAY => "305",
            Numeric::RPL_NOWAWAY => "306",
            Numeric::RPL_WHOISREGNICK => "307",
            Numeric::RPL_WHOISUSER => "311",
            Numeric::RPL_WHOISSERVER => "312",
            Numeric::RPL_WHOISOPERATOR => "313",
            Numeric::RPL_WHOWASUSER => "314",
            Numeric::RPL_ENDOFWHO => "315",
            Numeric::RPL_WHOISIDLE => "317",
            Numeric::RPL_ENDOFWHOIS => "318",
            Numeric::RPL_WHOISCHANNELS => "319",
            Numeric::RPL_WHOISSPECIAL => "320",
            Numeric::RPL_LISTSTART => "321",
            Numeric::RPL_LIST => "322",
            Numeric::RPL_LISTEND => "323",
            Numeric::RPL_CHANNELMODEIS => "324",
            Numeric::RPL_CREATIONTIME => "329",
            Numeric::RPL_WHOISACCOUNT => "330",
            Numeric::RPL_NOTOPIC => "331",
            Numeric::RPL_TOPIC => "332",
            Numeric::RPL_TOPICWHOTIME => "333",
            Numeric::RPL_WHOISBOT => "335",
            Numeric::RPL_INVITELIST => "336",
            Numeric::RPL_ENDOFINVITELIST => "337",
            Numeric::RPL_WHOISACTUALLY => "338",
            Numeric::RPL_INVITING => "341",
            Numeric::RPL_INVEXLIST => "346",
            Numeric::RPL_ENDOFINVEXLIST => "347",
            Numeric::RPL_EXCEPTLIST => "348",
            Numeric::RPL_ENDOFEXCEPTLIST => "349",
            Numeric::RPL_VERSION => "351",
            Numeric::RPL_WHOREPLY => "352",
            Numeric::RPL_NAMREPLY => "353",
            Numeric::RPL_WHOSPCRPL => "354",
            Numeric::RPL_LINKS => "364",
            Numeric::RPL_ENDOFLINKS => "365",
            Numeric::RPL_ENDOFNAMES => "366",
            Numeric::RPL_BANLIST => "367",
            Numeric::RPL_ENDOFBANLIST => "368",
            Numeric::RPL_ENDOFWHOWAS => "369",
            Numeric::RPL_INFO => "371",
            Numeric::RPL_MOTD => "372",
            Numeric::RPL_ENDOFINFO => "374",
            Numeric::RPL_MOTDSTART => "375",
            Numeric::RPL_ENDOFMOTD => "376",
            Numeric::RPL_WHOISHOST => "378",
            Numeric::RPL_WHOISMODES => "379",
            Numeric::RPL_YOUREOPER => "381",
            Numeric::RPL_REHASHING => "382",
            Numeric::RPL_TIME => "391",
            Numeric::ERR_UNKNOWNERROR => "400",
            Numeric::ERR_NOSUCHNICK => "401",
            Numeric::ERR_NOSUCHSERVER => "402",
            Numeric::ERR_NOSUCHCHANNEL => "403",
            Numeric::ERR_CANNOTSENDTOCHAN => "404",
            Numeric::ERR_TOOMANYCHANNELS => "405",
            Numeric::ERR_WASNOSUCHNICK => "406",
            Numeric::ERR_TOOMANYTARGETS => "407",
            Numeric::ERR_NOORIGIN => "409",
            Numeric::ERR_INVALIDCAPCMD => "410",
            Numeric::ERR_NORECIPIENT => "411",
            Numeric::ERR_NOTEXTTOSEND => "412",
            Numeric::ERR_INPUTTOOLONG => "417",
            Numeric::ERR_UNKNOWNCOMMAND => "421",
            Numeric::ERR_NOMOTD => "422",
            Numeric::ERR_NOADMININFO => "423",
            Numeric::ERR_NONICKNAMEGIVEN => "431",
            Numeric::ERR_ERRONEUSNICKNAME => "432",
            Numeric::ERR_NICKNAMEINUSE => "433",
            Numeric::ERR_NICKCOLLISION => "436",
            Numeric::ERR_USERNOTINCHANNEL => "441",
            Numeric::ERR_NOTONCHANNEL => "442",
            Numeric::ERR_USERONCHANNEL => "443",
            Numeric::ERR_NOTREGISTERED => "451",
            Numeric::ERR_NEEDMOREPARAMS => "461",
            Numeric::ERR_ALREADYREGISTERED => "462",
            Numeric::ERR_PASSWDMISMATCH => "464",
            Numeric::ERR_YOUREBANNEDCREEP => "465",
            Numeric::ERR_KEYSET => "467",
            Numeric::ERR_CHANNELISFULL => "471",
            Numeric::ERR_UNKNOWNMODE => "472",
            Numeric::ERR_INVITEONLYCHAN => "473",
            Numeric::ERR_BANNEDFROMCHAN => "474",
            Numeric::ERR_BADCHANNELKEY => "475",
            Numeric::ERR_BADCHANMASK => "476",
            Numeric::ERR_BANLISTFULL => "478",
            Numeric::ERR_NOPRIVILEGES => "481",
            Numeric::ERR_CHANOPRIVSNEEDED => "482",
            Numeric::ERR_CANTKILLSERVER => "483",
            Numeric::ERR_NOOPERHOST => "491",
            Numeric::ERR_UMODEUNKNOWNFLAG => "501",
            Numeric::ERR_USERSDONTMATCH => "502",
            Numeric::ERR_HELPNOTFOUND => "524",
            Numeric::ERR_INVALIDKEY => "525",
            Numeric::RPL_STARTTLS => "670",
            Numeric::RPL_WHOISSECURE => "671",
            Numeric::ERR_STARTTLS => "691",
            Numeric::ERR_INVALIDMODEPARAM => "696",
            Numeric::RPL_HELPSTART => "704",
            Numeric::RPL_HELPTXT => "705",
            Numeric::RPL_ENDOFHELP => "706",
            Numeric::RPL_KNOCK => "710",
            Numeric::RPL_KNOCKDLVR => "711",
            Numeric::ERR_TOOMANYKNOCK => "712",
            Numeric::ERR_CHANOPEN => "713",
            Numeric::ERR_KNOCKONCHAN => "714",
            Numeric::ERR_NOPRIVS => "723",
            Numeric::RPL_MONONLINE => "730",
            Numeric::RPL_MONOFFLINE => "731",
            Numeric::RPL_MONLIST => "732",
            Numeric::RPL_ENDOFMONLIST => "733",
            Numeric::ERR_MONLISTFULL => "734",
            Numeric::RPL_LOGGEDIN => "900",
            Numeric::RPL_LOGGEDOUT => "901",
            Numeric::ERR_NICKLOCKED => "902",
            Numeric::RPL_SASLSUCCESS => "903",
            Numeric::ERR_SASLFAIL => "904",
            Numeric::ERR_SASLTOOLONG => "905",
            Numeric::ERR_SASLABORTED => "906",
            Numeric::ERR_SASLALREADY => "907",
            Numeric::RPL_SASLMECHS => "908",
        }
    }

    /// The RFC name, e.g. `ERR_NICKNAMEINUSE`.
    pub fn name(self) -> &'static str {
        match self {
            Numeric::RPL_WELCOME => "RPL_WELCOME",
            Numeric::RPL_YOURHOST => "RPL_YOURHOST",
            Numeric::RPL_CREATED => "RPL_CREATED",
            Numeric::RPL_MYINFO => "RPL_MYINFO",
            Numeric::RPL_ISUPPORT => "RPL_ISUPPORT",
            Numeric::RPL_STATSLINKINFO => "RPL_STATSLINKINFO",
            Numeric::RPL_STATSCOMMANDS => "RPL_STATSCOMMANDS",
            Numeric::RPL_STATSCLINE => "RPL_STATSCLINE",
            Numeric::RPL_STATSILINE => "RPL_STATSILINE",
            Numeric::RPL_STATSKLINE => "RPL_STATSKLINE",
            Numeric::RPL_STATSYLINE => "RPL_STATSYLINE",
            Numeric::RPL_ENDOFSTATS => "RPL_ENDOFSTATS",
            Numeric::RPL_UMODEIS => "RPL_UMODEIS",
            Numeric::RPL_STATSDLINE => "RPL_STATSDLINE",
            Numeric::RPL_STATSUPTIME => "RPL_STATSUPTIME",
            Numeric::RPL_STATSOLINE => "RPL_STATSOLINE",
            Numeric::RPL_STATSDEBUG => "RPL_STATSDEBUG",
            Numeric::RPL_LUSERCLIENT => "RPL_LUSERCLIENT",
            Numeric::RPL_LUSEROP => "RPL_LUSEROP",
            Numeric::RPL_LUSERUNKNOWN => "RPL_LUSERUNKNOWN",
            Numeric::RPL_LUSERCHANNELS => "RPL_LUSERCHANNELS",
            Numeric::RPL_LUSERME => "RPL_LUSERME",
            Numeric::RPL_ADMINME => "RPL_ADMINME",
            Numeric::RPL_ADMINLOC1 => "RPL_ADMINLOC1",
            Numeric::RPL_ADMINLOC2 => "RPL_ADMINLOC2",
            Numeric::RPL_ADMINEMAIL => "RPL_ADMINEMAIL",
            Numeric::RPL_TRYAGAIN => "RPL_TRYAGAIN",
            Numeric::RPL_LOCALUSERS => "RPL_LOCALUSERS",
            Numeric::RPL_GLOBALUSERS => "RPL_GLOBALUSERS",
            Numeric::RPL_WHOISCERTFP => "RPL_WHOISCERTFP",
            Numeric::RPL_NONE => "RPL_NONE",
            Numeric::RPL_AWAY => "RPL_AWAY",
            Numeric::RPL_USERHOST => "RPL_USERHOST",
            Numeric::RPL_ISON => "RPL_ISON",
            Numeric::RPL_UNAWAY => "RPL_UNAWAY",
            Numeric::RPL_NOWAWAY => "RPL_NOWAWAY",
            Numeric::RPL_WHOISREGNICK => "RPL_WHOISREGNICK",
            Numeric::RPL_WHOISUSER => "RPL_WHOISUSER",
            Numeric::RPL_WHOISSERVER => "RPL_WHOISSERVER",
            Numeric::RPL_WHOISOPERATOR => "RPL_WHOISOPERATOR",
            Numeric::RPL_WHOWASUSER => "RPL_WHOWASUSER",
            Numeric::RPL_ENDOFWHO => "RPL_ENDOFWHO",
            Numeric::RPL_WHOISIDLE => "RPL_WHOISIDLE",
            Numeric::RPL_ENDOFWHOIS => "RPL_ENDOFWHOIS",
            Numeric::RPL_WHOISCHANNELS => "RPL_WHOISCHANNELS",
            Numeric::RPL_WHOISSPECIAL => "RPL_WHOISSPECIAL",
            Numeric::RPL_LISTSTART => "RPL_LISTSTART",
            Numeric::RPL_LIST => "RPL_LIST",
            Numeric::RPL_LISTEND => "RPL_LISTEND",
            Numeric::RPL_CHANNELMODEIS => "RPL_CHANNELMODEIS",
            Numeric::RPL_CREATIONTIME => "RPL_CREATIONTIME",
            Numeric::RPL_WHOISACCOUNT => "RPL_WHOISACCOUNT",
            Numeric::RPL_NOTOPIC => "RPL_NOTOPIC",
            Numeric::RPL_TOPIC => "RPL_TOPIC",
            Numeric::RPL_TOPICWHOTIME => "RPL_TOPICWHOTIME",
            Numeric::RPL_WHOISBOT => "RPL_WHOISBOT",
            Numeric::RPL_INVITELIST => "RPL_INVITELIST",
            Numeric::RPL_ENDOFINVITELIST => "RPL_ENDOFINVITELIST",
            Numeric::RPL_WHOISACTUALLY => "RPL_WHOISACTUALLY",
            Numeric::RPL_INVITING => "RPL_INVITING",
            Numeric::RPL_INVEXLIST => "RPL_INVEXLIST",
            Numeric::RPL_ENDOFINVEXLIST => "RPL_ENDOFINVEXLIST",
            Numeric::RPL_EXCEPTLIST => "RPL_EXCEPTLIST",
            Numeric::RPL_ENDOFEXCEPTLIST => "RPL_ENDOFEXCEPTLIST",
            Numeric::RPL_VERSION => "RPL_VERSION",
            Numeric::RPL_WHOREPLY => "RPL_WHOREPLY",
            Numeric::RPL_NAMREPLY => "RPL_NAMREPLY",
            Numeric::RPL_WHOSPCRPL => "RPL_WHOSPCRPL",
            Numeric::RPL_LINKS => "RPL_LINKS",
            Numeric::RPL_ENDOFLINKS => "RPL_ENDOFLINKS",
            Numeric::RPL_ENDOFNAMES => "RPL_ENDOFNAMES",
            Numeric::RPL_BANLIST => "RPL_BANLIST",
            Numeric::RPL_ENDOFBANLIST => "RPL_ENDOFBANLIST",
            Numeric::RPL_ENDOFWHOWAS => "RPL_ENDOFWHOWAS",
            Numeric::RPL_INFO => "RPL_INFO",
            Numeric::RPL_MOTD => "RPL_MOTD",
            Numeric::RPL_ENDOFINFO => "RPL_ENDOFINFO",
            Numeric::RPL_MOTDSTART => "RPL_MOTDSTART",
            Numeric::RPL_ENDOFMOTD => "RPL_ENDOFMOTD",
            Numeric::RPL_WHOISHOST => "RPL_WHOISHOST",
            Numeric::RPL_WHOISMODES => "RPL_WHOISMODES",
            Numeric::RPL_YOUREOPER => "RPL_YOUREOPER",
            Numeric::RPL_REHASHING => "RPL_REHASHING",
            Numeric::RPL_TIME => "RPL_TIME",
            Numeric::ERR_UNKNOWNERROR => "ERR_UNKNOWNERROR",
            Numeric::ERR_NOSUCHNICK => "ERR_NOSUCHNICK",
            Numeric::ERR_NOSUCHSERVER => "ERR_NOSUCHSERVER",
            Numeric::ERR_NOSUCHCHANNEL => "ERR_NOSUCHCHANNEL",
            Numeric::ERR_CANNOTSENDTOCHAN => "ERR_CANNOTSENDTOCHAN",
            Numeric::ERR_TOOMANYCHANNELS => "ERR_TOOMANYCHANNELS",
            Numeric::ERR_WASNOSUCHNICK => "ERR_WASNOSUCHNICK",
            Numeric::ERR_TOOMANYTARGETS => "ERR_TOOMANYTARGETS",
            Numeric::ERR_NOORIGIN => "ERR_NOORIGIN",
            Numeric::ERR_INVALIDCAPCMD => "ERR_INVALIDCAPCMD",
            Numeric::ERR_NORECIPIENT => "ERR_NORECIPIENT",
            Numeric::ERR_NOTEXTTOSEND => "ERR_NOTEXTTOSEND",
            Numeric::ERR_INPUTTOOLONG => "ERR_INPUTTOOLONG",
            Numeric::ERR_UNKNOWNCOMMAND => "ERR_UNKNOWNCOMMAND",
            Numeric::ERR_NOMOTD => "ERR_NOMOTD",
            Numeric::ERR_NOADMININFO => "ERR_NOADMININFO",
            Numeric::ERR_NONICKNAMEGIVEN => "ERR_NONICKNAMEGIVEN",
            Numeric::ERR_ERRONEUSNICKNAME => "ERR_ERRONEUSNICKNAME",
            Numeric::ERR_NICKNAMEINUSE => "ERR_NICKNAMEINUSE",
            Numeric::ERR_NICKCOLLISION => "ERR_NICKCOLLISION",
            Numeric::ERR_USERNOTINCHANNEL => "ERR_USERNOTINCHANNEL",
            Numeric::ERR_NOTONCHANNEL => "ERR_NOTONCHANNEL",
            Numeric::ERR_USERONCHANNEL => "ERR_USERONCHANNEL",
            Numeric::ERR_NOTREGISTERED => "ERR_NOTREGISTERED",
            Numeric::ERR_NEEDMOREPARAMS => "ERR_NEEDMOREPARAMS",
            Numeric::ERR_ALREADYREGISTERED => "ERR_ALREADYREGISTERED",
            Numeric::ERR_PASSWDMISMATCH => "ERR_PASSWDMISMATCH",
            Numeric::ERR_YOUREBANNEDCREEP => "ERR_YOUREBANNEDCREEP",
            Numeric::ERR_KEYSET => "ERR_KEYSET",
            Numeric::ERR_CHANNELISFULL => "ERR_CHANNELISFULL",
            Numeric::ERR_UNKNOWNMODE => "ERR_UNKNOWNMODE",
            Numeric::ERR_INVITEONLYCHAN => "ERR_INVITEONLYCHAN",
            Numeric::ERR_BANNEDFROMCHAN => "ERR_BANNEDFROMCHAN",
            Numeric::ERR_BADCHANNELKEY => "ERR_BADCHANNELKEY",
            Numeric::ERR_BADCHANMASK => "ERR_BADCHANMASK",
            Numeric::ERR_BANLISTFULL => "ERR_BANLISTFULL",
            Numeric::ERR_NOPRIVILEGES => "ERR_NOPRIVILEGES",
            Numeric::ERR_CHANOPRIVSNEEDED => "ERR_CHANOPRIVSNEEDED",
            Numeric::ERR_CANTKILLSERVER => "ERR_CANTKILLSERVER",
            Numeric::ERR_NOOPERHOST => "ERR_NOOPERHOST",
            Numeric::ERR_UMODEUNKNOWNFLAG => "ERR_UMODEUNKNOWNFLAG",
            Numeric::ERR_USERSDONTMATCH => "ERR_USERSDONTMATCH",
            Numeric::ERR_HELPNOTFOUND => "ERR_HELPNOTFOUND",
            Numeric::ERR_INVALIDKEY => "ERR_INVALIDKEY",
            Numeric::RPL_STARTTLS => "RPL_STARTTLS",
            Numeric::RPL_WHOISSECURE => "RPL_WHOISSECURE",
            Numeric::ERR_STARTTLS => "ERR_STARTTLS",
            Numeric::ERR_INVALIDMODEPARAM => "ERR_INVALIDMODEPARAM",
            Numeric::RPL_HELPSTART => "RPL_HELPSTART",
            Numeric::RPL_HELPTXT => "RPL_HELPTXT",
            Numeric::RPL_ENDOFHELP => "RPL_ENDOFHELP",
            Numeric::RPL_KNOCK => "RPL_KNOCK",
            Numeric::RPL_KNOCKDLVR => "RPL_KNOCKDLVR",
            Numeric::ERR_TOOMANYKNOCK => "ERR_TOOMANYKNOCK",
            Numeric::ERR_CHANOPEN => "ERR_CHANOPEN",
            Numeric::ERR_KNOCKONCHAN => "ERR_KNOCKONCHAN",
            Numeric::ERR_NOPRIVS => "ERR_NOPRIVS",
            Numeric::RPL_MONONLINE => "RPL_MONONLINE",
            Numeric::RPL_MONOFFLINE => "RPL_MONOFFLINE",
            Numeric::RPL_MONLIST => "RPL_MONLIST",
            Numeric::RPL_ENDOFMONLIST => "RPL_ENDOFMONLIST",
            Numeric::ERR_MONLISTFULL => "ERR_MONLISTFULL",
            Numeric::RPL_LOGGEDIN => "RPL_LOGGEDIN",
            Numeric::RPL_LOGGEDOUT => "RPL_LOGGEDOUT",
            Numeric::ERR_NICKLOCKED => "ERR_NICKLOCKED",
            Numeric::RPL_SASLSUCCESS => "RPL_SASLSUCCESS",
            Numeric::ERR_SASLFAIL => "ERR_SASLFAIL",
            Numeric::ERR_SASLTOOLONG => "ERR_SASLTOOLONG",
            Numeric::ERR_SASLABORTED => "ERR_SASLABORTED",
            Numeric::ERR_SASLALREADY => "ERR_SASLALREADY",
            Numeric::RPL_SASLMECHS => "RPL_SASLMECHS",
        }
    }

    /// The fixed text of the reply, if it has one.
    pub fn text(self) -> Option<&'static str> {
        match self {
            Numeric::RPL_ISUPPORT => Some("are supported by this server"),
            Numeric::RPL_ENDOFSTATS => Some("End of /STATS report"),
            Numeric::RPL_LUSEROP => Some("operator(s) online"),
            Numeric::RPL_LUSERUNKNOWN => Some("unknown connection(s)"),
            Numeric::RPL_LUSERCHANNELS => Some("channels formed"),
            Numeric::RPL_ADMINME => Some("Administrative info"),
            Numeric::RPL_TRYAGAIN => Some("Server load is temporarily too heavy. Please wait a while and try again."),
            Numeric::RPL_UNAWAY => Some("You are no longer marked as being away"),
            Numeric::RPL_NOWAWAY => Some("You have been marked as being away"),
            Numeric::RPL_WHOISREGNICK => Some("has identified for this nick"),
            Numeric::RPL_WHOISOPERATOR => Some("is an IRC operator"),
            Numeric::RPL_ENDOFWHO => Some("End of WHO list"),
            Numeric::RPL_WHOISIDLE => Some("seconds idle, signon time"),
            Numeric::RPL_ENDOFWHOIS => Some("End of /WHOIS list"),
            Numeric::RPL_LISTSTART => Some("Users  Name"),
            Numeric::RPL_LISTEND => Some("End of /LIST"),
            Numeric::RPL_WHOISACCOUNT => Some("is logged in as"),
            Numeric::RPL_NOTOPIC => Some("No topic is set"),
            Numeric::RPL_WHOISBOT => Some("is a bot"),
            Numeric::RPL_ENDOFINVITELIST => Some("End of /INVITE list"),
            Numeric::RPL_WHOISACTUALLY => Some("is actually using host"),
            Numeric::RPL_ENDOFINVEXLIST => Some("End of Channel Invite Exception List"),
            Numeric::RPL_ENDOFEXCEPTLIST => Some("End of Channel Exception List"),
            Numeric::RPL_ENDOFLINKS => Some("End of /LINKS list"),
            Numeric::RPL_ENDOFNAMES => Some("End of /NAMES list"),
            Numeric::RPL_ENDOFBANLIST => Some("End of Channel Ban List"),
            Numeric::RPL_ENDOFWHOWAS => Some("End of WHOWAS"),
            Numeric::RPL_ENDOFINFO => Some("End of /INFO list"),
            Numeric::RPL_ENDOFMOTD => Some("End of /MOTD command"),
            Numeric::RPL_YOUREOPER => Some("You are now an IRC operator"),
            Numeric::RPL_REHASHING => Some("Rehashing"),
            Numeric::ERR_NOSUCHNICK => Some("No such nick/channel"),
            Numeric::ERR_NOSUCHSERVER => Some("No such server"),
            Numeric::ERR_NOSUCHCHANNEL => Some("No such channel"),
            Numeric::ERR_CANNOTSENDTOCHAN => Some("Cannot send to channel"),
            Numeric::ERR_TOOMANYCHANNELS => Some("You have joined too many channels"),
            Numeric::ERR_WASNOSUCHNICK => Some("There was no such nickname"),
            Numeric::ERR_TOOMANYTARGETS => Some("Too many recipients"),
            Numeric::ERR_NOORIGIN => Some("No origin specified"),
            Numeric::ERR_INVALIDCAPCMD => Some("Invalid CAP subcommand"),
            Numeric::ERR_NOTEXTTOSEND => Some("No text to send"),
            Numeric::ERR_INPUTTOOLONG => Some("Input line was too long"),
            Numeric::ERR_UNKNOWNCOMMAND => Some("Unknown command"),
            Numeric::ERR_NOMOTD => Some("MOTD File is missing"),
            Numeric::ERR_NOADMININFO => Some("No administrative info available"),
            Numeric::ERR_NONICKNAMEGIVEN => Some("No nickname given"),
            Numeric::ERR_ERRONEUSNICKNAME => Some("Erroneous nickname"),
            Numeric::ERR_NICKNAMEINUSE => Some("Nickname is already in use"),
            Numeric::ERR_NICKCOLLISION => Some("Nickname collision KILL"),
            Numeric::ERR_USERNOTINCHANNEL => Some("They aren't on that channel"),
            Numeric::ERR_NOTONCHANNEL => Some("You're not on that channel"),
            Numeric::ERR_USERONCHANNEL => Some("is already on channel"),
            Numeric::ERR_NOTREGISTERED => Some("You have not registered"),
            Numeric::ERR_NEEDMOREPARAMS => Some("Not enough parameters"),
            Numeric::ERR_ALREADYREGISTERED => Some("You may not reregister"),
            Numeric::ERR_PASSWDMISMATCH => Some("Password incorrect"),
            Numeric::ERR_YOUREBANNEDCREEP => Some("You are banned from this server"),
            Numeric::ERR_KEYSET => Some("Channel key already set"),
            Numeric::ERR_CHANNELISFULL => Some("Cannot join channel (+l)"),
            Numeric::ERR_UNKNOWNMODE => Some("is unknown mode char to me"),
            Numeric::ERR_INVITEONLYCHAN => Some("Cannot join channel (+i)"),
            Numeric::ERR_BANNEDFROMCHAN => Some("Cannot join channel (+b)"),
            Numeric::ERR_BADCHANNELKEY => Some("Cannot join channel (+k)"),
            Numeric::ERR_BADCHANMASK => Some("Bad Channel Mask"),
            Numeric::ERR_BANLISTFULL => Some("Channel list is full"),
            Numeric::ERR_NOPRIVILEGES => Some("Permission Denied- You're not an IRC operator"),
            Numeric::ERR_CHANOPRIVSNEEDED => Some("You're not channel operator"),
            Numeric::ERR_CANTKILLSERVER => Some("You can't kill a server!"),
            Numeric::ERR_NOOPERHOST => Some("No O-lines for your host"),
            Numeric::ERR_UMODEUNKNOWNFLAG => Some("Unknown MODE flag"),
            Numeric::ERR_USERSDONTMATCH => Some("Can't change mode for other users"),
            Numeric::ERR_HELPNOTFOUND => Some("No help available on this topic"),
            Numeric::ERR_INVALIDKEY => Some("Key is not well-formed"),
            Numeric::RPL_STARTTLS => Some("STARTTLS successful, proceed with TLS handshake"),
            Numeric::RPL_WHOISSECURE => Some("is using a secure connection"),
            Numeric::ERR_STARTTLS => Some("STARTTLS failed"),
            Numeric::RPL_KNOCK => Some("has asked for an invite"),
            Numeric::RPL_KNOCKDLVR => Some("Your KNOCK has been delivered"),
            Numeric::ERR_TOOMANYKNOCK => Some("Too many KNOCKs"),
            Numeric::ERR_CHANOPEN => Some("Channel is open"),
            Numeric::ERR_KNOCKONCHAN => Some("You are already on that channel"),
            Numeric::ERR_NOPRIVS => Some("Insufficient oper privileges"),
            Numeric::RPL_ENDOFMONLIST => Some("End of MONITOR list"),
            Numeric::ERR_MONLISTFULL => Some("Monitor list is full"),
            Numeric::RPL_LOGGEDOUT => Some("You are now logged out"),
            Numeric::ERR_NICKLOCKED => Some("You must use a nick assigned to you"),
            Numeric::RPL_SASLSUCCESS => Some("SASL authentication successful"),
            Numeric::ERR_SASLFAIL => Some("SASL authentication failed"),
            Numeric::ERR_SASLTOOLONG => Some("SASL message too long"),
            Numeric::ERR_SASLABORTED => Some("SASL authentication aborted"),
            Numeric::ERR_SASLALREADY => Some("You have already authenticated using SASL"),
            Numeric::RPL_SASLMECHS => Some("are available SASL mechanisms"),
            _ => None,
        }
    }
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
}
