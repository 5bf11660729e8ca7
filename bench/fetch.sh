#!/bin/bash
# bench/fetch.sh - pull a debootstrap minbase Debian (bookworm) from a local
# docker-registry with hypr-fetch and with `skopeo copy docker://... oci:DIR`,
# alternating, RUNS times each; print the best times, throughput and the ratio
# skopeo/hypr (> 1 means hypr-fetch is faster).
# The rootfs and its OCI layout are cached under $HYPR_BENCH_CACHE
# (default /var/cache/hypr-bench); the first run needs Debian's mirror.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
cache=${HYPR_BENCH_CACHE:-/var/cache/hypr-bench}
runs=${RUNS:-3}
fetch=${HYPR_FETCH:-$src/build/bin/hypr-fetch}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
rootfs=$cache/debian-minbase
layout=$cache/debian-minbase-oci
mkdir -p "$cache"

(
	flock 9
	if [ ! -f "$rootfs.done" ]; then
		rm -rf "$rootfs"
		echo "fetch.sh: debootstrap --variant=minbase bookworm (once)" >&2
		debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >/dev/null
		touch "$rootfs.done"
	fi
	if [ ! -f "$layout/index.json" ]; then
		echo "fetch.sh: making the OCI layout (once)" >&2
		t=$(mktemp -d "$cache/layout.XXXXXX")
		mkdir -p "$t/blobs/sha256"
		tar --numeric-owner --sort=name --mtime=@0 -C "$rootfs" -cf "$t/layer.tar" .
		gzip -n -6 < "$t/layer.tar" > "$t/layer.tar.gz"
		diffid=$(sha256sum < "$t/layer.tar" | cut -d' ' -f1)
		lhex=$(sha256sum < "$t/layer.tar.gz" | cut -d' ' -f1)
		lsize=$(stat -c %s "$t/layer.tar.gz")
		mv "$t/layer.tar.gz" "$t/blobs/sha256/$lhex"
		rm "$t/layer.tar"
		jq -cn --arg d "sha256:$diffid" '{architecture: "amd64", os: "linux",
		  config: {Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
		  Cmd: ["bash"]}, rootfs: {type: "layers", diff_ids: [$d]}}' > "$t/config.json"
		chex=$(sha256sum < "$t/config.json" | cut -d' ' -f1)
		csize=$(stat -c %s "$t/config.json")
		mv "$t/config.json" "$t/blobs/sha256/$chex"
		jq -cn --arg c "sha256:$chex" --argjson cs "$csize" --arg l "sha256:$lhex" \
			--argjson ls "$lsize" '{schemaVersion: 2,
		  mediaType: "application/vnd.oci.image.manifest.v1+json",
		  config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $c, size: $cs},
		  layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $l,
		  size: $ls}]}' > "$t/m.json"
		mhex=$(sha256sum < "$t/m.json" | cut -d' ' -f1)
		msize=$(stat -c %s "$t/m.json")
		mv "$t/m.json" "$t/blobs/sha256/$mhex"
		jq -cn --arg m "sha256:$mhex" --argjson ms "$msize" '{schemaVersion: 2,
		  manifests: [{mediaType: "application/vnd.oci.image.manifest.v1+json",
		  digest: $m, size: $ms, annotations: {"org.opencontainers.image.ref.name": "latest"}}]}' \
			> "$t/index.json"
		echo '{"imageLayoutVersion":"1.0.0"}' > "$t/oci-layout"
		rm -rf "$layout"
		mv "$t" "$layout"
	fi
) 9>"$cache/.debian-minbase.lock"

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
