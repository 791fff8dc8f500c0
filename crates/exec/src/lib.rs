//! `buildr-exec`: the sandbox.
//!
//! It will run a RUN step, and later a container, as an isolated process tree
//! (mount, pid, uts, ipc, net and, rootless, user namespaces) over a root
//! filesystem assembled from layer snapshots with overlayfs, with cgroup limits,
//! a minimal init as pid 1, and streamed output.
//!
//! What it is not: it does not know images, layers or Dockerfiles; it is handed
//! directories and a process description.
//!
//! Status: not written yet (issue 4).
