//! rustircd-loadtest: load scenarios against any RFC 2812 IRC server, on loopback only.
//!
//! ```text
//! rustircd-loadtest SCENARIO --server 127.0.0.1:6667 [--server-pid PID] [--json] [options]
//! ```
//! See `loadtest/README.md` for the scenarios and their options.

mod net;
mod report;
mod scenarios;

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

pub const USAGE: &str = "\
Usage: rustircd-loadtest SCENARIO --server HOST:PORT [--server-pid PID] [--json] [options]

Scenarios:
  connection-stress  --clients N --rate R            open and register N clients at R per second
  message-throughput --pairs P --rate R --duration D  private messages between P pairs (R=0: as fast as possible)
  channel-load       --channels C --users-per-channel M --rate R --duration D
                                                       channel messages, every member receives (R=0: saturation)
  big-channel        --members N [--messages K]      JOIN, NAMES and PRIVMSG timings on one N-member channel
  mixed-workload     --clients N --rate R --duration D  joins, parts, nick changes, messages, WHO/WHOIS, reconnects
  soak               --clients N --rate R --duration D  a steady mixed load; reports the server's RSS trend
  mass-disconnect    --clients N [--quit-half] [--channel-size M]
                                                       N clients (in channels of M if given) leave at once:
                                                       server CPU, time until LUSERS shows them gone, a
                                                       bystander's PING round trips
  link-burst         --users N --channels C --per-channel M [--messages K] [--split close|squit]
                                                       the harness links as a TS6 server and bursts N users in
                                                       C channels of M: burst time in and out, split cleanup
                                                       seen by observers, per-hop message latency both ways
                     [--link-password PW] [--peer-name NAME --peer-sid SID] [--peer2-name NAME --peer2-sid SID]
                     [--observer-channels J] [--no-burst-out] [--client-server HOST:PORT] [--callgrind]
                                                       (--server: where links connect; --client-server: where
                                                       the observers do, when the server keeps them apart;
                                                       --callgrind: the server runs under valgrind's callgrind,
                                                       dumped at each phase's end with callgrind_control)

Common options:
  --server HOST:PORT   the server (a loopback address: 127.0.0.0/8 or ::1)
  --server-pid PID     the server's process, for memory and CPU figures
  --threads T          generator threads (default 1)
  --sources S          spread clients over S source addresses 127.0.0.1.. (default: as needed)
  --json               print only the JSON line
  --quiet              no progress bar
";

#[derive(Clone, Debug)]
pub struct Opts {
    pub server: SocketAddr,
    pub server_pid: Option<u32>,
    pub json: bool,
    pub progress: bool,
    pub threads: usize,
    pub sources: usize,
    pub clients: usize,
    pub rate: f64,
    pub duration: Duration,
    pub pairs: usize,
    pub channels: usize,
    pub users_per_channel: usize,
    pub members: usize,
    pub messages: usize,
    pub quit_half: bool,
    pub channel_size: usize,
    /// link-burst: users and members per channel in the burst, the link's names and password,
    /// channels per observer, how the link is split, whether a second peer takes the server's
    /// own burst.
    pub users: usize,
    pub per_channel: usize,
    pub link_password: String,
    pub peer_name: String,
    pub peer_sid: String,
    pub peer2_name: String,
    pub peer2_sid: String,
    pub observer_channels: usize,
    pub split_squit: bool,
    pub burst_out: bool,
    pub client_server: Option<SocketAddr>,
    pub callgrind: bool,
    /// The options given on the command line (a scenario's own defaults apply to the others).
    pub given: Vec<String>,
}

impl Opts {
    /// Whether `flag` was on the command line.
    pub fn has(&self, flag: &str) -> bool {
        self.given.iter().any(|g| g == flag)
    }

    /// The source address for the `i`-th client: loopback addresses spread the ephemeral ports
    /// (about 28,000 per source address).
    pub fn source(&self, i: usize) -> Option<IpAddr> {
        if self.sources <= 1 || !self.server.is_ipv4() {
            return None;
        }
        Some(IpAddr::from([127, 0, 0, 1 + (i % self.sources) as u8]))
    }
}

fn parse(args: &[String]) -> Result<(String, Opts), String> {
    let scenario = args.first().ok_or("no scenario given")?.clone();
    let mut o = Opts {
        server: "127.0.0.1:6667".parse().unwrap(),
        server_pid: None,
        json: false,
        progress: true,
        threads: 1,
        sources: 0,
        clients: 1000,
        rate: 1000.0,
        duration: Duration::from_secs(10),
        pairs: 50,
        channels: 10,
        users_per_channel: 10,
        members: 1000,
        messages: 20,
        quit_half: false,
        channel_size: 0,
        users: 10_000,
        per_channel: 10,
        link_password: "loadtest".into(),
        peer_name: "peer-a.loadtest".into(),
        peer_sid: "9LA".into(),
        peer2_name: "peer-b.loadtest".into(),
        peer2_sid: "9LB".into(),
        observer_channels: 25,
        split_squit: false,
        burst_out: true,
        client_server: None,
        callgrind: false,
        given: Vec::new(),
    };
    let mut it = args[1..].iter();
    while let Some(a) = it.next() {
        o.given.push(a.clone());
        let mut val = || it.next().cloned().ok_or(format!("{a} needs a value"));
        let num = |v: String| v.parse::<f64>().map_err(|_| format!("{a}: {v:?} is not a number"));
        match a.as_str() {
            "--server" => o.server = val()?.parse().map_err(|_| "--server: not HOST:PORT".to_string())?,
            "--server-pid" => o.server_pid = Some(num(val()?)? as u32),
            "--json" => o.json = true,
            "--quiet" => o.progress = false,
            "--threads" => o.threads = (num(val()?)? as usize).max(1),
            "--sources" => o.sources = num(val()?)? as usize,
            "--clients" => o.clients = num(val()?)? as usize,
            "--rate" => o.rate = num(val()?)?,
            "--duration" => o.duration = Duration::from_secs_f64(parse_secs(&val()?)?),
            "--pairs" => o.pairs = num(val()?)? as usize,
            "--channels" => o.channels = num(val()?)? as usize,
            "--users-per-channel" => o.users_per_channel = num(val()?)? as usize,
            "--members" => o.members = num(val()?)? as usize,
            "--messages" => o.messages = num(val()?)? as usize,
            "--quit-half" => o.quit_half = true,
            "--channel-size" => o.channel_size = num(val()?)? as usize,
            "--users" => o.users = num(val()?)? as usize,
            "--per-channel" => o.per_channel = (num(val()?)? as usize).max(1),
            "--link-password" => o.link_password = val()?,
            "--peer-name" => o.peer_name = val()?,
            "--peer-sid" => o.peer_sid = val()?,
            "--peer2-name" => o.peer2_name = val()?,
            "--peer2-sid" => o.peer2_sid = val()?,
            "--observer-channels" => o.observer_channels = (num(val()?)? as usize).max(1),
            "--split" => {
                o.split_squit = match val()?.as_str() {
                    "close" => false,
                    "squit" => true,
                    v => return Err(format!("--split: {v:?} is neither close nor squit")),
                }
            }
            "--no-burst-out" => o.burst_out = false,
            "--callgrind" => o.callgrind = true,
            "--client-server" => {
                o.client_server = Some(val()?.parse().map_err(|_| "--client-server: not HOST:PORT".to_string())?)
            }
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    if !o.server.ip().is_loopback() {
        return Err(format!("--server {}: only loopback addresses (127.0.0.0/8, ::1) may be load-tested", o.server));
    }
    if let Some(c) = o.client_server.filter(|c| !c.ip().is_loopback()) {
        return Err(format!("--client-server {c}: only loopback addresses (127.0.0.0/8, ::1) may be load-tested"));
    }
    if o.duration > Duration::from_secs(24 * 3600) {
        return Err("--duration: at most 24h".into());
    }
    if o.sources == 0 {
        let most = o.clients.max(o.pairs * 2).max(o.channels * o.users_per_channel).max(o.members);
        o.sources = most / 20_000 + 1;
    }
    if o.json {
        o.progress = false;
    }
    Ok((scenario, o))
}

/// "30", "30s", "5m", "500ms".
fn parse_secs(s: &str) -> Result<f64, String> {
    let (num, mul) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (s, 1.0)
    };
    num.parse::<f64>().map(|v| v * mul).map_err(|_| format!("{s:?} is not a duration"))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || args.iter().any(|a| a == "-h" || a == "--help") {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let (scenario, opts) = match parse(&args) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("rustircd-loadtest: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match scenario.as_str() {
        "connection-stress" => scenarios::connection_stress(&opts),
        "message-throughput" => scenarios::message_throughput(&opts),
        "channel-load" => scenarios::channel_load(&opts),
        "big-channel" => scenarios::big_channel(&opts),
        "mixed-workload" => scenarios::mixed(&opts, false),
        "soak" => scenarios::mixed(&opts, true),
        "mass-disconnect" => scenarios::mass_disconnect(&opts),
        "link-burst" => scenarios::link_burst(&opts),
        other => Err(format!("unknown scenario {other:?}")),
    };
    match result {
        Ok(report) => {
            report.finish(opts.json);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rustircd-loadtest: {e}");
            ExitCode::from(1)
        }
    }
}
