//! `commit`: a container's writable layer into a new image (`POST /commit`, `docker commit`),
//! as dockerd's `CreateImageFromContainer` makes it.
//!
//! - The layer is the container's overlay upper dir written as a layer tar (overlay whiteouts
//!   as `.wh.` entries); volumes and binds are mounted over the rootfs, not in the upper dir,
//!   so their content is never part of it. The mount points of `/etc/hosts`, `/etc/hostname`,
//!   `/etc/resolv.conf` and the init binary are left out (dockerd keeps them in an init
//!   layer). A container that changed nothing adds no layer (an `empty_layer` history entry).
//! - The run configuration: the request's `Config` (the container's when none or empty),
//!   the `--change` instructions applied ([`skiff_build::apply_changes`]), then the
//!   container's config merged under it with the create-time rules ([`super::merge`]).
//! - The image config: the parent image's, with that `config`, `container` (the container's
//!   ID), `container_config` (its config), `author`, a new `created`, and a history entry
//!   whose `created_by` is the container's `Cmd` joined, with `comment` and `author`.
//! - A running container is frozen for the copy unless `pause` is false (a `pause` and an
//!   `unpause` event, as dockerd emits them), and the container gets a `commit` event.

use std::sync::Arc;

use skiff_registry::Reference;

use super::model::{Config, Container};
use super::service::{Containers, ContainersError, Result};
use crate::build::history::ImgState;
use crate::images::{ImageService, ImagesError};

/// What `POST /commit` asks for.
#[derive(Debug, Clone, Default)]
pub struct CommitRequest {
    /// Name or ID of the container.
    pub container: String,
    /// `repo[:tag]`, normalized; `None` leaves the image unnamed.
    pub reference: Option<String>,
    pub comment: String,
    pub author: String,
    /// Freeze a running container while its layer is copied.
    pub pause: bool,
    /// Dockerfile instructions (`--change`).
    pub changes: Vec<String>,
    /// The body's config (`None`: the container's).
    pub config: Option<Config>,
}

/// What a commit made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// `sha256:` of the image config.
    pub id: String,
    /// The name given (familiar form), if any.
    pub reference: Option<String>,
}

impl Containers {
    /// `POST /commit`.
    pub async fn commit(
        self: &Arc<Self>,
        images: &ImageService,
        req: CommitRequest,
    ) -> Result<Committed> {
        let e = self.get(&req.container)?;
        let reference = req
            .reference
            .as_deref()
            .map(Reference::parse)
            .transpose()
            .map_err(ImagesError::from)?;
        if reference.as_ref().is_some_and(|r| r.digest().is_some()) {
            return Err(ContainersError::Invalid(
                "refusing to create a tag with a digest reference".into(),
            ));
        }
        let c = e.snapshot();
        // The changes are checked before anything is frozen or written.
        let run = run_config(&c, req.config.clone(), &req.changes)?;
        let paused_here = req.pause
            && c.state.running
            && !c.state.paused
            && self.pause(&c.id, true).await.is_ok();
        let (this, images2, c2, req2, r2) = (
            self.clone(),
            images.clone(),
            c.clone(),
            req.clone(),
            reference.clone(),
        );
        let res =
            tokio::task::spawn_blocking(move || this.commit_image(&images2, &c2, run, &req2, r2))
                .await
                .map_err(|j| ContainersError::System(format!("commit: {j}")));
        if paused_here {
            if let Err(err) = self.pause(&c.id, false).await {
                tracing::warn!(container = %c.id, error = %err, "commit: unpause failed");
            }
        }
        let id = res??;
        let familiar = reference.map(|r| r.familiar());
        self.emit(
            "commit",
            &e.snapshot(),
            &[
                ("comment", req.comment.clone()),
                ("imageID", id.clone()),
                ("imageRef", familiar.clone().unwrap_or_default()),
            ],
        );
        Ok(Committed {
            id,
            reference: familiar,
        })
    }

    /// The layer, the config and the image (blocking).
    fn commit_image(
        &self,
        images: &ImageService,
        c: &Container,
        run: Config,
        req: &CommitRequest,
        reference: Option<Reference>,
    ) -> Result<String> {
        let ctx = format!("commit {}", c.short_name());
        let parent = images
            .resolve(&c.image)
            .map_err(|err| ContainersError::System(format!("{ctx}: image {}: {err}", c.image)))?;
        let (_, upper) = self.layer_dirs(&c.id)?;
        let lease = format!("commit-{}", &super::random_id()[..16]);
        let expires = chrono::Utc::now() + chrono::Duration::hours(1);
        self.store
            .lease_create(&lease, Some(expires), Default::default())
            .map_err(|err| ContainersError::System(format!("{ctx}: {err}")))?;
        let res = (|| {
            let written = crate::images::write_layer(
                &self.store,
                &upper,
                super::extra::managed_stubs(&upper)
                    .iter()
                    .map(|p| p.trim_start_matches('/').to_string())
                    .collect(),
                &lease,
                &format!("{lease}-layer"),
                &ctx,
            )?;
            let layer = (!written.is_empty()).then(|| (&written.layer).into());
            let run_json = serde_json::to_value(&run)
                .map_err(|err| ContainersError::System(format!("{ctx}: config: {err}")))?;
            let run_cfg: skiff_build::ImageConfig = serde_json::from_value(run_json)
                .map_err(|err| ContainersError::System(format!("{ctx}: config: {err}")))?;
            let author = Some(req.author.as_str()).filter(|a| !a.is_empty());
            let created_by = c.config.cmd.clone().unwrap_or_default().join(" ");
            let mut next = ImgState::from_image(&parent).next(&run_cfg, author, created_by, layer);
            let cfg = &mut next.config;
            cfg["container"] = c.id.clone().into();
            cfg["container_config"] = serde_json::to_value(&c.config)
                .map_err(|err| ContainersError::System(format!("{ctx}: config: {err}")))?;
            if let Some(o) = cfg.as_object_mut() {
                o.remove("comment");
                if author.is_none() {
                    o.remove("author");
                }
            }
            if let Some(h) = cfg["history"].as_array_mut().and_then(|h| h.last_mut()) {
                if let Some(a) = author {
                    h["author"] = a.into();
                }
                if !req.comment.is_empty() {
                    h["comment"] = req.comment.clone().into();
                }
            }
            let bytes = next.bytes();
            let layers = next
                .layers
                .iter()
                .map(|l| l.to_new_layer())
                .collect::<std::result::Result<Vec<_>, _>>()?;
            images.store_new_image(&bytes, &layers, reference.as_slice(), &ctx)?;
            Ok(skiff_image::digest::sha256(&bytes).to_string())
        })();
        let _ = self.store.lease_delete(&lease);
        res
    }
}

/// The new image's run configuration: `body` (the container's config when absent or
/// empty) with `changes` applied, then the container's config merged under it.
fn run_config(c: &Container, body: Option<Config>, changes: &[String]) -> Result<Config> {
    let user = body
        .filter(|b| *b != Config::default())
        .unwrap_or_else(|| c.config.clone());
    let bad = |err: serde_json::Error| ContainersError::System(format!("commit: config: {err}"));
    let as_build: skiff_build::ImageConfig =
        serde_json::from_value(serde_json::to_value(&user).map_err(bad)?).map_err(bad)?;
    let changed = skiff_build::apply_changes(as_build, changes)
        .map_err(|err| ContainersError::Invalid(err.to_string()))?;
    let mut cfg: Config =
        serde_json::from_value(serde_json::to_value(&changed).map_err(bad)?).map_err(bad)?;
    // The container's config as an image config, to merge with the create-time rules.
    let mut own = serde_json::to_value(&c.config).map_err(bad)?;
    if let Some(o) = own.as_object_mut() {
        o.retain(|_, v| !v.is_null());
    }
    let own: oci_spec::image::Config = serde_json::from_value(own).map_err(bad)?;
    super::merge::image_config(&mut cfg, Some(&own));
    cfg.healthcheck =
        super::merge::healthcheck(cfg.healthcheck.as_ref(), c.config.healthcheck.as_ref());
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn container(cfg: Value) -> Container {
        let config: Config = serde_json::from_value(cfg).unwrap();
        let mut c: Container = serde_json::from_value(json!({
            "Id": "c1", "Created": "2024-01-01T00:00:00Z", "Path": "sh", "Args": [],
            "Config": {}, "HostConfig": {}, "State": {}, "Image": "sha256:x", "Name": "/n",
            "RestartCount": 0, "LogPath": "", "LogDriver": "none", "LogOpts": {}
        }))
        .unwrap();
        c.config = config;
        c
    }

    #[test]
    fn changes_over_the_containers_config() {
        let c = container(json!({
            "Hostname": "h", "Image": "bb", "Cmd": ["sh"], "Env": ["PATH=/bin", "A=1"],
            "Labels": {"l": "1"}, "WorkingDir": "/w", "User": "u", "Volumes": {"/v": {}},
            "ExposedPorts": {"80/tcp": {}}, "StopSignal": "SIGINT"
        }));
        let ch = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let r = run_config(&c, None, &ch(&["CMD [\"cat\", \"/x\"]", "ENV A=2 B=$A"])).unwrap();
        assert_eq!(r.cmd, Some(vec!["cat".into(), "/x".into()]));
        assert_eq!(
            r.env,
            Some(vec!["PATH=/bin".into(), "A=2".into(), "B=1".into()])
        );
        assert_eq!(r.hostname, "h");
        assert_eq!(r.working_dir, "/w");
        // (ENV pairs of one line see the values from before it.) docker-py sends `{}`: the container's values are merged under the changes.
        let r = run_config(&c, Some(Config::default()), &ch(&["ENTRYPOINT [\"e\"]"])).unwrap();
        assert_eq!(r.entrypoint, Some(vec!["e".into()]));
        assert_eq!(r.cmd, None);
        assert_eq!(r.user, "u");
        assert_eq!(r.stop_signal.as_deref(), Some("SIGINT"));
        assert!(r.volumes.unwrap().contains_key("/v"));
        assert!(r.exposed_ports.unwrap().contains_key("80/tcp"));
        assert_eq!(r.labels.unwrap()["l"], "1");
        // A body config wins over the container's.
        let body: Config = serde_json::from_value(json!({"User": "me", "Env": ["X=1"]})).unwrap();
        let r = run_config(&c, Some(body), &[]).unwrap();
        assert_eq!(r.user, "me");
        assert_eq!(
            r.env,
            Some(vec!["X=1".into(), "PATH=/bin".into(), "A=1".into()])
        );
        let e = run_config(&c, None, &ch(&["RUN true"])).unwrap_err();
        assert!(
            matches!(e, ContainersError::Invalid(ref m) if m == "run is not a valid change command")
        );
    }
}
