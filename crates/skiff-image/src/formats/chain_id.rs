//! ChainIDs (OCI image spec, config.md): the identity of a stack of layers, which keys the
//! unpacked snapshots. ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)).

use crate::digest::{self, Digest};

/// The chainID of every prefix of `diff_ids` (element i is the chainID of layers 0..=i).
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => digest::sha256(format!("{prev} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

/// The chainID of the whole stack; `None` for no layers.
pub fn chain_id(diff_ids: &[Digest]) -> Option<Digest> {
    chain_ids(diff_ids).pop()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Digest {
        s.parse().unwrap()
    }

    #[test]
    fn known_values() {
        let a = d("sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4");
        let b = d("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(chain_id(&[]), None);
        assert_eq!(chain_id(std::slice::from_ref(&a)), Some(a.clone()));
        let ids = chain_ids(&[a.clone(), b.clone(), a.clone()]);
        let c1 = digest::sha256(format!("{a} {b}").as_bytes());
        assert_eq!(ids[1], c1);
        assert_eq!(ids[2], digest::sha256(format!("{c1} {a}").as_bytes()));
        // Independently: printf 'sha256:a3ed… sha256:e3b0…' | sha256sum
        assert_eq!(
            ids[1].to_string(),
            "sha256:e735a3dad8470831ba9a0854a72b7af2a5c40e906b4389d69c39790bd3ac26eb"
        );
    }
}
