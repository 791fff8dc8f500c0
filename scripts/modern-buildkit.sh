#!/usr/bin/env bash
# The modern reference builder for the tests: dockerd 26.1 (BuildKit 0.13)
# from Debian trixie, set up by the shared bench scripts next to this checkout
# (<checkout>/../shared/bench, or BUILDR_BENCH_DIR).
#   modern-buildkit.sh ensure   -> starts it when needed (about a minute the
#                                  first time, well under a second after) and
#                                  prints its DOCKER_HOST (unix://.../docker.sock)
#   modern-buildkit.sh host     -> prints the DOCKER_HOST if it answers, else fails
# The scripts' own output goes to stderr. Their environment knobs (ANCHORS_STATE,
# MODERN_STATE, MODERN_ROOT, MODERN_BIND) pass through. Call the daemon with
# $MODERN_STATE/bin/docker (default /tmp/anchors/modern/bin/docker) and
# MODERN_DOCKER_HOST set to the printed value.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bench=${BUILDR_BENCH_DIR:-$here/../../shared/bench}
state=${MODERN_STATE:-/tmp/anchors/modern}
sock=$state/docker.sock
answers() {
  [ -x "$state/bin/docker" ] && curl -sf --unix-socket "$sock" http://d/_ping >/dev/null 2>&1
}
case "${1:-}" in
ensure)
  for script in setup-anchors.sh setup-modern-anchors.sh; do
    [ -f "$bench/$script" ] || { echo "modern-buildkit: $bench/$script is missing (set BUILDR_BENCH_DIR)" >&2; exit 1; }
  done
  [ "$(id -u)" = 0 ] || { echo "modern-buildkit: the bench scripts need root" >&2; exit 1; }
  sh "$bench/setup-anchors.sh" >&2
  sh "$bench/setup-modern-anchors.sh" >&2
  answers || { echo "modern-buildkit: dockerd does not answer on $sock; see $state/dockerd.log" >&2; exit 1; }
  echo "unix://$sock"
  ;;
host)
  answers || { echo "modern-buildkit: dockerd does not answer on $sock (run: $0 ensure)" >&2; exit 1; }
  echo "unix://$sock"
  ;;
*) echo "usage: modern-buildkit.sh ensure|host" >&2; exit 2 ;;
esac
