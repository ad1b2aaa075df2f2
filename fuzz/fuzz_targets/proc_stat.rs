#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lifecycle_agent::fuzzing::proc_stat(data));
