#!/usr/bin/env bash
# Sets up an ordinary user for rootless buildr the way a distribution does
# for rootless containers, for the rootless tests (and as a recipe, see
# docs/rootless.md). Idempotent; touches only that user and what is made for
# it (never other users, never a daemon):
#   - the user (created if missing, with a home directory);
#   - subordinate uid and gid ranges in /etc/subuid and /etc/subgid (65536
#     ids after the highest range in use), if the user has none;
#   - access to /dev/net/tun for slirp4netns, as an ACL entry for this user
#     only, when the device is not open to all users already (Debian's udev
#     makes it 0666; minimal machines without udev leave it 0600);
#   - with --delegate: a cgroup per memory, pids and cpu controller owned by
#     the user (v1: one directory per controller; v2: one directory, with a
#     leaf to run in), as systemd's user@.service delegation provides.
#     Their directories are printed, one per line; a test moves the user's
#     process into them before starting buildr.
# Usage: rootless-user.sh USER [--delegate]
set -euo pipefail

user="${1:?usage: rootless-user.sh USER [--delegate]}"
delegate=false
[ "${2:-}" = "--delegate" ] && delegate=true
if [ "$(id -u)" -ne 0 ]; then
  echo "rootless-user: need root to set up user $user" >&2
  exit 1
fi

if ! id "$user" >/dev/null 2>&1; then
  useradd --create-home --shell /bin/sh "$user"
fi

# A range after every range in use (useradd gives one on Debian already).
for file in /etc/subuid /etc/subgid; do
  touch "$file"
  if ! grep -q "^$user:" "$file"; then
    start=$(awk -F: 'BEGIN { m = 100000 } { e = $2 + $3; if (e > m) m = e } END { print m }' "$file")
    echo "$user:$start:65536" >>"$file"
  fi
done

# slirp4netns opens /dev/net/tun as the user.
if ! runuser -u "$user" -- sh -c 'exec 3<>/dev/net/tun' 2>/dev/null; then
  setfacl -m "u:$user:rw" /dev/net/tun
fi

if $delegate; then
  cg=/sys/fs/cgroup
  name="delegated-$user"
  made=()
  for ctrl in memory pids cpu; do
    if [ -d "$cg/$ctrl" ] && grep -qw "$ctrl" <(awk '$3 ~ /^cgroup$/ {print $4}' /proc/mounts); then
      mkdir -p "$cg/$ctrl/$name"
      chown -R "$user:" "$cg/$ctrl/$name"
      made+=("$cg/$ctrl/$name")
    fi
  done
  if [ ${#made[@]} -eq 0 ]; then
    # cgroup v2 only: a directory of the user's with a leaf for its process
    # (buildr makes its cgroups beside the one it runs in, so the parent
    # must be the user's too). The controllers must already be enabled at
    # the root, as systemd does; this script changes nothing outside its
    # own directory.
    v2=$cg
    [ -f "$cg/unified/cgroup.controllers" ] && v2=$cg/unified
    mkdir -p "$v2/$name/main"
    chown -R "$user:" "$v2/$name"
    made+=("$v2/$name/main")
  fi
  printf '%s\n' "${made[@]}"
fi
