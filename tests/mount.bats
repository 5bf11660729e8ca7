#!/usr/bin/env bats
# RUN --mount and --network through the real `hypr build` (issue 10): every
# mount type and option, what reaches a layer and the cache key (and what
# never does), secrets in no artefact, the network on and off against a
# server on the host's loopback. The build VM runs for real (TCG here).
# bats file_tags=vm
load helpers

setup() {
	fresh_root
	export HYPR_PROGRESS=plain
	hypr load --name busybox:latest "$(busybox_layout)" >/dev/null
	C="$BATS_TEST_TMPDIR/ctx"
	mkdir -p "$C"
	cd "$BATS_TEST_TMPDIR" || return 1
}

teardown() {
	[ -z "${HTTP_PID:-}" ] || kill "$HTTP_PID" 2>/dev/null || true
	[ -z "${HOLD_PID:-}" ] || kill "$HOLD_PID" 2>/dev/null || true
}

# df LINE...: the context's Dockerfile
df() {
	printf '%s\n' "$@" > "$C/Dockerfile"
}

# layer_names N: the paths in the layer of step N of the last --keep k build
layer_names() {
	local d
	d=$(jq -r "select(.type == \"step\" and .n == $1) | .layer.digest // empty" k/steps.jsonl | tail -n 1)
	[ -n "$d" ] || return 0
	tar -tf "$HYPR_ROOT/blobs/sha256/${d#sha256:}" | LC_ALL=C sort
}

# http_serve DIR: python's http.server on a free loopback port ($PORT)
http_serve() {
	python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$1" > http.log 2>&1 &
	HTTP_PID=$!
	for _ in $(seq 100); do
		PORT=$(grep -o 'port [0-9]*' http.log | cut -d' ' -f2) && [ -n "$PORT" ] && return 0
		sleep 0.1
	done
	return 1
}

@test "mount: bind from the context (ro), a stage, an image; rw writes thrown away; no trace in the layer" {
	mkdir -p "$C/src/sub"
	echo ctxfile > "$C/src/a.txt"
	echo hidden > "$C/src/secret.key"
	echo 'src/*.key' > "$C/.dockerignore"
	df 'FROM busybox:latest AS builder' 'RUN mkdir /out && echo built > /out/artifact' \
		'FROM busybox:latest' 'WORKDIR /app' \
		'RUN --mount=type=bind,source=src,target=/mnt/src cat /mnt/src/a.txt; ls /mnt/src; touch /mnt/src/x 2>/dev/null || echo read-only' \
		'RUN --mount=from=builder,source=/out/artifact,target=/etc/artifact cat /etc/artifact' \
		'RUN --mount=type=bind,from=busybox:latest,source=/etc,target=/img cat /img/group | head -n 1' \
		'RUN --mount=type=bind,source=src,target=rel,rw echo new > rel/a.txt && cat rel/a.txt && touch /app/made'
	run -0 --separate-stderr hypr build --keep k -t m:1 "$C"
	[[ $stderr == *"#3 "[0-9]*" ctxfile"* ]]
	[[ $stderr == *"#3 "[0-9]*" a.txt"* && $stderr == *"#3 "[0-9]*" sub"* && $stderr != *"secret.key"* ]]
	[[ $stderr == *"#3 "[0-9]*" read-only"* ]]
	[[ $stderr == *"#4 "[0-9]*" built"* ]]
	[[ $stderr == *"#5 "[0-9]*" root:x:0:"* ]]
	[[ $stderr == *"#6 "[0-9]*" new"* ]]
	# only what the steps made outside their mounts: no mnt/, etc/artifact, img/, app/rel
	run -0 layer_names 2
	assert_output ''
	run -0 layer_names 5
	assert_output "$(printf '%s\n' app/ app/made)"
	[ "$(cat "$C/src/a.txt")" = ctxfile ]
	# the bind source is an input: a change runs its step (and so the later
	# ones) again; what came before stays cached
	echo changed > "$C/src/a.txt"
	run -0 --separate-stderr hypr build -t m:2 "$C"
	[[ $stderr == *"#1 CACHED"* && $stderr == *"#2 CACHED"* ]]
	[[ $stderr == *"#3 "[0-9]*" changed"* ]]
}

@test "mount: a cache persists across builds, never in a layer; system df lists it, builder prune removes it" {
	df 'FROM busybox:latest' \
		'RUN --mount=type=cache,target=/var/cache/app,uid=1000,mode=0750 echo run >> /var/cache/app/log && wc -l < /var/cache/app/log && stat -c "%a %u" /var/cache/app'
	run -0 --separate-stderr hypr build --keep k -t c:1 "$C"
	[[ $stderr == *"#1 "[0-9]*" 1"* ]]
	[[ $stderr == *"#1 "[0-9]*" 750 1000"* ]]
	run -0 layer_names 1
	assert_output ''
	# another build of another step that uses the same cache sees the first's file
	df 'FROM busybox:latest' \
		'RUN --mount=type=cache,target=/var/cache/app echo again >> /var/cache/app/log && cat /var/cache/app/log'
	run -0 --separate-stderr hypr build -t c:2 "$C"
	[[ $stderr == *"#1 "[0-9]*" run"* && $stderr == *"#1 "[0-9]*" again"* ]]
	# an id names a cache wherever it is mounted; a new id is a new cache
	df 'FROM busybox:latest' \
		'RUN --mount=type=cache,id=/var/cache/app,target=/c cat /c/log | wc -l' \
		'RUN --mount=type=cache,id=other,target=/c ls /c | wc -l'
	run -0 --separate-stderr hypr build -t c:3 "$C"
	[[ $stderr == *"#1 "[0-9]*" 2"* ]]
	[[ $stderr == *"#2 "[0-9]*" 0"* || $stderr == *"#2 "[0-9]*" 1"* ]]	# lost+found at most
	run -0 hypr system df
	assert_line --regexp '^Build Cache +[0-9]+ +0 +'
	run -0 hypr builder prune -f
	assert_output --regexp 'Total reclaimed space: [0-9.]+[kMG]?B'
	[ -z "$(ls "$HYPR_ROOT/cachemounts" 2>/dev/null)" ]
	run -0 --separate-stderr hypr build --no-cache -t c:4 "$C"
	[[ $stderr == *"#1 "[0-9]*" 0"* ]]
}

@test "mount: more cache disks than the VM has virtio devices for: the VM boots again; one RUN with too many fails at its line" {
	# base, network: room for 3 cache disks; d does not fit beside a, b, c
	df 'FROM busybox:latest' \
		'RUN --network=default --mount=type=cache,id=a,target=/a echo a > /a/f' \
		'RUN --mount=type=cache,id=b,target=/b echo b > /b/f' \
		'RUN --mount=type=cache,id=c,target=/c echo c > /c/f' \
		'RUN --mount=type=cache,id=d,target=/d echo d > /d/f' \
		'RUN --mount=type=cache,id=a,target=/a --mount=type=cache,id=b,target=/b --mount=type=cache,id=c,target=/c --mount=type=cache,id=d,target=/d cat /a/f /b/f /c/f /d/f | tr -d "\n"'
	run -0 --separate-stderr hypr build --keep k -t v:1 "$C"
	[[ $stderr == *"#5 "[0-9]*" abcd"* ]]
	run -0 jq -r 'select(.end == true) | .vm_boots' k/steps.jsonl
	assert_output 2
	df 'FROM busybox:latest' 'RUN true' \
		'RUN --network=default --mount=type=cache,id=a,target=/a --mount=type=cache,id=b,target=/b --mount=type=cache,id=c,target=/c --mount=type=cache,id=d,target=/d true'
	run -3 --separate-stderr hypr build -t v:2 "$C"
	[[ $stderr == *"ERROR: $C/Dockerfile:3: RUN --network=default "*": 4 cache mounts and a network in one RUN: the build VM has room for 3 (QEMU's microvm has 8 virtio devices)"* ]]
}

@test "mount: cache sharing: locked waits for a busy cache, private takes a fresh one" {
	df 'FROM busybox:latest' 'RUN --mount=type=cache,id=shared1,target=/c echo x > /c/f'
	run -0 hypr build -q -t s:1 "$C"
	img=$(ls "$HYPR_ROOT"/cachemounts/*.ext4)
	# another build holds it
	flock "$img" sleep 30 &
	HOLD_PID=$!
	sleep 0.5
	df 'FROM busybox:latest' 'RUN --mount=type=cache,id=shared1,target=/c,sharing=private ls /c'
	run -0 --separate-stderr timeout 120 hypr build -t s:2 "$C"
	# a private cache is a fresh one: no f listed ("#1 SECONDS f")
	[[ ! $stderr =~ \#1\ [0-9.]+\ f($'\n'|$) ]]
	df 'FROM busybox:latest' 'RUN --mount=type=cache,id=shared1,target=/c,sharing=locked cat /c/f'
	run -124 --separate-stderr timeout 5 hypr build -t s:3 "$C"
	[[ $stderr == *"waiting for cache mount shared1 (in use by another build)"* ]]
	kill "$HOLD_PID"
	HOLD_PID=
	run -0 --separate-stderr timeout 120 hypr build -t s:3 "$C"
	[[ $stderr == *"#1 "[0-9]*" x"* ]]
}

@test "mount: tmpfs with a size; two mounts on one target are refused" {
	df 'FROM busybox:latest' 'RUN --mount=type=tmpfs,target=/scratch,size=2m df -k /scratch | tail -n 1 && touch /scratch/x'
	run -0 --separate-stderr hypr build --keep k -t t:1 "$C"
	[[ $stderr == *"#1 "[0-9]*" tmpfs "*" 2048 "* ]]
	run -0 layer_names 1
	assert_output ''
	df 'FROM busybox:latest' 'RUN --mount=type=tmpfs,target=/a --mount=type=tmpfs,target=/a true'
	run -3 --separate-stderr hypr build -t t:2 "$C"
	[[ $stderr == *$'\n'"ERROR: $C/Dockerfile:2: RUN --mount=type=tmpfs,target=/a --mount=type=tmpfs,target=/a true: --mount: two mounts on /a"$'\n'* ]]
}

@test "mount: secrets as files and env reach the RUN and no artefact: store, streams, logs, argv" {
	echo "s3cr3t-$$-value" > tok
	export HYPR_TOKEN="env-$$-secret"
	# the RUNs print digests, never the secrets: their output is logged
	df 'FROM busybox:latest' \
		'RUN --mount=type=secret,id=tok sha256sum < /run/secrets/tok && stat -c "%a %u" /run/secrets/tok' \
		'RUN --mount=type=secret,id=tok,target=/etc/t,mode=0440,uid=1000 stat -c "%a %u" /etc/t' \
		'RUN --mount=type=secret,id=envtok,env=TOKEN echo "${#TOKEN} bytes"; sleep 2' \
		'RUN --mount=type=secret,id=absent ls /run/secrets/absent 2>/dev/null || echo none' \
		'RUN echo done > /done'
	hypr build --keep k --secret id=tok,src="$PWD/tok" --secret id=envtok,env=HYPR_TOKEN \
		-t sec:1 "$C" > out 2> err &
	BUILD=$!
	for _ in $(seq 600); do
		grep -q '^#3 ' err 2>/dev/null && break
		sleep 0.1
	done
	# no process on the host carries the secret on its command line (a
	# process gone while read is no error; the patterns never match
	# themselves)
	run -1 bash -c 'cat /proc/[0-9]*/cmdline 2>/dev/null | tr "\0" "\n" |
		grep -a -e "s3cr3[t]-$1" -e "env-$1-secre[t]"' _ "$$"
	wait "$BUILD"
	grep -q "^#1 [0-9.]* $(sha256sum < tok | cut -d' ' -f1)" err
	grep -q '^#1 [0-9.]* 400 0' err
	grep -q '^#2 [0-9.]* 440 1000' err
	grep -q "^#3 [0-9.]* ${#HYPR_TOKEN} bytes" err
	grep -q '^#4 [0-9.]* none' err
	# nowhere hypr writes: the store (blobs, cache, images, logs) and --keep
	run -1 grep -r -a -l -e "s3cr3t-$$" -e "env-$$-secret" "$HYPR_ROOT" k
	# the key has the id, not the bytes: another value still hits the cache
	echo other > tok
	run -0 --separate-stderr hypr build --secret id=tok,src="$PWD/tok" --secret id=envtok,env=HYPR_TOKEN -t sec:2 "$C"
	[[ $stderr == *"#1 CACHED"* ]]
	# required and missing: the step's line, exit 3
	df 'FROM busybox:latest' 'RUN --mount=type=secret,id=nope,required true'
	run -3 --separate-stderr hypr build -t sec:3 "$C"
	[[ $stderr == *"ERROR: $C/Dockerfile:2: RUN --mount=type=secret,id=nope,required true: secret nope: required, not given (hypr build --secret id=nope,src=FILE)"* ]]
}

@test "mount: type=ssh, bad options and from= with a variable fail at their line" {
	df 'FROM busybox:latest' 'RUN --mount=type=ssh true'
	run -3 --separate-stderr hypr build -t x:1 "$C"
	[[ $stderr == *"ERROR: $C/Dockerfile:2: RUN --mount=type=ssh is not supported by hypr"* ]]
	df 'FROM busybox:latest' 'RUN --mount=type=bind,target=/x,mode=0755 true'
	run -3 --separate-stderr hypr build -t x:1 "$C"
	[[ $stderr == *"Dockerfile:2: RUN --mount=type=bind,target=/x,mode=0755 true: --mount: mode not allowed for \"bind\" type mounts"* ]]
	df 'FROM busybox:latest' 'RUN --mount=type=cache,target=/c,sharing=sometimes true'
	run -3 --separate-stderr hypr build -t x:1 "$C"
	[[ $stderr == *'--mount: unsupported sharing value "sometimes"'* ]]
	df 'FROM busybox:latest' 'ARG S=busybox' 'RUN --mount=from=$S,target=/x true'
	run -3 --separate-stderr hypr build -t x:1 "$C"
	[[ $stderr == *"--mount: 'from' doesn't support variable expansion, define alias stage instead"* ]]
}

@test "network: off by default; --network=default and RUN --network reach the host's loopback; host is refused" {
	mkdir -p www
	echo "from the host" > www/f.txt
	http_serve www
	df 'FROM busybox:latest' \
		"RUN wget -qO- http://10.0.2.2:$PORT/f.txt >/dev/null 2>&1 && echo reached || echo unreachable"
	run -0 --separate-stderr hypr build -t n:1 "$C"
	[[ $stderr == *"#1 "[0-9]*" unreachable"* ]]
	# the build's flag: every RUN, resolv.conf from the VM, an --add-host line
	run -0 --separate-stderr hypr build --network=default --add-host hostbox:10.0.2.2 -t n:2 "$C"
	[[ $stderr == *"#1 "[0-9]*" reached"* ]]
	df 'FROM busybox:latest' \
		"RUN --network=default wget -qO- http://hostbox:$PORT/f.txt && cat /etc/resolv.conf" \
		"RUN --network=none wget -qO- http://10.0.2.2:$PORT/f.txt >/dev/null 2>&1 || echo cut off; ls /sys/class/net"
	run -0 --separate-stderr hypr build --keep k --add-host hostbox:host-gateway -t n:3 "$C"
	[[ $stderr == *"#1 "[0-9]*" from the host"* ]]
	[[ $stderr == *"#1 "[0-9]*" nameserver 10.0.2.3"* ]]
	[[ $stderr == *"#2 "[0-9]*" cut off"* && $stderr == *"#2 "[0-9]*" lo"* && $stderr != *"#2 "[0-9]*" eth0"* ]]
	# resolv.conf and hosts stay out of the layers
	run -0 layer_names 1
	refute_output --partial etc/
	run -2 --separate-stderr hypr build --network=host -t n:4 "$C"
	[[ $stderr == "hypr: build: --network=host is not supported by hypr"* ]]
	df 'FROM busybox:latest' 'RUN --network=host true'
	run -3 --separate-stderr hypr build -t n:4 "$C"
	[[ $stderr == *"Dockerfile:2: RUN --network=host true: RUN --network=host is not supported"* ]]
}

@test "network: the mode is in the cache key; proxy build args reach RUN, not the config or the key" {
	df 'FROM busybox:latest' 'RUN echo "proxy=$HTTP_PROXY" > /p && cat /p'
	run -0 --separate-stderr hypr build -t k:1 "$C"
	run -0 --separate-stderr hypr build --network=default -t k:2 "$C"
	[[ $stderr != *"#1 CACHED"* ]]
	run -0 --separate-stderr hypr build --network=default -t k:3 "$C"
	[[ $stderr == *"#1 CACHED"* ]]
	run -0 --separate-stderr hypr build --no-cache --build-arg HTTP_PROXY=http://10.0.2.2:3128 -t k:4 "$C"
	[[ $stderr == *"#1 "[0-9]*" proxy=http://10.0.2.2:3128"* ]]
	# the image records no proxy (it may carry credentials)
	run -0 hypr image inspect k:4
	[[ $output != *"3128"* ]]
	run -0 --separate-stderr hypr build --build-arg HTTP_PROXY=http://other:1 -t k:5 "$C"
	[[ $stderr == *"#1 CACHED"* ]]
}
