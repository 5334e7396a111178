//! Bad Dockerfiles: each error names the file, the right line, and Docker's message.

use skiff_build::Dockerfile;

const CASES: &[(&str, &str)] = &[
    ("FROM busybox\nRUN echo\n\n\n\n\nRUNN echo\n", "Dockerfile:7: unknown instruction: RUNN (did you mean RUN?)"),
    ("FROM busybox\nFOO bar\n", "Dockerfile:2: unknown instruction: FOO"),
    ("FROM busybox\nworkdri /x\n", "Dockerfile:2: unknown instruction: workdri (did you mean WORKDIR?)"),
    ("FROM a b\n", "Dockerfile:1: FROM requires either one or three arguments"),
    ("FROM\n", "Dockerfile:1: FROM requires either one or three arguments"),
    ("FROM a AS b c\n", "Dockerfile:1: FROM requires either one or three arguments"),
    ("FROM a AS 1st\n", "Dockerfile:1: invalid name for build stage: \"1st\", name can't start with a number or contain symbols"),
    ("FROM a AS b$\n", "Dockerfile:1: invalid name for build stage: \"b$\", name can't start with a number or contain symbols"),
    ("FROM --plat=x a\n", "Dockerfile:1: unknown flag for FROM: --plat"),
    ("RUN echo hi\nFROM a\n", "Dockerfile:1: no build stage in current context"),
    ("ARG A\n", "Dockerfile:1: no build stage in current context"),
    ("FROM a\nRUN <<EOF\necho hi\n", "Dockerfile:2: unterminated heredoc"),
    ("FROM a\n\nCOPY <<EOF <<EOF2 /x\nEOF\n", "Dockerfile:3: unterminated heredoc"),
    ("FROM a\nCMD [\"a\", 1]\n", "Dockerfile:2: when using JSON array syntax, arrays must be comprised of strings only"),
    ("FROM a\nCOPY --foo x y\n", "Dockerfile:2: unknown flag for COPY: --foo"),
    ("FROM a\nADD --from=b x y\n", "Dockerfile:2: unknown flag for ADD: --from"),
    ("FROM a\nCOPY --from x y\n", "Dockerfile:2: COPY: missing a value on flag --from"),
    ("FROM a\nCOPY --link=maybe x y\n", "Dockerfile:2: COPY: expecting a boolean value (true or false) for flag --link"),
    ("FROM a\nCOPY --chown=a --chown=b x y\n", "Dockerfile:2: COPY: duplicate flag specified: --chown"),
    ("FROM a\nCOPY onlyone\n", "Dockerfile:2: COPY requires at least two arguments, but only one was provided. Destination could not be determined"),
    ("FROM a\nADD [\"x\"]\n", "Dockerfile:2: ADD requires at least two arguments, but only one was provided. Destination could not be determined"),
    ("FROM a\nCOPY x <<EOF\nEOF\n", "Dockerfile:2: COPY cannot accept a heredoc as a destination"),
    ("FROM a\nRUN\n", "Dockerfile:2: RUN requires at least one argument"),
    ("FROM a\nRUN --network=bridge x\n", "Dockerfile:2: RUN: unsupported network mode \"bridge\""),
    ("FROM a\nRUN --mount=type=nfs,target=/x x\n", "Dockerfile:2: RUN --mount: unsupported mount type \"nfs\""),
    ("FROM a\nRUN --mount=type=bind,from=$X,target=/x x\n", "Dockerfile:2: RUN --mount: 'from' doesn't support variable expansion, define alias stage instead"),
    ("FROM a\nENV\n", "Dockerfile:2: ENV requires at least one argument"),
    ("FROM a\nENV KEY\n", "Dockerfile:2: ENV: ENV must have two arguments"),
    ("FROM a\nENV A=1 B\n", "Dockerfile:2: ENV: Syntax error - can't find = in \"B\". Must be of the form: name=value"),
    ("FROM a\nENV =x\n", "Dockerfile:2: ENV: ENV names can not be blank"),
    ("FROM a\nLABEL\n", "Dockerfile:2: LABEL requires at least one argument"),
    ("FROM a\nARG\n", "Dockerfile:2: ARG requires at least one argument"),
    ("FROM a\nARG =x\n", "Dockerfile:2: ARG: ARG names can not be blank"),
    ("FROM a\nEXPOSE\n", "Dockerfile:2: EXPOSE requires at least one argument"),
    ("FROM a\nWORKDIR\n", "Dockerfile:2: WORKDIR requires exactly one argument"),
    ("FROM a\nUSER\n", "Dockerfile:2: USER requires exactly one argument"),
    ("FROM a\nVOLUME\n", "Dockerfile:2: VOLUME requires at least one argument"),
    ("FROM a\nVOLUME [\"\"]\n", "Dockerfile:2: VOLUME: VOLUME specified can not be an empty string"),
    ("FROM a\nSHELL /bin/bash -c\n", "Dockerfile:2: SHELL: SHELL requires the arguments to be in JSON form"),
    ("FROM a\nSHELL []\n", "Dockerfile:2: SHELL requires at least one argument"),
    ("FROM a\nSTOPSIGNAL\n", "Dockerfile:2: STOPSIGNAL requires exactly one argument"),
    ("FROM a\nMAINTAINER\n", "Dockerfile:2: MAINTAINER requires exactly one argument"),
    ("FROM a\nHEALTHCHECK\n", "Dockerfile:2: HEALTHCHECK requires at least one argument"),
    ("FROM a\nHEALTHCHECK NONE x\n", "Dockerfile:2: HEALTHCHECK NONE takes no arguments"),
    ("FROM a\nHEALTHCHECK CMD\n", "Dockerfile:2: Missing command after HEALTHCHECK CMD"),
    ("FROM a\nHEALTHCHECK RUN x\n", "Dockerfile:2: Unknown type \"RUN\" in HEALTHCHECK (try CMD)"),
    ("FROM a\nHEALTHCHECK --interval=5 CMD x\n", "Dockerfile:2: time: missing unit in duration \"5\""),
    ("FROM a\nHEALTHCHECK --timeout=1us CMD x\n", "Dockerfile:2: Interval \"timeout\" cannot be less than 1ms"),
    ("FROM a\nHEALTHCHECK --retries=-1 CMD x\n", "Dockerfile:2: --retries cannot be negative (-1)"),
    ("FROM a\nHEALTHCHECK --retries=x CMD x\n", "Dockerfile:2: strconv.ParseInt: parsing \"x\": invalid syntax"),
    ("FROM a\nHEALTHCHECK --bogus=1 CMD x\n", "Dockerfile:2: unknown flag for HEALTHCHECK: --bogus"),
    ("FROM a\nONBUILD\n", "Dockerfile:2: ONBUILD requires at least one argument"),
    ("FROM a\nONBUILD ONBUILD RUN x\n", "Dockerfile:2: ONBUILD: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
    ("FROM a\nONBUILD FROM b\n", "Dockerfile:2: ONBUILD: FROM isn't allowed as an ONBUILD trigger"),
    ("FROM a\nonbuild maintainer me\n", "Dockerfile:2: ONBUILD: MAINTAINER isn't allowed as an ONBUILD trigger"),
    ("FROM a\nONBUILD CMD [1]\n", "Dockerfile:2: when using JSON array syntax, arrays must be comprised of strings only"),
    ("FROM a\nCMD --x=1 a\n", "Dockerfile:2: unknown flag for CMD: --x"),
    ("# escape=`\n# escape=`\nFROM a\n", "Dockerfile:2: only one escape parser directive can be used"),
    ("# escape=$\nFROM a\n", "Dockerfile:1: invalid escape token '$' does not match ` or \\"),
    ("", "Dockerfile:1: file with no instructions"),
    ("# nothing\n", "Dockerfile:1: file with no instructions"),
    // The error points at the first line of a continued instruction.
    ("FROM a\nRUN echo \\\n  one \\\n  two\nCOPY \\\n  onlyone\n", "Dockerfile:5: COPY requires at least two arguments, but only one was provided. Destination could not be determined"),
    // Heredoc bodies count as lines.
    ("FROM a\nRUN <<EOF\n1\n2\nEOF\nBAD x\n", "Dockerfile:6: unknown instruction: BAD"),
];

#[test]
fn every_bad_dockerfile_names_its_line() {
    let mut failures = Vec::new();
    for (src, want) in CASES {
        match Dockerfile::parse("Dockerfile", src.as_bytes()) {
            Ok(_) => failures.push(format!("{src:?}: parsed, wanted {want:?}")),
            Err(e) if e.to_string() != *want => {
                failures.push(format!("{src:?}:\n   got {e}\n  want {want}"))
            }
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn errors_carry_the_range() {
    let e = Dockerfile::parse(
        "build/Dockerfile.dev",
        b"FROM a\nRUN \\\n --network=x \\\n echo\n",
    )
    .unwrap_err();
    assert_eq!(
        (e.file.as_str(), e.line, e.end_line),
        ("build/Dockerfile.dev", 2, 4)
    );
    assert!(e.to_string().starts_with("build/Dockerfile.dev:2: "));
}
