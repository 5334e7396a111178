//! Arbitrary bytes through the Dockerfile parser, planner, stage steps, .dockerignore,
//! variable expansion and the small value parsers: nothing may panic.
//!
//! Run (stable toolchain): `RUSTC_BOOTSTRAP=1 cargo fuzz run dockerfile` from
//! `crates/skiff-build` (or `cargo +nightly fuzz run dockerfile`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    skiff_build::fuzzing::exercise(data);
});
