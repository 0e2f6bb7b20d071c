//! See `rustircd::fuzzing::dispatch`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rustircd::fuzzing::dispatch(data));
