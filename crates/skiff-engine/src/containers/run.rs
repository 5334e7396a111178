//! Running a container from an image, in the foreground, on skiff's runtime library.
//!
//! Layout per container: `<data-root>/containers/<id>/{config.json, rootfs/, hostname, hosts,
//! resolv.conf}`; the rootfs is the image's snapshot chain plus a writable layer (snapshot
//! key = container ID) mounted with overlayfs. Everything is undone when the container exits.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use serde_json::json;
use skiff_runtime::{CreateOptions, Runtime};

use super::spec::{self, SpecOptions};
use crate::images::{ImageService, ImagesError};

/// Where the engine's runtime keeps container state.
pub const RUNTIME_ROOT: &str = "/run/skiff/engine";

/// Options of a foreground run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub spec: SpecOptions,
    pub name: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Image(#[from] ImagesError),
    #[error(transparent)]
    Spec(#[from] spec::SpecError),
    #[error(transparent)]
    Runtime(#[from] skiff_runtime::RuntimeError),
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("container rootfs: {0}")]
    Mount(String),
    #[error("generated OCI spec: {0}")]
    GeneratedSpec(String),
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> RunError + 'a {
    move |source| RunError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

use super::random_id;

/// A started container; `wait` waits for it and removes it.
pub struct Running {
    pub id: String,
    pub pid: nix::unistd::Pid,
    rt: Runtime,
    dir: PathBuf,
    store: skiff_store::Store,
}

/// Mount the image, write the bundle, start the container. The caller (single-threaded at
/// this point: the runtime forks) then calls [`Running::wait`].
pub fn run_foreground(
    svc: &ImageService,
    image: &str,
    mut opts: RunOptions,
    console: Option<UnixStream>,
) -> Result<Running, RunError> {
    let img = svc.resolve(image)?;
    let id = random_id();
    if opts.spec.hostname.is_empty() {
        opts.spec.hostname = id[..12].to_string();
    }
    opts.spec.container_id = id.clone();
    let dir = svc.store.root().join("containers").join(&id);
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(&rootfs).map_err(io("create", &rootfs))?;
    let mut guard = Cleanup {
        store: svc.store.clone(),
        dir: dir.clone(),
        id: id.clone(),
        mounted: false,
        snapshot: false,
    };
    let top = img.top_chain_id();
    let mounts = svc
        .store
        .snapshots()
        .volatile()
        .prepare(&id, top.as_deref())
        .map_err(|e| RunError::Mount(e.to_string()))?;
    guard.snapshot = true;
    skiff_store::mount_to(&mounts, &rootfs).map_err(|e| RunError::Mount(e.to_string()))?;
    guard.mounted = true;

    // /etc/hostname, /etc/hosts, /etc/resolv.conf, managed as Docker does.
    let hostname = opts.spec.hostname.clone();
    std::fs::write(dir.join("hostname"), format!("{hostname}\n")).map_err(io("write", &dir))?;
    std::fs::write(
        dir.join("hosts"),
        format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n127.0.1.1\t{hostname}\n"),
    )
    .map_err(io("write", &dir))?;
    let resolv: String = std::fs::read_to_string("/etc/resolv.conf")
        .unwrap_or_default()
        .lines()
        .filter(|l| !(l.starts_with("nameserver 127.") || l.starts_with("nameserver ::1")))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(dir.join("resolv.conf"), resolv).map_err(io("write", &dir))?;
    let bind = |name: &str, dest: &str| json!({"destination": dest, "type": "bind", "source": dir.join(name), "options": ["rbind", "rprivate"]});
    let extra = vec![
        bind("resolv.conf", "/etc/resolv.conf"),
        bind("hostname", "/etc/hostname"),
        bind("hosts", "/etc/hosts"),
    ];

    let config = spec::build(&rootfs, img.config.config().as_ref(), &opts.spec, extra)?;
    let cfg_path = dir.join("config.json");
    std::fs::write(
        &cfg_path,
        serde_json::to_vec(&config).expect("spec serializes"),
    )
    .map_err(io("write", &cfg_path))?;
    let rt = Runtime::new(RUNTIME_ROOT);
    let create = CreateOptions {
        bundle: dir.clone(),
        ..Default::default()
    };
    // The spec goes to the runtime in memory (config.json above is for reference).
    let oci: oci_spec::runtime::Spec =
        serde_json::from_value(config).map_err(|e| RunError::GeneratedSpec(e.to_string()))?;
    let bundle = skiff_runtime::spec::Bundle::from_spec(&dir, oci)?;
    let (_, pid) = rt.run_bundle(&id, bundle, &create, console)?;
    guard.disarm();
    Ok(Running {
        id,
        pid,
        rt,
        dir,
        store: svc.store.clone(),
    })
}

impl Running {
    /// Wait for the container (forwarding signals), then remove it. Returns its exit code.
    ///
    /// The caller should have dropped everything else (the image service, its registry
    /// client): this process stays around as the container's monitor for as long as it runs.
    pub fn wait(self) -> i32 {
        // SAFETY: malloc_trim only returns free heap pages to the kernel.
        unsafe { libc::malloc_trim(0) };
        let code = skiff_runtime::wait_forwarding(self.pid);
        if let Ok(st) = self.rt.load(&self.id) {
            let _ = self.rt.destroy(&st);
        }
        drop(Cleanup {
            store: self.store.clone(),
            dir: self.dir.clone(),
            id: self.id.clone(),
            mounted: true,
            snapshot: true,
        });
        code
    }
}

/// Undoes a container's rootfs and directory.
struct Cleanup {
    store: skiff_store::Store,
    dir: PathBuf,
    id: String,
    mounted: bool,
    snapshot: bool,
}

impl Cleanup {
    fn disarm(&mut self) {
        self.mounted = false;
        self.snapshot = false;
        self.dir = PathBuf::new();
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if self.dir.as_os_str().is_empty() {
            return;
        }
        if self.mounted {
            let _ = skiff_store::unmount_lazy(&self.dir.join("rootfs"));
        }
        if self.snapshot {
            let _ = self.store.snapshots().volatile().remove(&self.id);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
