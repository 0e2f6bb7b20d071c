//! Interop with real services: Atheme 7.2 (Debian's `atheme-services`, protocol module
//! `charybdis`) linked to rustircd on loopback (issue 14, test 1 so far: the charybdis handshake,
//! EUID both ways, accounts from NickServ through `ENCAP * SU`). SASL comes with the next steps.
//!
//! Skipped (with a message, and passing) when `/usr/bin/atheme-services` is not installed;
//! `.ci/run` installs it (README: "Interop tests") and sets `RUSTIRCD_REQUIRE_ATHEME=1`, which
//! makes a missing Atheme fail instead. The test starts its own rustircd (2 shards) and its own
//! Atheme with a config written whole in a temporary directory (scripts/atheme-lab.sh's, with
//! the installed module paths); Atheme dials rustircd through a line-logging relay and is
//! stopped at the end. When the tests run as root Atheme runs as `nobody` through `setpriv`. A
//! failing test prints the server-to-server lines and Atheme's log.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::relay::Relay;
use common::{base64, Client, Msg, Server, TempDir, BASE_CONFIG};

const ATHEME: &str = "/usr/bin/atheme-services";
const SERVICES_NAME: &str = "services.test";
const PASSWORD: &str = "s3cretPass";

/// False (after saying why) when Atheme is not installed; with `RUSTIRCD_REQUIRE_ATHEME=1`
/// (`.ci/run`) a missing Atheme fails instead, so CI cannot go green by skipping.
fn atheme_installed() -> bool {
    if Path::new(ATHEME).exists() {
        return true;
    }
    let why = format!(
        "{ATHEME} is not installed (Debian: apt-get install --no-install-recommends atheme-services; \
         see README \"Interop tests\")"
    );
    assert!(
        std::env::var_os("RUSTIRCD_REQUIRE_ATHEME").is_none_or(|v| v != "1"),
        "RUSTIRCD_REQUIRE_ATHEME=1 but {why}"
    );
    eprintln!("SKIPPED: {why}");
    false
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// One Atheme process with its config, database and log in a temporary directory.
struct Atheme {
    child: Option<Child>,
    dir: TempDir,
}

impl Atheme {
    fn start(uplink_port: u16) -> Atheme {
        // Under /tmp: as root Atheme runs as nobody, who must write its database and log here.
        let path = PathBuf::from(format!("/tmp/rustircd-atheme-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).unwrap();
        let dir = TempDir(path);
        let d = &dir.0;
        std::fs::write(d.join("atheme.conf"), atheme_conf(uplink_port, d)).unwrap();
        std::fs::write(d.join("atheme.log"), "").unwrap();
        std::fs::set_permissions(d.join("atheme.log"), std::fs::Permissions::from_mode(0o666)).unwrap();
        let mut cmd = if is_root() {
            // setpriv execs Atheme, so the child's PID is Atheme's own.
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", ATHEME]);
            c
        } else {
            Command::new(ATHEME)
        };
        let (conf, log, pid) = (d.join("atheme.conf"), d.join("atheme.log"), d.join("atheme.pid"));
        cmd.arg("-n").arg("-c").arg(&conf).arg("-D").arg(d).arg("-l").arg(&log).arg("-p").arg(&pid);
        let child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start atheme");
        Atheme { child: Some(child), dir }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("atheme.log")).unwrap_or_default()
    }

    fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// SIGTERM, then SIGKILL; waits (bounded) until the process is gone.
    fn stop(&mut self) {
        let Some(child) = self.child.as_mut() else { return };
        for sig in [libc::SIGTERM, libc::SIGKILL] {
            if matches!(child.try_wait(), Ok(Some(_))) {
                break;
            }
            // SAFETY: kill(2) on the PID of our own child, not yet reaped (try_wait said so).
            unsafe {
                libc::kill(child.id() as i32, sig);
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.child = None;
    }
}

impl Drop for Atheme {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("=== Atheme log ({}) ===\n{}", self.dir.0.display(), self.log());
        }
        self.stop();
    }
}

/// scripts/atheme-lab.sh's config, with the installed package's module names: protocol
/// charybdis, NickServ (REGISTER, IDENTIFY, LOGOUT), SaslServ, a fresh flat-file database.
fn atheme_conf(uplink_port: u16, d: &Path) -> String {
    let d = d.display();
    format!(
        r#"loadmodule "modules/protocol/charybdis";
loadmodule "modules/backend/opensex";
loadmodule "modules/crypto/pbkdf2v2";
loadmodule "modules/nickserv/main";
loadmodule "modules/nickserv/register";
loadmodule "modules/nickserv/identify";
loadmodule "modules/nickserv/logout";
loadmodule "modules/saslserv/main";
loadmodule "modules/saslserv/plain";
serverinfo {{
	name = "{SERVICES_NAME}"; desc = "Atheme for rustircd tests"; numeric = "3SV"; recontime = 10;
	netname = "TestNet"; hidehostsuffix = "users.test"; adminname = "rustircd tests";
	adminemail = "admin@example.org"; registeremail = "noreply@example.org"; auth = none;
	maxlogins = 5; maxusers = 5; mdlimit = 30; emaillimit = 10; emailtime = 300;
}};
uplink "irc.test.local" {{ host = "127.0.0.1"; port = {uplink_port}; send_password = "s2r"; receive_password = "r2s"; }};
general {{ flood_msgs = 0; flood_time = 0; commit_interval = 60; kline_time = 1; }};
nickserv {{ nick = "NickServ"; user = "NickServ"; host = "{SERVICES_NAME}"; real = "Nickname Services"; spam; maxnicks = 5; expire = 30; }};
saslserv {{ nick = "SaslServ"; user = "SaslServ"; host = "{SERVICES_NAME}"; real = "SASL Authentication Agent"; }};
logfile "{d}/atheme.log" {{ debug; }};
"#
    )
}

fn rustircd_config() -> String {
    format!(
        "{}\n[[links]]\nname = \"{SERVICES_NAME}\"\nsid = \"3SV\"\nsend_password = \"r2s\"\naccept_password = \"s2r\"\n",
        BASE_CONFIG.replace("motd = \"test motd\"", &format!("motd = \"test motd\"\nservices = [\"{SERVICES_NAME}\"]"))
    )
}

/// A registered client on shard `shard`, with these capabilities.
fn client_on(srv: &Server, nick: &str, shard: usize, caps: &str) -> Client {
    for _ in 0..200 {
        let mut c = srv.connect();
        if srv.shard_of(&c) != shard {
            continue;
        }
        c.register_caps(nick, caps);
        return c;
    }
    panic!("no connection landed on shard {shard}");
}

/// One WHOIS, every line up to its 318, repeated (bounded) until `want` holds of it.
fn whois_until(c: &mut Client, nick: &str, want: impl Fn(&[Msg]) -> bool) -> Vec<Msg> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        c.send(&format!("WHOIS {nick}"));
        let w = c.collect_until("318");
        if want(&w) {
            return w;
        }
        assert!(Instant::now() < deadline, "{}: WHOIS {nick} never showed what was wanted: {w:?}", c.nick);
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An unregistered connection on shard `shard` that negotiated `sasl` (once Atheme's
/// mechanisms reached that shard), with NICK and USER sent.
fn sasl_client(srv: &Server, nick: &str, shard: usize) -> Client {
    srv.sasl_client(nick, shard, "PLAIN")
}

fn account(w: &[Msg]) -> Option<String> {
    w.iter().find(|m| m.verb == "330").map(|m| m.p(2).to_string())
}

#[test]
fn atheme_links_and_nickserv_sets_accounts_on_both_shards() {
    if !atheme_installed() {
        return;
    }
    let srv = Server::with_config(2, &rustircd_config());
    let relay = Relay::start(srv.addr, "atheme", "rustircd");
    let mut atheme = Atheme::start(relay.addr.port());
    // Atheme's charybdis handshake (3-parameter SERVER, SID in PASS), EUID in both directions.
    let deadline = Instant::now() + Duration::from_secs(15);
    while !srv.log_lines().iter().any(|l| l.contains("Link established: services.test")) {
        assert!(atheme.is_running(), "Atheme exited:\n{}\n{}", atheme.log(), relay.transcript());
        assert!(
            Instant::now() < deadline,
            "Atheme did not link within 15 s:\n{}\n{}",
            atheme.log(),
            relay.transcript()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    relay.wait_line("atheme", &["SERVER services.test 1 :"], Duration::from_secs(1));
    relay.wait_line("atheme", &[":3SV EUID NickServ "], Duration::from_secs(5));
    // MECHLIST comes once our PONG to its PING ended our burst for it.
    relay.wait_line("atheme", &[":3SV ENCAP * MECHLIST :"], Duration::from_secs(5));

    let mut alice = client_on(&srv, "alice", 0, "account-notify");
    let mut bob = client_on(&srv, "bob", 1, "account-notify");
    for c in [&mut alice, &mut bob] {
        c.send("JOIN #acct");
        c.expect_verb("366");
        whois_until(c, "NickServ", |w| w.iter().any(|m| m.verb == "311"));
    }
    relay.wait_line("rustircd", &[" EUID alice "], Duration::from_secs(5));
    let nickserv = "NickServ!NickServ@services.test";
    let notice = |c: &mut Client, text: &str| {
        let nick = c.nick.clone();
        c.expect(&format!("NickServ's NOTICE with {text:?}"), |m: &Msg| {
            m.verb == "NOTICE" && m.source.as_deref() == Some(nickserv) && m.p(0) == nick && m.last().contains(text)
        });
    };
    alice.send(&format!("PRIVMSG NickServ :REGISTER {PASSWORD} alice@example.org"));
    notice(&mut alice, "registered");
    let a = bob.expect("alice's account-notify", |m| m.verb == "ACCOUNT");
    assert_eq!((a.source.as_deref().map(|s| s.starts_with("alice!")), a.p(0)), (Some(true), "alice"), "{}", a.raw);
    relay.wait_line("atheme", &[":3SV ENCAP * SU ", " alice"], Duration::from_secs(1));
    let w = whois_until(&mut bob, "alice", |w| account(w).is_some());
    assert_eq!(account(&w).as_deref(), Some("alice"));

    alice.send("PRIVMSG NickServ :LOGOUT");
    assert_eq!(bob.expect("the logout", |m| m.verb == "ACCOUNT").p(0), "*");
    alice.send(&format!("PRIVMSG NickServ :IDENTIFY {PASSWORD}"));
    assert_eq!(bob.expect("the login", |m| m.verb == "ACCOUNT").p(0), "alice");
    let w = whois_until(&mut alice, "alice", |w| account(w).is_some());
    assert_eq!(account(&w).as_deref(), Some("alice"));
    // A wrong password (bob, on the other shard, for alice's account) sets nothing.
    bob.send("PRIVMSG NickServ :IDENTIFY alice wrongpass");
    notice(&mut bob, "Invalid password");
    let w = whois_until(&mut alice, "bob", |w| w.iter().any(|m| m.verb == "311"));
    assert_eq!(account(&w), None);

    // SASL PLAIN with the registered account, from a client of each shard: relayed to SaslServ
    // and back, registration held until it ends, the account in its introduction.
    for (shard, pass, ok) in [(1, PASSWORD, true), (0, "wrongpass", false), (0, PASSWORD, true)] {
        let nick = format!("sasl{shard}{}", if ok { "ok" } else { "ko" });
        let mut c = sasl_client(&srv, &nick, shard);
        c.send("AUTHENTICATE PLAIN");
        assert_eq!(c.expect_verb("AUTHENTICATE").p(0), "+");
        let plain = base64(format!("\0alice\0{pass}").as_bytes());
        c.send(&format!("AUTHENTICATE {plain}"));
        if ok {
            let logged = c.expect("900", |m| m.verb == "900");
            assert_eq!(logged.p(2), "alice", "{}", logged.raw);
            c.expect_verb("903");
        } else {
            c.expect_verb("904");
        }
        c.send("CAP END");
        c.expect_verb("001");
        let w = whois_until(&mut bob, &nick, |w| w.iter().any(|m| m.verb == "311"));
        assert_eq!(account(&w).as_deref(), if ok { Some("alice") } else { None }, "{w:?}");
    }

    assert!(atheme.is_running(), "Atheme exited:\n{}", atheme.log());
    let errors: Vec<_> = relay.lines().into_iter().filter(|(_, l)| l.starts_with("ERROR")).collect();
    assert!(errors.is_empty(), "ERROR on the link: {errors:?}\n{}", relay.transcript());
}
