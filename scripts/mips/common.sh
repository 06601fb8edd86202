# Shared helpers for the big-endian MIPS (ath79-like) toolchain, kernel and VM scripts.
# Sourced, not executed. Everything expensive lives under $MIPS_CACHE and can be rebuilt
# from Debian's repositories (deb.debian.org) alone.
set -euo pipefail
# `make ipk ARCH=...` passes ARCH through MAKEFLAGS and the environment: the makefiles these
# scripts run (musl, busybox, iproute2, the kernel) must not see it.
unset MAKEFLAGS MFLAGS MAKELEVEL ARCH
CACHE="${CACHE:-$HOME/.cache/tunneldigger}"
MIPS_CACHE="$CACHE/mips"
MIPS_DL="$MIPS_CACHE/dl"          # downloaded .debs and Debian source packages
MIPS_SRC="$MIPS_CACHE/src"        # unpacked sources
CROSS=mips-linux-gnu-
# ath79 24Kc: big-endian mips32r2, no FPU -> everything we ship is soft-float.
MIPS_CFLAGS="-march=mips32r2 -mtune=24kc -msoft-float"
JOBS="${JOBS:-2}"
mkdir -p "$MIPS_DL" "$MIPS_SRC"

log() { echo "[mips] $*" >&2; }
die() { echo "[mips] error: $*" >&2; exit 1; }

# A private apt state with bookworm deb-src, so `apt-get source` works without touching
# the host's sources.list or package lists.
APT_PRIV="$MIPS_CACHE/apt"
apt_priv() {
  if [ ! -f "$APT_PRIV/sources.list" ]; then
    mkdir -p "$APT_PRIV/state/lists/partial" "$APT_PRIV/cache/archives/partial" "$APT_PRIV/parts"
    touch "$APT_PRIV/state/status"
    cat >"$APT_PRIV/sources.list" <<SRC
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main
SRC
  fi
  apt-get -o Dir::State="$APT_PRIV/state" -o Dir::State::status="$APT_PRIV/state/status" \
    -o Dir::Cache="$APT_PRIV/cache" -o Dir::Etc::SourceList="$APT_PRIV/sources.list" \
    -o Dir::Etc::SourceParts="$APT_PRIV/parts" -o Debug::NoLocking=1 \
    -o APT::Sandbox::User=root "$@"
}
# Fetch (once) a Debian source package into $MIPS_DL/<name>/ and print the unpacked dir.
debian_source() {
  local name="$1" dir="$MIPS_DL/src-$1"
  if ! ls -d "$dir"/*/debian >/dev/null 2>&1; then
    ls "$APT_PRIV"/state/lists/*Sources* >/dev/null 2>&1 || apt_priv update -qq >&2
    rm -rf "$dir"; mkdir -p "$dir"
    (cd "$dir" && apt_priv source -qq "$name" >&2) || die "apt-get source $name failed"
  fi
  ls -d "$dir"/*/debian | head -1 | xargs dirname
}
# Fetch (once) a binary .deb (arch all) with the host apt and print its path.
debian_deb() {
  local name="$1" f
  f=$(ls "$MIPS_DL/${name}_"*.deb 2>/dev/null | head -1 || true)
  if [ -z "$f" ]; then
    (cd "$MIPS_DL" && apt-get -o APT::Sandbox::User=root download "$name" >&2) || die "apt-get download $name failed"
    f=$(ls "$MIPS_DL/${name}_"*.deb | head -1)
  fi
  echo "$f"
}
# Unpack (once) Debian's linux-source-6.1 and print the tree's path.
linux_source_dir() {
  local deb ver src tmp
  deb=$(debian_deb linux-source-6.1)
  ver=$(basename "$deb" .deb | cut -d_ -f2)
  src="$MIPS_SRC/linux-source-6.1-$ver"
  if [ ! -f "$src/Makefile" ]; then
    log "unpacking $(basename "$deb")"
    tmp="$MIPS_SRC/.linux-tmp"; rm -rf "$tmp" "$src"; mkdir -p "$tmp"
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" --wildcards './usr/src/linux-source-6.1.tar.xz'
    tar -xJf "$tmp/usr/src/linux-source-6.1.tar.xz" -C "$tmp"
    mv "$tmp/linux-source-6.1" "$src"; rm -rf "$tmp"
  fi
  echo "$src"
}
