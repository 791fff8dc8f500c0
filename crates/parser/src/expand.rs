//! Word expansion, exactly as BuildKit's shell lexer
//! (`frontend/dockerfile/shell/lex.go`) does it: quotes, the escape
//! character, `$v`, `${v}` and the `${v<op>word}` forms, and word splitting.
//!
//! The lexer is a recursive-descent scanner over the word's characters. Nested
//! `${...}` forms recurse, so their depth is capped ([`MAX_DEPTH`]); every
//! other construct is handled in one pass, so time is linear in the word
//! (plus pattern matching for `#`, `%` and `/`, which is
//! `O(len(value) * len(pattern))`).
//!
//! One deliberate difference: BuildKit shares a single word buffer between
//! nested calls, so `ProcessWords("a${v:-b}")` loses the `a` and gives `[b]`;
//! [`Lexer::process_words`] gives `[ab]`, the same as the single word.

mod glob;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::BuildHasher;

use unicode_properties::{GeneralCategory, GeneralCategoryGroup, UnicodeGeneralCategory};

/// How deeply `${a:-${b:-...}}` forms may nest before expansion fails.
pub const MAX_DEPTH: usize = 64;

/// The longest a word may grow while it is expanded. BuildKit has no such
/// cap, but `${X//<empty>/${X//...}}` grows a word exponentially (a 312-byte
/// word reached 1.7 GB under the fuzzer before this limit), and repeated
/// `$BIG` multiplies a large value: past 16 MiB expansion fails instead.
pub const MAX_WORD_BYTES: usize = 16 << 20;

/// Variables a word is expanded against. The engine backs it with its own
/// maps; slices of pairs (the last pair of a name wins, as in BuildKit) and
/// maps are supported out of the box.
pub trait Env {
    /// The value of `name`, `None` when it is unset (set-but-empty is `Some("")`).
    fn get(&self, name: &str) -> Option<&str>;
}

impl<T: Env + ?Sized> Env for &T {
    fn get(&self, name: &str) -> Option<&str> {
        (**self).get(name)
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Env for [(K, V)] {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .rev()
            .find(|(key, _)| key.as_ref() == name)
            .map(|(_, value)| value.as_ref())
    }
}

impl<K: AsRef<str>, V: AsRef<str>, const N: usize> Env for [(K, V); N] {
    fn get(&self, name: &str) -> Option<&str> {
        Env::get(self.as_slice(), name)
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Env for Vec<(K, V)> {
    fn get(&self, name: &str) -> Option<&str> {
        Env::get(self.as_slice(), name)
    }
}

impl<V: AsRef<str>, S: BuildHasher> Env for HashMap<String, V, S> {
    fn get(&self, name: &str) -> Option<&str> {
        HashMap::get(self, name).map(AsRef::as_ref)
    }
}

impl<V: AsRef<str>> Env for BTreeMap<String, V> {
    fn get(&self, name: &str) -> Option<&str> {
        BTreeMap::get(self, name).map(AsRef::as_ref)
    }
}

/// The result of [`Lexer::process_word`]: the expanded word and the
/// variables it referred to (BuildKit's `ProcessWordWithMatches`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpandResult {
    /// The word with quotes removed and variables expanded.
    pub value: String,
    /// Names that were looked up and set.
    pub matched: BTreeSet<String>,
    /// Names that were looked up and unset.
    pub unmatched: BTreeSet<String>,
}

/// An expansion failure: what went wrong and the byte offset in the word of
/// the construct (quote, `$`) it concerns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} at byte {offset}")]
pub struct ExpandError {
    pub offset: usize,
    pub kind: ExpandErrorKind,
}

/// The forms of [`ExpandError`]; each one BuildKit rejects as well.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExpandErrorKind {
    #[error("unexpected end of statement while looking for matching single-quote")]
    UnterminatedSingleQuote,
    #[error("unexpected end of statement while looking for matching double-quote")]
    UnterminatedDoubleQuote,
    #[error("syntax error: missing '}}'")]
    MissingBrace,
    #[error("syntax error: missing '/' in ${{}}")]
    MissingSlash,
    /// `${}`, `${{x}`, `${:x}`.
    #[error("syntax error: bad substitution")]
    BadSubstitution,
    /// `${v=x}`, `${v:#x}`, `${v.}` ...
    #[error("unsupported modifier ({modifier}) in substitution")]
    UnsupportedModifier { modifier: String },
    /// `${v?msg}` on an unset or `${v:?msg}` on an unset or empty variable.
    #[error("{name}: {message}")]
    Required { name: String, message: String },
    #[error("invalid pattern ({pattern}) in substitution: {reason}")]
    InvalidPattern { pattern: String, reason: String },
    #[error("substitutions nested deeper than {limit} levels")]
    TooDeep { limit: usize },
    /// The expanded word would exceed [`MAX_WORD_BYTES`].
    #[error("expansion is longer than {limit} bytes")]
    TooLong { limit: usize },
}

/// BuildKit's shell lexer: expands one Dockerfile word.
///
/// ```
/// use buildr_parser::Lexer;
/// let env = [("PWD", "/home")];
/// let lexer = Lexer::new('\\');
/// assert_eq!(lexer.process_word("'$PWD'=${PWD:-x}", &env).unwrap().value, "$PWD=/home");
/// assert_eq!(lexer.process_words("a \"b c\" d", &env).unwrap(), ["a", "b c", "d"]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lexer {
    escape: char,
    raw_quotes: bool,
    raw_escapes: bool,
    skip_process_quotes: bool,
    skip_unset_env: bool,
}

impl Lexer {
    /// A lexer using `escape` (`\` or, after `# escape=`, a backtick).
    pub fn new(escape: char) -> Lexer {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_process_quotes: false,
            skip_unset_env: false,
        }
    }

    /// Keep quote characters in the output (BuildKit's `RawQuotes`).
    pub fn raw_quotes(mut self, on: bool) -> Lexer {
        self.raw_quotes = on;
        self
    }

    /// Keep escape characters in the output (BuildKit's `RawEscapes`).
    pub fn raw_escapes(mut self, on: bool) -> Lexer {
        self.raw_escapes = on;
        self
    }

    /// Treat quotes as ordinary characters (BuildKit's `SkipProcessQuotes`).
    pub fn skip_process_quotes(mut self, on: bool) -> Lexer {
        self.skip_process_quotes = on;
        self
    }

    /// Leave references to unset variables as written, `$v`, `${v:-w}`, ...,
    /// instead of expanding them (BuildKit's `SkipUnsetEnv`).
    pub fn skip_unset_env(mut self, on: bool) -> Lexer {
        self.skip_unset_env = on;
        self
    }

    /// The escape character.
    pub fn escape(&self) -> char {
        self.escape
    }

    /// Expands `word` as one word: quotes removed, whitespace kept.
    pub fn process_word(&self, word: &str, env: &dyn Env) -> Result<ExpandResult, ExpandError> {
        let mut state = State::new(self, word, env, true);
        let value = state.stop_on(None, self.raw_escapes, None)?;
        Ok(ExpandResult {
            value,
            matched: state.matched,
            unmatched: state.unmatched,
        })
    }

    /// Expands `word` and splits it into words at unquoted, unescaped
    /// whitespace, whitespace coming from variables included.
    pub fn process_words(&self, word: &str, env: &dyn Env) -> Result<Vec<String>, ExpandError> {
        let mut state = State::new(self, word, env, false);
        let mut words = Words::default();
        state.stop_on(None, self.raw_escapes, Some(&mut words))?;
        Ok(words.finish())
    }
}

/// The words of [`Lexer::process_words`] being built.
#[derive(Debug, Default)]
struct Words {
    words: Vec<String>,
    buf: String,
    in_word: bool,
}

impl Words {
    /// A character that splits words when it is whitespace.
    fn add_char(&mut self, c: char) {
        if !c.is_whitespace() {
            self.add_raw_char(c);
        } else if self.in_word && !self.buf.is_empty() {
            self.words.push(std::mem::take(&mut self.buf));
            self.in_word = false;
        }
    }

    fn add_raw_char(&mut self, c: char) {
        self.buf.push(c);
        self.in_word = true;
    }

    fn add_str(&mut self, s: &str) {
        for c in s.chars() {
            self.add_char(c);
        }
    }

    fn add_raw_str(&mut self, s: &str) {
        self.buf.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.buf.is_empty() {
            self.words.push(self.buf);
        }
        self.words
    }
}

/// One expansion in progress.
struct State<'a> {
    lexer: Lexer,
    src: &'a str,
    pos: usize,
    env: &'a dyn Env,
    raw_escapes: bool,
    depth: usize,
    capture: bool,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
}

impl<'a> State<'a> {
    fn new(lexer: &Lexer, src: &'a str, env: &'a dyn Env, capture: bool) -> State<'a> {
        // Go's text/scanner drops a byte-order mark at the very start.
        let pos = if src.starts_with('\u{feff}') {
            '\u{feff}'.len_utf8()
        } else {
            0
        };
        State {
            lexer: *lexer,
            src,
            pos,
            env,
            raw_escapes: lexer.raw_escapes,
            depth: 0,
            capture,
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn err(offset: usize, kind: ExpandErrorKind) -> ExpandError {
        ExpandError { offset, kind }
    }

    /// Appends an expansion to the word, within [`MAX_WORD_BYTES`].
    fn append(&self, result: &mut String, value: &str) -> Result<(), ExpandError> {
        if result.len().saturating_add(value.len()) > MAX_WORD_BYTES {
            return Err(Self::err(
                self.pos,
                ExpandErrorKind::TooLong {
                    limit: MAX_WORD_BYTES,
                },
            ));
        }
        result.push_str(value);
        Ok(())
    }

    /// Reads until `stop` (consumed) or the end of the word; `raw_escapes`
    /// keeps escape characters in the output while this runs.
    fn stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
        words: Option<&mut Words>,
    ) -> Result<String, ExpandError> {
        let saved = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let result = self.stop_on_inner(stop, words);
        self.raw_escapes = saved;
        result
    }

    fn stop_on_inner(
        &mut self,
        stop: Option<char>,
        mut words: Option<&mut Words>,
    ) -> Result<String, ExpandError> {
        let mut result = String::new();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                self.next();
                return Ok(result);
            }
            match c {
                '$' => {
                    let value = self.dollar()?;
                    self.append(&mut result, &value)?;
                    if let Some(words) = words.as_deref_mut() {
                        words.add_str(&value);
                    }
                }
                '<' => {
                    let value = self.possible_heredoc();
                    self.append(&mut result, &value)?;
                    if let Some(words) = words.as_deref_mut() {
                        words.add_raw_str(&value);
                    }
                }
                '\'' | '"' if !self.lexer.skip_process_quotes => {
                    let value = if c == '\'' {
                        self.single_quote()?
                    } else {
                        self.double_quote()?
                    };
                    self.append(&mut result, &value)?;
                    if let Some(words) = words.as_deref_mut() {
                        words.add_raw_str(&value);
                    }
                }
                _ => {
                    self.next();
                    if c != self.lexer.escape {
                        result.push(c);
                        if let Some(words) = words.as_deref_mut() {
                            words.add_char(c);
                        }
                        continue;
                    }
                    if self.raw_escapes {
                        result.push(c);
                        if let Some(words) = words.as_deref_mut() {
                            words.add_raw_char(c);
                        }
                    }
                    // The escape escapes the next character; at the end it vanishes.
                    let Some(escaped) = self.next() else {
                        break;
                    };
                    result.push(escaped);
                    if let Some(words) = words.as_deref_mut() {
                        words.add_raw_char(escaped);
                    }
                }
            }
        }
        if stop.is_some() {
            // Callers turn this into their own "missing" error.
            return Err(Self::err(self.pos, ExpandErrorKind::MissingBrace));
        }
        Ok(result)
    }

    /// `'...'`: everything literal up to the next single quote.
    fn single_quote(&mut self) -> Result<String, ExpandError> {
        let open = self.pos;
        let mut result = String::new();
        self.next();
        if self.lexer.raw_quotes {
            result.push('\'');
        }
        loop {
            match self.next() {
                None => return Err(Self::err(open, ExpandErrorKind::UnterminatedSingleQuote)),
                Some('\'') => {
                    if self.lexer.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(c) => result.push(c),
            }
        }
    }

    /// `"..."`: literal but for `$` and the escape before `"`, `$` or itself.
    fn double_quote(&mut self) -> Result<String, ExpandError> {
        let open = self.pos;
        let mut result = String::new();
        self.next();
        if self.lexer.raw_quotes {
            result.push('"');
        }
        loop {
            match self.peek() {
                None => return Err(Self::err(open, ExpandErrorKind::UnterminatedDoubleQuote)),
                Some('"') => {
                    self.next();
                    if self.lexer.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let value = self.dollar()?;
                    self.append(&mut result, &value)?;
                }
                Some(c) => {
                    self.next();
                    let mut c = c;
                    if c == self.lexer.escape {
                        if self.raw_escapes {
                            result.push(c);
                        }
                        match self.peek() {
                            // An escape at the very end is dropped (and the quote is unterminated).
                            None => continue,
                            Some(next)
                                if next == '"' || next == '$' || next == self.lexer.escape =>
                            {
                                self.next();
                                c = next;
                            }
                            Some(_) => {}
                        }
                    }
                    result.push(c);
                }
            }
        }
    }

    /// `<<` and the blanks after it stay together in one word, so heredoc
    /// markers `<< EOF` can be found in the split words.
    fn possible_heredoc(&mut self) -> String {
        self.next();
        if self.peek() != Some('<') {
            return "<".to_string();
        }
        self.next();
        let mut result = "<<".to_string();
        while let Some(c @ (' ' | '\t' | '\r')) = self.peek() {
            self.next();
            result.push(c);
        }
        result
    }

    /// A variable name: letters, digits, `_`; or a run of digits; or one special parameter.
    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if name.is_empty() && is_digit(c) {
                while let Some(d) = self.peek().filter(|&d| is_digit(d)) {
                    self.next();
                    name.push(d);
                }
                return name;
            }
            if name.is_empty() && is_special_param(c) {
                self.next();
                name.push(c);
                return name;
            }
            if !is_letter(c) && !is_digit(c) && c != '_' {
                break;
            }
            self.next();
            name.push(c);
        }
        name
    }

    fn get_env(&mut self, name: &str) -> Option<&'a str> {
        let value = self.env.get(name);
        if self.capture {
            let set = if value.is_some() {
                &mut self.matched
            } else {
                &mut self.unmatched
            };
            if !set.contains(name) {
                set.insert(name.to_string());
            }
        }
        value
    }

    /// `$...` at the current position.
    fn dollar(&mut self) -> Result<String, ExpandError> {
        let open = self.pos;
        self.next();
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(match self.get_env(&name) {
                Some(value) => value.to_string(),
                None if self.lexer.skip_unset_env => format!("${name}"),
                None => String::new(),
            });
        }
        self.next();
        match self.peek() {
            None => return Err(Self::err(open, ExpandErrorKind::MissingBrace)),
            Some('{' | '}' | ':') => return Err(Self::err(open, ExpandErrorKind::BadSubstitution)),
            Some(_) => {}
        }
        if self.depth >= MAX_DEPTH {
            return Err(Self::err(
                open,
                ExpandErrorKind::TooDeep { limit: MAX_DEPTH },
            ));
        }
        self.depth += 1;
        let result = self.braced(open);
        self.depth -= 1;
        result
    }

    /// `${name...}` after the `{`.
    fn braced(&mut self, open: usize) -> Result<String, ExpandError> {
        let name = self.name();
        let Some(c) = self.next() else {
            return Err(Self::err(open, ExpandErrorKind::MissingBrace));
        };
        match c {
            '}' => Ok(match self.get_env(&name) {
                Some(value) => value.to_string(),
                None if self.lexer.skip_unset_env => format!("${{{name}}}"),
                None => String::new(),
            }),
            ':' | '+' | '-' | '?' | '#' | '%' => self.modifier(open, &name, c),
            '/' => self.replace(open, &name),
            c => Err(unsupported(open, &c.to_string())),
        }
    }

    /// `${v:-w}`, `${v+w}`, `${v?w}`, `${v#p}`, `${v%%p}` ... after `v` and `first`.
    fn modifier(&mut self, open: usize, name: &str, first: char) -> Result<String, ExpandError> {
        let mut chs = first.to_string();
        let null_is_unset = first == ':';
        let op = if null_is_unset {
            let op = self.next();
            chs.extend(op);
            op
        } else {
            Some(first)
        };
        let is_pattern = matches!(op, Some('#' | '%'));
        if null_is_unset && is_pattern {
            return Err(unsupported(open, &chs));
        }
        let word = self
            .stop_on(Some('}'), is_pattern, None)
            .map_err(|e| self.at_end_or(e, open, ExpandErrorKind::MissingBrace))?;
        let value = self.get_env(name);
        if self.lexer.skip_unset_env && value.is_none() {
            return Ok(format!("${{{name}{chs}{word}}}"));
        }
        let unset = value.is_none() || (null_is_unset && value == Some(""));
        match op {
            Some('-') => Ok(if unset {
                word
            } else {
                value.unwrap_or_default().to_string()
            }),
            Some('+') => Ok(if unset { String::new() } else { word }),
            Some('?') => {
                let Some(value) = value.filter(|v| !(null_is_unset && v.is_empty())) else {
                    let message = if !word.is_empty() {
                        word
                    } else if value.is_none() {
                        "is not allowed to be unset".to_string()
                    } else {
                        "is not allowed to be empty".to_string()
                    };
                    let name = name.to_string();
                    return Err(Self::err(open, ExpandErrorKind::Required { name, message }));
                };
                Ok(value.to_string())
            }
            Some(op @ ('#' | '%')) => {
                let value = value.unwrap_or_default();
                // `##` and `%%` match the longest pattern, `#` and `%` the shortest.
                let (pattern, greedy) = match word.strip_prefix(op) {
                    Some(rest) => (rest, true),
                    None => (word.as_str(), false),
                };
                let trimmed = if op == '%' {
                    glob::trim_suffix(pattern, value, greedy)
                } else {
                    glob::trim_prefix(pattern, value, greedy)
                };
                trimmed.map_err(|e| invalid_pattern(open, pattern, &e))
            }
            _ => Err(unsupported(open, &chs)),
        }
    }

    /// `${v/p/r}` and `${v//p/r}` after the first `/`.
    fn replace(&mut self, open: usize, name: &str) -> Result<String, ExpandError> {
        let all = self.peek() == Some('/');
        if all {
            self.next();
        }
        let pattern = self
            .stop_on(Some('/'), true, None)
            .map_err(|e| self.at_end_or(e, open, ExpandErrorKind::MissingSlash))?;
        let replacement = self
            .stop_on(Some('}'), true, None)
            .map_err(|e| self.at_end_or(e, open, ExpandErrorKind::MissingBrace))?;
        let value = self.get_env(name);
        if self.lexer.skip_unset_env && value.is_none() {
            return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
        }
        let value = value.unwrap_or_default();
        let compiled = glob::Pattern::compile(&pattern, true)
            .map_err(|e| invalid_pattern(open, &pattern, &e))?;
        let replaced = if all {
            glob::replace_all(value, &compiled, &replacement, MAX_WORD_BYTES)
        } else {
            Some(glob::replace_first(value, &compiled, &replacement))
        };
        replaced
            .filter(|r| r.len() <= MAX_WORD_BYTES)
            .ok_or_else(|| {
                Self::err(
                    open,
                    ExpandErrorKind::TooLong {
                        limit: MAX_WORD_BYTES,
                    },
                )
            })
    }

    /// A nested failure at the end of the word becomes the enclosing form's
    /// "missing" error, as in BuildKit; elsewhere it passes through.
    fn at_end_or(&self, e: ExpandError, open: usize, kind: ExpandErrorKind) -> ExpandError {
        if self.peek().is_none() {
            Self::err(open, kind)
        } else {
            e
        }
    }
}

fn unsupported(open: usize, modifier: &str) -> ExpandError {
    ExpandError {
        offset: open,
        kind: ExpandErrorKind::UnsupportedModifier {
            modifier: modifier.to_string(),
        },
    }
}

fn invalid_pattern(open: usize, pattern: &str, e: &glob::BadEscape) -> ExpandError {
    ExpandError {
        offset: open,
        kind: ExpandErrorKind::InvalidPattern {
            pattern: pattern.to_string(),
            reason: e.to_string(),
        },
    }
}

/// Go's `unicode.IsLetter`: general category L.
fn is_letter(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphabetic();
    }
    c.general_category_group() == GeneralCategoryGroup::Letter
}

/// Go's `unicode.IsDigit`: general category Nd.
fn is_digit(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_digit();
    }
    c.general_category() == GeneralCategory::DecimalNumber
}

/// POSIX special parameters; never set in a Dockerfile, so they expand empty.
fn is_special_param(c: char) -> bool {
    matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')
}

#[cfg(test)]
mod tests;
