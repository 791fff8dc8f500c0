//! The crate's only `unsafe`: thin wrappers over system calls that nix does
//! not cover (or marks unsafe), each with its precondition stated.
#![allow(unsafe_code)]

use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;

/// Forks the calling process, which must be single-threaded (the re-executed
/// init is). Refuses when `/proc/self/task` shows more than one thread.
pub(crate) fn fork_single_threaded() -> std::io::Result<nix::unistd::ForkResult> {
    let threads = std::fs::read_dir("/proc/self/task")?.count();
    if threads != 1 {
        return Err(std::io::Error::other(format!(
            "refusing to fork with {threads} threads"
        )));
    }
    // SAFETY: the process has exactly one thread (checked just above, and the
    // init never starts one), so the child inherits no lock held by another
    // thread and may allocate freely.
    unsafe { nix::unistd::fork() }.map_err(std::io::Error::from)
}

/// Proof that the process had one thread when it was made: for forking
/// after /proc/self stops naming us (the exec helper, once in a sandbox's
/// mount namespace but not its pid namespace). Not `Clone`: one fork each.
#[derive(Debug)]
pub(crate) struct SingleThreaded(());

/// Checks `/proc/self/task` now; the caller promises to start no thread
/// before using the proof.
pub(crate) fn single_threaded() -> std::io::Result<SingleThreaded> {
    let threads = std::fs::read_dir("/proc/self/task")?.count();
    if threads != 1 {
        return Err(std::io::Error::other(format!(
            "refusing to fork with {threads} threads"
        )));
    }
    Ok(SingleThreaded(()))
}

/// Forks with a proof from [`single_threaded`].
pub(crate) fn fork_proven(_proof: SingleThreaded) -> std::io::Result<nix::unistd::ForkResult> {
    // SAFETY: the process had exactly one thread when the proof was made and
    // its holder starts none (the exec helper never does), so the child
    // inherits no lock held by another thread and may allocate freely.
    unsafe { nix::unistd::fork() }.map_err(std::io::Error::from)
}

/// Arranges for `cmd`'s child to get `fds[i].0` as descriptor `fds[i].1`
/// (CLOEXEC cleared) and, with `kill_on_parent_death`, SIGKILL when the
/// spawning thread dies.
pub(crate) fn map_fds_on_spawn(
    cmd: &mut std::process::Command,
    fds: [(RawFd, RawFd); 2],
    kill_on_parent_death: bool,
) {
    let hook = move || {
        // First move every source above the targets, so that a source that
        // happens to sit on another pair's target number is not clobbered.
        let mut high: [RawFd; 2] = [-1; 2];
        for (slot, &(src, _)) in high.iter_mut().zip(fds.iter()) {
            // SAFETY: fcntl(F_DUPFD_CLOEXEC) is async-signal-safe and takes
            // plain integers; the source is open until spawn returns.
            *slot = unsafe { libc::fcntl(src, libc::F_DUPFD_CLOEXEC, 100) };
            if *slot < 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        for (&src, &(_, dst)) in high.iter().zip(fds.iter()) {
            // SAFETY: dup2 is async-signal-safe and takes plain integers;
            // `src` was just duplicated above and is open.
            if unsafe { libc::dup2(src, dst) } < 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        if !kill_on_parent_death {
            return Ok(());
        }
        // SAFETY: prctl with integer arguments is async-signal-safe.
        if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    };
    // SAFETY: the hook only calls async-signal-safe functions (fcntl, dup2,
    // prctl) on stack arrays and builds errors from errno without
    // allocating: it runs between fork and exec in a possibly
    // multi-threaded parent, where allocation or locks could deadlock.
    unsafe { cmd.pre_exec(hook) };
}

/// Marks every descriptor from `first` upwards close-on-exec.
pub(crate) fn cloexec_from(first: u32) -> std::io::Result<()> {
    // SAFETY: close_range takes integers and touches no memory of ours.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    // Kernels before 5.11: walk /proc/self/fd instead.
    let fds: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd: &RawFd| fd >= first as RawFd)
        .collect();
    for fd in fds {
        // SAFETY: fcntl(F_SETFD) on an integer descriptor touches no memory;
        // a stale number (the read_dir fd itself) just fails with EBADF.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Sets the calling thread's effective, permitted and inheritable sets
/// (64-bit masks, capability v3 ABI).
pub(crate) fn capset(effective: u64, permitted: u64, inheritable: u64) -> std::io::Result<()> {
    let mut header = CapHeader {
        version: 0x2008_0522,
        pid: 0,
    };
    let data = [
        CapData {
            effective: effective as u32,
            permitted: permitted as u32,
            inheritable: inheritable as u32,
        },
        CapData {
            effective: (effective >> 32) as u32,
            permitted: (permitted >> 32) as u32,
            inheritable: (inheritable >> 32) as u32,
        },
    ];
    // SAFETY: header and data are live, properly laid out (repr(C)) for the
    // v3 ABI, which reads exactly two CapData entries.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapHeader,
            data.as_ptr(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Drops `cap` from the bounding set.
pub(crate) fn capbset_drop(cap: u32) -> std::io::Result<()> {
    // SAFETY: prctl with integer arguments touches no memory of ours.
    let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Clears the ambient capability set.
pub(crate) fn ambient_clear_all() -> std::io::Result<()> {
    // SAFETY: prctl with integer arguments touches no memory of ours.
    let rc = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Brings the loopback interface of the current network namespace up.
pub(crate) fn loopback_up() -> std::io::Result<()> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
    use std::os::fd::AsRawFd;
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(std::io::Error::from)?;
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    req.ifr_ifru.ifru_flags = (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    // SAFETY: SIOCSIFFLAGS reads an ifreq, which `req` is, live for the call.
    let rc = unsafe {
        libc::ioctl(
            sock.as_raw_fd(),
            libc::SIOCSIFFLAGS,
            &mut req as *mut libc::ifreq,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Takes ownership of a descriptor the launcher placed at a fixed number in
/// the re-executed init. Each number is taken at most once per process.
pub(crate) fn take_inherited_fd(fd: RawFd) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    use std::sync::atomic::{AtomicU64, Ordering};
    static TAKEN: AtomicU64 = AtomicU64::new(0);
    if !(0..64).contains(&fd) || TAKEN.fetch_or(1 << fd, Ordering::SeqCst) & (1 << fd) != 0 {
        return Err(std::io::Error::other(format!(
            "descriptor {fd} already taken"
        )));
    }
    // fcntl(F_GETFD) proves the descriptor is open before we own it.
    // SAFETY: fcntl on an integer touches no memory.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the descriptor is open (checked above), was dup2'ed here by the
    // launcher for this purpose, and no other owner exists: TAKEN guarantees
    // this is the only OwnedFd ever made from it in this process.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// Closes every descriptor from `first` upwards (descriptors leaked into
/// the init by a careless embedder must not reach the sandbox).
pub(crate) fn close_from(first: u32) -> std::io::Result<()> {
    // SAFETY: close_range takes integers; this process owns no Rust object
    // for descriptors >= first at this point (called first thing in the init,
    // before any OwnedFd is made beyond 0..first).
    let rc = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 0) };
    if rc == 0 {
        return Ok(());
    }
    let fds: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd: &RawFd| fd >= first as RawFd)
        .collect();
    for fd in fds {
        // SAFETY: as above; EBADF for the read_dir's own, closed, fd is harmless.
        unsafe { libc::close(fd) };
    }
    Ok(())
}

/// Resets every signal, real-time ones included, to its default
/// disposition. The Rust runtime of the init ignores SIGPIPE, the embedder
/// may ignore others, and ignored dispositions survive exec: the command
/// must start with none. The raw system call is used because libc refuses
/// to touch the signals it reserves (32, 33), which may be ignored too.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(crate) fn reset_signal_dispositions() -> std::io::Result<()> {
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: libc::c_ulong,
        restorer: usize,
        mask: u64,
    }
    let default = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: `default` is a live kernel_sigaction for x86_64/aarch64
        // layouts (handler, flags, restorer, 8-byte mask), whose size we pass;
        // SIG_DFL installs no handler, so no code of ours runs in signal
        // context; the old action pointer is null (not requested).
        let rc = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &default as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                std::mem::size_of::<u64>(),
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Elsewhere the kernel's sigaction layout differs: reset what libc allows.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub(crate) fn reset_signal_dispositions() -> std::io::Result<()> {
    use nix::sys::signal::{SigHandler, Signal, signal};
    for sig in Signal::iterator().filter(|s| !matches!(s, Signal::SIGKILL | Signal::SIGSTOP)) {
        // SAFETY: SIG_DFL installs no handler function.
        unsafe { signal(sig, SigHandler::SigDfl) }.map_err(std::io::Error::from)?;
    }
    Ok(())
}

/// Makes `fd` (a terminal) the controlling terminal of the calling session
/// leader.
pub(crate) fn set_controlling_tty(fd: RawFd) -> std::io::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument and touches no memory.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCSCTTY, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The window size of terminal `fd`.
pub(crate) fn window_size(fd: RawFd) -> std::io::Result<libc::winsize> {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize into the live, writable `size`.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut size as *mut libc::winsize) };
    if rc == 0 {
        Ok(size)
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Sets the window size of terminal `fd`.
pub(crate) fn set_window_size(fd: RawFd, size: &libc::winsize) -> std::io::Result<()> {
    // SAFETY: TIOCSWINSZ reads one winsize from the live `size`.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, size as *const libc::winsize) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Owns a descriptor the kernel just installed from an `SCM_RIGHTS` message.
pub(crate) fn own_received_fd(fd: RawFd) -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: recvmsg installed `fd` in this process for this message; no
    // other owner exists, and the caller takes it exactly once.
    unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }
}
