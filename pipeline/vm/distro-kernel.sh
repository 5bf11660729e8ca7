#!/bin/sh
# distro-kernel.sh VMLINUZ MODDIR INITRAMFS OUTDIR - the fallback guest kernel.
#
# Turns a distribution kernel into something the build VM boots: the ELF
# vmlinux out of the bzImage (PVH entry; the bzImage's in-guest decompressor
# costs seconds under TCG) and hypr-init's initramfs with the modules the
# guest needs appended as a second cpio (the kernel unpacks concatenated
# archives). hypr-init loads /lib/modules/hypr/*.ko in name order at boot.
# Writes OUTDIR/vmlinux, OUTDIR/hypr-init.cpio and OUTDIR/vmlinux.distro (the
# marker that makes lib/vm.c boot it with ACPI and without noapictimer).
set -eu
vmlinuz=${1:?usage: distro-kernel.sh VMLINUZ MODDIR INITRAMFS OUTDIR}
moddir=${2:?}
initramfs=${3:?}
out=${4:?}
mods="virtio_mmio virtio_blk virtio_console squashfs loop overlay crc32c_generic ext4"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"

# 1. vmlinux: try each compressor's magic, keep the first that yields an ELF.
try() { # magic-as-printf-escapes decompress-command
	# shellcheck disable=SC2013 # numbers, one per line
	for off in $(LC_ALL=C grep -obUaP "$1" "$vmlinuz" | cut -d: -f1); do
		tail -c +$((off + 1)) "$vmlinuz" | $2 > "$work/vmlinux" 2>/dev/null || true
		if [ "$(head -c 4 "$work/vmlinux" | od -An -c | tr -d ' ')" = '177ELF' ]; then
			return 0
		fi
	done
	return 1
}
try '\xFD7zXZ\x00' 'xz -dc' || try '\x28\xB5\x2F\xFD' 'zstd -dc' || try '\x1F\x8B\x08' 'gzip -dc' ||
	{ echo "distro-kernel: $vmlinuz: no ELF payload found" >&2; exit 1; }

# 2. modules and their dependencies, in load order (depth first on each
# module's own "depends=" modinfo, so no modules.dep or kmod is needed)
[ -d "$moddir/kernel" ] || { echo "distro-kernel: $moddir/kernel: missing" >&2; exit 1; }
find "$moddir/kernel" -name '*.ko*' > "$work/all"
: > "$work/order"
load() { # module name
	p=$(grep -E "/$(echo "$1" | sed 's/[-_]/[-_]/g')\.ko(\.[a-z]+)?$" "$work/all" | head -n1)
	if [ -z "$p" ]; then
		grep -qE "/$1\.ko$" "$moddir/modules.builtin" 2>/dev/null && return 0
		echo "distro-kernel: module $1: not found" >&2
		exit 1
	fi
	grep -qx "$p" "$work/order" && return 0
	# POSIX sh has no locals: keep this level's path across the recursion
	echo "$p" > "$work/path.$1"
	case $p in
	*.xz) xz -dc "$p" ;; *.zst) zstd -qdc "$p" ;; *.gz) gzip -dc "$p" ;; *) cat "$p" ;;
	esac | tr '\0' '\n' | sed -n 's/^depends=//p' | tr ',' '\n' > "$work/deps.$1"
	while read -r d; do
		[ -n "$d" ] && load "$d"
	done < "$work/deps.$1"
	p=$(cat "$work/path.$1")
	grep -qx "$p" "$work/order" || echo "$p" >> "$work/order"
}
for m in $mods; do
	load "$m"
done
mkdir -p "$work/cpio/lib/modules/hypr"
n=10
while read -r p; do
	name=$(basename "$p")
	case $name in
	*.ko) cp "$p" "$work/cpio/lib/modules/hypr/$n-$name" ;;
	*.ko.xz) xz -dc "$p" > "$work/cpio/lib/modules/hypr/$n-${name%.xz}" ;;
	*.ko.zst) zstd -qdc "$p" > "$work/cpio/lib/modules/hypr/$n-${name%.zst}" ;;
	*.ko.gz) gzip -dc "$p" > "$work/cpio/lib/modules/hypr/$n-${name%.gz}" ;;
	esac
	n=$((n + 1))
done < "$work/order"
(cd "$work/cpio" && find . | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) > "$work/modules.cpio"
cat "$initramfs" "$work/modules.cpio" > "$out/hypr-init.cpio.tmp"
mv "$out/hypr-init.cpio.tmp" "$out/hypr-init.cpio"
strip -o "$out/vmlinux" "$work/vmlinux" 2>/dev/null || mv "$work/vmlinux" "$out/vmlinux"
: > "$out/vmlinux.distro"
echo "distro-kernel: $out/vmlinux with $(wc -l < "$work/order") modules"
