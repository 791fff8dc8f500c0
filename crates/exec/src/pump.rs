//! The launcher's read loop over a started init: output to the caller,
//! reports parsed and acted on, signals forwarded, kills on cancel or
//! timeout.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::time::Instant;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::cancel::Cancel;
use crate::error::{Result, sys};
use crate::idmap::apply_maps;
use crate::init::Report;
use crate::launch::{InitPipes, RunGuard};
use crate::outcome::Stream;

/// Moves bytes from the init's pipes to the callback and the report list
/// until all three pipes are closed, killing on cancel or timeout.
pub(crate) struct Pump<'a> {
    /// stdout, stderr (with their stream) and the report pipe (without).
    pub(crate) streams: [(Option<OwnedFd>, Option<Stream>); 3],
    /// An incomplete report line.
    pub(crate) pending: Vec<u8>,
    pub(crate) reports: Vec<Report>,
    pub(crate) pid1: Option<i32>,
    pub(crate) exec_at: Option<Instant>,
    pub(crate) timed_out: bool,
    pub(crate) killed: bool,
    pub(crate) id_maps: Option<&'a (Vec<String>, Vec<String>)>,
    /// Kept open only while the init may still ask for id maps.
    pub(crate) config_write: Option<std::fs::File>,
}

impl std::fmt::Debug for Pump<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pump")
            .field("pid1", &self.pid1)
            .field("killed", &self.killed)
            .finish()
    }
}

impl<'a> Pump<'a> {
    /// A pump over a started init's pipes; `id_maps` answer its map
    /// request (rootless with subordinate ids).
    pub(crate) fn new(pipes: InitPipes, id_maps: Option<&'a (Vec<String>, Vec<String>)>) -> Self {
        Pump {
            streams: [
                (pipes.stdout, Some(Stream::Stdout)),
                (pipes.stderr, Some(Stream::Stderr)),
                (Some(pipes.report_read), None),
            ],
            pending: Vec::new(),
            reports: Vec::new(),
            pid1: None,
            exec_at: None,
            timed_out: false,
            killed: false,
            id_maps,
            config_write: pipes.config_write,
        }
    }

    /// Runs until all three pipes are closed; kills the run (once) on
    /// cancel or at `deadline`.
    pub(crate) fn run(
        &mut self,
        guard: &mut RunGuard,
        cancel: &Cancel,
        deadline: Option<Instant>,
        on_output: &mut impl FnMut(Stream, &[u8]),
    ) -> Result<()> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let expired = deadline.is_some_and(|d| Instant::now() >= d);
            if !self.killed && (cancel.is_cancelled() || expired) {
                self.timed_out = !cancel.is_cancelled();
                guard.kill();
                self.killed = true;
            }
            let open: Vec<usize> = (0..3).filter(|i| self.streams[*i].0.is_some()).collect();
            if open.is_empty() {
                return Ok(());
            }
            let mut fds: Vec<PollFd> = open
                .iter()
                .filter_map(|i| self.streams[*i].0.as_ref())
                .map(|fd| PollFd::new(fd.as_fd(), PollFlags::POLLIN))
                .collect();
            fds.push(PollFd::new(
                cancel.inner.wake_read.as_fd(),
                PollFlags::POLLIN,
            ));
            let timeout = match deadline {
                Some(d) if !self.killed => {
                    let ms = d
                        .saturating_duration_since(Instant::now())
                        .as_millis()
                        .min(60_000);
                    PollTimeout::try_from(ms as i32).unwrap_or(PollTimeout::MAX)
                }
                _ => PollTimeout::NONE,
            };
            match poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(sys("poll sandbox output")(e)),
            }
            let ready: Vec<bool> = fds
                .iter()
                .map(|fd| fd.revents().is_some_and(|r| !r.is_empty()))
                .collect();
            drop(fds);
            if ready[open.len()] {
                let _ = nix::unistd::read(&cancel.inner.wake_read, &mut [0u8; 64]);
            }
            self.forward_signal(cancel);
            for (slot, &i) in open.iter().enumerate() {
                if !ready[slot] {
                    continue;
                }
                let Some(fd) = self.streams[i].0.as_ref() else {
                    continue;
                };
                match nix::unistd::read(fd, &mut buf) {
                    Ok(0) => self.streams[i].0 = None,
                    Ok(len) => match self.streams[i].1 {
                        Some(stream) => on_output(stream, &buf[..len]),
                        None => {
                            self.take_reports(&buf[..len])?;
                            // Published once the command runs: before that
                            // pid 1 may not have pivoted into the rootfs
                            // yet, and an exec joining its mount namespace
                            // would resolve paths in the old root.
                            if let (Some(pid), Some(_)) = (self.pid1, self.exec_at) {
                                cancel.inner.pid1.store(pid, Ordering::SeqCst);
                            }
                        }
                    },
                    Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
                    Err(_) => self.streams[i].0 = None,
                }
            }
        }
    }

    /// Passes a signal requested through the handle to the sandbox's pid 1.
    fn forward_signal(&mut self, cancel: &Cancel) {
        let Some(pid) = self.pid1 else { return };
        let signal = cancel.inner.signal.swap(0, Ordering::SeqCst);
        if self.killed || signal == 0 {
            return;
        }
        if let Ok(signal) = nix::sys::signal::Signal::try_from(signal) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
        }
    }

    /// Parses complete report lines, acting on those that need it now.
    fn take_reports(&mut self, bytes: &[u8]) -> Result<()> {
        self.pending.extend_from_slice(bytes);
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            let report = crate::init::parse_report(&line[..end])?;
            match report {
                Report::Init { pid } => self.pid1 = Some(pid),
                Report::MapRequest { pid } => {
                    let mapped = self.id_maps.is_some_and(|maps| apply_maps(pid, maps));
                    if let Some(mut pipe) = self.config_write.take() {
                        let _ = pipe.write_all(if mapped { b"1" } else { b"0" });
                    }
                }
                Report::Started { .. } => self.exec_at = Some(Instant::now()),
                _ => {}
            }
            self.reports.push(report);
        }
        Ok(())
    }
}
