//! Fuzz target: the word expander alone (`Lexer`), with variables taken
//! from the input, so values can hold quotes, `$`, escapes and globs too.
//!
//! Layout: the first byte picks the lexer options; the rest up to the first
//! NUL is the word; each later NUL-separated chunk is `NAME=VALUE` (a chunk
//! without `=` names a set-but-empty variable). Nothing may panic or
//! overflow the stack; the one-word and split expansions must agree on
//! success; expanding a word without `$`, quotes, escapes, whitespace or
//! a leading BOM is the identity.
#![no_main]

use buildr_parser::Lexer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&options, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let mut chunks = text.split('\0');
    let word = chunks.next().unwrap_or("");
    let env: Vec<(String, String)> = chunks
        .map(|c| match c.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (c.to_owned(), String::new()),
        })
        .collect();
    let escape = if options & 1 == 0 { '\\' } else { '`' };
    let lexer = Lexer::new(escape)
        .raw_quotes(options & 2 != 0)
        .raw_escapes(options & 4 != 0)
        .skip_process_quotes(options & 8 != 0)
        .skip_unset_env(options & 16 != 0);
    let one = lexer.process_word(word, &env);
    let many = lexer.process_words(word, &env);
    assert_eq!(
        one.is_ok(),
        many.is_ok(),
        "word and words disagree on {word:?} with {env:?}: {one:?} / {many:?}"
    );
    // Go's text/scanner (under BuildKit's lexer) drops a leading BOM.
    let plain = !word.starts_with('\u{feff}')
        && !word
            .chars()
            .any(|c| matches!(c, '$' | '\'' | '"' | '\\' | '`') || c.is_whitespace());
    if plain && let Ok(result) = &one {
        assert_eq!(result.value, word, "plain word changed by expansion");
    }
});
