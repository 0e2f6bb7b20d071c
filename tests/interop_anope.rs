//! Interop with real services: Anope 2.0 (Debian's `anope` package, protocol module `hybrid`)
//! linked to rustircd on loopback (issue 13, test 3). NickServ registers and identifies a
//! rustircd user (WHOIS 330, `account-notify`, user mode +r), ChanServ registers a channel for
//! its op and ops the founder when it comes back.
//!
//! Skipped (with a message, and passing) when `/usr/sbin/anope` is not installed; `.ci/run`
//! installs it (README: "Interop tests") and sets `RUSTIRCD_REQUIRE_ANOPE=1`, which makes a
//! missing Anope fail instead. Each test starts its own rustircd (2 shards) and its own Anope:
//! Anope's config is written whole in a temporary directory (a trimmed form of the ts6-lab's
//! `gen-anope-conf.sh` result: only NickServ and ChanServ, no mail, no session limit, no
//! registration delay; Debian's `/etc/anope` is not read, it is `root:irc 0640`), Anope dials
//! rustircd through a line-logging relay (`Relay`, as in `interop_hybrid.rs`), and its `Drop`
//! stops it. When the tests run as root Anope runs as `nobody` through `setpriv`. A failing test
//! prints the server-to-server lines and Anope's output.

mod common;

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::relay::Relay;
use common::{base64, Client, Msg, Server, TempDir, BASE_CONFIG};

const ANOPE: &str = "/usr/sbin/anope";
const SERVICES_NAME: &str = "services.test";
const SERVICES_SID: &str = "3SV";
/// rustircd's name in `BASE_CONFIG`.
const OUR_NAME: &str = "irc.test.local";
/// The pseudo-clients' user@host (`service {}` blocks below).
const NICKSERV: &str = "NickServ!services@services.test";
const CHANSERV: &str = "ChanServ!services@services.test";
const PASSWORD: &str = "s3cretPass";

/// False (after saying why) when Anope is not installed: the test then passes without running.
/// With `RUSTIRCD_REQUIRE_ANOPE=1` (set by `.ci/run`, which installs it) a missing Anope fails
/// instead, so CI cannot go green by skipping.
fn anope_installed() -> bool {
    if Path::new(ANOPE).exists() {
        return true;
    }
    let why = format!(
        "{ANOPE} is not installed (Debian: apt-get install --no-install-recommends anope; \
         see README \"Interop tests\")"
    );
    assert!(std::env::var_os("RUSTIRCD_REQUIRE_ANOPE").is_none_or(|v| v != "1"), "RUSTIRCD_REQUIRE_ANOPE=1 but {why}");
    eprintln!("SKIPPED: {why}");
    false
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// One Anope process with its own config, database and logs in a temporary directory.
struct Anope {
    child: Option<Child>,
    dir: TempDir,
}

impl Anope {
    /// Starts Anope dialing 127.0.0.1:`uplink_port`. It connects at once (and, failing, only
    /// retries after `retrywait`), so rustircd must be listening already.
    fn start(uplink_port: u16) -> Anope {
        Anope::start_with(uplink_port, "hybrid")
    }

    /// Anope with the protocol module `protocol` (`hybrid`, or `charybdis` with `m_sasl`).
    fn start_with(uplink_port: u16, protocol: &str) -> Anope {
        // Under /tmp, not $TMPDIR: when we are root Anope runs as nobody, who must reach this
        // directory and write its database and logs in it.
        static N: AtomicUsize = AtomicUsize::new(0);
        let path =
            PathBuf::from(format!("/tmp/rustircd-anope-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
        let _ = std::fs::remove_dir_all(&path);
        for sub in ["", "conf", "data", "logs"] {
            let d = path.join(sub);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        let dir = TempDir(path);
        let d = &dir.0;
        std::fs::write(d.join("conf/services.conf"), anope_conf(uplink_port, d, protocol)).unwrap();
        std::fs::write(d.join("conf/services.motd"), "rustircd interop test services\n").unwrap();
        let mut cmd = if is_root() {
            // setpriv execs Anope, so the child's PID is Anope's own.
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", ANOPE]);
            c
        } else {
            Command::new(ANOPE)
        };
        cmd.arg("--nofork")
            .arg(format!("--confdir={}", d.join("conf").display()))
            .arg(format!("--dbdir={}", d.join("data").display()))
            .arg(format!("--logdir={}", d.join("logs").display()))
            // Debian's layout; without it: "You must load a protocol module!".
            .arg("--modulesdir=/usr/lib/anope")
            .arg("--localedir=/usr/share/anope/locale");
        let out = std::fs::File::create(d.join("anope.out")).unwrap();
        let child = cmd.stdin(Stdio::null()).stdout(out.try_clone().unwrap()).stderr(out).spawn().expect("start anope");
        Anope { child: Some(child), dir }
    }

    /// Anope's output (with `--nofork` its log lines, as `services.log` gets them), for failure
    /// messages.
    fn output(&self) -> String {
        let mut s = String::new();
        let _ = std::fs::File::open(self.dir.0.join("anope.out")).and_then(|mut f| f.read_to_string(&mut s));
        s
    }

    fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Sends `sig` and waits (bounded) until the process is gone.
    fn signal_and_wait(&mut self, sig: i32, within: Duration) -> bool {
        let Some(child) = self.child.as_mut() else { return true };
        if matches!(child.try_wait(), Ok(Some(_))) {
            self.child = None;
            return true;
        }
        // SAFETY: kill(2) on the PID of our own child, not yet reaped (try_wait said so).
        unsafe {
            libc::kill(child.id() as i32, sig);
        }
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                self.child = None;
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// SIGTERM (Anope SQUITs itself and saves its database: about 2 s), then SIGKILL.
    fn stop(&mut self) {
        if !self.signal_and_wait(libc::SIGTERM, Duration::from_secs(5)) {
            self.signal_and_wait(libc::SIGKILL, Duration::from_secs(5));
        }
    }
}

impl Drop for Anope {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("=== Anope output ({}) ===\n{}", self.dir.0.display(), self.output());
        }
        self.stop();
    }
}

/// Anope's whole `services.conf`: the packaged one (Debian's `/etc/anope`) cut down to what the
/// tests use, with the ts6-lab's changes — protocol `hybrid`, SID 3SV, `usemail = no`,
/// `regdelay = 0s` (REGISTER right after connecting) and no OperServ, hence no per-IP session
/// limit (every test client comes from 127.0.0.1). NickServ's `autoop` default and the
/// channel privileges let ChanServ op a founder on join.
fn anope_conf(uplink_port: u16, d: &Path, protocol: &str) -> String {
    let d = d.display();
    let sasl = if protocol == "charybdis" { "module { name = \"m_sasl\" }" } else { "" };
    format!(
        r#"define {{ name = "services.host"; value = "{SERVICES_NAME}" }}
uplink {{ host = "127.0.0.1"; ipv6 = no; ssl = no; port = {uplink_port}; password = "s2r" }}
serverinfo {{ name = "{SERVICES_NAME}"; description = "Anope for rustircd tests"; id = "{SERVICES_SID}"; pid = "{d}/anope.pid"; motd = "{d}/conf/services.motd" }}
module {{ name = "{protocol}" }}
{sasl}
networkinfo {{ networkname = "TestNet"; nicklen = 30; userlen = 10; hostlen = 64; chanlen = 32; modelistsize = 100; vhost_chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-"; allow_undotted_vhosts = false; disallow_start_or_end = ".-" }}
options {{ casemap = "ascii"; seed = 4815162; strictpasswords = yes; badpasslimit = 5; badpasstimeout = 1h; updatetimeout = 5m; expiretimeout = 30m; readtimeout = 5s; warningtimeout = 4h; timeoutcheck = 3s; retrywait = 60s; hideprivilegedcommands = yes; hideregisteredcommands = yes }}
log {{ target = "services.log"; logage = 1; admin = "*"; override = "*"; commands = "*"; servers = "*"; channels = "*"; users = "*"; other = "*"; rawio = no; debug = no }}
mail {{ usemail = no }}
module {{ name = "db_flatfile"; database = "anope.db"; keepbackups = 0; fork = no }}
module {{ name = "enc_sha256" }}
module {{ name = "help" }}

service {{ nick = "NickServ"; user = "services"; host = "services.host"; gecos = "Nickname Registration Service" }}
module {{ name = "nickserv"; client = "NickServ"; forceemail = yes; confirmemailchanges = no; defaults = "killprotect ns_secure ns_private hide_email hide_mask memo_signon memo_receive autoop"; regdelay = 0s; expire = 21d; secureadmins = yes; modeonid = yes; hidenetsplitquit = no; killquick = 20s; kill = 60s; enforceruser = "enforcer"; enforcerhost = "services.host"; releasetimeout = 1m; guestnickprefix = "Guest"; nonicknameownership = no; passlen = 32 }}
command {{ service = "NickServ"; name = "HELP"; command = "generic/help"; }}
module {{ name = "ns_register"; registration = "none"; resenddelay = 90s }}
command {{ service = "NickServ"; name = "REGISTER"; command = "nickserv/register"; }}
module {{ name = "ns_identify"; maxlogins = 10 }}
command {{ service = "NickServ"; name = "IDENTIFY"; command = "nickserv/identify"; }}
module {{ name = "ns_logout" }}
command {{ service = "NickServ"; name = "LOGOUT"; command = "nickserv/logout"; }}

service {{ nick = "ChanServ"; user = "services"; host = "services.host"; gecos = "Channel Registration Service" }}
module {{ name = "chanserv"; client = "ChanServ"; defaults = "keeptopic peace cs_secure securefounder signkick"; maxregistered = 20; expire = 14d; accessmax = 1024; inhabit = 15s; reasonmax = 200; signkickformat = "%m (%n)"; disallow_hostmask_access = false; disallow_channel_access = false; always_lower_ts = false }}
privilege {{ name = "AUTOOP"; rank = 210; level = 5; flag = "O"; xop = "AOP" }}
privilege {{ name = "AUTOVOICE"; rank = 50; level = 3; flag = "V"; xop = "VOP" }}
privilege {{ name = "FOUNDER"; rank = 360; level = 10000; flag = "F"; xop = "QOP" }}
privilege {{ name = "OP"; rank = 230; level = 5; flag = "o"; xop = "SOP" }}
privilege {{ name = "OPME"; rank = 220; level = 5; flag = "o"; xop = "AOP" }}
privilege {{ name = "VOICE"; rank = 70; level = 4; flag = "v"; xop = "HOP" }}
command {{ service = "ChanServ"; name = "HELP"; command = "generic/help"; }}
module {{ name = "cs_register" }}
command {{ service = "ChanServ"; name = "REGISTER"; command = "chanserv/register"; }}
module {{ name = "cs_mode"; mlock = "+nt"; max = 32 }}
"#
    )
}

/// rustircd's config: the base one, obeying `services.test`'s services commands, with a
/// `[[links]]` block for it without address (Anope dials; it introduces no server behind it, so
/// no `hub_mask`).
fn rustircd_config() -> String {
    format!(
        "{}
[[links]]
name = \"{SERVICES_NAME}\"
sid = \"{SERVICES_SID}\"
send_password = \"r2s\"
accept_password = \"s2r\"
",
        BASE_CONFIG.replace("motd = \"test motd\"", &format!("motd = \"test motd\"\nservices = [\"{SERVICES_NAME}\"]"))
    )
}

/// rustircd (2 shards) with Anope linked to it through a relay, both bursts done. Dropped in
/// reverse order: Anope first (it SQUITs), then the relay, then rustircd.
struct Net {
    anope: Anope,
    relay: Relay,
    srv: Server,
}

fn linked() -> Net {
    let srv = Server::with_config(2, &rustircd_config());
    let relay = Relay::start(srv.addr, "anope", "rustircd");
    let mut anope = Anope::start(relay.addr.port());
    // Anope's handshake as the ts6-lab captured it against hybrid, then both EOBs.
    let deadline = Instant::now() + Duration::from_secs(15);
    while !relay.sent_by("anope").iter().any(|l| l == ":3SV EOB") {
        assert!(anope.is_running(), "Anope exited:\n{}\n{}", anope.output(), relay.transcript());
        assert!(
            Instant::now() < deadline,
            "Anope did not link within 15 s:\n{}\n{}",
            anope.output(),
            relay.transcript()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    relay.wait_line("anope", &[":3SV SERVER services.test 1 3SV + :"], Duration::from_secs(1));
    relay.wait_line("rustircd", &[":0TS EOB"], Duration::from_secs(5));
    srv.wait_log(&["Link established: services.test", "sid=3SV", "inbound"]);
    srv.wait_log(&["end of burst from services.test"]);
    let net = Net { anope, relay, srv };
    // Both shards know the pseudo-clients before any test client talks to them.
    for shard in 0..2 {
        let mut c = net.client_on(&format!("probe{shard}"), shard, None);
        for s in ["NickServ", "ChanServ"] {
            whois_until_known(&mut c, s);
        }
    }
    net
}

impl Net {
    /// A registered client on shard `shard` (connections landing on the other one are dropped),
    /// with these capabilities.
    fn client_on(&self, nick: &str, shard: usize, caps: Option<&str>) -> Client {
        for _ in 0..200 {
            let mut c = self.srv.connect();
            if self.srv.shard_of(&c) != shard {
                continue;
            }
            match caps {
                Some(caps) => c.register_caps(nick, caps),
                None => c.register(nick),
            }
            return c;
        }
        panic!("no connection landed on shard {shard}");
    }

    /// Anope is still up and linked: no ERROR either way, no split in rustircd's log.
    fn assert_clean(&mut self) {
        assert!(self.anope.is_running(), "Anope exited:\n{}", self.anope.output());
        let errors: Vec<_> = self.relay.lines().into_iter().filter(|(_, l)| l.starts_with("ERROR")).collect();
        assert!(errors.is_empty(), "ERROR on the link: {errors:?}\n{}", self.relay.transcript());
        let closed: Vec<_> = self.srv.log_lines().into_iter().filter(|l| l.contains("Link closed")).collect();
        assert!(closed.is_empty(), "{closed:?}");
    }

    /// The UID rustircd gave `nick`, from its (latest) `UID` line to Anope.
    fn uid_of(&self, nick: &str) -> String {
        self.relay.wait_line("rustircd", &[&format!(" UID {nick} ")], Duration::from_secs(10));
        let l =
            self.relay.sent_by("rustircd").into_iter().rev().find(|l| l.contains(&format!(" UID {nick} "))).unwrap();
        l.split(' ').nth(10).unwrap().to_string()
    }
}

/// `c` WHOISes `nick` until it is known (bounded: users cross shards and the link
/// asynchronously).
fn whois_until_known(c: &mut Client, nick: &str) -> Vec<Msg> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let w = whois(c, nick);
        if w.iter().any(|m| m.verb == "311") {
            return w;
        }
        assert!(Instant::now() < deadline, "{}: {nick} never became known", c.nick);
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One WHOIS, every line up to its 318.
fn whois(c: &mut Client, nick: &str) -> Vec<Msg> {
    c.send(&format!("WHOIS {nick}"));
    c.collect_until("318")
}

/// The account WHOIS shows for `nick` (330), if any.
fn account_in_whois(c: &mut Client, nick: &str) -> Option<String> {
    let w = whois_until_known(c, nick);
    w.iter().find(|m| m.verb == "330").map(|m| {
        assert_eq!(m.p(1), nick, "{}", m.raw);
        m.p(2).to_string()
    })
}

/// A NOTICE from `from` (nick!user@host) to `c`, whose text contains `text`.
fn expect_notice_from(c: &mut Client, from: &str, text: &str) -> Msg {
    let nick = c.nick.clone();
    c.expect(&format!("{from} NOTICE with {text:?}"), |m| {
        m.verb == "NOTICE" && m.source.as_deref() == Some(from) && m.p(0) == nick && m.last().contains(text)
    })
}

/// `c`'s own user mode change, shown by the server (`:irc.test.local MODE <nick> :<diff>`).
fn expect_own_mode(c: &mut Client, diff: &str) {
    let nick = c.nick.clone();
    let m = c.expect(&format!("MODE {nick} {diff}"), |m| m.verb == "MODE" && m.p(0) == nick);
    assert_eq!((m.source.as_deref(), m.last()), (Some(OUR_NAME), diff), "{}", m.raw);
}

/// `ACCOUNT <account>` about `nick` (account-notify).
fn expect_account(c: &mut Client, nick: &str, account: &str) {
    let m = c.expect(&format!("ACCOUNT of {nick}"), |m| m.verb == "ACCOUNT");
    assert!(m.source.as_deref().unwrap_or("").starts_with(&format!("{nick}!")), "{}", m.raw);
    assert_eq!(m.p(0), account, "{}", m.raw);
}

/// `nick` registers itself with NickServ (and is logged in by it): the NOTICE, then +r.
fn nickserv_register(c: &mut Client) {
    let nick = c.nick.clone();
    c.send(&format!("PRIVMSG NickServ :REGISTER {PASSWORD} {}@example.org", nick.to_lowercase()));
    expect_notice_from(c, NICKSERV, "registered");
    expect_own_mode(c, "+r");
}

/// (1) NickServ REGISTER from a user on one shard, IDENTIFY from a later connection of the same
/// nick on the other shard, then LOGOUT: each time WHOIS (from both shards) shows the account
/// (330) or not, the channel peers on both shards with `account-notify` get ACCOUNT, and the user
/// gets +r / -r.
#[test]
fn nickserv_register_and_identify_log_the_user_in() {
    if !anope_installed() {
        return;
    }
    let mut net = linked();
    // One peer per shard, each asked for account-notify and sharing #acct with the user.
    let mut peers = [
        net.client_on("peer0", 0, Some("account-notify extended-join")),
        net.client_on("peer1", 1, Some("account-notify extended-join")),
    ];
    for p in peers.iter_mut() {
        p.send("JOIN #acct");
        p.expect_verb("366");
    }

    // REGISTER, on shard 1.
    let mut alice = net.client_on("alice", 1, None);
    alice.send("JOIN #acct");
    alice.expect_verb("366");
    for p in peers.iter_mut() {
        p.expect("alice's JOIN", |m| m.verb == "JOIN" && m.source.as_deref().unwrap_or("").starts_with("alice!"));
    }
    let uid = net.uid_of("alice");
    nickserv_register(&mut alice);
    // On the wire as the ts6-lab captured it against hybrid.
    let acct = net.relay.wait_line("anope", &[":3SV SVSACCOUNT ", &uid], Duration::from_secs(5));
    assert!(acct.ends_with(" alice"), "{acct}");
    net.relay.wait_line("anope", &[" SVSMODE ", &uid, "+r"], Duration::from_secs(5));
    for p in peers.iter_mut() {
        expect_account(p, "alice", "alice");
        assert_eq!(account_in_whois(p, "alice").as_deref(), Some("alice"), "{}", p.nick);
    }
    assert_eq!(account_in_whois(&mut alice, "alice").as_deref(), Some("alice"));
    alice.send("QUIT :see you");
    alice.expect_closed();
    for p in peers.iter_mut() {
        p.expect("alice's QUIT", |m| m.verb == "QUIT" && m.source.as_deref().unwrap_or("").starts_with("alice!"));
    }

    // IDENTIFY, from another connection, on shard 0. NickServ says the nick is taken first.
    let mut alice = net.client_on("alice", 0, None);
    expect_notice_from(&mut alice, NICKSERV, "IDENTIFY");
    // Anope has its UID now (the old alice's is on the relay's record too: the latest counts).
    let uid = net.uid_of("alice");
    alice.send("JOIN #acct");
    alice.expect_verb("366");
    for p in peers.iter_mut() {
        let join =
            p.expect("alice's JOIN", |m| m.verb == "JOIN" && m.source.as_deref().unwrap_or("").starts_with("alice!"));
        assert_eq!(join.p(1), "*", "not logged in yet (extended-join): {}", join.raw);
    }
    for p in peers.iter_mut() {
        assert_eq!(account_in_whois(p, "alice"), None, "{}", p.nick);
    }
    alice.send(&format!("PRIVMSG NickServ :IDENTIFY {PASSWORD}"));
    expect_notice_from(&mut alice, NICKSERV, "Password accepted");
    expect_own_mode(&mut alice, "+r");
    let acct = net.relay.wait_line("anope", &[":3SV SVSACCOUNT ", &uid], Duration::from_secs(5));
    assert!(acct.ends_with(" alice"), "{acct}");
    for p in peers.iter_mut() {
        expect_account(p, "alice", "alice");
        assert_eq!(account_in_whois(p, "alice").as_deref(), Some("alice"), "{}", p.nick);
    }

    // LOGOUT: SVSACCOUNT * and SVSMODE -r.
    alice.send("PRIVMSG NickServ :LOGOUT");
    expect_notice_from(&mut alice, NICKSERV, "Your nick has been logged out.");
    expect_own_mode(&mut alice, "-r");
    for p in peers.iter_mut() {
        expect_account(p, "alice", "*");
        assert_eq!(account_in_whois(p, "alice"), None, "{}", p.nick);
    }
    net.assert_clean();
}

/// (2) ChanServ REGISTER by the channel's op (who created it on rustircd, so rustircd's SJOIN
/// told Anope it is op): ChanServ confirms, and marks the channel registered on the wire.
#[test]
fn chanserv_registers_a_channel_for_its_op() {
    if !anope_installed() {
        return;
    }
    let mut net = linked();
    let mut alice = net.client_on("alice", 1, None);
    nickserv_register(&mut alice);
    let uid = net.uid_of("alice");
    alice.send("JOIN #reg");
    alice.expect_verb("366");
    net.relay.wait_line("rustircd", &[" SJOIN ", " #reg ", &format!(":@{uid}")], Duration::from_secs(5));
    alice.send("PRIVMSG ChanServ :REGISTER #reg");
    expect_notice_from(&mut alice, CHANSERV, "registered under your account: alice");
    net.relay.wait_line("anope", &[" MODE #reg +r"], Duration::from_secs(5));
    // A user who is not its op cannot register a channel.
    let mut bob = net.client_on("bob", 0, None);
    nickserv_register(&mut bob);
    bob.send("JOIN #other");
    bob.expect_verb("366");
    let mut carol = net.client_on("carol", 1, None);
    nickserv_register(&mut carol);
    carol.send("JOIN #other");
    carol.expect_verb("366");
    carol.send("PRIVMSG ChanServ :REGISTER #other");
    expect_notice_from(&mut carol, CHANSERV, "You must be a channel operator to register the channel.");
    net.assert_clean();
}

/// (2, continued) The founder leaves its registered channel (a peer keeps it alive, so the
/// founder comes back without the creator's op) and rejoins: ChanServ ops it.
#[test]
fn chanserv_ops_the_founder_on_join() {
    if !anope_installed() {
        return;
    }
    let mut net = linked();
    let mut alice = net.client_on("alice", 1, None);
    nickserv_register(&mut alice);
    let uid = net.uid_of("alice");
    alice.send("JOIN #reg");
    alice.expect_verb("366");
    let mut bob = net.client_on("bob", 0, None);
    bob.send("JOIN #reg");
    bob.expect_verb("366");
    alice.send("PRIVMSG ChanServ :REGISTER #reg");
    expect_notice_from(&mut alice, CHANSERV, "registered under your account: alice");
    alice.send("PART #reg");
    bob.expect("alice's PART", |m| m.verb == "PART");
    alice.send("JOIN #reg");
    let names = alice.collect_until("366");
    assert!(
        names.iter().any(|m| m.verb == "353" && m.last().split(' ').any(|n| n == "alice")),
        "rejoined without op: {names:?}"
    );
    // Anope ops her...
    net.relay.wait_line("anope", &[" MODE #reg +o ", &uid], Duration::from_secs(5));
    // ...and everyone in the channel sees it, from ChanServ.
    for c in [&mut alice, &mut bob] {
        let m = c.expect("ChanServ's MODE +o alice", |m| m.verb == "MODE" && m.p(0) == "#reg");
        assert_eq!((m.source.as_deref(), m.p(1), m.p(2)), (Some(CHANSERV), "+o", "alice"), "{}", m.raw);
    }
    bob.send("NAMES #reg");
    let names = bob.collect_until("366");
    assert!(names.iter().any(|m| m.verb == "353" && m.last().split(' ').any(|n| n == "@alice")), "{names:?}");
    net.assert_clean();
}

/// (3) Anope 2.0 with its `charybdis` protocol module and `m_sasl` (issue 14): it links with
/// EUID and announces its SASL mechanisms; NickServ REGISTER sets the account through
/// `ENCAP * SU`; a later client logs in with SASL PLAIN from the other shard (900, 903, then
/// registration, 330 everywhere), a wrong password gets 904.
#[test]
fn anope_charybdis_accounts_and_sasl() {
    if !anope_installed() {
        return;
    }
    let srv = Server::with_config(2, &rustircd_config());
    let relay = Relay::start(srv.addr, "anope", "rustircd");
    let mut anope = Anope::start_with(relay.addr.port(), "charybdis");
    let deadline = Instant::now() + Duration::from_secs(15);
    while !relay.sent_by("anope").iter().any(|l| l.contains(" ENCAP * MECHLIST :")) {
        assert!(anope.is_running(), "Anope exited:\n{}\n{}", anope.output(), relay.transcript());
        assert!(Instant::now() < deadline, "Anope did not link:\n{}\n{}", anope.output(), relay.transcript());
        std::thread::sleep(Duration::from_millis(20));
    }
    relay.wait_line("anope", &[" EUID NickServ "], Duration::from_secs(5));
    srv.wait_log(&["Link established: services.test", "sid=3SV"]);
    let net = Net { anope, relay, srv };
    let mut peer = net.client_on("peer", 0, Some("account-notify"));
    whois_until_known(&mut peer, "NickServ");
    let mut alice = net.client_on("alice", 1, None);
    alice.send(&format!("PRIVMSG NickServ :REGISTER {PASSWORD} alice@example.org"));
    expect_notice_from(&mut alice, NICKSERV, "registered");
    net.relay.wait_line("anope", &[" ENCAP * SU ", " alice"], Duration::from_secs(5));
    assert_eq!(account_in_whois(&mut peer, "alice").as_deref(), Some("alice"));
    alice.send("QUIT :bye");
    alice.expect_closed();
    for (shard, pass, ok) in [(0, PASSWORD, true), (1, "wrongpass", false)] {
        let nick = format!("sasl{shard}");
        let mut c = loop {
            let mut c = net.srv.connect();
            if net.srv.shard_of(&c) == shard {
                c.nick = nick.clone();
                break c;
            }
        };
        let ls = c.cap_ls();
        assert!(ls.split(' ').any(|x| x.starts_with("sasl=") && x.contains("PLAIN")), "{ls}");
        c.send("CAP REQ :sasl");
        c.expect("CAP ACK", |m| m.verb == "CAP" && m.p(1) == "ACK");
        c.send(&format!("NICK {nick}"));
        c.send(&format!("USER {nick} 0 * :{nick}"));
        c.send("AUTHENTICATE PLAIN");
        assert_eq!(c.expect_verb("AUTHENTICATE").p(0), "+");
        c.send(&format!("AUTHENTICATE {}", base64(format!("alice\0alice\0{pass}").as_bytes())));
        if ok {
            assert_eq!(c.expect_verb("900").p(2), "alice");
            c.expect_verb("903");
        } else {
            c.expect_verb("904");
        }
        c.send("CAP END");
        c.expect_verb("001");
        let w = whois_until_known(&mut peer, &nick);
        let acct = w.iter().find(|m| m.verb == "330").map(|m| m.p(2).to_string());
        assert_eq!(acct.as_deref(), if ok { Some("alice") } else { None }, "{w:?}");
    }
    let mut net = net;
    net.assert_clean();
}
