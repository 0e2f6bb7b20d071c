//! The command line.

use std::net::SocketAddr;
use std::path::PathBuf;

pub const USAGE: &str = "\
Usage: rustircd [--cores N] [--config FILE] [--listen HOST:PORT]... [--check-config]
       rustircd --mkpasswd
       rustircd --fingerprint CERT.pem

  --cores N           shards to run, one pinned to each core (default: every core this process may use)
  --config FILE       configuration file (default: the embedded config/rustircd.toml)
  --listen HOST:PORT  listen here instead of the configured plain-text listeners (repeatable)
  --check-config      validate the configuration, print every error, and exit
  --mkpasswd          read a password from stdin, print its argon2id hash for an [[opers]] block
  --fingerprint FILE  print the SHA-256 fingerprint of a PEM certificate, for [[links]] fingerprint
  -h, --help          this text
  -V, --version       the version
";

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Args {
    pub cores: Option<usize>,
    pub config: Option<PathBuf>,
    pub listen: Vec<SocketAddr>,
    pub check_config: bool,
    pub mkpasswd: bool,
    pub fingerprint: Option<PathBuf>,
    pub help: bool,
    pub version: bool,
}

pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Args, String> {
    let mut a = Args::default();
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            inline.clone().or_else(|| it.next()).ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "--cores" => {
                let v = value("--cores")?;
                let n: usize = v.parse().map_err(|_| format!("--cores {v:?}: not a number"))?;
                if n == 0 {
                    return Err("--cores must be at least 1".into());
                }
                a.cores = Some(n);
            }
            "--config" => a.config = Some(PathBuf::from(value("--config")?)),
            "--listen" => {
                let v = value("--listen")?;
                a.listen
                    .push(v.parse().map_err(|_| format!("--listen {v:?}: not HOST:PORT (an IP address and a port)"))?);
            }
            "--check-config" => a.check_config = true,
            "--mkpasswd" => a.mkpasswd = true,
            "--fingerprint" => a.fingerprint = Some(PathBuf::from(value("--fingerprint")?)),
            "-h" | "--help" => a.help = true,
            "-V" | "--version" => a.version = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &[&str]) -> Result<Args, String> {
        parse(s.iter().map(|s| s.to_string()))
    }

    #[test]
    fn flags() {
        let a = p(&["--cores", "2", "--listen", "127.0.0.1:0", "--listen=[::1]:7000", "--config=x.toml"]).unwrap();
        assert_eq!(a.cores, Some(2));
        assert_eq!(a.listen.len(), 2);
        assert_eq!(a.config.unwrap().to_str(), Some("x.toml"));
        assert!(p(&["--cores", "0"]).is_err());
        assert!(p(&["--cores"]).is_err());
        assert!(p(&["--listen", "nowhere"]).is_err());
        assert!(p(&["--bogus"]).is_err());
        assert!(p(&["--check-config"]).unwrap().check_config);
        assert_eq!(p(&["--fingerprint", "c.pem"]).unwrap().fingerprint.unwrap().to_str(), Some("c.pem"));
        assert!(p(&["--fingerprint"]).is_err());
    }
}
