//! rustircd-loadtest: load scenarios against any IRC server on loopback (see README.md).

fn main() {
    eprintln!("rustircd-loadtest: no scenarios yet; see loadtest/README.md");
    std::process::exit(2);
}
