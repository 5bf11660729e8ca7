#!/bin/sh
# build-kernel.sh OUT - build the hypr guest kernel (PVH ELF vmlinux) into OUT.
#
# Linux from Debian's linux-source-6.1 tarball with the patches in
# pipeline/vm/kernel-patches/ (in name order), `make tinyconfig` plus the
# fragment pipeline/vm/kernel.config. Every fragment option is checked in the
# resulting .config: Kconfig drops options with unmet dependencies silently,
# and that must fail the build. The result is cached outside the clone, keyed
# by the fragment's and the patches' hash and the source tarball, so fresh
# clones reuse it:
#   ${HYPR_KERNEL_CACHE:-/var/cache/hypr/kernel}/KEY/vmlinux
# Environment: HYPR_KERNEL_SRC (tarball), HYPR_KERNEL_CACHE, JOBS.
set -eu

out=${1:?usage: build-kernel.sh OUT}
# The build cds into the kernel tree: make OUT absolute first, or the link
# lands inside the cache (the first `make demo` on a fresh machine failed).
case $out in /*) ;; *) out=$(pwd)/$out ;; esac
here=$(cd "$(dirname "$0")" && pwd)
frag=$here/kernel.config
src=${HYPR_KERNEL_SRC:-/usr/src/linux-source-6.1.tar.xz}
cache=${HYPR_KERNEL_CACHE:-/var/cache/hypr/kernel}
jobs=${JOBS:-$(nproc)}

[ -r "$src" ] || { echo "build-kernel: $src: missing (apt-get install linux-source-6.1)" >&2; exit 4; }
if ! mkdir -p "$cache" 2>/dev/null || [ ! -w "$cache" ]; then
	cache=${XDG_CACHE_HOME:-$HOME/.cache}/hypr/kernel
	mkdir -p "$cache"
fi
key=$( { cat "$frag" "$here"/kernel-patches/*.patch; stat -L -c '%n %s %Y' "$src"; } |
	sha256sum | cut -c1-16)
dir=$cache/$key

link_out() {
	mkdir -p "$(dirname "$out")"
	rm -f "$out"
	ln -s "$dir/vmlinux" "$out" 2>/dev/null || cp "$dir/vmlinux" "$out"
}

if [ -s "$dir/vmlinux" ]; then
	link_out
	echo "build-kernel: cached $dir/vmlinux"
	exit 0
fi

# One builder at a time per key (parallel clones of the same machine).
mkdir -p "$dir"
exec 9>"$dir/lock"
flock 9
if [ -s "$dir/vmlinux" ]; then link_out; exit 0; fi

work=$dir/work
rm -rf "$work"
mkdir -p "$work"
echo "build-kernel: extracting $src" >&2
tar -xJf "$src" -C "$work"
ksrc=$(find "$work" -mindepth 1 -maxdepth 1 -type d | head -n1)
cd "$ksrc"
for p in "$here"/kernel-patches/*.patch; do
	patch -p1 -s --forward < "$p" || { echo "build-kernel: $p does not apply" >&2; exit 1; }
done
make -s tinyconfig >/dev/null
./scripts/kconfig/merge_config.sh -m .config "$frag" >/dev/null
make -s olddefconfig >/dev/null

# Check that every option of the fragment survived.
bad=0
while IFS= read -r line; do
	case $line in
	CONFIG_*=*)
		opt=${line%%=*}
		grep -qx "$line" .config || { echo "build-kernel: $opt: wanted '${line#*=}', got '$(grep "^$opt=" .config || echo unset)'" >&2; bad=1; }
		;;
	"# CONFIG_"*" is not set")
		opt=${line#\# }; opt=${opt%% *}
		if grep -q "^$opt=y" .config; then echo "build-kernel: $opt: wanted unset, got y" >&2; bad=1; fi
		;;
	esac
done < "$frag"
[ $bad = 0 ] || { echo "build-kernel: kernel.config options refused by Kconfig (unmet dependencies?)" >&2; exit 1; }

echo "build-kernel: make -j$jobs vmlinux (about 6 minutes on 2 cores)" >&2
nice -n 5 make -s -j"$jobs" vmlinux >&2
strip -o vmlinux.stripped vmlinux 2>/dev/null || cp vmlinux vmlinux.stripped
cp .config "$dir/config"
mv vmlinux.stripped "$dir/vmlinux.tmp"
mv "$dir/vmlinux.tmp" "$dir/vmlinux"
cd "$dir"
rm -rf "$work"
link_out
echo "build-kernel: built $dir/vmlinux"
