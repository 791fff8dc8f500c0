#!/usr/bin/env bash
# Installs the Debian packages buildr's tests check against (tools nobody here
# wrote) and that the sandbox tests run inside (busybox-static). Idempotent:
# packages already present are skipped, so a warm machine pays nothing.
set -euo pipefail

pkgs=(
  busybox-static   # the test rootfs and base images
  skopeo umoci     # OCI interop checks
  runc             # bundle interop and startup comparison
  hyperfine        # startup-latency measurements
  iproute2         # network namespace checks
  slirp4netns      # the build network (user-mode networking for RUN)
  nftables         # NAT for bridge networks (buildr run)
  util-linux       # unshare, nsenter
  uidmap           # newuidmap/newgidmap for rootless sandboxes
  acl              # setfacl: /dev/net/tun for the rootless tests' user (scripts/rootless-user.sh)
  docker-registry  # the loopback registry the registry tests start
  debootstrap      # the Debian base image for realistic builds
  docker.io        # dockerd with BuildKit: the reference the comparison tests run
  curl             # test-dockerd.sh pings the daemon
  openssl          # the registry TLS test makes its own CA
  tmux             # the pty harness of `run -it` / `exec -it` tests
  man-db           # the man-page test renders buildr's pages with man -l (groff-base)
  time procps      # benches/soak.sh: peak RSS of each buildr run (/usr/bin/time), pgrep
  bzip2 xz-utils zstd  # ADD archive tests make .tar.bz2/.tar.xz/.tar.zst
)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: need root to install: ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Debian's docker-registry and docker.io packages start daemons on install;
# the tests start their own on ports they pick. A policy-rc.d for the length
# of the install keeps the packages from starting anything, so nothing has to
# be stopped or killed afterwards (and a daemon the user runs is left alone).
policy=/usr/sbin/policy-rc.d
own_policy=false
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  own_policy=true
fi
cleanup() { if $own_policy; then rm -f "$policy"; fi; }
trap cleanup EXIT
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
