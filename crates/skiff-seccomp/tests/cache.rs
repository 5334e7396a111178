//! FilterCache: memory hits, disk hits across instances, corruption recovery, key sensitivity.

use std::sync::Arc;
use std::time::Instant;

use oci_spec::runtime::LinuxSeccomp;
use serde_json::json;
use skiff_seccomp::{cache_key, compile, docker_default_profile, CacheStats, FilterCache};

fn small(errno: u32) -> LinuxSeccomp {
    serde_json::from_value(json!({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
        {"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":errno}]}))
    .unwrap()
}

#[test]
fn memory_hit_does_not_compile() {
    let cache = FilterCache::new(None);
    let a = cache.get_or_compile(&small(13)).unwrap();
    let b = cache.get_or_compile(&small(13)).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(
        cache.stats(),
        CacheStats {
            compiled: 1,
            memory_hits: 1,
            disk_hits: 0
        }
    );
    let c = cache.get_or_compile(&small(14)).unwrap();
    assert!(!Arc::ptr_eq(&a, &c));
    assert_eq!(cache.stats().compiled, 2);
}

#[test]
fn disk_hit_in_a_new_cache_skips_libseccomp() {
    let dir = tempfile::tempdir().unwrap();
    let p = docker_default_profile(&[]).unwrap();
    let first = FilterCache::new(Some(dir.path().to_path_buf()));
    let t = Instant::now();
    let a = first.get_or_compile(&p).unwrap();
    let cold = t.elapsed();
    assert_eq!(first.stats().compiled, 1);
    let path = first.path_for(&p).unwrap().unwrap();
    assert!(path.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temp files left"
    );

    let second = FilterCache::new(Some(dir.path().to_path_buf()));
    let t = Instant::now();
    let b = second.get_or_compile(&p).unwrap();
    let disk = t.elapsed();
    let t = Instant::now();
    for _ in 0..100 {
        second.get_or_compile(&p).unwrap();
    }
    let mem = t.elapsed() / 100;
    println!("cache: cold {cold:?}, disk hit {disk:?}, memory hit {mem:?}");
    assert_eq!(*a, *b);
    assert_eq!(
        second.stats(),
        CacheStats {
            compiled: 0,
            memory_hits: 100,
            disk_hits: 1
        }
    );
}

#[test]
fn corrupt_file_is_recompiled_and_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let p = small(13);
    let good = FilterCache::new(Some(dir.path().to_path_buf()))
        .get_or_compile(&p)
        .unwrap();
    let path = FilterCache::new(Some(dir.path().to_path_buf()))
        .path_for(&p)
        .unwrap()
        .unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[40] ^= 0x55;
    std::fs::write(&path, &bytes).unwrap();

    let cache = FilterCache::new(Some(dir.path().to_path_buf()));
    let again = cache.get_or_compile(&p).unwrap();
    assert_eq!(*again, *good);
    assert_eq!(
        cache.stats(),
        CacheStats {
            compiled: 1,
            memory_hits: 0,
            disk_hits: 0
        }
    );
    assert_eq!(std::fs::read(&path).unwrap(), good.to_bytes(), "rewritten");
}

#[test]
fn unwritable_dir_still_compiles() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let cache = FilterCache::new(Some(file));
    let f = cache.get_or_compile(&small(13)).unwrap();
    assert_eq!(*f, compile(&small(13)).unwrap());
}

#[test]
fn key_depends_on_profile_content_only() {
    assert_eq!(
        cache_key(&small(13)).unwrap(),
        cache_key(&small(13)).unwrap()
    );
    assert_ne!(
        cache_key(&small(13)).unwrap(),
        cache_key(&small(14)).unwrap()
    );
    assert_eq!(cache_key(&small(13)).unwrap().len(), 64);
}
