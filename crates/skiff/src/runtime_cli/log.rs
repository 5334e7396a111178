//! Logging of the runtime CLI: `--log FILE` and `--log-format text|json` as runc has them.
//! Errors are also written as runc's JSON lines (`{"level":"error","msg":...,"time":...}`),
//! which containerd reads back to report why a runtime command failed.

use std::io::Write;
use std::sync::OnceLock;

use super::RuntimeArgs;

static TARGET: OnceLock<(Option<std::path::PathBuf>, bool)> = OnceLock::new();

pub fn init(args: &RuntimeArgs) {
    let json = args.log_format == "json";
    let _ = TARGET.set((args.log.clone(), json));
    let level = if args.debug { "debug" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SKIFF_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let r = match &args.log {
        Some(path) => match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            Ok(f) => {
                let f = std::sync::Mutex::new(f);
                if json {
                    builder.json().flatten_event(true).with_writer(f).try_init()
                } else {
                    builder.with_ansi(false).with_writer(f).try_init()
                }
            }
            Err(e) => {
                eprintln!("skiff runtime: open log file {}: {e}", path.display());
                builder.with_writer(std::io::stderr).try_init()
            }
        },
        None => builder.with_writer(std::io::stderr).try_init(),
    };
    let _ = r;
}

/// Report a fatal error: on stderr, and in the log file in the configured format.
pub fn error(msg: &str) {
    eprintln!("skiff runtime: {msg}");
    if let Some((Some(path), json)) = TARGET.get() {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
            let line = if *json {
                serde_json::json!({"level": "error", "msg": msg, "time": time}).to_string()
            } else {
                format!("time=\"{time}\" level=error msg={msg:?}")
            };
            let _ = writeln!(f, "{line}");
        }
    }
}
