//! Go's `path/filepath.Match` for one path component, which BuildKit applies
//! to each element of a `COPY`/`ADD` source with wildcards.
//!
//! Syntax: `*` (any run of characters), `?` (one character), `[...]`
//! classes with ranges and `^` negation, `\` escaping the next character.
//! Nothing here ever matches `/`: patterns are split on `/` first.

/// A pattern that is not a valid Go `filepath.Match` pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadPattern;

/// Whether a source path element is a pattern for [`matches`]: `*`, `?`,
/// `[`, or `\` (an escape only `matches` undoes), as BuildKit's context
/// source resolution decides.
pub(crate) fn has_wildcards(element: &str) -> bool {
    element.contains(['*', '?', '[', '\\'])
}

/// BuildKit's `containsWildcards` on Unix, for a whole path: `*`, `?` or
/// `[`, where `\` escapes the next character (`a\*b` has none). `COPY
/// --parents` decides with it whether its pivot is a pattern.
pub(crate) fn contains_wildcards(path: &str) -> bool {
    let mut chars = path.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '*' | '?' | '[' => return true,
            _ => {}
        }
    }
    false
}

/// Go's `filepath.Match(pattern, name)` for a name without `/`.
pub(crate) fn matches(pattern: &str, name: &str) -> Result<bool, BadPattern> {
    let pat: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    let matched = match_from(&pat, &name)?;
    if !matched {
        // Go reports a malformed pattern even on a mismatch once it has
        // scanned it; check the rest of the pattern for syntax errors.
        validate(&pat)?;
    }
    Ok(matched)
}

/// Checks the whole pattern's syntax.
pub(crate) fn validate_pattern(pattern: &str) -> Result<(), BadPattern> {
    validate(&pattern.chars().collect::<Vec<_>>())
}

fn validate(pat: &[char]) -> Result<(), BadPattern> {
    let mut i = 0;
    while i < pat.len() {
        match pat[i] {
            '\\' => {
                if i + 1 >= pat.len() {
                    return Err(BadPattern);
                }
                i += 2;
            }
            '[' => {
                // Probe the class with a character; only syntax matters.
                let (_, next) = match_class(pat, i + 1, '\0')?;
                i = next;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// Backtracking matcher: `*` remembers where to resume.
fn match_from(pat: &[char], name: &[char]) -> Result<bool, BadPattern> {
    let (mut p, mut n) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    loop {
        if p < pat.len() {
            match pat[p] {
                '*' => {
                    // Collapse runs of stars.
                    while p < pat.len() && pat[p] == '*' {
                        p += 1;
                    }
                    star = Some((p, n));
                    continue;
                }
                '?' if n < name.len() => {
                    p += 1;
                    n += 1;
                    continue;
                }
                '[' if n < name.len() => {
                    let (hit, next) = match_class(pat, p + 1, name[n])?;
                    if hit {
                        p = next;
                        n += 1;
                        continue;
                    }
                }
                '\\' => {
                    let Some(&lit) = pat.get(p + 1) else {
                        return Err(BadPattern);
                    };
                    if n < name.len() && name[n] == lit {
                        p += 2;
                        n += 1;
                        continue;
                    }
                }
                c if c != '?' && c != '[' && n < name.len() && name[n] == c => {
                    p += 1;
                    n += 1;
                    continue;
                }
                _ => {}
            }
        } else if n == name.len() {
            return Ok(true);
        }
        // Mismatch: let the last star swallow one more character.
        match star {
            Some((star_p, star_n)) if star_n < name.len() => {
                star = Some((star_p, star_n + 1));
                p = star_p;
                n = star_n + 1;
            }
            _ => return Ok(false),
        }
    }
}

/// Matches `c` against the class starting after `[` at `start`; returns the
/// result and the index after the closing `]`.
fn match_class(pat: &[char], start: usize, c: char) -> Result<(bool, usize), BadPattern> {
    let mut i = start;
    let negated = pat.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    loop {
        let Some(&ch) = pat.get(i) else {
            return Err(BadPattern);
        };
        if ch == ']' && !first {
            i += 1;
            break;
        }
        first = false;
        let (lo, after_lo) = class_char(pat, i)?;
        let mut hi = lo;
        let mut next = after_lo;
        if pat.get(after_lo) == Some(&'-') {
            let (h, after_hi) = class_char(pat, after_lo + 1)?;
            hi = h;
            next = after_hi;
        }
        if lo <= c && c <= hi {
            hit = true;
        }
        i = next;
    }
    Ok((hit != negated, i))
}

fn class_char(pat: &[char], i: usize) -> Result<(char, usize), BadPattern> {
    match pat.get(i) {
        None | Some('-') | Some(']') => Err(BadPattern),
        Some('\\') => pat.get(i + 1).map(|&c| (c, i + 2)).ok_or(BadPattern),
        Some(&c) => Ok((c, i + 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::{BadPattern, matches};

    #[test]
    fn go_match_table() {
        // From Go's path/filepath matchTests (those without `/`).
        let cases: &[(&str, &str, Result<bool, BadPattern>)] = &[
            ("abc", "abc", Ok(true)),
            ("*", "abc", Ok(true)),
            ("*c", "abc", Ok(true)),
            ("a*", "a", Ok(true)),
            ("a*", "abc", Ok(true)),
            ("a*", "ab/c", Ok(true)),
            ("a*b*c*d*e*", "axbxcxdxe", Ok(true)),
            ("ab[c]", "abc", Ok(true)),
            ("ab[b-d]", "abc", Ok(true)),
            ("ab[e-g]", "abc", Ok(false)),
            ("ab[^c]", "abc", Ok(false)),
            ("ab[^b-d]", "abc", Ok(false)),
            ("ab[^e-g]", "abc", Ok(true)),
            ("a\\*b", "a*b", Ok(true)),
            ("a\\*b", "ab", Ok(false)),
            ("a?b", "a☺b", Ok(true)),
            ("a[^a]b", "a☺b", Ok(true)),
            ("a???b", "a☺b", Ok(false)),
            ("a[^a][^a][^a]b", "a☺b", Ok(false)),
            ("[a-ζ]*", "α", Ok(true)),
            ("*[a-ζ]", "A", Ok(false)),
            ("a?b", "a/b", Ok(true)),
            ("[\\]a]", "]", Ok(true)),
            ("[\\-]", "-", Ok(true)),
            ("[x\\-]", "x", Ok(true)),
            ("[x\\-]", "-", Ok(true)),
            ("[x\\-]", "z", Ok(false)),
            ("[\\-x]", "x", Ok(true)),
            ("[\\-x]", "-", Ok(true)),
            ("[\\-x]", "a", Ok(false)),
            ("[]a]", "]", Err(BadPattern)),
            ("[-]", "-", Err(BadPattern)),
            ("[x-]", "x", Err(BadPattern)),
            ("[x-]", "-", Err(BadPattern)),
            ("[x-]", "z", Err(BadPattern)),
            ("[-x]", "x", Err(BadPattern)),
            ("[-x]", "-", Err(BadPattern)),
            ("[-x]", "a", Err(BadPattern)),
            ("\\", "a", Err(BadPattern)),
            ("[a-b-c]", "a", Err(BadPattern)),
            ("[", "a", Err(BadPattern)),
            ("[^", "a", Err(BadPattern)),
            ("[^bc", "a", Err(BadPattern)),
            ("a[", "a", Err(BadPattern)),
            ("a[", "ab", Err(BadPattern)),
            ("a[", "x", Err(BadPattern)),
            ("*x", "xxx", Ok(true)),
        ];
        for (pattern, name, want) in cases {
            assert_eq!(
                matches(pattern, name),
                *want,
                "match({pattern:?}, {name:?})"
            );
        }
    }
}
