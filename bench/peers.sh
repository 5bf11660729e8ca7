# bench/peers.sh - sourced by the benches that compare hypr with its peers.
# Needs $work (a scratch dir) and $layout (the busybox OCI layout).
# shellcheck shell=sh
# work, layout come from the caller; dpid, bs are set for it.
# shellcheck disable=SC2034,SC2154

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
