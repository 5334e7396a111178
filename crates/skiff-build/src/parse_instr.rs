//! From a logical line ([`RawNode`]) to a typed [`Instruction`], with Docker's checks and
//! messages (BuildKit's `instructions.ParseInstruction`): argument counts, flags per
//! instruction, JSON-only SHELL, stage names, HEALTHCHECK options, ONBUILD triggers.
//!
//! As in Docker, STOPSIGNAL, ARG and `HEALTHCHECK NONE` ignore flags, EXPOSE's ports are
//! sorted, and ONBUILD's trigger is only checked as far as the line parsers go (it is fully
//! parsed when an image built FROM this one triggers it).

use crate::error::{ArgCount, DockerfileError, ErrorKind, Loc};
use crate::flags::{FlagType, Flags};
use crate::instructions::*;
use crate::lexer::RawNode;
use crate::mounts::{parse_mount, parse_network, parse_security};
use crate::parse_special::{parse_copy, parse_healthcheck, parse_onbuild};
use crate::words::{
    parse_json, parse_name_val, parse_words, split_whitespace_go, Json, NOT_STRING_ARRAY,
};

const ALL: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// Types one node. `escape` is the Dockerfile's escape token.
pub fn parse_instruction(
    node: &RawNode,
    escape: char,
    file: &str,
) -> Result<Instruction, DockerfileError> {
    let loc = Loc {
        file,
        start: node.start,
        end: node.end,
    };
    let kind = parse_kind(node, escape).map_err(|k| loc.err(k))?;
    Ok(Instruction {
        start_line: node.start,
        end_line: node.end,
        original: node.original.trim().to_string(),
        kind,
    })
}

pub(crate) fn count(instruction: &'static str, count: ArgCount) -> ErrorKind {
    ErrorKind::ArgCount { instruction, count }
}

pub(crate) fn invalid(instruction: &'static str, message: impl Into<String>) -> ErrorKind {
    ErrorKind::Invalid {
        instruction,
        message: message.into(),
    }
}

/// `parseMaybeJSON`: `(args, json)`.
pub(crate) fn maybe_json(rest: &str) -> Result<(Vec<String>, bool), ErrorKind> {
    match parse_json(rest) {
        Json::Array(a) => Ok((a, true)),
        Json::NotStrings => Err(ErrorKind::Json(NOT_STRING_ARRAY.into())),
        Json::NotJson if rest.is_empty() => Ok((Vec::new(), false)),
        Json::NotJson => Ok((vec![rest.to_string()], false)),
    }
}

/// `parseMaybeJSONToList`: `(args, json)`.
pub(crate) fn maybe_json_list(rest: &str) -> Result<(Vec<String>, bool), ErrorKind> {
    match parse_json(rest) {
        Json::Array(a) => Ok((a, true)),
        Json::NotStrings => Err(ErrorKind::Json(NOT_STRING_ARRAY.into())),
        Json::NotJson => Ok((split_whitespace_go(rest), false)),
    }
}

pub(crate) fn no_flags(instruction: &'static str, node: &RawNode) -> Result<Flags, ErrorKind> {
    Flags::parse(instruction, &node.flags, &[])
}

fn command_line(node: &RawNode) -> Result<CommandLine, ErrorKind> {
    let (args, json) = maybe_json(&node.rest)?;
    Ok(CommandLine {
        args,
        shell_form: !json,
        heredocs: node.heredocs.clone(),
    })
}

fn parse_kind(node: &RawNode, escape: char) -> Result<Instr, ErrorKind> {
    let rest = node.rest.as_str();
    let single = || {
        if rest.is_empty() {
            Vec::new()
        } else {
            vec![rest.to_string()]
        }
    };
    match node.cmd.to_ascii_lowercase().as_str() {
        "from" => {
            let args = split_whitespace_go(rest);
            let stage_name = match args.len() {
                3 if args[1].eq_ignore_ascii_case("as") => {
                    let name = args[2].to_ascii_lowercase();
                    if !valid_stage_name(&name) {
                        return Err(ErrorKind::InvalidStageName(args[2].clone()));
                    }
                    Some(name)
                }
                1 => None,
                _ => return Err(count("FROM", ArgCount::OneOrThree)),
            };
            let flags = Flags::parse("FROM", &node.flags, &[("platform", FlagType::String)])?;
            Ok(Instr::From(From {
                image: args[0].clone(),
                stage_name,
                platform: flags.string("platform").filter(|p| !p.is_empty()),
            }))
        }
        "arg" => {
            let words = parse_words(rest, escape);
            if words.is_empty() {
                return Err(count("ARG", ArgCount::AtLeastOne));
            }
            let mut decls = Vec::new();
            for w in words {
                let decl = match w.split_once('=') {
                    Some(("", _)) => return Err(invalid("ARG", "ARG names can not be blank")),
                    Some((k, v)) => ArgDecl {
                        name: k.into(),
                        default: Some(v.into()),
                    },
                    None => ArgDecl {
                        name: w,
                        default: None,
                    },
                };
                decls.push(decl);
            }
            Ok(Instr::Arg(decls))
        }
        c @ ("env" | "label") => {
            let name = if c == "env" { "ENV" } else { "LABEL" };
            let pairs = parse_name_val(rest, name, escape).map_err(|m| invalid(name, m))?;
            no_flags(name, node)?;
            if pairs.is_empty() {
                return Err(count(name, ArgCount::AtLeastOne));
            }
            if pairs.iter().any(|(k, _)| k.is_empty()) {
                return Err(invalid(name, format!("{name} names can not be blank")));
            }
            let kv = pairs
                .into_iter()
                .map(|(key, value)| KeyValue { key, value })
                .collect();
            Ok(if c == "env" {
                Instr::Env(kv)
            } else {
                Instr::Label(kv)
            })
        }
        "run" => {
            let cmd = command_line(node)?;
            let flags = Flags::parse(
                "RUN",
                &node.flags,
                &[
                    ("mount", FlagType::Strings),
                    ("network", FlagType::String),
                    ("security", FlagType::String),
                ],
            )?;
            if cmd.args.is_empty() && cmd.shell_form {
                return Err(count("RUN", ArgCount::AtLeastOne));
            }
            let mount_specs = flags.strings("mount");
            let mut mounts = Vec::new();
            for (i, spec) in mount_specs.iter().enumerate() {
                let m = parse_mount(spec, None, i).map_err(|message| ErrorKind::Mount {
                    instruction: "RUN",
                    message,
                })?;
                mounts.extend(m);
            }
            let network = match flags.string("network") {
                Some(v) => parse_network(&v).map_err(|m| invalid("RUN", m))?,
                None => Default::default(),
            };
            let security = match flags.string("security") {
                Some(v) => parse_security(&v).map_err(|m| invalid("RUN", m))?,
                None => Default::default(),
            };
            Ok(Instr::Run(Run {
                cmd,
                mount_specs,
                mounts,
                network,
                security,
            }))
        }
        "cmd" => {
            no_flags("CMD", node)?;
            Ok(Instr::Cmd(command_line(node)?))
        }
        "entrypoint" => {
            no_flags("ENTRYPOINT", node)?;
            Ok(Instr::Entrypoint(command_line(node)?))
        }
        "expose" => {
            let mut ports = split_whitespace_go(rest);
            if ports.is_empty() {
                return Err(count("EXPOSE", ArgCount::AtLeastOne));
            }
            no_flags("EXPOSE", node)?;
            ports.sort();
            Ok(Instr::Expose(ports))
        }
        c @ ("copy" | "add") => parse_copy(node, c == "copy"),
        "workdir" => {
            let args = single();
            if args.len() != 1 {
                return Err(count("WORKDIR", ArgCount::ExactlyOne));
            }
            no_flags("WORKDIR", node)?;
            Ok(Instr::Workdir(rest.to_string()))
        }
        "user" => {
            if rest.is_empty() {
                return Err(count("USER", ArgCount::ExactlyOne));
            }
            no_flags("USER", node)?;
            Ok(Instr::User(rest.to_string()))
        }
        "volume" => {
            let (args, _) = maybe_json_list(rest)?;
            if args.is_empty() {
                return Err(count("VOLUME", ArgCount::AtLeastOne));
            }
            no_flags("VOLUME", node)?;
            let mut vols = Vec::new();
            for v in args {
                let v = v.trim();
                if v.is_empty() {
                    return Err(invalid(
                        "VOLUME",
                        "VOLUME specified can not be an empty string",
                    ));
                }
                vols.push(v.to_string());
            }
            Ok(Instr::Volume(vols))
        }
        "shell" => {
            no_flags("SHELL", node)?;
            let (args, json) = maybe_json(rest)?;
            if args.is_empty() {
                return Err(count("SHELL", ArgCount::AtLeastOne));
            }
            if !json {
                return Err(invalid(
                    "SHELL",
                    "SHELL requires the arguments to be in JSON form",
                ));
            }
            Ok(Instr::Shell(args))
        }
        "stopsignal" => {
            if rest.is_empty() {
                return Err(count("STOPSIGNAL", ArgCount::ExactlyOne));
            }
            Ok(Instr::StopSignal(rest.to_string()))
        }
        "healthcheck" => parse_healthcheck(node),
        "onbuild" => parse_onbuild(node, escape),
        "maintainer" => {
            if rest.is_empty() {
                return Err(count("MAINTAINER", ArgCount::ExactlyOne));
            }
            no_flags("MAINTAINER", node)?;
            Ok(Instr::Maintainer(rest.to_string()))
        }
        _ => Err(ErrorKind::UnknownInstruction {
            name: node.cmd.clone(),
            suggestion: suggest(&node.cmd),
        }),
    }
}

/// `^[a-z][a-z0-9-_.]*$`
fn valid_stage_name(n: &str) -> bool {
    n.starts_with(|c: char| c.is_ascii_lowercase())
        && n.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
}

/// The closest instruction name, when close enough to be a typo.
fn suggest(word: &str) -> Option<String> {
    let w = word.to_ascii_uppercase();
    let (best, d) = ALL
        .iter()
        .map(|c| (*c, levenshtein(&w, c)))
        .min_by_key(|(_, d)| *d)?;
    (d > 0 && d <= (w.chars().count() / 3).max(1)).then(|| best.to_string())
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}
