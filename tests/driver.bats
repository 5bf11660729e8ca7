#!/usr/bin/env bats
# The hypr driver's own logic: flags, the pipeline wiring, failure
# attribution, --keep/--from/-n, progress and the command mapping.
#
# WIRING TESTS WITH FAKE STAGES: most tests here swap every stage for
# tests/fixtures/driver/fake-stage (a shell script) through HYPR_PARSE etc.,
# to test how the driver connects and reports stages -- not what a stage
# does. The end-to-end tests with the real stages are in build.bats.
load helpers

setup() {
	fresh_root
	FAKES="$BATS_TEST_TMPDIR/fakes"
	mkdir -p "$FAKES"
	for s in parse fetch exec layer squash store; do
		ln -s "$FIX/driver/fake-stage" "$FAKES/hypr-$s"
		export "HYPR_${s^^}=$FAKES/hypr-$s"
	done
	export FAKE_LOG="$BATS_TEST_TMPDIR/calls"
	CTX="$BATS_TEST_TMPDIR/ctx"
	mkdir -p "$CTX"
	printf 'FROM busybox\nCOPY a /a\nRUN echo hi\n' > "$CTX/Dockerfile"
	unset NO_COLOR HYPR_PROGRESS BUILDKIT_PROGRESS
	ID=sha256:5d41402abc4b2a76b9719d911017c592ae3c8a3fa8b4f1d5e0e2e6a1f1a2b3c4
}

@test "driver: -n prints the equivalent shell pipeline" {
	unset HYPR_PARSE HYPR_FETCH HYPR_EXEC HYPR_LAYER HYPR_SQUASH HYPR_STORE
	run -0 hypr build -n -t app:1 -t app:latest --build-arg V=2 --build-arg BARE \
		--target builder --platform linux/amd64 --pull=always --no-cache \
		--label 'a=b c' "$CTX"
	assert_output "hypr-parse -f $CTX/Dockerfile --build-arg=V=2 --build-arg=BARE --target=builder --platform=linux/amd64 |
  hypr-fetch --pull=always |
  hypr-exec --no-cache --context $CTX |
  hypr-layer |
  hypr-squash --verify |
  hypr-store -t app:1 -t app:latest '--label=a=b c'"
}

@test "driver: -n shows a swapped stage and -f relative to the working directory" {
	cd "$BATS_TEST_TMPDIR"
	printf 'FROM scratch\n' > other.Dockerfile
	HYPR_PARSE= HYPR_EXEC=./my-exec run -0 hypr build --print -f other.Dockerfile ctx
	assert_line --index 0 "hypr-parse -f other.Dockerfile |"
	assert_line --index 2 "  ./my-exec --context ctx |"
}

@test "driver: DOCKER_DEFAULT_PLATFORM is the default --platform" {
	HYPR_PARSE= DOCKER_DEFAULT_PLATFORM=linux/arm64 run -0 hypr build -n "$CTX"
	assert_line --index 0 "hypr-parse -f $CTX/Dockerfile --platform=linux/arm64 |"
	HYPR_PARSE= DOCKER_DEFAULT_PLATFORM=linux/arm64 run -0 hypr build -n --platform linux/amd64 "$CTX"
	assert_line --index 0 "hypr-parse -f $CTX/Dockerfile --platform=linux/amd64 |"
}

@test "driver: -q prints only the image ID; --iidfile writes it" {
	run --separate-stderr -0 hypr build -q --iidfile "$BATS_TEST_TMPDIR/iid" -t x "$CTX"
	assert_output "$ID"
	[ -z "$stderr" ]
	[ "$(cat "$BATS_TEST_TMPDIR/iid")" = "$ID" ]
}

@test "driver: every stage runs once, in order, with its arguments" {
	run -0 hypr build -q -t x --build-arg A=1 --label k=v "$CTX"
	run -0 sort "$FAKE_LOG"
	run -0 cut -d' ' -f1 <<<"$output"
	assert_output "hypr-exec
hypr-fetch
hypr-layer
hypr-parse
hypr-squash
hypr-store"
	run -0 grep '^hypr-store ' "$FAKE_LOG"
	assert_output "hypr-store -t x --label=k=v"
	run -0 grep '^hypr-parse ' "$FAKE_LOG"
	assert_output "hypr-parse -f $CTX/Dockerfile --build-arg=A=1"
}

@test "driver: plain progress is BuildKit style, no colour off a terminal" {
	run --separate-stderr -0 hypr build --progress=plain -t x "$CTX"
	[ -z "$output" ]
	[[ $stderr == *"#1 [2/3] COPY a /a"$'\n'"#1 CACHED"$'\n'"#2 [3/3] RUN echo hi"$'\n'"#2 hi"$'\n'"#2 DONE 0.1s"* ]]
	[[ $stderr == *"#3 writing image $ID done"$'\n'"#3 naming to x done"* ]]
	[[ $stderr != *$'\033'* ]]
}

@test "driver: --progress=tty draws the live view; NO_COLOR keeps it colourless" {
	NO_COLOR=1 run --separate-stderr -0 hypr build --progress=tty -t x "$CTX"
	[[ $stderr == *"[+] Building"*"FINISHED"* ]]
	[[ $stderr == *"=> CACHED [2/3] COPY a /a"* ]]
	[[ $stderr == *"=> [3/3] RUN echo hi"* ]]
	[[ $stderr == *"=> => # hi"* ]]
	[[ ! $stderr =~ $'\033'\[3[0-9]m ]]
}

@test "driver: the full log of the last build is kept" {
	run -0 hypr build --progress=quiet -t x "$CTX"
	[ -z "$output" ]
	run -0 cat "$HYPR_ROOT/logs/last.log"
	assert_output --partial "#2 [3/3] RUN echo hi"
	assert_output --partial "# hypr-store exited 0"
}

@test "driver: a failed RUN names hypr-exec, its line and output; exit 1" {
	export FAKE_FAIL='hypr-exec:1:hypr-exec: Dockerfile:3: RUN echo hi: exit code 1'
	run --separate-stderr -1 hypr build --progress=plain -t x "$CTX"
	[ -z "$output" ]
	assert_equal "$(grep -c '^ERROR' <<<"$stderr")" 1
	[[ $stderr == *"ERROR: hypr-exec failed (exit 1): hypr-exec: Dockerfile:3: RUN echo hi: exit code 1"* ]]
	[[ $stderr == *"   3 | >>> RUN echo hi"* ]]
	[[ $stderr == *" > [3/3] RUN echo hi:"$'\n'"output line 1"$'\n'"output line 2"* ]]
	[[ $stderr == *"full log: $HYPR_ROOT/logs/last.log"* ]]
	# the truncated streams downstream are symptoms: in the log, not on screen
	[[ $stderr != *"ERROR: hypr-layer"* ]]
	[[ $stderr != *"truncated"* ]]
	run -0 grep -c "hypr-layer: input: truncated stream" "$HYPR_ROOT/logs/last.log"
}

@test "driver: the upstream-most failure is reported, with its exit status" {
	export FAKE_FAIL='hypr-fetch:4:hypr-fetch: registry 127.0.0.1:1 unreachable'
	run --separate-stderr -4 hypr build -q -t x "$CTX"
	[ -z "$output" ]
	assert_equal "$(grep '^ERROR' <<<"$stderr")" \
		"ERROR: hypr-fetch failed (exit 4): hypr-fetch: registry 127.0.0.1:1 unreachable"
}

@test "driver: a parse error shows the Dockerfile line; exit 3" {
	export FAKE_FAIL="hypr-parse:3:hypr-parse: Dockerfile:2: unknown instruction 'COPPY'"
	run --separate-stderr -3 hypr build -t x "$CTX"
	[[ $stderr == *"   2 | >>> COPY a /a"* ]]
	[[ $stderr == *"ERROR: hypr-parse failed (exit 3)"* ]]
}

@test "driver: a last-stage failure while upstream is healthy is that stage's" {
	export FAKE_FAIL='hypr-store:4:hypr-store: images: No space left on device'
	run --separate-stderr -4 hypr build -q -t x "$CTX"
	[[ $stderr == *"ERROR: hypr-store failed (exit 4): hypr-store: images: No space left on device"* ]]
}

@test "driver: a missing stage program is a system error naming it" {
	export HYPR_LAYER="$BATS_TEST_TMPDIR/no-such-layer"
	run --separate-stderr -4 hypr build -q -t x "$CTX"
	[[ $stderr == *"cannot run $BATS_TEST_TMPDIR/no-such-layer"* ]]
	[[ $stderr == *"ERROR: hypr-layer failed (exit 4)"* ]]
}

@test "driver: --keep saves every stream and log; --from resumes from them" {
	K="$BATS_TEST_TMPDIR/keep"
	run -0 hypr build -q --keep "$K" -t x "$CTX"
	for f in plan resolved steps image squashed; do
		run -0 tail -n1 "$K/$f.jsonl"
		assert_output --partial '"end":true'
	done
	for s in parse fetch exec layer squash store; do [ -f "$K/$s.err" ]; done
	run -0 grep -c . "$K/exec.err"
	[ "$(cat "$K/id")" = "$ID" ]
	grep -q 'hypr-parse' "$K/pipeline.sh"
	: > "$FAKE_LOG"
	run -0 hypr build -q --from layer "$K" -t y
	assert_output "$ID"
	run -0 sort "$FAKE_LOG"
	assert_output "hypr-layer
hypr-squash
hypr-store -t y"
}

@test "driver: --from needs a saved directory and a known stage" {
	run -2 hypr build --from layer
	assert_output --partial "needs a directory saved by --keep"
	run -2 hypr build --from bogus "$BATS_TEST_TMPDIR" .
	assert_output --partial "unknown stage 'bogus'"
	run -2 hypr build --from squash "$BATS_TEST_TMPDIR/nothing"
	assert_output --partial "image.jsonl"
}

@test "driver: BuildKit-only flags are refused by name (exit 2)" {
	# --secret, --add-host and --network=default are hypr's now (tests/mount.bats),
	# --cache-to and --cache-from too (tests/cache.bats), --push (tests/push.bats)
	for f in --ssh=default \
	    --output=type=local,dest=o -oout --allow=network.host --network=host; do
		run --separate-stderr -2 hypr build "$f" "$CTX"
		[[ $stderr == "hypr: build: "*"not supported by hypr"* ]] || {
			echo "flag $f: $stderr"; false; }
	done
	run -0 hypr build -q --network=none --load -t x "$CTX"
	# --push is hypr's now (tests/push.bats); it needs a name
	run --separate-stderr -2 hypr build --push "$CTX"
	[ "$stderr" = "hypr: build: --push needs a name to push (-t NAME[:TAG])" ]
}

@test "driver: usage errors exit 2" {
	run -2 hypr build
	assert_output --partial "CONTEXT"
	run -2 hypr build "$BATS_TEST_TMPDIR/missing"
	assert_output --partial "not a directory"
	run -2 hypr build --progress=fancy "$CTX"
	run -2 hypr build --pull=sometimes "$CTX"
	run -2 hypr build --label novalue "$CTX"
	run -2 hypr build "$CTX" "$CTX"
	run -2 hypr build -f "$CTX/nope" "$CTX"
	run -2 hypr frobnicate
	run -2 hypr
	run -0 hypr build --help
	assert_output --partial "--keep DIR"
}

@test "driver: -f - reads the Dockerfile from stdin" {
	HYPR_PARSE= run -0 hypr build -n -f - "$CTX"
	assert_line --index 0 "hypr-parse |"
	cat > "$BATS_TEST_TMPDIR/parse-stdin" <<-'EOF'
	#!/bin/sh
	cat > "$FAKE_LOG.stdin"
	exec "$(dirname "$FAKE_LOG")/fakes/hypr-parse" "$@"
	EOF
	chmod +x "$BATS_TEST_TMPDIR/parse-stdin"
	HYPR_PARSE="$BATS_TEST_TMPDIR/parse-stdin" run -0 hypr build -q -f - "$CTX" < "$CTX/Dockerfile"
	diff "$CTX/Dockerfile" "$FAKE_LOG.stdin"
}

@test "driver: stages are found next to the hypr binary first" {
	unset HYPR_PARSE HYPR_FETCH HYPR_EXEC HYPR_LAYER HYPR_SQUASH HYPR_STORE
	B="$BATS_TEST_TMPDIR/bin"
	mkdir -p "$B"
	cp "$(command -v hypr)" "$B/hypr"
	for s in parse fetch exec layer squash store; do ln -s "$FIX/driver/fake-stage" "$B/hypr-$s"; done
	PATH=/usr/bin:/bin run -0 "$B/hypr" build -q -t x "$CTX"
	assert_output "$ID"
}

@test "driver: image and system commands map onto hypr-store and hypr-fetch" {
	run -0 hypr images -q
	run -0 hypr image ls --format json
	run -0 hypr rmi -f x
	run -0 hypr image rm x
	run -0 hypr image inspect x
	run -0 hypr image prune -a -f
	run -0 hypr system df -v
	run -0 hypr system prune -f
	run -0 hypr pull busybox
	run -0 hypr load --name busybox:latest /dir
	run -0 hypr load /dir --name busybox:latest
	run -0 hypr tag app:1 reg.example/app:2
	run -0 hypr image tag app:1 app:3
	run -0 hypr push -a reg.example/app
	run -0 hypr image push reg.example/app:2
	run -0 hypr save -o a.tar app:1
	run -0 hypr image save --format oci app:1
	run -0 hypr history --no-trunc app:1
	run -0 hypr image history -q app:1
	run -0 cat "$FAKE_LOG"
	assert_output "hypr-store images -q
hypr-store images --format json
hypr-store rmi -f x
hypr-store rmi x
hypr-store inspect x
hypr-store image-prune -a -f
hypr-store system-df -v
hypr-store system-prune -f
hypr-fetch pull busybox
hypr-fetch load --name busybox:latest /dir
hypr-fetch load --name busybox:latest /dir
hypr-store tag app:1 reg.example/app:2
hypr-store tag app:1 app:3
hypr-fetch push -a reg.example/app
hypr-fetch push reg.example/app:2
hypr-fetch save -o a.tar app:1
hypr-fetch save --format oci app:1
hypr-store history --no-trunc app:1
hypr-store history -q app:1"
	run -2 hypr image frob
	run -2 hypr system
}

@test "driver: version and help" {
	run -0 hypr version
	[[ $output =~ ^hypr\ [0-9]+\.[0-9]+ ]]
	run -0 hypr help
	assert_output --partial "compose"
}

@test "driver: SIGTERM to hypr alone stops every stage; exit 143" {
	FAKE_SLOW=hypr-exec hypr build -q -t x "$CTX" 2>"$BATS_TEST_TMPDIR/err" &
	pid=$!
	sleep 0.3
	kill -TERM "$pid"
	rc=0
	wait "$pid" || rc=$?
	assert_equal "$rc" 143
	run -0 cat "$BATS_TEST_TMPDIR/err"
	assert_output --partial "hypr: build interrupted"
}

@test "driver: a stage's endless stderr line is clipped at 1 MiB, and says so; memory stays bounded" {
	cat > "$BATS_TEST_TMPDIR/noisy-fetch" <<-'EOF2'
	#!/bin/sh
	head -c 3000000 /dev/zero | tr '\0' x >&2
	echo >&2
	head -c 200000000 /dev/zero | tr '\0' y >&2
	echo >&2
	exec cat
	EOF2
	chmod +x "$BATS_TEST_TMPDIR/noisy-fetch"
	HYPR_FETCH="$BATS_TEST_TMPDIR/noisy-fetch" run --separate-stderr -0 \
		/usr/bin/time -f 'maxrss %M' -o "$BATS_TEST_TMPDIR/rss" hypr build -q -t x "$CTX"
	assert_output "$ID"
	log=$HYPR_ROOT/logs/last.log
	run -0 sh -c "grep -a 'line clipped: 3000000 bytes' '$log' | tr -d x"
	assert_output " [line clipped: 3000000 bytes]"
	run -0 sh -c "grep -a 'line clipped: 3000000 bytes' '$log' | tr -cd x | wc -c"
	assert_output 1048576
	run -0 sh -c "grep -a 'line clipped: 200000000 bytes' '$log' | sed 's/ \\[line clipped.*//' | tr -cd y | wc -c"
	assert_output 1048576
	# the driver never holds the 200 MB line (about 4 MB here, 34 MB with
	# ASan; room for both)
	rss=$(sed -n 's/^maxrss //p' "$BATS_TEST_TMPDIR/rss")
	[ "$rss" -lt 60000 ] || { echo "driver peak RSS ${rss} kB" >&2; false; }
}

@test "driver: RUN output is byte-faithful in the log and off a terminal, escaped on one" {
	# as hypr-exec sends a RUN's output: JSON strings (printf undoes the \\)
	out='{"stage":"exec","event":"output","n":2,"fd":1,"text":'
	export FAKE_OUTPUT="$out"'"a\\u0000b"}\n'"$out"'"\\u001b]52;c;ZXZpbA==\\u0007\\u001b]0;title\\u0007"}\n'"$out"'"tab\\there"}\n'
	run -0 sh -c "hypr build --progress=plain -t x '$CTX' 2> '$BATS_TEST_TMPDIR/err'"
	log=$HYPR_ROOT/logs/last.log
	# NULs and every other byte as the RUN wrote them: log and plain stderr
	for f in "$log" "$BATS_TEST_TMPDIR/err"; do
		run -0 env LC_ALL=C grep -caP '^#2 a\x00b$' "$f"
		assert_output 1
		run -0 env LC_ALL=C grep -caP '^#2 \x1b]52;c;ZXZpbA==\x07\x1b]0;title\x07$' "$f"
		assert_output 1
	done
	# on a terminal: control bytes escaped, tab kept, in plain and tty mode
	for mode in plain tty; do
		NO_COLOR=1 run -0 script -qec "hypr build --progress=$mode -t x '$CTX'" /dev/null
		[[ $output != *$'\033]'* && $output != *$'\a'* ]]
		if [ "$mode" = plain ]; then
			[[ $output == *'#2 a\x00b'$'\r\n''#2 \x1b]52;c;ZXZpbA==\x07\x1b]0;title\x07'$'\r\n''#2 tab'$'\t''here'* ]]
		else
			[[ $output == *'=> => # \x1b]52;c;ZXZpbA==\x07\x1b]0;title\x07'* ]]
		fi
	done
	grep -qaP '^#2 a\x00b$' "$log"
}

@test "driver: HYPR_LOG_MAX caps the log and says where it was cut" {
	out='{"stage":"exec","event":"output","n":2,"fd":1,"text":"%01000d"}\n'
	export FAKE_OUTPUT="$out$out$out$out"
	HYPR_LOG_MAX=2K run --separate-stderr -0 hypr build --progress=plain -t x "$CTX"
	# the screen gets every line
	[ "$(grep -c '^#2 0000' <<<"$stderr")" -eq 4 ]
	log=$HYPR_ROOT/logs/last.log
	[ "$(grep -c '^#2 0000' "$log")" -eq 1 ]
	run -0 grep -n '^# hypr: ' "$log"
	assert_line --regexp '^[0-9]+:# hypr: log cut here: it reached HYPR_LOG_MAX=2048 bytes; the rest of the build.s output is not logged$'
	assert_line --regexp '^[0-9]+:# hypr: [0-9]+ bytes of output after the cut were not logged \(HYPR_LOG_MAX=2048\)$'
	# the stage exits are logged whatever the cap
	run -0 grep -c '^# hypr-store exited 0' "$log"
	[ "$(stat -c %s "$log")" -lt 4096 ]
	HYPR_LOG_MAX=0 run -0 hypr build --progress=plain -t x "$CTX"
	[ "$(grep -c '^#2 0000' "$log")" -eq 4 ]
	HYPR_LOG_MAX=12Q run --separate-stderr -2 hypr build -t x "$CTX"
	[ "$stderr" = "hypr: build: HYPR_LOG_MAX=12Q: not a size (bytes, or a number with K, M or G; 0 for no limit)" ]
}

@test "driver: stages are joined by the kernel's pipes, as -n prints them; each has its event channel" {
	export FAKE_FDS="$BATS_TEST_TMPDIR/fds"
	# in pipeline order (they start at once)
	fds() { for s in parse fetch exec layer squash store; do grep "^hypr-$s " "$FAKE_FDS"; done; }
	run -0 hypr build -q -t x "$CTX"
	# one stage's stdout is the next one's stdin: nothing in between
	run -0 awk 'NR > 1 && $2 != out { print "not joined: " prev " | " $1 }
		{ out = $3; prev = $1 } NR > 1 && $2 !~ /^pipe:/ { print "stdin " $2 }' <(fds)
	assert_output ""
	assert_equal "$(wc -l < "$FAKE_FDS")" 6
	# every stage has a channel of its own
	assert_equal "$(cut -d' ' -f4 "$FAKE_FDS" | grep -c '^pipe:')" 6
	assert_equal "$(cut -d' ' -f4 "$FAKE_FDS" | sort -u | wc -l)" 6
	# with --keep a tee sits between two stages, as -n and pipeline.sh say
	: > "$FAKE_FDS"
	K="$BATS_TEST_TMPDIR/keep"
	run -0 hypr build -q --keep "$K" -t x "$CTX"
	run -0 hypr build -n --keep "$K" -t x "$CTX"
	assert_equal "$output" "$(sed 1,2d "$K/pipeline.sh")"
	assert_equal "$(grep -c '^  tee ' <<<"$output")" 5
	run -0 awk 'NR > 1 && $2 == out { print "not through tee: " prev " | " $1 }
		{ out = $3; prev = $1 }' <(fds)
	assert_output ""
	run -0 jq -r 'select(.event == "step") | .text' "$K/exec.events"
	assert_output "COPY a /a
RUN echo hi"
	# --from: the saved file is the first stage's stdin
	: > "$FAKE_FDS"
	run -0 hypr build -q --from layer "$K" -t y
	assert_equal "$(grep '^hypr-layer ' "$FAKE_FDS" | cut -d' ' -f1-2)" "hypr-layer $K/steps.jsonl"
}

@test "driver: SIGKILL of hypr stops every stage (PR_SET_PDEATHSIG)" {
	FAKE_SLOW=hypr-exec setsid hypr build -q -t x "$CTX" > /dev/null 2>&1 &
	pid=$!
	for _ in $(seq 100); do pgrep -f "fake.*/hypr-exec" > /dev/null && break; sleep 0.05; done
	kill -KILL "$pid"
	rc=0
	wait "$pid" || rc=$?
	assert_equal "$rc" 137
	# no stage of the group lives on (the fake's own sleep 1 ends by itself)
	for _ in $(seq 100); do
		ps -o stat=,args= -g "$pid" | grep -v '^Z' | grep -q 'hypr-' || break
		sleep 0.05
	done
	run -1 sh -c "ps -o stat=,args= -g $pid | grep -v '^Z' | grep 'hypr-'"
}

@test "driver: a --keep copy that cannot be written fails the build, exit 4, naming it" {
	K="$BATS_TEST_TMPDIR/keep"
	mkdir -p "$K"
	ln -s /dev/full "$K/resolved.jsonl"
	run --separate-stderr -4 hypr build --progress=plain -t x --keep "$K" "$CTX"
	[ -z "$output" ]
	assert_equal "$(grep '^ERROR' <<<"$stderr")" \
		"ERROR: tee failed (exit 4): tee: $K/resolved.jsonl: No space left on device"
	# the stream went on: every stage ran to its end
	run -0 grep -c '^# hypr-store exited 0' "$HYPR_ROOT/logs/last.log"
}
