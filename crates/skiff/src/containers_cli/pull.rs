//! Pull through the API (`POST /images/create`) with docker's progress lines, for `run`
//! and `create` when the image is missing (`--pull missing`) or `--pull always`.

use std::io::{BufReader, IsTerminal, Write};

use hyper::Method;
use serde_json::Value;

use super::{CliError, Res};
use crate::client::{Body, Client, Query};

/// `busybox` → `busybox:latest` (a reference with a tag or digest stays as is).
pub fn with_tag(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') || last.contains(':') {
        image.to_string()
    } else {
        format!("{image}:latest")
    }
}

/// `(fromImage, tag)` as the docker CLI sends them.
fn split(image: &str) -> (String, String) {
    if let Some((name, digest)) = image.split_once('@') {
        return (name.to_string(), digest.to_string());
    }
    let full = with_tag(image);
    let (name, tag) = full.rsplit_once(':').expect("with_tag adds a tag");
    (name.to_string(), tag.to_string())
}

/// Pull `image`, printing docker's progress (to stderr when `to_stderr`, as `run` does).
pub fn pull(
    c: &Client,
    image: &str,
    platform: Option<&str>,
    quiet: bool,
    to_stderr: bool,
) -> Res<()> {
    let (from, tag) = split(image);
    let q = Query::new()
        .add("fromImage", &from)
        .add("tag", &tag)
        .opt("platform", platform);
    let (_, body) = c.stream(Method::POST, &q.to("/images/create"), Body::Empty)?;
    let mut out: Box<dyn Write> = if to_stderr {
        Box::new(std::io::stderr())
    } else {
        Box::new(std::io::stdout())
    };
    let tty = if to_stderr {
        std::io::stderr().is_terminal()
    } else {
        std::io::stdout().is_terminal()
    };
    let msgs = serde_json::Deserializer::from_reader(BufReader::new(body)).into_iter::<Value>();
    for m in msgs {
        let m =
            m.map_err(|e| CliError::Usage(format!("pull {image}: bad progress message: {e}")))?;
        if let Some(err) = m["error"].as_str().or(m["errorDetail"]["message"].as_str()) {
            return Err(CliError::Client(crate::client::ClientError::Daemon {
                status: 500,
                message: err.to_string(),
            }));
        }
        if quiet {
            continue;
        }
        if let Some(line) = progress_line(&m, tty) {
            let _ = writeln!(out, "{line}");
        }
    }
    Ok(())
}

/// One message as docker prints it when the output is not a terminal: `id: status`;
/// byte-count progress only on a terminal.
fn progress_line(m: &Value, tty: bool) -> Option<String> {
    let status = m["status"].as_str()?;
    let has_progress = m["progressDetail"]["total"].as_u64().is_some_and(|t| t > 0);
    if has_progress && !tty {
        return None;
    }
    let progress = m["progress"].as_str().filter(|_| tty).unwrap_or("");
    let text = if progress.is_empty() {
        status.to_string()
    } else {
        format!("{status} {progress}")
    };
    Some(match m["id"].as_str() {
        Some(id) if !id.is_empty() => format!("{id}: {text}"),
        _ => text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_split_like_docker() {
        assert_eq!(with_tag("busybox"), "busybox:latest");
        assert_eq!(with_tag("reg:5000/a/b"), "reg:5000/a/b:latest");
        assert_eq!(split("reg:5000/a/b:1"), ("reg:5000/a/b".into(), "1".into()));
        assert_eq!(split("b@sha256:abc"), ("b".into(), "sha256:abc".into()));
    }

    #[test]
    fn progress_lines() {
        let m = json!({"status": "Pull complete", "id": "abc"});
        assert_eq!(progress_line(&m, false).unwrap(), "abc: Pull complete");
        let m = json!({"status": "Downloading", "id": "abc", "progress": "[=>  ] 1MB/2MB",
                       "progressDetail": {"current": 1, "total": 2}});
        assert_eq!(progress_line(&m, false), None);
        assert!(progress_line(&m, true).unwrap().contains("1MB/2MB"));
        let m = json!({"status": "Digest: sha256:x"});
        assert_eq!(progress_line(&m, false).unwrap(), "Digest: sha256:x");
    }
}
