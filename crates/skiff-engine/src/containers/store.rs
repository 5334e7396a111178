//! Where container records live, and how they are found.
//!
//! On disk (layout version 1, under the data root):
//! ```text
//! containers/<id>/config.v2.json   the Container record (write-temp + fsync + rename)
//! containers/<id>/config.json      the OCI bundle config made at each start
//! containers/<id>/rootfs/          mount point of the container's overlay (mounted while it runs)
//! containers/<id>/hostname|hosts|resolv.conf   bind-mounted into the container, as Docker does
//! containers/<id>/shim.json        the monitor's configuration (skiff_shim::ShimConfig)
//! containers/<id>/exit.json        written by the monitor when the container's init exits
//! containers/<id>/<id>-json.log    json-file log (with rotation and an index; skiff-logs)
//! ```
//! The writable layer is the snapshot keyed by the container ID in the image store. A
//! directory without a readable `config.v2.json` is a create that crashed midway: it is
//! removed (with its snapshot) when the daemon starts.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::model::Container;

/// Errors finding containers.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("No such container: {0}")]
    NotFound(String),
    #[error("multiple IDs found with provided prefix: {0}")]
    Ambiguous(String),
}

/// The record file of a container directory.
pub fn record_path(dir: &Path) -> PathBuf {
    dir.join("config.v2.json")
}

/// Writes the record: temp + rename, so a crash of the daemon (kill -9) leaves the old or the
/// new record, never a torn one. Not fsynced: a container's state changes several times per
/// `run`, an fsync costs 3–10 ms on these disks, and what matters across a power loss is in
/// the image store (durable) and the monitor's exit record (durable); after one, a container
/// may show an older state, which the daemon reconciles with its monitor on start.
pub fn save(dir: &Path, c: &Container) -> std::io::Result<()> {
    let tmp = dir.join(".config.v2.json.tmp");
    let data = serde_json::to_vec_pretty(c).map_err(std::io::Error::other)?;
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&data)?;
    }
    std::fs::rename(&tmp, record_path(dir))
}

/// Reads one record.
pub fn load(dir: &Path) -> Result<Container, String> {
    let p = record_path(dir);
    let b = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    serde_json::from_slice(&b).map_err(|e| format!("{}: {e}", p.display()))
}

/// Name and ID index: full IDs, names (without `/`), and unique ID prefixes.
#[derive(Debug, Default)]
pub struct Index {
    names: HashMap<String, String>,
    ids: Vec<String>,
}

impl Index {
    pub fn insert(&mut self, id: &str, name: &str) {
        self.names.insert(name.to_string(), id.to_string());
        if let Err(pos) = self.ids.binary_search_by(|x| x.as_str().cmp(id)) {
            self.ids.insert(pos, id.to_string());
        }
    }

    pub fn remove(&mut self, id: &str, name: &str) {
        if self.names.get(name).map(String::as_str) == Some(id) {
            self.names.remove(name);
        }
        if let Ok(pos) = self.ids.binary_search_by(|x| x.as_str().cmp(id)) {
            self.ids.remove(pos);
        }
    }

    pub fn rename(&mut self, id: &str, old: &str, new: &str) {
        if self.names.get(old).map(String::as_str) == Some(id) {
            self.names.remove(old);
        }
        self.names.insert(new.to_string(), id.to_string());
    }

    pub fn name_taken(&self, name: &str) -> Option<&str> {
        self.names.get(name).map(String::as_str)
    }

    /// Docker's lookup order: full ID, exact name, then a unique ID prefix.
    pub fn find(&self, what: &str) -> Result<String, LookupError> {
        let nf = || LookupError::NotFound(what.to_string());
        if what.is_empty() {
            return Err(nf());
        }
        if what.len() == 64 && self.ids.binary_search_by(|x| x.as_str().cmp(what)).is_ok() {
            return Ok(what.to_string());
        }
        if let Some(id) = self.names.get(what.trim_start_matches('/')) {
            return Ok(id.clone());
        }
        if !what.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(nf());
        }
        let start = self.ids.partition_point(|x| x.as_str() < what);
        let mut it = self.ids[start..].iter().take_while(|x| x.starts_with(what));
        match (it.next(), it.next()) {
            (Some(id), None) => Ok(id.clone()),
            (Some(_), Some(_)) => Err(LookupError::Ambiguous(what.to_string())),
            _ => Err(nf()),
        }
    }

    pub fn ids(&self) -> &[String] {
        &self.ids
    }
}

/// Docker's rule for container names: `/?[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(name: &str) -> bool {
    let n = name.strip_prefix('/').unwrap_or(name);
    let b = n.as_bytes();
    b.len() >= 2
        && b.len() <= 255
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

const LEFT: &[&str] = &[
    "admiring",
    "adoring",
    "agitated",
    "amazing",
    "angry",
    "awesome",
    "beautiful",
    "blissful",
    "bold",
    "boring",
    "brave",
    "busy",
    "charming",
    "clever",
    "compassionate",
    "competent",
    "condescending",
    "confident",
    "cool",
    "cranky",
    "crazy",
    "dazzling",
    "determined",
    "distracted",
    "dreamy",
    "eager",
    "ecstatic",
    "elastic",
    "elated",
    "elegant",
    "eloquent",
    "epic",
    "exciting",
    "fervent",
    "festive",
    "flamboyant",
    "focused",
    "friendly",
    "frosty",
    "funny",
    "gallant",
    "gifted",
    "goofy",
    "gracious",
    "great",
    "happy",
    "hardcore",
    "heuristic",
    "hopeful",
    "hungry",
    "infallible",
    "inspiring",
    "intelligent",
    "interesting",
    "jolly",
    "jovial",
    "keen",
    "kind",
    "laughing",
    "loving",
    "lucid",
    "magical",
    "modest",
    "musing",
    "mystifying",
    "naughty",
    "nervous",
    "nice",
    "nifty",
    "nostalgic",
    "objective",
    "optimistic",
    "peaceful",
    "pedantic",
    "pensive",
    "practical",
    "priceless",
    "quirky",
    "quizzical",
    "recursing",
    "relaxed",
    "reverent",
    "romantic",
    "sad",
    "serene",
    "sharp",
    "silly",
    "sleepy",
    "stoic",
    "strange",
    "stupefied",
    "suspicious",
    "sweet",
    "tender",
    "thirsty",
    "trusting",
    "unruffled",
    "upbeat",
    "vibrant",
    "vigilant",
    "vigorous",
    "wizardly",
    "wonderful",
    "xenodochial",
    "youthful",
    "zealous",
    "zen",
];

const RIGHT: &[&str] = &[
    "albattani",
    "allen",
    "almeida",
    "archimedes",
    "ardinghelli",
    "aryabhata",
    "austin",
    "babbage",
    "banach",
    "bardeen",
    "bartik",
    "bassi",
    "bell",
    "benz",
    "bhabha",
    "blackburn",
    "blackwell",
    "bohr",
    "booth",
    "borg",
    "bose",
    "boyd",
    "brahmagupta",
    "brattain",
    "brown",
    "carson",
    "cerf",
    "chandrasekhar",
    "chatelet",
    "chaum",
    "clarke",
    "colden",
    "cori",
    "cray",
    "curie",
    "darwin",
    "davinci",
    "dijkstra",
    "dubinsky",
    "easley",
    "edison",
    "einstein",
    "elion",
    "engelbart",
    "euclid",
    "euler",
    "fermat",
    "fermi",
    "feynman",
    "franklin",
    "galileo",
    "gates",
    "goldberg",
    "goldstine",
    "goldwasser",
    "golick",
    "goodall",
    "haibt",
    "hamilton",
    "hawking",
    "heisenberg",
    "hermann",
    "hodgkin",
    "hofstadter",
    "hopper",
    "hugle",
    "hypatia",
    "jackson",
    "jang",
    "jennings",
    "jepsen",
    "johnson",
    "joliot",
    "jones",
    "kalam",
    "kare",
    "keller",
    "kepler",
    "khorana",
    "kilby",
    "kirch",
    "knuth",
    "kowalevski",
    "lalande",
    "lamarr",
    "lamport",
    "leakey",
    "leavitt",
    "lehmann",
    "lewin",
    "lichterman",
    "liskov",
    "lovelace",
    "lumiere",
    "mahavira",
    "margulis",
    "matsumoto",
    "mayer",
    "mccarthy",
    "mcclintock",
    "mclean",
    "mcnulty",
    "meitner",
    "merkle",
    "mestorf",
    "mirzakhani",
    "montalcini",
    "moore",
    "morse",
    "moser",
    "murdock",
    "napier",
    "nash",
    "neumann",
    "newton",
    "nightingale",
    "nobel",
    "noether",
    "northcutt",
    "noyce",
    "panini",
    "pare",
    "pascal",
    "pasteur",
    "payne",
    "perlman",
    "pike",
    "poincare",
    "poitras",
    "ptolemy",
    "raman",
    "ramanujan",
    "ride",
    "ritchie",
    "robinson",
    "roentgen",
    "rosalind",
    "rubin",
    "saha",
    "sammet",
    "sanderson",
    "shannon",
    "shaw",
    "shirley",
    "shockley",
    "sinoussi",
    "snyder",
    "spence",
    "stallman",
    "stonebraker",
    "swanson",
    "swartz",
    "swirles",
    "tesla",
    "thompson",
    "torvalds",
    "turing",
    "varahamihira",
    "villani",
    "visvesvaraya",
    "volhard",
    "wescoff",
    "wiles",
    "williams",
    "wilson",
    "wing",
    "wozniak",
    "wright",
    "yalow",
    "yonath",
];

/// A random `adjective_surname` (with a digit appended after a collision), as Docker makes.
pub fn random_name(taken: impl Fn(&str) -> bool) -> String {
    for attempt in 0..64u32 {
        let r = super::random_u64();
        let a = LEFT[(r % LEFT.len() as u64) as usize];
        let b = RIGHT[((r >> 20) % RIGHT.len() as u64) as usize];
        let mut n = format!("{a}_{b}");
        if n == "boring_wozniak" {
            continue; // Steve Wozniak is not boring (moby's rule).
        }
        if attempt > 0 {
            n.push_str(&((r >> 40) % 10).to_string());
        }
        if !taken(&n) {
            return n;
        }
    }
    super::random_id()[..16].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_order_and_prefixes() {
        let mut ix = Index::default();
        let a = format!("abc1{}", "0".repeat(60));
        let b = format!("abc2{}", "0".repeat(60));
        ix.insert(&a, "web");
        ix.insert(&b, "db");
        assert_eq!(ix.find(&a).unwrap(), a);
        assert_eq!(ix.find("web").unwrap(), a);
        assert_eq!(ix.find("/db").unwrap(), b);
        assert_eq!(ix.find("abc2").unwrap(), b);
        assert!(matches!(ix.find("abc"), Err(LookupError::Ambiguous(_))));
        assert!(matches!(ix.find("abd"), Err(LookupError::NotFound(_))));
        assert!(matches!(ix.find(""), Err(LookupError::NotFound(_))));
        assert_eq!(
            ix.find("nope").unwrap_err().to_string(),
            "No such container: nope"
        );
        ix.rename(&a, "web", "front");
        assert!(ix.find("web").is_err());
        assert_eq!(ix.find("front").unwrap(), a);
        ix.remove(&a, "front");
        assert_eq!(ix.find("abc").unwrap(), b);
    }

    #[test]
    fn names() {
        assert!(valid_name("web") && valid_name("/a.b-c_d") && valid_name("a1"));
        for bad in ["", "a", "-x", "a b", "a/b", "../x", "x\n", "é9"] {
            assert!(!valid_name(bad), "{bad:?}");
        }
        let n = random_name(|_| false);
        assert!(n.contains('_') && valid_name(&n));
        let first = random_name(|_| false);
        let n = random_name(|x| x == first);
        assert!(valid_name(&n));
    }
}
