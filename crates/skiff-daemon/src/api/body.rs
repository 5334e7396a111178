//! Response bodies: a whole buffer, or a stream of chunks from a channel (progress messages,
//! later logs and events). Send + Sync, so connections can run on any worker.

use std::convert::Infallible;
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
}

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
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Body::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Body::Channel(rx) => rx.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Body::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Full(None) => SizeHint::with_exact(0),
            Body::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Body::Channel(_) => SizeHint::default(),
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
