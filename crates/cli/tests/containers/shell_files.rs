//! `buildr completion` and the man pages, as the README's set-up installs
//! them (`scripts/install-shell-files.sh`): bash loads the script and
//! registers the completion, `man -l` renders every page, and `buildr.1`
//! and the pages cover every command `buildr --help` lists.

use std::path::Path;
use std::process::Command;

use crate::build_common::BIN;
use crate::container_common::{check, workspace};
use buildr_testkit::prereq::need_tools;

/// The commands `buildr --help` lists.
fn listed_commands() -> Vec<String> {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    check(&out, "buildr --help");
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    let commands = help
        .split("Commands:\n")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").next())
        .unwrap_or_default();
    commands
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_completion_registers_and_completes_subcommands() {
    if !need_tools("bash_completion_registers", &["bash"]) {
        return;
    }
    let script = format!("source <({BIN} completion bash) && complete -p buildr");
    let out = Command::new("bash").args(["-c", &script]).output().unwrap();
    check(&out, "bash: complete -p buildr");
    let registered = String::from_utf8_lossy(&out.stdout);
    assert!(
        registered.contains("-F _buildr") && registered.trim_end().ends_with("buildr"),
        "{registered}"
    );
    // The function completes `buildr compl<TAB>` and `buildr system <TAB>`.
    let complete = |words: &str, cword: usize| {
        let script = format!(
            "source <({BIN} completion bash); COMP_WORDS=({words}); COMP_CWORD={cword}; \
             COMP_LINE='{words}'; COMP_POINT=${{#COMP_LINE}}; \
             _buildr buildr \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; printf '%s\\n' \"${{COMPREPLY[@]}}\""
        );
        let out = Command::new("bash").args(["-c", &script]).output().unwrap();
        check(&out, &format!("completing {words:?}"));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(complete("buildr compl", 1).trim(), "completion");
    let all = complete("buildr ''", 1);
    assert!(
        all.lines().any(|l| l == "run") && !all.contains("__man"),
        "{all}"
    );
    let system = complete("buildr system ''", 2);
    assert!(
        system.lines().any(|l| l == "df") && system.lines().any(|l| l == "prune"),
        "{system}"
    );
    for shell in ["zsh", "fish"] {
        let out = Command::new(BIN)
            .args(["completion", shell])
            .output()
            .unwrap();
        check(&out, shell);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("buildr") && text.contains("completion"),
            "{shell}: {text}"
        );
    }
    let out = Command::new(BIN)
        .args(["completion", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

#[test]
fn the_set_up_installs_completions_and_man_pages_that_render() {
    if !need_tools("man_pages_render", &["bash", "man", "groff"]) {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg(workspace().join("scripts/install-shell-files.sh"))
        .arg(BIN)
        .env("HOME", home.path())
        .env_remove("XDG_DATA_HOME")
        .env_remove("XDG_CONFIG_HOME")
        .output()
        .unwrap();
    check(&out, "install-shell-files.sh");
    let data = home.path().join(".local/share");
    for file in [
        data.join("bash-completion/completions/buildr"),
        data.join("zsh/site-functions/_buildr"),
        home.path().join(".config/fish/completions/buildr.fish"),
    ] {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(
            text.contains("buildr"),
            "{} is missing or empty",
            file.display()
        );
    }
    let man1 = data.join("man/man1");
    let commands = listed_commands();
    assert!(commands.len() > 30, "{commands:?}");
    let top = render(&man1.join("buildr.1"));
    for command in &commands {
        assert!(
            top.contains(command.as_str()),
            "buildr.1 does not list {command}"
        );
        let page = render(&man1.join(format!("buildr-{command}.1")));
        assert!(
            page.contains(&format!("buildr-{command}")),
            "buildr-{command}.1: {page}"
        );
    }
    assert!(
        !commands.iter().any(|c| c.starts_with("__")),
        "the hidden __man shows: {commands:?}"
    );
    // A nested command has its page; its examples are its EXAMPLES section.
    let df = render(&man1.join("buildr-system-df.1"));
    assert!(
        df.contains("EXAMPLES") && df.contains("buildr system df"),
        "{df}"
    );
    // Running the set-up again replaces the files, nothing else.
    let again = Command::new("bash")
        .arg(workspace().join("scripts/install-shell-files.sh"))
        .arg(BIN)
        .env("HOME", home.path())
        .env_remove("XDG_DATA_HOME")
        .env_remove("XDG_CONFIG_HOME")
        .output()
        .unwrap();
    check(&again, "install-shell-files.sh, again");
    let mut top_level: Vec<String> = std::fs::read_dir(home.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    top_level.sort();
    assert_eq!(
        top_level,
        [".config", ".local"],
        "the set-up wrote outside its places"
    );
}

/// The page rendered by `man -l` as plain text; groff's warnings fail it.
fn render(page: &Path) -> String {
    let out = Command::new("man")
        .arg("-l")
        .arg(page)
        .env("MANWIDTH", "100")
        .env("MAN_KEEP_FORMATTING", "0")
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .output()
        .unwrap();
    check(&out, &format!("man -l {}", page.display()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.trim().is_empty(),
        "man -l {}: {stderr}",
        page.display()
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // Strip overstrike bold/underline (x\bx, _\bx) for comparisons.
    let mut plain = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if chars.peek() == Some(&'\u{8}') {
            chars.next();
            continue;
        }
        plain.push(c);
    }
    plain
}
