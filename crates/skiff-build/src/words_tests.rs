use super::*;

#[test]
fn builder_flags() {
    let (rest, flags) = extract_builder_flags("--from=build --chown=\"a b\" src dest");
    assert_eq!(flags, ["--from=build", "--chown=a b"]);
    assert_eq!(rest, "src dest");
    let (rest, flags) = extract_builder_flags("-- --notaflag x");
    assert!(flags.is_empty());
    assert_eq!(rest.trim(), "--notaflag x");
    let (rest, flags) = extract_builder_flags("--link");
    assert_eq!(
        (rest.as_str(), flags.as_slice()),
        ("", &["--link".to_string()][..])
    );
    let (rest, flags) = extract_builder_flags("-x --y");
    assert_eq!((rest.as_str(), flags.len()), ("-x --y", 0));
    let (_, flags) = extract_builder_flags("--a\\ b=c d");
    assert_eq!(flags, ["--a b=c"]);
}

#[test]
fn split_commands() {
    assert_eq!(
        split_command("  run   --mount=type=cache,target=/x   echo hi  "),
        (
            "run".into(),
            vec!["--mount=type=cache,target=/x".to_string()],
            "echo hi".into()
        )
    );
    assert_eq!(
        split_command("FROM"),
        ("FROM".into(), vec![], String::new())
    );
    assert_eq!(
        split_command("CMD\t[\"a\"]"),
        ("CMD".into(), vec![], "[\"a\"]".into())
    );
}

#[test]
fn json_forms() {
    assert_eq!(
        parse_json(r#"["a", "b c"]"#),
        Json::Array(vec!["a".into(), "b c".into()])
    );
    assert_eq!(
        parse_json(r#"  ["a"] trailing"#),
        Json::Array(vec!["a".into()])
    );
    assert_eq!(parse_json(r#"[]"#), Json::Array(vec![]));
    assert_eq!(parse_json(r#"["a", 1]"#), Json::NotStrings);
    assert_eq!(parse_json(r#"[not json"#), Json::NotJson);
    assert_eq!(parse_json(r#"echo ["a"]"#), Json::NotJson);
    assert_eq!(parse_json(r#"{"a":1}"#), Json::NotJson);
}

#[test]
fn words_keep_quotes() {
    assert_eq!(
        parse_words(r#"a="b c" d='e f' g\ h"#, '\\'),
        [r#"a="b c""#, "d='e f'", r"g\ h"]
    );
    assert_eq!(parse_words(r#"a="x\"y""#, '\\'), [r#"a="x\"y""#]);
    assert_eq!(parse_words("a `` b", '`'), ["a", "``", "b"]);
    assert_eq!(parse_words("   ", '\\'), Vec::<String>::new());
    assert_eq!(parse_words("a \"\" b", '\\'), ["a", "\"\"", "b"]);
}

#[test]
fn env_forms() {
    assert_eq!(
        parse_name_val("A=1 B=\"two words\"", "ENV", '\\').unwrap(),
        [
            ("A".into(), "1".into()),
            ("B".into(), "\"two words\"".into())
        ]
    );
    assert_eq!(
        parse_name_val("KEY the  value", "ENV", '\\').unwrap(),
        [("KEY".to_string(), "the  value".to_string())]
    );
    assert_eq!(
        parse_name_val("KEY", "ENV", '\\').unwrap_err(),
        "ENV must have two arguments"
    );
    assert_eq!(
        parse_name_val("A=1 B", "LABEL", '\\').unwrap_err(),
        "Syntax error - can't find = in \"B\". Must be of the form: name=value"
    );
}

#[test]
fn go_whitespace_split() {
    assert_eq!(split_whitespace_go("a  b\tc"), ["a", "b", "c"]);
    assert_eq!(split_whitespace_go(""), Vec::<String>::new());
    assert_eq!(split_whitespace_go("'a b' c"), ["'a", "b'", "c"]);
}
