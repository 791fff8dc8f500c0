//! Heredocs: which instructions may open them, the `<<WORD` specs of a
//! line (BuildKit's `ParseHeredoc` over shell words), and whether a
//! terminator follows in the rest of the file.

use super::*;

/// BuildKit's `canContainHeredoc`: RUN, COPY, ADD, or ONBUILD wrapping one,
/// not in JSON form.
pub(super) fn can_contain_heredoc(node: &Node) -> bool {
    let node = match &node.args {
        Args::Nested(inner) if node.keyword == "onbuild" => inner,
        _ => node,
    };
    matches!(node.keyword.as_str(), "run" | "copy" | "add")
        && !matches!(node.args, Args::Words { json: true, .. })
}

/// A heredoc opened on an instruction line, body not read yet.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct HeredocSpec {
    pub(super) name: String,
    pub(super) chomp: bool,
    pub(super) expand: bool,
    pub(super) fd: Option<u32>,
    /// Byte offset of the `<<` word in the logical line.
    pub(super) offset: usize,
}

/// Where each distinct line of the file last occurs, as written and with
/// its leading tabs removed (a `<<-` terminator), so that asking whether a
/// terminator follows a line costs one lookup, not a scan of the rest.
pub(super) struct LastLines<'a> {
    exact: HashMap<&'a str, usize>,
    chomped: HashMap<&'a str, usize>,
}

impl<'a> LastLines<'a> {
    fn new(lines: &[&'a str]) -> LastLines<'a> {
        let mut exact = HashMap::new();
        let mut chomped = HashMap::new();
        for (idx, &line) in lines.iter().enumerate() {
            exact.insert(line, idx);
            chomped.insert(line.trim_start_matches('\t'), idx);
        }
        LastLines { exact, chomped }
    }

    /// Whether a line after the 1-based line `line` ends a heredoc `name`.
    fn terminator_after(&self, name: &str, chomp: bool, line: u32) -> bool {
        let map = if chomp { &self.chomped } else { &self.exact };
        map.get(name).is_some_and(|&idx| idx >= line as usize)
    }
}

impl Builder<'_, '_> {
    /// `heredocsFromLine`: the heredocs the logical line opens, in order.
    pub(super) fn heredoc_specs(&self) -> Result<Vec<HeredocSpec>, ParseError> {
        let mut specs = Vec::new();
        // BuildKit finds no heredocs on a line its lexer rejects.
        let lexer = Lexer::new('\\')
            .raw_quotes(true)
            .raw_escapes(true)
            .skip_unset_env(true);
        if lexer.process_words(&self.line.text, &NO_ENV).is_err() {
            return Ok(specs);
        }
        let Some(words) = shell_words(&self.line.text) else {
            return Ok(specs);
        };
        for (offset, word) in words {
            self.word_heredocs(&word, offset, &mut specs)?;
        }
        Ok(specs)
    }

    /// The heredoc a shell word opens, if any. `[n]<<[-]WORD` always opens
    /// one. BuildKit 0.13 (docker 26.1) reads `<< WORD` as the operator `<<`
    /// and a separate word, BuildKit 1.16+ as a heredoc: here it is a heredoc
    /// only if a later line of the file is its terminator, so
    /// `$(( 1 << 21 ))` stays arithmetic. Otherwise the text after the blanks
    /// is a word of its own, as in 0.13.
    pub(super) fn word_heredocs(
        &self,
        mut word: &str,
        mut offset: usize,
        specs: &mut Vec<HeredocSpec>,
    ) -> Result<(), ParseError> {
        while let Some(prefix) = spaced_heredoc_prefix(word) {
            if let Ok(Some(spec)) = heredoc_spec(word, offset)
                && self.terminator_follows(&spec)
            {
                specs.push(spec);
                return Ok(());
            }
            word = word.get(prefix..).unwrap_or_default();
            offset += prefix;
        }
        match heredoc_spec(word, offset) {
            Ok(Some(spec)) => specs.push(spec),
            Ok(None) => {}
            Err(message) => {
                return Err(self.error(
                    offset,
                    format!(
                        "invalid heredoc delimiter {}: {message}",
                        crate::dump::quote(word)
                    ),
                    "write the delimiter as a word, e.g. <<EOF, <<-EOF or <<'EOF'",
                ));
            }
        }
        Ok(())
    }

    /// Whether a line after this instruction is the terminator of `spec`.
    pub(super) fn terminator_follows(&self, spec: &HeredocSpec) -> bool {
        self.last_lines
            .get_or_init(|| LastLines::new(self.lines))
            .terminator_after(&spec.name, spec.chomp, self.line.end_line)
    }
}

/// Splits a line into shell words the way BuildKit looks for heredocs
/// (`shell.Lex` with raw quotes and raw escapes, escape always `\`): quotes
/// and backslashes stay in the words, `<<` swallows the blanks after it
/// (`word_heredocs` decides whether such a word opens a heredoc).
/// `$` expansions are kept as plain characters (the expander has checked
/// them already), except that a `${name<op>...}` form drops the word read so
/// far, as BuildKit's lexer does (its nested scan resets the shared word
/// buffer: `<<${x:-y}` opens no heredoc there). Returns the byte offset and
/// text of each word, or `None` if a quote is unterminated (BuildKit then
/// finds no heredocs).
pub(super) fn shell_words(line: &str) -> Option<Vec<(usize, String)>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut start = 0;
    let mut chars = line.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if word.is_empty() {
            start = i;
        }
        match c {
            '\'' => {
                word.push(c);
                loop {
                    let (_, c) = chars.next()?;
                    word.push(c);
                    if c == '\'' {
                        break;
                    }
                }
            }
            '"' => {
                let mut quote_start = word.len();
                word.push(c);
                loop {
                    let (j, c) = chars.next()?;
                    if c == '$' && nested_expansion(&line[j + 1..]) {
                        word.drain(..quote_start);
                        quote_start = 0;
                        start = i;
                    }
                    word.push(c);
                    match c {
                        '"' => break,
                        '\\' => {
                            if let Some(&(_, next @ ('"' | '$' | '\\'))) = chars.peek() {
                                word.push(next);
                                chars.next();
                            }
                        }
                        _ => {}
                    }
                }
            }
            '$' => {
                if nested_expansion(&line[i + 1..]) {
                    word.clear();
                    start = i;
                }
                word.push(c);
            }
            '\\' => {
                word.push(c);
                let Some((_, next)) = chars.next() else {
                    break;
                };
                word.push(next);
            }
            '<' => {
                word.push(c);
                if chars.next_if(|&(_, c)| c == '<').is_some() {
                    word.push('<');
                    while let Some((_, blank)) =
                        chars.next_if(|&(_, c)| matches!(c, ' ' | '\t' | '\r'))
                    {
                        word.push(blank);
                    }
                }
            }
            c if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push((start, std::mem::take(&mut word)));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push((start, word));
    }
    Some(words)
}

/// Whether the text after a `$` starts a `${name<op>...}` form (`:-`, `+`,
/// `?`, `#`, `%`, `/`, ...), which BuildKit's lexer scans with a nested call.
pub(super) fn nested_expansion(after: &str) -> bool {
    use unicode_properties::{GeneralCategory, GeneralCategoryGroup, UnicodeGeneralCategory};
    let is_digit = |c: char| c.general_category() == GeneralCategory::DecimalNumber;
    let is_name = |c: char| {
        c == '_' || is_digit(c) || c.general_category_group() == GeneralCategoryGroup::Letter
    };
    let Some(rest) = after.strip_prefix('{') else {
        return false;
    };
    let mut chars = rest.chars().peekable();
    match chars.peek().copied() {
        Some(c) if is_digit(c) => while chars.next_if(|&c| is_digit(c)).is_some() {},
        Some('@' | '*' | '#' | '?' | '-' | '$' | '!') => {
            chars.next();
        }
        _ => while chars.next_if(|&c| is_name(c)).is_some() {},
    }
    matches!(chars.next(), Some(':' | '+' | '-' | '?' | '#' | '%' | '/'))
}

/// Go's regexp `\s`.
pub(super) fn is_go_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\x0c' | '\r' | ' ')
}

/// The length of `[n]<<` and the blanks after it, if the word starts with
/// that (the form only BuildKit 1.16+ reads as a heredoc).
pub(super) fn spaced_heredoc_prefix(word: &str) -> Option<usize> {
    let digits = word.bytes().take_while(u8::is_ascii_digit).count();
    let after = word.get(digits..)?.strip_prefix("<<")?;
    let blanks = after.len() - after.trim_start_matches([' ', '\t', '\r']).len();
    (blanks > 0).then_some(digits + 2 + blanks)
}

/// BuildKit's `ParseHeredoc`: matches `^(\d*)<<(-?)\s*([^<]*)$` and reads the
/// delimiter word. `Ok(None)` if the word is not a heredoc.
pub(super) fn heredoc_spec(
    word: &str,
    offset: usize,
) -> Result<Option<HeredocSpec>, DelimiterError> {
    let digits = word.bytes().take_while(u8::is_ascii_digit).count();
    let Some(after) = word[digits..].strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, after) = match after.strip_prefix('-') {
        Some(after) => (true, after),
        None => (false, after),
    };
    let rest = after.trim_start_matches(is_go_space);
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let Some((name, expand)) = delimiter(rest)? else {
        return Ok(None);
    };
    let fd = if digits == 0 {
        None
    } else {
        word[..digits].parse().ok()
    };
    Ok(Some(HeredocSpec {
        name,
        chomp,
        expand,
        fd,
        offset,
    }))
}

/// Why a heredoc delimiter is not a word.
#[derive(Debug, thiserror::Error)]
pub(super) enum DelimiterError {
    /// The lexer refused it (an unterminated quote, a bad `${`).
    #[error(transparent)]
    Lex(#[from] crate::expand::ExpandErrorKind),
    /// The word lexed with and without quotes differs in word count.
    #[error("lexing the delimiter with and without quotes disagrees")]
    QuotesDisagree,
}

/// No variables: heredoc words are lexed with unset variables kept as written.
const NO_ENV: [(&str, &str); 0] = [];

/// Decodes a heredoc delimiter as one shell word with BuildKit's lexer
/// (quotes removed, `\` escapes resolved, `$v` kept). Returns the word and
/// whether its body is expanded (no part of it quoted), or `None` unless it
/// is exactly one word.
pub(super) fn delimiter(rest: &str) -> Result<Option<(String, bool)>, DelimiterError> {
    let lexer = Lexer::new('\\').skip_unset_env(true);
    let words = lexer.process_words(rest, &NO_ENV).map_err(|e| e.kind)?;
    let [word] = words.as_slice() else {
        return Ok(None);
    };
    let raw = lexer
        .raw_quotes(true)
        .process_words(rest, &NO_ENV)
        .map_err(|e| e.kind)?;
    let [raw] = raw.as_slice() else {
        return Err(DelimiterError::QuotesDisagree);
    };
    let quotes = |w: &str| w.matches(['\'', '"']).count();
    Ok(Some((word.clone(), quotes(word) == quotes(raw))))
}
