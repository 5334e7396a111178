//! `--change` instructions of `commit` and `import`: Dockerfile instructions applied to an
//! image's run configuration, as moby's `dockerfile.BuildFromConfig` applies them.
//!
//! What matches Docker:
//! - Allowed: CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD, STOPSIGNAL, USER,
//!   VOLUME, WORKDIR. Anything else is `<word> is not a valid change command` (the word
//!   lower-cased, as Docker's parser reports it), unknown words included.
//! - Each change is parsed with the Dockerfile parser and expanded with the config's ENV
//!   (ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR), then applied with the builder's
//!   rules ([`crate::apply`]): an ENTRYPOINT clears CMD unless a CMD came in an earlier
//!   change; shell forms use the config's SHELL.
//! - The config's own ONBUILD triggers stay (a build would run and drop them; a commit
//!   keeps them), and an ONBUILD change appends one.
//!
//! Unlike Docker, which joins the changes with newlines into one Dockerfile, each change is
//! parsed on its own, so an error names the change it comes from and a trailing `\` cannot
//! swallow the next one.

use std::collections::BTreeMap;

use crate::args::GlobalArgs;
use crate::dockerfile::Dockerfile;
use crate::image_config::ImageConfig;
use crate::lexer::lex;
use crate::parse_instr::parse_instruction;
use crate::stage::StageState;

/// Instruction words a change may use (lower case).
pub const VALID_CHANGE_COMMANDS: &[&str] = &[
    "cmd",
    "entrypoint",
    "env",
    "expose",
    "healthcheck",
    "label",
    "onbuild",
    "stopsignal",
    "user",
    "volume",
    "workdir",
];

/// A change that cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    /// Docker's wording: `run is not a valid change command`.
    #[error("{0} is not a valid change command")]
    NotAllowed(String),
    /// The change does not parse, or its values are wrong (`STOPSIGNAL NOPE`).
    #[error("invalid change {change:?}: {message}")]
    Invalid { change: String, message: String },
}

/// Applies `changes` in order to `config` and returns the new run configuration.
pub fn apply_changes(
    mut config: ImageConfig,
    changes: &[String],
) -> Result<ImageConfig, ChangeError> {
    if changes.iter().all(|c| c.trim().is_empty()) {
        return Ok(config);
    }
    let triggers = config.on_build.take();
    let df = Dockerfile {
        file: "change".into(),
        escape: '\\',
        syntax: None,
        global_args: Vec::new(),
        stages: Vec::new(),
        warnings: Vec::new(),
    };
    let (mut state, _) = StageState::new(&df, &GlobalArgs::default(), &BTreeMap::new(), config)
        .map_err(|e| ChangeError::Invalid {
            change: String::new(),
            message: e.kind.to_string(),
        })?;
    state.image.config.on_build = triggers;
    for change in changes.iter().filter(|c| !c.trim().is_empty()) {
        let invalid = |e: crate::DockerfileError| ChangeError::Invalid {
            change: change.clone(),
            message: e.kind.to_string(),
        };
        let lexed = lex("change", change).map_err(invalid)?;
        for node in &lexed.nodes {
            let word = node.cmd.to_ascii_lowercase();
            if !VALID_CHANGE_COMMANDS.contains(&word.as_str()) {
                return Err(ChangeError::NotAllowed(word));
            }
            let instr = parse_instruction(node, lexed.escape, "change").map_err(invalid)?;
            state.step(&instr).map_err(invalid)?;
        }
    }
    Ok(state.image.config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn apply(base: serde_json::Value, changes: &[&str]) -> Result<serde_json::Value, ChangeError> {
        let base: ImageConfig = serde_json::from_value(base).unwrap();
        let ch: Vec<String> = changes.iter().map(|s| s.to_string()).collect();
        apply_changes(base, &ch).map(|c| serde_json::to_value(c).unwrap())
    }

    #[test]
    fn docker_subset() {
        let c = apply(
            json!({"Env": ["PATH=/bin", "HOME=/root"], "Cmd": ["sh"], "Hostname": "abc",
                   "OnBuild": ["RUN true"]}),
            &[
                r#"CMD ["/bin/sh", "-l"]"#,
                "ENV A=1 B=\"two words\"",
                "ENV LEGACY some value",
                "ENV HOME=/home/$A",
                "EXPOSE 80 53/udp",
                "LABEL org.x=y",
                "USER 1000:1000",
                "WORKDIR /srv",
                "WORKDIR sub",
                "VOLUME /data /logs",
                "STOPSIGNAL SIGTERM",
                "ONBUILD RUN make",
                "HEALTHCHECK CMD true",
            ],
        )
        .unwrap();
        assert_eq!(c["Cmd"], json!(["/bin/sh", "-l"]));
        assert_eq!(
            c["Env"],
            json!([
                "PATH=/bin",
                "HOME=/home/1",
                "A=1",
                "B=two words",
                "LEGACY=some value"
            ])
        );
        assert_eq!(c["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}}));
        assert_eq!(c["Labels"], json!({"org.x": "y"}));
        assert_eq!(c["User"], json!("1000:1000"));
        assert_eq!(c["WorkingDir"], json!("/srv/sub"));
        assert_eq!(c["Volumes"], json!({"/data": {}, "/logs": {}}));
        assert_eq!(c["StopSignal"], json!("SIGTERM"));
        assert_eq!(c["OnBuild"], json!(["RUN true", "RUN make"]));
        assert_eq!(c["Healthcheck"]["Test"], json!(["CMD-SHELL", "true"]));
        // Fields the builder does not name are kept.
        assert_eq!(c["Hostname"], json!("abc"));
    }

    #[test]
    fn entrypoint_clears_cmd_unless_cmd_came_first() {
        let base = json!({"Cmd": ["sh"]});
        let c = apply(base.clone(), &["ENTRYPOINT echo hi"]).unwrap();
        assert_eq!(c["Entrypoint"], json!(["/bin/sh", "-c", "echo hi"]));
        assert!(c.get("Cmd").is_none());
        let c = apply(base, &["CMD [\"x\"]", "ENTRYPOINT [\"e\"]"]).unwrap();
        assert_eq!(c["Cmd"], json!(["x"]));
        assert_eq!(c["Entrypoint"], json!(["e"]));
    }

    #[test]
    fn bad_changes_are_named() {
        let e = apply(json!({}), &["RUN rm -rf /"]).unwrap_err();
        assert_eq!(e.to_string(), "run is not a valid change command");
        let e = apply(json!({}), &["FROM x"]).unwrap_err();
        assert_eq!(e.to_string(), "from is not a valid change command");
        let e = apply(json!({}), &["NOPE x"]).unwrap_err();
        assert_eq!(e.to_string(), "nope is not a valid change command");
        let e = apply(json!({}), &["EXPOSE http"]).unwrap_err().to_string();
        assert!(e.starts_with("invalid change \"EXPOSE http\": "), "{e}");
        let e = apply(json!({}), &["STOPSIGNAL NOPE"])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("invalid change \"STOPSIGNAL NOPE\": "), "{e}");
        let e = apply(json!({}), &["USER"]).unwrap_err().to_string();
        assert!(e.contains("USER requires exactly one argument"), "{e}");
        // Empty changes change nothing.
        assert_eq!(
            apply(json!({"User": "u"}), &["", " "]).unwrap(),
            json!({"User": "u"})
        );
    }
}
