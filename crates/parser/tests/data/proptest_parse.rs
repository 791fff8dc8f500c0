//! Property tests: parsing and word expansion never panic, whatever the
//! input, and agree with themselves.
//!
//! Inputs are arbitrary bytes and strings, and Dockerfile-shaped text built
//! from keywords, flags, quotes, escapes, heredocs and continuations, so the
//! interesting code paths are reached far more often than by random bytes.

use buildr_parser::{Args, Ast, ExpandErrorKind, Lexer, MAX_DEPTH, Node, parse, parse_ast};
use proptest::prelude::*;

const ENV: [(&str, &str); 5] = [
    ("FOO", "xxyy"),
    ("EMPTY", ""),
    ("SP", " a  b "),
    ("STAR", "a*b?"),
    ("DOLLAR", "$0${x}"),
];

/// Pieces of shell words, weighted towards the special ones.
fn word_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-zA-Z0-9_./=,:@-]{1,6}",
        1 => Just("$".to_string()),
        1 => Just("${".to_string()),
        1 => Just("}".to_string()),
        1 => prop::sample::select(vec![
            "$FOO", "${FOO}", "${NOPE}", "$EMPTY", "${SP}", "$1", "$@", "$$",
        ])
        .prop_map(str::to_string),
        2 => prop::sample::select(vec![
            ":-", "-", ":+", "+", ":?", "?", "#", "##", "%", "%%", "/", "//", ":=", ":#", ":",
        ])
        .prop_map(|op| format!("${{FOO{op}")),
        2 => prop::sample::select(vec![
            "'", "\"", "\\", "`", " ", "\t", "\n", "*", "?", "[", "]", "<<", "<", "\\}", "\\/", "\\*",
            "\u{feff}", "é", "한", "\u{a0}",
        ])
        .prop_map(str::to_string),
    ]
}

fn shell_word() -> impl Strategy<Value = String> {
    prop::collection::vec(word_piece(), 0..16).prop_map(|pieces| pieces.concat())
}

fn lexers() -> impl Strategy<Value = Lexer> {
    (
        prop::sample::select(vec!['\\', '`']),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(escape, raw_quotes, raw_escapes, skip_quotes, skip_unset)| {
                Lexer::new(escape)
                    .raw_quotes(raw_quotes)
                    .raw_escapes(raw_escapes)
                    .skip_process_quotes(skip_quotes)
                    .skip_unset_env(skip_unset)
            },
        )
}

/// One Dockerfile line (or a few, for heredocs and continuations).
fn dockerfile_line() -> impl Strategy<Value = String> {
    let keyword = prop::sample::select(vec![
        "FROM",
        "from",
        "RUN",
        "Run",
        "CMD",
        "ENTRYPOINT",
        "COPY",
        "ADD",
        "ENV",
        "ARG",
        "LABEL",
        "EXPOSE",
        "WORKDIR",
        "USER",
        "VOLUME",
        "SHELL",
        "STOPSIGNAL",
        "HEALTHCHECK",
        "ONBUILD",
        "MAINTAINER",
        "BOGUS",
        "",
    ]);
    let flag = prop::sample::select(vec![
        "--from=build",
        "--mount=type=cache,target=/root/.cache",
        "--mount=type=secret,id=x",
        "--mount=type=bind,source=.,target=/src,rw",
        "--network=none",
        "--security=insecure",
        "--chmod=755",
        "--chown=1:1",
        "--link",
        "--platform=$BUILDPLATFORM",
        "--interval=5s",
        "--retries=3",
        "--bogus",
        "--",
        "--=",
        "--mount=",
        "--mount=type=tmpfs,size=1x",
    ]);
    let arg = prop_oneof![
        4 => shell_word(),
        1 => prop::collection::vec(r#"[a-z "\\$]{0,6}"#, 0..4)
            .prop_map(|items| format!("[{}]", items.iter().map(|i| format!("{i:?}")).collect::<Vec<_>>().join(", "))),
        1 => "[a-zA-Z_]{1,5}=[a-zA-Z0-9 \"']{0,8}",
        1 => "[A-Z]{1,4}".prop_map(|tag| format!("<<{tag}\nbody $FOO\n\tmore\n{tag}")),
        1 => "[A-Z]{1,4}".prop_map(|tag| format!("<<-\"{tag}\" cat\n\tx\n\t{tag}")),
        1 => Just("\\\n".to_string()),
        1 => Just("`\n".to_string()),
        1 => Just("\\\n# comment inside\n".to_string()),
        1 => Just("\\\n\n".to_string()),
        1 => Just("AS stage".to_string()),
    ];
    let instruction = (
        keyword,
        prop::collection::vec(flag, 0..3),
        prop::collection::vec(arg, 0..5),
        prop::sample::select(vec![" ", "\t", "  "]),
    )
        .prop_map(|(keyword, flags, args, sep)| {
            let mut line = keyword.to_string();
            for part in flags.iter().copied().map(str::to_string).chain(args) {
                line.push_str(sep);
                line.push_str(&part);
            }
            line
        });
    prop_oneof![
        8 => instruction,
        1 => prop::sample::select(vec![
            "# syntax=docker/dockerfile:1", "# escape=`", "# escape=\\", "# check=skip=all",
            "#escape=x", "# comment", "", "   ", "\r", "\u{feff}FROM x",
        ])
        .prop_map(str::to_string),
    ]
}

fn dockerfile() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(dockerfile_line(), 0..24),
        prop::sample::select(vec!["\n", "\r\n"]),
    )
        .prop_map(|(lines, eol)| lines.join(eol))
}

/// A file that mostly makes sense: stages, common instructions, simple words,
/// so the typed layer and the expander see valid input as well.
fn plausible_dockerfile() -> impl Strategy<Value = String> {
    let simple = "[a-z0-9_./-]{1,8}|\\$[A-Z]{1,3}|\\$\\{[A-Z]{1,3}:-[a-z]{0,3}\\}|\"[a-z $]{0,6}\"";
    let line = (
        prop::sample::select(vec![
            "RUN {}",
            "RUN --mount=type=cache,target=/root/.cache {}",
            "RUN [\"sh\", \"-c\", \"{}\"]",
            "COPY {} /dst/",
            "COPY --from=base {} /x",
            "ADD --chmod=644 {} /y",
            "ENV K={1}",
            "ENV K {}",
            "ARG A={1}",
            "LABEL l={1}",
            "WORKDIR /{1}",
            "USER {1}",
            "EXPOSE 80/tcp",
            "CMD {}",
            "ENTRYPOINT [\"/bin/{1}\"]",
            "HEALTHCHECK --interval=5s CMD {}",
            "ONBUILD RUN {}",
            "RUN <<EOF\n{}\nEOF",
            "RUN echo {} \\\n  && echo done",
            "SHELL [\"/bin/sh\", \"-c\"]",
            "STOPSIGNAL SIGTERM",
            "VOLUME /{1}",
            "FROM {1} AS s2",
        ]),
        prop::collection::vec(simple, 1..4),
    )
        // `{1}` takes one word, `{}` all of them.
        .prop_map(|(template, words)| {
            template
                .replace("{1}", &words[0])
                .replace("{}", &words.join(" "))
        });
    (prop::collection::vec(line, 0..30), any::<bool>()).prop_map(|(lines, arg)| {
        let head = if arg {
            "ARG BASE=alpine\nFROM ${BASE} AS base"
        } else {
            "FROM alpine:3 AS base"
        };
        format!("{head}\n{}\n", lines.join("\n"))
    })
}

/// Expands every word of a node with the file's escape character.
fn expand_node(lexer: &Lexer, node: &Node) {
    let words: Vec<&str> = match &node.args {
        Args::Words { words, .. } => words.iter().map(String::as_str).collect(),
        Args::Pairs(pairs) => pairs
            .iter()
            .flat_map(|p| [Some(p.key.as_str()), p.value.as_deref()])
            .flatten()
            .collect(),
        Args::Nested(inner) => return expand_node(lexer, inner),
    };
    for word in words
        .into_iter()
        .chain(node.flags.iter().filter_map(|f| f.value.as_deref()))
    {
        let one = lexer.process_word(word, &ENV);
        let many = lexer.process_words(word, &ENV);
        assert_eq!(one.is_ok(), many.is_ok(), "{word:?}");
    }
}

/// Parses `source` both ways and expands every word: nothing may panic, and
/// the typed parse fails whenever the raw one does.
fn parse_and_expand(source: &[u8]) -> Result<(), TestCaseError> {
    let ast: Result<Ast, _> = parse_ast("Dockerfile", source);
    let typed = parse("Dockerfile", source);
    match ast {
        Ok(ast) => {
            let lexer = Lexer::new(ast.directives.escape);
            for node in &ast.nodes {
                expand_node(&lexer, node);
            }
        }
        Err(e) => {
            prop_assert!(typed.is_err(), "parse_ast failed ({e}) but parse succeeded");
            prop_assert!(!e.to_string().is_empty());
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn parse_never_panics_on_arbitrary_bytes(source in prop::collection::vec(any::<u8>(), 0..512)) {
        parse_and_expand(&source)?;
    }

    #[test]
    fn parse_never_panics_on_dockerfile_text(source in dockerfile()) {
        parse_and_expand(source.as_bytes())?;
    }

    #[test]
    fn parse_never_panics_on_plausible_dockerfiles(source in plausible_dockerfile()) {
        parse_and_expand(source.as_bytes())?;
    }

    #[test]
    fn parse_never_panics_on_mangled_dockerfiles(
        source in dockerfile(),
        cuts in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
    ) {
        // Flip a few bytes of a well-shaped file: invalid UTF-8, broken quotes.
        let mut bytes = source.into_bytes();
        for (at, byte) in cuts {
            if !bytes.is_empty() {
                let at = at.index(bytes.len());
                bytes[at] = byte;
            }
        }
        parse_and_expand(&bytes)?;
    }

    #[test]
    fn expand_never_panics_on_arbitrary_text(word in any::<String>(), lexer in lexers()) {
        let one = lexer.process_word(&word, &ENV);
        let many = lexer.process_words(&word, &ENV);
        prop_assert_eq!(one.is_ok(), many.is_ok());
    }

    #[test]
    fn expand_never_panics_on_shell_words(word in shell_word(), lexer in lexers()) {
        let one = lexer.process_word(&word, &ENV);
        let many = lexer.process_words(&word, &ENV);
        prop_assert_eq!(one.is_ok(), many.is_ok());
        if let Err(e) = one {
            prop_assert!(e.offset <= word.len(), "offset {} past the word {:?}", e.offset, word);
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn plain_words_expand_to_themselves(word in "[a-zA-Z0-9_./=,:@+-]{0,40}") {
        let lexer = Lexer::new('\\');
        prop_assert_eq!(lexer.process_word(&word, &ENV).unwrap().value, word.clone());
        let words = lexer.process_words(&word, &ENV).unwrap();
        let want: Vec<String> = if word.is_empty() { vec![] } else { vec![word] };
        prop_assert_eq!(words, want);
    }

    #[test]
    fn single_quotes_keep_everything(text in "[^']{0,40}") {
        let lexer = Lexer::new('\\');
        let quoted = format!("'{text}'");
        prop_assert_eq!(lexer.process_word(&quoted, &ENV).unwrap().value, text);
    }

    #[test]
    fn default_of_unset_is_the_word(text in "[a-zA-Z0-9_./=,:@ ]{0,40}") {
        let lexer = Lexer::new('\\');
        let word = format!("${{NOPE:-{text}}}");
        prop_assert_eq!(lexer.process_word(&word, &ENV).unwrap().value, text);
    }

    #[test]
    fn nesting_is_bounded(depth in 0usize..200) {
        let word = "${a:-".repeat(depth) + "x" + &"}".repeat(depth);
        let got = Lexer::new('\\').process_word(&word, &ENV);
        if depth <= MAX_DEPTH {
            prop_assert_eq!(got.unwrap().value, "x");
        } else {
            prop_assert_eq!(got.unwrap_err().kind, ExpandErrorKind::TooDeep { limit: MAX_DEPTH });
        }
    }
}

/// The generator must reach the success paths too, not only the errors.
#[test]
fn generated_dockerfiles_often_parse() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut ok, mut typed_ok, total) = (0, 0, 500);
    for i in 0..total {
        let source = if i % 2 == 0 {
            dockerfile().new_tree(&mut runner).unwrap().current()
        } else {
            plausible_dockerfile()
                .new_tree(&mut runner)
                .unwrap()
                .current()
        };
        ok += usize::from(parse_ast("Dockerfile", source.as_bytes()).is_ok());
        typed_ok += usize::from(parse("Dockerfile", source.as_bytes()).is_ok());
    }
    eprintln!("generated: {ok}/{total} parse_ast ok, {typed_ok}/{total} parse ok");
    assert!(ok * 10 >= total, "only {ok}/{total} generated files parse");
    assert!(
        typed_ok * 5 >= total,
        "only {typed_ok}/{total} generated files pass the typed parse"
    );
}
