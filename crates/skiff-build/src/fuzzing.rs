//! One entry point that drives every parser here with arbitrary bytes, shared by the
//! cargo-fuzz target (`fuzz/`) and the seeded random test in the normal test suite. It must
//! never panic, whatever the input; errors are fine.

use std::collections::BTreeMap;

use crate::args::BuildOptions;
use crate::cache_key::{cache_key, CacheKeyInput};
use crate::dockerfile::Dockerfile;
use crate::ignore::{go_match, read_patterns, DockerIgnore};
use crate::image_config::ImageConfig;
use crate::instructions::Instr;
use crate::mounts::parse_mount;
use crate::plan::BuildPlan;
use crate::shell_lex::Lex;
use crate::stage::{parse_triggers, StageState};
use crate::units::{parse_go_duration, parse_port_spec, parse_ram_bytes};

/// Feeds `data` to the Dockerfile parser (and on success to the planner and every stage's
/// steps), to the .dockerignore reader and matcher, the variable expander, Go's `Match`,
/// and the small value parsers.
pub fn exercise(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    dockerfile(data);
    let _ = parse_triggers("Dockerfile", &[text.to_string()]);

    // .dockerignore: the bytes as a file, matched against paths taken from the same bytes.
    let patterns = read_patterns(data);
    if let Ok(ign) = DockerIgnore::new(&patterns) {
        for line in text.lines().take(16) {
            let _ = ign.matches(line);
        }
        let _ = ign.matches("a/b/c");
    }
    let _ = DockerIgnore::for_context(data, "Dockerfile");

    // The expander with a few variables set.
    let vars: BTreeMap<String, String> = [("A", "x y"), ("B", ""), ("PWD", "/home")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for esc in ['\\', '`'] {
        let mut lex = Lex::new(esc);
        let _ = lex.process(&text, &vars);
        lex.raw_quotes = true;
        lex.raw_escapes = true;
        lex.skip_unset_env = true;
        let _ = lex.process(&text, &vars);
    }

    // Pattern / name pairs split at the first newline.
    let (p, n) = text.split_once('\n').unwrap_or((&text, "abc"));
    let _ = go_match(p, n);
    let _ = parse_go_duration(p);
    let _ = parse_ram_bytes(p);
    let _ = parse_port_spec(p);
    let id = |s: &str| -> Result<String, String> { Ok(s.to_string()) };
    let _ = parse_mount(p, None, 0);
    let _ = parse_mount(p, Some(&id), 1);
}

fn dockerfile(data: &[u8]) {
    let Ok(df) = Dockerfile::parse("Dockerfile", data) else {
        return;
    };
    let _ = df.steps().count();
    let mut opts = BuildOptions::default();
    opts.build_args.insert("A".into(), "1".into());
    opts.build_args.insert("HTTP_PROXY".into(), "p".into());
    let Ok(plan) = BuildPlan::new(&df, &opts) else {
        return;
    };
    for &i in &plan.needed {
        let base = ImageConfig {
            env: Some(vec!["PATH=/bin".into()]),
            cmd: Some(vec!["sh".into()]),
            ..Default::default()
        };
        let Ok((mut st, triggers)) = StageState::new(&df, &plan.global, &opts.build_args, base)
        else {
            continue;
        };
        for instr in triggers.iter().chain(&df.stages[i].instructions) {
            if let Ok(step) = st.step(instr) {
                let _ = cache_key(&CacheKeyInput {
                    parent: "p",
                    instruction: &step.instruction.kind,
                    build_args: &[],
                    files_checksum: "",
                });
                if let Instr::Run(r) = &step.instruction.kind {
                    let _ = r.script();
                }
            }
        }
        let _ = serde_json::to_string(&st.image.config);
    }
}
