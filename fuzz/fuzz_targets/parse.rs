//! See `rustircd::fuzzing::parse`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rustircd::fuzzing::parse(data));
