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
work=$(mktemp -d /tmp/hypr-bench.XXXXXX)
dpid=
cleanup() {
	[ -n "$dpid" ] && kill "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
	rm -rf "$work" 2>/dev/null || true
}
trap cleanup EXIT INT TERM
for t in hyperfine skopeo jq; do
	command -v "$t" >/dev/null || { echo "build.sh: needs $t (HYPR_BENCH_DEPS=1 tools/install-deps.sh)" >&2; exit 4; }
done
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

# docker build with BuildKit, on its own daemon (vfs, no iptables, no bridge)
if [ -x /usr/sbin/dockerd ] && [ -x /usr/bin/docker ]; then
	sock="$work/docker.sock"
	/usr/sbin/dockerd --data-root "$work/docker" --exec-root "$work/dexec" \
		--pidfile "$work/docker.pid" --host "unix://$sock" --storage-driver vfs \
		--iptables=false --ip6tables=false --bridge=none >"$work/dockerd.log" 2>&1 &
	dpid=$!
	export DOCKER_HOST="unix://$sock" DOCKER_BUILDKIT=1
	i=0
	until /usr/bin/docker version >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -gt 100 ] && { cat "$work/dockerd.log" >&2; echo "build.sh: dockerd did not start" >&2; exit 4; }
		sleep 0.2
	done
	skopeo copy -q oci:"$layout":latest --dest-daemon-host "unix://$sock" \
		docker-daemon:busybox:latest
	/usr/bin/docker build -q --no-cache --network=none -t bench:cold "$ctx" >/dev/null
	hyperfine -N --style basic --runs "$runs" --export-json "$work/docker.json" \
		"/usr/bin/docker build -q --no-cache --network=none -t bench:cold $ctx"
	results="$results
docker $(jq '.results[0].mean' "$work/docker.json")"
else
	echo "build.sh: no dockerd (docker.io): skipping docker build" >&2
fi

# buildah bud, its own store (vfs, chroot isolation)
if command -v buildah >/dev/null; then
	bs="--root $work/buildah --runroot $work/buildah-run --storage-driver vfs"
	# shellcheck disable=SC2086
	skopeo copy -q oci:"$layout":latest \
		"containers-storage:[vfs@$work/buildah+$work/buildah-run]docker.io/library/busybox:latest"
	# shellcheck disable=SC2086
	buildah $bs bud -q --no-cache --pull=never --isolation chroot -t bench:cold "$ctx" >/dev/null
	hyperfine -N --style basic --runs "$runs" --export-json "$work/buildah.json" \
		"buildah $bs bud -q --no-cache --pull=never --isolation chroot -t bench:cold $ctx"
	results="$results
buildah $(jq '.results[0].mean' "$work/buildah.json")"
else
	echo "build.sh: no buildah: skipping" >&2
fi

echo
echo "cold build, 4 RUN + COPY + WORKDIR ($runs runs each, mean):"
echo "$results" | awk 'NR == 1 { h = $2 }
	{ printf "  %-8s %8.1f ms   %6.2fx hypr\n", $1, $2 * 1000, $2 / h }'
