//! The shim's wire types, shared with the daemon: the configuration file it is started with,
//! the start-up line, the control socket's requests and replies, the exit record and the
//! multiplexed stream framing. The protocol itself is described in the crate docs.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Name of the configuration file in the container directory (`skiff-shim <container-dir>`).
pub const CONFIG_FILE: &str = "shim.json";

/// Longest request line the shim accepts (an exec's process with a large environment fits).
pub const MAX_REQUEST: usize = 1024 * 1024;

/// Stream byte of a multiplexed frame carrying standard output.
pub const STREAM_STDOUT: u8 = 1;
/// Stream byte of a multiplexed frame carrying standard error.
pub const STREAM_STDERR: u8 = 2;

/// `<container-dir>/shim.json`, written by the daemon before it starts the shim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShimConfig {
    /// Container id (the runtime's id too).
    pub id: String,
    /// State root of the runtime library (`Runtime::new(runtime_root)`).
    pub runtime_root: PathBuf,
    /// Bundle directory holding config.json (usually the container directory).
    pub bundle: PathBuf,
    /// Keep the container's stdin open (a pipe the shim writes attached clients' input to).
    #[serde(default)]
    pub stdin: bool,
    /// Close the container's stdin when the first attached client with stdin disconnects.
    #[serde(default)]
    pub stdin_once: bool,
    /// Give the container a pty (its master stays in the shim).
    #[serde(default)]
    pub tty: bool,
    /// Where the container's output is logged.
    pub log: LogOptions,
    /// The exit record is written here (atomically) when the container exits.
    pub exit_file: PathBuf,
    /// Path of the control socket (e.g. `<container-dir>/shim.sock`).
    pub socket: PathBuf,
    /// Create the container but let its process run only on a `start` request, so that
    /// clients can attach before the first byte of output (docker run's attach-then-start).
    #[serde(default)]
    pub start_on_request: bool,
}

/// Docker's `--log-driver` / `--log-opt` and the log file (see `skiff_logs::LogConfig::from_opts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogOptions {
    /// `json-file`, `local` or `none`.
    pub driver: String,
    #[serde(default)]
    pub opts: BTreeMap<String, String>,
    pub path: PathBuf,
}

/// One request line on the control socket (`{"op": ...}`), one per connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Request {
    /// Stream the container's stdio; reply [`OkReply`].
    Attach {
        #[serde(default)]
        stdin: bool,
        #[serde(default)]
        stdout: bool,
        #[serde(default)]
        stderr: bool,
    },
    /// Set the container's terminal size; reply [`OkReply`].
    Resize { height: u16, width: u16 },
    /// Reply [`ExitRecord`] once the container has exited.
    Wait,
    /// Start a process in the container; reply [`PidReply`], then its stdio streams as attach.
    Exec {
        exec_id: String,
        /// The OCI process (terminal, args, env, cwd, user, capabilities...).
        process: Box<oci_spec::runtime::Process>,
        #[serde(default)]
        stdin: bool,
        #[serde(default)]
        stdout: bool,
        #[serde(default)]
        stderr: bool,
    },
    /// Reply [`ExecExit`] once that exec has exited.
    ExecWait { exec_id: String },
    /// Set an exec's terminal size; reply [`OkReply`].
    ExecResize {
        exec_id: String,
        height: u16,
        width: u16,
    },
    /// Reply [`StatusReply`].
    Status,
    /// Let the created container's process run (with `start_on_request`); reply [`OkReply`].
    Start,
}

/// `{"error": "..."}`: the request failed (or the start-up failed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    pub error: String,
}

/// `{"ok": true}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OkReply {
    pub ok: bool,
}

/// `{"pid": N}`: the start-up line, and the reply to `exec`. Host pid namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PidReply {
    pub pid: i32,
}

/// `{"pid": N, "running": b}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReply {
    pub pid: i32,
    pub running: bool,
}

/// `{"exit_code": N}`: an exec's exit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecExit {
    pub exit_code: i32,
}

/// The container's exit: the `wait` reply and the content of `exit_file`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitRecord {
    /// The exit status, or 128 + signal when killed by a signal (as Docker reports).
    pub exit_code: i32,
    /// The signal that killed the init, if one did.
    pub signal: Option<i32>,
    /// An OOM kill happened in the container's cgroup.
    pub oom_killed: bool,
    /// RFC 3339 with nanoseconds, UTC.
    pub finished_at: String,
}

/// A reply line as the daemon reads it: an error, or the expected reply `T`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Reply<T> {
    Error(ErrorReply),
    Ok(T),
}

impl<T> Reply<T> {
    /// The reply, or the shim's error message.
    pub fn into_result(self) -> Result<T, String> {
        match self {
            Reply::Error(e) => Err(e.error),
            Reply::Ok(t) => Ok(t),
        }
    }
}

/// The 8-byte header of a multiplexed frame: `[stream, 0, 0, 0, len as u32 big-endian]`.
pub fn frame_header(stream: u8, len: u32) -> [u8; 8] {
    let l = len.to_be_bytes();
    [stream, 0, 0, 0, l[0], l[1], l[2], l[3]]
}

/// The stream byte and payload length of a frame header.
pub fn parse_frame_header(h: &[u8; 8]) -> (u8, u32) {
    (h[0], u32::from_be_bytes([h[4], h[5], h[6], h[7]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_by_op() {
        let r: Request = serde_json::from_str(r#"{"op":"attach","stdout":true}"#).unwrap();
        assert_eq!(
            r,
            Request::Attach {
                stdin: false,
                stdout: true,
                stderr: false
            }
        );
        let r: Request =
            serde_json::from_str(r#"{"op":"exec-resize","exec_id":"e","height":2,"width":3}"#)
                .unwrap();
        assert!(matches!(
            r,
            Request::ExecResize {
                height: 2,
                width: 3,
                ..
            }
        ));
        let r: Request = serde_json::from_str(
            r#"{"op":"exec","exec_id":"e","process":{"args":["ls"],"cwd":"/","user":{"uid":0,"gid":0}},"stdout":true}"#,
        )
        .unwrap();
        let Request::Exec { process, .. } = r else {
            panic!("{r:?}")
        };
        assert_eq!(process.args().as_deref(), Some(&["ls".to_string()][..]));
        assert_eq!(
            serde_json::to_string(&Request::ExecWait {
                exec_id: "x".into()
            })
            .unwrap(),
            r#"{"op":"exec-wait","exec_id":"x"}"#
        );
        assert!(serde_json::from_str::<Request>(r#"{"op":"nope"}"#).is_err());
        assert!(serde_json::from_str::<Request>(r#"{"op":"resize","height":-1}"#).is_err());
    }

    #[test]
    fn replies() {
        let r: Reply<PidReply> = serde_json::from_str(r#"{"pid":7}"#).unwrap();
        assert_eq!(r.into_result(), Ok(PidReply { pid: 7 }));
        let r: Reply<ExitRecord> = serde_json::from_str(r#"{"error":"x"}"#).unwrap();
        assert_eq!(r.into_result(), Err("x".to_string()));
        let rec = ExitRecord {
            exit_code: 137,
            signal: Some(9),
            oom_killed: false,
            finished_at: "t".into(),
        };
        assert_eq!(
            serde_json::to_string(&rec).unwrap(),
            r#"{"exit_code":137,"signal":9,"oom_killed":false,"finished_at":"t"}"#
        );
    }

    #[test]
    fn frames() {
        let h = frame_header(STREAM_STDERR, 0x0102_0304);
        assert_eq!(h, [2, 0, 0, 0, 1, 2, 3, 4]);
        assert_eq!(parse_frame_header(&h), (2, 0x0102_0304));
    }
}
