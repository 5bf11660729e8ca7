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

# tmux_build W H CMD: run CMD in a detached tmux pane of W x H (its own
# server), wait for it to end, print the pane with its scrollback
tmux_build() {
	local sock=$BATS_TEST_TMPDIR/tmux.sock i
	tmux -S "$sock" new-session -d -x "$1" -y "$2" \
		"$3; echo EXIT=\$? > '$BATS_TEST_TMPDIR/exit'; sleep 60"
	for i in $(seq 600); do
		[ -f "$BATS_TEST_TMPDIR/exit" ] && break
		sleep 0.1
	done
	sleep 0.2
	tmux -S "$sock" capture-pane -p -S - | sed 's/ *$//'
	tmux -S "$sock" kill-server
}

# bats test_tags=vm
@test "output: the TTY view in tmux: header first, times right-aligned, lines cut, one copy in the scrollback" {
	requires tmux
	ctx tt 'FROM busybox:latest' 'ENV A=1' \
		"RUN echo one && sleep 1 && echo two-$(printf 'x%.0s' $(seq 100))" \
		'RUN for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo line $i; done' \
		"LABEL a-long-label-name-longer-than-the-pane-is-wide-$(printf 'y%.0s' $(seq 40))=v" \
		'CMD ["sh"]'
	tmux_build 60 10 "cd '$BATS_TEST_TMPDIR' && HYPR_ROOT='$HYPR_ROOT' PATH='$PATH' hypr build --no-cache -t tt tt" \
		> "$BATS_TEST_TMPDIR/pane"
	run -0 cat "$BATS_TEST_TMPDIR/exit"
	assert_output "EXIT=0"
	run -0 cat "$BATS_TEST_TMPDIR/pane"
	# the header first, once: no redraw left in the scrollback
	[[ ${lines[0]} =~ ^\[\+\]\ Building\ [0-9.]+s\ \(5/5\)\ FINISHED$ ]]
	[ "$(grep -c 'Building' <<<"$output")" -eq 1 ]
	[ "$(grep -c '\[3/5\]' <<<"$output")" -eq 1 ]
	[ "$(grep -c 'line 12' <<<"$output")" -eq 0 ]
	# each step a line of 59 columns (the last is left free), its time at
	# the end; the long ones cut
	for i in 1 2 3 4 5 6 7; do
		[[ ${lines[$i]} =~ ^\ =\>\ .*\ [0-9]+\.[0-9]s$ ]]
		[ "${#lines[$i]}" -eq 59 ]
	done
	[[ ${lines[1]} == " => [1/5] ENV A=1 "* ]]
	[[ ${lines[2]} == " => [2/5] RUN echo one && sleep 1 && echo two-"* ]]
	[[ ${lines[4]} == " => [4/5] LABEL a-long-label-name"* ]]
	[[ ${lines[6]} == " => writing image sha256:"* ]]
	[[ ${lines[7]} == " => naming to tt "* ]]
	# and nothing else on screen or above it
	[ -z "$(sed -n '9,$p' <<<"$output" | tr -d ' \n')" ]
}
