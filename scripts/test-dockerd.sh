#!/usr/bin/env bash
# Starts or stops a private dockerd (Debian's docker.io, with its built-in
# BuildKit) for the tests that compare with docker: own socket, data root and
# exec root under STATE_DIR, no bridge, no iptables, nothing on the network.
#   test-dockerd.sh start STATE_DIR   -> prints unix://STATE_DIR/docker.sock
#   test-dockerd.sh stop STATE_DIR
set -euo pipefail
cmd="${1:?start|stop}"
state="${2:?state dir}"
sock="$state/docker.sock"
case "$cmd" in
start)
  command -v dockerd >/dev/null || { echo "test-dockerd: dockerd missing (scripts/install-deps.sh)" >&2; exit 1; }
  mkdir -p "$state"
  if ! curl -s --unix-socket "$sock" http://d/_ping >/dev/null 2>&1; then
    setsid dockerd --iptables=false --ip6tables=false --bridge=none --host "unix://$sock" \
      --data-root "$state/root" --exec-root "$state/exec" --pidfile "$state/dockerd.pid" \
      >"$state/dockerd.log" 2>&1 </dev/null &
    for _ in $(seq 1 150); do
      curl -s --unix-socket "$sock" http://d/_ping >/dev/null 2>&1 && break
      sleep 0.2
    done
  fi
  curl -s --unix-socket "$sock" http://d/_ping >/dev/null 2>&1 || {
    echo "test-dockerd: dockerd did not come up; its log:" >&2
    tail -n 30 "$state/dockerd.log" >&2 || true
    exit 1
  }
  echo "unix://$sock"
  ;;
stop)
  if [ -f "$state/dockerd.pid" ]; then
    pid=$(cat "$state/dockerd.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  # dockerd leaves its overlay and netns mounts under the state dir; detach them.
  grep -F " $state/" /proc/self/mountinfo | awk '{print $5}' | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
  ;;
*) echo "usage: test-dockerd.sh start|stop STATE_DIR" >&2; exit 2 ;;
esac
