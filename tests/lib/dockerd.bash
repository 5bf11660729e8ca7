# A private dockerd for the docker interop tests (tagged docker): vfs
# storage, no iptables, no bridge, its files under a directory of the
# test's; skips the test when docker.io is missing or the daemon does not
# start (a CI without the privileges it needs).
# shellcheck shell=bash

# dockerd_start DIR: start it, export DOCKER_HOST; dockerd_stop DIR ends it.
dockerd_start() {
	local d=$1 _
	[ -x /usr/sbin/dockerd ] && command -v docker > /dev/null ||
		skip "needs docker.io (dockerd)"
	mkdir -p "$d"
	/usr/sbin/dockerd --data-root "$d/data" --exec-root "$d/exec" \
		--pidfile "$d/docker.pid" --host "unix://$d/docker.sock" --storage-driver vfs \
		--iptables=false --ip6tables=false --bridge=none > "$d/dockerd.log" 2>&1 &
	echo $! > "$d/pid"
	export DOCKER_HOST="unix://$d/docker.sock"
	for _ in $(seq 150); do
		docker version > /dev/null 2>&1 && return 0
		sleep 0.2
	done
	dockerd_stop "$d"
	skip "dockerd did not start (see $d/dockerd.log)"
}

dockerd_stop() {
	local pid
	[ -f "$1/pid" ] || return 0
	pid=$(cat "$1/pid")
	kill "$pid" 2>/dev/null || true
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	rm -f "$1/pid"
	rm -rf "$1/data" 2>/dev/null || true
}
