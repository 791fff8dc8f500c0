//! Data-driven parser tests: every `test_data/ok/*.Dockerfile` must parse
//! and match its `.expected` rendering of the typed Dockerfile; every
//! `test_data/err/*.Dockerfile` must fail with the diagnostics in its
//! `.expected`. `UPDATE_SNAPSHOTS=1` rewrites the snapshots; otherwise a
//! missing snapshot fails.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use buildr_parser::{Dockerfile, Instruction, parse};
use buildr_testkit::expect;
use proptest::prelude::*;

fn data_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("test_data")
        .join(kind)
}

fn cases(kind: &str) -> Vec<PathBuf> {
    expect::cases(&data_dir(kind), "Dockerfile")
}

/// A stable, readable rendering of a typed Dockerfile (source lines are
/// left out: they are the input).
fn render(dockerfile: &Dockerfile) -> String {
    let mut out = String::new();
    writeln!(out, "directives: {:?}", dockerfile.directives).unwrap();
    writeln!(out, "meta_args: {:#?}", dockerfile.meta_args).unwrap();
    writeln!(out, "stages: {:#?}", dockerfile.stages).unwrap();
    writeln!(out, "warnings:").unwrap();
    for warning in &dockerfile.warnings {
        writeln!(out, "{warning}").unwrap();
    }
    out
}

/// Compare with the snapshot next to `case`, or write it when updating.
fn check_snapshot(case: &Path, actual: &str) -> Option<String> {
    expect::check(case, "expected", actual)
}

fn case_name(case: &Path) -> String {
    case.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn ok_cases() {
    let mut failures = Vec::new();
    let cases = cases("ok");
    for case in &cases {
        let source = fs::read(case).expect("read case");
        match parse(&case_name(case), &source) {
            Ok(dockerfile) => failures.extend(check_snapshot(case, &render(&dockerfile))),
            Err(e) => failures.push(format!("{}: unexpected error\n{e}", case.display())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    eprintln!("{} ok cases matched", cases.len());
}

#[test]
fn err_cases() {
    let mut failures = Vec::new();
    let cases = cases("err");
    for case in &cases {
        let source = fs::read(case).expect("read case");
        match parse(&case_name(case), &source) {
            Ok(dockerfile) => failures.push(format!(
                "{}: parsed but must fail\n{}",
                case.display(),
                render(&dockerfile)
            )),
            Err(e) => {
                assert!(!e.diagnostics.is_empty(), "{}: empty error", case.display());
                failures.extend(check_snapshot(case, &format!("{e}\n")));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    eprintln!("{} err cases matched", cases.len());
}

/// The CRLF case must really have CRLF endings (an editor or checkout that
/// converts them would silently turn the case into an LF one).
#[test]
fn crlf_case_has_crlf_endings() {
    let source = fs::read(data_dir("ok").join("crlf.Dockerfile")).expect("crlf case");
    let crlf = source.windows(2).filter(|w| w == b"\r\n").count();
    let lf = source.iter().filter(|&&b| b == b'\n').count();
    assert!(
        crlf > 0 && crlf == lf,
        "crlf.Dockerfile lost its CRLF endings"
    );
}

/// A 10,000-line Dockerfile, generated: every line is typed and lands in
/// the right stage.
#[test]
fn ten_thousand_lines() {
    let mut text = String::from("ARG BASE=alpine\n");
    let mut expected_instructions = 0;
    let mut expected_runs = 0;
    let mut stages = 0;
    let mut line = 1;
    while line < 10_000 {
        if line % 1000 == 1 {
            writeln!(text, "FROM $BASE AS stage{stages}").unwrap();
            stages += 1;
        } else {
            expected_runs += usize::from(line % 5 == 0);
            match line % 5 {
                0 => writeln!(text, "RUN --mount=type=cache,target=/c{line} echo {line}"),
                1 => writeln!(text, "ENV V{line}=\"value {line}\""),
                2 => writeln!(text, "COPY --link src{line} /dst/"),
                3 => writeln!(text, "LABEL l{line}=x"),
                _ => writeln!(text, "WORKDIR /w{line}"),
            }
            .unwrap();
            expected_instructions += 1;
        }
        line += 1;
    }
    assert_eq!(text.lines().count(), 10_000);
    let dockerfile = parse("big.Dockerfile", text.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(dockerfile.meta_args.len(), 1);
    assert_eq!(dockerfile.stages.len(), stages);
    let total: usize = dockerfile.stages.iter().map(|s| s.instructions.len()).sum();
    assert_eq!(total, expected_instructions);
    let last = dockerfile
        .stages
        .last()
        .unwrap()
        .instructions
        .last()
        .unwrap();
    assert_eq!(last.span.start.line, 10_000);
    let runs = dockerfile
        .stages
        .iter()
        .flat_map(|s| &s.instructions)
        .filter(|i| matches!(&i.value, Instruction::Run(r) if r.mounts.len() == 1))
        .count();
    assert_eq!(runs, expected_runs);
}

/// Dockerfile-shaped token soup: typing never panics, whatever the nodes.
fn token() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "FROM",
        "from",
        "RUN",
        "COPY",
        "ADD",
        "ONBUILD",
        "HEALTHCHECK",
        "CMD",
        "ENV",
        "ARG",
        "LABEL",
        "SHELL",
        "USER",
        "EXPOSE",
        "VOLUME",
        "STOPSIGNAL",
        "MAINTAINER",
        "WORKDIR",
        "ENTRYPOINT",
        "NONE",
        "AS",
        "as",
        "x",
        "=",
        "--",
        "--mount=",
        "--mount=type=cache",
        "--mount=type=secret,required",
        ",target=/t",
        ",size=1.5k",
        ",uid=$U",
        "--from=",
        "--link",
        "--link=maybe",
        "--interval=",
        "1m30s",
        "-1",
        "--retries=",
        "--chown",
        "--network=host",
        "--platform=linux/arm64",
        "[",
        "]",
        "\"a\"",
        ",",
        "<<EOF",
        "<<-E",
        "EOF",
        "E",
        "\t",
        " ",
        " ",
        "\n",
        "\\\n",
        "#",
        "# check=error=true\n",
        "$V",
        "'",
        "\"",
        "é",
        "\r\n",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn parse_never_panics(tokens in prop::collection::vec(token(), 0..60)) {
        let text = tokens.concat();
        match parse("fuzz.Dockerfile", text.as_bytes()) {
            Ok(dockerfile) => {
                prop_assert!(dockerfile.warnings.iter().all(|w| w.pos.line >= 1));
            }
            Err(e) => prop_assert!(!e.diagnostics.is_empty()),
        }
    }
}
