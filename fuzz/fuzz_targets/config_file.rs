#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lifecycle_agent::fuzzing::config_file(data));
