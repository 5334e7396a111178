//! Arbitrary input must never panic: random bytes, soups of Dockerfile tokens and mutated
//! real Dockerfiles go through every parser (`skiff_build::fuzzing::exercise`).
//! Seeded, so a failure reproduces; `SKIFF_BUILD_RANDOM_ITERS` scales the run.

use skiff_build::fuzzing::exercise;

/// xorshift64*: small, seeded, good enough to shake parsers.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const TOKENS: &[&str] = &[
    "FROM ",
    "RUN ",
    "CMD ",
    "ENTRYPOINT ",
    "ENV ",
    "ARG ",
    "LABEL ",
    "EXPOSE ",
    "COPY ",
    "ADD ",
    "WORKDIR ",
    "USER ",
    "VOLUME ",
    "SHELL ",
    "STOPSIGNAL ",
    "HEALTHCHECK ",
    "ONBUILD ",
    "MAINTAINER ",
    "AS ",
    "NONE ",
    "--from=",
    "--chown=",
    "--chmod=",
    "--link ",
    "--mount=",
    "type=cache,",
    "type=secret,",
    "type=bind,",
    "target=/x",
    "from=0",
    "--network=",
    "--platform=",
    "--interval=",
    "1s ",
    "--retries=",
    "--",
    "\\\n",
    "`\n",
    "\n",
    " ",
    "\t",
    "\r\n",
    "#",
    "# escape=`\n",
    "# syntax=x\n",
    "<<EOF",
    "<<-EOF",
    "<<'EOF'",
    "EOF\n",
    "\tEOF\n",
    "$",
    "${",
    "}",
    ":-",
    ":+",
    ":?",
    "#",
    "%%",
    "/",
    "//",
    "'",
    "\"",
    "[",
    "]",
    "[\"a\", \"b\"]",
    ",",
    "=",
    "a",
    "b",
    "0",
    "-",
    "*",
    "?",
    "**",
    "!",
    "..",
    "./",
    "\u{feff}",
    "é",
    "\u{0}",
    "scratch",
    "stage",
    "8080/udp",
    "1-3",
    "SIGKILL",
    "CMD-SHELL",
];

const SEEDS: &[&str] = &[
    "FROM busybox\nRUN echo hi\nCMD [\"sh\"]\n",
    "ARG V=1\nFROM a:$V AS b\nCOPY --from=b /x /y\nFROM b\nRUN <<EOF\necho $V\nEOF\n",
    "# escape=`\nFROM x\nRUN a `\n b\nENV A=1 B=\"2 3\"\nLABEL a=b\nEXPOSE 80/tcp 90-92\n",
    "FROM x\nHEALTHCHECK --interval=5s CMD true\nONBUILD RUN make\nSHELL [\"bash\", \"-c\"]\n",
    "FROM x\nRUN --mount=type=cache,target=/c --network=none make\nCOPY <<A <<-B /d/\nx\nA\n\ty\n\tB\n",
    "*.log\n!keep.log\n**/node_modules\n/abs\n[a-z]?\n",
];

fn iters() -> usize {
    std::env::var("SKIFF_BUILD_RANDOM_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500)
}

#[test]
fn random_bytes() {
    let mut rng = Rng(0x5eed_0001);
    for _ in 0..iters() {
        let len = rng.below(300);
        let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        exercise(&data);
    }
}

#[test]
fn token_soup() {
    let mut rng = Rng(0x5eed_0002);
    for _ in 0..iters() {
        let mut s = String::new();
        for _ in 0..rng.below(60) {
            s.push_str(TOKENS[rng.below(TOKENS.len())]);
        }
        exercise(s.as_bytes());
    }
}

#[test]
fn mutated_dockerfiles() {
    let mut rng = Rng(0x5eed_0003);
    for _ in 0..iters() {
        let mut d = SEEDS[rng.below(SEEDS.len())].as_bytes().to_vec();
        for _ in 0..1 + rng.below(6) {
            let at = rng.below(d.len() + 1);
            match rng.below(4) {
                0 if !d.is_empty() => {
                    let i = at.min(d.len() - 1);
                    d[i] = rng.next() as u8;
                }
                1 if at < d.len() => {
                    d.remove(at);
                }
                2 => {
                    let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                    d.splice(at..at, t.iter().copied());
                }
                _ => d.insert(at, b"\n\\\"'${}<#"[rng.below(9)]),
            }
        }
        exercise(&d);
    }
}
