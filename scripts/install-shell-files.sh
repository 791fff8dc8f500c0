#!/usr/bin/env bash
# Installs buildr's shell completions and man pages for the current user,
# made by the given buildr binary from its own clap definitions, into the
# places each tool already looks without configuration:
#   bash: ${XDG_DATA_HOME:-~/.local/share}/bash-completion/completions/buildr
#   fish: ${XDG_CONFIG_HOME:-~/.config}/fish/completions/buildr.fish
#   man:  ${XDG_DATA_HOME:-~/.local/share}/man/man1/buildr*.1 (man-db finds it
#         when ~/.local/bin is on PATH; else `man -l` or MANPATH)
#   zsh:  ${XDG_DATA_HOME:-~/.local/share}/zsh/site-functions/_buildr (zsh has
#         no per-user default: add that directory to fpath before compinit)
# Nothing else is touched: no rc file is edited. Idempotent.
set -euo pipefail
buildr=${1:?usage: install-shell-files.sh PATH/TO/buildr}
data="${XDG_DATA_HOME:-$HOME/.local/share}"
config="${XDG_CONFIG_HOME:-$HOME/.config}"

install_script() { # shell destination
  mkdir -p "$(dirname "$2")"
  "$buildr" completion "$1" >"$2.tmp.$$"
  mv -f "$2.tmp.$$" "$2"
}
install_script bash "$data/bash-completion/completions/buildr"
install_script zsh "$data/zsh/site-functions/_buildr"
install_script fish "$config/fish/completions/buildr.fish"

man_dir="$data/man/man1"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$buildr" __man "$tmp"
mkdir -p "$man_dir"
rm -f "$man_dir"/buildr.1 "$man_dir"/buildr-*.1
cp "$tmp"/*.1 "$man_dir"/
echo "install-shell-files: completions for bash, zsh ($data/zsh/site-functions: add it to fpath), fish; man pages in $man_dir"
