//! The node builder: logical lines from the scanner to [`Node`]s, as
//! BuildKit's `newNodeFromLine` and its dispatch table of line parsers.
//!
//! Each logical line is split by the pest grammar (`instruction.pest`) into
//! keyword, flags and arguments; the arguments take the shape BuildKit gives
//! the instruction (whitespace list, name/value pairs, maybe-JSON, ...).
//! RUN, COPY and ADD (also under ONBUILD) in shell form may open heredocs,
//! whose bodies the scanner then reads.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::ops::Range;

use pest::Parser as _;
use pest::iterators::Pair as PestPair;

use crate::ast::{Args, Ast, Flag, Heredoc, Node, Pair};
use crate::diag::{Diagnostic, ParseError, Pos, Severity, Span};
use crate::expand::Lexer;
use crate::scan::{self, LogicalLine, Scanner};

mod heredoc;
use heredoc::{LastLines, can_contain_heredoc};

#[derive(Debug, pest_derive::Parser)]
#[grammar = "instruction.pest"]
struct InstructionParser;

/// `ONBUILD ONBUILD ...` nests nodes; the typed layer rejects any nesting,
/// this bound only keeps hostile input from building deep trees.
const MAX_NESTING: usize = 8;

/// Parses a Dockerfile into its raw syntax tree.
///
/// `file` is only used in diagnostics. Errors carry the file, line, column,
/// the quoted line and what was expected; warnings (empty continuation
/// lines) land in [`Ast::warnings`].
pub fn parse_ast(file: &str, source: &[u8]) -> Result<Ast, ParseError> {
    let text = scan::decode(file, source)?;
    let mut scanner = Scanner::new(file, text);
    let lines = scanner.lines().to_vec();
    let last_lines = OnceCell::new();
    let mut nodes = Vec::new();
    while let Some(line) = scanner.next_line()? {
        let builder = Builder {
            file,
            lines: &lines,
            line: &line,
            escape: scanner.escape(),
            last_lines: &last_lines,
        };
        let mut node = builder.node(0..line.text.len(), 0)?;
        if can_contain_heredoc(&node) && line.text.contains("<<") {
            for spec in builder.heredoc_specs()? {
                let Some(content) = scanner.read_heredoc(&spec.name, spec.chomp) else {
                    let pos = builder.pos(spec.offset);
                    return Err(builder.error_at(
                        pos,
                        format!(
                            "unterminated heredoc `{}` opened on line {}",
                            spec.name, pos.line
                        ),
                        format!(
                            "end the heredoc with a line containing only `{}`{}",
                            spec.name,
                            if spec.chomp {
                                " (leading tabs allowed)"
                            } else {
                                ""
                            }
                        ),
                    ));
                };
                node.heredocs.push(Heredoc {
                    name: spec.name,
                    content,
                    expand: spec.expand,
                    chomp: spec.chomp,
                    fd: spec.fd,
                });
            }
        }
        let end_line = scanner.current_line();
        node.span.end_line = end_line;
        if let Args::Nested(inner) = &mut node.args {
            inner.span.end_line = end_line;
            inner.heredocs.clone_from(&node.heredocs);
        }
        nodes.push(node);
    }
    let (lines, directives, warnings) = scanner.into_parts();
    if nodes.is_empty() {
        let line = scan::to_u32(lines.len().max(1));
        return Err(ParseError {
            diagnostics: vec![Diagnostic {
                severity: Severity::Error,
                file: file.to_string(),
                pos: Pos { line, col: 1 },
                message: "file with no instructions".to_string(),
                line_text: lines.last().copied().unwrap_or_default().to_string(),
                help: Some("a Dockerfile needs at least one instruction, e.g. `FROM`".to_string()),
            }],
        });
    }
    Ok(Ast {
        file: file.to_string(),
        lines: lines.iter().map(|l| l.to_string()).collect(),
        directives,
        nodes,
        warnings,
    })
}

/// Result of trying the JSON exec form.
enum JsonArray {
    Strings(Vec<String>),
    Invalid,
    NonString,
}

/// Builds nodes out of one logical line. Byte ranges index `line.text`.
struct Builder<'a, 'f> {
    file: &'a str,
    lines: &'a [&'f str],
    line: &'a LogicalLine,
    escape: char,
    /// Built on the first `<< WORD` (blank after `<<`) of the file.
    last_lines: &'a OnceCell<LastLines<'f>>,
}

impl Builder<'_, '_> {
    fn text(&self, range: &Range<usize>) -> &str {
        self.line.text.get(range.clone()).unwrap_or_default()
    }

    fn pos(&self, offset: usize) -> Pos {
        self.line.pos(self.lines, offset)
    }

    fn error_at(&self, pos: Pos, message: String, help: String) -> ParseError {
        let index = pos.line.saturating_sub(1) as usize;
        ParseError {
            diagnostics: vec![Diagnostic {
                severity: Severity::Error,
                file: self.file.to_string(),
                pos,
                message,
                line_text: self
                    .lines
                    .get(index)
                    .copied()
                    .unwrap_or_default()
                    .to_string(),
                help: Some(help),
            }],
        }
    }

    fn error(&self, offset: usize, message: String, help: impl Into<String>) -> ParseError {
        self.error_at(self.pos(offset), message, help.into())
    }

    /// Runs an entry rule of the grammar on `input`, which starts at byte
    /// `at` of the line. The grammar accepts every input, so a failure is a
    /// bug; it is still an error, not a panic.
    fn parse<'i>(
        &self,
        rule: Rule,
        input: &'i str,
        at: usize,
    ) -> Result<PestPair<'i, Rule>, ParseError> {
        let failed = |detail: String| {
            self.error(
                at,
                format!("internal parser error ({rule:?}): {detail}"),
                "please report this Dockerfile as a buildr bug",
            )
        };
        let mut pairs = InstructionParser::parse(rule, input).map_err(|e| failed(e.to_string()))?;
        pairs.next().ok_or_else(|| failed("no match".to_string()))
    }

    /// The input of the rules that need the escape character: the escape
    /// character, then the text of `range`. Spans in it are one byte (the
    /// ASCII escape character) past the line's offsets.
    fn escaped_input(&self, range: &Range<usize>) -> String {
        let mut input = String::with_capacity(range.len() + 1);
        input.push(self.escape);
        input.push_str(self.text(range));
        input
    }

    fn trim(&self, range: Range<usize>) -> Range<usize> {
        let text = self.text(&range);
        let start = range.start + (text.len() - text.trim_start().len());
        start..start + text.trim().len()
    }

    /// `newNodeFromLine` on `range`: keyword, flags, then the arguments in
    /// the shape of the keyword's line parser.
    fn node(&self, range: Range<usize>, depth: usize) -> Result<Node, ParseError> {
        let original = self.text(&range).to_string();
        let trimmed = self.trim(range);
        let mut start = self.pos(trimmed.start);
        if depth == 0 && start.line != self.line.start_line {
            // BuildKit starts the node at the first physical line, even when
            // that line holds only a line-continuation escape.
            start = Pos {
                line: self.line.start_line,
                col: 1,
            };
        }
        let (keyword, rest) = self.split_command(&trimmed)?;
        let (flags, args) = if rest.is_empty() {
            (Vec::new(), rest)
        } else {
            self.flags(rest)?
        };
        let args = self.trim(args);
        let keyword = self.text(&keyword).to_lowercase();
        let args = match keyword.as_str() {
            "add" | "copy" | "volume" => self.maybe_json_to_list(args)?,
            "arg" => self.name_or_name_val(args)?,
            "cmd" | "entrypoint" | "run" | "shell" => self.maybe_json(args)?,
            "env" => self.name_val(args, "env")?,
            "label" => self.name_val(args, "label")?,
            "expose" | "from" => self.whitespace_list(args)?,
            "healthcheck" => self.health(args)?,
            "maintainer" | "stopsignal" | "user" | "workdir" => self.string(args),
            "onbuild" => self.sub_command(args, depth)?,
            // Unknown instructions keep a node (the typed layer names them);
            // BuildKit's parseIgnore leaves one empty argument.
            _ => Args::Words {
                words: vec![String::new()],
                json: false,
            },
        };
        Ok(Node {
            keyword,
            flags,
            args,
            heredocs: Vec::new(),
            original,
            span: Span {
                start,
                end_line: self.line.end_line,
            },
        })
    }

    /// `splitCommand`: the keyword and the rest after the first whitespace.
    fn split_command(
        &self,
        range: &Range<usize>,
    ) -> Result<(Range<usize>, Range<usize>), ParseError> {
        let empty = range.end..range.end;
        if range.is_empty() {
            return Ok((empty.clone(), empty));
        }
        let mut keyword = empty.clone();
        let mut rest = empty;
        for pair in self
            .parse(Rule::command, self.text(range), range.start)?
            .into_inner()
        {
            let span = pair.as_span();
            let sub = range.start + span.start()..range.start + span.end();
            match pair.as_rule() {
                Rule::keyword => keyword = sub,
                Rule::rest => rest = sub,
                _ => {}
            }
        }
        Ok((keyword, rest))
    }

    /// `extractBuilderFlags`: the leading `--flag[=value]` words.
    fn flags(&self, range: Range<usize>) -> Result<(Vec<Flag>, Range<usize>), ParseError> {
        let input = self.escaped_input(&range);
        let base = range.start.wrapping_sub(1);
        let mut flags = Vec::new();
        let mut args = range.end..range.end;
        for pair in self.parse(Rule::flags, &input, range.start)?.into_inner() {
            let span = pair.as_span();
            let sub = base.wrapping_add(span.start())..base.wrapping_add(span.end());
            match pair.as_rule() {
                Rule::flag => {
                    let word = decode_flag(pair);
                    if word == "--" {
                        args = sub.end..range.end;
                        break;
                    }
                    let body = word.strip_prefix("--").unwrap_or(&word);
                    let (name, value) = match body.split_once('=') {
                        Some((name, value)) => (name.to_string(), Some(value.to_string())),
                        None => (body.to_string(), None),
                    };
                    let start = self.pos(sub.start);
                    let end_line = self.pos(sub.end).line;
                    flags.push(Flag {
                        name,
                        value,
                        span: Span { start, end_line },
                    });
                }
                Rule::rest => args = sub,
                _ => {}
            }
        }
        Ok((flags, args))
    }

    /// `parseWords`: word ranges, quotes and escapes kept raw, a trailing
    /// escape character dropped.
    fn words(&self, range: &Range<usize>) -> Result<Vec<Range<usize>>, ParseError> {
        let input = self.escaped_input(range);
        let base = range.start.wrapping_sub(1);
        let mut words = Vec::new();
        for pair in self.parse(Rule::words, &input, range.start)?.into_inner() {
            if pair.as_rule() != Rule::word {
                continue;
            }
            let span = pair.as_span();
            let end = pair
                .into_inner()
                .find(|p| p.as_rule() == Rule::esc_end)
                .map_or(span.end(), |p| p.as_span().start());
            if end > span.start() {
                words.push(base.wrapping_add(span.start())..base.wrapping_add(end));
            }
        }
        Ok(words)
    }

    /// `parseString`: the whole rest as one argument.
    fn string(&self, range: Range<usize>) -> Args {
        let words = if range.is_empty() {
            Vec::new()
        } else {
            vec![self.text(&range).to_string()]
        };
        Args::Words { words, json: false }
    }

    /// `parseStringsWhitespaceDelimited`.
    fn whitespace_list(&self, range: Range<usize>) -> Result<Args, ParseError> {
        let mut words = Vec::new();
        if !range.is_empty() {
            for pair in self
                .parse(Rule::ws_list, self.text(&range), range.start)?
                .into_inner()
            {
                if pair.as_rule() == Rule::item {
                    words.push(pair.as_str().to_string());
                }
            }
        }
        Ok(Args::Words { words, json: false })
    }

    /// `parseJSON`: a JSON array of strings, decoded by serde_json.
    fn json(&self, range: &Range<usize>) -> JsonArray {
        let text = self.text(range).trim_start();
        if !text.starts_with('[') {
            return JsonArray::Invalid;
        }
        match serde_json::from_str::<Vec<serde_json::Value>>(text) {
            Ok(values) => {
                let mut words = Vec::with_capacity(values.len());
                for value in values {
                    match value {
                        serde_json::Value::String(s) => words.push(s),
                        _ => return JsonArray::NonString,
                    }
                }
                JsonArray::Strings(words)
            }
            // Go decodes up to 10000 levels, then finds a non-string.
            Err(err) if err.to_string().starts_with("recursion limit exceeded") => {
                JsonArray::NonString
            }
            Err(_) => JsonArray::Invalid,
        }
    }

    fn not_strings(&self, range: &Range<usize>) -> ParseError {
        let text = self.text(range);
        let at = range.start + text.find('[').unwrap_or(0);
        self.error(
            at,
            "when using json array syntax, arrays must be comprised of strings only".to_string(),
            "write each element as a JSON string, e.g. [\"echo\", \"hello\"]",
        )
    }

    /// `parseMaybeJSON`: a JSON array of strings, else the whole rest as one
    /// shell-form string.
    fn maybe_json(&self, range: Range<usize>) -> Result<Args, ParseError> {
        if range.is_empty() {
            return Ok(Args::Words {
                words: Vec::new(),
                json: false,
            });
        }
        match self.json(&range) {
            JsonArray::Strings(words) => Ok(Args::Words { words, json: true }),
            JsonArray::NonString => Err(self.not_strings(&range)),
            JsonArray::Invalid => Ok(self.string(range)),
        }
    }

    /// `parseMaybeJSONToList`: a JSON array of strings, else a whitespace list.
    fn maybe_json_to_list(&self, range: Range<usize>) -> Result<Args, ParseError> {
        match self.json(&range) {
            JsonArray::Strings(words) => Ok(Args::Words { words, json: true }),
            JsonArray::NonString => Err(self.not_strings(&range)),
            JsonArray::Invalid => self.whitespace_list(range),
        }
    }

    /// `parseNameVal` (ENV, LABEL): `name=value ...`, or the legacy
    /// `name value` when the first word has no `=`.
    fn name_val(&self, range: Range<usize>, keyword: &str) -> Result<Args, ParseError> {
        let words = self.words(&range)?;
        let Some(first) = words.first() else {
            return Ok(Args::Pairs(Vec::new()));
        };
        if !self.text(first).contains('=') {
            let upper = keyword.to_uppercase();
            let pair = self
                .parse(Rule::legacy_pair, self.text(&range), range.start)
                .map_err(|_| {
                    self.error(
                        range.start,
                        format!("{keyword} must have two arguments"),
                        format!("write `{upper} name=value` (or the legacy `{upper} name value`)"),
                    )
                })?;
            let mut key = String::new();
            let mut value = String::new();
            for part in pair.into_inner() {
                match part.as_rule() {
                    Rule::item => key = part.as_str().to_string(),
                    Rule::rest => value = part.as_str().to_string(),
                    _ => {}
                }
            }
            return Ok(Args::Pairs(vec![Pair {
                key,
                value: Some(value),
                sep: String::new(),
            }]));
        }
        let mut pairs = Vec::with_capacity(words.len());
        for word in &words {
            let text = self.text(word);
            let Some((key, value)) = text.split_once('=') else {
                return Err(self.error(
                    word.start,
                    format!(
                        "syntax error - can't find = in {}",
                        crate::dump::quote(text)
                    ),
                    "must be of the form: name=value",
                ));
            };
            pairs.push(Pair {
                key: key.to_string(),
                value: Some(value.to_string()),
                sep: "=".to_string(),
            });
        }
        Ok(Args::Pairs(pairs))
    }

    /// `parseNameOrNameVal` (ARG): words `name` or `name=value`; the value is
    /// `None` for a bare name.
    fn name_or_name_val(&self, range: Range<usize>) -> Result<Args, ParseError> {
        let pairs = self
            .words(&range)?
            .iter()
            .map(|word| {
                let text = self.text(word);
                match text.split_once('=') {
                    Some((key, value)) => Pair {
                        key: key.to_string(),
                        value: Some(value.to_string()),
                        sep: "=".to_string(),
                    },
                    None => Pair {
                        key: text.to_string(),
                        value: None,
                        sep: String::new(),
                    },
                }
            })
            .collect();
        Ok(Args::Pairs(pairs))
    }

    /// `parseHealthConfig`: the type word, then a maybe-JSON command.
    fn health(&self, range: Range<usize>) -> Result<Args, ParseError> {
        if range.is_empty() {
            return Ok(Args::Words {
                words: Vec::new(),
                json: false,
            });
        }
        let mut kind = range.start..range.start;
        let mut rest = range.end..range.end;
        for pair in self
            .parse(Rule::health, self.text(&range), range.start)?
            .into_inner()
        {
            let span = pair.as_span();
            let sub = range.start + span.start()..range.start + span.end();
            match pair.as_rule() {
                Rule::health_type => kind = sub,
                Rule::rest => rest = sub,
                _ => {}
            }
        }
        if kind.is_empty() {
            return Ok(Args::Words {
                words: Vec::new(),
                json: false,
            });
        }
        let Args::Words { words, json } = self.maybe_json(rest)? else {
            return Ok(Args::Words {
                words: Vec::new(),
                json: false,
            });
        };
        let mut all = Vec::with_capacity(words.len() + 1);
        all.push(self.text(&kind).to_string());
        all.extend(words);
        Ok(Args::Words { words: all, json })
    }

    /// `parseSubCommand` (ONBUILD): the rest is an instruction of its own.
    fn sub_command(&self, range: Range<usize>, depth: usize) -> Result<Args, ParseError> {
        if range.is_empty() {
            return Ok(Args::Words {
                words: Vec::new(),
                json: false,
            });
        }
        if depth + 1 >= MAX_NESTING {
            return Err(self.error(
                range.start,
                "onbuild instructions nested too deeply".to_string(),
                "ONBUILD takes one instruction, which cannot be ONBUILD",
            ));
        }
        Ok(Args::Nested(Box::new(self.node(range, depth + 1)?)))
    }
}

/// The decoded text of a flag word: quotes removed, escapes resolved.
fn decode_flag(pair: PestPair<'_, Rule>) -> String {
    let mut word = String::from("--");
    for piece in pair.into_inner() {
        match piece.as_rule() {
            Rule::plain | Rule::sq_plain | Rule::dq_plain => word.push_str(piece.as_str()),
            // The escape character is one ASCII byte.
            Rule::escaped => word.push_str(piece.as_str().get(1..).unwrap_or_default()),
            _ => {}
        }
    }
    word
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dump::dump;

    fn parse(src: &str) -> Ast {
        parse_ast("Dockerfile", src.as_bytes()).unwrap_or_else(|e| panic!("{src:?}: {e}"))
    }

    fn parse_err(src: &str) -> Diagnostic {
        match parse_ast("Dockerfile", src.as_bytes()) {
            Ok(ast) => panic!("{src:?} parsed: {}", dump(&ast)),
            Err(err) => err.diagnostics[0].clone(),
        }
    }

    /// (name, content, expand, chomp, fd)
    type Doc = (String, String, bool, bool, Option<u32>);

    fn heredocs(src: &str) -> Vec<Vec<Doc>> {
        parse(src)
            .nodes
            .iter()
            .map(|n| {
                n.heredocs
                    .iter()
                    .map(|h| (h.name.clone(), h.content.clone(), h.expand, h.chomp, h.fd))
                    .collect()
            })
            .collect()
    }

    fn doc(name: &str, content: &str, expand: bool, chomp: bool) -> Doc {
        (name.to_string(), content.to_string(), expand, chomp, None)
    }

    #[test]
    fn dump_shapes() {
        let src = "FROM --platform=$P a AS b\nRUN --mount=type=cache,target=/x --network=none echo hi\n\
                   CMD [\"a\", \"b\"]\nENV a=1 b=\"2 3\"\nENV c 4 5\nLABEL x=y\nARG v w=1 x=\n\
                   ONBUILD COPY --from=a x y\nHEALTHCHECK --retries=3 CMD [\"true\"]\nHEALTHCHECK NONE\n\
                   USER me\nFOO bar\nCOPY \"--a=b\" -- c\nVOLUME [\"/v\"]\nSHELL [\"sh\", \"-c\"]";
        let expected = "(from [\"--platform=$P\"] \"a\" \"AS\" \"b\")\n\
            (run [\"--mount=type=cache,target=/x\" \"--network=none\"] \"echo hi\")\n\
            (cmd \"a\" \"b\")\n\
            (env \"a\" \"1\" \"=\" \"b\" \"\\\"2 3\\\"\" \"=\")\n\
            (env \"c\" \"4 5\" \"\")\n\
            (label \"x\" \"y\" \"=\")\n\
            (arg \"v\" \"w=1\" \"x=\")\n\
            (onbuild (copy [\"--from=a\"] \"x\" \"y\"))\n\
            (healthcheck [\"--retries=3\"] \"CMD\" \"true\")\n\
            (healthcheck \"NONE\")\n\
            (user \"me\")\n\
            (foo \"\")\n\
            (copy \"\\\"--a=b\\\"\" \"--\" \"c\")\n\
            (volume \"/v\")\n\
            (shell \"sh\" \"-c\")\n";
        assert_eq!(dump(&parse(src)), expected);
    }

    #[test]
    fn arg_pairs() {
        let ast = parse("ARG a b=c d=");
        let Args::Pairs(pairs) = &ast.nodes[0].args else {
            panic!("{:?}", ast.nodes[0].args);
        };
        assert_eq!(pairs[0].value, None);
        assert_eq!(pairs[1].value.as_deref(), Some("c"));
        assert_eq!(pairs[2].value.as_deref(), Some(""));
    }

    #[test]
    fn flags_decode_quotes_and_escapes() {
        let ast = parse("COPY --a=\"x y\" --b='p\\'q' --c=\\z --d x y\nCOPY --e -- --f g");
        let flags: Vec<_> = ast.nodes[0]
            .flags
            .iter()
            .map(|f| (f.name.as_str(), f.value.as_deref()))
            .collect();
        assert_eq!(
            flags,
            [
                ("a", Some("x y")),
                ("b", Some("p'q")),
                ("c", Some("z")),
                ("d", None)
            ]
        );
        assert_eq!(
            dump(&ast).lines().nth(1),
            Some("(copy [\"--e\"] \"--f\" \"g\")")
        );
    }

    #[test]
    fn spans_of_nodes_and_flags() {
        let src = "FROM a\n\n  RUN --x=1 \\\n    --y b \\\n  c\nCOPY <<EOF /x\nbody\nEOF\nRUN z";
        let ast = parse(src);
        let spans: Vec<_> = ast
            .nodes
            .iter()
            .map(|n| (n.span.start, n.span.end_line))
            .collect();
        assert_eq!(
            spans,
            [
                (Pos { line: 1, col: 1 }, 1),
                (Pos { line: 3, col: 3 }, 5),
                (Pos { line: 6, col: 1 }, 8),
                (Pos { line: 9, col: 1 }, 9),
            ]
        );
        let flags: Vec<_> = ast.nodes[1].flags.iter().map(|f| f.span).collect();
        assert_eq!(flags, [Span::at(3, 7), Span::at(4, 5)]);
        assert_eq!(ast.lines.len(), 9);
        assert_eq!(ast.file, "Dockerfile");
    }

    #[test]
    fn backtick_escape() {
        let src = "# escape=`\nFROM a\nCOPY C:\\src C:\\dst\nRUN dir `\n  C:\\ \nENV p=C:\\x q=`\"y\nCOPY --f=a`b x y";
        let ast = parse(src);
        assert_eq!(ast.directives.escape, '`');
        assert_eq!(
            dump(&ast),
            "(from \"a\")\n(copy \"C:\\\\src\" \"C:\\\\dst\")\n(run \"dir   C:\\\\\")\n\
             (env \"p\" \"C:\\\\x\" \"=\" \"q\" \"`\\\"y\" \"=\")\n(copy [\"--f=ab\"] \"x\" \"y\")\n"
        );
    }

    #[test]
    fn crlf_line_endings() {
        let src = "FROM a\r\nRUN echo \\\r\n  hi\r\nCOPY <<EOF /x\r\nline\r\nEOF\r\n";
        let ast = parse(src);
        assert_eq!(
            dump(&ast),
            "(from \"a\")\n(run \"echo   hi\")\n(copy \"<<EOF\" \"/x\")\n"
        );
        assert_eq!(ast.nodes[2].heredocs[0].content, "line\r\n");
        assert_eq!(ast.lines[1], "RUN echo \\");
    }

    #[test]
    fn two_heredocs_on_one_line() {
        let src = "FROM a\nCOPY <<FILE1 <<FILE2 /dest\ncontent 1\nFILE1\ncontent 2\nFILE2\nCOPY <<X <<Y /d\nY\nX\nX\nY\nRUN x";
        assert_eq!(
            heredocs(src),
            [
                vec![],
                vec![
                    doc("FILE1", "content 1\n", true, false),
                    doc("FILE2", "content 2\n", true, false)
                ],
                vec![doc("X", "Y\n", true, false), doc("Y", "X\n", true, false)],
                vec![],
            ]
        );
    }

    #[test]
    fn blank_after_heredoc_operator_needs_a_later_terminator() {
        // BuildKit 0.13 reads `<< 21` as an operator and a word: arithmetic.
        let src = "FROM a\nRUN test $(( 1 << 21 )) -eq 2097152\nRUN echo $((1 <<\t2))";
        assert_eq!(heredocs(src), [vec![], vec![], vec![]]);
        // BuildKit 1.16+ reads `<< EOF` as a heredoc; with its terminator
        // below, so does buildr.
        let src = "FROM a\nRUN cat << EOF\nhi\nEOF\nRUN cat 3<<  'Q' >&3\n$x\nQ";
        assert_eq!(
            heredocs(src),
            [
                vec![],
                vec![doc("EOF", "hi\n", true, false)],
                vec![("Q".to_string(), "$x\n".to_string(), false, false, Some(3))],
            ]
        );
        // Only a line after the instruction counts as the terminator.
        let src = "FROM a\nRUN <<21\n21\nRUN test $(( 1 << 21 )) = 2097152\nRUN x";
        assert_eq!(
            heredocs(src),
            [vec![], vec![doc("21", "", true, false)], vec![], vec![]]
        );
        // Without a terminator the text after the blanks is its own word.
        let src = "FROM a\nRUN x << 3<<EOF && y $((1<< z))\nbody\nEOF";
        assert_eq!(
            heredocs(src),
            [
                vec![],
                vec![(
                    "EOF".to_string(),
                    "body\n".to_string(),
                    true,
                    false,
                    Some(3)
                )]
            ]
        );
        // `<<-` then a blank is no heredoc in any BuildKit: `EOF` is the
        // next instruction.
        let ast = parse("FROM a\nRUN cat <<- EOF\nEOF");
        assert!(ast.nodes[1].heredocs.is_empty(), "{:?}", ast.nodes[1]);
        assert_eq!(ast.nodes[2].keyword, "eof");
    }

    #[test]
    fn chomped_heredoc_with_indented_terminator() {
        let src = "FROM a\nRUN <<-EOT\n\tbaz\n\t\tquux\n\tEOT\nRUN <<EOT\n\tx\n\tEOT\nEOT";
        assert_eq!(
            heredocs(src),
            [
                vec![],
                vec![doc("EOT", "baz\nquux\n", true, true)],
                vec![doc("EOT", "\tx\n\tEOT\n", true, false)]
            ]
        );
    }

    #[test]
    fn quoted_delimiters_do_not_expand() {
        let src = "FROM a\nRUN <<'A'\n$x\nA\nRUN <<\"B\"\nB\nRUN <<eo'f'\neof\nRUN <<eo\\'f\neo'f\n\
                   RUN <<'one two'\none two\nRUN <<  C  > foo\nC\nRUN 3<<D cat\nD";
        let docs = heredocs(src);
        assert_eq!(docs[1], [doc("A", "$x\n", false, false)]);
        assert_eq!(docs[2], [doc("B", "", false, false)]);
        assert_eq!(docs[3], [doc("eof", "", false, false)]);
        assert_eq!(docs[4], [doc("eo'f", "", true, false)]);
        assert_eq!(docs[5], [doc("one two", "", false, false)]);
        assert_eq!(docs[6], [doc("C", "", true, false)]);
        assert_eq!(
            docs[7],
            [("D".to_string(), String::new(), true, false, Some(3))]
        );
        // More of BuildKit's TestParseExtractsHeredoc cases.
        let src = "FROM a\nRUN <<'e'o\\'f\neo'f\nRUN <<$EOF\n$EOF\nRUN <<COMPLEX python3\nprint(1)\nCOMPLEX\n\
                   COPY <<file.txt /dest\nhello\nfile.txt\nRUN <<-'NOEXPAND'\n\tdon't $X\nNOEXPAND";
        let docs = heredocs(src);
        assert_eq!(docs[1], [doc("eo'f", "", false, false)]);
        assert_eq!(docs[2], [doc("$EOF", "", true, false)]);
        assert_eq!(docs[3], [doc("COMPLEX", "print(1)\n", true, false)]);
        assert_eq!(docs[4], [doc("file.txt", "hello\n", true, false)]);
        assert_eq!(docs[5], [doc("NOEXPAND", "don't $X\n", false, true)]);
        // A line BuildKit's lexer rejects opens no heredoc.
        let docs = heredocs("FROM a\nRUN <<EOF ${\nEOF");
        assert!(docs.iter().all(Vec::is_empty), "{docs:?}");
    }

    #[test]
    fn heredocs_only_where_buildkit_reads_them() {
        // JSON form, quoted `<<`, other instructions, `cat<<EOF`: no heredoc,
        // the next lines are instructions.
        let src =
            "FROM a\nRUN [\"<<EOF\"]\nRUN \"<<EOF\"\nUSER <<EOF\nRUN cat<<EOF\nRUN <<EOF sh\nEOF";
        let docs = heredocs(src);
        assert!(docs[..5].iter().all(Vec::is_empty), "{docs:?}");
        assert_eq!(docs[5], [doc("EOF", "", true, false)]);
        // ONBUILD RUN heredocs attach to the ONBUILD node and its inner node.
        let ast = parse("FROM a\nONBUILD RUN <<EOF\nhi\nEOF");
        let node = &ast.nodes[1];
        assert_eq!(node.heredocs.len(), 1);
        let Args::Nested(inner) = &node.args else {
            panic!("{:?}", node.args);
        };
        assert_eq!(inner.heredocs, node.heredocs);
        assert_eq!(inner.span.end_line, 4);
    }

    #[test]
    fn unterminated_heredoc_names_it_and_its_line() {
        let d = parse_err("FROM a\nRUN echo && \\\n  cat <<EOF\nbody\n");
        assert_eq!(d.message, "unterminated heredoc `EOF` opened on line 3");
        assert_eq!(d.pos, Pos { line: 3, col: 7 });
        assert_eq!(d.line_text, "  cat <<EOF");
        assert!(d.help.as_deref().unwrap_or_default().contains("`EOF`"));
    }

    #[test]
    fn negative_cases() {
        let d = parse_err("FROM busybox\n\nENV PATH");
        assert_eq!(d.message, "env must have two arguments");
        assert_eq!(d.pos, Pos { line: 3, col: 5 });
        let d = parse_err("CMD [ \"echo\", [ \"nested json\" ] ]");
        assert!(d.message.contains("strings only"), "{}", d.message);
        assert_eq!(d.pos, Pos { line: 1, col: 5 });
        let d = parse_err("ENV a=b c");
        assert_eq!(d.message, "syntax error - can't find = in \"c\"");
        assert_eq!(d.pos, Pos { line: 1, col: 9 });
        let d = parse_err("# only\n\n# comments\n");
        assert_eq!(d.message, "file with no instructions");
        let d = parse_err("");
        assert_eq!(d.message, "file with no instructions");
        let d = parse_err("FROM a\nRUN \0");
        assert_eq!(d.pos, Pos { line: 2, col: 5 });
    }

    #[test]
    fn json_edge_cases() {
        let ast = parse("CMD [\"a\"] x\nCMD [1e400]\nRUN []\nCMD [\"\\ud800\"]");
        assert_eq!(
            dump(&ast),
            "(cmd \"[\\\"a\\\"] x\")\n(cmd \"[1e400]\")\n(run)\n(cmd \"[\\\"\\\\ud800\\\"]\")\n"
        );
        let deep = format!("CMD [{}{}]", "[".repeat(200), "]".repeat(200));
        assert!(parse_err(&deep).message.contains("strings only"));
    }

    #[test]
    fn onbuild_nesting_is_bounded() {
        let ok = parse("ONBUILD ONBUILD RUN x");
        assert_eq!(dump(&ok), "(onbuild (onbuild (run \"x\")))\n");
        let deep = format!("{}RUN x", "ONBUILD ".repeat(100_000));
        let d = parse_err(&deep);
        assert_eq!(d.message, "onbuild instructions nested too deeply");
    }

    #[test]
    fn scanner_warnings_reach_the_ast() {
        let ast = parse("FROM a\nRUN a \\\n\n  b\nRUN c \\\n# note\n  d");
        assert_eq!(
            dump(&ast),
            "(from \"a\")\n(run \"a   b\")\n(run \"c   d\")\n"
        );
        assert_eq!(ast.warnings.len(), 1);
        assert_eq!(ast.warnings[0].pos, Pos { line: 3, col: 1 });
        assert_eq!(ast.warnings[0].severity, Severity::Warning);
    }

    #[test]
    fn ten_thousand_lines() {
        let mut src = String::from("FROM alpine\n");
        for i in 0..10_000 {
            match i % 4 {
                0 => src.push_str(&format!("RUN echo {i} && \\\n    true\n")),
                1 => src.push_str(&format!("ENV K{i}=v{i} L{i}=\"w {i}\"\n")),
                2 => src.push_str(&format!("COPY --chown=1:1 <<EOF /f{i}\nline {i}\nEOF\n")),
                _ => src.push_str(&format!("# comment {i}\nLABEL k{i}=v\n")),
            }
        }
        let ast = parse(&src);
        assert_eq!(ast.nodes.len(), 10_001);
        let last = ast.nodes.last().expect("nodes");
        assert_eq!(last.keyword, "label");
        assert_eq!(last.span.start.line, scan::to_u32(ast.lines.len()));
        assert_eq!(ast.nodes[3].heredocs[0].content, "line 2\n");
    }

    #[test]
    fn million_lines() {
        let src = format!("FROM a\n{}", "RUN x \\\n  y\n# c\n\n".repeat(250_000));
        let started = std::time::Instant::now();
        let ast = parse(&src);
        assert_eq!(ast.lines.len(), 1_000_001);
        assert_eq!(ast.nodes.len(), 250_001);
        assert_eq!(ast.nodes[250_000].span.start.line, 999_998);
        assert!(
            started.elapsed().as_secs() < 120,
            "took {:?}",
            started.elapsed()
        );
    }

    #[test]
    fn long_line_is_linear() {
        let words = "--f=x ".repeat(200_000);
        let src = format!(
            "FROM a\nRUN {words} echo\nENV {}\nRUN {}",
            "a=b ".repeat(250_000),
            "x".repeat(1 << 20)
        );
        let started = std::time::Instant::now();
        let ast = parse(&src);
        assert_eq!(ast.nodes[1].flags.len(), 200_000);
        assert_eq!(ast.nodes[1].flags[199_999].span.start.col, 5 + 6 * 199_999);
        let Args::Pairs(pairs) = &ast.nodes[2].args else {
            panic!("pairs");
        };
        assert_eq!(pairs.len(), 250_000);
        assert!(
            started.elapsed().as_secs() < 30,
            "took {:?}",
            started.elapsed()
        );
    }
}
