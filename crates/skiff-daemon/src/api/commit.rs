//! `POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes=`: a container into a
//! new image (body: an optional container `Config` to use instead of the container's).
//! Answers `201 {"Id": "sha256:…"}`; a missing container is 404, a bad `changes` 400.

use std::collections::BTreeMap;

use hyper::StatusCode;
use serde_json::{json, Value};
use skiff_engine::containers::model::Config;
use skiff_engine::containers::CommitRequest;
use skiff_registry::Reference;

use super::body::{self, Resp};
use super::containers::strip_nulls;
use super::error::{ApiError, ApiResult};
use super::route::Query;
use crate::state::Daemon;

/// The request from the query and body.
fn request(q: &Query, b: &[u8]) -> ApiResult<CommitRequest> {
    let container = q.string("container");
    if container.is_empty() {
        return Err(ApiError::invalid(
            "commit: the container parameter is required",
        ));
    }
    let repo = q.string("repo");
    let tag = q.string("tag");
    let reference = if repo.is_empty() {
        None
    } else {
        let r = Reference::parse_normalized_named(&repo)?;
        if r.digest().is_some() {
            return Err(ApiError::invalid(format!(
                "commit: cannot commit to a digest reference: {repo}"
            )));
        }
        let r = if tag.is_empty() { r } else { r.retag(&tag)? };
        Some(r.to_string())
    };
    let config = match b.iter().all(u8::is_ascii_whitespace) {
        true => None,
        false => {
            let mut v: Value = serde_json::from_slice(b)
                .map_err(|e| ApiError::invalid(format!("commit: invalid JSON body: {e}")))?;
            strip_nulls(&mut v);
            match v {
                Value::Null => None,
                v => Some(serde_json::from_value::<Config>(v).map_err(|e| {
                    ApiError::invalid(format!("commit: invalid Config in the body: {e}"))
                })?),
            }
        }
    };
    Ok(CommitRequest {
        container,
        reference,
        comment: q.string("comment"),
        author: q.string("author"),
        // dockerd (API ≥ 1.13): pause unless `pause` is given and false.
        pause: q.get("pause").is_none_or(|p| p.is_empty()) || q.bool("pause"),
        changes: q
            .all("changes")
            .into_iter()
            .filter(|c| !c.trim().is_empty())
            .collect(),
        config,
    })
}

/// `POST /commit`.
pub async fn commit(d: &Daemon, q: Query, b: bytes::Bytes) -> ApiResult<Resp> {
    let req = request(&q, &b)?;
    let done = d.containers.commit(&d.images(), req).await?;
    if let Some(name) = &done.reference {
        // dockerd tags the new image: an image `tag` event besides the container's `commit`.
        let mut attrs = BTreeMap::new();
        attrs.insert("name".to_string(), name.clone());
        d.containers.events.emit("image", "tag", &done.id, attrs);
    }
    Ok(body::json(StatusCode::CREATED, &json!({"Id": done.id})))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Query {
        Query::parse(Some(s))
    }

    #[test]
    fn query_and_body() {
        let r = request(
            &q("container=web&repo=me/app&tag=v1&comment=c&author=a&changes=CMD+%5B%22x%22%5D&changes="),
            b"",
        )
        .unwrap();
        assert_eq!(r.container, "web");
        assert_eq!(r.reference.as_deref(), Some("docker.io/me/app:v1"));
        assert_eq!((r.comment.as_str(), r.author.as_str()), ("c", "a"));
        assert_eq!(r.changes, vec!["CMD [\"x\"]".to_string()]);
        assert!(r.pause && r.config.is_none());
        let r = request(&q("container=web&pause=0"), b"null").unwrap();
        assert!(!r.pause && r.config.is_none() && r.reference.is_none());
        let r = request(
            &q("container=web&pause=1"),
            br#"{"Cmd": ["sh"], "Env": null}"#,
        )
        .unwrap();
        assert!(r.pause);
        assert_eq!(r.config.unwrap().cmd, Some(vec!["sh".to_string()]));
        assert_eq!(request(&q(""), b"").unwrap_err().status(), 400);
        let e = request(&q("container=x"), br#"{"Nope": 1}"#).unwrap_err();
        assert!(e.message.contains("Nope"), "{}", e.message);
        assert_eq!(
            request(&q("container=x&repo=UPPER"), b"")
                .unwrap_err()
                .status(),
            400
        );
    }
}
