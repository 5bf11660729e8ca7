# bench/peers.sh - sourced by the benches that compare hypr with its peers.
# peers_begin makes $work; the caller sets $layout (the busybox OCI layout).
# shellcheck shell=sh
# layout comes from the caller; work, dpid, bs are set for it.
# shellcheck disable=SC2034,SC2154

# peers_begin NAME TMPDIR TOOL...: a scratch dir $work under TMPDIR, removed
# at exit with the private dockerd (dpid) and the caller's server (spid) if
# they were started; exit 4 when a TOOL is missing.
peers_begin() {
	name=$1 base=$2
	shift 2
	for t in "$@"; do
		command -v "$t" >/dev/null ||
			{ echo "$name: needs $t (HYPR_BENCH_DEPS=1 tools/install-deps.sh)" >&2; exit 4; }
	done
	work=$(mktemp -d "$base/hypr-bench.XXXXXX")
	dpid='' spid=''
	trap peers_cleanup EXIT INT TERM
}

peers_cleanup() {
	[ -n "$spid" ] && kill "$spid" 2>/dev/null
	[ -n "$dpid" ] && kill "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
	# vfs layers can hold read-only dirs; the daemon is gone by now
	rm -rf "$work" 2>/dev/null || true
}

# peers_dockerd NAME: start a private dockerd (vfs, no iptables, no bridge)
# with BuildKit, export DOCKER_HOST, load busybox:latest into it; sets dpid
# (the caller's cleanup kills it). Returns 1 when docker.io is missing.
peers_dockerd() {
	if [ ! -x /usr/sbin/dockerd ] || [ ! -x /usr/bin/docker ]; then
		echo "$1: no dockerd (docker.io): skipping docker build" >&2
		return 1
	fi
	sock="$work/docker.sock"
	/usr/sbin/dockerd --data-root "$work/docker" --exec-root "$work/dexec" \
		--pidfile "$work/docker.pid" --host "unix://$sock" --storage-driver vfs \
		--iptables=false --ip6tables=false --bridge=none >"$work/dockerd.log" 2>&1 &
	dpid=$!
	export DOCKER_HOST="unix://$sock" DOCKER_BUILDKIT=1
	i=0
	until /usr/bin/docker version >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -gt 100 ] && { cat "$work/dockerd.log" >&2; echo "$1: dockerd did not start" >&2; exit 4; }
		sleep 0.2
	done
	skopeo copy -q oci:"$layout":latest --dest-daemon-host "unix://$sock" \
		docker-daemon:busybox:latest
}

# peers_buildah NAME: a private buildah store (vfs) holding busybox:latest;
# sets bs to the buildah options that select it. Returns 1 without buildah.
peers_buildah() {
	command -v buildah >/dev/null || {
		echo "$1: no buildah: skipping" >&2
		return 1
	}
	bs="--root $work/buildah --runroot $work/buildah-run --storage-driver vfs"
	skopeo copy -q oci:"$layout":latest \
		"containers-storage:[vfs@$work/buildah+$work/buildah-run]docker.io/library/busybox:latest"
}

# peers_files DIR: the "files" context of cold.sh and push.sh: 2000 small
# files of 7 to 200 bytes in 20 directories under DIR/small, and DIR/big,
# 50 MiB of random bytes.
peers_files() {
	mkdir -p "$1/small"
	python3 - "$1/small" <<'PY'
import os, sys
d = sys.argv[1]
for i in range(2000):
    sub = os.path.join(d, "%02d" % (i // 100))
    os.makedirs(sub, exist_ok=True)
    with open(os.path.join(sub, "f%04d" % i), "w") as f:
        f.write("file %d\n" % i * (1 + i % 20))
PY
	head -c 52428800 /dev/urandom > "$1/big"
}

# peers_debian NAME: a debootstrap minbase Debian (bookworm) rootfs and its
# OCI layout, made once and cached under $HYPR_BENCH_CACHE (default
# /var/cache/hypr-bench; the first run needs Debian's mirror). Sets rootfs
# and layout (the OCI layout, tag latest).
peers_debian() {
	cache=${HYPR_BENCH_CACHE:-/var/cache/hypr-bench}
	mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
	rootfs=$cache/debian-minbase
	layout=$cache/debian-minbase-oci
	mkdir -p "$cache"
	(
		flock 9
		if [ ! -f "$rootfs.done" ]; then
			rm -rf "$rootfs"
			echo "$1: debootstrap --variant=minbase bookworm (once)" >&2
			debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >/dev/null
			touch "$rootfs.done"
		fi
		if [ ! -f "$layout/index.json" ]; then
			echo "$1: making the OCI layout (once)" >&2
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
}

# peers_settle: write back what is dirty (sync), then wait (at most 10 s)
# until the machine has been idle for a quarter of a second: under 10% of
# its CPUs busy, per /proc/stat. A timed build starts then on a quiet
# machine, not on the clean-up that the tool timed before it left running
# (dockerd's vfs layers going away) nor on its writeback (an fsync in the
# next build would wait for it).
peers_settle() {
	sync
	_n=0
	while [ "$_n" -lt 40 ]; do
		_a=$(awk '/^cpu /{ print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8 }' /proc/stat)
		sleep 0.25
		_b=$(awk '/^cpu /{ print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8 }' /proc/stat)
		# shellcheck disable=SC2086
		set -- $_a $_b
		[ $(( ($3 - $1) * 10 )) -lt $(( $4 - $2 )) ] && return 0
		_n=$((_n + 1))
	done
}
