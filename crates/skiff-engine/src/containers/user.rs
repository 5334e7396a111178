//! `--user` / the image's `User` resolved against the container's /etc/passwd and /etc/group,
//! as Docker does: `name`, `uid`, `name:group`, `uid:gid`; supplementary groups from
//! /etc/group membership; HOME from passwd.

use std::path::Path;

/// The resolved identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: String,
}

fn read(rootfs: &Path, file: &str) -> String {
    std::fs::read_to_string(rootfs.join(file)).unwrap_or_default()
}

/// Resolve `spec` ("" means root) inside `rootfs`.
pub fn resolve(rootfs: &Path, spec: &str) -> Result<Identity, String> {
    let passwd = read(rootfs, "etc/passwd");
    let group = read(rootfs, "etc/group");
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let u = if u.is_empty() { "0" } else { u };
    let entry = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 7 && (f[0] == u || (u.parse::<u32>().is_ok() && f[2] == u)));
    let (uid, mut gid, name, home) = match (&entry, u.parse::<u32>()) {
        (Some(f), _) => (
            f[2].parse()
                .map_err(|_| format!("bad uid in /etc/passwd for {u}"))?,
            f[3].parse().unwrap_or(0),
            f[0].to_string(),
            f[5].to_string(),
        ),
        (None, Ok(n)) => (n, n, String::new(), "/".to_string()),
        (None, Err(_)) => {
            return Err(format!(
                "unable to find user {u}: no matching entries in passwd file"
            ))
        }
    };
    if entry.is_none() && g.is_none() {
        gid = uid;
    }
    if let Some(g) = g {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => group
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() >= 3 && f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| {
                    format!("unable to find group {g}: no matching entries in group file")
                })?,
        };
    }
    let mut additional: Vec<u32> = if name.is_empty() {
        Vec::new()
    } else {
        group
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .filter(|f| f.len() >= 4 && f[3].split(',').any(|m| m == name))
            .filter_map(|f| f[2].parse().ok())
            .filter(|g| *g != gid)
            .collect()
    };
    additional.sort_unstable();
    additional.dedup();
    Ok(Identity {
        uid,
        gid,
        additional_gids: additional,
        home: if home.is_empty() { "/".into() } else { home },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_like_docker() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("etc")).unwrap();
        std::fs::write(
            t.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nskiff:x:1000:1000::/home/skiff:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            t.path().join("etc/group"),
            "root:x:0:\nskiff:x:1000:\nextra:x:1001:skiff\n",
        )
        .unwrap();
        let r = resolve(t.path(), "").unwrap();
        assert_eq!((r.uid, r.gid, r.home.as_str()), (0, 0, "/root"));
        let s = resolve(t.path(), "skiff").unwrap();
        assert_eq!(
            (s.uid, s.gid, s.additional_gids.clone()),
            (1000, 1000, vec![1001])
        );
        assert_eq!(resolve(t.path(), "1000:extra").unwrap().gid, 1001);
        assert_eq!(resolve(t.path(), "4242").unwrap().uid, 4242);
        assert_eq!(resolve(t.path(), "4242").unwrap().gid, 4242);
        assert!(resolve(t.path(), "nobody-here")
            .unwrap_err()
            .contains("unable to find user nobody-here"));
    }
}
