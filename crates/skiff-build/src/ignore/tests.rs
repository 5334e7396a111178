//! The moby/patternmatcher test tables, ported.

use super::*;

fn m(file: &str, patterns: &[&str]) -> Result<bool, PatternError> {
    Ok(DockerIgnore::new(patterns)?.matches(file))
}

#[test]
fn simple_cases() {
    assert!(m("fileutils.go", &["*"]).unwrap());
    assert!(m("fileutils.go", &["*.go"]).unwrap());
    assert!(m("fileutils.go", &["!fileutils.go", "*.go"]).unwrap());
    assert!(!m("docs/README.md", &["docs", "!docs/README.md"]).unwrap());
    assert!(!m("docs/README.md", &["docs/", "!docs/README.md"]).unwrap());
    assert!(!m("docs/README.md", &["docs/*", "!docs/README.md"]).unwrap());
    assert!(!m("fileutils.go", &["*.go", "!fileutils.go"]).unwrap());
    assert!(!m(".", &["*.go"]).unwrap());
    assert!(m("fileutils.go", &["!"]).is_err());
    assert!(!m("/any/path/there", &[]).unwrap());
    assert!(m("/any/path/there", &["["]).is_err());
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum T {
    Fail,
    Exact,
    Inexact,
}
use T::*;

const TABLE: &[(&str, &str, T)] = &[
    ("**", "file", Exact),
    ("**", "file/", Exact),
    ("**/", "file", Exact),
    ("**/", "file/", Exact),
    ("**", "/", Exact),
    ("**/", "/", Exact),
    ("**", "dir/file", Exact),
    ("**/", "dir/file", Exact),
    ("**", "dir/file/", Exact),
    ("**/", "dir/file/", Exact),
    ("**/**", "dir/file", Exact),
    ("**/**", "dir/file/", Exact),
    ("dir/**", "dir/file", Exact),
    ("dir/**", "dir/file/", Exact),
    ("dir/**", "dir/dir2/file", Exact),
    ("dir/**", "dir/dir2/file/", Exact),
    ("**/dir", "dir", Exact),
    ("**/dir", "dir/file", Inexact),
    ("**/dir2/*", "dir/dir2/file", Exact),
    ("**/dir2/*", "dir/dir2/file/", Inexact),
    ("**/dir2/**", "dir/dir2/dir3/file", Exact),
    ("**/dir2/**", "dir/dir2/dir3/file/", Exact),
    ("**file", "file", Exact),
    ("**file", "dir/file", Exact),
    ("**/file", "dir/file", Exact),
    ("**file", "dir/dir/file", Exact),
    ("**/file", "dir/dir/file", Exact),
    ("**/file*", "dir/dir/file", Exact),
    ("**/file*", "dir/dir/file.txt", Exact),
    ("**/file*txt", "dir/dir/file.txt", Exact),
    ("**/file*.txt", "dir/dir/file.txt", Exact),
    ("**/file*.txt*", "dir/dir/file.txt", Exact),
    ("**/**/*.txt", "dir/dir/file.txt", Exact),
    ("**/**/*.txt2", "dir/dir/file.txt", Fail),
    ("**/*.txt", "file.txt", Exact),
    ("**/**/*.txt", "file.txt", Exact),
    ("a**/*.txt", "a/file.txt", Exact),
    ("a**/*.txt", "a/dir/file.txt", Exact),
    ("a**/*.txt", "a/dir/dir/file.txt", Exact),
    ("a/*.txt", "a/dir/file.txt", Fail),
    ("a/*.txt", "a/file.txt", Exact),
    ("a/*.txt**", "a/file.txt", Exact),
    ("a[b-d]e", "ae", Fail),
    ("a[b-d]e", "ace", Exact),
    ("a[b-d]e", "aae", Fail),
    ("a[^b-d]e", "aze", Exact),
    (".*", ".foo", Exact),
    (".*", "foo", Fail),
    ("abc.def", "abcdef", Fail),
    ("abc.def", "abc.def", Exact),
    ("abc.def", "abcZdef", Fail),
    ("abc?def", "abcZdef", Exact),
    ("abc?def", "abcdef", Fail),
    ("**/foo/bar", "foo/bar", Exact),
    ("**/foo/bar", "dir/foo/bar", Exact),
    ("**/foo/bar", "dir/dir2/foo/bar", Exact),
    ("abc/**", "abc", Fail),
    ("abc/**", "abc/def", Exact),
    ("abc/**", "abc/def/ghi", Exact),
    ("**/.foo", ".foo", Exact),
    ("**/.foo", "bar.foo", Fail),
    ("a(b)c/def", "a(b)c/def", Exact),
    ("a(b)c/def", "a(b)c/xyz", Fail),
    ("a.|)$(}+{bc", "a.|)$(}+{bc", Exact),
    (
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        Exact,
    ),
    (
        "dist/*.whl",
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        Exact,
    ),
    ("a\\\\", "a\\", Exact),
    ("a\\*b", "a*b", Exact),
];

#[test]
fn moby_table_exact_and_parent_matches() {
    for (pattern, text, want) in TABLE {
        let pat = Pattern::new(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"));
        // MatchesExact: the pattern itself, no parent directories (texts are used as is).
        assert_eq!(
            pat.matches(text),
            *want == Exact,
            "exact: pattern={pattern:?} text={text:?}"
        );
        // MatchesOrParentMatches: the directory rule.
        let ign = DockerIgnore::new(&[*pattern]).unwrap();
        let text_clean = go_clean(text);
        let parent = go_dir(text);
        let dirs: Vec<&str> = parent.split('/').collect();
        let mut got = pat.matches(text);
        if !got && parent != "." {
            got = (0..dirs.len()).any(|i| pat.matches(&dirs[..=i].join("/")));
        }
        assert_eq!(
            got,
            *want != Fail,
            "parent: pattern={pattern:?} text={text:?}"
        );
        if text_clean == *text {
            assert_eq!(
                ign.matches(text),
                *want != Fail,
                "matcher: pattern={pattern:?} text={text:?}"
            );
        }
    }
}

#[test]
fn moby_multi_pattern_table() {
    let cases: &[(&[&str], &str, bool)] = &[
        (&["**", "!util/docker/web"], "util/docker/web/foo", false),
        (
            &["**", "!util/docker/web", "util/docker/web/foo"],
            "util/docker/web/foo",
            true,
        ),
        (
            &[
                "**",
                "!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            ],
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            false,
        ),
        (
            &["**", "!dist/*.whl"],
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            false,
        ),
    ];
    for (patterns, text, want) in cases {
        assert_eq!(m(text, patterns).unwrap(), *want, "{patterns:?} {text}");
    }
}

/// Go's Match table as moby runs it through `Matches` (one pattern each).
#[test]
fn go_match_table_through_matcher() {
    let cases: &[(&str, &str, Option<bool>)] = &[
        ("abc", "abc", Some(true)),
        ("*", "abc", Some(true)),
        ("*c", "abc", Some(true)),
        ("a*", "a", Some(true)),
        ("a*", "abc", Some(true)),
        ("a*", "ab/c", Some(true)),
        ("a*/b", "abc/b", Some(true)),
        ("a*/b", "a/c/b", Some(false)),
        ("a*b*c*d*e*/f", "axbxcxdxe/f", Some(true)),
        ("a*b*c*d*e*/f", "axbxcxdxexxx/f", Some(true)),
        ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", Some(false)),
        ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", Some(false)),
        ("a*b?c*x", "abxbbxdbxebxczzx", Some(true)),
        ("a*b?c*x", "abxbbxdbxebxczzy", Some(false)),
        ("ab[c]", "abc", Some(true)),
        ("ab[b-d]", "abc", Some(true)),
        ("ab[e-g]", "abc", Some(false)),
        ("ab[^c]", "abc", Some(false)),
        ("ab[^b-d]", "abc", Some(false)),
        ("ab[^e-g]", "abc", Some(true)),
        ("a\\*b", "a*b", Some(true)),
        ("a\\*b", "ab", Some(false)),
        ("a?b", "a☺b", Some(true)),
        ("a[^a]b", "a☺b", Some(true)),
        ("a???b", "a☺b", Some(false)),
        ("a[^a][^a][^a]b", "a☺b", Some(false)),
        ("[a-ζ]*", "α", Some(true)),
        ("*[a-ζ]", "A", Some(false)),
        ("a?b", "a/b", Some(false)),
        ("a*b", "a/b", Some(false)),
        ("[\\]a]", "]", Some(true)),
        ("[\\-]", "-", Some(true)),
        ("[x\\-]", "x", Some(true)),
        ("[x\\-]", "-", Some(true)),
        ("[x\\-]", "z", Some(false)),
        ("[\\-x]", "x", Some(true)),
        ("[\\-x]", "-", Some(true)),
        ("[\\-x]", "a", Some(false)),
        ("[]a]", "]", None),
        ("[-]", "-", None),
        ("[x-]", "x", None),
        ("[x-]", "-", None),
        ("[x-]", "z", None),
        ("[-x]", "x", None),
        ("[-x]", "-", None),
        ("[-x]", "a", None),
        ("\\", "a", None),
        ("[a-b-c]", "a", None),
        ("[", "a", None),
        ("[^", "a", None),
        ("[^bc", "a", None),
        ("a[", "a", None),
        ("a[", "ab", None),
        ("*x", "xxx", Some(true)),
    ];
    for (pattern, text, want) in cases {
        assert_eq!(
            m(text, &[pattern]).ok(),
            *want,
            "pattern={pattern:?} text={text:?}"
        );
    }
}

#[test]
fn moby_compile_kinds() {
    let kind = |p: &str| format!("{:?}", Pattern::new(p).unwrap().kind_name());
    assert_eq!(kind("**"), "\"suffix\"");
    assert_eq!(kind("dir/**"), "\"prefix\"");
    assert_eq!(kind("**/dir"), "\"suffix\"");
    assert_eq!(kind("**file"), "\"suffix\"");
    assert_eq!(kind("**/foo/bar"), "\"suffix\"");
    assert_eq!(kind("abc.def"), "\"exact\"");
    assert_eq!(kind("a(b)c/def"), "\"exact\"");
    assert_eq!(kind("a.|)$(}+{bc"), "\"exact\"");
    assert_eq!(kind("*"), "\"regex ^[^/]*$\"");
    assert_eq!(kind("a*/b"), "\"regex ^a[^/]*/b$\"");
    assert_eq!(kind("**/**"), "\"regex ^(.*/)?.*$\"");
    assert_eq!(kind("**/dir2/*"), "\"regex ^(.*/)?dir2/[^/]*$\"");
    assert_eq!(kind("**/**/*.txt"), "\"regex ^(.*/)?(.*/)?[^/]*\\\\.txt$\"");
    assert_eq!(kind("a[b-d]e"), "\"regex ^a[b-d]e$\"");
    assert_eq!(kind("abc?def"), "\"regex ^abc[^/]def$\"");
}

#[test]
fn bad_regex_class_is_an_error_not_a_panic() {
    // Passes Go's Match check but the range is reversed: moby errors at match time, we at once.
    assert!(DockerIgnore::new(&["[Local-Only]/"]).is_err());
}

#[test]
fn read_all_like_moby() {
    let content =
        "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n!\n! ";
    assert_eq!(
        read_patterns(content.as_bytes()),
        [
            "test1",
            "test2",
            "a/file/here",
            "lastfile",
            "!inverted/abs/path",
            "!",
            "!"
        ]
    );
    assert_eq!(
        read_patterns(b"\xef\xbb\xbf./a\r\n  b/  \n/\n"),
        ["a", "b", "/"]
    );
}

#[test]
fn build_files_always_kept() {
    let ign = DockerIgnore::for_context(b"*\n", "Dockerfile").unwrap();
    assert!(!ign.matches("Dockerfile"));
    assert!(!ign.matches(".dockerignore"));
    assert!(ign.matches("src/main.rs"));
    let ign = DockerIgnore::for_context(b"build\n", "./build/Dockerfile.dev").unwrap();
    assert!(!ign.matches("build/Dockerfile.dev"));
    assert!(ign.matches("build/other"));
}
