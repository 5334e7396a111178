//! Apply throughput: a ~100 MB (uncompressed) gzip layer of many small files, applied into a
//! fresh directory. `cargo run --release -p skiff-image --example apply_bench [files] [size]`.

use std::time::Instant;

use skiff_image::unpack::{apply_layer, ApplyOptions};

fn main() {
    let mut args = std::env::args().skip(1);
    let files: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(25_000);
    let size: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(4096);
    let mut b = tar::Builder::new(Vec::new());
    let mut seed = 0x1234_5678_9abc_def0u64;
    for i in 0..files {
        if i % 100 == 0 {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            b.append_data(&mut h, format!("d{}/", i / 100), std::io::empty())
                .unwrap();
        }
        // Half random (incompressible), half text-like.
        let data: Vec<u8> = (0..size)
            .map(|j| {
                if j < size / 2 {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                } else {
                    b"lorem ipsum dolor sit amet "[j % 27]
                }
            })
            .collect();
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, format!("d{}/f{i}", i / 100), &data[..])
            .unwrap();
    }
    let tar = b.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    let blob = gz.finish().unwrap();
    let tmp =
        tempfile::tempdir_in(std::env::var("BENCH_DIR").unwrap_or_else(|_| "/var/tmp".into()))
            .unwrap();
    let mut best = f64::MAX;
    for run in 0..3 {
        let target = tmp.path().join(format!("t{run}"));
        std::fs::create_dir(&target).unwrap();
        let t = Instant::now();
        let s = apply_layer(&blob[..], None, &target, &ApplyOptions::default()).unwrap();
        let secs = t.elapsed().as_secs_f64();
        best = best.min(secs);
        assert_eq!(s.files as usize, files);
    }
    let mb = tar.len() as f64 / 1e6;
    println!(
        "layer: {files} files x {size} B, {mb:.1} MB tar, {:.1} MB gzip",
        blob.len() as f64 / 1e6
    );
    println!(
        "apply (best of 3): {:.3} s = {:.0} MB/s uncompressed, {:.0} files/s",
        best,
        mb / best,
        files as f64 / best
    );
}
