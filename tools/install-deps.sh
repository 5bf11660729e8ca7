#!/bin/sh
# Install every Debian package hypr needs to build, test and benchmark.
# Idempotent: installs only what is missing. Run as root (or with sudo).
set -eu

pkgs="build-essential pkg-config
libarchive-dev libjansson-dev libssl-dev libyaml-dev zlib1g-dev
squashfs-tools squashfs-tools-ng
qemu-system-x86 linux-source-6.1 patch flex bison bc libelf-dev cpio xz-utils
e2fsprogs busybox-static libcap2-bin attr
bats bats-support bats-assert jq curl skopeo docker-registry apache2-utils
python3 debootstrap mandoc shellcheck cppcheck zsh"
[ "${HYPR_BENCH_DEPS:-0}" = 1 ] && pkgs="$pkgs hyperfine buildah docker.io"
[ "${HYPR_FUZZ_DEPS:-0}" = 1 ] && pkgs="$pkgs clang libclang-rt-14-dev"

missing=
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
echo "install-deps: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# docker-registry's postinst would start a system service; tests run their own.
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
