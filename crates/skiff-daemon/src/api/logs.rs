//! `GET /containers/{id}/logs`: entries from the container's log driver (skiff-logs), framed
//! with Docker's 8-byte headers unless the container has a tty, optionally timestamped;
//! `follow` ends when the container exits or the client goes away.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use skiff_engine::Containers;
use skiff_logs::{ReadOptions, Stream};

use super::body::{Body, Resp};
use super::error::{ApiError, ApiResult};
use super::route::Query;

/// Docker's `since`/`until`: unix seconds with optional fraction, or RFC 3339.
pub fn parse_time(s: &str) -> ApiResult<Option<DateTime<Utc>>> {
    let s = s.trim();
    if s.is_empty() || s == "0" {
        return Ok(None);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    let (secs, frac) = s.split_once('.').unwrap_or((s, "0"));
    let secs: i64 = secs
        .parse()
        .map_err(|_| ApiError::invalid(format!("invalid time value {s:?}")))?;
    let mut f = frac.to_string();
    f.truncate(9);
    while f.len() < 9 {
        f.push('0');
    }
    let nanos: u32 = f
        .parse()
        .map_err(|_| ApiError::invalid(format!("invalid time value {s:?}")))?;
    Ok(Utc.timestamp_opt(secs, nanos).single())
}

/// One frame header (the monitor's framing: `skiff_shim::proto`).
pub fn frame(stream: Stream, len: usize) -> [u8; 8] {
    let s = match stream {
        Stream::Stdout => skiff_shim::proto::STREAM_STDOUT,
        Stream::Stderr => skiff_shim::proto::STREAM_STDERR,
    };
    skiff_shim::proto::frame_header(s, len as u32)
}

pub fn logs(c: &Arc<Containers>, id: &str, q: &Query) -> ApiResult<Resp> {
    let (stdout, stderr) = (q.bool("stdout"), q.bool("stderr"));
    if !stdout && !stderr {
        return Err(ApiError::invalid(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let tail = match q.get("tail").unwrap_or("all") {
        "all" | "" => None,
        n => match n.parse::<i64>() {
            Ok(v) if v >= 0 => Some(v as usize),
            _ => None,
        },
    };
    let opts = ReadOptions {
        stdout,
        stderr,
        since: parse_time(q.get("since").unwrap_or(""))?,
        until: parse_time(q.get("until").unwrap_or(""))?,
        tail,
        follow: q.bool("follow"),
    };
    let timestamps = q.bool("timestamps");
    let (reader, tty, mut life) = c.logs(id, opts.clone())?;
    let stopper = reader.stopper();
    let (tx, body) = Body::channel(64);
    if opts.follow {
        let st = stopper.clone();
        let tx2 = tx.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = life.wait_for(|l| !l.running || l.removed) => st.finish(),
                _ = tx2.closed() => st.stop(),
            }
        });
    }
    tokio::task::spawn_blocking(move || {
        // Consecutive lines of one stream share one frame (up to 32 KiB): a client writes
        // each frame's payload with one call, so 1M lines are not 1M writes.
        const FRAME_MAX: usize = 32 * 1024;
        let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
        let mut payload: Vec<u8> = Vec::with_capacity(FRAME_MAX);
        let mut cur: Option<Stream> = None;
        let close_frame = |buf: &mut Vec<u8>, payload: &mut Vec<u8>, cur: Option<Stream>| {
            if let Some(s) = cur.filter(|_| !payload.is_empty()) {
                if !tty {
                    buf.extend_from_slice(&frame(s, payload.len()));
                }
                buf.extend_from_slice(payload);
                payload.clear();
            }
        };
        let flush = |buf: &mut Vec<u8>| -> bool {
            if buf.is_empty() {
                return true;
            }
            let b = Bytes::from(std::mem::take(buf));
            tx.blocking_send(b).is_ok()
        };
        for e in reader {
            let e = match e {
                Ok(e) => e,
                Err(err) => {
                    tracing::warn!(error = %err, "log read failed");
                    break;
                }
            };
            let ts = timestamps.then(|| skiff_logs::format_rfc3339_nano_fixed(&e.time));
            let add = e.line.len() + ts.as_ref().map_or(0, |t| t.len() + 1);
            if cur != Some(e.stream) || payload.len() + add > FRAME_MAX {
                close_frame(&mut buf, &mut payload, cur);
                cur = Some(e.stream);
            }
            if let Some(t) = ts {
                payload.extend_from_slice(t.as_bytes());
                payload.push(b' ');
            }
            payload.extend_from_slice(&e.line);
            // Followers get each line at once; a full read is sent in big chunks.
            if opts.follow {
                close_frame(&mut buf, &mut payload, cur);
            }
            if (opts.follow || buf.len() >= 60 * 1024) && !flush(&mut buf) {
                stopper.stop();
                return;
            }
        }
        close_frame(&mut buf, &mut payload, cur);
        flush(&mut buf);
    });
    let mut r = super::body::json_stream(body);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(super::hijack::stream_type(tty)),
    );
    Ok(r)
}
