//! Build args and the global (before-FROM) ARG scope.
//!
//! What matches Docker (BuildKit):
//! - `--build-arg` values only reach ARGs that are declared; a build arg declared nowhere is
//!   reported by [`unconsumed_build_args`] (Docker's "were not consumed" warning).
//! - The proxy args (`HTTP_PROXY`, `https_proxy`, `NO_PROXY`, `ALL_PROXY`, ... both cases) are
//!   predefined: given as build args they reach RUN's environment without an ARG, and stay
//!   out of cache keys unless declared.
//! - The platform args `BUILDPLATFORM`, `BUILDOS`, `BUILDARCH`, `BUILDVARIANT`,
//!   `TARGETPLATFORM`, `TARGETOS`, `TARGETARCH`, `TARGETVARIANT` are set in the global scope
//!   (usable in FROM lines) and inside a stage once declared with a bare `ARG NAME`.
//! - A global ARG's default is expanded with the global ARGs before it; a build arg of the
//!   same name replaces it. Global ARGs are visible in FROM lines only, unless a stage
//!   redeclares them (`ARG NAME` without a default takes the global value).

use std::collections::{BTreeMap, BTreeSet};

use crate::dockerfile::Dockerfile;
use crate::error::{DockerfileError, ErrorKind, Loc};
use crate::instructions::{Instr, Instruction};
use crate::shell_lex::Lex;

/// The predefined proxy args.
pub const PROXY_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// An OS/architecture/variant triple (`linux/arm64`, `linux/arm/v7`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub arch: String,
    pub variant: String,
}

impl Platform {
    /// The platform this process runs on, in Go's names (`amd64`, `arm64`, ...).
    pub fn host() -> Platform {
        let (arch, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", ""),
            "aarch64" => ("arm64", ""),
            "x86" => ("386", ""),
            "arm" => ("arm", "v7"),
            "powerpc64" => ("ppc64le", ""),
            "loongarch64" => ("loong64", ""),
            other => (other, ""),
        };
        Platform {
            os: "linux".into(),
            arch: arch.into(),
            variant: variant.into(),
        }
    }

    /// Parses `os/arch[/variant]`.
    pub fn parse(s: &str) -> Option<Platform> {
        let mut it = s.split('/');
        let os = it.next().filter(|v| !v.is_empty())?.to_ascii_lowercase();
        let arch = it.next().filter(|v| !v.is_empty())?.to_ascii_lowercase();
        let variant = it.next().unwrap_or("").to_ascii_lowercase();
        it.next()
            .is_none()
            .then_some(Platform { os, arch, variant })
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

/// What the builder is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildOptions {
    /// `--build-arg NAME=VALUE`.
    pub build_args: BTreeMap<String, String>,
    /// `--target STAGE`; the last stage when `None`.
    pub target: Option<String>,
    /// The platform building.
    pub build_platform: Platform,
    /// The platform built for.
    pub target_platform: Platform,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            build_args: BTreeMap::new(),
            target: None,
            build_platform: Platform::host(),
            target_platform: Platform::host(),
        }
    }
}

impl BuildOptions {
    /// The automatic platform args.
    pub fn platform_args(&self) -> Vec<(String, String)> {
        let (b, t) = (&self.build_platform, &self.target_platform);
        [
            ("BUILDPLATFORM", b.to_string()),
            ("BUILDOS", b.os.clone()),
            ("BUILDARCH", b.arch.clone()),
            ("BUILDVARIANT", b.variant.clone()),
            ("TARGETPLATFORM", t.to_string()),
            ("TARGETOS", t.os.clone()),
            ("TARGETARCH", t.arch.clone()),
            ("TARGETVARIANT", t.variant.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

/// The global ARG scope: automatic platform args, then the ARGs before the first FROM.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GlobalArgs {
    /// Every global name with its value (`None`: declared without a value), later ones last.
    pub args: Vec<(String, Option<String>)>,
}

impl GlobalArgs {
    /// Resolves the global ARGs of `df` for `opts`.
    pub fn resolve(df: &Dockerfile, opts: &BuildOptions) -> Result<GlobalArgs, DockerfileError> {
        let mut g = GlobalArgs {
            args: opts
                .platform_args()
                .into_iter()
                .map(|(k, v)| (k, Some(v)))
                .collect(),
        };
        let lex = Lex::new(df.escape);
        for instr in &df.global_args {
            let Instr::Arg(decls) = &instr.kind else {
                continue;
            };
            for d in decls {
                let value = match (opts.build_args.get(&d.name), &d.default) {
                    (Some(v), _) => Some(v.clone()),
                    (None, Some(def)) => Some(
                        lex.process_word(def, &g.vars())
                            .map_err(|e| loc(df, instr).err(ErrorKind::Expansion(e)))?,
                    ),
                    (None, None) => None,
                };
                g.args.push((d.name.clone(), value));
            }
        }
        Ok(g)
    }

    /// The names with values, as a lookup map (later declarations win).
    pub fn vars(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        for (k, v) in &self.args {
            match v {
                Some(v) => {
                    m.insert(k.clone(), v.clone());
                }
                None => {
                    m.remove(k);
                }
            }
        }
        m
    }

    /// The global value of `name`, if declared (`Some(None)`: declared without a value).
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.args
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_deref())
    }
}

pub(crate) fn loc<'a>(df: &'a Dockerfile, instr: &Instruction) -> Loc<'a> {
    Loc {
        file: &df.file,
        start: instr.start_line,
        end: instr.end_line,
    }
}

/// Build args that no ARG of `df` declares (proxy args excepted), for Docker's warning
/// `[Warning] One or more build-args [...] were not consumed`.
pub fn unconsumed_build_args(df: &Dockerfile, opts: &BuildOptions) -> Vec<String> {
    let mut declared = BTreeSet::new();
    let all = df
        .global_args
        .iter()
        .chain(df.stages.iter().flat_map(|s| s.instructions.iter()));
    for instr in all {
        if let Instr::Arg(decls) = &instr.kind {
            declared.extend(decls.iter().map(|d| d.name.clone()));
        }
    }
    opts.build_args
        .keys()
        .filter(|k| !declared.contains(*k) && !PROXY_ARGS.contains(&k.as_str()))
        .cloned()
        .collect()
}
