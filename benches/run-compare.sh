#!/bin/sh
# run-compare.sh: reproduce benches/RESULTS.md.
#
# Usage (as root, from anywhere):
#   benches/run-compare.sh [REPS] [WORKLOAD...]
# REPS defaults to 3, workloads to "parallel dag app bigfile".
#
# 1. Makes the machine ready (shared/bench/setup-anchors.sh: dockerd with its
#    BuildKit, a loopback registry on 127.0.0.1:5000, the busybox and Debian
#    base images).
# 2. Builds the release `buildr` binary (own target dir, override with
#    CARGO_TARGET_DIR), unless BUILDR=/path/to/buildr is given.
# 3. For each workload: records `uptime` and an ext4 churn probe (seconds to
#    create 5000 empty files in a fresh directory under $TMPDIR, see
#    RESULTS.md), runs shared/bench/compare.py with
#    BuildKit and buildr interleaved (TOOLS=buildkit,buildr,buildah to add
#    buildah), keeps its table and raw JSON, records `uptime` again.
# 4. For each workload: one extra cold buildr build (empty root) under
#    GNU `/usr/bin/time -v` for the peak RSS, and its --progress=plain log for
#    per-step timings.
# Everything lands in $OUT (default /tmp/buildr-bench-results).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
shared=${SHARED_BENCH:-$repo/../shared/bench}
reps=${1:-3}
[ $# -gt 0 ] && shift
workloads=${*:-parallel dag app bigfile}
tools=${TOOLS:-buildkit,buildr}
out=${OUT:-/tmp/buildr-bench-results}
target=${CARGO_TARGET_DIR:-/work/target-bench}
mkdir -p "$out"

eval "$(bash "$shared/setup-anchors.sh" | tail -n 1)"
export DOCKER_HOST

if [ -z "${BUILDR:-}" ]; then
  (cd "$repo" && CARGO_TARGET_DIR=$target cargo build --release -p buildr-cli)
  BUILDR=$target/release/buildr
fi
export BUILDR

# Seconds to create 5000 empty files in a fresh directory: on a journal-less
# ext4 under churn this swings from ~0.3 s to several seconds (see RESULTS.md).
probe() {
  d=$(mktemp -d "${TMPDIR:-/tmp}/fc-XXXXXX")
  python3 -c "
import os, sys, time
d = sys.argv[1]; t = time.monotonic()
for i in range(5000): open(os.path.join(d, f'f{i}'), 'w').close()
print(f'{time.monotonic() - t:.2f}s')" "$d"
  rm -rf "$d"
}

{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "nproc: $(nproc)"
  echo "mem: $(free -m | awk '/^Mem:/ {print $2 " MiB"}')"
  echo "kernel: $(uname -r)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "docker: $(docker version --format '{{.Server.Version}}')"
  echo "buildr: $BUILDR sha256 $(sha256sum "$BUILDR" | cut -c1-16), tree at $(cd "$repo" && git rev-parse --short HEAD) + uncommitted changes"
} >"$out/machine.txt"

for w in $workloads; do
  echo "== $w: before: $(uptime); create-5000-files probe $(probe)" | tee "$out/$w.uptime"
  # compare.py keeps its buildr roots; give it a scratch TMPDIR on the same
  # filesystem and remove that afterwards.
  scratch=$(mktemp -d "${TMPDIR:-/tmp}/compare-$w-XXXXXX")
  TMPDIR=$scratch python3 "$shared/compare.py" "$w" --tools "$tools" --reps "$reps" \
    --json "$out/$w.json" 2>&1 | tee "$out/$w.table"
  rm -rf "$scratch"
  echo "== $w: after: $(uptime); create-5000-files probe $(probe)" | tee -a "$out/$w.uptime"
done

# Peak RSS and per-step timings of a cold buildr build, one per workload.
for w in $workloads; do
  ctx=$(mktemp -d "${TMPDIR:-/tmp}/rss-ctx-$w-XXXXXX")
  if [ -x "$shared/workloads/$w/gen-context.sh" ]; then
    rm -rf "$ctx"
    "$shared/workloads/$w/gen-context.sh" "$ctx"
  else
    cp -r "$shared/workloads/$w/." "$ctx/"
  fi
  root=$(mktemp -d "${TMPDIR:-/tmp}/rss-root-$w-XXXXXX")
  /usr/bin/time -v -o "$out/$w.time-v" \
    "$BUILDR" --root "$root" build --progress=plain -t "rss-$w" "$ctx" >"$out/$w.cold.log" 2>&1 || true
  echo "== $w: $(grep -E 'Maximum resident|Elapsed|Exit status' "$out/$w.time-v" | tr -s ' \t' ' ' | tr '\n' ';')"
  rm -rf "$root" "$ctx"
done
# Markdown summary of every workload measured so far in $out: medians,
# ratios to BuildKit from the same run, the issue's targets, peak RSS.
python3 - "$out" <<'PY' | tee "$out/summary.md"
import json, os, re, sys
out = sys.argv[1]
targets = {("parallel", "cold"): 0.85, ("dag", "cold"): 0.25, ("dag", "noop"): 0.2,
           ("app", "cold"): 0.6, ("app", "noop"): 0.15, ("app", "one-file"): 0.5,
           ("app", "touch-all"): 0.1, ("bigfile", "cold"): 0.4}
print("| workload | scenario | BuildKit s | buildr s | buildr/BK | target | met |")
print("|---|---|---|---|---|---|---|")
for w in ["parallel", "dag", "app", "bigfile"]:
    p = os.path.join(out, f"{w}.json")
    if not os.path.exists(p):
        continue
    med = json.load(open(p))["median_s"]
    if "buildkit" not in med or "buildr" not in med:
        continue
    for sc, bk in med["buildkit"].items():
        br = med["buildr"][sc]
        t = targets.get((w, sc))
        r = br / bk
        met = "-" if t is None else ("yes" if r <= t else "**no**")
        print(f"| {w} | {sc} | {bk:.3f} | {br:.3f} | {r:.3f} | {'<= ' + str(t) if t else '-'} | {met} |")
print()
print("| workload | buildr cold build peak RSS | wall | exit |")
print("|---|---|---|---|")
for w in ["parallel", "dag", "app", "bigfile"]:
    p = os.path.join(out, f"{w}.time-v")
    if not os.path.exists(p):
        continue
    txt = open(p).read()
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", txt).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", txt).group(1)
    code = re.search(r"Exit status: (\d+)", txt).group(1)
    print(f"| {w} | {rss / 1024:.1f} MiB | {wall} | {code} |")
PY
echo "results in $out"
