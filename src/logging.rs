//! Logging through `log`/`env_logger`: to stderr, or appended to the file the config names.
//! `RUST_LOG` overrides the configured level.

use std::fs::OpenOptions;

use crate::config::Logging;

pub fn init(cfg: &Logging) -> Result<(), String> {
    let mut b = env_logger::Builder::new();
    b.filter_level(cfg.level.parse().unwrap_or(log::LevelFilter::Info));
    if let Ok(spec) = std::env::var("RUST_LOG") {
        b.parse_filters(&spec);
    }
    // env_logger's own layout, written plainly: its default formatter re-scans every message
    // for line breaks to indent (~4,000 instructions a line, callgrind; a client's connect and
    // disconnect lines are logged).
    b.format(|buf, record| {
        use std::io::Write;
        writeln!(buf, "[{} {:<5} {}] {}", buf.timestamp_millis(), record.level(), record.target(), record.args())
    });
    if let Some(path) = &cfg.file {
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("cannot open log file {}: {e}", path.display()))?;
        b.target(env_logger::Target::Pipe(Box::new(f)));
    }
    b.try_init().map_err(|e| e.to_string())
}
