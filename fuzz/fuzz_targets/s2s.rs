//! See `rustircd::fuzzing::s2s`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rustircd::fuzzing::s2s(data));
