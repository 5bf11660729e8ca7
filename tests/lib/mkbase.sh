#!/bin/sh
# mkbase.sh DIR [ARCH [LAYER.tar...]] - make a small busybox-static base
# image as an OCI image layout in DIR (tag "latest"), with no registry and no
# Docker. Extra uncompressed layer tars go on top, in order.
# The rootfs: busybox and its applet links, /etc/passwd, /etc/group with a
# non-root user "app" (1000:1000), /tmp, /root, /home/app.
set -eu
out=$1
arch=${2:-amd64}
shift $(($# < 2 ? $# : 2))
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
r=$work/rootfs
mkdir -p "$r/bin" "$r/sbin" "$r/usr/bin" "$r/usr/sbin" "$r/etc" "$r/tmp" \
	"$r/root" "$r/home/app" "$r/proc" "$r/sys" "$r/dev" "$r/var"
cp /bin/busybox "$r/bin/busybox"
for a in $(/bin/busybox --list-full); do
	[ "$a" = bin/busybox ] && continue
	mkdir -p "$r/$(dirname "$a")"
	ln -sf /bin/busybox "$r/$a"
done
cat > "$r/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat > "$r/etc/group" <<'G'
root:x:0:
app:x:1000:
nogroup:x:65534:
G
chmod 1777 "$r/tmp"
chown 1000:1000 "$r/home/app"
# Deterministic layer: sorted names, fixed owner/mtime except where set above.
(cd "$r" && find . -mindepth 1 | LC_ALL=C sort |
	tar --no-recursion --numeric-owner --mtime=@0 -cf - -T -) > "$work/layer.tar"
mkdir -p "$out/blobs/sha256"
put() { # file -> prints digest hex
	h=$(sha256sum "$1" | cut -d' ' -f1)
	cp "$1" "$out/blobs/sha256/$h"
	echo "$h"
}
diffs='[]' layers='[]'
for l in "$work/layer.tar" "$@"; do
	d=$(sha256sum "$l" | cut -d' ' -f1)
	gzip -n -9 < "$l" > "$work/l.gz"
	lsize=$(stat -c %s "$work/l.gz")
	lhex=$(put "$work/l.gz")
	diffs=$(printf '%s' "$diffs" | jq -c --arg d "sha256:$d" '. + [$d]')
	layers=$(printf '%s' "$layers" | jq -c --arg l "sha256:$lhex" --argjson ls "$lsize" \
		'. + [{mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $l, size: $ls}]')
done
jq -cn --arg arch "$arch" --argjson d "$diffs" '{
  architecture: $arch, os: "linux", created: "1970-01-01T00:00:00Z",
  config: {Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
           Cmd: ["sh"]},
  rootfs: {type: "layers", diff_ids: $d},
  history: [{created: "1970-01-01T00:00:00Z", created_by: "hypr tests: busybox-static"}]
}' > "$work/config.json"
csize=$(stat -c %s "$work/config.json")
chex=$(put "$work/config.json")
jq -cn --arg c "sha256:$chex" --argjson cs "$csize" --argjson l "$layers" '{
  schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
  config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $c, size: $cs},
  layers: $l
}' > "$work/manifest.json"
msize=$(stat -c %s "$work/manifest.json")
mhex=$(put "$work/manifest.json")
jq -cn --arg m "sha256:$mhex" --argjson ms "$msize" --arg arch "$arch" '{
  schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json",
  manifests: [{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $m,
    size: $ms, platform: {architecture: $arch, os: "linux"},
    annotations: {"org.opencontainers.image.ref.name": "latest"}}]
}' > "$out/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' > "$out/oci-layout"
