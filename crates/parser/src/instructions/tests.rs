//! Typing tests: one behaviour each, on small Dockerfiles. The snapshot
//! cases in `tests/test_data.rs` cover the same ground end to end.

use super::*;

/// The raw tree from the real scanner and node builder.
fn ast(text: &str) -> Ast {
    crate::syntax::parse_ast("Dockerfile", text.as_bytes()).unwrap_or_else(|e| panic!("{e}"))
}

fn ok(text: &str) -> Dockerfile {
    match from_ast(ast(text)) {
        Ok(d) => d,
        Err(e) => panic!("{text}\n{e}"),
    }
}

fn err(text: &str) -> Diagnostic {
    match from_ast(ast(text)) {
        Ok(d) => panic!("expected an error for {text}, got {d:#?}"),
        Err(e) => e.diagnostics[0].clone(),
    }
}

#[test]
fn stages_and_meta_args() {
    let d = ok(
        "ARG BASE=alpine V\nFROM --platform=linux/amd64 $BASE AS Build\nRUN make\nFROM scratch\nCOPY --from=build /out /",
    );
    assert_eq!(d.meta_args.len(), 1);
    assert_eq!(
        d.meta_args[0].value.args,
        vec![
            ArgDecl {
                name: "BASE".into(),
                default: Some("alpine".into())
            },
            ArgDecl {
                name: "V".into(),
                default: None
            },
        ]
    );
    assert_eq!(d.stages.len(), 2);
    assert_eq!(d.stages[0].name.as_deref(), Some("build"));
    assert_eq!(d.stages[0].platform.as_deref(), Some("linux/amd64"));
    assert_eq!(d.stages[0].base, "$BASE");
    assert_eq!(d.stage_by_name("BUILD").map(|(i, _)| i), Some(0));
    let Instruction::Copy(copy) = &d.stages[1].instructions[0].value else {
        panic!("not a copy");
    };
    assert_eq!(copy.from.as_deref(), Some("build"));
    assert_eq!(copy.sources, vec![CopySource::Path("/out".into())]);
    // StageNameCasing warning, pointing at the name.
    assert_eq!(d.warnings.len(), 1, "{:#?}", d.warnings);
    assert!(
        d.warnings[0]
            .message
            .contains("'Build' should be lowercase")
    );
    assert_eq!(d.warnings[0].pos, Pos { line: 2, col: 38 });
}

#[test]
fn errors_point_at_the_word() {
    let e = err("FROM alpine\nCOPY --chwon=1 a b");
    assert_eq!(e.message, "unknown flag: --chwon (did you mean chown?)");
    assert_eq!(e.help.as_deref(), Some("did you mean `--chown`?"));
    assert_eq!(e.pos, Pos { line: 2, col: 6 });
    assert_eq!(e.line_text, "COPY --chwon=1 a b");

    let e = err("FROM alpine\nRUNN make");
    assert_eq!(e.message, "unknown instruction: RUNN (did you mean RUN?)");
    assert_eq!(e.help.as_deref(), Some("did you mean `RUN`?"));

    let e = err("FROM alpine\nADD --from=x a b");
    assert_eq!(
        e.help.as_deref(),
        Some("--from is a flag of COPY, not of ADD")
    );

    let e = err("RUN make\nFROM alpine");
    assert!(
        e.message.starts_with("no build stage in current context"),
        "{e}"
    );

    let e = err("FROM alpine\nCOPY a");
    assert!(
        e.message
            .starts_with("COPY requires at least two arguments"),
        "{e}"
    );
    assert_eq!(e.pos, Pos { line: 2, col: 6 });

    let e = err("FROM a AS x\nFROM b AS x");
    assert_eq!(
        e.message,
        "duplicate stage name \"x\", stage names should be unique"
    );
    assert_eq!(e.pos, Pos { line: 2, col: 11 });

    let e = err("FROM alpine\nHEALTHCHECK --interval=5 CMD true");
    assert!(
        e.message
            .starts_with("invalid duration \"5\" for --interval"),
        "{e}"
    );

    let e = err("FROM alpine\nSHELL /bin/sh -c");
    assert_eq!(e.message, "SHELL requires the arguments to be in JSON form");
    assert_eq!(
        e.help.as_deref(),
        Some("write it as a JSON array: SHELL [\"/bin/sh\", \"-c\"]")
    );

    let e = err("FROM alpine\nONBUILD FROM x");
    assert_eq!(e.message, "FROM isn't allowed as an ONBUILD trigger");
    let e = err("FROM alpine\nONBUILD ONBUILD RUN x");
    assert_eq!(
        e.message,
        "chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"
    );
    assert_eq!(e.pos, Pos { line: 2, col: 9 });
}

#[test]
fn flags_like_bflags() {
    for (text, want) in [
        (
            "COPY --link=maybe a b",
            "expecting boolean value for flag --link, not: maybe",
        ),
        ("COPY --link= a b", "missing a value on flag: --link"),
        ("COPY --from a b", "missing a value on flag: --from"),
        (
            "COPY --from=a --from=b a b",
            "duplicate flag specified: --from",
        ),
        ("RUN --network=bridge x", "invalid network mode \"bridge\""),
        ("RUN --security=root x", "security \"root\" is not valid"),
        ("CMD --doit [\"a\"]", "unknown flag: --doit"),
        (
            "HEALTHCHECK --retries=-1 CMD x",
            "--retries cannot be negative (-1)",
        ),
        (
            "HEALTHCHECK --timeout=500us CMD x",
            "interval --timeout cannot be less than 1ms",
        ),
        (
            "HEALTHCHECK CONNECT TCP",
            "unknown type \"CONNECT\" in HEALTHCHECK (try CMD)",
        ),
        ("HEALTHCHECK NONE x", "HEALTHCHECK NONE takes no arguments"),
        ("HEALTHCHECK CMD", "missing command after HEALTHCHECK CMD"),
        ("HEALTHCHECK", "HEALTHCHECK requires at least one argument"),
        ("USER", "USER requires exactly one argument"),
        ("EXPOSE", "EXPOSE requires at least one argument"),
        ("RUN --mount=type=cache x", "cache mount requires a target"),
    ] {
        let e = err(&format!("FROM alpine\n{text}"));
        assert_eq!(e.message, want, "{text}");
    }
    let d = ok(
        "FROM alpine\nCOPY --link --exclude=a --exclude=b --chmod=755 --parents x y\nADD --link=false --keep-git-dir --checksum=sha256:0 --unpack=true u /d",
    );
    let [copy, add] = &d.stages[0].instructions[..] else {
        panic!()
    };
    let (Instruction::Copy(copy), Instruction::Add(add)) = (&copy.value, &add.value) else {
        panic!()
    };
    assert!(copy.link && copy.parents);
    assert_eq!(copy.excludes, ["a", "b"]);
    assert_eq!(copy.chmod.as_deref(), Some("755"));
    assert!(!add.link);
    assert_eq!(add.keep_git_dir, Some(true));
    assert_eq!(add.unpack, Some(true));
    assert_eq!(add.checksum.as_deref(), Some("sha256:0"));
}

#[test]
fn healthcheck_and_commands() {
    let d = ok(
        "FROM a\nHEALTHCHECK --interval=1m30s --timeout=500ms --start-period=0s --retries=3 CMD [\"curl\", \"-f\"]\nCMD echo hi\nSHELL [\"/bin/bash\", \"-c\"]\nENTRYPOINT run it",
    );
    let i = &d.stages[0].instructions;
    let Instruction::Healthcheck(Healthcheck::Cmd(h)) = &i[0].value else {
        panic!()
    };
    assert_eq!(h.interval, Some(std::time::Duration::from_secs(90)));
    assert_eq!(h.timeout, Some(std::time::Duration::from_millis(500)));
    assert_eq!(h.start_period, None);
    assert_eq!(h.retries, Some(3));
    assert_eq!(
        h.command,
        CommandLine::Exec(vec!["curl".into(), "-f".into()])
    );
    assert_eq!(
        i[1].value,
        Instruction::Cmd(CommandLine::Shell("echo hi".into()))
    );
    // JSONArgsRecommended for CMD (no SHELL yet), not for ENTRYPOINT after SHELL.
    let rules: Vec<_> = d.warnings.iter().map(|w| w.pos.line).collect();
    assert_eq!(rules, [3]);
    let d = ok("FROM a\nHEALTHCHECK NONE\nMAINTAINER me");
    assert_eq!(
        d.stages[0].instructions[0].value,
        Instruction::Healthcheck(Healthcheck::None)
    );
    assert!(
        d.warnings[0]
            .message
            .contains("maintainer instruction is deprecated")
    );
}

#[test]
fn check_directive_controls_lints() {
    let mut a = ast("FROM a AS B\nMAINTAINER me");
    a.directives.check = Some("skip=StageNameCasing".into());
    let d = from_ast(a).unwrap();
    assert_eq!(d.warnings.len(), 1);
    let mut a = ast("FROM a AS B");
    a.directives.check = Some("error=true".into());
    let e = from_ast(a).unwrap_err();
    assert_eq!(e.diagnostics[0].severity, Severity::Error);
}

#[test]
fn no_stage_is_an_error() {
    let e = err("ARG X=1");
    assert_eq!(e.message, "dockerfile contains no stages to build");
}

#[test]
fn onbuild_keeps_expression() {
    let d = ok("FROM a\nONBUILD RUN --mount=type=cache,target=/c make");
    let Instruction::Onbuild(o) = &d.stages[0].instructions[0].value else {
        panic!()
    };
    assert_eq!(o.expression, "RUN --mount=type=cache,target=/c make");
    let Instruction::Run(run) = o.instruction.as_ref() else {
        panic!()
    };
    assert_eq!(run.mounts.len(), 1);
}

#[test]
fn hand_built_nodes_type_without_the_scanner() {
    // from_ast only needs nodes: an embedder may build them itself.
    let node = |keyword: &str, words: &[&str], line: u32| Node {
        keyword: keyword.to_string(),
        flags: Vec::new(),
        args: Args::Words {
            words: words.iter().map(|w| w.to_string()).collect(),
            json: false,
        },
        heredocs: Vec::new(),
        original: format!("{} {}", keyword.to_uppercase(), words.join(" ")),
        span: Span::at(line, 1),
    };
    let ast = Ast {
        file: "built".into(),
        lines: vec!["FROM alpine".into(), "COPY a".into()],
        directives: Directives::default(),
        nodes: vec![node("from", &["alpine"], 1), node("copy", &["a"], 2)],
        warnings: Vec::new(),
    };
    let e = from_ast(ast).unwrap_err();
    assert_eq!(e.diagnostics[0].pos, Pos { line: 2, col: 6 });
    assert_eq!(e.diagnostics[0].line_text, "COPY a");
}
