//! The command line, with clap's derive API: a subcommand per scenario (each with its own
//! options and defaults, documented in its `--help`), the common options accepted before or
//! after the scenario name (`global`), and two tools: `plot` (latency distributions side by
//! side) and `completions` (shell completion scripts). The scenarios take the plain [`Opts`]
//! built from it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::Opts;

const AFTER_HELP: &str = "\
Common options (--server, --server-pid, --threads, --sources, --json, --quiet, --hgrm) go before
or after the scenario's name. `rustircd-loadtest SCENARIO --help` lists a scenario's options.
Every run prints a summary and one JSON line; loadtest/README.md describes the scenarios.";

#[derive(Parser, Debug)]
#[command(
    name = "rustircd-loadtest",
    version,
    about = "Load scenarios against any RFC 2812 IRC server, on loopback only",
    after_help = AFTER_HELP,
    arg_required_else_help = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub common: Common,
    #[command(subcommand)]
    pub command: Command,
}

/// The options every scenario takes, before or after its name.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Common options")]
pub struct Common {
    /// The server under test: a loopback address (127.0.0.0/8 or [::1]) and port
    #[arg(long, global = true, value_name = "HOST:PORT", default_value = "127.0.0.1:6667", value_parser = loopback)]
    pub server: SocketAddr,
    /// The server's process id: its memory and CPU use (from /proc) go into the report
    #[arg(long, global = true, value_name = "PID")]
    pub server_pid: Option<u32>,
    /// Generator threads (message-throughput and channel-load share their pairs or channels
    /// among them)
    #[arg(long, global = true, value_name = "T", default_value = "1", value_parser = count)]
    pub threads: usize,
    /// Spread the clients over S source addresses 127.0.0.1, 127.0.0.2, … (0: one per 20,000
    /// clients, enough ephemeral ports)
    #[arg(long, global = true, value_name = "S", default_value = "0", value_parser = count)]
    pub sources: usize,
    /// Print only the JSON line (no summary, no progress)
    #[arg(long, global = true)]
    pub json: bool,
    /// No progress bar
    #[arg(long, global = true)]
    pub quiet: bool,
    /// Write the latency distribution to PATH (HdrHistogram's percentile-distribution text,
    /// values in milliseconds) and its plot to PATH with the extension .svg. A scenario with
    /// several latency histograms (link-burst) writes STEM.<histogram>.hgrm (and .svg) for each
    /// beside PATH, and all of them in one plot at PATH with .svg. Default: no files
    #[arg(long, global = true, value_name = "PATH", value_parser = hgrm_path)]
    pub hgrm: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Open and register N clients at R per second: registrations/s, failures, registration
    /// latency, server memory per connection
    ConnectionStress(ConnectionStress),
    /// Private messages between P pairs of clients: delivered/s, latency, loss
    MessageThroughput(MessageThroughput),
    /// One sender per channel, every member receives: deliveries/s, latency, loss
    ChannelLoad(ChannelLoad),
    /// One N-member channel: JOIN → 366, NAMES → 366, PRIVMSG → last member (medians of K)
    BigChannel(BigChannel),
    /// Joins, parts, nick changes, channel and private messages, WHO/WHOIS, quits and
    /// reconnects: operations, message latency, unexpected error numerics
    MixedWorkload(Mixed),
    /// The mixed load, steady, sampling the server's RSS each second: RSS trend (KiB/min)
    Soak(Mixed),
    /// N registered clients (in channels of M) leave at once while a bystander PINGs every
    /// 10 ms: server CPU, time until LUSERS is back, bystander PING latency
    MassDisconnect(MassDisconnect),
    /// Link as a TS6 server (ircd-hybrid 8.2's dialect) and burst N users in C channels of M:
    /// burst in and out, per-hop latency both ways, split cleanup
    LinkBurst(LinkBurst),
    /// Chat history (draft/chathistory): fill C channels with F messages each (or F private
    /// messages), then time N sequential CHATHISTORY LATEST queries until their BATCH -id
    History(History),
    /// Plot .hgrm latency distributions (one curve per file, labelled with the file's stem) into
    /// one SVG, latency against percentile on a 1/(1-p) axis
    Plot(Plot),
    /// Print a shell completion script (bash: `source <(rustircd-loadtest completions bash)`)
    Completions(Completions),
}

#[derive(Args, Debug)]
pub struct ConnectionStress {
    /// Clients to open and register
    #[arg(long, value_name = "N", default_value = "1000", value_parser = count)]
    pub clients: usize,
    /// Connections opened per second (0: as fast as the server takes them, 500 at a time)
    #[arg(long, value_name = "R", default_value = "1000", value_parser = rate)]
    pub rate: f64,
    /// How long the clients stay idle before the server's memory is read
    #[arg(long, value_name = "D", default_value = "500ms", value_parser = duration)]
    pub settle: Duration,
}

#[derive(Args, Debug)]
pub struct MessageThroughput {
    /// Pairs of clients; the first of each sends to the second
    #[arg(long, value_name = "P", default_value = "50", value_parser = count)]
    pub pairs: usize,
    /// Messages per second in all (0: as fast as 32 in flight per pair allow)
    #[arg(long, value_name = "R", default_value = "1000", value_parser = rate)]
    pub rate: f64,
    /// How long to send: 30, 30s, 500ms, 5m, 1h
    #[arg(long, value_name = "D", default_value = "10", value_parser = duration)]
    pub duration: Duration,
}

#[derive(Args, Debug)]
pub struct ChannelLoad {
    /// Channels, each with its own sender
    #[arg(long, value_name = "C", default_value = "10", value_parser = count)]
    pub channels: usize,
    /// Members per channel, the sender included (at least 2)
    #[arg(long, value_name = "M", default_value = "10", value_parser = count)]
    pub users_per_channel: usize,
    /// Messages per second in all (0: as fast as 32 in flight per channel allow, saturation)
    #[arg(long, value_name = "R", default_value = "1000", value_parser = rate)]
    pub rate: f64,
    /// How long to send: 30, 30s, 500ms, 5m, 1h
    #[arg(long, value_name = "D", default_value = "10", value_parser = duration)]
    pub duration: Duration,
}

#[derive(Args, Debug)]
pub struct BigChannel {
    /// Members of the channel
    #[arg(long, value_name = "N", default_value = "1000", value_parser = count)]
    pub members: usize,
    /// Tries of each timing (the medians are reported)
    #[arg(long, value_name = "K", default_value = "20", value_parser = count)]
    pub messages: usize,
}

#[derive(Args, Debug)]
pub struct Mixed {
    /// Clients, in channels of about 20
    #[arg(long, value_name = "N", default_value = "1000", value_parser = count)]
    pub clients: usize,
    /// Operations per second (0: 1000)
    #[arg(long, value_name = "R", default_value = "1000", value_parser = rate)]
    pub rate: f64,
    /// How long to run: 30, 30s, 500ms, 5m, 1h
    #[arg(long, value_name = "D", default_value = "10", value_parser = duration)]
    pub duration: Duration,
}

#[derive(Args, Debug)]
pub struct MassDisconnect {
    /// Clients that leave at once
    #[arg(long, value_name = "N", default_value = "1000", value_parser = count)]
    pub clients: usize,
    /// Every other client sends QUIT before its socket closes
    #[arg(long)]
    pub quit_half: bool,
    /// Put the clients in channels of M members first, so that each departure fans out a QUIT
    /// (0: no channels)
    #[arg(long, value_name = "M", default_value = "0", value_parser = count)]
    pub channel_size: usize,
}

#[derive(Args, Debug)]
pub struct LinkBurst {
    /// Users in peer A's burst
    #[arg(long, value_name = "N", default_value = "10000", value_parser = count)]
    pub users: usize,
    /// Channels in the burst
    #[arg(long, value_name = "C", default_value = "1000", value_parser = count)]
    pub channels: usize,
    /// Members per burst channel (consecutive users, the first opped)
    #[arg(long, value_name = "M", default_value = "10", value_parser = count)]
    pub per_channel: usize,
    /// Messages timed in each direction (private and channel, to and from peer A)
    #[arg(long, value_name = "K", default_value = "1000", value_parser = count)]
    pub messages: usize,
    /// How peer A's link ends: its socket closed (as a crash) or an SQUIT
    #[arg(long, value_enum, default_value = "close")]
    pub split: Split,
    /// The link password, both ways
    #[arg(long, value_name = "PW", default_value = "loadtest")]
    pub link_password: String,
    /// Peer A's server name
    #[arg(long, value_name = "NAME", default_value = "peer-a.loadtest")]
    pub peer_name: String,
    /// Peer A's SID
    #[arg(long, value_name = "SID", default_value = "9LA")]
    pub peer_sid: String,
    /// Peer B's server name (it takes the server's own burst)
    #[arg(long, value_name = "NAME", default_value = "peer-b.loadtest")]
    pub peer2_name: String,
    /// Peer B's SID
    #[arg(long, value_name = "SID", default_value = "9LB")]
    pub peer2_sid: String,
    /// Burst channels per observer client (one observer per J channels)
    #[arg(long, value_name = "J", default_value = "25", value_parser = count)]
    pub observer_channels: usize,
    /// Skip the burst out (peer B)
    #[arg(long)]
    pub no_burst_out: bool,
    /// Where the observers connect, when the server takes clients on another port than
    /// servers (--server is where the links connect)
    #[arg(long, value_name = "HOST:PORT", value_parser = loopback)]
    pub client_server: Option<SocketAddr>,
    /// The server runs under valgrind's callgrind: dump its counts at each phase's end (vgdb)
    #[arg(long)]
    pub callgrind: bool,
}

#[derive(Args, Debug)]
pub struct History {
    /// The channel queried; with --channels C > 1 the others filled are CHANNEL-1 … CHANNEL-(C-1)
    #[arg(long, value_name = "NAME", default_value = "#history")]
    pub channel: String,
    /// Channels filled (one filler client per 50)
    #[arg(long, value_name = "C", default_value = "1", value_parser = count)]
    pub channels: usize,
    /// Messages sent into each channel before the queries (0: query what the server keeps)
    #[arg(long, value_name = "F", default_value = "100", value_parser = count)]
    pub fill: usize,
    /// Characters of text per fill message
    #[arg(long, value_name = "L", default_value = "100", value_parser = count)]
    pub text_len: usize,
    /// Fill messages per second in all (0: as fast as the fillers' PING window allows)
    #[arg(long, value_name = "R", default_value = "5000", value_parser = rate)]
    pub rate: f64,
    /// The longest the fill may take: 30, 30s, 500ms, 5m, 1h
    #[arg(long, value_name = "D", default_value = "10m", value_parser = duration)]
    pub duration: Duration,
    /// CHATHISTORY LATEST queries, one after the other (0: only fill)
    #[arg(long, value_name = "N", default_value = "200", value_parser = count)]
    pub queries: usize,
    /// Each query's limit
    #[arg(long, value_name = "L", default_value = "100", value_parser = count)]
    pub limit: usize,
    /// Fill with private messages to the asker (F of them) and query that conversation
    #[arg(long)]
    pub private: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Split {
    Close,
    Squit,
}

#[derive(Args, Debug)]
pub struct Plot {
    /// The SVG to write
    #[arg(long, short, value_name = "SVG")]
    pub out: PathBuf,
    /// The title above the plot (default: "Latency by percentile")
    #[arg(long)]
    pub title: Option<String>,
    /// Latency on a logarithmic axis (for tails many times the median)
    #[arg(long)]
    pub log_y: bool,
    /// HdrHistogram percentile distributions (.hgrm, values in milliseconds), one curve each
    #[arg(required = true, value_name = "HGRM")]
    pub files: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct Completions {
    /// The shell
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// The common options' ids (their field names).
const COMMON: [&str; 7] = ["server", "server_pid", "threads", "sources", "json", "quiet", "hgrm"];

/// The command line's definition, built: the common options propagated to every subcommand,
/// and hidden in the tools' (`plot`, `completions`), which ignore them.
pub fn command() -> clap::Command {
    let mut cmd = Cli::command();
    cmd.build();
    for tool in ["plot", "completions"] {
        // (mut_args keeps the order the built command's lookups rely on; mut_arg would not)
        cmd = cmd.mut_subcommand(tool, |sc| {
            sc.mut_args(|a| {
                let common = COMMON.contains(&a.get_id().as_str());
                a.hide(common)
            })
        });
    }
    cmd
}

/// Parses the process' arguments (on an error or `--help`, prints and exits).
pub fn parse() -> Cli {
    let m = command().get_matches();
    Cli::from_arg_matches(&m).unwrap_or_else(|e| e.exit())
}

/// What to run (made once: its size does not matter).
#[allow(clippy::large_enum_variant)]
pub enum Action {
    Scenario(&'static str, Opts),
    Plot(Plot),
    Completions(clap_complete::Shell),
}

impl Cli {
    /// The scenario and its options (the other fields of [`Opts`] keep their defaults), or the
    /// tool to run.
    pub fn action(self) -> Action {
        let c = self.common;
        let mut o = Opts {
            server: c.server,
            server_pid: c.server_pid,
            json: c.json,
            progress: !c.quiet && !c.json,
            threads: c.threads.max(1),
            sources: c.sources,
            hgrm: c.hgrm,
            ..Opts::default()
        };
        let name = match self.command {
            Command::ConnectionStress(a) => {
                (o.clients, o.rate, o.settle) = (a.clients, a.rate, a.settle);
                "connection-stress"
            }
            Command::MessageThroughput(a) => {
                (o.pairs, o.rate, o.duration) = (a.pairs, a.rate, a.duration);
                "message-throughput"
            }
            Command::ChannelLoad(a) => {
                (o.channels, o.users_per_channel, o.rate, o.duration) =
                    (a.channels, a.users_per_channel, a.rate, a.duration);
                "channel-load"
            }
            Command::BigChannel(a) => {
                (o.members, o.messages) = (a.members, a.messages);
                "big-channel"
            }
            Command::MixedWorkload(a) => {
                (o.clients, o.rate, o.duration) = (a.clients, a.rate, a.duration);
                "mixed-workload"
            }
            Command::Soak(a) => {
                (o.clients, o.rate, o.duration) = (a.clients, a.rate, a.duration);
                "soak"
            }
            Command::MassDisconnect(a) => {
                (o.clients, o.quit_half, o.channel_size) = (a.clients, a.quit_half, a.channel_size);
                "mass-disconnect"
            }
            Command::LinkBurst(a) => {
                o.users = a.users;
                o.channels = a.channels;
                o.per_channel = a.per_channel.max(1);
                o.messages = a.messages;
                o.split_squit = a.split == Split::Squit;
                o.link_password = a.link_password;
                o.peer_name = a.peer_name;
                o.peer_sid = a.peer_sid;
                o.peer2_name = a.peer2_name;
                o.peer2_sid = a.peer2_sid;
                o.observer_channels = a.observer_channels.max(1);
                o.burst_out = !a.no_burst_out;
                o.client_server = a.client_server;
                o.callgrind = a.callgrind;
                "link-burst"
            }
            Command::History(a) => {
                (o.channel, o.channels, o.fill, o.text_len, o.rate, o.duration) =
                    (a.channel, a.channels, a.fill, a.text_len, a.rate, a.duration);
                (o.queries, o.limit, o.private) = (a.queries, a.limit, a.private);
                "history"
            }
            Command::Plot(p) => return Action::Plot(p),
            Command::Completions(c) => return Action::Completions(c.shell),
        };
        if o.sources == 0 {
            let most = o.clients.max(o.pairs * 2).max(o.channels * o.users_per_channel).max(o.members);
            o.sources = most / 20_000 + 1;
        }
        Action::Scenario(name, o)
    }
}

/// A socket address on loopback (the harness loads nothing else).
fn loopback(s: &str) -> Result<SocketAddr, String> {
    let a: SocketAddr = s.parse().map_err(|_| format!("{s:?} is not HOST:PORT (e.g. 127.0.0.1:6667 or [::1]:6667)"))?;
    if !a.ip().is_loopback() {
        return Err(format!("{a}: only loopback addresses (127.0.0.0/8, ::1) may be load-tested"));
    }
    Ok(a)
}

/// A count: a whole number (as before, `1e4` and `1000.0` are taken too).
fn count(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) => Ok(n),
        Err(_) => match s.parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => Ok(v as usize),
            _ => Err(format!("{s:?} is not a number")),
        },
    }
}

/// A rate per second, 0 or more.
fn rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a rate (a number, 0 or more)")),
    }
}

/// "30", "30s", "5m", "500ms", "1h"; at most 24 h.
fn duration(s: &str) -> Result<Duration, String> {
    let secs = parse_secs(s)?;
    if !(0.0..=24.0 * 3600.0).contains(&secs) {
        return Err(format!("{s:?}: between 0 and 24h"));
    }
    Ok(Duration::from_secs_f64(secs))
}

pub fn parse_secs(s: &str) -> Result<f64, String> {
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

/// An output path whose folder exists (checked now, not after a long run).
fn hgrm_path(s: &str) -> Result<PathBuf, String> {
    let p = PathBuf::from(s);
    if p.file_name().is_none() || s.ends_with('/') {
        return Err(format!("{s:?} is not a file name"));
    }
    let dir = p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    if !dir.is_dir() {
        return Err(format!("{}: no such folder", dir.display()));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Action, clap::Error> {
        let m = command().try_get_matches_from(std::iter::once("rustircd-loadtest").chain(args.iter().copied()))?;
        Cli::from_arg_matches(&m).map(Cli::action)
    }

    fn scenario(args: &[&str]) -> (&'static str, Opts) {
        match parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}")) {
            Action::Scenario(n, o) => (n, o),
            _ => panic!("{args:?}: not a scenario"),
        }
    }

    #[test]
    fn the_definition_is_consistent() {
        command().debug_assert();
        let plot = command().find_subcommand("plot").unwrap().get_arguments().filter(|a| !a.is_hide_set()).count();
        assert_eq!(plot, 5, "plot: --out, --title, --log-y, the files, --help");
    }

    #[test]
    fn common_options_go_before_or_after_the_scenario() {
        let a = scenario(&["--server", "127.0.0.2:7000", "--json", "channel-load", "--channels", "3"]);
        let b = scenario(&["channel-load", "--channels", "3", "--server", "127.0.0.2:7000", "--json"]);
        let c = scenario(&["--server", "127.0.0.2:7000", "channel-load", "--json", "--channels", "3"]);
        for (name, o) in [a, b, c] {
            assert_eq!(name, "channel-load");
            assert_eq!(o.server, "127.0.0.2:7000".parse().unwrap());
            assert!(o.json && !o.progress);
            assert_eq!(o.channels, 3);
        }
    }

    #[test]
    fn defaults_are_the_scenarios_own() {
        let (_, o) = scenario(&["channel-load"]);
        assert_eq!((o.channels, o.users_per_channel, o.rate, o.duration), (10, 10, 1000.0, Duration::from_secs(10)));
        assert_eq!(o.server, "127.0.0.1:6667".parse().unwrap());
        assert!(o.progress && !o.json && o.hgrm.is_none());
        let (_, o) = scenario(&["link-burst"]);
        assert_eq!((o.users, o.channels, o.per_channel, o.messages, o.observer_channels), (10_000, 1000, 10, 1000, 25));
        assert!(!o.split_squit && o.burst_out && !o.callgrind);
        assert_eq!((o.peer_name.as_str(), o.peer_sid.as_str()), ("peer-a.loadtest", "9LA"));
        let (_, o) = scenario(&["big-channel"]);
        assert_eq!((o.members, o.messages), (1000, 20));
        let (n, o) = scenario(&["soak", "--duration", "5m", "--rate", "0"]);
        assert_eq!((n, o.duration, o.rate), ("soak", Duration::from_secs(300), 0.0));
    }

    #[test]
    fn every_option_the_scripts_pass_parses() {
        // scripts/perf-run.sh, ab-compare.sh, link-perf.sh
        scenario(&[
            "channel-load",
            "--channels",
            "100",
            "--users-per-channel",
            "50",
            "--rate",
            "1000",
            "--duration",
            "10",
        ]);
        scenario(&["message-throughput", "--pairs", "100", "--rate", "100000", "--duration", "10"]);
        scenario(&["big-channel", "--members", "1000", "--messages", "20", "--server-pid", "1", "--json", "--quiet"]);
        scenario(&["connection-stress", "--clients", "10000", "--rate", "5000"]);
        let (_, o) = scenario(&["connection-stress", "--settle", "20", "--clients", "10"]);
        assert_eq!(o.settle, Duration::from_secs(20));
        assert_eq!(scenario(&["connection-stress"]).1.settle, Duration::from_millis(500));
        scenario(&["mass-disconnect", "--clients", "50", "--quit-half", "--channel-size", "50"]);
        let (_, o) = scenario(&[
            "link-burst",
            "--server",
            "127.0.0.1:7000",
            "--client-server",
            "127.0.0.1:7001",
            "--server-pid",
            "42",
            "--users",
            "300",
            "--channels",
            "20",
            "--per-channel",
            "10",
            "--messages",
            "20",
            "--split",
            "squit",
            "--callgrind",
            "--no-burst-out",
            "--observer-channels",
            "12",
            "--json",
        ]);
        assert!(o.split_squit && o.callgrind && !o.burst_out);
        assert_eq!((o.server_pid, o.client_server), (Some(42), Some("127.0.0.1:7001".parse().unwrap())));
    }

    #[test]
    fn refusals() {
        let err = |args: &[&str]| parse(args).err().unwrap_or_else(|| panic!("{args:?} parsed")).to_string();
        assert!(err(&["channel-load", "--server", "10.1.2.3:6667"]).contains("only loopback"));
        assert!(err(&["link-burst", "--client-server", "192.168.1.1:6667"]).contains("only loopback"));
        assert!(err(&["channel-load", "--duration", "25h"]).contains("24h"));
        assert!(err(&["channel-load", "--rate", "fast"]).contains("not a rate"));
        assert!(err(&["link-burst", "--split", "both"]).contains("both"));
        // an option of another scenario
        assert!(err(&["channel-load", "--pairs", "3"]).contains("--pairs"));
        assert!(err(&["no-such-scenario"]).contains("no-such-scenario"));
        assert!(err(&["soak", "--hgrm", "/no/such/folder/x.hgrm"]).contains("no such folder"));
    }

    #[test]
    fn counts_and_durations() {
        assert_eq!(count("1e4"), Ok(10_000));
        assert_eq!(count("12"), Ok(12));
        assert!(count("-1").is_err());
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(duration("1.5"), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn sources_follow_the_client_count() {
        assert_eq!(scenario(&["connection-stress", "--clients", "50000"]).1.sources, 3);
        assert_eq!(scenario(&["connection-stress", "--clients", "50000", "--sources", "1"]).1.sources, 1);
        assert_eq!(scenario(&["channel-load"]).1.sources, 1);
    }

    #[test]
    fn plot_and_completions() {
        match parse(&["plot", "--out", "x.svg", "a.hgrm", "b.hgrm"]).unwrap() {
            Action::Plot(p) => assert_eq!(p.files.len(), 2),
            _ => panic!("not plot"),
        }
        assert!(parse(&["plot", "--out", "x.svg"]).is_err());
        assert!(matches!(parse(&["completions", "zsh"]).unwrap(), Action::Completions(clap_complete::Shell::Zsh)));
    }
}
