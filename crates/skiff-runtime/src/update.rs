//! `update`: merging new resource values into a container's recorded ones.

use oci_spec::runtime::LinuxResources;
use serde_json::Value;

fn merge_value(base: &mut Value, new: &Value) {
    match (base, new) {
        (Value::Object(b), Value::Object(n)) => {
            for (k, v) in n {
                if v.is_null() {
                    continue;
                }
                merge_value(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, n) => *b = n.clone(),
    }
}

/// The recorded resources with every value `new` sets replaced.
pub fn merge(old: Option<LinuxResources>, new: &LinuxResources) -> LinuxResources {
    let mut base = serde_json::to_value(old.unwrap_or_default()).unwrap_or(Value::Null);
    if base.is_null() {
        base = Value::Object(Default::default());
    }
    let n = serde_json::to_value(new).unwrap_or(Value::Null);
    merge_value(&mut base, &n);
    serde_json::from_value(base).unwrap_or_else(|_| new.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_nested_values() {
        let old: LinuxResources = serde_json::from_str(
            r#"{"memory":{"limit":100,"reservation":50},"pids":{"limit":10}}"#,
        )
        .unwrap();
        let new: LinuxResources = serde_json::from_str(r#"{"memory":{"limit":200}}"#).unwrap();
        let m = merge(Some(old), &new);
        let mem = m.memory().as_ref().unwrap();
        assert_eq!(mem.limit(), Some(200));
        assert_eq!(mem.reservation(), Some(50));
        assert_eq!(m.pids().as_ref().unwrap().limit(), 10);
    }
}
