//! `skiff-shim-dev`: the shim, built inside its own package for its tests (see Cargo.toml).

fn main() {
    std::process::exit(skiff_shim::main());
}
