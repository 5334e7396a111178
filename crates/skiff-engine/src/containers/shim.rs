//! The engine's side of the per-container monitor (`skiff-shim`, crate skiff-shim, whose
//! lib.rs documents the protocol): spawning it, and one JSON-line request per connection
//! to its control socket.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// Errors talking to a monitor.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("start monitor {}: {source}", path.display())]
    Spawn {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("monitor: {0}")]
    Failed(String),
    #[error("monitor socket {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("monitor socket {}: bad reply {reply:?}", path.display())]
    BadReply { path: PathBuf, reply: String },
}

/// Where the monitor binary is: `$SKIFF_SHIM`, else `skiff-shim` next to the running
/// executable, else on `$PATH`.
pub fn shim_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("SKIFF_SHIM") {
        return PathBuf::from(p);
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            let p = dir.join("skiff-shim");
            if p.exists() {
                return p;
            }
            // Test binaries live in target/<profile>/deps.
            if let Some(up) = dir.parent() {
                let p = up.join("skiff-shim");
                if dir.ends_with("deps") && p.exists() {
                    return p;
                }
            }
        }
    }
    PathBuf::from("skiff-shim")
}

/// Starts the monitor for the container in `dir` (its `shim.json` already written) and
/// waits for its start-up report. Returns the container's init pid. The monitor runs in its
/// own session; the returned child is reaped by a background task.
pub async fn spawn(bin: &Path, dir: &Path, log: &Path) -> Result<i64, ShimError> {
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map(Stdio::from)
        .unwrap_or_else(|_| Stdio::null());
    let mut child = tokio::process::Command::new(bin)
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .process_group(0)
        .kill_on_drop(false)
        .spawn()
        .map_err(|source| ShimError::Spawn {
            path: bin.to_path_buf(),
            source,
        })?;
    let out = child.stdout.take().expect("stdout is piped");
    let mut line = String::new();
    let read = BufReader::new(out).read_line(&mut line).await;
    // Reap the monitor whenever it ends (it outlives us if we go first).
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
    read.map_err(|source| ShimError::Spawn {
        path: bin.to_path_buf(),
        source,
    })?;
    let v: Value = serde_json::from_str(line.trim()).map_err(|_| {
        ShimError::Failed(if line.is_empty() {
            format!("exited without a report (see {})", log.display())
        } else {
            format!("bad report {:?}", line.trim())
        })
    })?;
    if let Some(e) = v.get("error").and_then(Value::as_str) {
        return Err(ShimError::Failed(e.to_string()));
    }
    v.get("pid")
        .and_then(Value::as_i64)
        .ok_or_else(|| ShimError::Failed(format!("bad report {:?}", line.trim())))
}

/// Sends one request and reads the one-line reply; the stream is returned for requests that
/// continue as a byte stream (attach, exec).
pub async fn request(sock: &Path, req: &Value) -> Result<(Value, UnixStream), ShimError> {
    let io = |source| ShimError::Io {
        path: sock.to_path_buf(),
        source,
    };
    let mut s = UnixStream::connect(sock).await.map_err(io)?;
    let mut b = serde_json::to_vec(req).expect("request serializes");
    b.push(b'\n');
    s.write_all(&b).await.map_err(io)?;
    // Byte by byte: nothing after the newline may be consumed (it belongs to the stream).
    let mut line = Vec::with_capacity(64);
    loop {
        let mut c = [0u8; 1];
        let n = s.read(&mut c).await.map_err(io)?;
        if n == 0 {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "monitor closed the connection",
            )));
        }
        if c[0] == b'\n' {
            break;
        }
        line.push(c[0]);
        if line.len() > 1 << 20 {
            return Err(ShimError::BadReply {
                path: sock.to_path_buf(),
                reply: "too long".into(),
            });
        }
    }
    let v: Value = serde_json::from_slice(&line).map_err(|_| ShimError::BadReply {
        path: sock.to_path_buf(),
        reply: String::from_utf8_lossy(&line).into_owned(),
    })?;
    if let Some(e) = v.get("error").and_then(Value::as_str) {
        return Err(ShimError::Failed(e.to_string()));
    }
    Ok((v, s))
}

/// A request whose reply is all there is.
pub async fn call(sock: &Path, req: &Value) -> Result<Value, ShimError> {
    request(sock, req).await.map(|(v, _)| v)
}

/// Whether a monitor answers on `sock` (quickly).
pub async fn alive(sock: &Path) -> bool {
    matches!(
        tokio::time::timeout(
            Duration::from_secs(2),
            call(sock, &serde_json::json!({"op": "status"}))
        )
        .await,
        Ok(Ok(_))
    )
}
