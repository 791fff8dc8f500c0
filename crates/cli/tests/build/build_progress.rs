//! `buildr build --progress tty` under a real terminal (a tmux pane with a
//! private server): the live frame shows a running step with a moving timer
//! and its last output lines, the cursor is hidden while it is drawn and
//! back afterwards (after Ctrl-C too, which leaves a view that is not
//! FINISHED and a CANCELED step), the final screen has every step and a
//! summary, a rebuild shows `CACHED` steps, a failure shows `ERROR` and the
//! step's output once, no frame line is wider than the pane; and the plain
//! fallbacks: `--progress auto` off a terminal and `TERM=dumb`.
//!
//! Needs root, overlayfs, busybox-static, umoci and tar (the build harness)
//! and tmux: without them the tests skip loudly, under CI=true they fail.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::build_common::{BIN, Env};
use buildr_testkit::prereq::need_tool;

const WIDTH: usize = 100;

/// The busybox store, or `None` when a prerequisite is missing.
fn env(test: &str) -> Option<Env> {
    if !need_tool(test, "tmux") {
        return None;
    }
    Env::new(test)
}

/// A shell command running in a pane of its own tmux server (its socket in
/// a temp dir), killed with the server on drop.
struct Pane {
    socket: PathBuf,
}

impl Pane {
    /// Runs `command` (sh) in a WIDTH x 40 pane, then prints its exit code
    /// as `__EXIT__=N` and waits to be killed.
    fn start(dir: &Path, command: &str) -> Pane {
        static PANES: AtomicUsize = AtomicUsize::new(0);
        let n = PANES.fetch_add(1, Ordering::SeqCst);
        let pane = Pane {
            socket: dir.join(format!("tmux-{n}.sock")),
        };
        // The shell catches SIGINT (Ctrl-C goes to the whole foreground
        // group) to live on and print the code; the command gets it with
        // the default disposition, as a handler is not inherited.
        let script = format!("trap : INT; {command}; echo __EXIT__=$?; exec sleep 3600");
        let out = pane
            .tmux()
            .args(["new-session", "-d", "-s", "t", "-x", &WIDTH.to_string()])
            .args(["-y", "40", "sh", "-c", &script])
            .output()
            .expect("run tmux");
        assert!(
            out.status.success(),
            "tmux new-session: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pane
    }

    fn tmux(&self) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.arg("-f")
            .arg("/dev/null")
            .arg("-S")
            .arg(&self.socket)
            .env("TERM", "xterm-256color");
        cmd
    }

    /// The pane's text, history included, wrapped lines joined.
    fn capture(&self) -> String {
        let out = self
            .tmux()
            .args(["capture-pane", "-p", "-J", "-S", "-", "-t", "t"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn cursor_visible(&self) -> bool {
        let out = self
            .tmux()
            .args(["display-message", "-p", "-t", "t", "#{cursor_flag}"])
            .output()
            .expect("tmux display-message");
        String::from_utf8_lossy(&out.stdout).trim() == "1"
    }

    fn send_keys(&self, keys: &str) {
        let status = self
            .tmux()
            .args(["send-keys", "-t", "t", keys])
            .status()
            .expect("tmux send-keys");
        assert!(status.success());
    }

    /// Polls the pane until `until` holds for a capture (or the deadline);
    /// every capture, with whether the cursor was visible, goes to `seen`.
    fn watch(
        &self,
        seen: &mut Vec<(String, bool)>,
        timeout: Duration,
        until: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let visible = self.cursor_visible();
            let screen = self.capture();
            seen.push((screen.clone(), visible));
            if until(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?}; the pane shows:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(80));
        }
    }

    /// Waits for the command to end: its exit code and the final screen.
    fn wait_exit(&self, seen: &mut Vec<(String, bool)>) -> (i32, String) {
        let screen = self.watch(seen, Duration::from_secs(120), |s| s.contains("__EXIT__="));
        let code = screen
            .lines()
            .find_map(|l| l.strip_prefix("__EXIT__="))
            .and_then(|c| c.trim().parse().ok())
            .expect("an exit code");
        (code, screen)
    }
}

impl Drop for Pane {
    fn drop(&mut self) {
        let _ = self.tmux().arg("kill-server").output();
    }
}

/// `buildr build --progress MODE -t TAG CONTEXT` as a shell command.
fn build_command(env: &Env, mode: &str, tag: &str, context: &Path) -> String {
    format!(
        "{BIN} --root {} build --progress {mode} -t {tag} {}",
        env.root().display(),
        context.display()
    )
}

fn context(env: &Env, name: &str, dockerfile: &str) -> PathBuf {
    let dir = env.dir.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    std::fs::write(dir.join("hello.txt"), "hello from the context\n").unwrap();
    dir
}

/// The last frame on a screen: from the last header to the end.
fn find_frame(screen: &str) -> Option<Vec<&str>> {
    let lines: Vec<&str> = screen.lines().collect();
    let start = lines.iter().rposition(|l| l.starts_with("[+] Building"))?;
    Some(lines[start..].to_vec())
}

fn last_frame(screen: &str) -> Vec<&str> {
    find_frame(screen).unwrap_or_else(|| panic!("no frame on the screen:\n{screen}"))
}

/// The timer at the end of a step line (`... 3.2s`).
fn timer(line: &str) -> Option<f64> {
    line.split_whitespace()
        .last()?
        .strip_suffix('s')?
        .parse()
        .ok()
}

/// No frame line may reach the last column (it would wrap).
fn assert_clamped(screen: &str) {
    for line in screen.lines() {
        if line.starts_with("=> ") || line.starts_with("[+] ") || line.starts_with("Build ") {
            assert!(
                line.chars().count() < WIDTH,
                "a frame line of {} columns in a {WIDTH}-column pane: {line:?}",
                line.chars().count()
            );
        }
    }
}

const LONG_RUN: &str = "RUN echo live-one; echo live-two; sleep 4; echo live-three \
                        # a comment long enough that the step line must be cut to the pane's width";

#[test]
fn live_frame_final_summary_and_cached_rebuild() {
    let Some(env) = env("live_frame_final_summary_and_cached_rebuild") else {
        return;
    };
    let dockerfile = format!(
        "FROM buildr-fixtures/busybox:latest\nCOPY hello.txt /hello.txt\n{LONG_RUN}\nRUN cat /hello.txt\n"
    );
    let ctx = context(&env, "live", &dockerfile);
    let pane = Pane::start(
        env.dir.path(),
        &build_command(&env, "tty", "progress-live:1", &ctx),
    );
    let mut seen = Vec::new();
    let (code, screen) = pane.wait_exit(&mut seen);
    assert_eq!(code, 0, "the build failed:\n{screen}");
    assert!(
        pane.cursor_visible(),
        "the cursor is hidden after the build"
    );

    // Live frames: the RUN step running (no status word) with a timer and
    // the output so far under it, while the cursor is hidden.
    let run = "=> [3/4] RUN echo live-one; echo live-two;";
    let mut timers = Vec::new();
    let mut hidden_during_run = false;
    for (screen, visible) in &seen {
        if screen.contains("FINISHED") {
            continue;
        }
        let Some(frame) = find_frame(screen) else {
            continue;
        };
        let Some(pos) = frame.iter().position(|l| l.starts_with(run)) else {
            continue;
        };
        if frame[pos + 1..].contains(&"=> => # live-two") {
            assert_eq!(frame[pos + 1], "=> => # live-one", "{screen}");
            timers.push(timer(frame[pos]).expect("a timer on the running step"));
            hidden_during_run |= !visible;
        }
        assert_clamped(screen);
    }
    timers.dedup();
    assert!(
        timers.len() >= 2,
        "no live frame with a running timer and the step's output; timers seen {timers:?}, \
         last screen:\n{screen}"
    );
    assert!(
        timers.windows(2).all(|w| w[0] <= w[1]),
        "the timer went back: {timers:?}"
    );
    assert!(hidden_during_run, "the cursor was visible while drawing");

    // The final screen: every step with its time, no output, a summary.
    let frame = last_frame(&screen);
    assert!(frame[0].ends_with("(4/4) FINISHED"), "{screen}");
    let steps = [
        "=> [1/4] FROM docker.io/buildr-fixtures/busybox:latest@sha256:",
        "=> [2/4] COPY hello.txt /hello.txt",
        run,
        "=> [4/4] RUN cat /hello.txt",
    ];
    for (line, step) in frame[1..5].iter().zip(steps) {
        assert!(
            line.starts_with(step),
            "{line:?} is not {step:?}:\n{screen}"
        );
        assert!(timer(line).is_some(), "no time on {line:?}");
    }
    assert!(timer(frame[3]).unwrap() >= 3.9, "{}", frame[3]);
    assert!(
        frame[5].starts_with("Build finished in ") && frame[5].contains(": 4 steps, "),
        "{screen}"
    );
    assert!(!frame.iter().any(|l| l.starts_with("=> => #")), "{screen}");
    assert_clamped(&screen);
    drop(pane);

    // The same build again: every step from the cache.
    let pane = Pane::start(
        env.dir.path(),
        &build_command(&env, "tty", "progress-live:2", &ctx),
    );
    let (code, screen) = pane.wait_exit(&mut Vec::new());
    assert_eq!(code, 0, "the rebuild failed:\n{screen}");
    let frame = last_frame(&screen);
    for (line, step) in frame[1..5].iter().zip(steps) {
        let cached = step.replacen("=> ", "=> CACHED ", 1);
        let cut = &cached[..cached.len().min(WIDTH - 8)];
        assert!(
            line.starts_with(cut),
            "{line:?} is not {cached:?}:\n{screen}"
        );
    }
    assert!(frame[5].ends_with(": 4 steps, 4 cached"), "{screen}");
    assert!(pane.cursor_visible());
}

#[test]
fn a_failed_step_shows_error_and_its_output() {
    let Some(env) = env("a_failed_step_shows_error_and_its_output") else {
        return;
    };
    let ctx = context(
        &env,
        "fail",
        "FROM buildr-fixtures/busybox:latest\n\
         RUN echo fail-out-1; echo fail-out-2 >&2; exit 7\n",
    );
    let pane = Pane::start(
        env.dir.path(),
        &build_command(&env, "tty", "progress-fail:1", &ctx),
    );
    let (code, screen) = pane.wait_exit(&mut Vec::new());
    assert_ne!(code, 0, "{screen}");
    assert!(pane.cursor_visible());
    let frame = last_frame(&screen);
    let error = frame
        .iter()
        .position(|l| l.starts_with("=> ERROR [2/2] RUN echo fail-out-1"))
        .unwrap_or_else(|| panic!("no ERROR step:\n{screen}"));
    // As BuildKit's tty view: the finished view shows no output under the
    // failed step; its output is printed once, in the report below.
    assert!(
        frame[error + 1].starts_with("Build failed after "),
        "{screen}"
    );
    for out in ["fail-out-1", "fail-out-2"] {
        let shown: Vec<&str> = screen
            .lines()
            .filter(|l| l.contains(out) && !l.contains(&format!("echo {out}")))
            .collect();
        assert_eq!(
            shown.len(),
            1,
            "{out} is shown {} times:\n{screen}",
            shown.len()
        );
    }
    assert!(frame[0].ends_with("(2/2) FINISHED"), "{screen}");
    // Without a view (`-q`), the error itself carries the last output.
    let quiet = env.buildr(&["build", "-q", ctx.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&quiet.stderr);
    assert!(
        stderr.contains("last output:") && stderr.contains("  fail-out-1"),
        "{stderr}"
    );
    assert!(
        frame
            .iter()
            .any(|l| l.starts_with("Build failed after ") && l.ends_with("1 failed")),
        "{screen}"
    );
    // BuildKit's report: the step and its output between rules, then the error.
    let report = frame
        .iter()
        .position(|l| *l == " > [2/2] RUN echo fail-out-1; echo fail-out-2 >&2; exit 7:")
        .unwrap_or_else(|| panic!("no error report:\n{screen}"));
    assert_eq!(frame[report - 1], "------");
    for (line, out) in [
        (frame[report + 1], "fail-out-"),
        (frame[report + 2], "fail-out-"),
    ] {
        let (at, text) = line.split_once(' ').unwrap_or_default();
        assert!(
            at.parse::<f64>().is_ok() && text.starts_with(out),
            "{line:?}:\n{screen}"
        );
    }
    assert_eq!(frame[report + 3], "------");
    // Then BuildKit's source block, then the error.
    let after: Vec<&str> = frame[report + 4..].iter().map(|l| l.trim_end()).collect();
    assert_eq!(
        after.get(..6),
        Some(
            &[
                "Dockerfile:2",
                "--------------------",
                "   1 |     FROM buildr-fixtures/busybox:latest",
                "   2 | >>> RUN echo fail-out-1; echo fail-out-2 >&2; exit 7",
                "   3 |",
                "--------------------",
            ][..]
        ),
        "{screen}"
    );
    assert!(
        after.get(6).is_some_and(|l| l.starts_with("buildr: error:")
            && l.contains("did not complete successfully: exit code: 7")),
        "{screen}"
    );
}

#[test]
fn ctrl_c_cancels_and_gives_the_cursor_back() {
    let Some(env) = env("ctrl_c_cancels_and_gives_the_cursor_back") else {
        return;
    };
    let ctx = context(
        &env,
        "interrupt",
        "FROM buildr-fixtures/busybox:latest\nRUN echo waiting-for-ctrl-c; sleep 120\n",
    );
    let pane = Pane::start(
        env.dir.path(),
        &build_command(&env, "tty", "progress-int:1", &ctx),
    );
    let mut seen = Vec::new();
    pane.watch(&mut seen, Duration::from_secs(60), |s| {
        s.contains("=> => # waiting-for-ctrl-c") && !s.contains("__EXIT__")
    });
    assert!(
        !pane.cursor_visible(),
        "the cursor shows during the live view"
    );
    pane.send_keys("C-c");
    let (code, screen) = pane.wait_exit(&mut seen);
    assert_eq!(code, 130, "{screen}");
    assert!(pane.cursor_visible(), "Ctrl-C left the cursor hidden");
    let frame = last_frame(&screen);
    // BuildKit's view of a cancelled build: the stopped step never
    // completed (1 of 2) and says CANCELED; the build is not FINISHED.
    assert!(
        frame[0].starts_with("[+] Building ") && frame[0].trim_end().ends_with("(1/2)"),
        "{screen}"
    );
    assert!(!screen.contains("FINISHED"), "{screen}");
    assert!(
        frame[2].starts_with("=> CANCELED [2/2] RUN echo waiting-for-ctrl-c"),
        "{screen}"
    );
    assert!(
        frame.iter().any(|l| l.starts_with("Build canceled after ")),
        "{screen}"
    );
    assert!(screen.contains("interrupted"), "{screen}");
}

#[test]
fn plain_when_not_a_terminal_or_dumb() {
    let Some(env) = env("plain_when_not_a_terminal_or_dumb") else {
        return;
    };
    let ctx = context(
        &env,
        "plain",
        "FROM buildr-fixtures/busybox:latest\nRUN echo plain-output\n",
    );
    // Stderr a pipe: `auto` is plain.
    let out = env.buildr(&["build", "--progress", "auto", ctx.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.lines().any(|l| l.starts_with("#1 ")), "{stderr}");
    // `#N 0.012 plain-output`: the step's output, timed.
    assert!(
        stderr.lines().any(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words.len() == 3 && words[1].parse::<f64>().is_ok() && words[2] == "plain-output"
        }),
        "{stderr}"
    );
    assert!(
        !stderr.contains('\x1b'),
        "escapes in plain output: {stderr:?}"
    );
    assert!(!stderr.contains("[+] Building"), "{stderr}");

    // A terminal that cannot move its cursor: plain, even for `tty`.
    let command = format!(
        "TERM=dumb {}",
        build_command(&env, "tty", "progress-dumb:1", &ctx)
    );
    let pane = Pane::start(env.dir.path(), &command);
    let (code, screen) = pane.wait_exit(&mut Vec::new());
    assert_eq!(code, 0, "{screen}");
    assert!(screen.lines().any(|l| l.starts_with("#1 ")), "{screen}");
    assert!(!screen.contains("[+] Building"), "{screen}");
    drop(pane);

    // `auto` on a terminal is the live view.
    let pane = Pane::start(
        env.dir.path(),
        &build_command(&env, "auto", "progress-auto:1", &ctx),
    );
    let (code, screen) = pane.wait_exit(&mut Vec::new());
    assert_eq!(code, 0, "{screen}");
    let frame = last_frame(&screen);
    assert!(frame[0].ends_with("(2/2) FINISHED"), "{screen}");
    assert!(frame[2].starts_with("=> CACHED [2/2] RUN echo plain-output"));
}
