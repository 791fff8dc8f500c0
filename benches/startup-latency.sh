#!/usr/bin/env bash
# startup-latency.sh: how long `/bin/true` in a container takes, end to end,
# for buildr, docker and runc, in ONE hyperfine invocation (same machine
# state for all).
#
# Usage (as root, from anywhere):
#   benches/startup-latency.sh [RUNS]        # RUNS defaults to 30
# Environment:
#   BUILDR=/path/to/buildr   the binary to measure (default: a release build
#                            made here with CARGO_TARGET_DIR, default
#                            /work/target-bench)
#   OUT=DIR                  where results go (default /tmp/buildr-startup)
#
# What is measured, all on the busybox fixture image (fixtures/base):
#   buildr run --rm --network none IMAGE /bin/true
#   buildr run --rm IMAGE /bin/true            (default network: the bridge)
#   docker run --rm IMAGE /bin/true            (a private dockerd started by
#       scripts/test-dockerd.sh: --bridge=none, so its containers have no
#       network but loopback; the image comes from `buildr save --format
#       docker` | `docker load`)
#   runc run -b BUNDLE ID                      (BUNDLE from `buildr bundle
#       unpack IMAGE BUNDLE /bin/true`; runc's own state root)
#   buildr bundle run BUNDLE                   (the same bundle: buildr's
#       sandbox alone, without the container store, against runc)
# Output: $OUT/startup.md (hyperfine's markdown table), $OUT/startup.json,
# and on stdout the machine, load and the ratios buildr/docker, buildr/runc.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
runs=${1:-30}
out=${OUT:-/tmp/buildr-startup}
target=${CARGO_TARGET_DIR:-/work/target-bench}
image=bench/busybox:latest

for tool in hyperfine runc dockerd curl python3; do
  command -v "$tool" >/dev/null || { echo "startup-latency: $tool missing (scripts/install-deps.sh)" >&2; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "startup-latency: needs root" >&2; exit 1; }
docker=/usr/bin/docker   # Debian's client, not a /usr/local one
[ -x "$docker" ] || { echo "startup-latency: $docker missing (docker.io)" >&2; exit 1; }

if [ -z "${BUILDR:-}" ]; then
  (cd "$repo" && CARGO_TARGET_DIR=$target cargo build --release -p buildr-cli)
  BUILDR=$target/release/buildr
fi

mkdir -p "$out"
work=$(mktemp -d /tmp/buildr-startup-XXXXXX)
cleanup() {
  bash "$repo/scripts/test-dockerd.sh" stop "$work/dockerd" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

store=$work/store
bash "$repo/fixtures/base/busybox-rootfs.sh" "$work/rootfs.tar"
"$BUILDR" --root "$store" import "$work/rootfs.tar" "$image" >/dev/null
"$BUILDR" --root "$store" bundle unpack "$image" "$work/bundle" /bin/true 2>/dev/null

DOCKER_HOST=$(bash "$repo/scripts/test-dockerd.sh" start "$work/dockerd")
export DOCKER_HOST
"$BUILDR" --root "$store" save --format docker "$image" | "$docker" load >/dev/null

# Each command once, so a broken one fails here, not as a hyperfine number.
"$BUILDR" --root "$store" run --rm --network none "$image" /bin/true
"$BUILDR" --root "$store" run --rm "$image" /bin/true
# (docker's own flake, see below: one retry before giving up)
"$docker" run --rm "$image" /bin/true || "$docker" run --rm "$image" /bin/true
runc --root "$work/runc" run -b "$work/bundle" buildr-startup </dev/null
"$BUILDR" bundle run "$work/bundle"

{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(free -m | awk '/^Mem:/ {print $2 " MiB"}'), kernel $(uname -r)"
  echo "buildr: $BUILDR ($(sha256sum "$BUILDR" | cut -c1-16))"
  echo "docker: $("$docker" version --format '{{.Server.Version}}' 2>/dev/null); runc: $(runc --version | head -n 1)"
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$out/machine.txt"

# Debian's dockerd 20.10 now and then fails a run with "stat /bin/true: no
# such file or directory" (an overlay race under load); -i keeps going and
# the failures are counted below, per command.
hyperfine --warmup 3 --runs "$runs" --shell=none --ignore-failure \
  --export-markdown "$out/startup.md" --export-json "$out/startup.json" \
  -n "buildr run --network none" "$BUILDR --root $store run --rm --network none $image /bin/true" \
  -n "buildr run (bridge)" "$BUILDR --root $store run --rm $image /bin/true" \
  -n "docker run" "$docker run --rm $image /bin/true" \
  -n "runc run" "runc --root $work/runc run -b $work/bundle buildr-startup" \
  -n "buildr bundle run" "$BUILDR bundle run $work/bundle"

echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/machine.txt"
cat "$out/startup.md"
python3 - "$out/startup.json" <<'EOF' | tee "$out/ratios.txt"
import json, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
med = {name: r["median"] for name, r in results.items()}
for name, r in results.items():
    failed = sum(1 for code in r.get("exit_codes", []) if code != 0)
    print(f"{name}: {failed} of {len(r.get('exit_codes', []))} runs failed")
docker, runc = med["docker run"], med["runc run"]
for name in ("buildr run --network none", "buildr run (bridge)", "buildr bundle run"):
    b = med[name]
    print(f"{name}: median {b*1000:.1f} ms; /docker {b/docker:.3f}; /runc {b/runc:.3f}")
EOF
