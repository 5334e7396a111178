//! BuildKit's `envVarTest` and `wordsTest` tables (ported).

use std::collections::BTreeMap;

use super::*;

fn env() -> BTreeMap<String, String> {
    [
        ("PWD", "/home"),
        ("SHELL", "bash"),
        ("KOREAN", "한국어"),
        ("NULL", ""),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

const TABLE: &[(&str, Option<&str>)] = &[
    ("hello", Some("hello")),
    ("he'll'o", Some("hello")),
    ("he'llo", None),
    ("he\\'llo", Some("he'llo")),
    ("he\\\\'llo", None),
    ("abc\\tdef", Some("abctdef")),
    ("\"abc\\tdef\"", Some("abc\\tdef")),
    ("\"abc\\\\tdef\"", Some("abc\\tdef")),
    ("'abc\\tdef'", Some("abc\\tdef")),
    ("hello\\", Some("hello")),
    ("hello\\\\", Some("hello\\")),
    ("\"hello", None),
    ("\"hello\\\"", None),
    ("\"hel'lo\"", Some("hel'lo")),
    ("'hello", None),
    ("'hello\\'", Some("hello\\")),
    ("'hello\\there'", Some("hello\\there")),
    ("'hello\\\\there'", Some("hello\\\\there")),
    ("\"''\"", Some("''")),
    ("$.", Some("$.")),
    ("he$1x", Some("hex")),
    ("he$.x", Some("he$.x")),
    ("he$pwd.", Some("he.")),
    ("he$PWD", Some("he/home")),
    ("he\\$PWD", Some("he$PWD")),
    ("he\\\\$PWD", Some("he\\/home")),
    ("\"he\\$PWD\"", Some("he$PWD")),
    ("\"he\\\\$PWD\"", Some("he\\/home")),
    ("\\${}", Some("${}")),
    ("\\${}aaa", Some("${}aaa")),
    ("he\\${}", Some("he${}")),
    ("${}", None),
    ("${}aaa", None),
    ("he${}xx", None),
    ("he${hi}", Some("he")),
    ("he${hi}xx", Some("hexx")),
    ("he${PWD}", Some("he/home")),
    ("he${.}", None),
    ("he${XXX:-000}xx", Some("he000xx")),
    ("he${PWD:-000}xx", Some("he/homexx")),
    ("he${XXX:-$PWD}xx", Some("he/homexx")),
    ("he${XXX:-${PWD:-yyy}}xx", Some("he/homexx")),
    ("he${XXX:-${YYY:-yyy}}xx", Some("heyyyxx")),
    ("he${XXX:YYY}", None),
    ("he${XXX?}", None),
    ("he${XXX:?}", None),
    ("he${PWD?}", Some("he/home")),
    ("he${PWD:?}", Some("he/home")),
    ("he${NULL?}", Some("he")),
    ("he${NULL:?}", None),
    ("he${XXX:+${PWD}}xx", Some("hexx")),
    ("he${PWD:+${XXX}}xx", Some("hexx")),
    ("he${PWD:+${SHELL}}xx", Some("hebashxx")),
    ("he${XXX:+000}xx", Some("hexx")),
    ("he${PWD:+000}xx", Some("he000xx")),
    ("he${NULL-d}x", Some("hex")),
    ("he${NULL:-d}x", Some("hedx")),
    ("he${NULL+a}x", Some("heax")),
    ("he${NULL:+a}x", Some("hex")),
    ("he${XXX-d}x", Some("hedx")),
    ("he${XXX+a}x", Some("hex")),
    ("'he${XX}'", Some("he${XX}")),
    ("\"he${PWD}\"", Some("he/home")),
    ("\"he'$PWD'\"", Some("he'/home'")),
    ("\"$PWD\"", Some("/home")),
    ("'$PWD'", Some("$PWD")),
    ("'\\$PWD'", Some("\\$PWD")),
    ("'\"hello\"'", Some("\"hello\"")),
    ("he${PWD", None),
    ("he${PWD:=000}xx", None),
    ("he${PWD:+${PWD}:}xx", Some("he/home:xx")),
    ("he${XXX:-\\$PWD:}xx", Some("he$PWD:xx")),
    ("he${XXX:-\\${PWD}z}xx", Some("he${PWDz}xx")),
    ("안녕하세요", Some("안녕하세요")),
    ("안'녕'하세요", Some("안녕하세요")),
    ("안녕$PWD", Some("안녕/home")),
    ("$KOREAN", Some("한국어")),
    ("안녕$KOREAN", Some("안녕한국어")),
    ("${{aaa}", None),
    ("${aaa}}", Some("}")),
    ("${aaa", None),
    ("${{aaa", None),
    ("${{aaa}}", None),
    ("${aaa}}}", Some("}}")),
    ("${PWD#/h}", Some("ome")),
    ("${PWD#*o}", Some("me")),
    ("${PWD##*o}", Some("me")),
    ("${SHELL%?h}", Some("ba")),
    ("${SHELL%%a*}", Some("b")),
    ("${SHELL%a*}", Some("b")),
    ("${PWD/o/0}", Some("/h0me")),
    ("${SHELL//a/A}", Some("bAsh")),
    ("${XXX//a/A}", Some("")),
];

#[test]
fn buildkit_env_var_table() {
    let lex = Lex::new('\\');
    let e = env();
    for (input, want) in TABLE {
        let got = lex.process_word(input, &e);
        match want {
            Some(w) => assert_eq!(got.as_deref(), Ok(*w), "input {input:?}"),
            None => assert!(got.is_err(), "input {input:?} should fail, got {got:?}"),
        }
    }
}

#[test]
fn buildkit_words_table() {
    let lex = Lex::new('\\');
    let mut e: BTreeMap<String, String> = BTreeMap::new();
    e.insert("hi".into(), "hi".into());
    e.insert("space".into(), "abc  def".into());
    e.insert("leading".into(), "  ab c".into());
    e.insert("trailing".into(), "ab c   ".into());
    let cases: &[(&str, Option<&[&str]>)] = &[
        ("hello", Some(&["hello"])),
        ("hello${hi}bye", Some(&["hellohibye"])),
        ("hello${space}bye", Some(&["helloabc", "defbye"])),
        ("hello\"${space}\"bye", Some(&["helloabc  defbye"])),
        ("hello \"${space}\"bye", Some(&["hello", "abc  defbye"])),
        ("hello${leading}def", Some(&["hello", "ab", "cdef"])),
        ("hello\"${leading}\" def", Some(&["hello  ab c", "def"])),
        ("hello${leading}", Some(&["hello", "ab", "c"])),
        ("hello${trailing}", Some(&["helloab", "c"])),
        ("hello${trailing}d", Some(&["helloab", "c", "d"])),
        ("hello\"${trailing}\"d", Some(&["helloab c   d"])),
        ("hel\"lo${trailing}\"", Some(&["helloab c   "])),
        ("hello\" there  \"", Some(&["hello there  "])),
        ("hello there     ", Some(&["hello", "there"])),
        ("hello\\ there", Some(&["hello there"])),
        ("hello\" there", None),
        ("hello\\\" there", Some(&["hello\"", "there"])),
        ("hello\"\\\\there\"", Some(&["hello\\there"])),
        ("hello\"\\there\"", Some(&["hello\\there"])),
        ("hello'\\\\there'", Some(&["hello\\\\there"])),
        ("hello'\\there'", Some(&["hello\\there"])),
        ("hello'$there'", Some(&["hello$there"])),
    ];
    for (input, want) in cases {
        let got = lex.process_words(input, &e);
        match want {
            Some(w) => assert_eq!(got.unwrap(), *w, "input {input:?}"),
            None => assert!(got.is_err(), "input {input:?}"),
        }
    }
}

#[test]
fn backtick_escape_and_tracking() {
    let lex = Lex::new('`');
    let e = env();
    assert_eq!(lex.process_word("a`$PWD b\\c", &e).unwrap(), "a$PWD b\\c");
    let p = lex.process("$PWD ${NOPE:-x} $SHELL", &e).unwrap();
    assert_eq!(p.matched.iter().collect::<Vec<_>>(), ["PWD", "SHELL"]);
    assert_eq!(p.unmatched.iter().collect::<Vec<_>>(), ["NOPE"]);
}

#[test]
fn skip_unset_keeps_references() {
    let mut lex = Lex::new('\\');
    lex.skip_unset_env = true;
    let e = env();
    assert_eq!(
        lex.process_word("$A ${B} ${C:-x} $PWD", &e).unwrap(),
        "$A ${B} ${C:-x} /home"
    );
}

#[test]
fn errors_name_the_word() {
    let err = Lex::new('\\').process_word("a${b", &NoVars).unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to process \"a${b\": syntax error: missing '}'"
    );
    let err = Lex::new('\\')
        .process_word("${X:?must be set}", &NoVars)
        .unwrap_err();
    assert_eq!(err.message, "X: must be set");
}
