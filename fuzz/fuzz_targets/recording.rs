#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lifecycle_recording::fuzzing::recording(data));
