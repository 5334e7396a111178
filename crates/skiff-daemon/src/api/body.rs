//! Response bodies: a whole buffer, or a stream of chunks from a channel (progress messages,
//! later logs and events). Send + Sync, so connections can run on any worker.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use tokio::sync::mpsc;

use super::error::ApiError;

pub enum Body {
    Full(Option<Bytes>),
    Channel(mpsc::Receiver<Bytes>),
    /// A stream that can fail after its start (a `save` tarball): on an error the
    /// connection is cut before the last chunk, so the client sees a truncated transfer
    /// instead of a complete-looking one.
    Fallible(mpsc::Receiver<Result<Bytes, Aborted>>),
}

/// Why a [`Body::Fallible`] stream stopped.
#[derive(Debug, thiserror::Error)]
#[error("response stream aborted: {0}")]
pub struct Aborted(pub String);

impl Body {
    pub fn empty() -> Self {
        Body::Full(None)
    }
    pub fn full(b: impl Into<Bytes>) -> Self {
        let b = b.into();
        if b.is_empty() {
            Body::Full(None)
        } else {
            Body::Full(Some(b))
        }
    }
    /// A streamed body and the sender feeding it (drop the sender to end it).
    pub fn channel(depth: usize) -> (mpsc::Sender<Bytes>, Self) {
        let (tx, rx) = mpsc::channel(depth);
        (tx, Body::Channel(rx))
    }
    /// A streamed body that an `Err` aborts.
    pub fn fallible(depth: usize) -> (mpsc::Sender<Result<Bytes, Aborted>>, Self) {
        let (tx, rx) = mpsc::channel(depth);
        (tx, Body::Fallible(rx))
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Aborted;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Aborted>>> {
        match self.get_mut() {
            Body::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Body::Channel(rx) => rx.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b)))),
            Body::Fallible(rx) => rx.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Body::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Full(None) => SizeHint::with_exact(0),
            Body::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Body::Channel(_) | Body::Fallible(_) => SizeHint::default(),
        }
    }
}

pub type Resp = Response<Body>;

fn with_type(status: StatusCode, ctype: &'static str, body: Body) -> Resp {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(ctype));
    r
}

/// A JSON answer.
pub fn json(status: StatusCode, v: &impl serde::Serialize) -> Resp {
    match serde_json::to_vec(v) {
        Ok(mut b) => {
            b.push(b'\n');
            with_type(status, "application/json", Body::full(b))
        }
        Err(e) => error(&ApiError::system(format!("encode response: {e}"))),
    }
}

/// An error answer: Docker's `{"message": …}` with the kind's status.
pub fn error(e: &ApiError) -> Resp {
    if e.status() == StatusCode::NOT_MODIFIED {
        return status(StatusCode::NOT_MODIFIED);
    }
    let mut b = e.body();
    b.push(b'\n');
    with_type(e.status(), "application/json", Body::full(b))
}

/// A plain-text answer.
pub fn text(status: StatusCode, s: &'static str) -> Resp {
    with_type(status, "text/plain; charset=utf-8", Body::full(s))
}

/// No body.
pub fn status(status: StatusCode) -> Resp {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    r
}

/// A streamed JSON answer (progress messages).
pub fn json_stream(rx: Body) -> Resp {
    with_type(StatusCode::OK, "application/json", rx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn fallible_stream_ends_in_an_error() {
        let (tx, mut b) = Body::fallible(4);
        tx.send(Ok(Bytes::from_static(b"part"))).await.unwrap();
        tx.send(Err(Aborted("disk gone".into()))).await.unwrap();
        drop(tx);
        let f = b.frame().await.unwrap().unwrap();
        assert_eq!(f.into_data().unwrap(), Bytes::from_static(b"part"));
        let e = b.frame().await.unwrap().unwrap_err();
        assert_eq!(e.to_string(), "response stream aborted: disk gone");
    }
}
