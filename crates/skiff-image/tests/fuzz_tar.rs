//! Fuzz-style: random and mutated tar bytes never panic and never write outside the target.

mod common;

use common::{gzip, is_root, Layer, Sandbox};
use skiff_image::unpack::{apply_layer, apply_layer_to_rootfs, ApplyOptions, Limits};

/// xorshift64*: a seeded RNG with no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn seed_layer(outside: &str) -> Vec<u8> {
    let mut l = Layer::new();
    l.dir("a", 0o755)
        .file("a/f", b"content")
        .symlink("a/s", outside)
        .symlink("up", "../../..")
        .hardlink("a/h", "a/f")
        .file("a/.wh.f", b"")
        .file("a/.wh..wh..opq", b"")
        .pax(&[("SCHILY.xattr.user.x", b"1")])
        .file("b/c/d", b"deep")
        .raw(tar::EntryType::Regular, "../escape", "", b"x")
        .raw(tar::EntryType::Link, "l", "../../x", b"");
    if is_root() {
        l.node("n", tar::EntryType::Fifo, 0, 0, 0o600);
    }
    l.finish()
}

#[test]
fn mutated_tars_never_escape_or_panic() {
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let s0 = Sandbox::new();
    let seed = seed_layer(s0.outside.to_str().unwrap());
    let o = ApplyOptions {
        layer: "fuzz".into(),
        chown: is_root(),
        limits: Limits {
            max_total_bytes: 1 << 20,
            max_entries: 1000,
            ..Limits::default()
        },
        ..Default::default()
    };
    let iterations = 400;
    for i in 0..iterations {
        let mut bytes = seed.clone();
        match i % 4 {
            0 => {
                for _ in 0..1 + rng.below(16) {
                    let p = rng.below(bytes.len());
                    bytes[p] = rng.next() as u8;
                }
            }
            1 => {
                // Mutate header bytes only (first 512 of a random block), with fixed checksums.
                let blocks = bytes.len() / 512;
                let b = rng.below(blocks) * 512;
                for _ in 0..1 + rng.below(8) {
                    let p = b + rng.below(512);
                    bytes[p] = rng.next() as u8;
                }
                let mut h = tar::Header::from_byte_slice(&bytes[b..b + 512]).clone();
                h.set_cksum();
                bytes[b..b + 512].copy_from_slice(h.as_bytes());
            }
            2 => bytes.truncate(rng.below(bytes.len())),
            _ => bytes = (0..rng.below(4096)).map(|_| rng.next() as u8).collect(),
        }
        let blob = if i % 8 == 3 { gzip(&bytes) } else { bytes };
        let s = Sandbox::new();
        let before = s.outside_state();
        let _ = if i % 2 == 0 {
            apply_layer(&blob[..], None, &s.target, &o)
        } else {
            apply_layer_to_rootfs(&blob[..], None, &s.target, &o)
        };
        assert_eq!(
            before,
            s.outside_state(),
            "iteration {i} wrote outside the target"
        );
    }
}
