#!/bin/bash
# usage: scripts/cross/debian-deb.sh <openwrt-arch> <package>...
# Downloads (once) Debian bookworm binary packages of the arch's Debian architecture
# (mipsel_24kc: mipsel) into $CACHE/<arch>/dl with a private apt state in $CACHE/<arch>/apt:
# no `dpkg --add-architecture`, the host's apt configuration is not touched. Prints the paths.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 <openwrt-arch> <package>..." >&2; exit 2; }
X_ARCH=$1; shift
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
case "$X_ARCH" in
  mipsel_24kc) darch=mipsel ;;
  *) die "no Debian architecture known for $X_ARCH" ;;
esac
A="$X_CACHE/apt" dl="$X_CACHE/dl"
mkdir -p "$A/state/lists/partial" "$A/cache/archives/partial" "$A/parts" "$dl"
[ -f "$A/state/status" ] || touch "$A/state/status"
echo "deb [arch=$darch signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main" >"$A/sources.list"
APT=(-o APT::Architecture=$darch -o APT::Architectures::=$darch -o Dir::State="$A/state"
  -o Dir::State::status="$A/state/status" -o Dir::Cache="$A/cache" -o Dir::Etc::SourceList="$A/sources.list"
  -o Dir::Etc::SourceParts="$A/parts" -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
for p in "$@"; do
  f=$(ls "$dl/${p}_"*"_$darch.deb" 2>/dev/null | head -1 || true)
  if [ -z "$f" ]; then
    ls "$A"/state/lists/*Packages* >/dev/null 2>&1 || apt-get "${APT[@]}" -qq update >&2
    (cd "$dl" && apt-get "${APT[@]}" -qq download "$p" >&2) || die "apt-get download $p ($darch) failed"
    f=$(ls "$dl/${p}_"*"_$darch.deb" | head -1)
  fi
  echo "$f"
done
