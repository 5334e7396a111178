//! Routing: method + path + query → a typed [`Action`], before any service is touched.
//!
//! Paths come with or without a `/v1.NN` prefix, as in dockerd; a version outside
//! [`MIN_API_VERSION`]..=[`API_VERSION`] is refused with dockerd's message. Image names may
//! contain `/` (`127.0.0.1:5000/team/app`), so image routes match on their suffix.

use hyper::Method;

use super::error::{ApiError, ApiResult};

/// The API version skiff serves.
pub const API_VERSION: ApiVersion = ApiVersion(1, 44);
/// The oldest API version skiff accepts.
pub const MIN_API_VERSION: ApiVersion = ApiVersion(1, 24);

/// `major.minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion(pub u32, pub u32);

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

impl ApiVersion {
    /// Parses `1.44`; Docker compares versions numerically part by part.
    pub fn parse(s: &str) -> Option<ApiVersion> {
        let mut it = s.split('.');
        let major = it.next()?.parse().ok()?;
        let minor = match it.next() {
            Some(m) => m.parse().ok()?,
            None => 0,
        };
        Some(ApiVersion(major, minor))
    }
}

/// Decoded query parameters, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query(pub Vec<(String, String)>);

impl Query {
    pub fn parse(q: Option<&str>) -> Query {
        Query(
            url::form_urlencoded::parse(q.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    /// Every value of a repeated key (`names=a&names=b`, `changes=…`).
    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }
    pub fn string(&self, key: &str) -> String {
        self.get(key).unwrap_or_default().to_string()
    }
    /// Docker's `httputils.BoolValue`: false for absent, "", "0", "no", "false", "none".
    pub fn bool(&self, key: &str) -> bool {
        match self.get(key) {
            None => false,
            Some(v) => !matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "" | "0" | "no" | "false" | "none"
            ),
        }
    }
}

/// Everything the API can be asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Ping {
        head: bool,
    },
    Version,
    Info,
    Auth,
    ImageList(Query),
    ImageCreate(Query),
    ImageRemove {
        name: String,
        query: Query,
    },
    ImageTag {
        name: String,
        query: Query,
    },
    ImageInspect {
        name: String,
    },
    ImageHistory {
        name: String,
    },
    ImagePush {
        name: String,
        query: Query,
    },
    /// `GET /images/{name}/get` (`name`) or `GET /images/get?names=…`.
    ImageSave {
        name: Option<String>,
        query: Query,
    },
    ImageLoad(Query),
    ImagePrune(Query),
    ImageSearch,
    ContainerList(Query),
    ContainerCreate(Query),
    ContainerPrune(Query),
    /// `POST /commit?container=…`.
    Commit(Query),
    /// `/containers/{id}/...`.
    Container {
        id: String,
        op: ContainerOp,
        query: Query,
    },
    /// `/exec/{id}/...`.
    Exec {
        id: String,
        op: ExecOp,
        query: Query,
    },
    Events(Query),
    SystemDf,
    VolumeList(Query),
    VolumeCreate,
    VolumePrune(Query),
    VolumeInspect {
        name: String,
    },
    VolumeRemove {
        name: String,
        query: Query,
    },
    NetworkList(Query),
    NetworkCreate,
    NetworkPrune(Query),
    NetworkInspect {
        id: String,
    },
    NetworkRemove {
        id: String,
    },
    NetworkConnect {
        id: String,
        disconnect: bool,
    },
    /// `POST /build`: a Dockerfile build (context tar in the body).
    Build(Query),
    /// `POST /build/prune`.
    BuildPrune(Query),
}

/// What to do to one container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerOp {
    Inspect,
    Start,
    Stop,
    Restart,
    Kill,
    Pause,
    Unpause,
    Wait,
    Attach,
    Logs,
    Resize,
    Top,
    Stats,
    Rename,
    Update,
    Remove,
    Changes,
    Export,
    ArchiveGet,
    ArchiveHead,
    ArchivePut,
    ExecCreate,
}

/// What to do to one exec instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecOp {
    Start,
    Resize,
    Inspect,
}

/// A routed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    /// The version asked for in the path (or the current one).
    pub version: ApiVersion,
    pub action: Action,
}

/// Splits `/v1.44/rest` into the version and `/rest`.
fn split_version(path: &str) -> ApiResult<(Option<ApiVersion>, &str)> {
    let Some(rest) = path.strip_prefix("/v") else {
        return Ok((None, path));
    };
    let end = rest.find('/').unwrap_or(rest.len());
    let ver = &rest[..end];
    if ver.is_empty() || !ver.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Ok((None, path));
    }
    let v = ApiVersion::parse(ver).ok_or_else(ApiError::page_not_found)?;
    if v < MIN_API_VERSION {
        return Err(ApiError::invalid(format!(
            "client version {ver} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
        )));
    }
    if v > API_VERSION {
        return Err(ApiError::invalid(format!(
            "client version {ver} is too new. Maximum supported API version is {API_VERSION}"
        )));
    }
    Ok((Some(v), &rest[end..]))
}

/// Percent-decodes a path segment run (`%2F` in image names).
fn decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Routes one request.
pub fn route(method: &Method, path: &str, query: Option<&str>) -> ApiResult<Routed> {
    let (version, p) = split_version(path)?;
    let version = version.unwrap_or(API_VERSION);
    let q = || Query::parse(query);
    let m = method.clone();
    let action = match (m, p) {
        (Method::GET, "/_ping") => Action::Ping { head: false },
        (Method::HEAD, "/_ping") => Action::Ping { head: true },
        (Method::GET, "/version") => Action::Version,
        (Method::GET, "/info") => Action::Info,
        (Method::POST, "/auth") => Action::Auth,
        (Method::GET, "/images/json") => Action::ImageList(q()),
        (Method::POST, "/images/create") => Action::ImageCreate(q()),
        (m, p) if p.starts_with("/images/") => image_route(&m, &p["/images/".len()..], q)?,
        (Method::GET, "/containers/json") => Action::ContainerList(q()),
        (Method::POST, "/containers/create") => Action::ContainerCreate(q()),
        (Method::POST, "/containers/prune") => Action::ContainerPrune(q()),
        (Method::POST, "/commit") => Action::Commit(q()),
        (Method::GET, "/events") => Action::Events(q()),
        (Method::GET, "/system/df") => Action::SystemDf,
        (Method::GET, "/networks") => Action::NetworkList(q()),
        (Method::POST, "/networks/create") => Action::NetworkCreate,
        (Method::POST, "/networks/prune") => Action::NetworkPrune(q()),
        (m, p) if p.starts_with("/networks/") => network_route(&m, &p["/networks/".len()..])?,
        (Method::GET, "/volumes") => Action::VolumeList(q()),
        (Method::POST, "/volumes/create") => Action::VolumeCreate,
        (Method::POST, "/volumes/prune") => Action::VolumePrune(q()),
        (Method::GET, p) if volume_name(p).is_some() => Action::VolumeInspect {
            name: volume_name(p).unwrap_or_default(),
        },
        (Method::DELETE, p) if volume_name(p).is_some() => Action::VolumeRemove {
            name: volume_name(p).unwrap_or_default(),
            query: q(),
        },
        (Method::POST, "/build") => Action::Build(q()),
        (Method::POST, "/build/prune") => Action::BuildPrune(q()),
        (m, p) if p.starts_with("/containers/") => {
            container_route(&m, &p["/containers/".len()..], q)?
        }
        (m, p) if p.starts_with("/exec/") => exec_route(&m, &p["/exec/".len()..], q)?,
        _ => return Err(ApiError::page_not_found()),
    };
    Ok(Routed { version, action })
}

/// `/networks/{id}[/connect|/disconnect]`.
fn network_route(m: &Method, rest: &str) -> ApiResult<Action> {
    let (id, op) = match rest.split_once('/') {
        Some((id, op)) => (decode(id), Some(op)),
        None => (decode(rest), None),
    };
    if id.is_empty() {
        return Err(ApiError::page_not_found());
    }
    Ok(match (m.clone(), op) {
        (Method::GET, None) => Action::NetworkInspect { id },
        (Method::DELETE, None) => Action::NetworkRemove { id },
        (Method::POST, Some("connect")) => Action::NetworkConnect {
            id,
            disconnect: false,
        },
        (Method::POST, Some("disconnect")) => Action::NetworkConnect {
            id,
            disconnect: true,
        },
        _ => return Err(ApiError::page_not_found()),
    })
}

/// `/volumes/{name}` (one segment).
fn volume_name(p: &str) -> Option<String> {
    p.strip_prefix("/volumes/")
        .filter(|n| !n.is_empty() && !n.contains('/'))
        .map(decode)
}

fn image_route(m: &Method, rest: &str, q: impl Fn() -> Query) -> ApiResult<Action> {
    let named = |suffix: &str| {
        rest.strip_suffix(suffix)
            .filter(|n| !n.is_empty())
            .map(decode)
    };
    Ok(match *m {
        Method::GET if rest == "get" => Action::ImageSave {
            name: None,
            query: q(),
        },
        Method::GET if rest == "search" => Action::ImageSearch,
        Method::POST if rest == "load" => Action::ImageLoad(q()),
        Method::POST if rest == "prune" => Action::ImagePrune(q()),
        Method::GET => {
            if let Some(name) = named("/json") {
                Action::ImageInspect { name }
            } else if let Some(name) = named("/history") {
                Action::ImageHistory { name }
            } else if let Some(name) = named("/get") {
                Action::ImageSave {
                    name: Some(name),
                    query: q(),
                }
            } else {
                return Err(ApiError::page_not_found());
            }
        }
        Method::POST => {
            if let Some(name) = named("/tag") {
                Action::ImageTag { name, query: q() }
            } else if let Some(name) = named("/push") {
                Action::ImagePush { name, query: q() }
            } else {
                return Err(ApiError::page_not_found());
            }
        }
        Method::DELETE if !rest.is_empty() => Action::ImageRemove {
            name: decode(rest),
            query: q(),
        },
        _ => return Err(ApiError::page_not_found()),
    })
}

fn container_route(m: &Method, rest: &str, q: impl Fn() -> Query) -> ApiResult<Action> {
    use ContainerOp as O;
    let (id, tail) = match rest.split_once('/') {
        Some((id, tail)) => (id, tail),
        None => (rest, ""),
    };
    if id.is_empty() {
        return Err(ApiError::page_not_found());
    }
    let op = match (m, tail) {
        (&Method::GET, "json") => O::Inspect,
        (&Method::POST, "start") => O::Start,
        (&Method::POST, "stop") => O::Stop,
        (&Method::POST, "restart") => O::Restart,
        (&Method::POST, "kill") => O::Kill,
        (&Method::POST, "pause") => O::Pause,
        (&Method::POST, "unpause") => O::Unpause,
        (&Method::POST, "wait") => O::Wait,
        (&Method::POST, "attach") => O::Attach,
        (&Method::GET, "logs") => O::Logs,
        (&Method::POST, "resize") => O::Resize,
        (&Method::GET, "top") => O::Top,
        (&Method::GET, "stats") => O::Stats,
        (&Method::POST, "rename") => O::Rename,
        (&Method::POST, "update") => O::Update,
        (&Method::DELETE, "") => O::Remove,
        (&Method::GET, "changes") => O::Changes,
        (&Method::GET, "export") => O::Export,
        (&Method::GET, "archive") => O::ArchiveGet,
        (&Method::HEAD, "archive") => O::ArchiveHead,
        (&Method::PUT, "archive") => O::ArchivePut,
        (&Method::POST, "exec") => O::ExecCreate,
        _ => return Err(ApiError::page_not_found()),
    };
    Ok(Action::Container {
        id: decode(id),
        op,
        query: q(),
    })
}

fn exec_route(m: &Method, rest: &str, q: impl Fn() -> Query) -> ApiResult<Action> {
    let Some((id, tail)) = rest.split_once('/') else {
        return Err(ApiError::page_not_found());
    };
    let op = match (m, tail) {
        (&Method::POST, "start") => ExecOp::Start,
        (&Method::POST, "resize") => ExecOp::Resize,
        (&Method::GET, "json") => ExecOp::Inspect,
        _ => return Err(ApiError::page_not_found()),
    };
    if id.is_empty() {
        return Err(ApiError::page_not_found());
    }
    Ok(Action::Exec {
        id: decode(id),
        op,
        query: q(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(m: Method, p: &str) -> ApiResult<Routed> {
        let (path, query) = match p.split_once('?') {
            Some((a, b)) => (a, Some(b)),
            None => (p, None),
        };
        route(&m, path, query)
    }

    #[test]
    fn versions() {
        assert_eq!(r(Method::GET, "/_ping").unwrap().version, API_VERSION);
        assert_eq!(
            r(Method::GET, "/v1.24/version").unwrap(),
            Routed {
                version: ApiVersion(1, 24),
                action: Action::Version
            }
        );
        let e = r(Method::GET, "/v1.45/version").unwrap_err();
        assert_eq!(e.status(), 400);
        assert_eq!(
            e.message,
            "client version 1.45 is too new. Maximum supported API version is 1.44"
        );
        let e = r(Method::GET, "/v1.23/_ping").unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(e
            .message
            .starts_with("client version 1.23 is too old. Minimum supported API version is 1.24"));
        assert_eq!(r(Method::GET, "/v1.9/info").unwrap_err().status(), 400);
        assert_eq!(r(Method::GET, "/v1.100/info").unwrap_err().status(), 400);
        assert!(ApiVersion::parse("1.9") < ApiVersion::parse("1.24"));
    }

    #[test]
    fn image_routes_with_slashes() {
        assert_eq!(
            r(Method::GET, "/v1.44/images/127.0.0.1:5000/a/b:v1/json")
                .unwrap()
                .action,
            Action::ImageInspect {
                name: "127.0.0.1:5000/a/b:v1".into()
            }
        );
        assert_eq!(
            r(Method::DELETE, "/images/busybox:latest?force=1")
                .unwrap()
                .action,
            Action::ImageRemove {
                name: "busybox:latest".into(),
                query: Query(vec![("force".into(), "1".into())])
            }
        );
        assert_eq!(
            r(Method::POST, "/images/sha256%3Aabc/tag?repo=x&tag=y")
                .unwrap()
                .action,
            Action::ImageTag {
                name: "sha256:abc".into(),
                query: Query(vec![
                    ("repo".into(), "x".into()),
                    ("tag".into(), "y".into())
                ])
            }
        );
        assert_eq!(
            r(Method::GET, "/images/busybox/history").unwrap().action,
            Action::ImageHistory {
                name: "busybox".into()
            }
        );
    }

    #[test]
    fn image_io_routes() {
        let a = |m: Method, p: &str| r(m, p).unwrap().action;
        assert_eq!(
            a(Method::POST, "/v1.44/images/127.0.0.1:5000/x/push?tag=v1"),
            Action::ImagePush {
                name: "127.0.0.1:5000/x".into(),
                query: Query(vec![("tag".into(), "v1".into())])
            }
        );
        assert_eq!(
            a(Method::GET, "/images/get?names=a&names=b"),
            Action::ImageSave {
                name: None,
                query: Query(vec![
                    ("names".into(), "a".into()),
                    ("names".into(), "b".into())
                ])
            }
        );
        assert_eq!(
            a(Method::GET, "/images/busybox:latest/get"),
            Action::ImageSave {
                name: Some("busybox:latest".into()),
                query: Query::default()
            }
        );
        assert_eq!(
            a(Method::POST, "/images/load?quiet=1"),
            Action::ImageLoad(Query(vec![("quiet".into(), "1".into())]))
        );
        assert_eq!(
            a(Method::POST, "/images/prune"),
            Action::ImagePrune(Query::default())
        );
        assert_eq!(a(Method::GET, "/images/search?term=x"), Action::ImageSearch);
        // Images named like the fixed routes still work through their suffixes.
        assert_eq!(
            a(Method::GET, "/images/load/json"),
            Action::ImageInspect {
                name: "load".into()
            }
        );
        assert_eq!(r(Method::POST, "/images//push").unwrap_err().status(), 404);
    }

    #[test]
    fn unknown_is_page_not_found() {
        for (m, p) in [
            (Method::GET, "/nope"),
            (Method::POST, "/_ping"),
            (Method::GET, "/images/"),
            (Method::GET, "/images//json"),
            (Method::PUT, "/images/x"),
            (Method::GET, "/v1.44"),
        ] {
            let e = r(m.clone(), p).unwrap_err();
            assert_eq!(
                (e.status().as_u16(), e.message.as_str()),
                (404, "page not found"),
                "{m} {p}"
            );
        }
    }

    #[test]
    fn bool_values() {
        let q = Query::parse(Some("a=1&b=false&c=&d=True&e=none"));
        assert!(q.bool("a") && !q.bool("b") && !q.bool("c") && q.bool("d") && !q.bool("e"));
        assert!(!q.bool("zzz"));
    }
}
