#!/usr/bin/env bash
# Installs every package evgate needs (tools/packages.txt) on Debian 12.
# Idempotent: installs only what is missing, so a second run takes a second.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
list="$here/packages.txt"

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: run as root or install sudo" >&2; exit 1; }
  sudo_cmd=(sudo)
fi

apt_wanted=$(awk '$1 == "apt" { print $2 }' "$list")
npm_wanted=$(awk '$1 == "npm" { print $2 }' "$list")

apt_missing=()
for pkg in $apt_wanted; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    apt_missing+=("$pkg")
  fi
done

if [ ${#apt_missing[@]} -gt 0 ]; then
  echo "setup: installing ${#apt_missing[@]} Debian packages: ${apt_missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
    "${apt_missing[@]}" >/dev/null
fi

if [ -n "$npm_wanted" ]; then
  # npm packages live in the project (node_modules/ at the root), never globally.
  # Debian's nodejs ships npm separately; other builds of nodejs bundle it.
  if ! command -v npm >/dev/null; then
    echo "setup: installing Debian package npm"
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends npm >/dev/null
  fi
  root=$(cd "$here/.." && pwd)
  npm_missing=()
  for spec in $npm_wanted; do
    name=${spec%@*}
    version=${spec##*@}
    # Installed at exactly the pinned version, or (re)installed.
    if ! grep -q "\"version\": \"$version\"" "$root/node_modules/$name/package.json" 2>/dev/null; then
      npm_missing+=("$spec")
    fi
  done
  if [ ${#npm_missing[@]} -gt 0 ]; then
    # All pinned packages in one call: npm prunes what a --no-save install
    # does not name, so installing one at a time would remove the others.
    echo "setup: installing npm packages ${npm_missing[*]}"
    (cd "$root" && npm install --no-audit --no-fund --no-save $npm_wanted >/dev/null)
  fi
fi

echo "setup: all $(echo $apt_wanted $npm_wanted | wc -w) packages present"
