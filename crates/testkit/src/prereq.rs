//! The prerequisite rule: a test that cannot run here says so loudly and
//! returns early, and under `CI=true` (where everything must run) it fails.

use std::path::Path;
use std::process::Command;

/// Whether this is a CI run (`CI=true`): missing prerequisites fail.
pub fn is_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Reports that `test` lacks `what`: a panic under `CI=true`, else a loud
/// skip. Returns `false`, so checks read `found || missing(test, what)`.
pub fn missing(test: &str, what: &str) -> bool {
    if is_ci() {
        panic!("{test}: prerequisite missing under CI=true: {what}");
    }
    eprintln!("\n!!! SKIPPING {test}: {what} (set CI=true to make this a failure) !!!\n");
    false
}

/// Whether the tests run as root.
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// True when running as root, else [`missing`].
pub fn need_root(test: &str) -> bool {
    is_root() || missing(test, "needs root")
}

/// Whether `tool` exists: an absolute path that exists, or a name found on
/// `PATH` or in the sbin directories (which a non-login root PATH may lack).
pub fn has_tool(tool: &str) -> bool {
    if tool.contains('/') {
        return Path::new(tool).exists();
    }
    let on_path = Command::new("sh")
        .args(["-c", &format!("command -v '{tool}'")])
        .output()
        .is_ok_and(|o| o.status.success());
    on_path
        || ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
            .iter()
            .any(|dir| Path::new(dir).join(tool).exists())
}

/// True when `tool` exists ([`has_tool`]), else [`missing`].
pub fn need_tool(test: &str, tool: &str) -> bool {
    has_tool(tool) || missing(test, &format!("needs `{tool}` (scripts/install-deps.sh)"))
}

/// True when every one of `tools` exists, else [`missing`] naming all the
/// absent ones in one message.
pub fn need_tools(test: &str, tools: &[&str]) -> bool {
    let absent: Vec<&str> = tools.iter().copied().filter(|t| !has_tool(t)).collect();
    absent.is_empty()
        || missing(
            test,
            &format!("needs {} (scripts/install-deps.sh)", absent.join(", ")),
        )
}
