#!/usr/bin/env bats
# What `hypr build` prints, with the real stages: --progress=quiet, plain
# lines with their times, the one error line in the user's words, and the
# TTY view seen in a tmux pane (screen and scrollback). hypr(1) PROGRESS.
load helpers

setup_file() {
	export HYPR_ROOT="$BATS_FILE_TMPDIR/root"
	mkdir -p "$HYPR_ROOT"
	hypr load --name busybox:latest "$(busybox_layout)" >/dev/null
}

setup() {
	unset HYPR_DEBUG HYPR_PROGRESS BUILDKIT_PROGRESS
	cd "$BATS_TEST_TMPDIR" || return
}

# ctx DIR LINE...: a context whose Dockerfile is the LINEs
ctx() {
	local d=$1
	shift
	mkdir -p "$d"
	printf '%s\n' "$@" > "$d/Dockerfile"
}

@test "output: --progress=quiet prints only the image ID on stdout, as buildx" {
	ctx q 'FROM busybox:latest' 'ENV A=1' 'CMD ["sh"]'
	run --separate-stderr -0 hypr build --progress=quiet -t q:1 q
	[[ $output =~ ^sha256:[0-9a-f]{64}$ ]]
	[ -z "$stderr" ]
	id=$output
	run -0 hypr image inspect -f '{{.Id}}' q:1
	assert_output "$id"
	HYPR_PROGRESS=quiet run --separate-stderr -0 hypr build -t q:1 q
	assert_output "$id"
	# none: nothing at all
	run --separate-stderr -0 hypr build --progress=none -t q:1 q
	[ -z "$output" ] && [ -z "$stderr" ]
}

@test "output: a bad Dockerfile line: one error line, in the user's words; exit 3" {
	ctx syn 'FROM busybox:latest' 'RUNN echo'
	run --separate-stderr -3 hypr build --progress=plain -t syn syn
	[ -z "$output" ]
	[[ $stderr == *"   2 | >>> RUNN echo"* ]]
	assert_equal "$(grep -c 'unknown instruction' <<<"$stderr")" 1
	assert_equal "$(grep -c '^ERROR' <<<"$stderr")" 1
	[[ $stderr == *$'\n'"ERROR: syn/Dockerfile:2: unknown instruction: RUNN"* ]]
	[[ $stderr != *hypr-parse* && $stderr != *failed* ]]
	# --debug names the stage
	run --separate-stderr -3 hypr build --debug --progress=plain -t syn syn
	[[ $stderr == *"ERROR: hypr-parse failed (exit 3): hypr-parse: syn/Dockerfile:2: "* ]]
}

# bats test_tags=vm
@test "output: a failing RUN: timed output lines, one error line in the user's words; exit 1" {
	ctx bad 'FROM busybox:latest' 'RUN echo about to fail && exit 7'
	run --separate-stderr -1 hypr build --progress=plain -t bad bad
	[ -z "$output" ]
	[[ $stderr =~ "#1 [1/1] RUN echo about to fail && exit 7"$'\n'"#1 "[0-9]+\.[0-9]{3}" about to fail"$'\n' ]]
	assert_equal "$(grep -c 'exit code 7' <<<"$stderr")" 1
	assert_equal "$(grep -c '^ERROR' <<<"$stderr")" 1
	[[ $stderr == *$'\n'"ERROR: bad/Dockerfile:2: RUN echo about to fail && exit 7: exit code 7"$'\n'* ]]
	[[ $stderr != *hypr-exec* && $stderr != *failed* ]]
	# -q: the same one line, the output above it
	run --separate-stderr -1 hypr build -q -t bad bad
	[ -z "$output" ]
	assert_equal "$(grep -c 'exit code 7' <<<"$stderr")" 1
	[[ $stderr == *"about to fail"* ]]
}
