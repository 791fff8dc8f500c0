//! The subset of Go's `text/template` that docker users pass to
//! `inspect -f/--format`, evaluated over an inspect document (JSON):
//! field paths (`{{.State.Status}}`, `{{.}}`), `json`, `index`, `len`,
//! `lower`, `upper`, `join`, `range ... end` (with `$k, $v :=` or plain),
//! `if ... else ... end`, and `{{-`/`-}}` trimming. Values print as Go's
//! `fmt` prints them (`map[k:v]`, `[a b]`, `<no value>` for a missing key).
//! A malformed template is an error naming what is wrong.

use anyhow::{anyhow, bail};
use serde_json::Value;

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct GoTemplate {
    nodes: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Print(Expr),
    Range {
        vars: Option<(String, String)>,
        over: Expr,
        body: Vec<Node>,
    },
    If {
        cond: Expr,
        then: Vec<Node>,
        otherwise: Vec<Node>,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    /// `.A.B` from the dot (empty: the dot itself), or `$v.A` from a variable.
    Path {
        var: Option<String>,
        fields: Vec<String>,
    },
    Str(String),
    Call(String, Vec<Expr>),
}

/// A lexed `{{ ... }}` action or the text between two.
enum Token {
    Text(String),
    Action(String),
}

impl GoTemplate {
    /// Parses `text`.
    pub fn parse(text: &str) -> anyhow::Result<GoTemplate> {
        let tokens = lex(text)?;
        let mut pos = 0;
        let (nodes, end) = parse_nodes(&tokens, &mut pos)?;
        if let Some(end) = end {
            bail!("template: unexpected {{{{{end}}}}}");
        }
        Ok(GoTemplate { nodes })
    }

    /// The template applied to `doc`.
    pub fn render(&self, doc: &Value) -> anyhow::Result<String> {
        let mut out = String::new();
        let mut vars = Vec::new();
        render_nodes(&self.nodes, doc, &mut vars, &mut out)?;
        Ok(out)
    }
}

fn lex(text: &str) -> anyhow::Result<Vec<Token>> {
    let mut tokens = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let mut before = rest[..start].to_owned();
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| anyhow!("template: unclosed action {:?}", &rest[start..]))?;
        let mut action = &after[..end];
        if let Some(trimmed) = action.strip_prefix('-') {
            before = before.trim_end().to_owned();
            action = trimmed;
        }
        let trim_after = action.ends_with('-');
        if trim_after {
            action = &action[..action.len() - 1];
        }
        if !before.is_empty() {
            tokens.push(Token::Text(before));
        }
        tokens.push(Token::Action(action.trim().to_owned()));
        rest = &after[end + 2..];
        if trim_after {
            rest = rest.trim_start();
        }
    }
    if !rest.is_empty() {
        tokens.push(Token::Text(rest.to_owned()));
    }
    Ok(tokens)
}

/// Nodes up to an `else` or `end` (returned) or the input's end (`None`).
fn parse_nodes(tokens: &[Token], pos: &mut usize) -> anyhow::Result<(Vec<Node>, Option<String>)> {
    let mut nodes = Vec::new();
    while let Some(token) = tokens.get(*pos) {
        *pos += 1;
        let action = match token {
            Token::Text(text) => {
                nodes.push(Node::Text(text.clone()));
                continue;
            }
            Token::Action(action) => action,
        };
        if action == "end" || action == "else" {
            return Ok((nodes, Some(action.clone())));
        }
        if let Some(rest) = action.strip_prefix("range ") {
            let (vars, over) = range_head(rest)?;
            let (body, end) = parse_nodes(tokens, pos)?;
            expect_end(end, "range")?;
            nodes.push(Node::Range { vars, over, body });
        } else if let Some(rest) = action.strip_prefix("if ") {
            let cond = parse_expr(rest)?;
            let (then, end) = parse_nodes(tokens, pos)?;
            let otherwise = match end.as_deref() {
                Some("else") => {
                    let (otherwise, end) = parse_nodes(tokens, pos)?;
                    expect_end(end, "if")?;
                    otherwise
                }
                _ => {
                    expect_end(end, "if")?;
                    Vec::new()
                }
            };
            nodes.push(Node::If {
                cond,
                then,
                otherwise,
            });
        } else if !action.starts_with("/*") {
            nodes.push(Node::Print(parse_expr(action)?));
        }
    }
    Ok((nodes, None))
}

fn expect_end(end: Option<String>, what: &str) -> anyhow::Result<()> {
    match end.as_deref() {
        Some("end") => Ok(()),
        Some(other) => bail!("template: unexpected {{{{{other}}}}} in {what}"),
        None => bail!("template: {what} has no {{{{end}}}}"),
    }
}

/// `$k, $v := EXPR`, `$v := EXPR` or `EXPR`.
fn range_head(text: &str) -> anyhow::Result<(Option<(String, String)>, Expr)> {
    let Some((vars, expr)) = text.split_once(":=") else {
        return Ok((None, parse_expr(text)?));
    };
    let names: Vec<&str> = vars.split(',').map(str::trim).collect();
    let valid = |n: &&str| n.starts_with('$') && n.len() > 1;
    let vars = match names.as_slice() {
        [v] if valid(v) => ("".to_owned(), v[1..].to_owned()),
        [k, v] if valid(k) && valid(v) => (k[1..].to_owned(), v[1..].to_owned()),
        _ => bail!("template: bad range variables {vars:?}"),
    };
    Ok((Some(vars), parse_expr(expr)?))
}

fn parse_expr(text: &str) -> anyhow::Result<Expr> {
    let words = split_words(text)?;
    let Some((first, args)) = words.split_first() else {
        bail!("template: empty action");
    };
    if args.is_empty() {
        return operand(first);
    }
    match first.as_str() {
        "json" | "index" | "len" | "lower" | "upper" | "join" | "title" | "println" => {
            let args = args
                .iter()
                .map(|a| operand(a))
                .collect::<anyhow::Result<_>>()?;
            Ok(Expr::Call(first.clone(), args))
        }
        other => bail!("template: function {other:?} not defined"),
    }
}

fn operand(word: &str) -> anyhow::Result<Expr> {
    if let Some(s) = word.strip_prefix('"') {
        let s = s
            .strip_suffix('"')
            .ok_or_else(|| anyhow!("template: unterminated string {word}"))?;
        return Ok(Expr::Str(s.replace("\\n", "\n").replace("\\t", "\t")));
    }
    let (var, path) = if let Some(rest) = word.strip_prefix('$') {
        let (name, path) = rest.split_at(rest.find('.').unwrap_or(rest.len()));
        (Some(name.to_owned()), path)
    } else if word.starts_with('.') {
        (None, word)
    } else {
        bail!("template: function {word:?} not defined");
    };
    let fields = path
        .split('.')
        .filter(|f| !f.is_empty())
        .map(str::to_owned)
        .collect();
    Ok(Expr::Path { var, fields })
}

/// Splits an action into words; double-quoted strings are one word.
fn split_words(text: &str) -> anyhow::Result<Vec<String>> {
    let mut words = Vec::new();
    let mut chars = text.trim().chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut word = String::new();
        if c == '"' {
            word.push(chars.next().unwrap_or('"'));
            let mut closed = false;
            while let Some(c) = chars.next() {
                word.push(c);
                if c == '\\' {
                    word.extend(chars.next());
                } else if c == '"' {
                    closed = true;
                    break;
                }
            }
            if !closed {
                bail!("template: unterminated string in {text:?}");
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
        }
        words.push(word);
    }
    Ok(words)
}

fn render_nodes(
    nodes: &[Node],
    dot: &Value,
    vars: &mut Vec<(String, Value)>,
    out: &mut String,
) -> anyhow::Result<()> {
    for node in nodes {
        match node {
            Node::Text(text) => out.push_str(text),
            Node::Print(expr) => out.push_str(&go_fmt(&eval(expr, dot, vars)?)),
            Node::If {
                cond,
                then,
                otherwise,
            } => {
                let branch = if truthy(&eval(cond, dot, vars)?) {
                    then
                } else {
                    otherwise
                };
                render_nodes(branch, dot, vars, out)?;
            }
            Node::Range {
                vars: names,
                over,
                body,
            } => {
                let items: Vec<(Value, Value)> = match eval(over, dot, vars)? {
                    Value::Array(items) => items
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| (Value::from(i), v))
                        .collect(),
                    Value::Object(map) => {
                        map.into_iter().map(|(k, v)| (Value::from(k), v)).collect()
                    }
                    Value::Null => Vec::new(),
                    other => bail!("template: range can't iterate over {}", go_fmt(&other)),
                };
                for (key, value) in items {
                    let pushed = match names {
                        Some((k, v)) => {
                            if !k.is_empty() {
                                vars.push((k.clone(), key));
                            }
                            vars.push((v.clone(), value.clone()));
                            if k.is_empty() { 1 } else { 2 }
                        }
                        None => 0,
                    };
                    render_nodes(body, &value, vars, out)?;
                    vars.truncate(vars.len() - pushed);
                }
            }
        }
    }
    Ok(())
}

fn eval(expr: &Expr, dot: &Value, vars: &[(String, Value)]) -> anyhow::Result<Value> {
    match expr {
        Expr::Str(s) => Ok(Value::from(s.clone())),
        Expr::Path { var, fields } => {
            let mut value = match var {
                None => dot.clone(),
                Some(name) => vars
                    .iter()
                    .rev()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| anyhow!("template: undefined variable ${name}"))?,
            };
            for field in fields {
                value = match value {
                    Value::Object(mut map) => map.remove(field).unwrap_or(Value::Null),
                    Value::Null => Value::Null,
                    other => bail!(
                        "template: can't evaluate field {field} in {}",
                        go_fmt(&other)
                    ),
                };
            }
            Ok(value)
        }
        Expr::Call(name, args) => {
            let args = args
                .iter()
                .map(|a| eval(a, dot, vars))
                .collect::<anyhow::Result<Vec<_>>>()?;
            call(name, args)
        }
    }
}

fn call(name: &str, args: Vec<Value>) -> anyhow::Result<Value> {
    let one = |args: &[Value]| -> anyhow::Result<Value> {
        match args {
            [v] => Ok(v.clone()),
            _ => bail!("template: {name} takes one argument, got {}", args.len()),
        }
    };
    Ok(match name {
        "json" => Value::from(serde_json::to_string(&one(&args)?)?),
        "len" => Value::from(match one(&args)? {
            Value::Array(a) => a.len(),
            Value::Object(m) => m.len(),
            Value::String(s) => s.len(),
            Value::Null => 0,
            other => bail!("template: len of {}", go_fmt(&other)),
        }),
        "lower" => Value::from(go_fmt(&one(&args)?).to_lowercase()),
        "upper" => Value::from(go_fmt(&one(&args)?).to_uppercase()),
        "title" => {
            let text = go_fmt(&one(&args)?);
            let mut chars = text.chars();
            Value::from(match chars.next() {
                Some(c) => c.to_uppercase().chain(chars).collect(),
                None => String::new(),
            })
        }
        "println" => Value::from(format!(
            "{}\n",
            args.iter().map(go_fmt).collect::<Vec<_>>().join(" ")
        )),
        "join" => match args.as_slice() {
            [Value::Array(items), sep] => {
                let items: Vec<String> = items.iter().map(go_fmt).collect();
                Value::from(items.join(&go_fmt(sep)))
            }
            _ => bail!("template: join takes a list and a separator"),
        },
        "index" => {
            let Some((first, keys)) = args.split_first() else {
                bail!("template: index of nothing");
            };
            let mut value = first.clone();
            for key in keys {
                value = match (value, key) {
                    (Value::Object(mut map), Value::String(k)) => {
                        map.remove(k).unwrap_or(Value::Null)
                    }
                    (Value::Array(items), Value::Number(n)) => n
                        .as_u64()
                        .and_then(|i| items.get(usize::try_from(i).ok()?).cloned())
                        .ok_or_else(|| anyhow!("template: index {n} out of range"))?,
                    (Value::Null, _) => Value::Null,
                    (other, key) => {
                        bail!(
                            "template: can't index {} with {}",
                            go_fmt(&other),
                            go_fmt(key)
                        )
                    }
                };
            }
            value
        }
        other => bail!("template: function {other:?} not defined"),
    })
}

/// Go's truth: false, 0, nil and empty strings, lists and maps are false.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

/// A value as Go's `fmt.Print` shows it.
fn go_fmt(value: &Value) -> String {
    match value {
        Value::Null => "<no value>".to_owned(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(go_fmt).collect();
            format!("[{}]", items.join(" "))
        }
        Value::Object(map) => {
            let items: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}:{}", go_fmt(v)))
                .collect();
            format!("map[{}]", items.join(" "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(template: &str, doc: &Value) -> String {
        GoTemplate::parse(template).unwrap().render(doc).unwrap()
    }

    #[test]
    fn docker_users_templates() {
        let doc = serde_json::json!({
            "Id": "abc",
            "State": {"Status": "running", "Running": true, "ExitCode": 0},
            "Config": {"Labels": {"com.example": "x", "b": "y"}, "Env": ["A=1", "B=2"]},
            "NetworkSettings": {"Networks": {"bridge": {"IPAddress": "10.88.0.2"}},
                "Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}},
            "Mounts": [],
        });
        let cases = [
            ("{{.State.Status}}", "running"),
            ("{{.Id}} {{.State.ExitCode}}", "abc 0"),
            (
                "{{json .State}}",
                r#"{"ExitCode":0,"Running":true,"Status":"running"}"#,
            ),
            ("{{index .Config.Labels \"com.example\"}}", "x"),
            ("{{.Config.Labels}}", "map[b:y com.example:x]"),
            ("{{.Config.Env}}", "[A=1 B=2]"),
            ("{{join .Config.Env \",\"}}", "A=1,B=2"),
            (
                "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                "10.88.0.2",
            ),
            ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
            ("{{if .Mounts}}m{{else}}none{{end}}", "none"),
            ("{{len .Config.Env}}", "2"),
            ("{{.Missing}}", "<no value>"),
            ("{{upper .State.Status}}", "RUNNING"),
            ("a {{- .Id -}} b", "aabcb"),
        ];
        for (template, want) in cases {
            assert_eq!(render(template, &doc), want, "{template}");
        }
        let ports = "{{range $p, $b := .NetworkSettings.Ports}}{{$p}}={{len $b}}{{end}}";
        assert_eq!(render(ports, &doc), "80/tcp=1");
    }

    #[test]
    fn bad_templates_are_errors_naming_what_is_wrong() {
        for (template, want) in [
            ("{{.State", "unclosed action"),
            ("{{range .X}}", "no {{end}}"),
            ("{{end}}", "unexpected {{end}}"),
            ("{{nosuch .X}}", "not defined"),
            ("{{\"open}}", "unterminated"),
        ] {
            let err = GoTemplate::parse(template).unwrap_err().to_string();
            assert!(err.contains(want), "{template}: {err}");
        }
        let doc = serde_json::json!({"A": 1});
        let err = GoTemplate::parse("{{.A.B}}")
            .unwrap()
            .render(&doc)
            .unwrap_err()
            .to_string();
        assert!(err.contains("can't evaluate field B"), "{err}");
    }
}
