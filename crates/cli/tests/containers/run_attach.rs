//! Detached containers with a pty, driven through tmux like a user would:
//! `run -dit` + `attach` (typed input reaches the shell, its output comes
//! back and is in `logs`; ctrl-p ctrl-q detaches and leaves it running;
//! `exit N` ends the attach with N), and `create -it` + `start -ai`.
//! Root, busybox and tmux are needed: under CI=true their absence fails
//! the test, otherwise it says loudly that it skips.

use std::process::Command;

use crate::container_common::{Env, IMAGE, Tmux, missing};

fn prerequisites(test: &str) -> bool {
    crate::container_common::prerequisites(test)
        && (Command::new("tmux").arg("-V").output().is_ok()
            || missing(test, "needs tmux (scripts/install-deps.sh)"))
}

impl Env {
    fn state(&self, name: &str) -> serde_json::Value {
        let docs: serde_json::Value =
            serde_json::from_str(&self.ok(&["container", "inspect", name])).unwrap();
        docs[0]["State"].clone()
    }

    /// A tmux session running `buildr ARGS` on this store.
    fn tmux(&self, args: &str) -> Tmux {
        Tmux::start(&format!(
            "{} --root {} {args}",
            env!("CARGO_BIN_EXE_buildr"),
            self.root().display()
        ))
    }
}

#[test]
fn detached_tty_attach_detach_and_logs() {
    let test = "detached_tty_attach_detach_and_logs";
    if !prerequisites(test) {
        return;
    }
    let env = Env::new();
    env.ok(&["run", "-dit", "--name", "sh1", IMAGE, "sh"]);
    assert_eq!(env.state("sh1")["Status"], "running");

    let tmux = env.tmux("attach sh1");
    tmux.interact("echo hi-$((40+2))", "hi-42");
    // ctrl-p ctrl-q: the client leaves, the container stays.
    tmux.keys(&["C-p", "C-q"]);
    tmux.wait_line("EXITED=0");
    drop(tmux);
    assert_eq!(env.state("sh1")["Status"], "running");
    let logs = env.ok(&["logs", "sh1"]);
    assert!(logs.lines().any(|l| l.trim() == "hi-42"), "{logs:?}");

    // Attached again: earlier state is there, `exit 5` ends it with 5.
    let tmux = env.tmux("attach sh1");
    tmux.interact("echo again-$((1+1))", "again-2");
    tmux.keys(&["exit 5", "Enter"]);
    tmux.wait_line("EXITED=5");
    let state = env.state("sh1");
    assert_eq!(state["Status"], "exited");
    assert_eq!(state["ExitCode"], 5);
    assert!(env.ok(&["logs", "sh1"]).contains("again-2"));

    // Without a pty there is nothing to attach to; -d -i needs -t.
    env.ok(&["run", "-d", "--name", "plain", IMAGE, "sleep", "300"]);
    let out = env.run(&["attach", "plain"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("was not created with -t"));
    let out = env.run(&["run", "-di", IMAGE, "sh"]);
    assert!(!out.status.success());
}

#[test]
fn created_tty_container_starts_attached() {
    let test = "created_tty_container_starts_attached";
    if !prerequisites(test) {
        return;
    }
    let env = Env::new();
    env.ok(&["create", "-it", "--name", "sh2", IMAGE, "sh"]);
    assert_eq!(env.state("sh2")["Status"], "created");
    let tmux = env.tmux("start -ai sh2");
    tmux.interact("echo started-$((2*3))", "started-6");
    tmux.keys(&["exit 3", "Enter"]);
    tmux.wait_line("EXITED=3");
    let state = env.state("sh2");
    assert_eq!(state["Status"], "exited");
    assert_eq!(state["ExitCode"], 3);
    let logs = env.ok(&["logs", "sh2"]);
    assert!(logs.lines().any(|l| l.trim() == "started-6"), "{logs:?}");

    // A foreground `run -it` logs its pty output too.
    let tmux = env.tmux(&format!("run -it --name fg {IMAGE} sh"));
    tmux.interact("echo fore-$((3*3))", "fore-9");
    tmux.keys(&["exit", "Enter"]);
    tmux.wait_line("EXITED=0");
    let logs = env.ok(&["logs", "fg"]);
    assert!(logs.lines().any(|l| l.trim() == "fore-9"), "{logs:?}");
}
