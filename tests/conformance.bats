#!/usr/bin/env bats
# hypr-parse against BuildKit's own parser test files (see
# $CONFORMANCE/buildkit-parser/README.md): every case's instruction list must
# equal BuildKit's `result`, the negatives must fail, line ranges must match.
load helpers

BK="$CONFORMANCE/buildkit-parser"
TOSEXP="$FIX/parse/plan2sexp.jq"

setup() {
	if [ ! -d "$BK/testfiles" ]; then
		# In CI shared/ is always beside the clone: missing data is a failure there.
		[ "${CI:-}" != true ] || fail "no conformance data at $BK"
		skip "no conformance data at $BK"
	fi
}

# Cases without a FROM are parser-only tests upstream: use --parse-only there.
sexp() {
	local df=$1 po=
	grep -qiE '^[[:space:]]*from[[:space:]]' "$df" || po=--parse-only
	# flags/ uses flags no instruction takes, health/ HEALTHCHECKs with no
	# command: parser-only cases too
	case $df in */flags/*Dockerfile | */health/*Dockerfile) po=--parse-only ;; esac
	"$HYPR_PARSE" $po -f "$df" > "$BATS_TEST_TMPDIR/plan" 2>/dev/null
	jq -rs -f "$TOSEXP" "$BATS_TEST_TMPDIR/plan"
}

@test "conformance: all 33 BuildKit parser cases give BuildKit's result" {
	local n=0 bad=()
	for d in "$BK"/testfiles/*/; do
		n=$((n + 1))
		sexp "$d/Dockerfile" > "$BATS_TEST_TMPDIR/got" || { bad+=("$d (exit)"); continue; }
		diff -u "$d/result" "$BATS_TEST_TMPDIR/got" >&2 || bad+=("$d")
	done
	[ "$n" -eq 33 ]
	[ "${#bad[@]}" -eq 0 ] || { printf 'failed: %s\n' "${bad[@]}" >&2; false; }
}

@test "conformance: cases with a FROM pass in full (staged) mode too" {
	local n=0
	for d in "$BK"/testfiles/*/; do
		grep -qiE '^[[:space:]]*from[[:space:]]' "$d/Dockerfile" || continue
		n=$((n + 1))
		# flags/ uses flags no instruction takes, health/ a HEALTHCHECK
		# with no argument: BuildKit's instruction layer (and
		# hypr-parse's full mode) rejects them
		if [ "$(basename "$d")" = flags ]; then
			run -3 --separate-stderr "$HYPR_PARSE" -f "$d/Dockerfile"
			[[ $stderr == *"/Dockerfile:"[0-9]*": unknown flag: --"* ]]
			continue
		fi
		if [ "$(basename "$d")" = health ]; then
			run -3 --separate-stderr "$HYPR_PARSE" -f "$d/Dockerfile"
			[[ $stderr == *"/Dockerfile:4: HEALTHCHECK requires at least one argument" ]]
			continue
		fi
		run -0 --separate-stderr "$HYPR_PARSE" -f "$d/Dockerfile"
		echo "$output" | jq -e -s '.[0].hypr == "plan" and .[-1].end == true' >/dev/null
	done
	[ "$n" -ge 25 ]
}

@test "conformance: negative cases fail with a one-line error and exit 3" {
	for d in "$BK"/testfiles-negative/*/; do
		for po in "" --parse-only; do
			run -3 --separate-stderr "$HYPR_PARSE" $po -f "$d/Dockerfile"
			[ -z "$output" ]
			[ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ]
			[[ $stderr == "hypr-parse: $d/Dockerfile:"[0-9]*": "* ]]
		done
	done
}

@test "conformance: negative cases give the expected reasons" {
	local neg="$BK/testfiles-negative"
	run -3 --separate-stderr "$HYPR_PARSE" -f "$neg/empty_dockerfile/Dockerfile"
	[[ $stderr == *"file with no instructions"* ]]
	run -3 --separate-stderr "$HYPR_PARSE" -f "$neg/only_comments/Dockerfile"
	[[ $stderr == *"file with no instructions"* ]]
	run -3 --separate-stderr "$HYPR_PARSE" -f "$neg/env_no_value/Dockerfile"
	[[ $stderr == *"/Dockerfile:3: ENV must have two arguments" ]]
	run -3 --separate-stderr "$HYPR_PARSE" -f "$neg/shykes-nested-json/Dockerfile"
	[[ $stderr == *"/Dockerfile:1: when using JSON array syntax, arrays must be comprised of strings only" ]]
}

@test "conformance: testfile-line line ranges" {
	run -0 --separate-stderr "$HYPR_PARSE" -f "$BK/testfile-line/Dockerfile"
	got=$(echo "$output" | jq -c 'select(.type == "stage" or .type == "instr") | .line' | tr '\n' ' ')
	[ "$got" = "[5,5] [11,12] [17,31] " ]
	# the RUN has blank lines inside its continuation: warned, in the plan too
	[[ $stderr == *"testfile-line/Dockerfile:17: empty continuation line found in: RUN apt-get update"* ]]
	echo "$output" | jq -e -s 'map(select(.type == "warning"))[0].line == 17' >/dev/null
}
