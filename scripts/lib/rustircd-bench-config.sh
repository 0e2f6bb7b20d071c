# Sourced by the benchmark scripts (side-by-side.sh, callgrind-compare.sh, link-perf.sh).
# rustircd_bench_config DIR PORT MOTD: prints the rustircd configuration every benchmark runs
# the server under test with (one exempt class for loopback, logging at warn); a script adds
# its own sections after it.
rustircd_bench_config() {
  cat <<CONF
[server]
name = "irc.rustircd.test"
sid = "0RC"
network = "LoadNet"
description = "server under test"
motd = "$3"
data_dir = "$1/rustircd-data"

[server.admin]
location = "here"
email = "admin@rustircd.test"

[limits]
max_channels = 100

[[listen]]
address = "127.0.0.1:$2"

[[classes]]
name = "local"
hosts = ["127.*"]
sendq = "16MiB"
recvq = "64KiB"
max_clients = 100000
exempt = true

[logging]
level = "warn"
CONF
}
