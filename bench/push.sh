#!/bin/bash
# bench/push.sh - push a many-files image (Debian minbase, COPY of 2000 small
# files and a 50 MiB file: bench/cold.sh's "files" context without its RUN,
# so no build VM) to a local docker-registry with `hypr push`, and the same
# image with `skopeo copy oci:DIR docker://...` (the OCI layout `hypr save
# --format oci` writes, unpacked) to another repository of the same
# registry; one run each, cold (nothing in the registry, hypr's pushed/
# memo empty); print both times and the ratio skopeo/hypr (> 1 means hypr
# is faster). Both gzip the uncompressed layers; hypr also uploads the
# squashfs artifact, which skopeo does not. Then a second hypr push (every
# blob present), and `hypr push --no-artifact` (the bytes skopeo sends) to
# a third repository, with its own ratio. Needs skopeo, jq, docker-registry, debootstrap once
# (bench/peers.sh).
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
hypr=${HYPR:-$src/build/bin/hypr}
# shellcheck source=bench/peers.sh
. "$src/bench/peers.sh"
peers_begin push.sh /var/tmp skopeo jq docker-registry
peers_debian push.sh
export HYPR_SRC=$src
# shellcheck source=tests/lib/registry.bash disable=SC1091
. "$src/tests/lib/registry.bash"
port=$(reg_start "$work/reg")
spid=$(cat "$work/reg/pid" 2>/dev/null || true)
reg=127.0.0.1:$port

export HYPR_ROOT="$work/hypr-root"
"$hypr" load --name debian:bookworm "$layout" >/dev/null
files=$work/files
peers_files "$files"
printf 'FROM debian:bookworm\nCOPY small /srv/small\nCOPY big /srv/big\n' > "$files/Dockerfile"
"$hypr" build -q -t "$reg/hypr/files:1" "$files" >/dev/null
"$hypr" save --format oci -o "$work/files.oci.tar" "$reg/hypr/files:1"
mkdir "$work/oci"
tar -xf "$work/files.oci.tar" -C "$work/oci"
bytes=$(du -bc "$work"/oci/blobs/sha256/* | tail -1 | cut -f1)
sq=$(du -b "$HYPR_ROOT"/images/*.squashfs | cut -f1)

now() { date +%s.%N; }
sync
t0=$(now)
"$hypr" push -q "$reg/hypr/files:1" >/dev/null
t1=$(now)
skopeo copy -q --dest-tls-verify=false "oci:$work/oci:1" "docker://$reg/skopeo/files:1"
t2=$(now)
"$hypr" push -q "$reg/hypr/files:1" >/dev/null
t3=$(now)
"$hypr" tag "$reg/hypr/files:1" "$reg/bare/files:1"
t4=$(now)
"$hypr" push -q --no-artifact "$reg/bare/files:1" >/dev/null
t5=$(now)
h=$(echo "$t1 - $t0" | bc -l)
s=$(echo "$t2 - $t1" | bc -l)
again=$(echo "$t3 - $t2" | bc -l)
bare=$(echo "$t5 - $t4" | bc -l)
printf 'image: %.1f MB of layers uncompressed (3 layers, 2000+ files), squashfs %.1f MB\n' \
	"$(echo "$bytes / 1000000" | bc -l)" "$(echo "$sq / 1000000" | bc -l)"
printf 'hypr push %.3f s (layers + config + manifest + squashfs artifact)\n' "$h"
printf 'skopeo copy %.3f s (layers + config + manifest)\n' "$s"
printf 'second hypr push (every blob there) %.3f s\n' "$again"
printf 'hypr push --no-artifact %.3f s (layers + config + manifest: what skopeo sends)\n' "$bare"
for r in hypr skopeo; do
	printf '%s pushed: ' "$r"
	skopeo inspect --raw --tls-verify=false "docker://$reg/$r/files:1" |
		jq -r '[.layers[] | "\(.mediaType | sub(".*layer.v1."; "")) \(.size / 1e6 * 10 | round / 10) MB"] | join(", ")'
done
lz=$(skopeo inspect --raw --tls-verify=false "docker://$reg/skopeo/files:1" | jq '[.layers[].size] | add')
printf 'bytes up: hypr %.1f MB (%.0f MB/s), skopeo %.1f MB (%.0f MB/s)\n' \
	"$(echo "($lz + $sq) / 1000000" | bc -l)" "$(echo "($lz + $sq) / 1000000 / $h" | bc -l)" \
	"$(echo "$lz / 1000000" | bc -l)" "$(echo "$lz / 1000000 / $s" | bc -l)"
printf 'ratio skopeo/hypr: %.2f (hypr also sends the squashfs)\n' "$(echo "$s / $h" | bc -l)"
printf 'ratio skopeo/hypr --no-artifact: %.2f (the same bytes)\n' "$(echo "$s / $bare" | bc -l)"
reg_stop "$work/reg"
spid=''
