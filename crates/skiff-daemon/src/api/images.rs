//! Image endpoints over [`skiff_engine::ImageService`]: list, remove, tag, inspect, history.
//! The store is synchronous: every call into it runs on the blocking pool.

use std::collections::BTreeMap;

use hyper::StatusCode;
use serde::Serialize;
use serde_json::{json, Value};
use skiff_engine::images::DANGLING_PREFIX;
use skiff_engine::ImageService;
use skiff_registry::Reference;

use super::body::{self, Resp};
use super::error::{ApiError, ApiResult};
use super::filters::{path_match, Filters};
use super::route::{ApiVersion, Query};
use crate::state::Daemon;

/// Runs a blocking store call on the blocking pool; a panic there is a 500.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::system(format!("internal error: {e}")))?
}

/// Docker's ImageSummary (API v1.44), keys in the spec's order.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageSummary {
    pub containers: i64,
    pub created: i64,
    pub id: String,
    pub labels: BTreeMap<String, String>,
    pub parent_id: String,
    pub repo_digests: Vec<String>,
    pub repo_tags: Vec<String>,
    pub shared_size: i64,
    pub size: u64,
    /// Dropped from the API in v1.44; sent to older clients.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_size: Option<u64>,
}

/// One image (by ID) with all its names.
struct Entry {
    summary: ImageSummary,
    /// The full references behind RepoTags/RepoDigests, for `reference` filtering.
    refs: Vec<Reference>,
}

fn unix_secs(created: Option<&String>) -> i64 {
    created
        .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
        .map(|t| t.timestamp())
        .unwrap_or(0)
}

fn collect(svc: &ImageService) -> ApiResult<Vec<Entry>> {
    let recs = svc
        .store
        .image_list()
        .map_err(|e| ApiError::system(format!("list images: {e}")))?;
    let mut by_id: BTreeMap<String, Entry> = BTreeMap::new();
    for rec in recs {
        let (manifest, config, _) = match svc.load_record(&rec) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(image = %rec.name, error = %e, "image record without readable manifest");
                continue;
            }
        };
        let id = manifest.config().digest().to_string();
        let entry = by_id.entry(id.clone()).or_insert_with(|| Entry {
            summary: ImageSummary {
                containers: -1,
                created: unix_secs(config.created().as_ref()),
                id: id.clone(),
                labels: config
                    .config()
                    .as_ref()
                    .and_then(|c| c.labels().clone())
                    .map(|l| l.into_iter().collect())
                    .unwrap_or_default(),
                parent_id: String::new(),
                repo_digests: Vec::new(),
                repo_tags: Vec::new(),
                shared_size: -1,
                size: svc.image_size(&manifest, &config),
                virtual_size: None,
            },
            refs: Vec::new(),
        });
        if rec.name.starts_with(DANGLING_PREFIX) {
            continue;
        }
        if let Ok(r) = Reference::parse(&rec.name) {
            if r.tag().is_some() {
                entry.summary.repo_tags.push(r.familiar());
            }
            if let Some(d) = r.digest() {
                entry
                    .summary
                    .repo_digests
                    .push(format!("{}@{d}", r.familiar_name()));
            }
            entry.refs.push(r);
        }
        if let Some(rd) = rec.labels.get(skiff_engine::images::LABEL_REPO_DIGEST) {
            if let Ok(r) = Reference::parse(rd) {
                if let Some(d) = r.digest() {
                    entry
                        .summary
                        .repo_digests
                        .push(format!("{}@{d}", r.familiar_name()));
                    entry.refs.push(r);
                }
            }
        }
    }
    let mut out: Vec<Entry> = by_id.into_values().collect();
    for e in &mut out {
        e.summary.repo_tags.sort();
        e.summary.repo_tags.dedup();
        e.summary.repo_digests.sort();
        e.summary.repo_digests.dedup();
    }
    out.sort_by(|a, b| {
        b.summary
            .created
            .cmp(&a.summary.created)
            .then(a.summary.id.cmp(&b.summary.id))
    });
    Ok(out)
}

/// Docker's `reference.FamiliarMatch`: the pattern against `name:tag`, then against `name`.
fn reference_matches(pattern: &str, r: &Reference) -> bool {
    path_match(pattern, &r.familiar()) || path_match(pattern, &r.familiar_name())
}

/// `GET /images/json`.
pub async fn list(d: &Daemon, v: ApiVersion, q: Query) -> ApiResult<Resp> {
    let filters = Filters::parse(q.get("filters"))?;
    filters.validate(&[
        "dangling",
        "label",
        "label!",
        "reference",
        "before",
        "since",
        "until",
    ])?;
    if filters.contains("until") {
        return Err(ApiError::not_implemented(
            "the 'until' filter is not supported yet",
        ));
    }
    let dangling = filters.bool("dangling")?;
    let svc = d.images();
    let rows = blocking(move || {
        let mut entries = collect(&svc)?;
        let created_of = |name: &str| -> ApiResult<i64> {
            let img = svc.resolve(name)?;
            Ok(unix_secs(img.config.created().as_ref()))
        };
        let before = filters
            .get("before")
            .first()
            .map(|n| created_of(n))
            .transpose()?;
        let since = filters
            .get("since")
            .first()
            .map(|n| created_of(n))
            .transpose()?;
        let mut out = Vec::new();
        for mut e in entries.drain(..) {
            let is_dangling = e.summary.repo_tags.is_empty() && e.summary.repo_digests.is_empty();
            match dangling {
                Some(true) if !e.summary.repo_tags.is_empty() => continue,
                Some(false) if is_dangling => continue,
                _ => {}
            }
            if filters.contains("reference") {
                let pats = filters.get("reference");
                let keep: Vec<&Reference> = e
                    .refs
                    .iter()
                    .filter(|r| pats.iter().any(|p| reference_matches(p, r)))
                    .collect();
                if keep.is_empty() {
                    continue;
                }
                let tags: Vec<String> = keep
                    .iter()
                    .filter(|r| r.tag().is_some())
                    .map(|r| r.familiar())
                    .collect();
                let digests: Vec<String> = keep
                    .iter()
                    .filter_map(|r| r.digest().map(|d| format!("{}@{d}", r.familiar_name())))
                    .collect();
                e.summary.repo_tags.retain(|t| tags.contains(t));
                e.summary.repo_digests.retain(|t| digests.contains(t));
            }
            if !filters.labels_match("label", &e.summary.labels) {
                continue;
            }
            if filters.contains("label!")
                && filters.get("label!").iter().any(|want| {
                    let one = Filters(BTreeMap::from([("l".to_string(), vec![want.clone()])]));
                    one.labels_match("l", &e.summary.labels)
                })
            {
                continue;
            }
            if before.is_some_and(|b| e.summary.created >= b) {
                continue;
            }
            if since.is_some_and(|s| e.summary.created <= s) {
                continue;
            }
            out.push(e.summary);
        }
        Ok(out)
    })
    .await?;
    let rows: Vec<ImageSummary> = rows
        .into_iter()
        .map(|mut s| {
            if v < ApiVersion(1, 44) {
                s.virtual_size = Some(s.size);
            }
            s
        })
        .collect();
    Ok(body::json(StatusCode::OK, &rows))
}

/// `DELETE /images/{name}`: `[{"Untagged": …}, {"Deleted": …}]`.
pub async fn remove(d: &Daemon, name: String, q: Query) -> ApiResult<Resp> {
    let force = q.bool("force");
    let svc = d.images();
    let cs = d.containers.clone();
    let (id, out) = blocking(move || {
        // dockerd's untag event names the image by ID.
        let id = svc.resolve(&name).map(|i| i.id).ok();
        Ok((id, svc.remove(&name, force, &|id| cs.image_in_use(id))?))
    })
    .await?;
    let by_id = |id: &str| BTreeMap::from([("name".to_string(), id.to_string())]);
    for u in &out.untagged {
        let who = id.as_deref().unwrap_or(u);
        d.containers.events.emit("image", "untag", who, by_id(who));
    }
    for del in &out.deleted {
        d.containers.events.emit("image", "delete", del, by_id(del));
    }
    let mut items: Vec<Value> = out
        .untagged
        .iter()
        .map(|u| json!({"Untagged": u}))
        .collect();
    items.extend(out.deleted.iter().map(|d| json!({"Deleted": d})));
    Ok(body::json(StatusCode::OK, &items))
}

/// `POST /images/{name}/tag?repo=&tag=` → 201.
pub async fn tag(d: &Daemon, name: String, q: Query) -> ApiResult<Resp> {
    let repo = q.string("repo");
    if repo.is_empty() {
        return Err(ApiError::invalid(
            "repository name must have at least one component",
        ));
    }
    let tag = q.get("tag").filter(|t| !t.is_empty()).unwrap_or("latest");
    let repo_ref = Reference::parse(&repo)?;
    if repo_ref.digest().is_some() {
        return Err(ApiError::invalid(format!(
            "refusing to create a tag with a digest reference: {repo}"
        )));
    }
    let target = repo_ref.retag(tag)?.to_string();
    let svc = d.images();
    let t2 = target.clone();
    // dockerd's tag event: the image ID, with the new name as `name`.
    let id = blocking(move || {
        svc.tag(&name, &t2)?;
        Ok(svc.resolve(&t2)?.id)
    })
    .await?;
    let mut attrs = std::collections::BTreeMap::new();
    let familiar = Reference::parse(&target)
        .map(|r| r.familiar())
        .unwrap_or(target);
    attrs.insert("name".to_string(), familiar);
    d.containers.events.emit("image", "tag", &id, attrs);
    Ok(body::status(StatusCode::CREATED))
}

/// `GET /images/{name}/json`.
pub async fn inspect(d: &Daemon, name: String) -> ApiResult<Resp> {
    let svc = d.images();
    let v = blocking(move || Ok(svc.inspect(&name)?)).await?;
    Ok(body::json(StatusCode::OK, &v))
}

/// `GET /images/{name}/history`.
pub async fn history(d: &Daemon, name: String) -> ApiResult<Resp> {
    let svc = d.images();
    let rows = blocking(move || Ok(svc.history(&name)?)).await?;
    let out: Vec<Value> = rows
        .into_iter()
        .map(|h| {
            json!({
                "Id": h.id.unwrap_or_else(|| "<missing>".into()),
                "Created": unix_secs(h.created.as_ref()),
                "CreatedBy": h.created_by,
                "Tags": if h.tags.is_empty() { Value::Null } else { json!(h.tags) },
                "Size": h.size,
                "Comment": h.comment,
            })
        })
        .collect();
    Ok(body::json(StatusCode::OK, &out))
}

/// `GET /system/df`: images (with how many containers use each), containers (with their
/// writable-layer sizes), volumes and build cache (none yet), and the layers' total size.
pub async fn system_df(d: &Daemon) -> ApiResult<Resp> {
    let svc = d.images();
    let build_cache = super::build::df_records(d);
    let cs = d.containers.clone();
    let volumes = super::volumes::df(d);
    let v = blocking(move || {
        let containers = cs
            .list(&skiff_engine::containers::views::ListOptions {
                all: true,
                size: true,
                ..Default::default()
            })
            .map_err(ApiError::from)?;
        let mut images = Vec::new();
        let mut layers: u64 = 0;
        for e in collect(&svc)? {
            let mut s = e.summary;
            s.containers = containers
                .iter()
                .filter(|c| c["ImageID"].as_str() == Some(s.id.as_str()))
                .count() as i64;
            s.shared_size = 0;
            layers += s.size;
            images.push(s);
        }
        Ok(json!({
            "LayersSize": layers,
            "Images": images,
            "Containers": containers,
            "Volumes": volumes,
            "BuildCache": build_cache,
        }))
    })
    .await?;
    Ok(body::json(StatusCode::OK, &v))
}
