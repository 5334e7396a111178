//! Faults a real registry does not produce on demand, from a small scripted HTTP server on
//! 127.0.0.1: a 503, a redirect to storage, a connection cut mid-blob, a storage server that
//! ignores Range, and a schema 1 manifest.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use skiff_registry::{sha256_digest, Error, ErrorKind, Reference};

#[derive(Default)]
struct Seen {
    blob_requests: u32,
    storage_requests: u32,
    storage_ranges: Vec<Option<String>>,
}

fn serve(listener: TcpListener, blob: Arc<Vec<u8>>, seen: Arc<Mutex<Seen>>) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { return };
        let blob = blob.clone();
        let seen = seen.clone();
        std::thread::spawn(move || {
            let _ = handle(stream, &blob, &seen);
        });
    }
}

fn respond(
    s: &mut TcpStream,
    status: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    s.write_all(body)
}

fn handle(stream: TcpStream, blob: &[u8], seen: &Mutex<Seen>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut range = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("range") {
                range = Some(v.trim().to_string());
            }
        }
    }
    let mut s = stream;
    if path == "/v2/" {
        return respond(&mut s, "200 OK", &[], b"{}");
    }
    if path.starts_with("/v2/flaky/blobs/") {
        let n = {
            let mut g = seen.lock().unwrap();
            g.blob_requests += 1;
            g.blob_requests
        };
        if n == 1 {
            return respond(&mut s, "503 Service Unavailable", &[], b"");
        }
        return respond(
            &mut s,
            "307 Temporary Redirect",
            &[("Location", "/storage/blob".into())],
            b"",
        );
    }
    if path == "/storage/blob" {
        let n = {
            let mut g = seen.lock().unwrap();
            g.storage_requests += 1;
            g.storage_ranges.push(range);
            g.storage_requests
        };
        if n == 1 {
            // Announce the whole blob, send 40% of it, and cut the connection.
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", blob.len());
            s.write_all(head.as_bytes())?;
            s.write_all(&blob[..blob.len() * 2 / 5])?;
            s.flush()?;
            return s.shutdown(std::net::Shutdown::Both);
        }
        // Later requests: ignore Range and send everything.
        return respond(&mut s, "200 OK", &[], blob);
    }
    if path == "/v2/old/manifests/v1" {
        let body = br#"{"schemaVersion":1,"name":"old","tag":"v1","fsLayers":[],"signatures":[]}"#;
        return respond(
            &mut s,
            "200 OK",
            &[(
                "Content-Type",
                "application/vnd.docker.distribution.manifest.v1+prettyjws".into(),
            )],
            body,
        );
    }
    respond(
        &mut s,
        "404 Not Found",
        &[("Content-Type", "application/json".into())],
        br#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}"#,
    )
}

fn start(blob: Vec<u8>) -> (u16, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let s2 = seen.clone();
    let blob = Arc::new(blob);
    std::thread::spawn(move || serve(listener, blob, s2));
    (port, seen)
}

#[tokio::test]
async fn blob_download_survives_503_redirect_cut_and_ignored_range() {
    let blob = support::random_bytes(11, 300_000).to_vec();
    let digest = sha256_digest(&blob);
    let (port, seen) = start(blob.clone());
    let reg = support::client();
    let repo = Reference::parse(&format!("127.0.0.1:{port}/flaky:latest")).unwrap();
    let mut s = reg.fetch_blob_verified(&repo, &digest).await.unwrap();
    assert_eq!(s.total_size(), Some(blob.len() as u64));
    let mut got = Vec::new();
    while let Some(chunk) = s.next().await {
        got.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(got, blob);
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen.blob_requests, 3,
        "503, redirect, redirect after the cut"
    );
    assert_eq!(seen.storage_requests, 2);
    assert_eq!(seen.storage_ranges[0], None);
    assert_eq!(
        seen.storage_ranges[1],
        Some(format!("bytes={}-", blob.len() * 2 / 5))
    );
}

#[tokio::test]
async fn resume_from_offset_when_server_ignores_range() {
    let blob = support::random_bytes(12, 100_000).to_vec();
    let digest = sha256_digest(&blob);
    let (port, seen) = start(blob.clone());
    seen.lock().unwrap().blob_requests = 1; // no 503
    seen.lock().unwrap().storage_requests = 1; // no cut
    let reg = support::client();
    let repo = Reference::parse(&format!("127.0.0.1:{port}/flaky:latest")).unwrap();
    let mut s = reg.fetch_blob(&repo, &digest, 60_000).await.unwrap();
    let mut got = Vec::new();
    while let Some(chunk) = s.next().await {
        got.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(got, &blob[60_000..]);
}

#[tokio::test]
async fn schema1_and_unknown_repository_errors() {
    let (port, _) = start(Vec::new());
    let reg = support::client();
    let old = Reference::parse(&format!("127.0.0.1:{port}/old:v1")).unwrap();
    let err = reg.fetch_manifest(&old).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert!(matches!(err, Error::Schema1 { .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "pull 127.0.0.1:{port}/old:v1: manifest schema 1 (application/vnd.docker.distribution.manifest.v1+prettyjws) is not supported: push the image again with a current client"
        )
    );
    let missing = Reference::parse(&format!("127.0.0.1:{port}/nothing/here:v1")).unwrap();
    let err = reg.fetch_manifest(&missing).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("pull 127.0.0.1:{port}/nothing/here:v1: name unknown: repository name not known to registry")
    );
}

#[tokio::test]
async fn unreachable_registry_is_a_clear_error() {
    let port = support::free_port();
    let reg = support::client();
    let r = Reference::parse(&format!("127.0.0.1:{port}/x:1")).unwrap();
    let err = reg.fetch_manifest(&r).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(
        err.to_string()
            .starts_with(&format!("pull 127.0.0.1:{port}/x:1: ")),
        "{err}"
    );
}
