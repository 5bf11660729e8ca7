#!/usr/bin/env bats
# Every section 5 page's EXAMPLES stream is a real fixture: feed it to the
# stage that reads it. Also: every page lints clean and every program's
# --help names its page's synopsis options.
load helpers

# Print the example stream of man/$1 (mdoc escapes undone).
example() {
	sed -n '/^\.Sh EXAMPLES/,/^\.Sh SEE ALSO/p' "$HYPR_SRC/man/$1" |
		sed -n '/^{"hypr":/,/^{"end":true/p' |
		sed -e 's/\\e/\\/g' -e 's/\\&//g'
}

setup() {
	fresh_root
	layout=$(busybox_layout)
}

@test "man: every page is mandoc -Tlint clean" {
	requires mandoc
	run mandoc -Tlint -Wwarning "$HYPR_SRC"/man/*
	echo "$output"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "man: hypr-plan(5) example is what hypr-parse writes and hypr-fetch reads" {
	example hypr-plan.5 > "$BATS_TEST_TMPDIR/plan"
	[ "$(head -c 8 "$BATS_TEST_TMPDIR/plan")" = '{"hypr":' ]
	hypr-fetch load --name busybox:1.36 "$layout"
	run --separate-stderr -0 hypr-fetch --pull=never < "$BATS_TEST_TMPDIR/plan"
	[ "$(jq -sr 'map(select(.type == "stage"))[0].image.ref' <<<"$output")" = "docker.io/library/busybox:1.36" ]
	[ "$(jq -sr '.[-1].end' <<<"$output")" = true ]
}

# bats test_tags=vm
@test "man: hypr-resolved(5) example is read by hypr-exec" {
	example hypr-resolved.5 > "$BATS_TEST_TMPDIR/resolved"
	hypr-fetch load --name localhost:5000/busybox:latest "$layout"
	mkdir "$BATS_TEST_TMPDIR/ctx"
	run --separate-stderr -0 hypr-exec -C "$BATS_TEST_TMPDIR/ctx" < "$BATS_TEST_TMPDIR/resolved"
	[ "$(jq -sc '[.[] | select(.type == "step") | .op]' <<<"$output")" = '["RUN","COPY"]' ]
}

@test "man: hypr-steps(5) example is read by hypr-layer" {
	example hypr-steps.5 > "$BATS_TEST_TMPDIR/steps"
	hypr-fetch load --name busybox:latest "$layout"
	run --separate-stderr -0 hypr-layer < "$BATS_TEST_TMPDIR/steps"
	[ "$(jq -sr '.[1].type' <<<"$output")" = image ]
	[ "$(jq -sr '.[1].config.Env | length' <<<"$output")" -ge 1 ]
}

@test "man: hypr-image(5) example is read by hypr-squash and hypr-store" {
	example hypr-image.5 > "$BATS_TEST_TMPDIR/image"
	hypr-fetch load --name busybox:latest "$layout"
	hypr-squash < "$BATS_TEST_TMPDIR/image" > "$BATS_TEST_TMPDIR/squashed"
	[ "$(jq -sr '.[1].squashfs.compression' "$BATS_TEST_TMPDIR/squashed")" = zstd ]
	run --separate-stderr -0 hypr-store -t man:example < "$BATS_TEST_TMPDIR/squashed"
	[[ $output == sha256:* ]]
}

@test "man: hypr-manifest(5) example has every field hypr-store writes" {
	sed -n '/^\.Sh EXAMPLES/,/^\.Sh SEE ALSO/p' "$HYPR_SRC/man/hypr-manifest.5" |
		sed -n '/^\.Bd -literal/,/^\.Ed/p' | sed '1d;$d' | sed -e 's/\\e/\\/g' -e 's/\\&//g' \
		> "$BATS_TEST_TMPDIR/example.json"
	jq -e . "$BATS_TEST_TMPDIR/example.json" > /dev/null
	hypr-fetch load --name busybox:latest "$layout"
	example hypr-image.5 | hypr-squash | hypr-store -t man:example > "$BATS_TEST_TMPDIR/id"
	id=$(cat "$BATS_TEST_TMPDIR/id")
	real="$HYPR_ROOT/images/${id#sha256:}.json"
	[ -f "$real" ]
	missing=$(jq -n --slurpfile a "$BATS_TEST_TMPDIR/example.json" --slurpfile b "$real" \
		'($b[0] | keys) - ($a[0] | keys)')
	[ "$missing" = "[]" ]
}

@test "man: hypr-events(5) example is what hypr build shows for it" {
	sed -n '/^\.Sh EXAMPLES/,/^\.Sh COMPATIBILITY/p' "$HYPR_SRC/man/hypr-events.5" |
		sed -e 's/\\e/\\/g' -e 's/\\&//g' > "$BATS_TEST_TMPDIR/page"
	sed -n '/^{"hypr":"events"/,/^\.Ed/p' "$BATS_TEST_TMPDIR/page" | sed '$d' \
		> "$BATS_TEST_TMPDIR/events"
	sed -n '/^#1 \[/,/^\.Ed/p' "$BATS_TEST_TMPDIR/page" | sed '$d' > "$BATS_TEST_TMPDIR/want"
	[ "$(wc -l < "$BATS_TEST_TMPDIR/events")" -ge 5 ]
	[ "$(wc -l < "$BATS_TEST_TMPDIR/want")" -ge 5 ]
	# every stage a fake (tests/driver.bats); hypr-exec sends the example
	F="$BATS_TEST_TMPDIR/fakes"
	mkdir -p "$F" "$BATS_TEST_TMPDIR/ctx"
	for s in parse fetch layer squash store; do
		ln -s "$FIX/driver/fake-stage" "$F/hypr-$s"
		export "HYPR_${s^^}=$F/hypr-$s"
	done
	cat > "$F/hypr-exec" <<-EOF2
	#!/bin/sh
	cat > /dev/null
	cat '$BATS_TEST_TMPDIR/events' >&3
	printf '%s\n' '{"hypr":"steps","version":2}' '{"end":true,"records":0}'
	EOF2
	chmod +x "$F/hypr-exec"
	export HYPR_EXEC="$F/hypr-exec"
	printf 'FROM busybox\n' > "$BATS_TEST_TMPDIR/ctx/Dockerfile"
	NO_COLOR=1 run -0 script -qec "hypr build --progress=plain -t x '$BATS_TEST_TMPDIR/ctx'" /dev/null
	# an output line's time is the machine's
	tr -d '\r' <<<"$output" | sed -n '/^#1 \[/,/^hypr-exec: warning/p' |
		sed -E 's/^(#[0-9]+) [0-9]+\.[0-9]{3} /\1 0.000 /' > "$BATS_TEST_TMPDIR/got"
	diff -u "$BATS_TEST_TMPDIR/want" "$BATS_TEST_TMPDIR/got"
}
