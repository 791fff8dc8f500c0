//! Fuzz target: parsing a Dockerfile and expanding its words never panics,
//! never overflows the stack, and the one-word and split expansions agree.
//!
//! The first byte picks the lexer options; the rest is both a Dockerfile and
//! a single word.
#![no_main]

use buildr_parser::{Args, Lexer, Node, parse, parse_ast};
use libfuzzer_sys::fuzz_target;

const ENV: [(&str, &str); 4] = [
    ("FOO", "xxyy"),
    ("EMPTY", ""),
    ("SP", " a  b "),
    ("PAT", "*?\\"),
];

fn expand(lexer: &Lexer, word: &str) {
    let one = lexer.process_word(word, &ENV);
    let many = lexer.process_words(word, &ENV);
    assert_eq!(
        one.is_ok(),
        many.is_ok(),
        "word and words disagree on {word:?}"
    );
}

fn expand_node(lexer: &Lexer, node: &Node) {
    match &node.args {
        Args::Words { words, .. } => words.iter().for_each(|w| expand(lexer, w)),
        Args::Pairs(pairs) => {
            for pair in pairs {
                expand(lexer, &pair.key);
                if let Some(value) = &pair.value {
                    expand(lexer, value);
                }
            }
        }
        Args::Nested(inner) => expand_node(lexer, inner),
    }
    for value in node.flags.iter().filter_map(|f| f.value.as_deref()) {
        expand(lexer, value);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&options, rest)) = data.split_first() else {
        return;
    };
    let escape = if options & 1 == 0 { '\\' } else { '`' };
    let lexer = Lexer::new(escape)
        .raw_quotes(options & 2 != 0)
        .raw_escapes(options & 4 != 0)
        .skip_process_quotes(options & 8 != 0)
        .skip_unset_env(options & 16 != 0);
    expand(&lexer, &String::from_utf8_lossy(rest));

    let typed = parse("Dockerfile", rest);
    match parse_ast("Dockerfile", rest) {
        Ok(ast) => {
            let lexer = Lexer::new(ast.directives.escape);
            ast.nodes.iter().for_each(|node| expand_node(&lexer, node));
        }
        Err(_) => assert!(typed.is_err(), "parse_ast failed but parse succeeded"),
    }
});
