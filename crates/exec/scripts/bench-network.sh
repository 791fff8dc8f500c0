#!/usr/bin/env bash
# Per-step network cost: a /bin/true step in a fresh network namespace
# (--network none), joining an existing one (what every RUN step of a build
# does with the build network) and in the host's, in one hyperfine run.
# Needs root, busybox-static, iproute2, hyperfine (scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/../../.."
target="${CARGO_TARGET_DIR:-target}"
cargo build --release -p buildr-exec --bin buildr-sandbox >&2
bin="$target/release/buildr-sandbox"

work="$(mktemp -d)"
ns="buildr-bench-$$"
trap 'ip netns del "$ns" 2>/dev/null || true; rm -rf "$work"' EXIT
rootfs="$work/rootfs"
mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp"
cp /bin/busybox "$rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -s busybox "$rootfs/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$rootfs/etc/passwd"
printf 'root:x:0:\n' > "$rootfs/etc/group"
ip netns add "$ns"

hyperfine -N --warmup 20 --runs "${RUNS:-300}" \
  -n none "$bin $rootfs -- /bin/true" \
  -n join "$bin --netns /run/netns/$ns $rootfs -- /bin/true" \
  -n host "$bin --net-host $rootfs -- /bin/true" \
  --export-json "$work/result.json" >&2
python3 - "$work/result.json" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
print("| network | median [ms] | min [ms] |")
print("|:---|---:|---:|")
for r in results:
    print(f"| {r['command']} | {r['median'] * 1000:.2f} | {r['min'] * 1000:.2f} |")
PY
