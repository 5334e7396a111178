//! The image state a stage carries from step to step (config JSON + layers), and the history
//! entries steps add, worded as Docker's classic builder words them
//! (`/bin/sh -c #(nop)  CMD ["sh"]`, `/bin/sh -c echo hi`, `|1 V=2 /bin/sh -c make`).

use serde_json::{json, Value};
use skiff_build::ImageConfig;

use super::cache::LayerRef;
use crate::images::LocalImage;

/// An image as a stage builds it.
#[derive(Debug, Clone)]
pub(crate) struct ImgState {
    /// The whole image config JSON (`config`, `rootfs`, `history`, ...).
    pub config: Value,
    pub layers: Vec<LayerRef>,
    /// `sha256:` of [`ImgState::bytes`] (`""` for scratch before any step).
    pub id: String,
    /// A base image's config bytes as stored (kept so `FROM x` alone keeps x's ID).
    pub raw: Option<Vec<u8>>,
}

pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

impl ImgState {
    /// `FROM scratch`.
    pub fn scratch() -> ImgState {
        ImgState {
            config: json!({
                "architecture": skiff_image::import::host_arch(),
                "os": "linux",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": []},
                "history": [],
            }),
            layers: Vec::new(),
            id: String::new(),
            raw: None,
        }
    }

    /// A local image.
    pub fn from_image(img: &LocalImage) -> ImgState {
        let config: Value = serde_json::from_slice(&img.config_bytes).unwrap_or(Value::Null);
        let diff_ids = img.config.rootfs().diff_ids();
        let layers = img
            .manifest
            .layers()
            .iter()
            .zip(diff_ids)
            .map(|(l, d)| LayerRef {
                digest: l.digest().to_string(),
                media_type: l.media_type().to_string(),
                size: l.size(),
                diff_id: d.clone(),
            })
            .collect();
        ImgState {
            config,
            layers,
            id: img.id.clone(),
            raw: Some(img.config_bytes.clone()),
        }
    }

    /// The config bytes as stored (their digest is the ID).
    pub fn bytes(&self) -> Vec<u8> {
        if let Some(r) = &self.raw {
            return r.clone();
        }
        serde_json::to_vec(&self.config).unwrap_or_default()
    }

    /// The run configuration (`config`).
    pub fn run_config(&self) -> ImageConfig {
        self.config
            .get("config")
            .filter(|v| !v.is_null())
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default()
    }

    /// Snapshot keys of the layers, bottom first.
    pub fn chain_ids(&self) -> Vec<String> {
        let diff_ids: Vec<skiff_registry::Digest> = self
            .layers
            .iter()
            .filter_map(|l| l.diff_id.parse().ok())
            .collect();
        skiff_image::formats::chain_id::chain_ids(&diff_ids)
            .iter()
            .map(|c| c.to_string())
            .collect()
    }

    /// The top layer's snapshot key (the parent of a step's snapshot).
    pub fn top_chain(&self) -> Option<String> {
        self.chain_ids().pop()
    }

    /// The state after a step: `run` as the new run config, a history entry, the layer.
    pub fn next(
        &self,
        run: &ImageConfig,
        author: Option<&str>,
        created_by: String,
        layer: Option<LayerRef>,
    ) -> ImgState {
        let mut config = self.config.clone();
        if !config.is_object() {
            config = ImgState::scratch().config;
        }
        let created = now();
        config["config"] = serde_json::to_value(run).unwrap_or(Value::Null);
        config["created"] = created.clone().into();
        if let Some(a) = author {
            config["author"] = a.into();
        }
        let mut h = json!({"created": created, "created_by": created_by});
        if layer.is_none() {
            h["empty_layer"] = true.into();
        }
        match config.get_mut("history").and_then(Value::as_array_mut) {
            Some(a) => a.push(h),
            None => config["history"] = json!([h]),
        }
        let mut layers = self.layers.clone();
        if let Some(l) = layer {
            if !config["rootfs"].is_object() {
                config["rootfs"] = json!({"type": "layers", "diff_ids": []});
            }
            match config["rootfs"]
                .get_mut("diff_ids")
                .and_then(Value::as_array_mut)
            {
                Some(a) => a.push(l.diff_id.clone().into()),
                None => config["rootfs"]["diff_ids"] = json!([l.diff_id]),
            }
            layers.push(l);
        }
        let mut s = ImgState {
            config,
            layers,
            id: String::new(),
            raw: None,
        };
        s.id = skiff_image::digest::sha256(&s.bytes()).to_string();
        s
    }
}

/// `/bin/sh -c #(nop)  TEXT`: a config-only step.
pub(crate) fn nop(text: &str) -> String {
    format!("/bin/sh -c #(nop)  {text}")
}

/// RUN's history: the command, with the build args in front as Docker's `|N a=b`.
pub(crate) fn run(argv: &[String], cache_args: &[String]) -> String {
    let cmd = argv.join(" ");
    if cache_args.is_empty() {
        cmd
    } else {
        format!("|{} {} {cmd}", cache_args.len(), cache_args.join(" "))
    }
}

/// The instruction text after its keyword, as a history entry shows it.
pub(crate) fn instruction_text(original: &str) -> String {
    let mut it = original.splitn(2, char::is_whitespace);
    let kw = it.next().unwrap_or("").to_ascii_uppercase();
    let rest = it.next().unwrap_or("").trim();
    format!("{kw} {rest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_and_history() {
        let s = ImgState::scratch();
        let l = LayerRef {
            digest: format!("sha256:{}", "a".repeat(64)),
            media_type: "x".into(),
            size: 1,
            diff_id: format!("sha256:{}", "b".repeat(64)),
        };
        let cfg = ImageConfig {
            cmd: Some(vec!["sh".into()]),
            ..Default::default()
        };
        let n = s.next(&cfg, None, nop("CMD [\"sh\"]"), None);
        assert_eq!(n.config["history"][0]["empty_layer"], true);
        assert_eq!(n.config["config"]["Cmd"][0], "sh");
        let m = n.next(
            &cfg,
            Some("me"),
            run(&["a".into()], &["X=1".into()]),
            Some(l),
        );
        assert_eq!(m.config["history"][1]["created_by"], "|1 X=1 a");
        assert_eq!(m.config["rootfs"]["diff_ids"].as_array().unwrap().len(), 1);
        assert_eq!(m.chain_ids().len(), 1);
        assert!(m.id.starts_with("sha256:") && m.id != n.id);
        assert_eq!(instruction_text("cmd  [\"sh\"]"), "CMD [\"sh\"]");
    }
}
