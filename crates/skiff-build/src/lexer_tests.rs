use super::*;

fn nodes(src: &str) -> Vec<RawNode> {
    lex("Dockerfile", src).unwrap().nodes
}

fn err(src: &str) -> String {
    lex("Dockerfile", src).unwrap_err().to_string()
}

#[test]
fn lines_and_ranges() {
    let n = nodes("FROM busybox\n\n# comment\nRUN echo a \\\n    b \\\n  c\nCMD x\n");
    assert_eq!(n.len(), 3);
    assert_eq!((n[1].start, n[1].end), (4, 6));
    assert_eq!(n[1].original, "RUN echo a     b   c");
    assert_eq!(n[1].rest, "echo a     b   c");
    assert_eq!((n[2].start, n[2].end), (7, 7));
}

#[test]
fn comments_and_empty_lines_inside_continuations() {
    let l = lex(
        "Dockerfile",
        "FROM x\nRUN a \\\n# inner comment\n  # indented comment\n\n   \n b\n",
    )
    .unwrap();
    assert_eq!(l.nodes[1].original, "RUN a  b");
    assert_eq!((l.nodes[1].start, l.nodes[1].end), (2, 7));
    assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
    assert!(l.warnings[0].contains("Dockerfile:2: empty continuation line"));
}

#[test]
fn continuation_details() {
    // Escaped escape at the end is not a continuation.
    let n = nodes("FROM x\nRUN echo \\\\\nRUN b\n");
    assert_eq!(n[1].rest, "echo \\\\");
    // Trailing blanks after the escape still continue.
    let n = nodes("FROM x\nRUN a \\  \t\nb\n");
    assert_eq!(n[1].rest, "a b");
    // A continuation reaching the end of the file ends the instruction there, as Docker does.
    let n = nodes("FROM x\nRUN echo hi \\");
    assert_eq!(n[1].rest, "echo hi");
    let n = nodes("FROM x\nRUN echo hi \\\n# only a comment after\n");
    assert_eq!(n[1].rest, "echo hi");
    // CRLF and BOM.
    let n = nodes("\u{feff}FROM x\r\nRUN a \\\r\n b\r\n");
    assert_eq!(n[0].original, "FROM x");
    assert_eq!(n[1].rest, "a  b");
}

#[test]
fn directives() {
    let l = lex(
        "Dockerfile",
        "# syntax=docker/dockerfile:1\n# escape=`\nFROM x\nRUN a `\n b\n",
    )
    .unwrap();
    assert_eq!(l.escape, '`');
    assert_eq!(l.syntax.as_deref(), Some("docker/dockerfile:1"));
    assert_eq!(l.nodes[1].rest, "a  b");
    // After an instruction, a comment, or an empty line, it is just a comment.
    for src in [
        "FROM x\n# escape=`\nRUN a `\n",
        "# hello\n# escape=`\nFROM x\n",
        "\n# escape=`\nFROM x\n",
    ] {
        assert_eq!(lex("Dockerfile", src).unwrap().escape, '\\', "{src:?}");
    }
    // Unknown directive names end the directive block.
    assert_eq!(
        lex("Dockerfile", "# foo=bar\n# escape=`\nFROM x\n")
            .unwrap()
            .escape,
        '\\'
    );
    assert_eq!(
        lex("Dockerfile", "#ESCAPE = `\nFROM x\n").unwrap().escape,
        '`'
    );
    assert_eq!(
        err("# escape=`\n# escape=\\\nFROM x\n"),
        "Dockerfile:2: only one escape parser directive can be used"
    );
    assert_eq!(
        err("# escape=x\nFROM x\n"),
        "Dockerfile:1: invalid escape token 'x' does not match ` or \\"
    );
}

#[test]
fn heredocs() {
    let src = "FROM x\nRUN <<EOF\necho a\n  echo b\nEOF\nCMD y\n";
    let n = nodes(src);
    assert_eq!(n[1].heredocs.len(), 1);
    assert_eq!(n[1].heredocs[0].content, "echo a\n  echo b\n");
    assert_eq!((n[1].start, n[1].end), (2, 5));
    assert_eq!(n[2].start, 6);

    let src = "FROM x\nRUN cat <<A - <<-\"B\" >/out\none\nA\n\ttwo\n\tB\nCOPY <<EOF /f\n$X\nEOF\n";
    let n = nodes(src);
    assert_eq!(
        n[1].heredocs
            .iter()
            .map(|h| h.name.as_str())
            .collect::<Vec<_>>(),
        ["A", "B"]
    );
    assert_eq!(n[1].heredocs[1].content, "\ttwo\n");
    assert_eq!(n[1].heredocs[1].body(), "two\n");
    assert!(!n[1].heredocs[1].expand);
    assert_eq!(n[2].heredocs[0].content, "$X\n");

    // Not for JSON forms nor other instructions.
    let n = nodes("FROM x\nRUN [\"cat\", \"<<EOF\"]\nENV a=<<EOF\n");
    assert!(n.iter().all(|n| n.heredocs.is_empty()));
    // Through ONBUILD.
    let n = nodes("FROM x\nONBUILD RUN <<EOF\nhi\nEOF\n");
    assert_eq!(n[1].heredocs[0].content, "hi\n");
    assert_eq!(
        err("FROM x\nRUN <<EOF\necho\n"),
        "Dockerfile:2: unterminated heredoc"
    );
    assert_eq!(
        err("FROM x\nRUN <<A <<B\nA\n"),
        "Dockerfile:2: unterminated heredoc"
    );
}

#[test]
fn empty_files() {
    assert_eq!(err(""), "Dockerfile:1: file with no instructions");
    assert_eq!(
        err("# just a comment\n\n"),
        "Dockerfile:2: file with no instructions"
    );
    assert_eq!(err("\\"), "Dockerfile:1: unknown instruction: \\");
}
