//! What the metadata instructions do to the image config, by Docker's rules (checked against
//! moby's `builder/dockerfile/dispatchers.go`):
//!
//! - CMD: exec form as given; shell form is `SHELL + [text]`. A CMD with arguments marks the
//!   stage's CMD as set.
//! - ENTRYPOINT: exec form as given (`[]` clears it); shell form is `SHELL + [text]`; an
//!   empty shell form clears it. Unless a CMD with arguments came earlier *in this stage*,
//!   ENTRYPOINT also clears CMD (so a base image's CMD is not passed to a new entrypoint).
//! - ENV: `KEY=value`, replacing an existing KEY in place. LABEL: added/replaced.
//! - EXPOSE: each spec becomes `port/proto` keys (ranges expanded, tcp by default).
//! - WORKDIR: a relative path is joined to the previous WORKDIR (or `/`) and cleaned; an
//!   absolute one is taken as written.
//! - USER, STOPSIGNAL (checked: a signal name or number), SHELL: replaced. VOLUME: added.
//! - HEALTHCHECK NONE sets `Test: ["NONE"]`; otherwise the whole Healthcheck is replaced.
//! - ONBUILD appends the trigger text; MAINTAINER sets the image's `author`.
//! - ArgsEscaped is only meaningful for Windows images; Linux builds leave it alone.

use crate::image_config::{Empty, HealthConfig, ImageConfig};
use crate::instructions::{CommandLine, Healthcheck, Instr};
use crate::units::{check_signal, parse_port_spec};

/// The image being built by one stage, as far as metadata goes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImageState {
    /// The run configuration (starts as the base image's).
    pub config: ImageConfig,
    /// MAINTAINER (the image's `author`).
    pub author: Option<String>,
    /// Whether a CMD with arguments was given in this stage.
    pub cmd_set: bool,
}

impl ImageState {
    /// A stage starting from `base` (the base image's config; default for `scratch`).
    ///
    /// Returns the base image's ONBUILD triggers, which Docker runs right after FROM, and
    /// clears them from the new image, as Docker does.
    pub fn from_base(mut base: ImageConfig) -> (ImageState, Vec<String>) {
        let triggers = base.on_build.take().unwrap_or_default();
        (
            ImageState {
                config: base,
                author: None,
                cmd_set: false,
            },
            triggers,
        )
    }

    /// Applies one (expanded) instruction. Instructions that change files (RUN, COPY, ADD)
    /// and FROM/ARG leave the config alone. `Err` carries Docker's message.
    pub fn apply(&mut self, instr: &Instr) -> Result<(), String> {
        let c = &mut self.config;
        match instr {
            Instr::Cmd(cmd) => {
                c.cmd = Some(with_shell(c, cmd));
                if !cmd.args.is_empty() {
                    self.cmd_set = true;
                }
            }
            Instr::Entrypoint(cmd) => {
                c.entrypoint = if !cmd.shell_form {
                    Some(cmd.args.clone())
                } else if cmd.args.is_empty() {
                    None
                } else {
                    Some(with_shell(c, cmd))
                };
                if !self.cmd_set {
                    c.cmd = None;
                }
            }
            Instr::Env(kvs) => {
                for kv in kvs {
                    c.set_env(&kv.key, &kv.value);
                }
            }
            Instr::Label(kvs) => {
                let labels = c.labels.get_or_insert_with(Default::default);
                for kv in kvs {
                    labels.insert(kv.key.clone(), kv.value.clone());
                }
            }
            Instr::Expose(specs) => {
                let mut keys = Vec::new();
                for s in specs {
                    keys.extend(parse_port_spec(s)?);
                }
                let ports = c.exposed_ports.get_or_insert_with(Default::default);
                for k in keys {
                    ports.insert(k, Empty {});
                }
            }
            Instr::Workdir(p) => {
                c.working_dir = Some(normalize_workdir(
                    c.working_dir.as_deref().unwrap_or(""),
                    p,
                )?);
            }
            Instr::User(u) => c.user = Some(u.clone()),
            Instr::Volume(vols) => {
                let v = c.volumes.get_or_insert_with(Default::default);
                for vol in vols {
                    let vol = vol.trim();
                    if vol.is_empty() {
                        return Err("VOLUME specified can not be an empty string".into());
                    }
                    v.insert(vol.to_string(), Empty {});
                }
            }
            Instr::Shell(s) => c.shell = Some(s.clone()),
            Instr::StopSignal(s) => {
                check_signal(s)?;
                c.stop_signal = Some(s.clone());
            }
            Instr::Healthcheck(Healthcheck::Disable) => {
                c.healthcheck = Some(HealthConfig {
                    test: vec!["NONE".into()],
                    ..Default::default()
                })
            }
            Instr::Healthcheck(Healthcheck::Check {
                test,
                interval,
                timeout,
                start_period,
                start_interval,
                retries,
            }) => {
                c.healthcheck = Some(HealthConfig {
                    test: test.clone(),
                    interval: *interval,
                    timeout: *timeout,
                    start_period: *start_period,
                    start_interval: *start_interval,
                    retries: *retries,
                })
            }
            Instr::Onbuild(t) => c.on_build.get_or_insert_with(Vec::new).push(t.clone()),
            Instr::Maintainer(m) => self.author = Some(m.clone()),
            Instr::From(_) | Instr::Arg(_) | Instr::Run(_) | Instr::Copy(_) | Instr::Add(_) => {}
        }
        Ok(())
    }
}

/// `SHELL + [text]` for the shell form, the arguments for the exec form.
pub fn with_shell(c: &ImageConfig, cmd: &CommandLine) -> Vec<String> {
    if !cmd.shell_form {
        return cmd.args.clone();
    }
    let mut v = c.shell_or_default();
    if !cmd.args.is_empty() {
        v.push(cmd.args.join(" "));
    }
    v
}

/// WORKDIR resolution (Linux rules of moby's `normalizeWorkdir`).
pub fn normalize_workdir(current: &str, requested: &str) -> Result<String, String> {
    if requested.is_empty() {
        return Err("cannot normalize nothing".into());
    }
    if requested.starts_with('/') {
        return Ok(requested.to_string());
    }
    Ok(clean_path(&format!("/{current}/{requested}")))
}

/// Go's `path.Clean` for absolute paths.
pub fn clean_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
#[path = "apply_tests.rs"]
mod tests;
