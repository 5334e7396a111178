//! The overlay form checked by the kernel: a lower dir, an upper made by apply_layer with a
//! whiteout and an opaque dir, mounted with overlayfs (root only).

mod common;

use common::{is_root, Layer};
use skiff_image::unpack::{apply_layer, apply_layer_to_rootfs, ApplyOptions};

struct Unmount(std::path::PathBuf);
impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.0, rustix::mount::UnmountFlags::DETACH);
    }
}

#[test]
fn overlay_mount_honours_whiteouts_and_opaque_dirs() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let [lower, upper, work, merged] = ["lower", "upper", "work", "merged"].map(|d| {
        let p = tmp.path().join(d);
        std::fs::create_dir(&p).unwrap();
        p
    });
    let mut base = Layer::new();
    base.dir("etc", 0o755)
        .file("etc/motd", b"hello")
        .file("etc/hostname", b"h")
        .dir("opt", 0o755)
        .file("opt/old", b"o")
        .dir("opt/sub", 0o755);
    let o = ApplyOptions {
        layer: "base".into(),
        ..Default::default()
    };
    apply_layer_to_rootfs(&base.finish()[..], None, &lower, &o).unwrap();

    let mut top = Layer::new();
    top.dir("etc", 0o755)
        .file("etc/.wh.motd", b"")
        .dir("opt", 0o755)
        .file("opt/.wh..wh..opq", b"")
        .file("opt/new", b"n");
    let o = ApplyOptions {
        layer: "top".into(),
        lower_dirs: vec![lower.clone()],
        ..Default::default()
    };
    apply_layer(&top.finish()[..], None, &upper, &o).unwrap();

    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    rustix::mount::mount(
        "overlay",
        &merged,
        "overlay",
        rustix::mount::MountFlags::empty(),
        Some(std::ffi::CString::new(data).unwrap().as_c_str()),
    )
    .unwrap();
    let _guard = Unmount(merged.clone());

    assert!(
        !merged.join("etc/motd").exists(),
        "whiteout must hide the lower file"
    );
    assert_eq!(std::fs::read(merged.join("etc/hostname")).unwrap(), b"h");
    let mut opt: Vec<_> = std::fs::read_dir(merged.join("opt"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    opt.sort();
    assert_eq!(opt, vec!["new"], "opaque dir shows only upper content");
}
