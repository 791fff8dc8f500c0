//! The live tty view, as BuildKit draws it: a header
//! (`[+] Building 12.3s (7/12)`), one line per step with its status and
//! time (a live timer while it runs), the last lines of output of each
//! running step under it, redrawn in place at most ten times a second and
//! clamped to the terminal's width and height. At the end: the whole list
//! once more (FINISHED when every step completed; a cancelled build's
//! stopped steps CANCELED), a summary, and for a failed step its last
//! output lines, once, below the view.
//!
//! The view is hand-rolled rather than drawn with `indicatif`: BuildKit's
//! view is one frame redrawn as a whole, which here is a pure function
//! ([`frame`]: state, width, height, now -> lines) that the tests check
//! directly; the terminal side is three escapes (cursor up, erase line,
//! hide/show cursor).

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use buildr::build::CancelToken;
use buildr::build::ProgressEvent;
use unicode_width::UnicodeWidthChar;

/// How often the view is redrawn at most.
const TICK: Duration = Duration::from_millis(100);
/// Output lines shown under a running step.
const LIVE_LINES: usize = 6;
/// Output lines kept per step, for the error report of a failed step.
const KEPT_LINES: usize = 10;
/// A partial line longer than this is cut into lines (no newline in a
/// megabyte of output must not grow memory without bound).
const MAX_LINE: usize = 16 * 1024;

/// Where a step is.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    Running {
        since: Instant,
    },
    Cached,
    Done {
        duration: Duration,
    },
    Failed {
        duration: Duration,
    },
    /// Still running when the event stream ended (the build was cancelled).
    Canceled {
        duration: Duration,
    },
}

/// What an event does to its step.
#[derive(Debug, Clone, Copy)]
pub enum Change<'a> {
    Started(Instant),
    Cached,
    Log(&'a [u8]),
    Finished(Duration),
    Failed(Duration),
}

/// One line of a step's output and when it came, from the step's start.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputLine {
    pub at: Duration,
    pub text: String,
}

/// One step (solver vertex) as the view knows it.
#[derive(Debug, Clone)]
pub struct Step {
    /// The vertex name, made safe to print.
    pub name: String,
    pub status: Status,
    /// The last complete output lines.
    pub lines: VecDeque<OutputLine>,
    /// Output after the last newline.
    partial: Vec<u8>,
    /// When the step started (or was first seen).
    since: Instant,
}

impl Step {
    fn new(name: &str, since: Instant) -> Step {
        Step {
            name: clean(name.as_bytes()),
            status: Status::Running { since },
            lines: VecDeque::new(),
            partial: Vec::new(),
            since,
        }
    }

    fn push_line(&mut self, bytes: &[u8], now: Instant) {
        if self.lines.len() == KEPT_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(OutputLine {
            at: now.saturating_duration_since(self.since),
            text: clean(bytes),
        });
    }

    fn log(&mut self, data: &[u8], now: Instant) {
        self.partial.extend_from_slice(data);
        let mut start = 0;
        let buf = std::mem::take(&mut self.partial);
        while let Some(pos) = buf[start..].iter().position(|&b| b == b'\n') {
            self.push_line(&buf[start..start + pos], now);
            start += pos + 1;
        }
        let mut rest = buf[start..].to_vec();
        while rest.len() > MAX_LINE {
            let tail = rest.split_off(MAX_LINE);
            self.push_line(&rest, now);
            rest = tail;
        }
        self.partial = rest;
    }

    /// The complete lines, and the partial one if it has text.
    fn last_lines(&self, n: usize) -> Vec<String> {
        let mut all: Vec<String> = self.lines.iter().map(|l| l.text.clone()).collect();
        let partial = clean(&self.partial);
        if !partial.is_empty() {
            all.push(partial);
        }
        let skip = all.len().saturating_sub(n);
        all.split_off(skip)
    }

    fn flush_partial(&mut self, now: Instant) {
        if !self.partial.is_empty() {
            let rest = std::mem::take(&mut self.partial);
            self.push_line(&rest, now);
        }
    }

    fn is_running(&self) -> bool {
        matches!(self.status, Status::Running { .. })
    }
}

/// What the view shows: the steps in the order they were first seen.
#[derive(Debug)]
pub struct State {
    pub start: Instant,
    pub steps: Vec<Step>,
    index: HashMap<String, usize>,
    /// When the event stream ended.
    pub finished: Option<Instant>,
}

impl State {
    pub fn new(start: Instant) -> State {
        State {
            start,
            steps: Vec::new(),
            index: HashMap::new(),
            finished: None,
        }
    }

    /// Applies one event, received at `now`.
    pub fn apply(&mut self, event: &ProgressEvent, now: Instant) {
        let change = match event {
            ProgressEvent::Started { at, .. } => Change::Started(*at),
            ProgressEvent::Cached { .. } => Change::Cached,
            ProgressEvent::Log { data, .. } => Change::Log(data),
            ProgressEvent::Finished { duration, .. } => Change::Finished(*duration),
            ProgressEvent::Failed { duration, .. } => Change::Failed(*duration),
        };
        let vertex = event.vertex();
        self.change(&vertex.digest.to_hex(), &vertex.name, change, now);
    }

    /// Applies `change` to the step `key` (named `name` if it is new).
    pub fn change(&mut self, key: &str, name: &str, change: Change<'_>, now: Instant) {
        let idx = match self.index.get(key) {
            Some(&idx) => idx,
            None => {
                self.steps.push(Step::new(name, now));
                self.index.insert(key.to_owned(), self.steps.len() - 1);
                self.steps.len() - 1
            }
        };
        let step = &mut self.steps[idx];
        match change {
            Change::Started(at) => {
                step.since = at;
                step.status = Status::Running { since: at };
            }
            Change::Cached => step.status = Status::Cached,
            Change::Log(data) => step.log(data, now),
            Change::Finished(duration) => {
                step.flush_partial(now);
                step.status = Status::Done { duration };
            }
            Change::Failed(duration) => {
                step.flush_partial(now);
                step.status = Status::Failed { duration };
            }
        }
    }

    /// The event stream ended at `now`: steps still running were
    /// cancelled, and so were those that failed if the build was
    /// `interrupted` (they failed because they were stopped).
    pub fn finish(&mut self, now: Instant, interrupted: bool) {
        for step in &mut self.steps {
            match step.status {
                Status::Running { since } => {
                    step.flush_partial(now);
                    step.status = Status::Canceled {
                        duration: now.saturating_duration_since(since),
                    };
                }
                Status::Failed { duration } if interrupted => {
                    step.status = Status::Canceled { duration };
                }
                _ => {}
            }
        }
        self.finished = Some(now);
    }

    fn count(&self, pred: impl Fn(&Status) -> bool) -> usize {
        self.steps.iter().filter(|s| pred(&s.status)).count()
    }
}

/// How a frame line is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Header,
    Running,
    /// Done or cached.
    Complete,
    Error,
    /// A step's output.
    Output,
    Summary,
}

/// One line of a frame, already cut to the width.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub text: String,
    pub style: Style,
}

/// The frame for `state` at `now` on a terminal `width` columns wide and
/// `height` rows high: at most `height - 1` lines (the last row holds the
/// cursor; the header is always there), each at most `width - 1` columns (a line filling the last
/// column would leave the cursor in the terminal's pending-wrap state). A
/// finished state gets every step and a summary, whatever the height.
pub fn frame(state: &State, width: usize, height: usize, now: Instant) -> Vec<Line> {
    let cols = width.saturating_sub(1).max(1);
    let finished = state.finished.is_some();
    let now = state.finished.unwrap_or(now);
    // As BuildKit counts: a step stopped by a cancellation never
    // completed, and only a build whose every step completed (done,
    // cached or failed) is FINISHED; a cancelled one says no such thing.
    let complete = state.count(|s| !matches!(s, Status::Running { .. } | Status::Canceled { .. }));
    let mut header = format!(
        "[+] Building {:.1}s ({complete}/{})",
        now.saturating_duration_since(state.start).as_secs_f64(),
        state.steps.len()
    );
    if finished && complete == state.steps.len() {
        header.push_str(" FINISHED");
    }

    // One block per step: its line, then the output shown under it.
    let blocks: Vec<(&Step, Vec<String>)> = state
        .steps
        .iter()
        .map(|step| {
            // As BuildKit: only a running step shows its output; a failed
            // one's is in the error report printed after the view.
            let output = match step.status {
                Status::Running { .. } => step.last_lines(LIVE_LINES),
                _ => Vec::new(),
            };
            (step, output)
        })
        .collect();
    let mut shown: Vec<usize> = (0..blocks.len()).collect();
    let mut output_lines = LIVE_LINES;
    if !finished {
        // Too tall: drop finished steps from the top, then output lines,
        // then the oldest steps.
        let budget = height.saturating_sub(2);
        let size = |shown: &[usize], n: usize| -> usize {
            shown.iter().map(|&i| 1 + blocks[i].1.len().min(n)).sum()
        };
        while size(&shown, output_lines) > budget {
            match shown
                .iter()
                .position(|&i| !blocks[i].0.is_running() && blocks[i].1.is_empty())
            {
                Some(pos) => {
                    shown.remove(pos);
                }
                None => break,
            }
        }
        while size(&shown, output_lines) > budget && output_lines > 0 {
            output_lines -= 1;
        }
        while size(&shown, output_lines) > budget && !shown.is_empty() {
            shown.remove(0);
        }
    }

    let mut lines = vec![Line {
        text: cut(&header, cols).0,
        style: Style::Header,
    }];
    for i in shown {
        let (step, output) = &blocks[i];
        lines.push(step_line(step, now, cols));
        let skip = output.len().saturating_sub(output_lines);
        for text in &output[skip..] {
            lines.push(Line {
                text: cut(&format!("=> => # {text}"), cols).0,
                style: Style::Output,
            });
        }
    }
    if finished {
        lines.push(Line {
            text: cut(&summary(state, now), cols).0,
            style: Style::Summary,
        });
    }
    lines
}

fn step_line(step: &Step, now: Instant, cols: usize) -> Line {
    let (word, time, style) = match step.status {
        Status::Running { since } => ("", now.saturating_duration_since(since), Style::Running),
        Status::Cached => ("CACHED ", Duration::ZERO, Style::Complete),
        Status::Done { duration } => ("", duration, Style::Complete),
        Status::Failed { duration } => ("ERROR ", duration, Style::Error),
        Status::Canceled { duration } => ("CANCELED ", duration, Style::Error),
    };
    let left = format!("=> {word}{}", step.name);
    let timer = format!("{:.1}s", time.as_secs_f64());
    let text = if cols < timer.len() + 8 {
        cut(&left, cols).0
    } else {
        let room = cols - timer.len() - 1;
        let (mut text, used) = cut(&left, room);
        text.extend(std::iter::repeat_n(' ', room - used + 1));
        text.push_str(&timer);
        text
    };
    Line { text, style }
}

fn summary(state: &State, now: Instant) -> String {
    let total = now.saturating_duration_since(state.start).as_secs_f64();
    let cached = state.count(|s| matches!(s, Status::Cached));
    let failed = state.count(|s| matches!(s, Status::Failed { .. }));
    let canceled = state.count(|s| matches!(s, Status::Canceled { .. }));
    let n = state.steps.len();
    let steps = if n == 1 { "step" } else { "steps" };
    let mut text = if failed > 0 {
        format!("Build failed after {total:.1}s: {n} {steps}, {cached} cached, {failed} failed")
    } else if canceled > 0 {
        format!("Build canceled after {total:.1}s: {n} {steps}, {cached} cached")
    } else {
        format!("Build finished in {total:.1}s: {n} {steps}, {cached} cached")
    };
    if canceled > 0 {
        text.push_str(&format!(", {canceled} canceled"));
    }
    text
}

/// What BuildKit prints after the view for each failed step: its name and
/// last output lines between rules (the error itself follows from the
/// caller).
pub fn error_report(state: &State) -> Vec<String> {
    let mut out = Vec::new();
    for step in &state.steps {
        if !matches!(step.status, Status::Failed { .. }) {
            continue;
        }
        out.push("------".to_owned());
        out.push(format!(" > {}:", step.name));
        for line in &step.lines {
            out.push(format!("{:.3} {}", line.at.as_secs_f64(), line.text));
        }
        out.push("------".to_owned());
    }
    out
}

/// `text` cut to at most `cols` terminal columns, and the columns used.
pub fn cut(text: &str, cols: usize) -> (String, usize) {
    let mut used = 0;
    let mut out = String::new();
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > cols {
            break;
        }
        used += w;
        out.push(c);
    }
    (out, used)
}

/// Output bytes as one line a terminal shows as-is: what follows the last
/// carriage return, tabs expanded, escape sequences and other control and
/// bidi-override characters dropped (a step's output must not move the
/// cursor or recolour the view).
pub fn clean(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_end_matches('\r');
    let text = text.rsplit('\r').next().unwrap_or_default();
    let mut out = String::with_capacity(text.len());
    let mut cols = 0;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => match chars.next() {
                // CSI: parameters, then one final byte in @..~.
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC, DCS, SOS, PM, APC: up to BEL or ST (ESC \).
                Some(']' | 'P' | 'X' | '^' | '_') => {
                    while let Some(c) = chars.next() {
                        if c == '\x07' {
                            break;
                        }
                        if c == '\x1b' {
                            chars.next_if_eq(&'\\');
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\t' => {
                let n = 8 - cols % 8;
                out.extend(std::iter::repeat_n(' ', n));
                cols += n;
            }
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {}
            c if c.is_control() => {}
            c => {
                out.push(c);
                cols += c.width().unwrap_or(0);
            }
        }
    }
    out
}

/// Draws frames over the previous one on a terminal.
#[derive(Debug)]
struct Screen<W: Write> {
    out: W,
    color: bool,
    /// Lines of the last frame, above the cursor.
    drawn: usize,
    cursor_hidden: bool,
    /// The process's stderr: the frame's line count is shared with the
    /// log writer (`crate::log`), which erases the frame to print above it.
    shared: bool,
}

impl<W: Write> Screen<W> {
    fn draw(&mut self, lines: &[Line]) {
        if self.shared {
            crate::log::with_frame(|drawn| {
                self.drawn = drawn;
                self.draw_over(lines);
                ((), self.drawn)
            });
        } else {
            self.draw_over(lines);
        }
    }

    /// Draws `lines` over the last frame's `drawn` lines.
    fn draw_over(&mut self, lines: &[Line]) {
        let mut buf = String::new();
        if !self.cursor_hidden {
            buf.push_str("\x1b[?25l");
            self.cursor_hidden = true;
        }
        if self.drawn > 0 {
            buf.push_str(&format!("\r\x1b[{}A", self.drawn));
        }
        for line in lines {
            let color = match line.style {
                _ if !self.color => "",
                Style::Header | Style::Running | Style::Summary => "",
                Style::Complete => "\x1b[34m",
                Style::Error => "\x1b[31m",
                Style::Output => "\x1b[2m",
            };
            buf.push_str(color);
            buf.push_str(&line.text);
            if !color.is_empty() {
                buf.push_str("\x1b[0m");
            }
            buf.push_str("\x1b[K\n");
        }
        // Whatever the last frame had below this one.
        buf.push_str("\x1b[J");
        self.drawn = lines.len();
        // One write per frame: the terminal never shows half a frame.
        let _ = self.out.write_all(buf.as_bytes());
        let _ = self.out.flush();
    }

    fn print(&mut self, text: &str) {
        let _ = self.out.write_all(text.as_bytes());
        let _ = self.out.flush();
    }

    fn show_cursor(&mut self) {
        if self.cursor_hidden {
            self.cursor_hidden = false;
            self.print("\x1b[?25h");
        }
    }
}

impl<W: Write> Drop for Screen<W> {
    /// The cursor comes back on every way out, a panic included.
    fn drop(&mut self) {
        self.show_cursor();
    }
}

/// The terminal's columns and rows (80x24 when it does not say).
fn terminal_size() -> (usize, usize) {
    match rustix::termios::tcgetwinsize(std::io::stderr()) {
        Ok(size) if size.ws_col > 0 && size.ws_row > 0 => {
            (usize::from(size.ws_col), usize::from(size.ws_row))
        }
        _ => (80, 24),
    }
}

/// Renders the events from `rx` on stderr (a terminal) until the sender
/// hangs up, then draws the final frame and the failed steps' output.
pub fn run(rx: &Receiver<ProgressEvent>, cancel: &CancelToken) {
    let start = Instant::now();
    let mut state = State::new(start);
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let mut screen = Screen {
        out: std::io::stderr(),
        color,
        drawn: 0,
        cursor_hidden: false,
        shared: true,
    };
    // The first frame waits a tick: a build that is done by then is drawn
    // once, finished, without flicker.
    let mut next_draw = start + TICK;
    loop {
        let wait = next_draw.saturating_duration_since(Instant::now());
        match rx.recv_timeout(wait) {
            Ok(event) => {
                state.apply(&event, Instant::now());
                while let Ok(event) = rx.try_recv() {
                    state.apply(&event, Instant::now());
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        let now = Instant::now();
        if now >= next_draw {
            let (width, height) = terminal_size();
            screen.draw(&frame(&state, width, height, now));
            next_draw = now + TICK;
        }
    }
    let now = Instant::now();
    state.finish(now, cancel.is_cancelled());
    let (width, height) = terminal_size();
    screen.draw(&frame(&state, width, height, now));
    // The final frame stays: later log lines go below it.
    crate::log::with_frame(|_| ((), 0));
    screen.show_cursor();
    let report = error_report(&state);
    if !report.is_empty() {
        let mut text = report.join("\n");
        text.push('\n');
        screen.print(&text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    fn texts(lines: &[Line]) -> Vec<String> {
        lines.iter().map(|l| l.text.clone()).collect()
    }

    fn columns(text: &str) -> usize {
        text.chars().map(|c| c.width().unwrap_or(0)).sum()
    }

    /// A build 10 s in: FROM cached, COPY done in 1.5 s, RUN running for
    /// 3.2 s with eight lines of output and a partial ninth.
    fn build() -> (State, Instant) {
        let t0 = Instant::now();
        let mut state = State::new(t0);
        state.change("a", "[stage-0 1/3] FROM busybox", Change::Cached, t0);
        state.change("b", "[stage-0 2/3] COPY . .", Change::Started(t0), t0);
        state.change(
            "b",
            "[stage-0 2/3] COPY . .",
            Change::Finished(SEC * 3 / 2),
            t0 + SEC * 3 / 2,
        );
        let run_at = t0 + SEC * 6;
        state.change(
            "c",
            "[stage-0 3/3] RUN make",
            Change::Started(run_at),
            run_at,
        );
        for i in 1..=8 {
            let line = format!("line {i}\n");
            state.change("c", "", Change::Log(line.as_bytes()), run_at + SEC);
        }
        state.change("c", "", Change::Log(b"partial"), run_at + SEC * 2);
        (state, t0 + SEC * 10)
    }

    #[test]
    fn header_steps_in_order_timer_and_last_output_lines() {
        let (state, now) = build();
        let lines = frame(&state, 60, 40, now);
        let text = texts(&lines);
        assert_eq!(text[0], "[+] Building 10.0s (2/3)");
        assert!(text[1].starts_with("=> CACHED [stage-0 1/3] FROM busybox "));
        assert!(text[1].ends_with(" 0.0s"), "{:?}", text[1]);
        assert!(text[2].starts_with("=> [stage-0 2/3] COPY . . "));
        assert!(text[2].ends_with(" 1.5s"));
        assert!(text[3].starts_with("=> [stage-0 3/3] RUN make "));
        assert!(text[3].ends_with(" 4.0s"), "live timer: {:?}", text[3]);
        // The last six lines of output, the partial one included.
        let output: Vec<&str> = text[4..].iter().map(String::as_str).collect();
        assert_eq!(
            output,
            [
                "=> => # line 4",
                "=> => # line 5",
                "=> => # line 6",
                "=> => # line 7",
                "=> => # line 8",
                "=> => # partial"
            ]
        );
        assert_eq!(lines[4].style, Style::Output);
        assert_eq!(lines[3].style, Style::Running);
        assert_eq!(lines[1].style, Style::Complete);
        // Timers are right-aligned at the last usable column.
        for line in &text[1..4] {
            assert_eq!(columns(line), 59, "{line:?}");
        }
        // The timer moves.
        let later = texts(&frame(&state, 60, 40, now + SEC * 2));
        assert!(later[3].ends_with(" 6.0s"), "{:?}", later[3]);
        assert_eq!(later[0], "[+] Building 12.0s (2/3)");
    }

    #[test]
    fn lines_are_cut_to_the_width_never_wrapped() {
        let (mut state, now) = build();
        let long = "RUN ".to_owned() + &"x".repeat(300);
        state.change("d", &long, Change::Started(now), now);
        state.change("d", "", Change::Log("界".repeat(200).as_bytes()), now);
        for width in [1, 5, 10, 17, 40, 80, 200] {
            for line in frame(&state, width, 40, now + SEC) {
                assert!(
                    columns(&line.text) < width.max(2),
                    "width {width}: {:?} is {} columns",
                    line.text,
                    columns(&line.text)
                );
            }
        }
        let text = texts(&frame(&state, 40, 40, now + SEC));
        let step = text.iter().find(|l| l.starts_with("=> RUN xxx")).unwrap();
        assert!(
            step.ends_with(" 1.0s"),
            "the timer survives a cut: {step:?}"
        );
        // A wide character that does not fit whole is left out.
        let out = text.iter().find(|l| l.starts_with("=> => # 界")).unwrap();
        assert_eq!(columns(out), 38);
        assert_eq!(cut("ab界c", 3), ("ab".to_owned(), 2));
    }

    #[test]
    fn a_short_terminal_drops_finished_steps_first_then_output() {
        let (state, now) = build();
        // 1 header + 3 steps + 6 output lines = 10 lines; 9 rows leave 8.
        let text = texts(&frame(&state, 80, 9, now));
        assert_eq!(text.len(), 8);
        assert_eq!(text[0], "[+] Building 10.0s (2/3)");
        assert!(text[1].starts_with("=> [stage-0 3/3] RUN make"), "{text:?}");
        assert_eq!(text[2], "=> => # line 4");
        // Smaller still: fewer output lines, the running step stays.
        let text = texts(&frame(&state, 80, 5, now));
        assert_eq!(text.len(), 4);
        assert!(text[1].starts_with("=> [stage-0 3/3] RUN make"));
        assert_eq!(text[3], "=> => # partial");
        // Finished, everything is shown whatever the height.
        let mut state = state;
        state.change("c", "", Change::Finished(SEC * 5), now);
        state.finish(now, false);
        let text = texts(&frame(&state, 80, 3, now));
        assert_eq!(text.len(), 5, "{text:?}");
    }

    #[test]
    fn the_final_frame_has_every_step_no_output_and_a_summary() {
        let (mut state, now) = build();
        state.change("c", "", Change::Finished(SEC * 4), now);
        state.finish(now + SEC, false);
        let lines = frame(&state, 80, 40, now + SEC * 100);
        let text = texts(&lines);
        assert_eq!(text[0], "[+] Building 11.0s (3/3) FINISHED");
        assert_eq!(text.len(), 5, "{text:?}");
        assert!(text[3].ends_with(" 4.0s"));
        assert_eq!(text[4], "Build finished in 11.0s: 3 steps, 1 cached");
        assert_eq!(lines[4].style, Style::Summary);
        assert!(error_report(&state).is_empty());
    }

    #[test]
    fn a_failed_step_is_reported_once_below_the_view() {
        let (mut state, now) = build();
        state.change("c", "", Change::Log(b"\nmore\nboom\n"), now);
        state.change("c", "", Change::Failed(SEC * 4), now);
        state.finish(now, false);
        let text = texts(&frame(&state, 80, 40, now));
        assert_eq!(text[0], "[+] Building 10.0s (3/3) FINISHED");
        assert!(text[3].starts_with("=> ERROR [stage-0 3/3] RUN make"));
        // Its output is in the report below the view, once, as BuildKit's.
        assert_eq!(text.len(), 5, "{text:?}");
        assert_eq!(
            text[text.len() - 1],
            "Build failed after 10.0s: 3 steps, 1 cached, 1 failed"
        );
        let report = error_report(&state);
        assert_eq!(report[0], "------");
        assert_eq!(report[1], " > [stage-0 3/3] RUN make:");
        assert_eq!(report[2], "1.000 line 2");
        assert_eq!(report[report.len() - 2], "4.000 boom");
        assert_eq!(report[report.len() - 1], "------");
        // At most KEPT_LINES lines: the oldest went.
        assert_eq!(report.len(), KEPT_LINES + 3);
    }

    #[test]
    fn steps_running_when_the_stream_ends_are_canceled() {
        let (mut state, now) = build();
        state.finish(now, false);
        let text = texts(&frame(&state, 80, 40, now));
        assert_eq!(text[0], "[+] Building 10.0s (2/3)", "not FINISHED");
        assert!(text[3].starts_with("=> CANCELED [stage-0 3/3] RUN make"));
        assert!(text[3].ends_with(" 4.0s"));
        assert_eq!(
            text.last().unwrap(),
            "Build canceled after 10.0s: 3 steps, 1 cached, 1 canceled"
        );
    }

    #[test]
    fn an_interrupted_build_shows_its_stopped_step_canceled_not_failed() {
        let (mut state, now) = build();
        state.change("c", "", Change::Failed(SEC * 4), now);
        state.finish(now, true);
        let text = texts(&frame(&state, 80, 40, now));
        assert_eq!(text[0], "[+] Building 10.0s (2/3)", "not FINISHED");
        assert!(text[3].starts_with("=> CANCELED [stage-0 3/3] RUN make"));
        assert!(
            text.last()
                .unwrap()
                .starts_with("Build canceled after 10.0s")
        );
        assert!(error_report(&state).is_empty());
    }

    #[test]
    fn output_cannot_move_the_cursor_or_recolour() {
        assert_eq!(clean(b"\x1b[2J\x1b[1;1Hhi\x1b[31m red\x1b[0m"), "hi red");
        assert_eq!(clean(b"\x1b]0;title\x07after"), "after");
        assert_eq!(clean(b"\x1b]8;;http://x\x1b\\link"), "link");
        assert_eq!(clean(b"10%\r50%\r100%\r"), "100%");
        assert_eq!(clean(b"a\tb"), "a       b");
        assert_eq!(clean(b"x\x08\x07\x00y\x7f"), "xy");
        assert_eq!(clean("ab\u{202e}cd".as_bytes()), "abcd");
        assert_eq!(clean(b"\xff\xfeok"), "\u{fffd}\u{fffd}ok");
        // A name from a Dockerfile is cleaned the same way.
        let t0 = Instant::now();
        let mut state = State::new(t0);
        state.change("k", "RUN \x1b[2Jevil", Change::Started(t0), t0);
        assert!(texts(&frame(&state, 80, 40, t0))[1].starts_with("=> RUN evil "));
    }

    #[test]
    fn a_huge_line_without_newline_is_bounded() {
        let t0 = Instant::now();
        let mut state = State::new(t0);
        state.change("k", "RUN yes", Change::Started(t0), t0);
        let chunk = vec![b'y'; 64 * 1024];
        for _ in 0..64 {
            state.change("k", "", Change::Log(&chunk), t0);
        }
        let step = &state.steps[0];
        assert!(step.partial.len() <= MAX_LINE);
        assert_eq!(step.lines.len(), KEPT_LINES);
    }
}
