//! Shell patterns for `${v#p}`, `${v%p}` and `${v/p/r}`, matched the way
//! BuildKit matches them: the pattern becomes a regular expression (`*` is
//! `.*` or `.*?`, `?` is `.`, everything else literal) searched with
//! leftmost-first semantics, where `.` never matches a newline.
//!
//! Instead of a regex engine, the pattern compiles to a tiny program run by a
//! Pike VM: time is `O(len(text) * len(pattern))`, no recursion, no
//! backtracking blow-up on hostile patterns.

/// Why a pattern was rejected: `\` before anything but `*`, `?`, `\`, `}`, `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadEscape(pub(crate) Option<char>);

impl std::fmt::Display for BadEscape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(c) => write!(f, "invalid escape '\\{c}'"),
            None => f.write_str("invalid escape '\\' at end of pattern"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inst {
    /// One exact character.
    Char(char),
    /// Any character but `\n`.
    Any,
    /// Try the first target, then the second (priority order).
    Split(usize, usize),
    Jmp(usize),
    Match,
}

/// A compiled pattern.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    prog: Vec<Inst>,
}

impl Pattern {
    /// Compiles a shell pattern; `greedy` makes `*` prefer longer matches.
    pub(crate) fn compile(pattern: &str, greedy: bool) -> Result<Pattern, BadEscape> {
        let mut prog = Vec::with_capacity(pattern.len() + 1);
        // Go's text/scanner drops a byte-order mark at the very start.
        let pattern = pattern.strip_prefix('\u{feff}').unwrap_or(pattern);
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '*' => {
                    let at = prog.len();
                    let (first, second) = if greedy {
                        (at + 1, at + 3)
                    } else {
                        (at + 3, at + 1)
                    };
                    prog.push(Inst::Split(first, second));
                    prog.push(Inst::Any);
                    prog.push(Inst::Jmp(at));
                }
                '?' => prog.push(Inst::Any),
                '\\' => match chars.peek() {
                    // `}` and `/` are escaped only to get past `${...}`.
                    Some('}' | '/') => {}
                    Some(&e @ ('*' | '?' | '\\')) => {
                        chars.next();
                        prog.push(Inst::Char(e));
                    }
                    other => return Err(BadEscape(other.copied())),
                },
                c => prog.push(Inst::Char(c)),
            }
        }
        prog.push(Inst::Match);
        Ok(Pattern { prog })
    }

    /// Leftmost-first match in `text[from..]`: byte range of the match.
    /// `anchored` only tries a match starting at `from`.
    pub(crate) fn find_at(
        &self,
        text: &str,
        from: usize,
        anchored: bool,
    ) -> Option<(usize, usize)> {
        let n = self.prog.len();
        let mut clist = Threads::new(n);
        let mut nlist = Threads::new(n);
        let mut stack = Vec::new();
        let mut matched = None;
        let mut pos = from;
        loop {
            if clist.is_empty() && (matched.is_some() || (anchored && pos > from)) {
                break;
            }
            if matched.is_none() && (!anchored || pos == from) {
                self.add(&mut clist, &mut stack, 0, pos);
            }
            let ch = text[pos..].chars().next();
            let next_pos = pos + ch.map_or(0, char::len_utf8);
            for i in 0..clist.dense.len() {
                let (pc, start) = clist.dense[i];
                match self.prog[pc] {
                    Inst::Match => {
                        matched = Some((start, pos));
                        // Lower-priority threads can only find worse matches.
                        break;
                    }
                    Inst::Char(want) if ch == Some(want) => {
                        self.add(&mut nlist, &mut stack, pc + 1, start);
                    }
                    Inst::Any if ch.is_some_and(|c| c != '\n') => {
                        self.add(&mut nlist, &mut stack, pc + 1, start);
                    }
                    _ => {}
                }
            }
            std::mem::swap(&mut clist, &mut nlist);
            nlist.clear();
            if ch.is_none() {
                break;
            }
            pos = next_pos;
        }
        matched
    }

    /// Adds `pc` and everything reachable from it without reading, in priority order.
    fn add(&self, list: &mut Threads, stack: &mut Vec<usize>, pc: usize, start: usize) {
        stack.push(pc);
        while let Some(pc) = stack.pop() {
            if !list.insert(pc) {
                continue;
            }
            match self.prog[pc] {
                Inst::Jmp(to) => stack.push(to),
                Inst::Split(first, second) => {
                    // Pushed in reverse so `first` is explored first.
                    stack.push(second);
                    stack.push(first);
                }
                Inst::Char(_) | Inst::Any | Inst::Match => list.dense.push((pc, start)),
            }
        }
    }
}

/// A sparse set of program counters, each with its match start, in priority order.
#[derive(Debug)]
struct Threads {
    seen: Vec<bool>,
    touched: Vec<usize>,
    dense: Vec<(usize, usize)>,
}

impl Threads {
    fn new(n: usize) -> Threads {
        Threads {
            seen: vec![false; n],
            touched: Vec::new(),
            dense: Vec::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.dense.is_empty()
    }

    fn insert(&mut self, pc: usize) -> bool {
        if self.seen[pc] {
            return false;
        }
        self.seen[pc] = true;
        self.touched.push(pc);
        true
    }

    fn clear(&mut self) {
        for pc in self.touched.drain(..) {
            self.seen[pc] = false;
        }
        self.dense.clear();
    }
}

/// `${v#p}` / `${v##p}`: drops the shortest / longest prefix matching `pattern`.
pub(crate) fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Result<String, BadEscape> {
    let pattern = Pattern::compile(pattern, greedy)?;
    Ok(match pattern.find_at(value, 0, true) {
        Some((_, end)) => value[end..].to_string(),
        None => value.to_string(),
    })
}

/// `${v%p}` / `${v%%p}`: drops the shortest / longest suffix matching
/// `pattern`, by matching the reversed pattern against the reversed value.
pub(crate) fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> Result<String, BadEscape> {
    let pattern = reverse_pattern(pattern);
    let reversed: String = value.chars().rev().collect();
    let trimmed = trim_prefix(&pattern, &reversed, greedy)?;
    Ok(trimmed.chars().rev().collect())
}

/// Reverses a pattern but keeps each `\x` escape pair in order: `a\*c` -> `c\*a`.
fn reverse_pattern(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let n = chars.len();
    let mut out = vec!['\0'; n];
    let mut i = 0;
    while i < n {
        let at = n - 1 - i;
        if chars[i] == '\\' && i + 1 < n {
            // i + 1 < n, so at >= 1.
            out[at - 1] = '\\';
            out[at] = chars[i + 1];
            i += 2;
        } else {
            out[at] = chars[i];
            i += 1;
        }
    }
    out.into_iter().collect()
}

/// `${v/p/r}`: replaces the first match.
pub(crate) fn replace_first(value: &str, pattern: &Pattern, replacement: &str) -> String {
    match pattern.find_at(value, 0, false) {
        Some((start, end)) => {
            let mut out = String::with_capacity(value.len() + replacement.len());
            out.push_str(&value[..start]);
            out.push_str(replacement);
            out.push_str(&value[end..]);
            out
        }
        None => value.to_string(),
    }
}

/// `${v//p/r}`: replaces every match, as Go's `Regexp.ReplaceAllString`:
/// an empty match right after a match is skipped, and the replacement is a
/// template where `$0`/`${0}` is the matched text, `$$` a dollar, and any
/// other `$name` empty. `None` once the result grows past `limit` bytes.
pub(crate) fn replace_all(
    value: &str,
    pattern: &Pattern,
    replacement: &str,
    limit: usize,
) -> Option<String> {
    let mut out = String::with_capacity(value.len());
    let mut last_end = 0;
    let mut search = 0;
    while search <= value.len() {
        if out.len() > limit {
            return None;
        }
        let Some((start, end)) = pattern.find_at(value, search, false) else {
            break;
        };
        out.push_str(&value[last_end..start]);
        if end > last_end || start == 0 {
            expand_template(&mut out, replacement, &value[start..end]);
        }
        last_end = end;
        let width = value[search..].chars().next().map_or(0, char::len_utf8);
        search = if search + width > end {
            search + width
        } else if search + 1 > end {
            search + 1
        } else {
            end
        };
    }
    out.push_str(&value[last_end..]);
    Some(out)
}

/// Go's `Regexp.Expand` for a pattern without groups.
fn expand_template(out: &mut String, template: &str, whole: &str) {
    let mut rest = template;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        rest = &rest[dollar + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
            continue;
        }
        match template_ref(rest) {
            Some((name, after)) => {
                if name == "0" {
                    out.push_str(whole);
                }
                rest = after;
            }
            None => out.push('$'),
        }
    }
    out.push_str(rest);
}

/// A `name` or `{name}` reference at the start of `s`: the name and the rest.
fn template_ref(s: &str) -> Option<(&str, &str)> {
    let (body, braced) = match s.strip_prefix('{') {
        Some(body) => (body, true),
        None => (s, false),
    };
    let len = body
        .char_indices()
        .find(|&(_, c)| !(super::is_letter(c) || super::is_digit(c) || c == '_'))
        .map_or(body.len(), |(i, _)| i);
    if len == 0 {
        return None;
    }
    let name = &body[..len];
    let after = &body[len..];
    if braced {
        return after.strip_prefix('}').map(|after| (name, after));
    }
    Some((name, after))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(pattern: &str, greedy: bool, text: &str, anchored: bool) -> Option<(usize, usize)> {
        Pattern::compile(pattern, greedy)
            .unwrap()
            .find_at(text, 0, anchored)
    }

    #[test]
    fn lazy_and_greedy_stars() {
        assert_eq!(find("*x", false, "axbx", true), Some((0, 2)));
        assert_eq!(find("*x", true, "axbx", true), Some((0, 4)));
        assert_eq!(find("*", false, "abc", true), Some((0, 0)));
        assert_eq!(find("*", true, "abc", true), Some((0, 3)));
        assert_eq!(find("b?", true, "abcd", false), Some((1, 3)));
        assert_eq!(find("b?", true, "abcd", true), None);
    }

    #[test]
    fn dot_never_matches_newline() {
        assert_eq!(find("*", true, "ab\ncd", true), Some((0, 2)));
        assert_eq!(find("a?c", true, "a\nc", true), None);
    }

    #[test]
    fn escapes() {
        assert_eq!(find("\\*", true, "a*", false), Some((1, 2)));
        assert_eq!(find("a\\}", true, "a}", true), Some((0, 2)));
        assert_eq!(
            Pattern::compile("\\x", true).unwrap_err(),
            BadEscape(Some('x'))
        );
        assert_eq!(Pattern::compile("\\", true).unwrap_err(), BadEscape(None));
        assert!(Pattern::compile("\\\\\\", true).is_err());
        // Regex metacharacters are literal.
        assert_eq!(find("a.c", true, "abc a.c", false), Some((4, 7)));
        assert_eq!(find("[ab]", true, "a [ab]", false), Some((2, 6)));
    }

    #[test]
    fn reverse_keeps_escape_pairs() {
        assert_eq!(reverse_pattern("a\\*c"), "c\\*a");
        assert_eq!(reverse_pattern("\\\\\\ab"), "b\\a\\\\");
        assert_eq!(reverse_pattern("ab\\"), "\\ba");
        assert_eq!(reverse_pattern("👽\\🚀🖖"), "🖖\\🚀👽");
        assert_eq!(reverse_pattern("\\\\b"), "b\\\\");
    }

    #[test]
    fn replace_all_like_go() {
        let p = Pattern::compile("", true).unwrap();
        assert_eq!(replace_all("ab", &p, "-", usize::MAX).unwrap(), "-a-b-");
        let p = Pattern::compile("a*", true).unwrap();
        assert_eq!(replace_all("baaac", &p, "X", usize::MAX).unwrap(), "bX");
        let p = Pattern::compile("a", true).unwrap();
        assert_eq!(
            replace_all("banana", &p, "<$0>", usize::MAX).unwrap(),
            "b<a>n<a>n<a>"
        );
        assert_eq!(
            replace_all("banana", &p, "${0}$1$$", usize::MAX).unwrap(),
            "ba$na$na$"
        );
        assert_eq!(replace_all("aa", &p, "$", usize::MAX).unwrap(), "$$");
        assert_eq!(replace_all("aa", &p, "${0", usize::MAX).unwrap(), "${0${0");
    }
}
