#!/usr/bin/env bats
# hypr login as docker's: asks on a terminal for what -u and
# --password-stdin do not give (the password not echoed); refuses in one
# line with no terminal. The terminal is script(1)'s pty.
load helpers
load lib/registry

setup_file() {
	export REGS="$BATS_FILE_TMPDIR/regs"
	mkdir -p "$REGS"
	APORT=$(reg_start "$REGS/auth" alice s3cret)
	export AREG="127.0.0.1:$APORT"
}

teardown_file() {
	reg_stop "$REGS/auth"
}

setup() {
	fresh_root
	export DOCKER_CONFIG="$BATS_TEST_TMPDIR/docker"
	unset REGISTRY_AUTH_FILE XDG_RUNTIME_DIR
}

# on_tty INPUT... -- CMD...: CMD on a pty, each INPUT typed a moment apart
on_tty() {
	local in=()
	while [ "$1" != -- ]; do
		in+=("$1")
		shift
	done
	shift
	{
		for l in "${in[@]}"; do
			sleep 0.5
			printf '%s\n' "$l"
		done
		sleep 2
	} | script -qec "$(printf '%q ' "$@")" /dev/null
}

@test "login: on a terminal, asks for the user and the password, which is not echoed" {
	run -0 on_tty alice s3cret -- hypr login "$AREG"
	[[ $output == *"Username for $AREG: alice"* ]]
	[[ $output == *"Password: "* ]]
	[[ $output == *"Login Succeeded"* ]]
	[[ $output != *s3cret* ]]
	[ "$(stat -c %a "$DOCKER_CONFIG/config.json")" = 600 ]
	grep -q "$AREG" "$DOCKER_CONFIG/config.json"
	run -0 hypr logout "$AREG"
}

@test "login: with -u, only the password is asked for; a wrong one is refused" {
	run -0 on_tty s3cret -- hypr login -u alice "$AREG"
	[[ $output != *Username* ]]
	[[ $output == *"Login Succeeded"* ]]
	[[ $output != *s3cret* ]]
	rm -rf "$DOCKER_CONFIG"
	run -4 on_tty nope -- hypr login -u alice "$AREG"
	[[ $output != *"Login Succeeded"* ]]
	[ ! -e "$DOCKER_CONFIG/config.json" ]
}

@test "login: no terminal and no --password-stdin: refused in one line, nothing read" {
	run --separate-stderr -2 hypr login "$AREG" <<<"alice"
	[ -z "$output" ]
	[ "$stderr" = "hypr-fetch: login: Cannot perform an interactive login from a non TTY device (give -u USER and --password-stdin)" ]
	run --separate-stderr -2 hypr login -u alice "$AREG" < /dev/null
	[[ $stderr == *"non TTY device"* ]]
	run --separate-stderr -2 hypr login --password-stdin "$AREG" <<<"s3cret"
	[ "$stderr" = "hypr-fetch: login: --password-stdin needs -u USER" ]
	run --separate-stderr -2 hypr login -p s3cret "$AREG" < /dev/null
	[ "${stderr##*$'\n'}" = "hypr-fetch: login: --password needs -u USER" ]
	[ ! -e "$DOCKER_CONFIG/config.json" ]
}
