//! `fromSrc=<url>` for import: skiff fetches only from loopback (`http://127.0.0.1:…`,
//! `http://[::1]:…`, `http://localhost:…`). Anything else is refused with a message saying
//! so, rather than the daemon reaching out to the network on a client's behalf.

use std::net::{IpAddr, SocketAddr};

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;

use super::error::{ApiError, ApiResult};

/// The loopback address to connect to for `url`, or why it is refused.
pub fn loopback_target(url: &str) -> ApiResult<(SocketAddr, url::Url)> {
    let u = url::Url::parse(url)
        .map_err(|e| ApiError::invalid(format!("import: invalid source URL {url:?}: {e}")))?;
    if u.scheme() != "http" {
        return Err(ApiError::invalid(format!(
            "import from {url}: only http:// URLs on a loopback address are supported"
        )));
    }
    let ip: IpAddr = match u.host() {
        Some(url::Host::Ipv4(a)) => a.into(),
        Some(url::Host::Ipv6(a)) => a.into(),
        Some(url::Host::Domain("localhost")) => IpAddr::from([127, 0, 0, 1]),
        _ => {
            return Err(ApiError::invalid(format!(
                "import from {url}: only loopback sources are allowed (127.0.0.1, ::1, localhost)"
            )))
        }
    };
    if !ip.is_loopback() {
        return Err(ApiError::invalid(format!(
            "import from {url}: only loopback sources are allowed (127.0.0.1, ::1, localhost)"
        )));
    }
    let port = u.port().unwrap_or(80);
    Ok((SocketAddr::new(ip, port), u))
}

/// GETs `url` (loopback only) and returns its body once the status is 200.
pub async fn fetch_loopback(url: &str) -> ApiResult<Incoming> {
    let (addr, u) = loopback_target(url)?;
    let fail = |what: String| ApiError::system(format!("import from {url}: {what}"));
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| fail(format!("connect {addr}: {e}")))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| fail(e.to_string()))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::warn!(error = %e, "import source connection");
        }
    });
    let path = match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_string(),
    };
    let req = Request::get(path)
        .header(hyper::header::HOST, addr.to_string())
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|e| fail(e.to_string()))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| fail(e.to_string()))?;
    if resp.status() != StatusCode::OK {
        return Err(ApiError::invalid(format!(
            "import from {url}: the source answered {}",
            resp.status()
        )));
    }
    Ok(resp.into_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback() {
        assert_eq!(
            loopback_target("http://127.0.0.1:8080/x.tar").unwrap().0,
            "127.0.0.1:8080".parse().unwrap()
        );
        assert!(loopback_target("http://[::1]/a").is_ok());
        assert!(loopback_target("http://localhost:9/a").is_ok());
        for bad in [
            "http://10.0.0.1/x",
            "http://example.com/x",
            "https://127.0.0.1/x",
            "file:///etc/passwd",
            "not a url",
        ] {
            let e = loopback_target(bad).unwrap_err();
            assert_eq!(e.status(), 400, "{bad}");
        }
    }
}
