#!/usr/bin/env bats
# hypr build - as docker build -: stdin is a tar of the context (plain or
# compressed), or a Dockerfile with no context.
load helpers

setup_file() {
	export HYPR_ROOT="$BATS_FILE_TMPDIR/root"
	mkdir -p "$HYPR_ROOT"
	hypr load --name busybox:latest "$(busybox_layout)" >/dev/null
}

setup() {
	export HYPR_PROGRESS=plain
	CTX="$BATS_TEST_TMPDIR/ctx"
	mkdir -p "$CTX/sub"
	echo hello > "$CTX/a"
	echo deep > "$CTX/sub/b"
	printf 'FROM busybox\nCOPY a /a\nCOPY sub /sub\nRUN cat /a /sub/b > /both\n' > "$CTX/Dockerfile"
}

# bats test_tags=vm
@test "build -: a tar context on stdin, COPY from it; gzip'd and -f inside the tar too" {
	tar -C "$CTX" -cf "$BATS_TEST_TMPDIR/ctx.tar" .
	run -0 hypr build -q -t stdin:tar - < "$BATS_TEST_TMPDIR/ctx.tar"
	run -0 hypr run --rm stdin:tar cat /both
	[ "$output" = $'hello\ndeep' ]
	mv "$CTX/Dockerfile" "$CTX/Other.Dockerfile"
	tar -C "$CTX" -czf "$BATS_TEST_TMPDIR/ctx.tgz" .
	run -0 hypr build -q -t stdin:tgz -f Other.Dockerfile - < "$BATS_TEST_TMPDIR/ctx.tgz"
	run -0 hypr run --rm stdin:tgz cat /sub/b
	[ "$output" = deep ]
	[ -z "$(ls "$HYPR_ROOT/tmp")" ]
}

# bats test_tags=vm
@test "build -: a Dockerfile on stdin builds with no context; a COPY fails in one line naming it" {
	run -0 hypr build -q -t stdin:df - <<<$'FROM busybox\nRUN echo hi > /x'
	run -0 hypr run --rm stdin:df cat /x
	[ "$output" = hi ]
	run --separate-stderr -3 hypr build -q - < "$CTX/Dockerfile"
	[[ $stderr == *"hypr-exec: Dockerfile:2: COPY a /a: a: file not found in build context"* ]]
	[ -z "$(ls "$HYPR_ROOT/tmp")" ]
}

@test "build -: what cannot go with it is a usage error in one line" {
	run --separate-stderr -2 hypr build -f - - <<<"FROM busybox"
	[ "$stderr" = "hypr: build: -f - and CONTEXT - both want stdin" ]
	run --separate-stderr -2 hypr build -n - <<<"FROM busybox"
	[ "$stderr" = "hypr: build: CONTEXT - (stdin) cannot go with -n" ]
	run --separate-stderr -2 hypr build -f x.Dockerfile - <<<"FROM busybox"
	[[ $stderr == "hypr: build: -f x.Dockerfile: the Dockerfile is on stdin"* ]]
	run -2 script -qec "$HYPR_BIN/hypr build -" /dev/null < /dev/null
	[[ $output == *"hypr: build: CONTEXT -: stdin is a terminal"* ]]
	rm "$CTX/Dockerfile"
	tar -C "$CTX" -cf "$BATS_TEST_TMPDIR/nodf.tar" .
	run --separate-stderr -2 hypr build - < "$BATS_TEST_TMPDIR/nodf.tar"
	[ "$stderr" = "hypr: build: the context on stdin has no Dockerfile (name another with -f)" ]
	[ -z "$(ls "$HYPR_ROOT/tmp")" ]
}

@test "build -: a hostile context tar is bad input in one line; nothing escapes" {
	python3 -c 'import tarfile, io, sys
t = tarfile.open(sys.argv[1], "w")
i = tarfile.TarInfo("Dockerfile"); d = b"FROM busybox\n"; i.size = len(d); t.addfile(i, io.BytesIO(d))
i = tarfile.TarInfo("../../escaped"); i.size = 2
t.addfile(i, io.BytesIO(b"x\n")); t.close()' "$BATS_TEST_TMPDIR/evil.tar"
	run --separate-stderr -3 hypr build - < "$BATS_TEST_TMPDIR/evil.tar"
	[ "$stderr" = "hypr: build: the context on stdin: unsafe member name '../../escaped'" ]
	python3 -c 'import tarfile, io, sys
t = tarfile.open(sys.argv[1], "w")
i = tarfile.TarInfo("l"); i.type = tarfile.SYMTYPE; i.linkname = "/tmp"; t.addfile(i)
i = tarfile.TarInfo("l/escaped"); i.size = 2
t.addfile(i, io.BytesIO(b"x\n")); t.close()' "$BATS_TEST_TMPDIR/evil2.tar"
	run --separate-stderr -3 hypr build - < "$BATS_TEST_TMPDIR/evil2.tar"
	[[ $stderr == "hypr: build: the context on stdin: l/escaped: "* ]]
	[ ! -e /tmp/escaped ]
	[ -z "$(ls "$HYPR_ROOT/tmp")" ]
	head -c 2000 "$BATS_TEST_TMPDIR/evil.tar" > "$BATS_TEST_TMPDIR/cut.tar"
	run --separate-stderr -3 hypr build - < "$BATS_TEST_TMPDIR/cut.tar"
	[ "${#stderr_lines[@]}" = 1 ]
}
