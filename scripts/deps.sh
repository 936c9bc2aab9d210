#!/usr/bin/env bash
# Install the Debian 12 packages hostcall builds and tests with. Idempotent: does nothing when
# everything is already there. Needs root (or sudo) only when something is missing.
set -euo pipefail
PKGS=(build-essential cmake pkg-config liblua5.4-dev lua5.4 lua-cjson lua-busted
      lua-filesystem lua-socket lua-check libssl-dev openssl ca-certificates procps nodejs)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# nodejs may come from another source (NodeSource): a working `node` is enough.
if command -v node >/dev/null 2>&1; then
  missing=("${missing[@]/nodejs}")
fi
list=$(printf '%s ' "${missing[@]}" | xargs || true)
[ -z "$list" ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "deps: installing $list" >&2
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
# shellcheck disable=SC2086
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $list >/dev/null
