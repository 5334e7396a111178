//! Link the shim's binary as a position-dependent executable (`-no-pie`).
//!
//! A PIE binary gets its ~250 KiB of `.data.rel.ro` (vtables, string and panic-location
//! tables of the runtime, serde and oci-spec) written by the dynamic loader's relocations at
//! every start: private dirty memory in every shim, i.e. in every container. Linked at a fixed
//! address those pages need no relocation and stay clean and shared between all shims, which
//! halves an idle shim's private memory (~470 → ~220 KiB). The cost is a main image without
//! ASLR (heap, stack and libraries stay randomised) in a root-only process whose only input is
//! a 0600 socket. Binaries of other packages (the `skiff` package's `skiff-shim`) need the same
//! line in their own build script: link arguments do not propagate from a dependency.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-link-arg-bins=-no-pie");
}
