//! BuildKit's AST dump (`parser.Node.Dump`): one line per instruction,
//! `(keyword ["--flag" ...] "arg" ...)`, strings quoted as Go's
//! `strconv.Quote`. Used by the conformance tests and by `buildr` debugging
//! output; heredoc bodies are not part of it.

use std::fmt::Write as _;

use crate::ast::{Args, Ast, Node};

/// Renders the AST as BuildKit's dumper does, each line ending with `\n`.
pub fn dump(ast: &Ast) -> String {
    let mut out = String::new();
    for node in &ast.nodes {
        out.push('(');
        out.push_str(&dump_node(node));
        out.push_str(")\n");
    }
    out
}

fn dump_node(node: &Node) -> String {
    let mut out = node.keyword.clone();
    if !node.flags.is_empty() {
        out.push_str(" [");
        for (i, flag) in node.flags.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            let text = match &flag.value {
                Some(value) => format!("--{}={value}", flag.name),
                None => format!("--{}", flag.name),
            };
            quote_into(&mut out, &text);
        }
        out.push(']');
    }
    match &node.args {
        Args::Words { words, .. } => {
            for word in words {
                out.push(' ');
                quote_into(&mut out, word);
            }
        }
        // ARG keeps each `name[=value]` word whole; ENV and LABEL list
        // (name, value, separator) triples.
        Args::Pairs(pairs) if node.keyword == "arg" => {
            for pair in pairs {
                out.push(' ');
                match &pair.value {
                    Some(value) => quote_into(&mut out, &format!("{}={value}", pair.key)),
                    None => quote_into(&mut out, &pair.key),
                }
            }
        }
        Args::Pairs(pairs) => {
            for pair in pairs {
                for part in [
                    &pair.key,
                    pair.value.as_deref().unwrap_or_default(),
                    &pair.sep,
                ] {
                    out.push(' ');
                    quote_into(&mut out, part);
                }
            }
        }
        Args::Nested(inner) => {
            out.push_str(" (");
            out.push_str(&dump_node(inner));
            out.push(')');
        }
    }
    // Go trims the node's text (only matters for an empty keyword).
    out.trim().to_string()
}

/// Go's `strconv.Quote` (`%q`), for messages in BuildKit's words.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    quote_into(&mut out, s);
    out
}

fn quote_into(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if is_go_print(c) => out.push(c),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\x7f' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
}

/// Go's `unicode.IsPrint`: letters, marks, numbers, punctuation, symbols and
/// the ASCII space.
fn is_go_print(c: char) -> bool {
    use unicode_properties::{GeneralCategoryGroup as Group, UnicodeGeneralCategory};
    c == ' '
        || matches!(
            c.general_category_group(),
            Group::Letter | Group::Mark | Group::Number | Group::Punctuation | Group::Symbol
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_like_go() {
        assert_eq!(quote("a b"), r#""a b""#);
        assert_eq!(
            quote("\" \\ / \u{8} \u{c} \n \r \t \0"),
            r#""\" \\ / \b \f \n \r \t \x00""#
        );
        assert_eq!(quote("♥☃é"), "\"♥☃é\"");
        assert_eq!(
            quote("\u{7f}\u{a0}\u{200b}\u{feff}"),
            r#""\x7f\u00a0\u200b\ufeff""#
        );
        assert_eq!(quote("\u{f0000}\u{10ffff}"), r#""\U000f0000\U0010ffff""#);
        // Unassigned code points are not printable either.
        assert_eq!(quote("\u{378}"), r#""\u0378""#);
        assert_eq!(quote("\x07\x0b"), r#""\a\v""#);
    }
}
