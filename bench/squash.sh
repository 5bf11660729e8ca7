#!/bin/bash
# bench/squash.sh - hypr-squash (flatten + tar2sqfs, from a tar stream) versus
# mksquashfs (squashfs-tools, from the extracted tree) on a Debian bookworm
# minbase rootfs, same compressor, level and block size.
#
# Prints each tool's best-of-N wall time, throughput (rootfs tar bytes per
# second) and image size, then the ratios:
#   throughput ratio = mksquashfs time / hypr-squash time (> 1: hypr faster)
#   size ratio       = hypr-squash size / mksquashfs size (< 1: hypr smaller)
#
# Environment: COMP (zstd), LEVEL (3), RUNS (3), HYPR_SQUASH (hypr-squash
# from build/bin), BENCH_CACHE (/var/cache/hypr-bench), MIRROR.
# Needs root once, for debootstrap and for an extraction with real owners.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
COMP=${COMP:-zstd}
LEVEL=${LEVEL:-3}
RUNS=${RUNS:-3}
CACHE=${BENCH_CACHE:-/var/cache/hypr-bench}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SQUASH=${HYPR_SQUASH:-$here/build/bin/hypr-squash}
tree=$CACHE/squash-bookworm
tarball=$CACHE/squash-bookworm.tar

mkdir -p "$CACHE"
if [ ! -f "$tarball" ]; then
	echo "bench: debootstrap --variant=minbase bookworm (once) ..." >&2
	rm -rf "$tree.tmp"
	debootstrap --variant=minbase bookworm "$tree.tmp" "$MIRROR" >&2
	# what an image would not ship: package lists and downloaded .debs
	rm -rf "$tree.tmp"/var/lib/apt/lists/* "$tree.tmp"/var/cache/apt/*.bin \
		"$tree.tmp"/var/cache/apt/archives/*.deb
	tar -C "$tree.tmp" --numeric-owner --xattrs --sort=name -cf "$tarball.tmp" .
	mv "$tarball.tmp" "$tarball"
	rm -rf "$tree.tmp"
fi
if [ ! -d "$tree" ]; then
	mkdir -p "$tree.tmp"
	tar -C "$tree.tmp" --numeric-owner --xattrs -xpf "$tarball"
	mv "$tree.tmp" "$tree"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bytes=$(stat -c %s "$tarball")
ncpu=$(nproc)

# warm the page cache for both inputs
cat "$tarball" > /dev/null
tar -C "$tree" -cf - . > /dev/null

now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.6f\\n\", $1 }"; }

: > "$work/h.t"
: > "$work/m.t"
: > "$work/r.t"
# each run: wall seconds and CPU seconds (user + sys of the children)
TIMEFORMAT='%R %U %S'
timed() { # timed OUT-FILE CMD...: append "wall cpu" to OUT-FILE
	local out=$1 t
	shift
	t=$( { time "$@" > /dev/null 2>&3; } 3>&2 2>&1 )
	echo "$t" | awk '{ printf "%.3f %.3f\n", $1, $2 + $3 }' >> "$out"
}
i=0
while [ "$i" -lt "$RUNS" ]; do
	i=$((i + 1))
	timed "$work/h.t" "$SQUASH" --comp "$COMP" --level "$LEVEL" -o "$work/h.sqfs" < "$tarball"
	timed "$work/m.t" mksquashfs "$tree" "$work/m.sqfs" -noappend -quiet -no-progress \
		-comp "$COMP" -Xcompression-level "$LEVEL" -b 131072 -processors "$ncpu"
	timed "$work/r.t" tar2sqfs -q -f -c "$COMP" -X "level=$LEVEL" -j "$ncpu" "$work/r.sqfs" \
		< "$tarball"
done
# best wall time and best CPU time over the runs
ht=$(sort -g "$work/h.t" | head -n 1 | cut -d' ' -f1)
mt=$(sort -g "$work/m.t" | head -n 1 | cut -d' ' -f1)
rt=$(sort -g "$work/r.t" | head -n 1 | cut -d' ' -f1)
hc=$(sort -g -k2 "$work/h.t" | head -n 1 | cut -d' ' -f2)
mc=$(sort -g -k2 "$work/m.t" | head -n 1 | cut -d' ' -f2)
rc=$(sort -g -k2 "$work/r.t" | head -n 1 | cut -d' ' -f2)
hs=$(stat -c %s "$work/h.sqfs")
ms=$(stat -c %s "$work/m.sqfs")

printf 'rootfs tar: %s (%d bytes, %d CPUs, load %s), %s level %s, best of %d\n' \
	"$tarball" "$bytes" "$ncpu" "$(cut -d' ' -f1 /proc/loadavg)" "$COMP" "$LEVEL" "$RUNS"
printf '%-12s %7.2f s wall %7.1f MB/s %7.2f s CPU %11d bytes\n' \
	hypr-squash "$ht" "$(calc "$bytes / $ht / 1000000")" "$hc" "$hs"
printf '%-12s %7.2f s wall %7.1f MB/s %7.2f s CPU %11d bytes\n' \
	mksquashfs "$mt" "$(calc "$bytes / $mt / 1000000")" "$mc" "$ms"
printf '%-12s %7.2f s wall %7.1f MB/s %7.2f s CPU %11d bytes (tar2sqfs alone)\n' \
	tar2sqfs "$rt" "$(calc "$bytes / $rt / 1000000")" "$rc" "$(stat -c %s "$work/r.sqfs")"
printf 'throughput ratio (mksquashfs time / hypr-squash time): %.2f wall, %.2f CPU\n' \
	"$(calc "$mt / $ht")" "$(calc "$mc / $hc")"
printf 'size ratio (hypr-squash size / mksquashfs size): %.3f\n' "$(calc "$hs / $ms")"
