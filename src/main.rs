//! `rustircd`: reads the command line and config, starts one shard per core, and turns signals
//! into stop (SIGINT, SIGTERM) and reload (SIGHUP).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use rustircd::cli;
use rustircd::config::{Config, ConfigError};
use rustircd::glue::{Control, IrcShard, ToMain};
use rustircd::persist::BanStore;
use shards::{Runtime, RuntimeConfig};

fn load(args: &cli::Args) -> Result<Config, Vec<ConfigError>> {
    match &args.config {
        Some(p) => Config::load(p),
        // The embedded default cannot change; re-applying it on reload is harmless and keeps one path.
        None => Ok(Config::embedded()),
    }
}

fn print_errors(errs: &[ConfigError]) {
    for e in errs {
        eprintln!("config error: {e}");
    }
}

/// jemalloc, not glibc's malloc: it keeps objects of one size together, so when thousands of
/// quiet connections free their task and readiness source (shards' sleep.rs) whole pages come
/// free and go back to the system. Under glibc the same frees leave holes between the clients'
/// records and the process keeps its size (measured: 2,114 B per idle client with glibc,
/// 1,257 B with jemalloc; docs/performance.md).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read before `main`: a background thread returns pages freed for a
/// second (`dirty_decay_ms`) at once (`muzzy_decay_ms:0`), instead of only when the server
/// next allocates — an idle server allocates almost nothing.
#[export_name = "_rjem_malloc_conf"]
pub static MALLOC_CONF: &[u8; 60] = b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

fn main() -> ExitCode {
    let args = match cli::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("rustircd: {e}\n\n{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
    if let Some(code) = answer_without_config(&args) {
        return code;
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
    listen_override(&mut cfg, &args.listen);
    if let Err(e) = rustircd::logging::init(&cfg.logging) {
        eprintln!("rustircd: {e}");
        return ExitCode::from(1);
    }
    exit_code(run(args, cfg))
}

/// `--help`, `--version`, `--mkpasswd` and `--fingerprint`: answered before any config is read.
fn answer_without_config(args: &cli::Args) -> Option<ExitCode> {
    if args.help {
        print!("{}", cli::USAGE);
        return Some(ExitCode::SUCCESS);
    }
    if args.version {
        println!("rustircd {}", env!("CARGO_PKG_VERSION"));
        return Some(ExitCode::SUCCESS);
    }
    if let Some(cert) = &args.fingerprint {
        return Some(match rustircd::certpin::of_pem_file(cert) {
            Ok(fp) => {
                println!("{}", rustircd::certpin::to_hex(&fp));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("rustircd: {e}");
                ExitCode::from(1)
            }
        });
    }
    args.mkpasswd.then(mkpasswd)
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
    println!("{}", rustircd::password::hash(password));
    ExitCode::SUCCESS
}

/// `--listen` replaces the plain-text IRC listeners; TLS and WebSocket listeners stay.
fn listen_override(cfg: &mut Config, listen: &[SocketAddr]) {
    if listen.is_empty() {
        return;
    }
    cfg.listen.retain(|l| l.tls.is_some() || l.websocket);
    let plain = listen.iter().map(|a| rustircd::config::Listen { address: *a, tls: None, websocket: false });
    cfg.listen.splice(0..0, plain);
}

/// How `run` ended: stopped, or asked to start again (RESTART).
enum Ended {
    Stopped,
    Restart,
}

fn exit_code(ended: Result<Ended, String>) -> ExitCode {
    match ended {
        Ok(Ended::Stopped) => ExitCode::SUCCESS,
        Ok(Ended::Restart) => restart(),
        Err(e) => {
            log::error!("{e}");
            eprintln!("rustircd: {e}");
            ExitCode::from(1)
        }
    }
}

/// The same program and command line, in this process (same PID for supervisors); returns
/// only when that fails.
fn restart() -> ExitCode {
    use std::os::unix::process::CommandExt;
    let mut argv = std::env::args_os();
    let program = std::env::current_exe().unwrap_or_else(|_| argv.next().unwrap_or_default().into());
    let err = std::process::Command::new(program).args(std::env::args_os().skip(1)).exec();
    log::error!("RESTART failed: {err}");
    eprintln!("rustircd: restart failed: {err}");
    ExitCode::from(1)
}

/// The server's life: start the shards, serve until a stop, stop them.
fn run(args: cli::Args, cfg: Config) -> Result<Ended, String> {
    let cores = cores(&args)?;
    let capacity = raise_open_files(cores)?;
    if cfg.listen.is_empty() {
        log::warn!("No listeners configured: the server accepts no clients");
    }
    let started = rustircd::clock::unix_now();
    let bans = load_bans(&cfg, started);
    let (history, writer) = open_history(&cfg, cores);
    let (rt, current) = start_shards(cfg, cores, capacity, started, bans, history)?;
    for addr in rt.bound() {
        log::info!("Listening on {addr}");
    }
    for (shard, cpu) in rt.cpus().iter().enumerate() {
        log::info!("Shard {shard} pinned to CPU {cpu}");
    }
    if let Some(addr) = current.metrics.listen {
        start_metrics(addr, rt.controller(), started)?;
    }
    log::info!("{} ready: {} shard(s), config {}", current.server.name, cores, current.source);
    let ended = serve(&args, &rt, current)?;
    stop(rt)?;
    if let Some(w) = writer {
        finish_history(w);
    }
    Ok(ended)
}

/// The history store, when kept on disk: each shard's part, and the writer thread.
type HistoryParts = (Vec<Option<rustircd::glue::History>>, Option<std::thread::JoinHandle<()>>);

fn open_history(cfg: &Config, cores: usize) -> HistoryParts {
    if !cfg.history.enabled || !cfg.history.persist {
        return ((0..cores).map(|_| None).collect(), None);
    }
    let t = std::time::Instant::now();
    let opened = match rustircd::history_db::open(&cfg.server.data_dir, cfg.server.casemapping, cores) {
        Ok(o) => o,
        // As with the ban file: the server still serves, history is kept in memory only.
        Err(e) => {
            log::error!("{e}: history is kept in memory only until a restart");
            return ((0..cores).map(|_| None).collect(), None);
        }
    };
    let count: usize = opened.loaded.iter().map(Vec::len).sum();
    log::info!(
        "History loaded: {count} entries from {} in {} ms",
        rustircd::history_db::path(&cfg.server.data_dir).display(),
        t.elapsed().as_millis()
    );
    if opened.skipped > 0 {
        log::warn!("History store: {} entries could not be read and were skipped", opened.skipped);
    }
    // Whoever creates a channel first after a restart would get its log: only an open
    // channel's comes back (`history_db`).
    for (chan, letters, n) in &opened.erased {
        match letters {
            Some(l) => log::info!("History: {chan} was closed (+{l}): its log is not restored ({n} entries erased)"),
            None => log::info!(
                "History: {chan}'s log was written before its channel modes were kept, so it may have been \
                 closed: not restored ({n} entries erased)"
            ),
        }
    }
    let (sink, markers) = (opened.sink, Arc::new(opened.markers));
    let parts = opened
        .loaded
        .into_iter()
        .map(|loaded| Some(rustircd::glue::History { sink: sink.clone(), loaded, markers: markers.clone() }))
        .collect();
    (parts, Some(opened.writer))
}

/// The shards are gone (and their senders with them): the writer commits what is left and
/// ends. Waited for a few seconds at most.
fn finish_history(writer: std::thread::JoinHandle<()>) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !writer.is_finished() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    if writer.is_finished() {
        let _ = writer.join();
    } else {
        log::warn!("History store: the writer did not finish within 5 s");
    }
}

/// `--cores`, or every CPU this process may use.
fn cores(args: &cli::Args) -> Result<usize, String> {
    let online = shards::allowed_cpus().len();
    let cores = args.cores.unwrap_or(online);
    if cores > online {
        return Err(format!("--cores {cores}: this process may use only {online} core(s)"));
    }
    Ok(cores)
}

/// Raises the open-file limit as far as allowed; returns the connections that fit in it.
fn raise_open_files(cores: usize) -> Result<usize, String> {
    let fds = shards::raise_nofile_limit().map_err(|e| format!("reading the open-file limit: {e}"))?;
    let capacity = fds.connection_capacity(cores, 16);
    log::info!(
        "Open-file limit raised to {} (hard {}): capacity {} connections across {} shard(s)",
        fds.soft,
        fds.hard,
        capacity,
        cores
    );
    Ok(capacity)
}

/// The ban file, read once at start.
fn load_bans(cfg: &Config, started: u64) -> Arc<BanStore> {
    let (bans, errors) = rustircd::persist::load(&cfg.server.data_dir, started);
    for e in &errors {
        log::warn!("Ban file: {e}");
    }
    log::info!("Bans loaded: {} from {}", bans.len(), rustircd::persist::path(&cfg.server.data_dir).display());
    // The one writer of the ban file, shared by the shards (their blocking jobs write through it).
    Arc::new(BanStore::new(bans))
}

/// Starts the runtime with one `IrcShard` per core; returns it and the config with the
/// addresses the listeners are bound to.
fn start_shards(
    cfg: Config,
    cores: usize,
    capacity: usize,
    started: u64,
    bans: Arc<BanStore>,
    history: Vec<Option<rustircd::glue::History>>,
) -> Result<(Runtime<Control>, Arc<Config>), String> {
    let rcfg = runtime_config(&cfg, cores, capacity);
    let shared = Arc::new(cfg);
    let factory_cfg = shared.clone();
    // The runtime pins shard i to the i-th CPU this process may use (read here: inside a
    // shard, the thread may use only its own).
    let cpus = shards::allowed_cpus();
    // Each shard takes its part once (the factory is called from each shard's thread).
    let history = std::sync::Mutex::new(history);
    let rt: Runtime<Control> = Runtime::start(rcfg, move |shard, bound| {
        let cpu = cpus.get(shard).copied();
        let h = history.lock().ok().and_then(|mut h| h.get_mut(shard).and_then(Option::take));
        IrcShard::new(with_bound(&factory_cfg, bound), shard, cores, started, bans.clone(), cpu, h)
    })
    .map_err(|e| e.to_string())?;
    let shared = with_bound(&shared, rt.bound());
    Ok((rt, shared))
}

fn runtime_config(cfg: &Config, cores: usize, capacity: usize) -> RuntimeConfig {
    RuntimeConfig {
        cores,
        listeners: cfg
            .listen
            .iter()
            .enumerate()
            .map(|(i, l)| shards::ListenSpec {
                addr: l.address,
                tag: i as u32,
                tls: l.tls.clone(),
                websocket: l.websocket,
            })
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
        sleep_after: (!cfg.runtime.sleep_after.is_zero()).then_some(cfg.runtime.sleep_after),
        full_message: format!("ERROR :Closing Link: {} (Server is full)\r\n", cfg.server.name).into_bytes(),
        ..RuntimeConfig::default()
    }
}

/// A port of 0 is chosen at bind time; the shards are told the real one (sts names it).
fn with_bound(cfg: &Arc<Config>, bound: &[SocketAddr]) -> Arc<Config> {
    if cfg.listen.iter().zip(bound).all(|(l, b)| l.address == *b) {
        return cfg.clone();
    }
    let mut c = (**cfg).clone();
    for (l, b) in c.listen.iter_mut().zip(bound) {
        l.address = *b;
    }
    Arc::new(c)
}

/// The Prometheus endpoint, on its own thread; configured but impossible to serve is an error.
fn start_metrics(addr: SocketAddr, ctl: shards::Controller<Control>, started: u64) -> Result<(), String> {
    let listener = std::net::TcpListener::bind(addr)
        .map_err(|e| format!("cannot serve metrics on {addr} ([metrics] address): {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    let names = rustircd::glue::command_names();
    let scrape = move || {
        let reports = rustircd::glue::gather(&ctl, Duration::from_secs(2));
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

/// Until a stop: signals, operators' requests, and a watch on the shards. The thread sleeps
/// until a signal or a shard's request comes (a shard asking to stop sends one), or a second
/// passed for the watch: an idle server's main thread wakes every 5 s.
fn serve(args: &cli::Args, rt: &Runtime<Control>, mut current: Arc<Config>) -> Result<Ended, String> {
    let signals = Signals::watch()?;
    rt.serving();
    loop {
        if let Some(ended) = on_signals(&signals.received, args, rt, &mut current) {
            return Ok(ended);
        }
        if let Some(ended) = on_requests(args, rt, &mut current) {
            return Ok(ended);
        }
        if rt.stop_wanted() {
            log::info!("Stop requested by an operator");
            return Ok(Ended::Stopped);
        }
        if rt.finished() {
            return Err("a shard stopped unexpectedly".into());
        }
        let mut select = crossbeam_channel::Select::new();
        select.recv(&signals.received);
        select.recv(rt.requests_receiver());
        let _ = select.ready_timeout(Duration::from_secs(5));
    }
}

/// SIGINT, SIGTERM and SIGHUP, forwarded by a thread of their own to a channel the main
/// thread can wait on with the shards' requests. Dropped: the thread ends.
struct Signals {
    received: crossbeam_channel::Receiver<i32>,
    handle: signal_hook::iterator::Handle,
}

impl Signals {
    fn watch() -> Result<Signals, String> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
            .map_err(|e| format!("installing signal handlers: {e}"))?;
        let handle = signals.handle();
        let (tx, received) = crossbeam_channel::unbounded();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for sig in signals.forever() {
                    if tx.send(sig).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| format!("starting the signal thread: {e}"))?;
        Ok(Signals { received, handle })
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        self.handle.close();
    }
}

/// SIGHUP reloads the config; SIGINT and SIGTERM stop (`Some`).
fn on_signals(
    signals: &crossbeam_channel::Receiver<i32>,
    args: &cli::Args,
    rt: &Runtime<Control>,
    current: &mut Arc<Config>,
) -> Option<Ended> {
    for sig in signals.try_iter() {
        if sig != signal_hook::consts::SIGHUP {
            log::info!("Signal {sig} received: stopping");
            return Some(Ended::Stopped);
        }
        log::info!("Config reload requested: SIGHUP");
        if let Ok(cfg) = reload(args, rt, current) {
            *current = cfg;
        }
    }
    None
}

/// REHASH (answered on the asking shard) and RESTART (`Some`) from operators.
fn on_requests(args: &cli::Args, rt: &Runtime<Control>, current: &mut Arc<Config>) -> Option<Ended> {
    for (shard, msg) in rustircd::glue::requests(rt) {
        match msg {
            ToMain::Rehash { conn } => {
                log::info!("Config reload requested: REHASH (shard {shard})");
                let errors = match reload(args, rt, current) {
                    Ok(cfg) => {
                        *current = cfg;
                        Vec::new()
                    }
                    Err(errors) => errors,
                };
                rt.control(shard, Control::Rehashed { conn, errors });
            }
            ToMain::Restart => {
                log::warn!("Restart requested by an operator");
                return Some(Ended::Restart);
            }
        }
    }
    None
}

/// Stops the shards. They drain their connections for up to 3 s; a shard that does not finish
/// well after that must not keep the process (and its port) forever.
fn stop(rt: Runtime<Control>) -> Result<(), String> {
    rt.stop();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(rt.wait());
    });
    match finished.recv_timeout(Duration::from_secs(15)) {
        Ok(r) => r.map_err(|e| e.to_string())?,
        Err(_) => return Err("a shard did not stop within 15 s; exiting anyway".into()),
    }
    log::info!("Server stopped");
    Ok(())
}

/// SIGHUP and REHASH: re-read the config file; a valid one replaces the old on every shard,
/// a bad one is logged (and its errors returned for the oper) and the old stays live.
fn reload(args: &cli::Args, rt: &Runtime<Control>, current: &Arc<Config>) -> Result<Arc<Config>, Vec<String>> {
    let mut cfg = match load(args) {
        Ok(cfg) => cfg,
        Err(errs) => {
            for e in &errs {
                log::error!("Config reload failed: {e}");
            }
            log::error!("Config reload failed with {} error(s); the previous configuration stays", errs.len());
            return Err(errs.iter().map(|e| e.to_string()).collect());
        }
    };
    keep_listeners(&mut cfg, current, rt);
    if cfg.metrics != current.metrics {
        log::warn!("Config reload: a new [metrics] address takes effect at the next start");
        cfg.metrics = current.metrics.clone();
    }
    let cfg = Arc::new(cfg);
    hand_to_shards(rt, &cfg);
    log::info!("Config reloaded from {}", cfg.source);
    Ok(cfg)
}

/// Listeners are bound at start; the running ones stay, but a TLS listener takes the
/// certificate and key read now (new connections use them; none is dropped). TLS listeners
/// are matched in order: the k-th running one takes the k-th one of the new file (their
/// addresses cannot change without a restart).
fn keep_listeners(cfg: &mut Config, current: &Config, rt: &Runtime<Control>) {
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
            None => log::warn!(
                "Config reload: TLS listener {} is no longer configured; it keeps its certificate until restart",
                l.address
            ),
        }
        k += 1;
    }
    cfg.listen = listen;
}

/// Every shard takes the new config (at its next tick) before anyone is told it is done.
fn hand_to_shards(rt: &Runtime<Control>, cfg: &Arc<Config>) {
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
}
