#![allow(dead_code)]

use std::io::Write;

use skiff_store::{CheckReport, Descriptor, Digest, Store};

pub fn open(dir: &std::path::Path) -> (Store, CheckReport) {
    Store::open(dir).expect("open store")
}

/// Deterministic pseudo-random bytes.
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407)
        | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

pub fn desc(data: &[u8]) -> Descriptor {
    Descriptor::new(Digest::of_bytes(data), data.len() as u64)
}

/// Writes a blob through an ingest and commits it.
pub fn put_blob(store: &Store, data: &[u8]) -> Digest {
    let d = desc(data);
    match store
        .content()
        .writer(&d.digest.to_string(), Some(d.clone()))
    {
        Ok(mut w) => {
            w.write_all(data).unwrap();
            w.commit().unwrap()
        }
        Err(skiff_store::ContentError::AlreadyExists { digest }) => digest,
        Err(e) => panic!("{e}"),
    }
}
