//! Link the per-container monitor (`skiff-shim`) as a non-PIE executable: with PIE, the
//! loader writes ~250 KiB of relocated data into every shim process (private, dirty memory
//! per container); non-PIE keeps those pages shared and clean. Only that binary is affected.
fn main() {
    println!("cargo:rustc-link-arg-bin=skiff-shim=-no-pie");
}
