//! `buildr exec`: a command in a running container.

use std::io::Write;
use std::process::ExitCode;

use buildr::container::ExecOptions;

use crate::args::{Cli, ExecArgs};

pub fn run(cli: &Cli, args: &ExecArgs) -> anyhow::Result<ExitCode> {
    let _raw = args.tty.then(RawMode::enter);
    let containers = super::open_containers(cli)?;
    let options = ExecOptions {
        cmd: args.command.clone(),
        env: args.env.clone(),
        user: args.user.clone(),
        workdir: args.workdir.clone(),
        stdin: args.interactive,
        tty: args.tty,
        proxy_signals: true,
    };
    let (mut stdout, mut stderr) = (std::io::stdout(), std::io::stderr());
    let info = containers.exec(&args.container, &options, |stream, chunk| {
        let _ = match stream {
            buildr::container::LogStream::Stdout => {
                stdout.write_all(chunk).and_then(|()| stdout.flush())
            }
            buildr::container::LogStream::Stderr => stderr.write_all(chunk),
        };
    })?;
    drop(_raw);
    if let Some(error) = &info.error {
        eprintln!("buildr: error: {error}");
    }
    Ok(super::run::exit_code(info.exit_code))
}

/// The terminal on stdin in raw mode (keys, ctrl-c included, go to the
/// container's pty as bytes), SIGWINCH blocked for the relay's waiter;
/// restored on drop. A stdin that is not a terminal is left alone.
pub(crate) struct RawMode {
    saved: Option<nix::sys::termios::Termios>,
}

impl RawMode {
    pub(crate) fn enter() -> RawMode {
        use nix::sys::signal::{SigSet, Signal};
        use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
        let mut winch = SigSet::empty();
        winch.add(Signal::SIGWINCH);
        let _ = winch.thread_block();
        let stdin = std::io::stdin();
        let Ok(saved) = tcgetattr(&stdin) else {
            return RawMode { saved: None };
        };
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        if tcsetattr(&stdin, SetArg::TCSANOW, &raw).is_err() {
            return RawMode { saved: None };
        }
        RawMode { saved: Some(saved) }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin(),
                nix::sys::termios::SetArg::TCSANOW,
                saved,
            );
        }
    }
}
