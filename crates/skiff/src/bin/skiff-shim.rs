//! `skiff-shim <container-dir>`: the per-container monitor the daemon starts (see the
//! skiff-shim crate for the protocol).

fn main() {
    std::process::exit(skiff_shim::main());
}
