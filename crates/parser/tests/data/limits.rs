//! Size limits: a 1 MiB line, a 10^6-line Dockerfile and unterminated
//! heredocs parse in bounded time and memory or fail with an error that
//! names the file and line. BuildKit has no hard limit on either, so
//! neither do we; what is checked is that work and memory stay linear.
//!
//! Each case runs in a child process (this test binary re-executed with
//! one case selected), so its peak RSS (`VmHWM`) is its own and not that of
//! the other tests running in parallel threads.

use std::fmt::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

use buildr_parser::{Instruction, parse};

const CASE_ENV: &str = "BUILDR_PARSER_LIMITS_CASE";

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Runs `case` in a child process and returns (elapsed, peak RSS in MiB,
/// the child's report line).
fn measure(case: &str) -> (Duration, u64, String) {
    let exe = std::env::current_exe().unwrap();
    let start = Instant::now();
    let out = Command::new(exe)
        .args([
            "--exact",
            &buildr_testkit::test_name!(child_case),
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CASE_ENV, case)
        .output()
        .unwrap();
    let elapsed = start.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "case {case} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = stdout
        .lines()
        .find_map(|l| l.split_once("REPORT ").map(|(_, r)| r))
        .unwrap_or_else(|| panic!("case {case} gave no report:\n{stdout}"))
        .to_owned();
    let rss = report
        .split_whitespace()
        .find_map(|w| w.strip_prefix("rss_kib="))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap();
    eprintln!("{case}: {elapsed:?}, peak RSS {} MiB: {report}", rss / 1024);
    (elapsed, rss / 1024, report)
}

fn one_mib_line() -> String {
    // One RUN whose shell form is a single 1 MiB physical line.
    let mut text = String::from("FROM scratch\nRUN echo ");
    text.push_str(&"a".repeat(1 << 20));
    text.push('\n');
    text
}

fn one_mib_continued() -> String {
    // The same MiB as 1 KiB pieces joined by continuations, with a variable
    // in each piece (one logical line of 1024 physical lines).
    let mut text = String::from("FROM scratch\nENV X=y\nRUN echo");
    for _ in 0..1024 {
        text.push_str(&format!(" ${{X}}{}\\\n", "b".repeat(1016)));
    }
    text.push_str(" end\n");
    text
}

fn million_lines() -> String {
    let mut text = String::with_capacity(24 << 20);
    text.push_str("FROM scratch\n");
    for i in 1..1_000_000 {
        match i % 4 {
            0 => writeln!(text, "ENV V{i}=x"),
            1 => writeln!(text, "# comment {i}"),
            2 => writeln!(text, "LABEL l{i}=y"),
            _ => writeln!(text),
        }
        .unwrap();
    }
    text
}

/// The body of one measured case, run in the child.
fn run_case(case: &str) -> String {
    match case {
        "line" | "continued" => {
            let text = if case == "line" {
                one_mib_line()
            } else {
                one_mib_continued()
            };
            let df = parse("Dockerfile", text.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
            let run = df.stages[0]
                .instructions
                .iter()
                .find_map(|i| match &i.value {
                    Instruction::Run(run) => Some(run),
                    _ => None,
                })
                .expect("a RUN");
            let len = format!("{:?}", run.command).len();
            assert!(len >= 1_000_000, "command lost bytes: {len}");
            format!("input={} command_debug_len={len}", text.len())
        }
        "million" => {
            let text = million_lines();
            let df = parse("Dockerfile", text.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
            let n: usize = df.stages.iter().map(|s| s.instructions.len()).sum();
            assert_eq!(n, 499_999, "instructions");
            let last = df.stages[0].instructions.last().unwrap();
            assert_eq!(
                last.span.start.line, 999_999,
                "span of the last instruction"
            );
            format!("input={} instructions={n}", text.len())
        }
        "million-error" => {
            // The first fifth of those lines, with a typo after them: the
            // error names its line.
            let mut text = million_lines();
            let cut = text[..text.len() / 5].rfind('\n').unwrap() + 1;
            text.truncate(cut);
            let lines = text.lines().count();
            text.push_str("RUNN echo\n");
            let err = parse("big.Dockerfile", text.as_bytes())
                .unwrap_err()
                .to_string();
            let at = format!("big.Dockerfile:{}", lines + 1);
            assert!(err.contains(&at), "{err}");
            format!("input={} error_len={}", text.len(), err.len())
        }
        other => panic!("unknown case {other}"),
    }
}

/// Entry point of the child process; a no-op in the normal run.
#[test]
fn child_case() {
    let Ok(case) = std::env::var(CASE_ENV) else {
        return;
    };
    let report = run_case(&case);
    println!("REPORT {report} rss_kib={}", peak_rss_kib());
}

#[test]
fn a_one_mib_line_parses_in_linear_time_and_memory() {
    for case in ["line", "continued"] {
        let (elapsed, rss_mib, _) = measure(case);
        // A few copies of the input (text, joined line, AST, typed tree)
        // plus the test binary; a quadratic scan would take minutes.
        assert!(rss_mib < 64, "{case}: peak RSS {rss_mib} MiB");
        assert!(elapsed < Duration::from_secs(30), "{case}: {elapsed:?}");
    }
}

#[test]
fn a_million_line_dockerfile_parses_in_linear_time_and_memory() {
    let (elapsed, rss_mib, _) = measure("million");
    // 12 MB of text, 500k instructions with their spans and source text:
    // about 450 MiB at peak (debug build); linear, not bounded by a limit.
    assert!(rss_mib < 1024, "peak RSS {rss_mib} MiB");
    assert!(elapsed < Duration::from_secs(180), "{elapsed:?}");
    let (elapsed, rss_mib, _) = measure("million-error");
    assert!(rss_mib < 256, "peak RSS {rss_mib} MiB");
    assert!(elapsed < Duration::from_secs(60), "{elapsed:?}");
}

#[test]
fn unterminated_heredocs_are_a_named_error() {
    for (text, line) in [
        ("FROM scratch\nRUN <<EOF\necho hi\n", 2),
        ("FROM scratch\nCOPY <<A <<B /dst/\na\nA\nb\n", 2),
        ("FROM scratch\nRUN <<-EOF\n\techo\n\tEO\n", 2),
        ("FROM scratch\nRUN <<EOF\n", 2),
    ] {
        match parse("Dockerfile", text.as_bytes()) {
            Err(e) => {
                let msg = e.to_string();
                assert!(
                    msg.contains(&format!("Dockerfile:{line}")) && msg.contains("heredoc"),
                    "{text:?}: {msg}"
                );
            }
            Ok(df) => panic!("{text:?}: parsed as {df:?}"),
        }
    }
    // A huge unterminated body is the same error, quickly.
    let mut text = String::from("FROM scratch\nRUN <<EOF\n");
    for _ in 0..200_000 {
        text.push_str("echo some body line\n");
    }
    let start = Instant::now();
    let msg = parse("Dockerfile", text.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("Dockerfile:2") && msg.contains("heredoc"),
        "{msg}"
    );
    assert!(start.elapsed() < Duration::from_secs(20));
}
