//! Results: an HDR latency histogram, counters, the server's and the generator's own resource
//! use, a human summary and one JSON line.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};

/// Latencies in microseconds, 1 µs to 60 s, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// Memory (RSS, KiB) and CPU time (ticks) of a process, from /proc.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcSample {
    pub rss_kib: u64,
    pub cpu_ticks: u64,
    pub fds: u64,
}

pub fn sample_proc(pid: u32) -> Option<ProcSample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let cpu_ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count() as u64).unwrap_or(0);
    Some(ProcSample { rss_kib, cpu_ticks, fds })
}

/// CPU time (ns) all threads of a process have run, from each task's `schedstat` (finer than
/// the clock ticks of `/proc/PID/stat`; threads that already exited are not counted).
pub fn cpu_ns(pid: u32) -> Option<u64> {
    let mut total = 0u64;
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let p = t.ok()?.path().join("schedstat");
        let s = std::fs::read_to_string(p).unwrap_or_default();
        total += s.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    }
    Some(total)
}

/// CPU seconds this process has used (user + system).
pub fn own_cpu() -> f64 {
    // SAFETY: getrusage writes the struct passed in.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

pub fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }) as f64
}

/// A scenario's result, built up field by field, printed at the end.
pub struct Report {
    pub scenario: &'static str,
    started: Instant,
    cpu_start: f64,
    server_pid: Option<u32>,
    server_start: Option<ProcSample>,
    fields: Map<String, Value>,
    lines: Vec<String>,
    /// The measured part of the run (after setup), for CPU figures.
    window: Option<(Instant, f64, Option<ProcSample>)>,
    window_end: Option<(Instant, f64, Option<ProcSample>)>,
    /// Every latency histogram reported, by name, for `--hgrm`.
    histograms: Vec<(String, Histogram<u64>)>,
}

impl Report {
    pub fn new(scenario: &'static str, server_pid: Option<u32>) -> Report {
        Report {
            scenario,
            started: Instant::now(),
            cpu_start: own_cpu(),
            server_pid,
            server_start: server_pid.and_then(sample_proc),
            fields: Map::new(),
            lines: Vec::new(),
            window: None,
            window_end: None,
            histograms: Vec::new(),
        }
    }

    /// Marks the start of the measured part (setup — connecting, joining — is excluded from
    /// the CPU figures).
    pub fn start_window(&mut self) {
        self.window = Some((Instant::now(), own_cpu(), self.server_pid.and_then(sample_proc)));
    }

    pub fn end_window(&mut self) {
        self.window_end = Some((Instant::now(), own_cpu(), self.server_pid.and_then(sample_proc)));
    }

    pub fn set(&mut self, key: &str, v: impl Into<Value>, human: Option<String>) {
        self.fields.insert(key.to_string(), v.into());
        if let Some(h) = human {
            self.lines.push(h);
        }
    }

    pub fn note(&mut self, human: String) {
        self.lines.push(human);
    }

    /// Latency percentiles (µs) under `prefix`.
    pub fn latency(&mut self, prefix: &str, h: &Histogram<u64>) {
        self.histograms.push((prefix.to_string(), h.clone()));
        if h.is_empty() {
            self.note(format!("{prefix} latency: no samples"));
            return;
        }
        let q = |p: f64| h.value_at_quantile(p);
        let (p50, p95, p99, max) = (q(0.5), q(0.95), q(0.99), h.max());
        self.fields.insert(
            format!("{prefix}_latency_us"),
            json!({"p50": p50, "p95": p95, "p99": p99, "max": max, "mean": h.mean().round(), "samples": h.len()}),
        );
        self.lines.push(format!(
            "{prefix} latency: p50 {} p95 {} p99 {} max {} ({} samples)",
            fmt_us(p50),
            fmt_us(p95),
            fmt_us(p99),
            fmt_us(max),
            h.len()
        ));
    }

    /// Server memory per connection from the RSS change over `conns` connections.
    pub fn memory_per_connection(&mut self, before: Option<ProcSample>, after: Option<ProcSample>, conns: usize) {
        if let (Some(b), Some(a)) = (before, after) {
            let delta = a.rss_kib as i64 - b.rss_kib as i64;
            let per = if conns > 0 { delta as f64 * 1024.0 / conns as f64 } else { 0.0 };
            self.set("server_rss_before_kib", b.rss_kib, None);
            self.set("server_rss_after_kib", a.rss_kib, None);
            self.set(
                "server_bytes_per_connection",
                per.round(),
                Some(format!(
                    "server memory: {} KiB → {} KiB for {conns} connections: {:.0} bytes each",
                    b.rss_kib, a.rss_kib, per
                )),
            );
        }
    }

    /// Writes the latency distributions (`--hgrm`): one histogram to `path` and its plot
    /// beside it (`.svg`); several each to `STEM.<name>.hgrm` and `.svg`, and all of them in
    /// one plot at `path` with `.svg`. Empty histograms are left out. Returns the files written.
    fn write_distributions(&mut self, path: &Path) -> Result<Vec<PathBuf>, String> {
        let hists: Vec<&(String, Histogram<u64>)> = self.histograms.iter().filter(|(_, h)| !h.is_empty()).collect();
        let mut written = Vec::new();
        let write = |p: &Path, text: String, written: &mut Vec<PathBuf>| {
            std::fs::write(p, text).map_err(|e| format!("--hgrm: {}: {e}", p.display()))?;
            written.push(p.to_path_buf());
            Ok::<(), String>(())
        };
        let mut curves = Vec::new();
        for (name, h) in &hists {
            let file = if hists.len() == 1 {
                path.to_path_buf()
            } else {
                let stem = path.file_stem().unwrap_or_default().to_string_lossy();
                let ext = path.extension().map_or("hgrm".into(), |e| e.to_string_lossy());
                path.with_file_name(format!("{stem}.{name}.{ext}"))
            };
            let text = crate::hgrm::write(h);
            let dist = crate::hgrm::parse(&text)?;
            let stem = file.file_stem().unwrap_or_default().to_string_lossy().into_owned();
            // The legend's figures from the histogram itself, as in the summary (the rows of
            // the file only bracket them).
            let ms = |us: u64| Some(us as f64 / 1000.0);
            let curve = crate::plot::Curve {
                p50: ms(h.value_at_quantile(0.5)),
                p99: ms(h.value_at_quantile(0.99)),
                max: ms(h.max()),
                ..crate::plot::Curve::new(&stem, &dist)
            };
            let title = format!("{}: {} latency", self.scenario, name.replace('_', " "));
            write(&file, text, &mut written)?;
            write(
                &file.with_extension("svg"),
                crate::plot::svg(std::slice::from_ref(&curve), &title, false),
                &mut written,
            )?;
            curves.push(crate::plot::Curve { label: name.clone(), ..curve });
        }
        if curves.len() > 1 {
            let title = format!("{}: latency", self.scenario);
            write(&path.with_extension("svg"), crate::plot::svg(&curves, &title, false), &mut written)?;
        }
        Ok(written)
    }

    /// Prints the summary (unless `json_only`) and the JSON line, after writing the latency
    /// distributions to `hgrm` when given (a failure to write them is reported after the rest).
    pub fn finish(mut self, json_only: bool, hgrm: Option<&Path>) -> Result<(), String> {
        let mut failed = None;
        if let Some(path) = hgrm {
            match self.write_distributions(path) {
                Ok(files) if files.is_empty() => self.note("--hgrm: no latency samples, no files written".into()),
                Ok(files) => {
                    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
                    self.note(format!("latency distribution ({}): {}", crate::hgrm::UNIT, names.join(", ")));
                    self.fields.insert("hgrm_files".into(), json!(names));
                }
                Err(e) => failed = Some(e),
            }
        }
        let total = self.started.elapsed().as_secs_f64();
        let now = (Instant::now(), own_cpu(), self.server_pid.and_then(sample_proc));
        // CPU over the measured window when the scenario marked one, else over the whole run.
        let (t0, c0, s0) = self.window.unwrap_or((self.started, self.cpu_start, self.server_start));
        let (t1, c1, s1) = self.window_end.unwrap_or(now);
        let wall = t1.duration_since(t0).as_secs_f64().max(1e-6);
        let cpu = c1 - c0;
        self.fields.insert("scenario".into(), self.scenario.into());
        self.fields.insert("wall_seconds".into(), json!((total * 1000.0).round() / 1000.0));
        self.fields.insert("measured_seconds".into(), json!((wall * 1000.0).round() / 1000.0));
        self.fields.insert("generator_cpu_percent".into(), json!((cpu / wall * 1000.0).round() / 10.0));
        self.lines.push(format!(
            "generator CPU: {:.0}% of one core over the measured {wall:.1} s (a saturated generator shows ~100% per thread)",
            cpu / wall * 100.0
        ));
        if let (Some(start), Some(end)) = (s0, s1) {
            let cpu = end.cpu_ticks.saturating_sub(start.cpu_ticks) as f64 / ticks_per_second();
            self.fields.insert("server_cpu_percent".into(), json!((cpu / wall * 1000.0).round() / 10.0));
            self.fields.insert("server_rss_kib".into(), json!(end.rss_kib));
            self.lines.push(format!(
                "server: {:.0}% CPU (of one core), RSS {} KiB, {} fds",
                cpu / wall * 100.0,
                end.rss_kib,
                end.fds
            ));
        }
        if !json_only {
            eprintln!();
            println!("== {} ({:.1} s)", self.scenario, total);
            for l in &self.lines {
                println!("  {l}");
            }
        }
        println!("{}", Value::Object(self.fields));
        failed.map_or(Ok(()), Err)
    }
}

pub fn fmt_us(us: u64) -> String {
    if us >= 10_000 {
        format!("{:.1} ms", us as f64 / 1000.0)
    } else {
        format!("{us} µs")
    }
}

/// A progress line on stderr, at most a few times a second.
pub struct Progress {
    last: Instant,
    enabled: bool,
    total: Duration,
    start: Instant,
}

impl Progress {
    pub fn new(enabled: bool, total: Duration) -> Progress {
        Progress { last: Instant::now(), enabled, total, start: Instant::now() }
    }

    pub fn tick(&mut self, what: impl FnOnce() -> String) {
        if !self.enabled || self.last.elapsed() < Duration::from_millis(250) {
            return;
        }
        self.last = Instant::now();
        let frac = (self.start.elapsed().as_secs_f64() / self.total.as_secs_f64().max(0.001)).min(1.0);
        let filled = (frac * 30.0) as usize;
        eprint!("\r[{}{}] {:3.0}% {}   ", "#".repeat(filled), ".".repeat(30 - filled), frac * 100.0, what());
    }
}
