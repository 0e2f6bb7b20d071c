//! `rustircd`: reads the command line and config, starts one shard per core, and turns signals
//! into stop (SIGINT, SIGTERM) and reload (SIGHUP).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use rustircd::cli;
use rustircd::commands::envelope::ToMain;
use rustircd::config::{Config, ConfigError};
use rustircd::server::{Control, IrcShard};
use shards::{Runtime, RuntimeConfig};

fn load(args: &cli::Args) -> Result<Config, Vec<ConfigError>> {
    match &args.config {
        Some(p) => Config::load(p),
        None => Ok(Config::embedded()),
    }
}

fn print_errors(errs: &[ConfigError]) {
    for e in errs {
        eprintln!("config error: {e}");
    }
}

fn main() -> ExitCode {
    let args = match cli::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("rustircd: {e}\n\n{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
    if args.help {
        print!("{}", cli::USAGE);
        return ExitCode::SUCCESS;
    }
    if args.version {
        println!("rustircd {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    if args.mkpasswd {
        return mkpasswd();
    }
    let mut cfg = match load(&args) {
        Ok(c) => c,
        Err(errs) => {
            print_errors(&errs);
            eprintln!("rustircd: {} error(s) in the configuration", errs.len());
            return ExitCode::from(1);
        }
    };
    if args.check_config {
        println!("configuration OK: {}", cfg.source);
        return ExitCode::SUCCESS;
    }
    if !args.listen.is_empty() {
        // --listen replaces the plain-text listeners; TLS listeners stay.
        cfg.listen.retain(|l| l.tls.is_some());
        let plain = args.listen.iter().map(|a| rustircd::config::Listen { address: *a, tls: None });
        cfg.listen.splice(0..0, plain);
    }
    if let Err(e) = rustircd::logging::init(&cfg.logging) {
        eprintln!("rustircd: {e}");
        return ExitCode::from(1);
    }
    match run(args, cfg) {
        Ok(Ended::Stopped) => ExitCode::SUCCESS,
        Ok(Ended::Restart) => {
            // The same program and command line, in this process (same PID for supervisors).
            use std::os::unix::process::CommandExt;
            let mut argv = std::env::args_os();
            let program = std::env::current_exe().unwrap_or_else(|_| argv.next().unwrap_or_default().into());
            let err = std::process::Command::new(program).args(std::env::args_os().skip(1)).exec();
            log::error!("RESTART failed: {err}");
            eprintln!("rustircd: restart failed: {err}");
            ExitCode::from(1)
        }
        Err(e) => {
            log::error!("{e}");
            eprintln!("rustircd: {e}");
            ExitCode::from(1)
        }
    }
}

/// `--mkpasswd`: one line from stdin (a terminal or a pipe) to an argon2id hash on stdout.
fn mkpasswd() -> ExitCode {
    let mut line = String::new();
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        eprint!("Password: ");
    }
    if std::io::stdin().read_line(&mut line).is_err() {
        eprintln!("rustircd: could not read a password from stdin");
        return ExitCode::from(1);
    }
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        eprintln!("rustircd: empty password");
        return ExitCode::from(1);
    }
    println!("{}", rustircd::commands::oper::oper::hash_password(password));
    ExitCode::SUCCESS
}

/// How `run` ended: stopped, or asked to start again (RESTART).
enum Ended {
    Stopped,
    Restart,
}

fn run(args: cli::Args, cfg: Config) -> Result<Ended, String> {
    let online = shards::allowed_cpus().len();
    let cores = args.cores.unwrap_or(online);
    if cores > online {
        return Err(format!("--cores {cores}: this process may use only {online} core(s)"));
    }
    let fds = shards::raise_nofile_limit().map_err(|e| format!("reading the open-file limit: {e}"))?;
    let capacity = fds.connection_capacity(cores, 16);
    log::info!(
        "Open-file limit raised to {} (hard {}): capacity {} connections across {} shard(s)",
        fds.soft,
        fds.hard,
        capacity,
        cores
    );
    if cfg.listen.is_empty() {
        log::warn!("No listeners configured: the server accepts no clients");
    }
    let rcfg = RuntimeConfig {
        cores,
        listeners: cfg
            .listen
            .iter()
            .enumerate()
            .map(|(i, l)| shards::ListenSpec { addr: l.address, tag: i as u32, tls: l.tls.clone() })
            .collect(),
        mesh_capacity: cfg.runtime.mesh_capacity,
        batch: shards::BatchPolicy {
            max_messages: cfg.batch.max_batch_size,
            max_bytes: cfg.batch.max_batch_bytes,
            max_delay: cfg.batch.max_batch_delay,
        },
        preempt_timer: cfg.runtime.preempt_timer,
        spin_before_park: (!cfg.runtime.spin_before_park.is_zero()).then_some(cfg.runtime.spin_before_park),
        capacity,
        full_message: format!("ERROR :Closing Link: {} (Server is full)\r\n", cfg.server.name).into_bytes(),
        ..RuntimeConfig::default()
    };
    let started = rustircd::clock::unix_now();
    let (bans, errors) = rustircd::persist::load(&cfg.server.data_dir, started);
    for e in &errors {
        log::warn!("Ban file: {e}");
    }
    log::info!("Bans loaded: {} from {}", bans.len(), rustircd::persist::path(&cfg.server.data_dir).display());
    // The one writer of the ban file, shared by the shards (their blocking jobs write through it).
    let bans = Arc::new(rustircd::persist::BanStore::new(bans));
    let shared = Arc::new(cfg);
    let factory_cfg = shared.clone();
    // A port of 0 is chosen at bind time; the shards are told the real one (sts names it).
    let with_bound = |cfg: &Arc<Config>, bound: &[std::net::SocketAddr]| -> Arc<Config> {
        if cfg.listen.iter().zip(bound).all(|(l, b)| l.address == *b) {
            return cfg.clone();
        }
        let mut c = (**cfg).clone();
        for (l, b) in c.listen.iter_mut().zip(bound) {
            l.address = *b;
        }
        Arc::new(c)
    };
    // The runtime pins shard i to the i-th CPU this process may use (read here: inside a
    // shard, the thread may use only its own).
    let cpus = shards::allowed_cpus();
    let rt: Runtime<Control> = Runtime::start(rcfg, move |shard, bound| {
        let cpu = cpus.get(shard).copied();
        IrcShard::new(with_bound(&factory_cfg, bound), shard, cores, started, bans.clone(), cpu)
    })
    .map_err(|e| e.to_string())?;
    let shared = with_bound(&shared, rt.bound());
    for addr in rt.bound() {
        log::info!("Listening on {addr}");
    }
    for (shard, cpu) in rt.cpus().iter().enumerate() {
        log::info!("Shard {shard} pinned to CPU {cpu}");
    }
    if let Some(addr) = shared.metrics.listen {
        start_metrics(addr, rt.controller(), started)?;
    }
    log::info!("{} ready: {} shard(s), config {}", shared.server.name, cores, shared.source);

    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ])
    .map_err(|e| format!("installing signal handlers: {e}"))?;
    let mut current = shared;
    let mut ended = Ended::Stopped;
    'wait: loop {
        for sig in signals.pending() {
            match sig {
                signal_hook::consts::SIGHUP => {
                    log::info!("Config reload requested: SIGHUP");
                    if let Ok(cfg) = reload(&args, &rt, &current) {
                        current = cfg;
                    }
                }
                _ => {
                    log::info!("Signal {sig} received: stopping");
                    break 'wait;
                }
            }
        }
        for (shard, msg) in rt.requests() {
            let Ok(msg) = msg.downcast::<ToMain>() else { continue };
            match *msg {
                ToMain::Rehash { conn } => {
                    log::info!("Config reload requested: REHASH (shard {shard})");
                    let errors = match reload(&args, &rt, &current) {
                        Ok(cfg) => {
                            current = cfg;
                            Vec::new()
                        }
                        Err(errors) => errors,
                    };
                    rt.control(shard, Control::Rehashed { conn, errors });
                }
                ToMain::Restart => {
                    log::warn!("Restart requested by an operator");
                    ended = Ended::Restart;
                    break 'wait;
                }
            }
        }
        if rt.stop_wanted() {
            log::info!("Stop requested by an operator");
            break;
        }
        if rt.finished() {
            return Err("a shard stopped unexpectedly".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    rt.stop();
    // The shards drain their connections for up to 3 s; a shard that does not finish well
    // after that must not keep the process (and its port) forever.
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(rt.wait());
    });
    match finished.recv_timeout(Duration::from_secs(15)) {
        Ok(r) => r.map_err(|e| e.to_string())?,
        Err(_) => return Err("a shard did not stop within 15 s; exiting anyway".into()),
    }
    log::info!("Server stopped");
    Ok(ended)
}

/// The Prometheus endpoint, on its own thread; configured but impossible to serve is an error.
fn start_metrics(addr: std::net::SocketAddr, ctl: shards::Controller<Control>, started: u64) -> Result<(), String> {
    let listener = std::net::TcpListener::bind(addr)
        .map_err(|e| format!("cannot serve metrics on {addr} ([metrics] address): {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    let names: Vec<&'static str> = rustircd::commands::COMMANDS.iter().map(|c| c.name).collect();
    let scrape = move || {
        let reports = rustircd::server::gather(&ctl, Duration::from_secs(2));
        if reports.len() < ctl.cores() {
            log::warn!("Metrics scrape: {} of {} shards answered in time", reports.len(), ctl.cores());
        }
        let process = rustircd::metrics::prometheus::Process::read(started, ctl.cores(), reports.len());
        rustircd::metrics::prometheus::render(&reports, &process, &names)
    };
    rustircd::metrics::http::serve(listener, scrape).map_err(|e| format!("starting the metrics thread: {e}"))?;
    log::info!("Metrics on http://{bound}/metrics");
    Ok(())
}

/// SIGHUP and REHASH: re-read the config file; a valid one replaces the old on every shard,
/// a bad one is logged (and its errors returned for the oper) and the old stays live.
fn reload(args: &cli::Args, rt: &Runtime<Control>, current: &Arc<Config>) -> Result<Arc<Config>, Vec<String>> {
    let loaded = match &args.config {
        Some(path) => Config::load(path),
        // The embedded default cannot change; re-applying it is harmless and keeps one path.
        None => Ok(Config::embedded()),
    };
    match loaded {
        Ok(mut cfg) => {
            // Listeners are bound at start; the running ones stay, but a TLS listener takes the
            // certificate and key read now (new connections use them; none is dropped).
            // TLS listeners are matched in order: the k-th running one takes the k-th one of
            // the new file (their addresses cannot change without a restart).
            let fresh: Vec<_> = cfg.listen.iter().filter(|l| l.tls.is_some()).cloned().collect();
            let mut listen = current.listen.clone();
            let mut k = 0;
            for (i, l) in listen.iter_mut().enumerate() {
                if l.tls.is_none() {
                    continue;
                }
                match fresh.get(k) {
                    Some(new) => {
                        l.tls = new.tls.clone();
                        rt.set_tls(i, new.tls.clone());
                        log::info!("TLS certificate reloaded for {}", l.address);
                    }
                    None => log::warn!("Config reload: TLS listener {} is no longer configured; it keeps its certificate until restart", l.address),
                }
                k += 1;
            }
            cfg.listen = listen;
            if cfg.metrics != current.metrics {
                log::warn!("Config reload: a new [metrics] address takes effect at the next start");
                cfg.metrics = current.metrics.clone();
            }
            let cfg = Arc::new(cfg);
            // Every shard takes it (at its next tick) before anyone is told it is done.
            let (done, taken) = std::sync::mpsc::channel();
            for s in 0..rt.cores() {
                rt.control(s, Control::Reload(cfg.clone(), Some(done.clone())));
            }
            for _ in 0..rt.cores() {
                if taken.recv_timeout(Duration::from_secs(5)).is_err() {
                    log::warn!("Config reload: a shard did not confirm within 5 s");
                    break;
                }
            }
            log::info!("Config reloaded from {}", cfg.source);
            Ok(cfg)
        }
        Err(errs) => {
            for e in &errs {
                log::error!("Config reload failed: {e}");
            }
            log::error!("Config reload failed with {} error(s); the previous configuration stays", errs.len());
            Err(errs.iter().map(|e| e.to_string()).collect())
        }
    }
}
