//! The instructions with more to check than an argument count: COPY/ADD (flags per
//! instruction, heredoc sources), HEALTHCHECK (type, Go durations, retries) and ONBUILD
//! (forbidden triggers, the trigger's own line parsers, the expression kept for the image).

use crate::error::{ArgCount, ErrorKind};
use crate::flags::{FlagType, Flags};
use crate::heredoc::parse_heredoc;
use crate::instructions::*;
use crate::lexer::RawNode;
use crate::parse_instr::{count, invalid, maybe_json, maybe_json_list, no_flags};
use crate::units::parse_go_duration;
use crate::words::{parse_json, parse_name_val, split_command, Json, NOT_STRING_ARRAY};

pub(crate) fn parse_copy(node: &RawNode, is_copy: bool) -> Result<Instr, ErrorKind> {
    let name = if is_copy { "COPY" } else { "ADD" };
    let (args, json) = maybe_json_list(&node.rest)?;
    if args.len() < 2 {
        return Err(count(name, ArgCount::NoDestination));
    }
    let accepted: &[(&str, FlagType)] = if is_copy {
        &[
            ("chown", FlagType::String),
            ("from", FlagType::String),
            ("chmod", FlagType::String),
            ("link", FlagType::Bool),
            ("parents", FlagType::Bool),
            ("exclude", FlagType::Strings),
        ]
    } else {
        &[
            ("chown", FlagType::String),
            ("chmod", FlagType::String),
            ("link", FlagType::Bool),
            ("keep-git-dir", FlagType::Bool),
            ("checksum", FlagType::String),
            ("exclude", FlagType::Strings),
        ]
    };
    let flags = Flags::parse(name, &node.flags, accepted)?;
    let (srcs, dest) = args.split_at(args.len() - 1);
    let dest = dest[0].clone();
    if let Ok(Some(_)) = parse_heredoc(&dest) {
        return Err(ErrorKind::BadHeredoc {
            instruction: name,
            what: "a destination",
        });
    }
    let mut sources = Vec::new();
    let mut inline = Vec::new();
    for src in srcs {
        match parse_heredoc(src) {
            Ok(Some(h)) => {
                let found = node.heredocs.iter().find(|d| d.name == h.name);
                inline.push(InlineSource {
                    name: h.name.clone(),
                    data: found
                        .map(|d| {
                            if h.chomp {
                                crate::heredoc::chomp(&d.content)
                            } else {
                                d.content.clone()
                            }
                        })
                        .unwrap_or_default(),
                    expand: h.expand,
                });
            }
            _ => sources.push(src.clone()),
        }
    }
    let copy = Copy {
        sources,
        inline,
        dest,
        from: flags.string("from"),
        chown: flags.string("chown").filter(|s| !s.is_empty()),
        chmod: flags.string("chmod").filter(|s| !s.is_empty()),
        link: flags.bool("link"),
        parents: flags.bool("parents"),
        exclude: flags.strings("exclude"),
        keep_git_dir: flags.bool("keep-git-dir"),
        checksum: flags.string("checksum").filter(|s| !s.is_empty()),
        json,
    };
    Ok(if is_copy {
        Instr::Copy(copy)
    } else {
        Instr::Add(copy)
    })
}

pub(crate) fn parse_healthcheck(node: &RawNode) -> Result<Instr, ErrorKind> {
    let rest = node.rest.as_str();
    let sep = rest.find(char::is_whitespace).unwrap_or(rest.len());
    if sep == 0 {
        return Err(count("HEALTHCHECK", ArgCount::AtLeastOne));
    }
    let typ = rest[..sep].to_ascii_uppercase();
    let (args, json) = maybe_json(rest[sep..].trim_start())?;
    if typ == "NONE" {
        if !args.is_empty() {
            return Err(ErrorKind::Healthcheck(
                "HEALTHCHECK NONE takes no arguments".into(),
            ));
        }
        return Ok(Instr::Healthcheck(Healthcheck::Disable));
    }
    let flags = Flags::parse(
        "HEALTHCHECK",
        &node.flags,
        &[
            ("interval", FlagType::String),
            ("timeout", FlagType::String),
            ("start-period", FlagType::String),
            ("start-interval", FlagType::String),
            ("retries", FlagType::String),
        ],
    )?;
    if typ != "CMD" {
        return Err(ErrorKind::Healthcheck(format!(
            "Unknown type {typ:?} in HEALTHCHECK (try CMD)"
        )));
    }
    if args.is_empty() {
        return Err(ErrorKind::Healthcheck(
            "Missing command after HEALTHCHECK CMD".into(),
        ));
    }
    let test = if json {
        std::iter::once("CMD".to_string()).chain(args).collect()
    } else {
        vec!["CMD-SHELL".to_string(), args.join(" ")]
    };
    let interval = |name: &str| -> Result<i64, ErrorKind> {
        let Some(v) = flags.string(name).filter(|v| !v.is_empty()) else {
            return Ok(0);
        };
        let d = parse_go_duration(&v).map_err(ErrorKind::Healthcheck)?;
        if d != 0 && d < 1_000_000 {
            return Err(ErrorKind::Healthcheck(format!(
                "Interval {name:?} cannot be less than 1ms"
            )));
        }
        Ok(d)
    };
    let retries = match flags.string("retries").filter(|v| !v.is_empty()) {
        None => 0,
        Some(v) => {
            let r: i32 = v.parse().map_err(|_| {
                ErrorKind::Healthcheck(format!("strconv.ParseInt: parsing {v:?}: invalid syntax"))
            })?;
            if r < 0 {
                return Err(ErrorKind::Healthcheck(format!(
                    "--retries cannot be negative ({r})"
                )));
            }
            i64::from(r)
        }
    };
    Ok(Instr::Healthcheck(Healthcheck::Check {
        test,
        interval: interval("interval")?,
        timeout: interval("timeout")?,
        start_period: interval("start-period")?,
        start_interval: interval("start-interval")?,
        retries,
    }))
}

pub(crate) fn parse_onbuild(node: &RawNode, escape: char) -> Result<Instr, ErrorKind> {
    let (sub, _sub_flags, sub_rest) = split_command(&node.rest);
    if sub.is_empty() {
        return Err(count("ONBUILD", ArgCount::AtLeastOne));
    }
    no_flags("ONBUILD", node)?;
    let trigger = sub.to_ascii_uppercase();
    match trigger.as_str() {
        "ONBUILD" => {
            return Err(invalid(
                "ONBUILD",
                "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
            ))
        }
        "MAINTAINER" | "FROM" => {
            return Err(invalid(
                "ONBUILD",
                format!("{trigger} isn't allowed as an ONBUILD trigger"),
            ))
        }
        _ => {}
    }
    // The line parsers run on the trigger, as in Docker.
    let json_form = matches!(
        trigger.as_str(),
        "RUN" | "CMD" | "ENTRYPOINT" | "SHELL" | "HEALTHCHECK" | "ADD" | "COPY" | "VOLUME"
    );
    if json_form && parse_json(&sub_rest) == Json::NotStrings {
        return Err(ErrorKind::Json(NOT_STRING_ARRAY.into()));
    }
    if trigger == "ENV" || trigger == "LABEL" {
        let name = if trigger == "ENV" { "ENV" } else { "LABEL" };
        parse_name_val(&sub_rest, name, escape).map_err(|m| invalid(name, m))?;
    }
    let original = node.original.trim_start();
    let mut expr = original
        .get(..7)
        .filter(|p| p.eq_ignore_ascii_case("onbuild"))
        .map(|_| original[7..].trim_start())
        .unwrap_or(original)
        .to_string();
    for d in &node.heredocs {
        expr.push('\n');
        expr.push_str(&d.content);
        expr.push_str(&d.name);
    }
    Ok(Instr::Onbuild(expr))
}
