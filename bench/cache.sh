#!/bin/bash
# bench/cache.sh - the cold-machine build: an empty $HYPR_ROOT builds a
# project with `--cache-from type=registry,...` (the cache another store
# exported with --cache-to to a local docker-registry) against the same
# build with no cache, alternating, RUNS times each (default 3). The busybox
# base is loaded into each empty store before the clock starts. Prints the
# best times and the ratio no-cache / cache-from (> 1: the cache wins).
# Usage: bench/cache.sh [CONTEXT]  (its Dockerfile FROM busybox:latest; the
# default is a made project: a COPY and three RUNs).
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
hypr=${HYPR:-$src/build/bin/hypr}
runs=${RUNS:-3}
# shellcheck source=bench/peers.sh
. "$src/bench/peers.sh"
peers_begin cache.sh /tmp skopeo jq bc
layout=$work/busybox-oci
"$src/tests/lib/mkbase.sh" "$layout"
export HYPR_SRC="$src"
# shellcheck source=tests/lib/registry.bash disable=SC1091
. "$src/tests/lib/registry.bash"
port=$(reg_start "$work/reg")
trap 'reg_stop "$work/reg"; peers_cleanup' EXIT INT TERM
ref=127.0.0.1:$port/bench/cache:main

if [ $# -gt 0 ]; then
	ctx=$(cd "$1" && pwd)
else
	ctx=$work/ctx
	mkdir -p "$ctx/data"
	i=0
	while [ $i -lt 64 ]; do
		head -c 65536 /dev/urandom > "$ctx/data/f$i"
		i=$((i + 1))
	done
	cat > "$ctx/Dockerfile" <<'DF'
FROM busybox:latest
COPY data /data
RUN i=0; while [ $i -lt 3000 ]; do echo $i > /tmp/f$i; i=$((i+1)); done; tar -cf /t.tar /tmp
RUN sha256sum /data/* > /sums
RUN mkdir -p /app && cp /data/* /app/ && gzip -9 /t.tar
CMD ["cat", "/sums"]
DF
fi

# machine A: build and export
export HYPR_ROOT="$work/a"
"$hypr" load --name busybox:latest "$layout" >/dev/null
id=$("$hypr" build -q --cache-to "type=registry,ref=$ref,mode=max" "$ctx")

now() { date +%s.%N; }
fresh() {
	rm -rf "$work/b"
	HYPR_ROOT=$work/b "$hypr" load --name busybox:latest "$layout" >/dev/null
	sync
}
best_c="" best_n=""
for i in $(seq "$runs"); do
	fresh
	t0=$(now)
	got=$(HYPR_ROOT=$work/b "$hypr" build -q --cache-from "type=registry,ref=$ref" "$ctx")
	t1=$(now)
	[ "$got" = "$id" ] || { echo "cache.sh: --cache-from gave $got, not $id" >&2; exit 1; }
	fresh
	t2=$(now)
	got=$(HYPR_ROOT=$work/b "$hypr" build -q "$ctx")
	t3=$(now)
	[ "$got" = "$id" ] || echo "cache.sh: (no cache gave $got, not $id: the RUNs are not reproducible)" >&2
	c=$(echo "$t1 - $t0" | bc -l)
	n=$(echo "$t3 - $t2" | bc -l)
	printf 'run %d: --cache-from %.3f s, no cache %.3f s\n' "$i" "$c" "$n"
	if [ -z "$best_c" ] || [ "$(echo "$c < $best_c" | bc -l)" = 1 ]; then best_c=$c; fi
	if [ -z "$best_n" ] || [ "$(echo "$n < $best_n" | bc -l)" = 1 ]; then best_n=$n; fi
done
echo
echo "cold-machine build of $ctx ($runs runs each; load average: $(cut -d' ' -f1 /proc/loadavg)):"
printf '  --cache-from (registry on loopback) best %.3f s; no cache best %.3f s\n' "$best_c" "$best_n"
printf '  ratio no-cache / cache-from: %.2f\n' "$(echo "$best_n / $best_c" | bc -l)"
