#!/usr/bin/env bash
# Startup cost: median time to run /bin/true in a fresh sandbox, beside
# `runc run` of the same busybox rootfs. Needs root, busybox-static, runc,
# hyperfine (scripts/install-deps.sh). Prints both medians and the ratio.
set -euo pipefail
cd "$(dirname "$0")/../../.."
target="${CARGO_TARGET_DIR:-target}"
cargo build --release -p buildr-exec --bin buildr-sandbox >&2
bin="$target/release/buildr-sandbox"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
rootfs="$work/bundle/rootfs"
mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp"
cp /bin/busybox "$rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -s busybox "$rootfs/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$rootfs/etc/passwd"
printf 'root:x:0:\n' > "$rootfs/etc/group"
(cd "$work/bundle" && runc spec)
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
path = sys.argv[1]
config = json.load(open(path))
config["process"]["args"] = ["/bin/true"]
config["process"]["terminal"] = False
config["root"]["readonly"] = False
json.dump(config, open(path, "w"), indent=1)
PY

hyperfine -N --warmup 10 --runs "${RUNS:-200}" --export-json "$work/result.json" \
  "$bin $rootfs -- /bin/true" \
  "$bin --memory 268435456 --pids 1000 $rootfs -- /bin/true" \
  "runc run -b $work/bundle buildr-bench-$$"
python3 - "$work/result.json" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
names = ["buildr (no limits)", "buildr (memory+pids cgroup)", "runc"]
for name, r in zip(names, results):
    print(f"{name}: median {r['median'] * 1000:.1f} ms")
runc = results[2]["median"]
print(f"ratio buildr/runc: {results[0]['median'] / runc:.2f} (no limits), "
      f"{results[1]['median'] / runc:.2f} (with cgroup limits)")
PY
