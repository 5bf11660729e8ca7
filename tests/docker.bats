#!/usr/bin/env bats
# Shows (issue 15): the same Dockerfile built by hypr and by docker (a
# private dockerd, as bench/peers.sh starts one; no Docker Hub: the same
# busybox layout, tests/lib/mkbase.sh, loaded into both), then the same
# `inspect --format` and `images --format` through each, compared. Skipped
# where dockerd cannot start (not root, no docker.io).
# bats file_tags=docker,vm
load helpers

# docker ARGS...: the private daemon's client
dk() {
	DOCKER_HOST="unix://$DK/docker.sock" docker "$@"
}

setup_file() {
	export DK="$BATS_FILE_TMPDIR/dk"
	export HYPR_ROOT="$BATS_FILE_TMPDIR/root"
	mkdir -p "$DK" "$HYPR_ROOT"
	[ "$(id -u)" = 0 ] && [ -x /usr/sbin/dockerd ] && command -v docker >/dev/null &&
		command -v skopeo >/dev/null || return 0
	/usr/sbin/dockerd --data-root "$DK/docker" --exec-root "$DK/dexec" \
		--pidfile "$DK/docker.pid" --host "unix://$DK/docker.sock" --storage-driver vfs \
		--iptables=false --ip6tables=false --bridge=none >"$DK/dockerd.log" 2>&1 &
	echo $! > "$DK/pid"
	for _ in $(seq 100); do
		dk version >/dev/null 2>&1 && break
		sleep 0.2
	done
	dk version >/dev/null 2>&1 || return 0
	skopeo copy -q oci:"$(busybox_layout)":latest \
		--dest-daemon-host "unix://$DK/docker.sock" docker-daemon:busybox:latest || return 0
	hypr load --name busybox:latest "$(busybox_layout)" >/dev/null
	mkdir -p "$DK/ctx"
	cat > "$DK/ctx/Dockerfile" <<-'EOF'
	FROM busybox:latest
	ENV A=1 B="two words"
	LABEL k=v other="x y" z.last=3
	EXPOSE 80 53/udp 8080/tcp
	USER 1000:1000
	WORKDIR /app
	VOLUME /data
	ENTRYPOINT ["/bin/sh", "-c"]
	CMD ["echo hi", "there"]
	EOF
	# BuildKit when docker has buildx, else the classic builder: the
	# image config is the same
	bk=0
	dk buildx version >/dev/null 2>&1 && bk=1
	DOCKER_BUILDKIT=$bk dk build -q -t shows:1 "$DK/ctx" >/dev/null 2>"$DK/build.err" || return 0
	hypr build -q -t shows:1 "$DK/ctx" >/dev/null
	touch "$DK/ready"
}

teardown_file() {
	[ -f "$DK/pid" ] || return 0
	kill "$(cat "$DK/pid")" 2>/dev/null
	for _ in $(seq 50); do kill -0 "$(cat "$DK/pid")" 2>/dev/null || break; sleep 0.2; done
}

setup() {
	[ -f "$DK/ready" ] || skip "no private dockerd here (needs root, docker.io, skopeo)"
}

# same_inspect FORMAT: docker's and hypr's output for it, equal
same_inspect() {
	local d h
	d=$(dk image inspect --format "$1" shows:1)
	h=$(hypr image inspect --format "$1" shows:1)
	[ "$d" = "$h" ] || { printf 'format %s\ndocker: %s\nhypr:   %s\n' "$1" "$d" "$h" >&2; return 1; }
}

@test "docker: inspect --format of the config fields prints what docker prints" {
	local f
	for f in '{{.Config.Env}}' '{{.Config.Cmd}}' '{{.Config.Entrypoint}}' \
		'{{.Config.ExposedPorts}}' '{{.Config.Labels}}' '{{.Config.User}}' \
		'{{.Config.WorkingDir}}' '{{.Config.Volumes}}' '{{.Architecture}}' '{{.Os}}' \
		'{{.Os}}/{{.Architecture}} {{.Config.User}}'; do
		same_inspect "$f"
	done
}

@test "docker: json, range, println, index, join as docker's templates" {
	local f
	for f in '{{json .Config.Env}}' '{{range .Config.Env}}{{println .}}{{end}}' \
		'{{index .Config.Labels "k"}}' '{{join .Config.Cmd " "}}' \
		'{{json .Config.ExposedPorts}}' '{{json .Config.Labels}}' '{{json .Config.Cmd}}' \
		'{{json .Config.Entrypoint}}' '{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}' \
		'{{len .Config.Env}}' '{{.Config.Labels.k}}'; do
		same_inspect "$f"
	done
}

@test "docker: images --format with \\t, filtered by repository" {
	run -0 dk images --format '{{.Repository}}\t{{.Tag}}' shows
	want=$output
	assert_equal "$want" "shows"$'\t'"1"
	run -0 hypr images --format '{{.Repository}}\t{{.Tag}}' shows
	assert_equal "$output" "$want"
}
