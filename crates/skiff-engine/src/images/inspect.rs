//! `image inspect` (Docker's ImageInspect JSON, Engine API v1.44) and `history`.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use skiff_registry::Reference;

use super::query::{LocalImage, LABEL_LAYER_SIZE};
use super::{ImageService, Result, DANGLING_PREFIX, LABEL_REPO_DIGEST};

/// One row of `history`, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The image ID on the top row; `None` (`<missing>`) below, as docker shows pulled images.
    pub id: Option<String>,
    pub created: Option<String>,
    pub created_by: String,
    /// Bytes of the layer this step made (0 for an empty layer).
    pub size: u64,
    pub comment: String,
    /// Names of the image, on the top row.
    pub tags: Vec<String>,
}

/// Docker's `Config` keys of an image (ContainerConfig), in its order, with its zero values.
const CONFIG_DEFAULTS: &[(&str, Value)] = &[
    ("Hostname", Value::String(String::new())),
    ("Domainname", Value::String(String::new())),
    ("User", Value::String(String::new())),
    ("AttachStdin", Value::Bool(false)),
    ("AttachStdout", Value::Bool(false)),
    ("AttachStderr", Value::Bool(false)),
    ("Tty", Value::Bool(false)),
    ("OpenStdin", Value::Bool(false)),
    ("StdinOnce", Value::Bool(false)),
    ("Env", Value::Null),
    ("Cmd", Value::Null),
    ("Image", Value::String(String::new())),
    ("Volumes", Value::Null),
    ("WorkingDir", Value::String(String::new())),
    ("Entrypoint", Value::Null),
    ("OnBuild", Value::Null),
    ("Labels", Value::Null),
];

impl ImageService {
    /// The names and repository digests of an image, as docker shows them.
    fn tags_and_digests(&self, img: &LocalImage) -> (Vec<String>, Vec<String>, Option<String>) {
        let mut tags = Vec::new();
        let mut digests = Vec::new();
        let mut last_tag: Option<DateTime<Utc>> = None;
        for rec in &img.records {
            if rec.name.starts_with(DANGLING_PREFIX) {
                continue;
            }
            if let Ok(r) = Reference::parse(&rec.name) {
                if r.tag().is_some() {
                    tags.push(r.familiar());
                    last_tag = last_tag.max(Some(rec.updated));
                }
                if let Some(d) = r.digest() {
                    digests.push(format!("{}@{d}", r.familiar_name()));
                }
            }
            if let Some(rd) = rec.labels.get(LABEL_REPO_DIGEST) {
                let familiar = rd
                    .split_once('@')
                    .and_then(|(n, d)| {
                        Reference::parse(n)
                            .ok()
                            .map(|r| format!("{}@{d}", r.familiar_name()))
                    })
                    .unwrap_or_else(|| rd.clone());
                digests.push(familiar);
            }
        }
        tags.sort();
        tags.dedup();
        digests.sort();
        digests.dedup();
        let last = last_tag.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true));
        (tags, digests, last)
    }

    /// `image inspect`: Docker's ImageInspect object for one image.
    pub fn inspect(&self, name_or_id: &str) -> Result<Value> {
        let img = self.resolve(name_or_id)?;
        let raw: Value = serde_json::from_slice(&img.config_bytes).unwrap_or(Value::Null);
        let (tags, digests, last_tag) = self.tags_and_digests(&img);
        let size = self.image_size(&img.manifest, &img.config);

        let mut config = Map::new();
        let src = raw.get("config").and_then(Value::as_object);
        for (k, zero) in CONFIG_DEFAULTS {
            let v = src.and_then(|s| s.get(*k)).cloned().unwrap_or(zero.clone());
            config.insert((*k).to_string(), v);
        }
        if let Some(s) = src {
            for (k, v) in s {
                if !config.contains_key(k) && !v.is_null() {
                    config.insert(k.clone(), v.clone());
                }
            }
        }

        let layers: Vec<Value> = raw
            .pointer("/rootfs/diff_ids")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let str_of = |k: &str| {
            raw.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let mut out = Map::new();
        out.insert("Id".into(), json!(img.id));
        out.insert("RepoTags".into(), json!(tags));
        out.insert("RepoDigests".into(), json!(digests));
        out.insert("Parent".into(), json!(""));
        out.insert("Comment".into(), json!(self.comment(&raw)));
        out.insert(
            "Created".into(),
            json!(raw
                .get("created")
                .and_then(Value::as_str)
                .unwrap_or("0001-01-01T00:00:00Z")),
        );
        // A committed image's container and its config (deprecated in the API, shown by
        // dockerd 25 only when set).
        if let Some(c) = raw.get("container").and_then(Value::as_str) {
            out.insert("Container".into(), json!(c));
        }
        if let Some(c) = raw.get("container_config").filter(|c| c.is_object()) {
            out.insert("ContainerConfig".into(), c.clone());
        }
        out.insert("DockerVersion".into(), json!(str_of("docker_version")));
        out.insert("Author".into(), json!(str_of("author")));
        out.insert("Config".into(), Value::Object(config));
        out.insert("Architecture".into(), json!(str_of("architecture")));
        if let Some(v) = raw.get("variant").and_then(Value::as_str) {
            out.insert("Variant".into(), json!(v));
        }
        out.insert("Os".into(), json!(str_of("os")));
        if let Some(v) = raw.get("os.version").and_then(Value::as_str) {
            out.insert("OsVersion".into(), json!(v));
        }
        out.insert("Size".into(), json!(size));
        out.insert(
            "GraphDriver".into(),
            json!({ "Data": self.graph_driver_data(&img), "Name": "overlay2" }),
        );
        out.insert(
            "RootFS".into(),
            json!({ "Type": "layers", "Layers": layers }),
        );
        out.insert(
            "Metadata".into(),
            json!({ "LastTagTime": last_tag.unwrap_or_else(|| "0001-01-01T00:00:00Z".into()) }),
        );
        Ok(Value::Object(out))
    }

    /// The comment docker shows: the last history entry's (an import's message).
    fn comment(&self, raw: &Value) -> String {
        raw.get("comment")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| {
                raw.get("history")
                    .and_then(Value::as_array)
                    .and_then(|h| h.last())
                    .and_then(|e| e.get("comment"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_default()
    }

    /// overlay2's LowerDir/UpperDir/MergedDir/WorkDir for the image's top snapshot.
    fn graph_driver_data(&self, img: &LocalImage) -> Value {
        let dirs = self.layer_dirs(img);
        let Some((top, lowers)) = dirs.split_last() else {
            return Value::Null;
        };
        let mut m = Map::new();
        if !lowers.is_empty() {
            let l: Vec<String> = lowers
                .iter()
                .rev()
                .map(|d| d.join("diff").display().to_string())
                .collect();
            m.insert("LowerDir".into(), json!(l.join(":")));
        }
        m.insert(
            "MergedDir".into(),
            json!(top.join("merged").display().to_string()),
        );
        m.insert(
            "UpperDir".into(),
            json!(top.join("diff").display().to_string()),
        );
        m.insert(
            "WorkDir".into(),
            json!(top.join("work").display().to_string()),
        );
        Value::Object(m)
    }

    /// The snapshot directories of an image's layers, bottom first (those that exist).
    fn layer_dirs(&self, img: &LocalImage) -> Vec<std::path::PathBuf> {
        let snaps = self.store.snapshots();
        self.chain_ids(img)
            .iter()
            .filter_map(|c| snaps.stat(c).ok())
            .map(|i| self.store.layout().overlay().join(i.id))
            .collect()
    }

    fn chain_ids(&self, img: &LocalImage) -> Vec<String> {
        img.chain_ids()
    }

    /// `history`: one row per config history entry, newest first.
    pub fn history(&self, name_or_id: &str) -> Result<Vec<HistoryEntry>> {
        let img = self.resolve(name_or_id)?;
        let (tags, _, _) = self.tags_and_digests(&img);
        let snaps = self.store.snapshots();
        let layer_sizes: Vec<u64> = self
            .chain_ids(&img)
            .iter()
            .enumerate()
            .map(|(i, c)| {
                snaps
                    .stat(c)
                    .ok()
                    .and_then(|s| s.labels.get(LABEL_LAYER_SIZE).and_then(|v| v.parse().ok()))
                    .or_else(|| img.manifest.layers().get(i).map(|l| l.size()))
                    .unwrap_or(0)
            })
            .collect();
        let raw: Value = serde_json::from_slice(&img.config_bytes).unwrap_or(Value::Null);
        let hist = raw
            .get("history")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut rows = Vec::new();
        let mut layer = 0;
        for h in &hist {
            let empty = h
                .get("empty_layer")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let size = if empty {
                0
            } else {
                let s = layer_sizes.get(layer).copied().unwrap_or(0);
                layer += 1;
                s
            };
            let s = |k: &str| h.get(k).and_then(Value::as_str).map(str::to_string);
            rows.push(HistoryEntry {
                id: None,
                created: s("created"),
                created_by: s("created_by").unwrap_or_default(),
                size,
                comment: s("comment").unwrap_or_default(),
                tags: Vec::new(),
            });
        }
        if hist.is_empty() {
            // No history recorded: one row per layer, as docker synthesises.
            for size in &layer_sizes {
                rows.push(HistoryEntry {
                    id: None,
                    created: raw
                        .get("created")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    created_by: String::new(),
                    size: *size,
                    comment: String::new(),
                    tags: Vec::new(),
                });
            }
        }
        rows.reverse();
        if let Some(top) = rows.first_mut() {
            top.id = Some(img.id.clone());
            top.tags = tags;
        }
        Ok(rows)
    }
}
