#!/bin/sh
# bench/build.sh - a cold build (no cache) of a small multi-RUN Dockerfile:
# `hypr build --no-cache` against `docker build --no-cache` (BuildKit,
# Debian's docker.io) and `buildah bud --no-cache`, same Dockerfile, same
# busybox base made locally (no Docker Hub). Prints mean times and ratios.
# hypr's build VM runs under TCG here (see DESIGN.md); the peers use
# namespaces, so this measures what the VM isolation costs.
# Needs hyperfine, skopeo, jq and root (dockerd).
# Usage: bench/build.sh ; RUNS=N (default 5).
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
hypr=${HYPR:-$src/build/bin/hypr}
runs=${RUNS:-5}
# shellcheck source=bench/peers.sh
. "$src/bench/peers.sh"
peers_begin build.sh /tmp hyperfine skopeo jq
layout=$work/busybox-oci
"$src/tests/lib/mkbase.sh" "$layout"

ctx=$work/ctx
mkdir -p "$ctx/src"
for i in 1 2 3 4 5 6 7 8; do
	head -c 65536 /dev/urandom > "$ctx/src/blob$i"
done
cat > "$ctx/Dockerfile" <<'EOF'
FROM busybox
RUN echo one > /one
RUN mkdir -p /app && for i in $(seq 200); do echo "$i" > /app/f$i; done
COPY src /src/
RUN ls -l /src > /listing && rm /one
ENV X=1
WORKDIR /app
RUN cat f1 f2 /listing > all && head -c 1048576 /dev/zero > big
EOF

# hypr
export HYPR_ROOT="$work/hypr-root"
"$hypr" load --name busybox:latest "$layout" >/dev/null
"$hypr" build -q --no-cache -t bench:cold "$ctx" >/dev/null
hyperfine -N --style basic --runs "$runs" --export-json "$work/hypr.json" \
	"$hypr build -q --no-cache -t bench:cold $ctx"
results="hypr $(jq '.results[0].mean' "$work/hypr.json")"

# docker build with BuildKit, on its own daemon (bench/peers.sh)
if peers_dockerd build.sh; then
	/usr/bin/docker build -q --no-cache --network=none -t bench:cold "$ctx" >/dev/null
	hyperfine -N --style basic --runs "$runs" --export-json "$work/docker.json" \
		"/usr/bin/docker build -q --no-cache --network=none -t bench:cold $ctx"
	results="$results
docker $(jq '.results[0].mean' "$work/docker.json")"
fi

# buildah bud, its own store (vfs, chroot isolation)
if peers_buildah build.sh; then
	# shellcheck disable=SC2086
	buildah $bs bud -q --no-cache --pull=never --isolation chroot -t bench:cold "$ctx" >/dev/null
	hyperfine -N --style basic --runs "$runs" --export-json "$work/buildah.json" \
		"buildah $bs bud -q --no-cache --pull=never --isolation chroot -t bench:cold $ctx"
	results="$results
buildah $(jq '.results[0].mean' "$work/buildah.json")"
fi

echo
echo "cold build, 4 RUN + COPY + WORKDIR ($runs runs each, mean):"
echo "$results" | awk 'NR == 1 { h = $2 }
	{ printf "  %-8s %8.1f ms   %6.2fx hypr\n", $1, $2 * 1000, $2 / h }'
