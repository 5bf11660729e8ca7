#!/bin/sh
# bench/cached.sh - a cached rebuild of an unchanged project: `hypr build`
# against `docker build` (BuildKit, Debian's docker.io) and
# `buildah bud --layers`, same Dockerfile (examples/hello by default), same
# busybox base made locally (no Docker Hub), in one run. Prints the mean times
# and the ratios. Needs `HYPR_BENCH_DEPS=1 tools/install-deps.sh` and root
# (dockerd). Usage: bench/cached.sh [CONTEXT] ; RUNS=N (default 20).
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
hypr=${HYPR:-$src/build/bin/hypr}
ctx=$(cd "${1:-$src/examples/hello}" && pwd)
runs=${RUNS:-20}
# shellcheck source=bench/peers.sh
. "$src/bench/peers.sh"
peers_begin cached.sh /tmp hyperfine skopeo jq
layout=$work/busybox-oci
"$src/tests/lib/mkbase.sh" "$layout"

# hypr
export HYPR_ROOT="$work/hypr-root"
"$hypr" load --name busybox:latest "$layout" >/dev/null
"$hypr" build -q -t bench:cached "$ctx" >/dev/null	# cold: fills the cache
hyperfine -N --style basic --warmup 2 --runs "$runs" --export-json "$work/hypr.json" \
	"$hypr build -q -t bench:cached $ctx"
results="hypr $(jq -r '.results[0] | "\(.mean) \(.min)"' "$work/hypr.json")"

# docker build with BuildKit, on its own daemon (bench/peers.sh)
if peers_dockerd cached.sh; then
	/usr/bin/docker build -q --network=none -t bench:cached "$ctx" >/dev/null
	hyperfine -N --style basic --warmup 2 --runs "$runs" --export-json "$work/docker.json" \
		"/usr/bin/docker build -q --network=none -t bench:cached $ctx"
	results="$results
docker $(jq -r '.results[0] | "\(.mean) \(.min)"' "$work/docker.json")"
fi

# buildah bud --layers, its own store (vfs, chroot isolation)
if peers_buildah cached.sh; then
	# shellcheck disable=SC2086
	buildah $bs bud -q --layers --pull=never --isolation chroot -t bench:cached "$ctx" >/dev/null
	hyperfine -N --style basic --warmup 2 --runs "$runs" --export-json "$work/buildah.json" \
		"buildah $bs bud -q --layers --pull=never --isolation chroot -t bench:cached $ctx"
	results="$results
buildah $(jq -r '.results[0] | "\(.mean) \(.min)"' "$work/buildah.json")"
fi

echo
echo "cached rebuild of $ctx ($runs runs each; load average: $(cut -d' ' -f1 /proc/loadavg)):"
echo "$results" | awk 'NR == 1 { h = $2; hm = $3 }
	{ printf "  %-8s mean %8.1f ms (%5.1fx hypr)   min %8.1f ms (%5.1fx hypr)\n",
	    $1, $2 * 1000, $2 / h, $3 * 1000, $3 / hm }'
