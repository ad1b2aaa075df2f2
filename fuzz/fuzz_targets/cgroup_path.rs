#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lifecycle_recording::fuzzing::cgroup_path(data));
