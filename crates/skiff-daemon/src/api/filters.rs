//! Docker's `filters` query parameter: a JSON `map[string][]string`, or the older
//! `map[string]map[string]bool` form the CLI still sends; and Go's `path.Match` for
//! `reference` patterns.

use std::collections::BTreeMap;

use serde_json::Value;

use super::error::{ApiError, ApiResult};

/// Filter name → values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters(pub BTreeMap<String, Vec<String>>);

impl Filters {
    pub fn parse(raw: Option<&str>) -> ApiResult<Filters> {
        let Some(raw) = raw.filter(|s| !s.trim().is_empty()) else {
            return Ok(Filters::default());
        };
        let v: Value = serde_json::from_str(raw)
            .map_err(|e| ApiError::invalid(format!("invalid filter: {e}")))?;
        let Value::Object(m) = v else {
            return Err(ApiError::invalid("invalid filter: want a JSON object"));
        };
        let mut out = BTreeMap::new();
        for (k, v) in m {
            let vals: Vec<String> = match v {
                Value::Array(a) => a
                    .into_iter()
                    .map(|x| match x {
                        Value::String(s) => Ok(s),
                        _ => Err(ApiError::invalid(format!(
                            "invalid filter '{k}': want strings"
                        ))),
                    })
                    .collect::<ApiResult<_>>()?,
                Value::Object(o) => o
                    .into_iter()
                    .filter(|(_, b)| b.as_bool().unwrap_or(false))
                    .map(|(s, _)| s)
                    .collect(),
                _ => return Err(ApiError::invalid(format!("invalid filter '{k}'"))),
            };
            out.insert(k, vals);
        }
        Ok(Filters(out))
    }

    /// Refuses filter names outside `allowed`, with Docker's message.
    pub fn validate(&self, allowed: &[&str]) -> ApiResult<()> {
        for k in self.0.keys() {
            if !allowed.contains(&k.as_str()) {
                return Err(ApiError::invalid(format!("invalid filter '{k}'")));
            }
        }
        Ok(())
    }

    pub fn get(&self, k: &str) -> &[String] {
        self.0.get(k).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn contains(&self, k: &str) -> bool {
        self.0.contains_key(k)
    }

    /// A boolean filter (`dangling`): `Some(true|false)`, an error for other values.
    pub fn bool(&self, k: &str) -> ApiResult<Option<bool>> {
        let vals = self.get(k);
        if vals.is_empty() {
            return Ok(None);
        }
        let mut out = None;
        for v in vals {
            let b = match v.to_ascii_lowercase().as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => return Err(ApiError::invalid(format!("invalid filter '{k}={v}'"))),
            };
            out = Some(out.unwrap_or(false) || b);
        }
        Ok(out)
    }

    /// `label=key` / `label=key=value` against a label map: all must match.
    pub fn labels_match(&self, k: &str, labels: &BTreeMap<String, String>) -> bool {
        self.get(k).iter().all(|want| match want.split_once('=') {
            Some((key, val)) => labels.get(key).is_some_and(|v| v == val),
            None => labels.contains_key(want.as_str()),
        })
    }
}

/// Go's `path.Match`: `*` any run of non-`/`, `?` one non-`/`, `[...]` classes (with `^`
/// negation and ranges), `\` escapes. A malformed pattern matches nothing.
pub fn path_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    match_at(&p, &n)
}

fn match_at(p: &[char], n: &[char]) -> bool {
    let Some(&c) = p.first() else {
        return n.is_empty();
    };
    match c {
        '*' => {
            let rest = &p[1..];
            for i in 0..=n.len() {
                if match_at(rest, &n[i..]) {
                    return true;
                }
                if i < n.len() && n[i] == '/' {
                    break;
                }
            }
            false
        }
        '?' => !n.is_empty() && n[0] != '/' && match_at(&p[1..], &n[1..]),
        '[' => {
            let Some(end) = p[1..].iter().position(|&x| x == ']').map(|i| i + 1) else {
                return false;
            };
            let Some(&ch) = n.first() else {
                return false;
            };
            let mut class = &p[1..end];
            let negate = class.first() == Some(&'^');
            if negate {
                class = &class[1..];
            }
            let mut hit = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == '-' {
                    hit |= class[i] <= ch && ch <= class[i + 2];
                    i += 3;
                } else {
                    hit |= class[i] == ch;
                    i += 1;
                }
            }
            hit != negate && ch != '/' && match_at(&p[end + 1..], &n[1..])
        }
        '\\' if p.len() > 1 => !n.is_empty() && n[0] == p[1] && match_at(&p[2..], &n[1..]),
        _ => !n.is_empty() && n[0] == c && match_at(&p[1..], &n[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_json_forms() {
        let a = Filters::parse(Some(r#"{"dangling":["true"],"label":["a=b"]}"#)).unwrap();
        let b = Filters::parse(Some(r#"{"dangling":{"true":true},"label":{"a=b":true}}"#)).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.bool("dangling").unwrap(), Some(true));
        assert!(Filters::parse(Some("{")).unwrap_err().status() == 400);
        let e = a.validate(&["dangling"]).unwrap_err();
        assert_eq!(e.message, "invalid filter 'label'");
        let bad = Filters::parse(Some(r#"{"dangling":["maybe"]}"#)).unwrap();
        assert!(bad.bool("dangling").is_err());
    }

    #[test]
    fn labels() {
        let f = Filters::parse(Some(r#"{"label":["a","b=2"]}"#)).unwrap();
        let mut l = BTreeMap::new();
        l.insert("a".to_string(), "1".to_string());
        assert!(!f.labels_match("label", &l));
        l.insert("b".to_string(), "2".to_string());
        assert!(f.labels_match("label", &l));
    }

    #[test]
    fn go_path_match() {
        assert!(path_match("busybox", "busybox"));
        assert!(path_match("busy*", "busybox"));
        assert!(path_match("*:latest", "busybox:latest"));
        assert!(!path_match("*", "a/b"));
        assert!(path_match("*/*", "a/b"));
        assert!(path_match("b?sybox", "busybox"));
        assert!(path_match("[a-c]usybox", "busybox"));
        assert!(!path_match("[^a-c]usybox", "busybox"));
        assert!(!path_match("busy", "busybox"));
    }
}
