//! Instruction flags (`--from=x`, `--link`, `--mount=...`), checked as BuildKit's `BFlags`:
//! a string flag needs `=value`; a bool flag is `--f`, `--f=true` or `--f=false`; a
//! repeatable flag collects every value; a flag given twice (not repeatable) or unknown to
//! the instruction is an error; `--` ends the flags.

use std::collections::BTreeMap;

use crate::error::{ErrorKind, FlagProblem};

/// The kind of a flag an instruction accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagType {
    Bool,
    String,
    Strings,
}

/// The flags given to one instruction, checked.
#[derive(Debug, Default)]
pub struct Flags {
    values: BTreeMap<&'static str, Vec<String>>,
}

impl Flags {
    /// Checks `args` (each `--name[=value]`) against what `instruction` accepts.
    pub fn parse(
        instruction: &'static str,
        args: &[String],
        accepted: &[(&'static str, FlagType)],
    ) -> Result<Flags, ErrorKind> {
        let mut flags = Flags::default();
        for arg in args {
            let Some(body) = arg.strip_prefix("--") else {
                return Err(ErrorKind::Invalid {
                    instruction,
                    message: format!("Arg should start with -- : {arg}"),
                });
            };
            if body.is_empty() {
                break;
            }
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let Some(&(key, kind)) = accepted.iter().find(|(n, _)| *n == name) else {
                return Err(ErrorKind::UnknownFlag {
                    instruction,
                    flag: name.to_string(),
                });
            };
            let bad = |problem| ErrorKind::BadFlag {
                instruction,
                flag: name.to_string(),
                problem,
            };
            let slot = flags.values.entry(key).or_default();
            if !slot.is_empty() && kind != FlagType::Strings {
                return Err(bad(FlagProblem::Duplicate));
            }
            match (kind, value) {
                (FlagType::Bool, None) => slot.push("true".into()),
                (FlagType::Bool, Some("")) => return Err(bad(FlagProblem::MissingValue)),
                (FlagType::Bool, Some(v)) => match v.to_ascii_lowercase().as_str() {
                    "true" => slot.push("true".into()),
                    "false" => slot.push("false".into()),
                    _ => return Err(bad(FlagProblem::NotBoolean)),
                },
                (_, None) => return Err(bad(FlagProblem::MissingValue)),
                (_, Some(v)) => slot.push(v.to_string()),
            }
        }
        Ok(flags)
    }

    /// A string flag's value, `None` when not given.
    pub fn string(&self, name: &str) -> Option<String> {
        self.values.get(name).and_then(|v| v.last().cloned())
    }

    /// A bool flag (false when not given).
    pub fn bool(&self, name: &str) -> bool {
        self.values
            .get(name)
            .and_then(|v| v.last())
            .is_some_and(|v| v == "true")
    }

    /// Every value of a repeatable flag.
    pub fn strings(&self, name: &str) -> Vec<String> {
        self.values.get(name).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COPY: &[(&str, FlagType)] = &[
        ("from", FlagType::String),
        ("link", FlagType::Bool),
        ("exclude", FlagType::Strings),
    ];

    fn p(args: &[&str]) -> Result<Flags, ErrorKind> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        Flags::parse("COPY", &args, COPY)
    }

    #[test]
    fn good() {
        let f = p(&["--from=build", "--link", "--exclude=a", "--exclude=b"]).unwrap();
        assert_eq!(f.string("from").as_deref(), Some("build"));
        assert!(f.bool("link"));
        assert_eq!(f.strings("exclude"), ["a", "b"]);
        assert!(!p(&["--link=FALSE"]).unwrap().bool("link"));
        assert_eq!(p(&["--from="]).unwrap().string("from").as_deref(), Some(""));
        assert!(p(&["--", "--foo"]).is_ok());
    }

    #[test]
    fn bad() {
        let msg = |a: &[&str]| p(a).unwrap_err().to_string();
        assert_eq!(msg(&["--foo"]), "unknown flag for COPY: --foo");
        assert_eq!(msg(&["--from"]), "COPY: missing a value on flag --from");
        assert_eq!(
            msg(&["--from=a", "--from=b"]),
            "COPY: duplicate flag specified: --from"
        );
        assert_eq!(
            msg(&["--link=yes"]),
            "COPY: expecting a boolean value (true or false) for flag --link"
        );
        assert_eq!(msg(&["--link="]), "COPY: missing a value on flag --link");
    }
}
