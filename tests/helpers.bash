# Common set-up for hypr's bats tests. Load with `load helpers`.
# shellcheck shell=bash
# FIX, CONFORMANCE and the HYPR_* stage names are for the test files.
# shellcheck disable=SC2034
bats_require_minimum_version 1.5.0
load /usr/lib/bats/bats-support/load.bash
load /usr/lib/bats/bats-assert/load.bash

HYPR_SRC=${HYPR_SRC:-$(cd "$BATS_TEST_DIRNAME/.." && pwd)}
FIX="$HYPR_SRC/tests/fixtures"
CONFORMANCE=${HYPR_CONFORMANCE:-$HYPR_SRC/../shared/conformance}
# HYPR_BIN (set by make check) picks the build: build/ or a sanitizer build.
export PATH="${HYPR_BIN:-$HYPR_SRC/build/bin}:$PATH"
# Build VM snapshots (hypr-guest(7)) are shared by every test of one run,
# as by every build on one machine, and made afresh by each run.
export HYPR_SNAPSHOT_DIR=${HYPR_SNAPSHOT_DIR:-${BATS_RUN_TMPDIR:-/tmp}/hypr-snapshots}

HYPR_PARSE=${HYPR_PARSE:-hypr-parse}
HYPR_FETCH=${HYPR_FETCH:-hypr-fetch}
HYPR_EXEC=${HYPR_EXEC:-hypr-exec}
HYPR_LAYER=${HYPR_LAYER:-hypr-layer}
HYPR_SQUASH=${HYPR_SQUASH:-hypr-squash}
HYPR_STORE=${HYPR_STORE:-hypr-store}

# Skip unless a capability is there: `requires root`, `requires kvm`.
requires() {
	case $1 in
	root) [ "$(id -u)" = 0 ] || skip "needs root" ;;
	kvm) [ -w /dev/kvm ] || skip "needs /dev/kvm" ;;
	*) command -v "$1" >/dev/null || skip "needs $1" ;;
	esac
}

# A private store per test unless the test sets HYPR_ROOT itself.
fresh_root() {
	export HYPR_ROOT="$BATS_TEST_TMPDIR/root"
	mkdir -p "$HYPR_ROOT"
}

# The busybox base image (OCI layout), built once per test run and shared.
# Prints the layout directory. See tests/lib/mkbase.sh.
busybox_layout() {
	local d=${HYPR_TEST_CACHE:-${BATS_RUN_TMPDIR:-/tmp}/hypr-test-cache}/busybox-oci
	if [ ! -f "$d/index.json" ]; then
		mkdir -p "${d%/*}"
		( flock 9; [ -f "$d/index.json" ] || "$HYPR_SRC/tests/lib/mkbase.sh" "$d" >&2 ) \
			9>"${d%/*}/.busybox.lock"
	fi
	echo "$d"
}
