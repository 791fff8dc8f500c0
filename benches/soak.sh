#!/usr/bin/env bash
# Soak: build (one small cache miss each time) / run --rm / run -d + rm -f /
# rmi + prune, in a loop against one store for SOAK_SECONDS (default 600).
#
# buildr is not a daemon, so a leak shows as growth across invocations:
# the peak RSS of each buildr process (GNU time's %M), the open fds of a
# detached container's supervisor, and the store's size, mounts and
# leftover processes. They are sampled per window (60 s, or a sixth of a
# shorter run) and printed one line per window; the run fails (exit 1) if
# the last window's figures grew past the first's (RSS +25 % + 8 MiB,
# store +50 % + 1 MiB and +16 entries, supervisor fds +2), or if anything is left at the
# end (mounts, processes, container dirs, temp files, `buildr verify`).
#
# Usage: benches/soak.sh            (BUILDR=path/to/buildr, default: on PATH)
#   SOAK_SECONDS=60 SOAK_DIR=/tmp/x benches/soak.sh
# Needs root, overlayfs, /bin/busybox (busybox-static), /usr/bin/time.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
BUILDR=${BUILDR:-$(command -v buildr || true)}
SOAK_SECONDS=${SOAK_SECONDS:-600}
[ -x "$BUILDR" ] || { echo "soak: set BUILDR to the buildr binary" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "soak: /usr/bin/time is missing (apt-get install time)" >&2; exit 2; }

own_dir=
if [ -z "${SOAK_DIR:-}" ]; then
  SOAK_DIR=$(mktemp -d /tmp/buildr-soak.XXXXXX)
  own_dir=$SOAK_DIR
fi
store=$SOAK_DIR/store
ctx=$SOAK_DIR/ctx
mkdir -p "$ctx"
cleanup() {
  # Containers a failed iteration may have left running.
  if [ -d "$store/containers" ]; then
    ids=$("$BUILDR" --root "$store" ps -aq 2>/dev/null || true)
    [ -n "$ids" ] && "$BUILDR" --root "$store" rm -f $ids >/dev/null 2>&1 || true
  fi
  [ -n "$own_dir" ] && rm -rf "$own_dir"
  return 0
}
trap cleanup EXIT

b() { "$BUILDR" --root "$store" "$@"; }

# Peak RSS (KiB) of one buildr invocation; its stdout goes to $out.
timed() {
  local kind=$1; shift
  /usr/bin/time -f %M -o "$SOAK_DIR/rss" "$BUILDR" --root "$store" "$@" >"$SOAK_DIR/out" 2>"$SOAK_DIR/err" || {
    echo "soak: buildr $* failed:" >&2; cat "$SOAK_DIR/err" >&2; exit 1; }
  local rss; rss=$(tail -n1 "$SOAK_DIR/rss")
  case $kind in
    build) [ "$rss" -gt "$w_build" ] && w_build=$rss ;;
    *) [ "$rss" -gt "$w_run" ] && w_run=$rss ;;
  esac
  return 0
}

mounts_under_store() { grep -c -F " $store" /proc/self/mountinfo || true; }

# Processes whose command line names the store (pgrep leaves itself out).
procs_on_store() { pgrep -c -f -- "$store" || true; }

bash "$here/fixtures/base/busybox-rootfs.sh" "$SOAK_DIR/busybox.tar" >/dev/null
b import "$SOAK_DIR/busybox.tar" buildr-fixtures/busybox:latest >/dev/null
rm -f "$SOAK_DIR/busybox.tar"
printf 'FROM buildr-fixtures/busybox:latest\nARG N\nRUN echo "$N" > /n\n' >"$ctx/Dockerfile"

window=60
[ "$SOAK_SECONDS" -lt 360 ] && window=$(( (SOAK_SECONDS + 5) / 6 ))
start=$(date +%s)
end=$((start + SOAK_SECONDS))
i=0
w=0; w_start=$start; w_iters=0; w_build=0; w_run=0; w_fds=0
declare -a rows=()
printf '%-6s %6s %14s %12s %8s %12s %11s %7s %6s\n' window iters build_rss_kib run_rss_kib sup_fds store_bytes store_files mounts procs
flush() {
  local size files row
  size=$(du -sb "$store" | cut -f1)
  files=$(find "$store" | wc -l)
  row=$(printf '%-6s %6s %14s %12s %8s %12s %11s %7s %6s' "$w" "$w_iters" "$w_build" "$w_run" "$w_fds" "$size" "$files" "$(mounts_under_store)" "$(procs_on_store)")
  echo "$row"
  rows+=("$row")
  w=$((w + 1)); w_start=$(date +%s); w_iters=0; w_build=0; w_run=0; w_fds=0
}

while [ "$(date +%s)" -lt "$end" ]; do
  i=$((i + 1))
  timed build build -q --build-arg "N=$i" -t soak:latest "$ctx"
  timed run run --rm soak:latest cat /n
  [ "$(cat "$SOAK_DIR/out")" = "$i" ] || { echo "soak: run $i printed $(cat "$SOAK_DIR/out")" >&2; exit 1; }
  timed run run -d soak:latest sleep 600
  id=$(cat "$SOAK_DIR/out")
  sup=$(sed -n 's/.*"supervisor_pid": *\([0-9]*\).*/\1/p' "$store/containers/$id/state.json" 2>/dev/null || true)
  if [ -n "$sup" ] && [ -d "/proc/$sup/fd" ]; then
    # The supervisor's fds once settled: the same count 4 times in a row,
    # 50 ms apart (at most 3 s), so a sample never lands mid-startup.
    fds=-1; same=0
    for _ in $(seq 60); do
      now=$(ls "/proc/$sup/fd" 2>/dev/null | wc -l)
      if [ "$now" -eq "$fds" ]; then same=$((same + 1)); else same=0; fds=$now; fi
      [ "$same" -ge 3 ] && break
      sleep 0.05
    done
    [ "$fds" -gt "$w_fds" ] && w_fds=$fds
  fi
  timed run rm -f "$id"
  timed run rmi soak:latest
  timed run prune -a -f
  w_iters=$((w_iters + 1))
  [ $(( $(date +%s) - w_start )) -ge "$window" ] && flush
done
[ "$w_iters" -gt 0 ] && flush

fail=0
first=(${rows[0]}); last=(${rows[${#rows[@]}-1]})
check_growth() { # name first last limit
  if [ "$3" -gt "$4" ]; then echo "soak: FAIL $1 grew: first window $2, last $3 (limit $4)"; fail=1; fi
}
check_growth build_rss_kib "${first[2]}" "${last[2]}" $(( first[2] * 125 / 100 + 8192 ))
check_growth run_rss_kib "${first[3]}" "${last[3]}" $(( first[3] * 125 / 100 + 8192 ))
check_growth supervisor_fds "${first[4]}" "${last[4]}" $(( first[4] + 2 ))
check_growth store_bytes "${first[5]}" "${last[5]}" $(( first[5] * 150 / 100 + 1048576 ))
# Each iteration removes what it made: the entry count is the same at
# every window's end (a little slack for a file made on first use).
check_growth store_files "${first[6]}" "${last[6]}" $(( first[6] + 16 ))

left_mounts=$(mounts_under_store)
left_procs=$(procs_on_store)
left_containers=$(find "$store/containers" -mindepth 1 -maxdepth 1 ! -name .lock 2>/dev/null | wc -l)
left_tmp=$(find "$store/tmp" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
[ "$left_mounts" -eq 0 ] || { echo "soak: FAIL $left_mounts mounts left under $store"; grep -F " $store" /proc/self/mountinfo; fail=1; }
[ "$left_procs" -eq 0 ] || { echo "soak: FAIL $left_procs processes left on $store"; fail=1; }
[ "$left_containers" -eq 0 ] || { echo "soak: FAIL $left_containers container dirs left"; fail=1; }
[ "$left_tmp" -eq 0 ] || { echo "soak: FAIL $left_tmp entries left in $store/tmp"; fail=1; }
b verify >/dev/null || { echo "soak: FAIL buildr verify:"; b verify; fail=1; }

echo "soak: $i iterations in $(( $(date +%s) - start ))s; first window: ${rows[0]}"
echo "soak: last window: ${rows[${#rows[@]}-1]}"
if [ "$fail" -ne 0 ]; then
  echo "soak: FAILED"
  exit 1
fi
echo "soak: ok"
