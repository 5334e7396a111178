//! `ADD http://…` and `ADD https://…`: the URL fetched into a scratch file, as Docker's
//! classic builder does on every build (the content checksum decides the cache hit).
//! `http://`: a plain HTTP/1.0 GET (no chunked bodies to decode), redirects followed up to 5
//! times. `https://`: the registry client's HTTP stack ([`skiff_registry::Registry::download`]:
//! rustls with the platform's roots, `SSL_CERT_FILE` honoured, redirects followed). A non-2xx
//! status is an error naming it. The file is named after the URL path's last segment.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{BuildError, Builder};

/// Whether an ADD source is a URL.
pub(crate) fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// The file name Docker gives a URL's download.
pub(crate) fn url_file_name(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let after_host = path.splitn(4, '/').nth(3).unwrap_or("");
    let name = after_host.rsplit('/').next().unwrap_or("");
    if name.is_empty() {
        "__unnamed__".to_string()
    } else {
        name.to_string()
    }
}

/// Downloads an `https://` `url` into `dir/<name>` (`name`: [`url_file_name`] of the URL
/// the Dockerfile gave) with `b`'s registry client.
fn fetch_https(b: &Builder, url: &str, name: &str, dir: &Path) -> Result<PathBuf, BuildError> {
    let err = |m: String| BuildError::Fetch {
        url: url.to_string(),
        message: m,
    };
    let path = dir.join(name);
    let mut f = std::fs::File::create(&path).map_err(|e| err(e.to_string()))?;
    let reg = b.images.registry.clone();
    let fut = async move { reg.download(url, &mut f).await };
    let res = match &b.handle {
        Some(h) => h.block_on(fut),
        None => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| err(e.to_string()))?
            .block_on(fut),
    };
    res.map_err(|e| err(with_causes(&e)))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| err(e.to_string()))?;
    Ok(path)
}

/// An error with its causes (`a: b: c`), so a TLS failure says why.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// Downloads `url` into `dir/<name>`; returns the path.
pub(crate) fn fetch(b: &Builder, url: &str, dir: &Path) -> Result<PathBuf, BuildError> {
    let err = |m: String| BuildError::Fetch {
        url: url.to_string(),
        message: m,
    };
    let mut cur = url.to_string();
    for _ in 0..6 {
        if cur.starts_with("https://") {
            return fetch_https(b, &cur, &url_file_name(url), dir);
        }
        let Some(rest) = cur.strip_prefix("http://") else {
            return Err(err(format!("unsupported URL {cur:?}")));
        };
        let (hostport, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let addr = if hostport.contains(':') && !hostport.ends_with(']') {
            hostport.to_string()
        } else {
            format!("{hostport}:80")
        };
        let mut s = TcpStream::connect(&addr).map_err(|e| err(format!("connect {addr}: {e}")))?;
        let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
        write!(
            s,
            "GET {path} HTTP/1.0\r\nHost: {hostport}\r\nUser-Agent: skiff-build\r\nAccept: */*\r\n\r\n"
        )
        .map_err(|e| err(e.to_string()))?;
        let mut r = BufReader::new(s);
        let mut status = String::new();
        r.read_line(&mut status).map_err(|e| err(e.to_string()))?;
        let code: u16 = status
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| err(format!("bad response {:?}", status.trim())))?;
        let mut location = None;
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).map_err(|e| err(e.to_string()))? == 0 || h.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("location") {
                    location = Some(v.trim().to_string());
                }
            }
        }
        if (300..400).contains(&code) {
            let loc = location.ok_or_else(|| err(format!("redirect {code} without Location")))?;
            cur = if loc.starts_with('/') {
                format!("http://{hostport}{loc}")
            } else {
                loc
            };
            continue;
        }
        if !(200..300).contains(&code) {
            return Err(err(format!(
                "failed to GET {cur} with status {}",
                status
                    .split_whitespace()
                    .skip(1)
                    .collect::<Vec<_>>()
                    .join(" ")
            )));
        }
        let path = dir.join(url_file_name(url));
        let mut f = std::fs::File::create(&path).map_err(|e| err(e.to_string()))?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = r.read(&mut buf).map_err(|e| err(e.to_string()))?;
            if n == 0 {
                break;
            }
            f.write_all(&buf[..n]).map_err(|e| err(e.to_string()))?;
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| err(e.to_string()))?;
        return Ok(path);
    }
    Err(err("too many redirects".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(url_file_name("http://h:1/a/b.tar.gz?x=1"), "b.tar.gz");
        assert_eq!(url_file_name("http://h/"), "__unnamed__");
        assert!(is_url("https://x") && !is_url("file.txt"));
    }
}
