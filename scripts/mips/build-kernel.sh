#!/bin/bash
# Builds a big-endian Malta vmlinux from Debian's linux-source-6.1 with the options in
# kernel-options.txt, cached as $CACHE/mips/kernel/vmlinux-<key> (key = source version +
# options). Prints the vmlinux path. Nothing is installed on the host.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
opts="$here/kernel-options.txt"
deb=$(debian_deb linux-source-6.1)
key=$( (basename "$deb"; grep -v '^#' "$opts"; echo v1) | sha256sum | cut -c1-12)
out="$MIPS_CACHE/kernel/vmlinux-$key"
if [ -f "$out" ]; then ln -sfn "vmlinux-$key" "$MIPS_CACHE/kernel/vmlinux"; echo "$out"; exit 0; fi
mkdir -p "$MIPS_CACHE/kernel"

src=$(linux_source_dir)

bld="$MIPS_CACHE/kernel/build-$key"
if [ ! -d "$bld" ]; then
  # Seed from the newest earlier build: kbuild tracks dependencies per CONFIG_ symbol, so an
  # options change only recompiles what uses the changed options (minutes instead of ~6-30).
  prev=$(ls -1dt "$MIPS_CACHE"/kernel/build-* 2>/dev/null | head -1 || true)
  if [ -n "$prev" ] && [ -f "$prev/vmlinux" ]; then
    log "seeding $bld from $(basename "$prev")"; cp -a "$prev" "$bld.tmp" && mv "$bld.tmp" "$bld"
  fi
fi
mkdir -p "$bld"
K="make -C $src O=$bld ARCH=mips CROSS_COMPILE=$CROSS"
$K -s malta_defconfig
args=$(grep -v '^#' "$opts" | tr '\n' ' ')
# shellcheck disable=SC2086
"$src/scripts/config" --file "$bld/.config" $args
$K -s olddefconfig
for o in $(sed -n 's/^# require: //p' "$opts"); do
  case "$o" in
    *=n) grep -q "^CONFIG_${o%=n}=" "$bld/.config" && die "kernel config: CONFIG_${o%=n} must be off" ;;
    *) grep -q "^CONFIG_$o=y" "$bld/.config" || die "kernel config: CONFIG_$o is not =y after olddefconfig" ;;
  esac
done
log "building vmlinux in $bld (-j$JOBS), log: $bld/build.log"
t0=$(date +%s)
if ! $K -j"$JOBS" vmlinux >"$bld/build.log" 2>&1; then
  tail -30 "$bld/build.log" >&2; die "kernel build failed, see $bld/build.log"
fi
log "vmlinux built in $(( $(date +%s) - t0 )) s"
cp "$bld/vmlinux" "$out.tmp" && mv "$out.tmp" "$out"
cp "$bld/.config" "$out.config"
ln -sfn "vmlinux-$key" "$MIPS_CACHE/kernel/vmlinux"
echo "$out"
