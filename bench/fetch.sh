#!/bin/bash
# bench/fetch.sh - pull a debootstrap minbase Debian (bookworm) from a local
# docker-registry with hypr-fetch and with `skopeo copy docker://... oci:DIR`,
# alternating, RUNS times each; print the best times, throughput and the ratio
# skopeo/hypr (> 1 means hypr-fetch is faster).
# The rootfs and its OCI layout are cached under $HYPR_BENCH_CACHE
# (default /var/cache/hypr-bench); the first run needs Debian's mirror.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
runs=${RUNS:-3}
fetch=${HYPR_FETCH:-$src/build/bin/hypr-fetch}
# shellcheck source=bench/peers.sh
. "$src/bench/peers.sh"
peers_debian fetch.sh

work=$(mktemp -d)
export HYPR_SRC=$src
# shellcheck source=tests/lib/registry.bash disable=SC1091
. "$src/tests/lib/registry.bash"
trap 'reg_stop "$work/reg"; rm -rf "$work"' EXIT
port=$(reg_start "$work/reg")
ref=127.0.0.1:$port/debian:bookworm
reg_push "$layout" "$ref"
bytes=$(du -bc "$layout"/blobs/sha256/* | tail -1 | cut -f1)

now() { date +%s.%N; }
best_h="" best_s=""
for i in $(seq "$runs"); do
	rm -rf "$work/root" "$work/oci"
	sync
	t0=$(now)
	HYPR_ROOT=$work/root "$fetch" pull -q "$ref" >/dev/null
	t1=$(now)
	skopeo copy -q --src-tls-verify=false "docker://$ref" "oci:$work/oci:latest"
	t2=$(now)
	h=$(echo "$t1 - $t0" | bc -l)
	s=$(echo "$t2 - $t1" | bc -l)
	printf 'run %d: hypr-fetch %.3f s, skopeo %.3f s\n' "$i" "$h" "$s"
	if [ -z "$best_h" ] || [ "$(echo "$h < $best_h" | bc -l)" = 1 ]; then best_h=$h; fi
	if [ -z "$best_s" ] || [ "$(echo "$s < $best_s" | bc -l)" = 1 ]; then best_s=$s; fi
done
mb=$(echo "$bytes / 1000000" | bc -l)
printf 'image: %.1f MB compressed (one layer), local docker-registry over HTTP\n' "$mb"
printf 'hypr-fetch best %.3f s (%.0f MB/s); skopeo copy best %.3f s (%.0f MB/s)\n' \
	"$best_h" "$(echo "$mb / $best_h" | bc -l)" "$best_s" "$(echo "$mb / $best_s" | bc -l)"
printf 'ratio skopeo/hypr-fetch: %.2f\n' "$(echo "$best_s / $best_h" | bc -l)"
