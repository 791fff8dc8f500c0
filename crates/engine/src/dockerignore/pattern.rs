//! One `.dockerignore` pattern: syntax check, compilation and matching.
//!
//! Docker (moby/patternmatcher) first checks a pattern with Go's
//! `filepath.Match` syntax, then sorts it into one of four kinds: an exact
//! string, a string prefix (`dir/**`), a string suffix (`**/name`, `**name`)
//! or a regular expression translated from the pattern (`*` -> `[^/]*`,
//! `?` -> `[^/]`, `**/` -> `(.*/)?`, a final `**` -> `.*`, classes and
//! escapes copied through). This module reproduces that sorting exactly and
//! matches the fourth kind with its own automaton instead of a regex engine:
//! a set of positions in the token list advanced one character at a time, so
//! matching costs O(path length x pattern length) whatever the `**` count.
//!
//! Where docker's translation hands a class or an escape to Go's regex parser
//! with a meaning `filepath.Match` never had (`[*]`, `[[:alpha:]]`, `\b`,
//! `\x41`, ...), docker either fails at match time or matches something the
//! pattern does not say; buildr rejects those patterns up front with a
//! [`PatternSyntax`] naming the construct.

use std::fmt;

/// Why a pattern was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternSyntax {
    /// A `\` with nothing after it.
    TrailingBackslash,
    /// A `[` without its closing `]`.
    UnterminatedClass,
    /// A `-` or `]` where a class member was expected (`[]a]`, `[-x]`, `[a-]`).
    MisplacedClassChar(char),
    /// A range whose end is below its start, e.g. `[z-a]`.
    ReversedRange { lo: char, hi: char },
    /// `*` or `?` inside `[...]`: docker's regex translation breaks the class.
    WildcardInClass(char),
    /// `[:` inside `[...]`: a POSIX class for docker's regex engine.
    PosixClass,
    /// An escape that docker's regex engine reads differently or rejects.
    UnsupportedEscape(char),
    /// A perl class (`\d`, `\w`, `\s`) used as a range end.
    PerlClassInRange(char),
}

impl fmt::Display for PatternSyntax {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TrailingBackslash => write!(f, "trailing backslash escapes nothing"),
            Self::UnterminatedClass => write!(f, "unterminated character class, missing `]`"),
            Self::MisplacedClassChar(ch) => {
                write!(
                    f,
                    "`{ch}` where a character class member was expected (escape it as `\\{ch}`)"
                )
            }
            Self::ReversedRange { lo, hi } => {
                write!(f, "character range `{lo}-{hi}` is reversed")
            }
            Self::WildcardInClass(ch) => write!(
                f,
                "`{ch}` inside a character class is mistranslated by docker (escape it as `\\{ch}`)"
            ),
            Self::PosixClass => write!(
                f,
                "`[:` inside a character class is a POSIX class for docker (escape it as `\\[:`)"
            ),
            Self::UnsupportedEscape(ch) => write!(
                f,
                "escape `\\{ch}` has a regular-expression meaning in docker that buildr does not support"
            ),
            Self::PerlClassInRange(ch) => {
                write!(f, "class `\\{ch}` cannot be the end of a range")
            }
        }
    }
}

/// A compiled pattern (without its leading `!`).
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    /// The path equals the pattern.
    Exact(String),
    /// The path starts with the pattern minus its trailing `**`.
    Prefix(String),
    /// The path ends with the pattern minus its leading `**`, or (when that
    /// rest starts with `/`) equals the rest without the `/`.
    Suffix(String),
    /// The whole path matches the token list.
    Program(Vec<Token>),
}

#[derive(Debug, Clone)]
enum Token {
    Lit(char),
    /// `?`: one character other than `/`.
    AnyButSlash,
    /// `*`: any run of characters other than `/`.
    StarButSlash,
    /// `**` followed by more pattern: nothing, or anything ending in `/`
    /// (docker's `(.*/)?`; `.` never matches a newline).
    DirStar,
    /// `**` at the end of a regex pattern: anything but a newline (`.*`).
    TailStar,
    /// An unescaped `^` outside a class in a regex pattern: docker leaves it
    /// unescaped, so it asserts the start of the path.
    Start,
    Class(Class),
}

#[derive(Debug, Clone)]
struct Class {
    negated: bool,
    items: Vec<ClassItem>,
}

#[derive(Debug, Clone, Copy)]
enum ClassItem {
    Range(char, char),
    Perl(Perl),
}

/// Go's ASCII perl classes; `negated` for the upper-case forms.
#[derive(Debug, Clone, Copy)]
struct Perl {
    kind: PerlKind,
    negated: bool,
}

#[derive(Debug, Clone, Copy)]
enum PerlKind {
    Digit,
    Space,
    Word,
}

impl Perl {
    fn from_escape(ch: char) -> Option<Self> {
        let kind = match ch.to_ascii_lowercase() {
            'd' => PerlKind::Digit,
            's' => PerlKind::Space,
            'w' => PerlKind::Word,
            _ => return None,
        };
        Some(Self {
            kind,
            negated: ch.is_ascii_uppercase(),
        })
    }

    fn contains(self, ch: char) -> bool {
        let hit = match self.kind {
            PerlKind::Digit => ch.is_ascii_digit(),
            PerlKind::Space => matches!(ch, '\t' | '\n' | '\x0C' | '\r' | ' '),
            PerlKind::Word => ch.is_ascii_alphanumeric() || ch == '_',
        };
        hit != self.negated
    }
}

impl Class {
    fn contains(&self, ch: char) -> bool {
        let hit = self.items.iter().any(|item| match *item {
            ClassItem::Range(lo, hi) => lo <= ch && ch <= hi,
            ClassItem::Perl(perl) => perl.contains(ch),
        });
        hit != self.negated
    }
}

/// What an escaped character means to Go's regex parser outside a class.
enum Escaped {
    Char(char),
    Perl(Perl),
}

fn escaped(ch: char) -> Result<Escaped, PatternSyntax> {
    let control = match ch {
        'a' => Some('\x07'),
        'f' => Some('\x0C'),
        't' => Some('\t'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        'v' => Some('\x0B'),
        _ => None,
    };
    if let Some(control) = control {
        return Ok(Escaped::Char(control));
    }
    if ch.is_ascii() && !ch.is_ascii_alphanumeric() {
        return Ok(Escaped::Char(ch));
    }
    match Perl::from_escape(ch) {
        Some(perl) => Ok(Escaped::Perl(perl)),
        None => Err(PatternSyntax::UnsupportedEscape(ch)),
    }
}

/// Go's `filepath.Match` syntax check, which docker runs on every pattern.
fn check_go_syntax(chars: &[char]) -> Result<(), PatternSyntax> {
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                if i + 1 >= chars.len() {
                    return Err(PatternSyntax::TrailingBackslash);
                }
                i += 2;
            }
            '[' => {
                i += 1;
                if chars.get(i) == Some(&'^') {
                    i += 1;
                }
                let mut n_ranges = 0;
                loop {
                    if n_ranges > 0 && chars.get(i) == Some(&']') {
                        i += 1;
                        break;
                    }
                    i = class_member_end(chars, i)?;
                    if chars.get(i) == Some(&'-') {
                        i = class_member_end(chars, i + 1)?;
                    }
                    n_ranges += 1;
                }
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// Go's `getEsc`: skips one class member starting at `i`; the class must go on.
fn class_member_end(chars: &[char], mut i: usize) -> Result<usize, PatternSyntax> {
    match chars.get(i) {
        None => return Err(PatternSyntax::UnterminatedClass),
        Some(&ch @ ('-' | ']')) => return Err(PatternSyntax::MisplacedClassChar(ch)),
        Some('\\') => i += 1,
        Some(_) => {}
    }
    if i + 1 >= chars.len() {
        return Err(PatternSyntax::UnterminatedClass);
    }
    Ok(i + 1)
}

/// The kind docker's `compile` settles on while it scans the pattern.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Detected {
    Exact,
    Prefix,
    Suffix,
    Regexp,
}

impl Pattern {
    /// Compiles a cleaned pattern (leading `!` already removed).
    pub(crate) fn compile(pattern: &str) -> Result<Self, PatternSyntax> {
        let chars: Vec<char> = pattern.chars().collect();
        check_go_syntax(&chars)?;

        let mut tokens = Vec::new();
        let mut detected = Detected::Exact;
        let mut i = 0;
        let mut n_tokens = 0usize;
        while i < chars.len() {
            let ch = chars[i];
            i += 1;
            match ch {
                '*' if chars.get(i) == Some(&'*') => {
                    i += 1;
                    if chars.get(i) == Some(&'/') {
                        i += 1;
                    }
                    if i >= chars.len() {
                        if detected == Detected::Exact {
                            detected = Detected::Prefix;
                        } else {
                            tokens.push(Token::TailStar);
                            detected = Detected::Regexp;
                        }
                    } else {
                        tokens.push(Token::DirStar);
                        detected = Detected::Regexp;
                    }
                    if n_tokens == 0 {
                        detected = Detected::Suffix;
                    }
                }
                '*' => {
                    tokens.push(Token::StarButSlash);
                    detected = Detected::Regexp;
                }
                '?' => {
                    tokens.push(Token::AnyButSlash);
                    detected = Detected::Regexp;
                }
                '\\' => {
                    // check_go_syntax guarantees a following character.
                    let Some(&next) = chars.get(i) else {
                        return Err(PatternSyntax::TrailingBackslash);
                    };
                    i += 1;
                    tokens.push(match escaped(next)? {
                        Escaped::Char(lit) => Token::Lit(lit),
                        Escaped::Perl(perl) => Token::Class(Class {
                            negated: false,
                            items: vec![ClassItem::Perl(perl)],
                        }),
                    });
                    detected = Detected::Regexp;
                }
                '[' => {
                    let (class, end) = parse_class(&chars, i)?;
                    i = end;
                    tokens.push(Token::Class(class));
                    detected = Detected::Regexp;
                }
                ']' => {
                    tokens.push(Token::Lit(']'));
                    detected = Detected::Regexp;
                }
                '^' => tokens.push(Token::Start),
                _ => tokens.push(Token::Lit(ch)),
            }
            n_tokens += 1;
        }

        let kind = match detected {
            Detected::Exact => Kind::Exact(pattern.to_owned()),
            Detected::Prefix => match pattern.strip_suffix("**") {
                Some(prefix) => Kind::Prefix(prefix.to_owned()),
                None => Kind::Program(tokens),
            },
            Detected::Suffix => match pattern.strip_prefix("**") {
                Some(suffix) => Kind::Suffix(suffix.to_owned()),
                None => Kind::Program(tokens),
            },
            Detected::Regexp => Kind::Program(tokens),
        };
        Ok(Self { kind })
    }

    /// Whether the whole of `path` matches (docker's `Pattern.match`).
    pub(crate) fn matches(&self, path: &str) -> bool {
        match &self.kind {
            Kind::Exact(exact) => path == exact,
            Kind::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Kind::Suffix(suffix) => suffix_matches(suffix, path),
            Kind::Program(tokens) => {
                let mut run = Run::new(tokens);
                for ch in path.chars() {
                    run.step(ch);
                }
                run.accepts()
            }
        }
    }

    /// Whether the pattern matches `dir` itself (when `dir` is not `.`) or one
    /// of the parents `dir` splits into at its `/`s: the second half of
    /// docker's `MatchesOrParentMatches`, done in one pass.
    pub(crate) fn matches_a_prefix_dir(&self, dir: &str) -> bool {
        let Kind::Program(tokens) = &self.kind else {
            let mut cut_points = dir.match_indices('/').map(|(idx, _)| idx);
            return cut_points.any(|end| self.matches(&dir[..end])) || self.matches(dir);
        };
        let mut run = Run::new(tokens);
        for ch in dir.chars() {
            if ch == '/' && run.accepts() {
                return true;
            }
            run.step(ch);
            if run.is_dead() {
                return false;
            }
        }
        run.accepts()
    }

    /// Whether some path starting with `prefix` could match: used to decide
    /// whether a walker must descend into an excluded directory. It may say
    /// yes too often, never too rarely.
    pub(crate) fn may_match_with_prefix(&self, prefix: &str) -> bool {
        match &self.kind {
            Kind::Exact(exact) => exact.starts_with(prefix),
            Kind::Prefix(start) => start.starts_with(prefix) || prefix.starts_with(start.as_str()),
            Kind::Suffix(_) => true,
            Kind::Program(tokens) => {
                let mut run = Run::new(tokens);
                for ch in prefix.chars() {
                    run.step(ch);
                    if run.is_dead() {
                        return false;
                    }
                }
                true
            }
        }
    }
}

fn suffix_matches(suffix: &str, path: &str) -> bool {
    path.ends_with(suffix) || suffix.strip_prefix('/') == Some(path)
}

/// A run of the token automaton over one string: the set of token positions
/// reachable after the characters seen so far (position `tokens.len()` means
/// the whole pattern has been matched).
struct Run<'a> {
    tokens: &'a [Token],
    current: StateSet,
    next: StateSet,
}

impl<'a> Run<'a> {
    fn new(tokens: &'a [Token]) -> Self {
        let mut run = Self {
            tokens,
            current: StateSet::new(2 * (tokens.len() + 1)),
            next: StateSet::new(2 * (tokens.len() + 1)),
        };
        add_state(tokens, &mut run.current, 0, true);
        run
    }

    fn accepts(&self) -> bool {
        self.current.contains(self.tokens.len())
    }

    fn is_dead(&self) -> bool {
        self.current.is_empty()
    }

    fn step(&mut self, ch: char) {
        self.next.clear();
        let n_positions = self.tokens.len() + 1;
        for &state in &self.current.list {
            if state >= n_positions {
                // Inside the `.*/` of the `**` at `body_of`: any character but
                // a newline stays inside, a `/` may also end the group.
                let body_of = state - n_positions;
                if ch == '/' {
                    add_state(self.tokens, &mut self.next, body_of + 1, false);
                }
                if ch != '\n' {
                    self.next.insert(state);
                }
                continue;
            }
            let Some(token) = self.tokens.get(state) else {
                continue;
            };
            let advance = match token {
                Token::Lit(lit) => *lit == ch,
                Token::AnyButSlash => ch != '/',
                Token::Class(class) => class.contains(ch),
                Token::StarButSlash => {
                    if ch != '/' {
                        add_state(self.tokens, &mut self.next, state, false);
                    }
                    false
                }
                Token::TailStar => {
                    if ch != '\n' {
                        add_state(self.tokens, &mut self.next, state, false);
                    }
                    false
                }
                Token::DirStar | Token::Start => false,
            };
            if advance {
                add_state(self.tokens, &mut self.next, state + 1, false);
            }
        }
        std::mem::swap(&mut self.current, &mut self.next);
    }
}

/// Adds `state` and everything reachable from it without reading a
/// character. Positions `0..=tokens.len()` are "before token i"; position
/// `tokens.len() + 1 + i` is "inside the `.*/` of the `**` token i".
fn add_state(tokens: &[Token], set: &mut StateSet, mut state: usize, at_start: bool) {
    loop {
        if !set.insert(state) {
            return;
        }
        match tokens.get(state) {
            Some(Token::StarButSlash | Token::TailStar) => state += 1,
            Some(Token::DirStar) => {
                set.insert(tokens.len() + 1 + state);
                state += 1;
            }
            Some(Token::Start) if at_start => state += 1,
            _ => return,
        }
    }
}

/// A set of automaton positions: membership flags plus the members in order.
struct StateSet {
    member: Vec<bool>,
    list: Vec<usize>,
}

impl StateSet {
    fn new(n_states: usize) -> Self {
        Self {
            member: vec![false; n_states],
            list: Vec::with_capacity(n_states),
        }
    }

    fn contains(&self, state: usize) -> bool {
        self.member.get(state).copied().unwrap_or(false)
    }

    fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Inserts `state`; false when it was already there or out of range.
    fn insert(&mut self, state: usize) -> bool {
        match self.member.get_mut(state) {
            Some(flag) if !*flag => {
                *flag = true;
                self.list.push(state);
                true
            }
            _ => false,
        }
    }

    fn clear(&mut self) {
        for &state in &self.list {
            self.member[state] = false;
        }
        self.list.clear();
    }
}

/// Parses the class whose `[` is just before `start`; returns it and the
/// index after its `]`. The Go syntax check has already accepted it.
fn parse_class(chars: &[char], start: usize) -> Result<(Class, usize), PatternSyntax> {
    let mut i = start;
    let negated = chars.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut items = Vec::new();
    loop {
        match chars.get(i) {
            None => return Err(PatternSyntax::UnterminatedClass),
            Some(']') if !items.is_empty() => return Ok((Class { negated, items }, i + 1)),
            Some(_) => {}
        }
        let (lo, after_lo) = class_member(chars, i)?;
        i = after_lo;
        if chars.get(i) != Some(&'-') {
            items.push(match lo {
                Member::Char(ch) => ClassItem::Range(ch, ch),
                Member::Perl(perl, _) => ClassItem::Perl(perl),
            });
            continue;
        }
        let lo = match lo {
            Member::Char(ch) => ch,
            Member::Perl(_, name) => return Err(PatternSyntax::PerlClassInRange(name)),
        };
        let (hi, after_hi) = class_member(chars, i + 1)?;
        i = after_hi;
        let hi = match hi {
            Member::Char(ch) => ch,
            Member::Perl(_, name) => return Err(PatternSyntax::PerlClassInRange(name)),
        };
        if hi < lo {
            return Err(PatternSyntax::ReversedRange { lo, hi });
        }
        items.push(ClassItem::Range(lo, hi));
    }
}

enum Member {
    Char(char),
    Perl(Perl, char),
}

/// One class member at `i` as docker's regex engine reads it.
fn class_member(chars: &[char], i: usize) -> Result<(Member, usize), PatternSyntax> {
    match chars.get(i) {
        None => Err(PatternSyntax::UnterminatedClass),
        Some(&ch @ ('-' | ']')) => Err(PatternSyntax::MisplacedClassChar(ch)),
        Some(&ch @ ('*' | '?')) => Err(PatternSyntax::WildcardInClass(ch)),
        Some('[') if chars.get(i + 1) == Some(&':') => Err(PatternSyntax::PosixClass),
        Some('\\') => {
            let Some(&next) = chars.get(i + 1) else {
                return Err(PatternSyntax::TrailingBackslash);
            };
            match escaped(next)? {
                Escaped::Char(ch) => Ok((Member::Char(ch), i + 2)),
                Escaped::Perl(perl) => Ok((Member::Perl(perl, next), i + 2)),
            }
        }
        Some(&ch) => Ok((Member::Char(ch), i + 1)),
    }
}
