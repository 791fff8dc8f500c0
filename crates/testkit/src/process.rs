//! Running the reference tools a test compares against.

use std::process::{Command, Output};

/// Runs `cmd`, panicking with its output unless it succeeds; its stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("failed to run {cmd:?}: {e}"));
    succeeded(&out, &format!("{cmd:?}"))
}

/// `program args...` through [`run`].
pub fn run_tool(program: &str, args: &[&str]) -> String {
    run(Command::new(program).args(args))
}

/// The stdout of `out`, panicking with both streams unless it succeeded;
/// `what` names the command in the message.
pub fn succeeded(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
