//! rustircd-loadtest: load scenarios against any RFC 2812 IRC server, on loopback only.
//!
//! ```text
//! rustircd-loadtest [COMMON OPTIONS] SCENARIO [OPTIONS] [COMMON OPTIONS]
//! rustircd-loadtest channel-load --server 127.0.0.1:6667 [--server-pid PID] [--json] [--hgrm out.hgrm]
//! rustircd-loadtest plot --out cmp.svg a.hgrm b.hgrm ...
//! rustircd-loadtest completions bash|zsh|fish
//! ```
//! `rustircd-loadtest --help` and `rustircd-loadtest SCENARIO --help` list the options;
//! `loadtest/README.md` describes the scenarios.

mod cli;
mod hgrm;
mod net;
mod plot;
mod report;
mod scenarios;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

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
    /// connection-stress: how long the clients idle before the server is weighed.
    pub settle: Duration,
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
    /// history: the channel queried (the first filled), messages per channel (or private
    /// messages) to fill, their length, queries, their LIMIT, private messages instead.
    pub channel: String,
    pub fill: usize,
    pub text_len: usize,
    pub queries: usize,
    pub limit: usize,
    pub private: bool,
    /// `--hgrm`: where the latency distribution goes (and its plot, with `.svg`).
    pub hgrm: Option<PathBuf>,
}

/// The defaults of every option; each scenario's own (see `cli`) replace those it takes.
impl Default for Opts {
    fn default() -> Opts {
        Opts {
            server: "127.0.0.1:6667".parse().unwrap(),
            server_pid: None,
            json: false,
            progress: true,
            threads: 1,
            sources: 0,
            clients: 1000,
            rate: 1000.0,
            duration: Duration::from_secs(10),
            settle: Duration::from_millis(500),
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
            channel: "#history".into(),
            fill: 100,
            text_len: 100,
            queries: 200,
            limit: 100,
            private: false,
            hgrm: None,
        }
    }
}

impl Opts {
    /// The source address for the `i`-th client: loopback addresses spread the ephemeral ports
    /// (about 28,000 per source address).
    pub fn source(&self, i: usize) -> Option<IpAddr> {
        if self.sources <= 1 || !self.server.is_ipv4() {
            return None;
        }
        Some(IpAddr::from([127, 0, 0, 1 + (i % self.sources) as u8]))
    }
}

fn main() -> ExitCode {
    let (scenario, opts) = match cli::parse().action() {
        cli::Action::Scenario(name, opts) => (name, opts),
        cli::Action::Plot(p) => {
            return match plot::plot_files(&p.files, &p.out, p.title.as_deref(), p.log_y) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("rustircd-loadtest plot: {e}");
                    ExitCode::from(1)
                }
            };
        }
        cli::Action::Completions(shell) => {
            clap_complete::generate(shell, &mut cli::command(), "rustircd-loadtest", &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
    };
    let result = match scenario {
        "connection-stress" => scenarios::connection_stress(&opts),
        "message-throughput" => scenarios::message_throughput(&opts),
        "channel-load" => scenarios::channel_load(&opts),
        "big-channel" => scenarios::big_channel(&opts),
        "mixed-workload" => scenarios::mixed(&opts, false),
        "soak" => scenarios::mixed(&opts, true),
        "mass-disconnect" => scenarios::mass_disconnect(&opts),
        "link-burst" => scenarios::link_burst(&opts),
        "history" => scenarios::history(&opts),
        other => Err(format!("unknown scenario {other:?}")),
    };
    match result.and_then(|report| report.finish(opts.json, opts.hgrm.as_deref())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rustircd-loadtest: {e}");
            ExitCode::from(1)
        }
    }
}
