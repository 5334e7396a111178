//! Tag listing (`GET /v2/<name>/tags/list`, following `Link: <…>; rel="next"` pages), for
//! `pull --all-tags`.

use reqwest::header::{HeaderMap, LINK};
use reqwest::Method;

use crate::auth::repo_scope;
use crate::client::{request, try_next_endpoint, Registry};
use crate::error::{Error, Result};
use crate::reference::Reference;

#[derive(serde::Deserialize)]
struct TagList {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

/// The URL of the next page from a `Link` header, relative to `base`.
fn next_link(headers: &HeaderMap, base: &url::Url) -> Option<url::Url> {
    let v = headers.get(LINK)?.to_str().ok()?;
    let (target, params) = v.split_once(';')?;
    if !params.contains("rel=\"next\"") && !params.contains("rel=next") {
        return None;
    }
    let target = target.trim().trim_start_matches('<').trim_end_matches('>');
    base.join(target).ok()
}

impl Registry {
    /// Every tag of `reference`'s repository, sorted.
    pub async fn list_tags(&self, reference: &Reference) -> Result<Vec<String>> {
        let context = format!("list tags of {}", reference.familiar_name());
        let endpoints = self.endpoints(reference, true).await?;
        let mut last = None;
        for ep in &endpoints {
            match self.list_tags_at(ep, reference, &context).await {
                Ok(t) => return Ok(t),
                Err(e) if try_next_endpoint(ep, &e) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::Config("no endpoint".into())))
    }

    async fn list_tags_at(
        &self,
        ep: &crate::client::Endpoint,
        reference: &Reference,
        context: &str,
    ) -> Result<Vec<String>> {
        let scopes = [repo_scope(reference.repository(), false)];
        let mut url = ep.url(&format!("{}/tags/list", reference.repository()))?;
        let mut tags = Vec::new();
        for _page in 0..1000 {
            let headers = HeaderMap::new();
            let u = url.clone();
            let resp = self
                .send(ep, &scopes, context, |c| {
                    request(c, Method::GET, &u, &headers)
                })
                .await?;
            if !resp.status().is_success() {
                return Err(self.status_error(ep, context, resp).await);
            }
            let next = next_link(resp.headers(), &url);
            let bytes = resp.bytes().await.map_err(|source| Error::Http {
                context: context.to_string(),
                source,
            })?;
            let list: TagList = serde_json::from_slice(&bytes).map_err(|e| Error::Protocol {
                context: context.to_string(),
                detail: format!("tag list: {e}"),
            })?;
            tags.extend(list.tags.unwrap_or_default());
            match next {
                Some(n) => url = n,
                None => break,
            }
        }
        tags.sort();
        tags.dedup();
        Ok(tags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_page_link() {
        let base: url::Url = "http://127.0.0.1:5000/v2/a/tags/list".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            LINK,
            "</v2/a/tags/list?last=b&n=2>; rel=\"next\""
                .parse()
                .unwrap(),
        );
        assert_eq!(
            next_link(&h, &base).unwrap().as_str(),
            "http://127.0.0.1:5000/v2/a/tags/list?last=b&n=2"
        );
        h.insert(LINK, "</x>; rel=\"prev\"".parse().unwrap());
        assert!(next_link(&h, &base).is_none());
    }
}
