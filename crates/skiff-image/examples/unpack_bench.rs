//! Focused measurement of layer application alone (no registry, no store): the layers of
//! `bench/pull.rs` (busybox + 2000 small files; 3000 small files; 60 MB random; 2 x 25 MB
//! random; 35 MB random + 1000 small files), gzip'd in memory, applied with `apply_layer`
//! into fresh directories, one after another (`seq`) and all at once on threads (`par`).
//!
//! ```text
//! cargo run --release -p skiff-image --example unpack_bench -- [--runs N] [--dir DIR]
//!     [--writers N]
//! ```
//! Targets are not removed (remove them some seconds before the next measurement): on a
//! journal-less ext4 a fresh delete makes the next inode allocations in the same block
//! groups slow (the allocator skips inodes freed in the last 5-10 s, one by one).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use skiff_image::unpack::{apply_layer, ApplyOptions};

fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        v.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    v.truncate(len);
    v
}

fn add(b: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(mode);
    h.set_mtime(1_700_000_000);
    h.set_size(data.len() as u64);
    b.append_data(&mut h, path, data).unwrap();
}

fn small_files(b: &mut tar::Builder<Vec<u8>>, dir: &str, n: usize) {
    for i in 0..n {
        let text = format!("line {i} of a small compressible file in {dir}\n").repeat(40 + i % 60);
        add(
            b,
            &format!("{dir}/d{}/f{i}.txt", i % 50),
            0o644,
            text.as_bytes(),
        );
    }
}

fn layer(f: &dyn Fn(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    f(&mut b);
    let tar = b.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

fn layers() -> Vec<Vec<u8>> {
    let mb = 1 << 20;
    let bb = std::fs::read("/bin/busybox").unwrap_or_else(|_| random_bytes(2 * mb, 9));
    vec![
        layer(&|b| {
            add(b, "bin/busybox", 0o755, &bb);
            small_files(b, "usr/share/a", 2000)
        }),
        layer(&|b| small_files(b, "usr/share/b", 3000)),
        layer(&|b| add(b, "data/big1.bin", 0o644, &random_bytes(60 * mb, 1))),
        layer(&|b| {
            add(b, "data/big2.bin", 0o644, &random_bytes(25 * mb, 2));
            add(b, "data/big3.bin", 0o644, &random_bytes(25 * mb, 3))
        }),
        layer(&|b| {
            add(b, "data/big4.bin", 0o644, &random_bytes(35 * mb, 4));
            small_files(b, "usr/share/c", 1000)
        }),
    ]
}

fn apply_one(gz: &[u8], dir: &Path, writers: Option<usize>) -> f64 {
    std::fs::create_dir_all(dir).unwrap();
    let mut opts = ApplyOptions::default();
    if let Some(w) = writers {
        opts.writers = w;
    }
    let t = Instant::now();
    apply_layer(gz, None, dir, &opts).unwrap();
    t.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let mut runs = 3;
    let mut writers = None;
    let mut base = std::env::temp_dir();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => runs = args.next().and_then(|v| v.parse().ok()).unwrap_or(3),
            "--dir" => base = PathBuf::from(args.next().expect("--dir DIR")),
            "--writers" => writers = args.next().and_then(|v| v.parse().ok()),
            _ => {
                eprintln!("usage: unpack_bench [--runs N] [--dir DIR] [--writers N]");
                std::process::exit(2)
            }
        }
    }
    let layers = layers();
    // Kept: removing it here would slow whatever runs next in the same block groups.
    let work = tempfile::Builder::new()
        .prefix("unpack-bench-")
        .tempdir_in(&base)
        .unwrap()
        .keep();
    eprintln!("targets in {} (not removed)", work.display());
    let (mut seq, mut par) = (Vec::new(), Vec::new());
    let mut per_layer: Vec<Vec<f64>> = vec![Vec::new(); layers.len()];
    for r in 0..runs {
        let t = Instant::now();
        for (i, l) in layers.iter().enumerate() {
            per_layer[i].push(apply_one(l, &work.join(format!("s{r}-{i}")), writers));
        }
        seq.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        std::thread::scope(|s| {
            for (i, l) in layers.iter().enumerate() {
                let dir = work.join(format!("p{r}-{i}"));
                s.spawn(move || apply_one(l, &dir, writers));
            }
        });
        par.push(t.elapsed().as_secs_f64());
        eprintln!(
            "run {r}: seq {:.3}s par {:.3}s",
            seq[r as usize], par[r as usize]
        );
    }
    for (i, v) in per_layer.into_iter().enumerate() {
        println!("layer {} seq median {:.3}s", i + 1, median(v));
    }
    println!(
        "all 5 layers: seq median {:.3}s, par median {:.3}s ({runs} runs)",
        median(seq),
        median(par)
    );
}
