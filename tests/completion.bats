#!/usr/bin/env bats
# bash and zsh completion (tools/completion/): commands, sub-commands, a
# command's flags and their values, image names, Dockerfile stages.
load helpers
load fixtures/layer/lib

setup() {
	fresh_root
	cd "$BATS_TEST_TMPDIR"
	mkdir -p ctx
	printf 'FROM busybox AS base\nRUN true\nFROM base as Dev\nfrom --platform=linux/amd64 busybox AS final\n' \
		> ctx/Dockerfile
	cp ctx/Dockerfile multi.Dockerfile
	# shellcheck source=../tools/completion/hypr.bash
	source "$HYPR_SRC/tools/completion/hypr.bash"
}

# comp WORD...: what bash completes for the last word (or word $CW), sorted,
# one a line
comp() {
	COMP_WORDS=("$@")
	COMP_CWORD=${CW:-$(($# - 1))}
	COMPREPLY=()
	_hypr_bash hypr "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
	printf '%s\n' "${COMPREPLY[@]}" | sort
}

@test "completion: bash: commands, sub-commands, flags and their values" {
	[ "$(complete -p hypr)" = "complete -o default -F _hypr_bash hypr" ]
	run -0 comp hypr ''
	for c in build run images image system login load compose help; do
		grep -qx "$c" <<<"$output"
	done
	[ "$(comp hypr im)" = $'image\nimages' ]
	[ "$(comp hypr image p)" = $'prune\npull\npush' ]
	[ "$(comp hypr system '')" = $'df\nprune' ]
	[ "$(comp hypr volume '')" = $'create\ninspect\nls\nprune\nrm' ]
	[ "$(comp hypr attach --d)" = --detach-keys ]
	[ "$(comp hypr st)" = $'start\nstop' ]
	[ "$(comp hypr compose -f x.yml u)" = up ]
	[ "$(comp hypr build --ta)" = $'--tag\n--target' ]
	[ "$(comp hypr load -)" = $'--help\n--input\n--name\n--quiet\n-i\n-q' ]
	[ "$(comp hypr build --progress p)" = plain ]
	[ "$(comp hypr help ima)" = $'image\nimages' ]
	# -f is --force for rm: the next word is a container, not a file
	[ -z "$(comp hypr rmi -f '')" ]
}

@test "completion: bash: image names from the store, for the commands that take one" {
	build_image app:1 >/dev/null
	[ "$(comp hypr run a)" = app:1 ]
	[ "$(comp hypr rmi -f a)" = app:1 ]
	[ "$(comp hypr image tag app:1 a)" = app:1 ]
	[ "$(comp hypr run --name x -e K=V '')" = app:1 ]
	# past the image, run's words are the command's
	[ -z "$(comp hypr run app:1 a)" ]
}

@test "completion: bash: build --target offers the Dockerfile's stages (-f, CONTEXT, or .)" {
	[ "$(comp hypr build -f multi.Dockerfile --target '')" = $'Dev\nbase\nfinal' ]
	[ "$(CW=3 comp hypr build --target '' ctx)" = $'Dev\nbase\nfinal' ]
	[ "$(comp hypr build -t x:1 ctx --target f)" = final ]
	cd ctx
	[ "$(comp hypr build --target b)" = base ]
	cd ..
	[ -z "$(comp hypr build --target '' nosuch)" ]
}

@test "completion: zsh: the file parses, and the real completion widget completes" {
	requires zsh
	[ -f "$HYPR_BIN/../completion/_hypr" ]
	zsh -n "$HYPR_BIN/../completion/_hypr"
	build_image app:1 >/dev/null
	z() {
		zsh -f "$HYPR_SRC/tests/lib/zcomplete.zsh" "$HYPR_BIN/../completion" "$1"
	}
	run -0 z 'hypr image pr'
	[ "$output" = "hypr image prune" ]
	run -0 z 'hypr build --targ'
	[ "$output" = "hypr build --target" ]
	run -0 z 'hypr build -f multi.Dockerfile --target fi'
	[ "$output" = "hypr build -f multi.Dockerfile --target final" ]
	run -0 z 'hypr run ap'
	[ "$output" = "hypr run app:1" ]
}

@test "completion: make install puts them where bash-completion and zsh look (DESTDIR, PREFIX)" {
	run -0 make -C "$HYPR_SRC" -s --no-print-directory B="${HYPR_BIN%/bin}" \
		DESTDIR="$BATS_TEST_TMPDIR/dest" PREFIX=/usr install-completion
	cmp "$HYPR_SRC/tools/completion/hypr.bash" "$BATS_TEST_TMPDIR/dest/usr/share/bash-completion/completions/hypr"
	cmp "$HYPR_BIN/../completion/_hypr" "$BATS_TEST_TMPDIR/dest/usr/share/zsh/vendor-completions/_hypr"
	run -0 make -C "$HYPR_SRC" -s --no-print-directory B="${HYPR_BIN%/bin}" \
		DESTDIR="$BATS_TEST_TMPDIR/dest2" install-completion
	[ -f "$BATS_TEST_TMPDIR/dest2/usr/local/share/bash-completion/completions/hypr" ]
	[ -f "$BATS_TEST_TMPDIR/dest2/usr/local/share/zsh/site-functions/_hypr" ]
}
