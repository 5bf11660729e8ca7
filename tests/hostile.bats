#!/usr/bin/env bats
# Hostile and unlucky users, through the real `hypr build` and the stages
# alone: bad input gets one clear line naming what and where and its exit
# code (2 usage, 3 bad input, 4 system, 1 step failed), and loses nothing:
# the store, the cache and earlier images stay intact and verifiable.
# VM tests (tagged vm) are few; the rest needs no VM.
load helpers
load lib/registry

# The IDs of the store's base images: hypr images lists them, as docker
# lists pulled images; these tests are about the images they build.
base_ids() {
	find "$HYPR_ROOT/refs" -path '*/_tags/*' -type f 2>/dev/null |
		while read -r f; do jq -r '.name + ":" + .tag' "$f"; done |
		xargs -r hypr image inspect -f '{{.Id}}' 2>/dev/null | sort -u
}

# built_images [FORMAT]: hypr images less the base images' rows; full IDs
# (-q --no-trunc) unless FORMAT says otherwise.
built_images() {
	local fmt=${1:-'{{.ID}}'} ids id rest
	ids=$(base_ids)
	hypr images --no-trunc --format "{{.ID}}	$fmt" | while IFS='	' read -r id rest; do
		grep -qxF "$id" <<<"$ids" || printf '%s\n' "$rest"
	done
}

setup() {
	fresh_root
	export HYPR_PROGRESS=plain
	# these tests check which stage names the error: hypr(1) --debug
	export HYPR_DEBUG=1
	# the build VM's private files live under $HYPR_ROOT/tmp; other
	# scratch files of the stages under TMPDIR: both must end up empty
	export TMPDIR="$BATS_TEST_TMPDIR/tmpdir"
	mkdir -p "$TMPDIR"
	hypr load --name busybox:latest "$(busybox_layout)" >/dev/null
	cd "$BATS_TEST_TMPDIR" || return 1
}

teardown() {
	if [ -n "${ORPHAN_PG:-}" ]; then
		kill -KILL -- "-$ORPHAN_PG" 2>/dev/null || true
	fi
	if [ -n "${BG_PID:-}" ]; then
		kill -KILL -- "-$BG_PID" 2>/dev/null || true
		wait "$BG_PID" 2>/dev/null || true
	fi
	if [ -n "${SMALL:-}" ] && mountpoint -q "$SMALL"; then
		umount "$SMALL"
	fi
	if [ -n "${FAKE_DIR:-}" ]; then
		reg_stop "$FAKE_DIR"
	fi
	if [ -n "${HTTPD_PID:-}" ]; then
		kill "$HTTPD_PID" 2>/dev/null || true
		wait "$HTTPD_PID" 2>/dev/null || true
	fi
}

# httpd_start: tests/lib/httpd.py on a free loopback port: $HTTPD_PORT,
# its request log httpd.log
httpd_start() {
	local _
	: > httpd.log
	python3 "$HYPR_SRC/tests/lib/httpd.py" httpd.port httpd.log 2> httpd.err &
	HTTPD_PID=$!
	for _ in $(seq 100); do
		[ -f httpd.port ] && break
		sleep 0.05
	done
	HTTPD_PORT=$(cat httpd.port)
}

# ctx DIR LINE...: a build context whose Dockerfile has these lines
ctx() {
	local d=$1
	shift
	mkdir -p "$d"
	printf '%s\n' "$@" > "$d/Dockerfile"
}

# store_ok: every stored image inspects, its squashfs matches its manifest
# digest; prints the number of images
store_ok() {
	local j id n=0 want got
	for j in "$HYPR_ROOT"/images/*.json; do
		[ -e "$j" ] || continue
		id=${j##*/}
		id=${id%.json}
		[ "$id" != index ] || continue
		hypr image inspect "$id" >/dev/null
		want=$(jq -r '.squashfs.digest' "$j")
		got=sha256:$(sha256sum "$HYPR_ROOT/images/$id.squashfs" | cut -d' ' -f1)
		[ "$want" = "$got" ] || { echo "squashfs of $id: $got, manifest says $want" >&2; return 1; }
		n=$((n + 1))
	done
	echo "$n"
}

# no_vm: no build VM of this store is running
no_vm() {
	! pgrep -f "qemu-system.*$HYPR_ROOT/" >/dev/null
}

# nothing_left: no build VM of this store alive, no temp file visible
nothing_left() {
	local i
	for i in $(seq 50); do
		pgrep -f "qemu-system.*$HYPR_ROOT/" >/dev/null || break
		sleep 0.1
	done
	run pgrep -af "qemu-system.*$HYPR_ROOT/"
	[ -z "$output" ] || { echo "VM left running: $output" >&2; return 1; }
	[ -z "$(ls -A "$HYPR_ROOT/tmp")" ] || { ls -lA "$HYPR_ROOT/tmp" >&2; return 1; }
	[ -z "$(ls -A "$TMPDIR")" ] || { ls -lA "$TMPDIR" >&2; return 1; }
	[ -z "$(find "$HYPR_ROOT" -name '*.tmp*' -o -name '.*' -type f)" ]
}

# one_error: $stderr has exactly one line starting with PREFIX (the stage's
# own error line), and the driver's ERROR line
one_error() {
	local n
	n=$(printf '%s\n' "$stderr" | grep -c "^$1")
	[ "$n" -eq 1 ] || { echo "want one '$1' line, got $n: $stderr" >&2; return 1; }
}

# untime: plain lines without the times of output lines ("#2 0.412 x" -> "#2 x")
untime() {
	sed -E 's/^(#[0-9]+) [0-9]+\.[0-9]{3} /\1 /'
}

# bg_build ARGS...: `hypr build` in its own process group, stderr to bg.err
bg_build() {
	setsid hypr build "$@" > bg.out 2> bg.err &
	BG_PID=$!
}

# wait_for CMD...: poll (0.05 s) until CMD succeeds, at most 60 s
wait_for() {
	local i
	for i in $(seq 1200); do
		"$@" && return 0
		sleep 0.05
	done
	echo "timed out waiting for: $*" >&2
	return 1
}

# finish_bg: wait for the background build; its exit status in $BG_RC
finish_bg() {
	BG_RC=0
	wait "$BG_PID" || BG_RC=$?
	BG_PID=
}

@test "hostile: garbage, empty and binary input to every stage is bad input, one line" {
	printf 'hello world\n' > garbage
	: > empty
	printf '\0\0{\n' > nul
	head -c 4096 "$(command -v hypr)" > binary
	for f in garbage empty nul binary; do
		for s in "$HYPR_FETCH" "$HYPR_EXEC --context ." "$HYPR_LAYER" "$HYPR_SQUASH" "$HYPR_STORE -t g:1"; do
			run -3 --separate-stderr $s < "$f"
			[ -z "$output" ]
			[ "${#stderr_lines[@]}" -eq 1 ]
			[[ $stderr == "${s%% *}: "* ]]
		done
		run -3 --separate-stderr "$HYPR_PARSE" -f "$f"
		[ "${#stderr_lines[@]}" -eq 1 ]
		[[ $stderr == "hypr-parse: $f:"[0-9]*": "* ]]
	done
	[ "$(store_ok)" -eq 0 ]
	[ -z "$(ls "$HYPR_ROOT/cache" | grep -v squashfs)" ]
}

@test "hostile: a stream of the wrong kind names what it got; exit 3" {
	ctx c 'FROM busybox:latest' 'ENV A=1' 'CMD ["sh"]'
	run -0 hypr build -q --keep k -t w:1 c
	# each stage reads one kind; feed it every other kind
	local -A want=([fetch]=plan [exec]=resolved [layer]=steps [squash]=image [store]=image)
	for st in fetch exec layer squash store; do
		for f in plan resolved steps image; do
			[ "$f" != "${want[$st]}" ] || continue
			case $st in
			exec) cmd="$HYPR_EXEC --context c" ;;
			store) cmd="$HYPR_STORE -t w:2" ;;
			*) v=HYPR_${st^^}; cmd=${!v} ;;
			esac
			run -3 --separate-stderr $cmd < "k/$f.jsonl"
			[ "$stderr" = "hypr-$st: ${want[$st]}:1: not $( [ "${want[$st]}" = image ] && echo an || echo a) ${want[$st]} stream (header says $f)" ]
		done
	done
	# the image stream without its squashfs is refused by hypr-store
	run -3 --separate-stderr "$HYPR_STORE" -t w:2 < k/image.jsonl
	[[ $stderr == *"no squashfs"* ]]
	run -0 built_images '{{.Repository}}:{{.Tag}}'
	[ "$output" = "w:1" ]
	[ "$(store_ok)" -eq 1 ]
}

@test "hostile: a stream truncated between stages is bad input; nothing is stored" {
	ctx c 'FROM busybox:latest' 'ENV A=1'
	run -0 hypr build -q --keep k -t t:1 c
	id=$output
	run -3 --separate-stderr bash -c "$HYPR_PARSE -f c/Dockerfile | head -c 200 | $HYPR_FETCH"
	[[ $stderr == "hypr-fetch: plan:2: bad JSON: "* ]]
	for f in plan:fetch resolved:exec steps:layer image:squash squashed:store; do
		s=${f#*:}
		f=${f%:*}
		size=$(wc -c < "k/$f.jsonl")
		case $s in
		exec) cmd="$HYPR_EXEC --context c" ;;
		store) cmd="$HYPR_STORE -t t:2" ;;
		*) v=HYPR_${s^^}; cmd=${!v} ;;
		esac
		# cut inside a record, inside the end record, and the end record gone
		last=$(tail -n 1 "k/$f.jsonl" | wc -c)
		for n in 150 $((size - 5)) $((size - last)); do
			head -c "$n" "k/$f.jsonl" > cut
			run -3 --separate-stderr $cmd < cut
			[ "${#stderr_lines[@]}" -eq 1 ]
			[[ $stderr == "hypr-$s: "*"bad JSON"* || $stderr == "hypr-$s: "*"truncated stream: no end record"* ]]
		done
	done
	run -0 built_images
	[ "$output" = "$id" ]
	[ "$(store_ok)" -eq 1 ]
}

@test "hostile: a layer missing from the store is named with its step" {
	ctx c 'FROM busybox:latest' 'COPY f /f'
	echo hi > c/f
	run -0 hypr build -q --keep k -t l:1 c
	d=$(jq -r 'select(.type == "step") | .layer.digest' k/steps.jsonl)
	n=$(jq -r 'select(.type == "step") | .n' k/steps.jsonl)
	run -3 --separate-stderr env HYPR_ROOT="$BATS_TEST_TMPDIR/empty" "$HYPR_LAYER" < k/steps.jsonl
	[[ $stderr == "hypr-layer: steps:"*": layer $d of step $n is not in the store" ]]
	[ "${#stderr_lines[@]}" -eq 1 ]
}

@test "hostile: a stored base layer damaged after the load: the flatten's unpacker names it, exit 3; the store keeps the rest" {
	hypr tag busybox:latest cbase:1
	blob=$(find "$HYPR_ROOT/blobs/sha256" -type f -size +100k | head -1)
	[ -n "$blob" ]
	ctx c 'FROM cbase:1' 'LABEL a=b'
	# bytes changed inside: it still inflates, to other content
	chmod u+w "$blob"
	printf 'garbage!' | dd of="$blob" bs=1 seek=500000 conv=notrunc 2>/dev/null
	# (busybox-static differs between machines: where the bytes land, the
	# inflate fails or gives other content)
	run -3 --separate-stderr hypr build -q -t damaged:1 c
	[[ $stderr == *"ERROR: hypr-squash failed (exit 3): hypr-squash: layer sha256:${blob##*/} decompresses to sha256:"*", not its diff_id sha256:"* ]] ||
		[[ $stderr == *"ERROR: hypr-squash failed (exit 3): hypr-squash: layer sha256:${blob##*/}"*"decompress"* ]]
	# cut short: the size the manifest gives no longer matches
	truncate -s 300000 "$blob"
	run -3 --separate-stderr hypr build -q -t damaged:1 c
	[[ $stderr == *"layer sha256:${blob##*/}: the manifest gives "*" bytes, the stored blob has 300000"* ]]
	run -0 built_images
	[ -z "$output" ]
	[ -z "$(ls "$HYPR_ROOT/tmp" 2>/dev/null)" ]
	[ "$(hypr images -q cbase:1 | wc -l)" = 1 ]
}

@test "hostile: hypr load of a lying OCI layout is bad input; nothing enters the store" {
	src=$(busybox_layout)
	m=$(jq -r '.manifests[0].digest' "$src/index.json")
	layer=$(jq -r '.layers[0].digest | ltrimstr("sha256:")' "$src/blobs/sha256/${m#sha256:}")
	export HYPR_ROOT="$BATS_TEST_TMPDIR/root2"
	try() {
		rm -rf x && cp -r "$src" x
		"$@"
		run -3 --separate-stderr hypr load --name evil:1 x
		[ "${#stderr_lines[@]}" -eq 1 ]
		[[ $stderr == "hypr-fetch: load: "* ]]
		[ -z "$(ls "$HYPR_ROOT/blobs/sha256" 2>/dev/null | grep -v -e "^${m#sha256:}$" -e "^$(jq -r '.config.digest | ltrimstr("sha256:")' "$src/blobs/sha256/${m#sha256:}")$")" ]
	}
	try eval 'echo "{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"sha256:../../../../etc/passwd\",\"size\":10}]}" > x/index.json'
	[[ $stderr == *"bad digest"* ]]
	try eval 'echo garbage > x/index.json'
	try eval 'echo "{\"schemaVersion\":2,\"manifests\":[]}" > x/index.json'
	try rm "x/blobs/sha256/$layer"
	try eval "printf X | dd of=x/blobs/sha256/$layer bs=1 seek=100 conv=notrunc 2>/dev/null"
	[[ $stderr == *"digest mismatch: expected sha256:$layer, got sha256:"* ]]
	try ln -sf /etc/passwd "x/blobs/sha256/$layer"
	[[ $stderr == *"blob sha256:$layer: the manifest gives "*" bytes, the file has "* ]]
	run -0 built_images
	[ -z "$output" ]
}

@test "hostile: Dockerfile errors are one line naming Dockerfile:LINE; exit 3" {
	mkdir -p c && touch c/a
	check() {
		printf "$1" > c/Dockerfile
		run -3 --separate-stderr hypr build -q -t e:1 c
		one_error "hypr-parse: c/Dockerfile:$2: "
		[[ $stderr == *"hypr-parse: c/Dockerfile:$2: $3"* ]]
		[[ $stderr == *"ERROR: hypr-parse failed (exit 3)"* ]]
	}
	check 'FROM busybox:latest\nFOO bar\n' 2 'unknown instruction: FOO'
	check 'FROM busybox:latest\nCOPY --evil=1 a /a\n' 2 'unknown flag: --evil'
	check 'FROM busybox:latest\nRUN --evil true\n' 2 'unknown flag: --evil'
	check 'FROM --platfrom=x busybox:latest\n' 1 'unknown flag: --platfrom (did you mean platform?)'
	check 'FROM busybox:latest\nCOPY --from a /a\n' 2 'missing a value on flag: --from'
	check 'FROM busybox:latest\nCOPY --link=maybe a /a\n' 2 'expecting boolean value for flag --link, not: maybe'
	check 'FROM busybox:latest\nENV =x\n' 2 'ENV names can not be blank'
	check 'FROM busybox:latest\nLABEL =x\n' 2 'LABEL names can not be blank'
	check 'ARG =x\nFROM busybox:latest\n' 1 'ARG names can not be blank'
	check 'FROM busybox:latest\nRUN echo a\0b\n' 2 'NUL byte in instruction'
	check 'FROM busybox:latest\nLABEL a=\xff\xfe\n' 2 'invalid UTF-8 in instruction'
	check 'FROM busybox:latest\nRUN <<EOF\necho hi\n' 2 'unterminated heredoc EOF'
	check '# just a comment\n' 1 'file with no instructions'
	# a file of 20 MB is refused whole, a 3 MB instruction is fine, a
	# physical line over 64 KiB is refused as BuildKit refuses it
	{ echo 'FROM busybox:latest'; printf 'LABEL a=%s\n' "$(head -c 20000000 /dev/zero | tr '\0' a)"; } > c/Dockerfile
	run -3 --separate-stderr hypr build -q -t e:1 c
	one_error "hypr-parse: c/Dockerfile: larger than 16777216 bytes"
	{ echo 'FROM busybox:latest'; printf 'LABEL a=%s\n' "$(head -c 70000 /dev/zero | tr '\0' a)"; } > c/Dockerfile
	run -3 --separate-stderr hypr build -q -t e:1 c
	one_error "hypr-parse: c/Dockerfile:2: dockerfile line greater than max allowed size of 65535"
	# an endless Dockerfile on stdin is cut at the same limit
	run -3 --separate-stderr hypr build -q -t e:1 -f - c < /dev/zero
	one_error "hypr-parse: Dockerfile: larger than 16777216 bytes"
	# a single-platform base of another platform: refused, nothing stored
	printf 'FROM --platform=linux/arm64 busybox:latest\nENV A=1\n' > c/Dockerfile
	run -3 --separate-stderr hypr build -q -t p:1 c
	one_error "hypr-fetch: line 1: docker.io/library/busybox:latest: base image platform linux/amd64 does not match the requested linux/arm64 (cross-platform builds are not supported)"
	run -3 hypr image inspect p:1
	# a platform climbing out is refused by hypr-fetch
	printf 'FROM --platform=../../x busybox:latest\n' > c/Dockerfile
	run -3 --separate-stderr hypr build -q -t e:1 c
	one_error "hypr-fetch: line 1: invalid platform '../../x'"
	{ echo 'FROM busybox:latest'; printf 'ENV A='; for _ in $(seq 50); do head -c 60000 /dev/zero | tr '\0' a; echo '\'; done; echo; } > c/Dockerfile
	run -0 --separate-stderr hypr build -q -t big:1 c
	run -0 hypr image inspect big:1
	[ "$(jq -r '.[0].Config.Env[] | select(startswith("A=")) | length' <<<"$output")" -eq 3000002 ]
	[ "$(store_ok)" -eq 1 ]
}

@test "hostile: a missing or directory Dockerfile or context is a usage error (2)" {
	run -2 --separate-stderr hypr build -t x:1 no-such-dir
	[ "$stderr" = "hypr: build: no-such-dir: not a directory" ]
	mkdir -p empty dir/Dockerfile
	run -2 --separate-stderr hypr build -t x:1 empty
	[ "$stderr" = "hypr: build: empty/Dockerfile: cannot read the Dockerfile (No such file or directory)" ]
	run -2 --separate-stderr hypr build -t x:1 dir
	one_error "hypr-parse: dir/Dockerfile: is a directory, not a Dockerfile"
	run -2 --separate-stderr "$HYPR_PARSE" -f dir/Dockerfile
	[ "$stderr" = "hypr-parse: dir/Dockerfile: is a directory, not a Dockerfile" ]
	run -2 --separate-stderr "$HYPR_PARSE" -f no/such/Dockerfile
	[ "$stderr" = "hypr-parse: no/such/Dockerfile: cannot read the Dockerfile (No such file or directory)" ]
	# a context that is a file
	touch afile
	run -2 --separate-stderr hypr build -t x:1 afile
	[ "$stderr" = "hypr: build: afile: not a directory" ]
	[ "$(store_ok)" -eq 0 ]
}

@test "hostile: an invalid -t is a usage error and stores nothing; rmi of an unknown image is 3" {
	ctx c 'FROM busybox:latest' 'ENV A=1'
	for t in 'UPPER:bad!' 'a::b' ':' 'x@sha256:zz' "$(printf 'a%.0s' {1..300})" 'a/b/../c' ''; do
		run -2 --separate-stderr hypr build -q -t "$t" c
		# checked before any stage runs
		one_error "hypr: build: invalid tag '"
	done
	[ "$(store_ok)" -eq 0 ]
	run -0 built_images
	[ -z "$output" ]
	run -3 --separate-stderr hypr rmi nosuch:tag
	[ "$stderr" = "hypr-store: No such image: nosuch:tag" ]
	run -3 --separate-stderr hypr rmi sha256:0000
	[ "$stderr" = "hypr-store: No such image: sha256:0000" ]
}

@test "hostile: an ESC or a newline in a name is escaped in the one error line" {
	ctx c 'FROM busybox:latest' 'ENV A=1'
	run -2 --separate-stderr hypr build -q -t $'a\033]0;x\a\nb' c
	[ "$stderr" = "hypr: build: invalid tag 'a\x1b]0;x\x07\x0ab': invalid reference 'a\x1b]0;x\x07\x0ab': invalid repository name" ]
	run -3 --separate-stderr hypr rmi $'bad\033[2Jname'
	[ "$stderr" = "hypr-store: No such image: bad\x1b[2Jname" ]
	run -3 --separate-stderr hypr image inspect $'two\nlines'
	[ "$stderr" = "hypr-store: No such image: two\x0alines" ]
	[ "$output" = "[]" ]
	[ "$(store_ok)" -eq 0 ]
}

@test "hostile: COPY never reads outside the context; symlinks inside stay links" {
	echo secret > "$BATS_TEST_TMPDIR/secret.txt"
	mkdir -p c/sub
	ln -s "$BATS_TEST_TMPDIR/secret.txt" c/sub/link
	ln -s ../../secret.txt c/rel
	ln -s /etc c/sub/etcdir
	for src in ../secret.txt "$BATS_TEST_TMPDIR/secret.txt" sub/link rel sub/etcdir/passwd \
	    sub/../../secret.txt '../*' sub/link/; do
		printf 'FROM busybox:latest\nCOPY %s /x\n' "$src" > c/Dockerfile
		run -3 --separate-stderr hypr build -q -t esc:1 c
		one_error "hypr-exec: c/Dockerfile:2: COPY "
		[[ $stderr == *": file not found in build context or excluded by .dockerignore"* ]]
	done
	printf 'FROM busybox:latest\nCOPY sub /x\n' > c/Dockerfile
	run -0 hypr build -q -t esc:1 c
	run -0 unsquashfs -lls "$HYPR_ROOT/images/${output#sha256:}.squashfs"
	[[ $output == *"squashfs-root/x/link -> $BATS_TEST_TMPDIR/secret.txt"* ]]
	[[ $output == *"squashfs-root/x/etcdir -> /etc"* ]]
	[ "$(store_ok)" -eq 1 ]
}

@test "hostile: ADD of an evil tar writes nothing outside the image" {
	mkdir -p c
	python3 - c <<-'EOF'
	import io, sys, tarfile
	def mk(name, entries):
	    with tarfile.open(sys.argv[1] + '/' + name, 'w') as t:
	        for kind, path, arg in entries:
	            ti = tarfile.TarInfo(path)
	            if kind == 'f':
	                ti.size = len(arg); t.addfile(ti, io.BytesIO(arg.encode()))
	            else:
	                ti.type = {'l': tarfile.SYMTYPE, 'h': tarfile.LNKTYPE}[kind]
	                ti.linkname = arg; t.addfile(ti)
	mk('dotdot.tar', [('f', 'ok.txt', 'ok'), ('f', '../../hypr-evil-dotdot', 'evil')])
	mk('hardout.tar', [('h', 'hl', '../../etc/passwd')])
	mk('abs.tar', [('f', '/etc/hypr-evil-abs', 'evil')])
	mk('symfile.tar', [('l', 'lnk', '/etc'), ('f', 'lnk/hypr-evil-via-link', 'evil')])
	mk('symrel.tar', [('l', 'lnk', '../../../../../../../../tmp'), ('f', 'lnk/hypr-evil-via-rel', 'evil')])
	EOF
	printf 'FROM busybox:latest\nADD dotdot.tar /dst/\n' > c/Dockerfile
	run -3 --separate-stderr hypr build -q -t add:1 c
	one_error "hypr-exec: c/Dockerfile:2: ADD dotdot.tar /dst/: dotdot.tar: member '../../hypr-evil-dotdot' points outside the destination"
	printf 'FROM busybox:latest\nADD hardout.tar /dst/\n' > c/Dockerfile
	run -3 --separate-stderr hypr build -q -t add:1 c
	one_error "hypr-exec: c/Dockerfile:2: ADD hardout.tar /dst/: hardout.tar: member '../../etc/passwd' points outside the destination"
	# absolute members land under the destination
	printf 'FROM busybox:latest\nADD abs.tar /dst/\n' > c/Dockerfile
	run -0 hypr build -q -t add:1 c
	run -0 unsquashfs -cat "$HYPR_ROOT/images/${output#sha256:}.squashfs" dst/etc/hypr-evil-abs
	[ "$output" = evil ]
	# a symlink then a file through it: the link is followed only within the
	# destination, and there it leads nowhere the archive made: refused
	for t in symfile symrel; do
		printf 'FROM busybox:latest\nADD %s.tar /dst/\n' "$t" > c/Dockerfile
		run -3 --separate-stderr hypr build -q -t "add:$t" c
		one_error "hypr-exec: c/Dockerfile:2: ADD $t.tar /dst/: "
	done
	for f in /etc/hypr-evil-abs /etc/hypr-evil-via-link /tmp/hypr-evil-via-rel \
	    "$BATS_TEST_TMPDIR/hypr-evil-dotdot" /hypr-evil-dotdot "$HYPR_ROOT/hypr-evil-dotdot"; do
		[ ! -e "$f" ] || { echo "written on the host: $f" >&2; false; }
	done
	[ -z "$(find /etc /tmp "$BATS_TEST_TMPDIR" -maxdepth 4 -name 'hypr-evil-*' 2>/dev/null)" ]
	nothing_left
	[ "$(store_ok)" -eq 1 ]
}

@test "hostile: a corrupt manifest or a missing squashfs: reported, others intact, repairable" {
	ctx a 'FROM busybox:latest' 'ENV A=1'
	ctx b 'FROM busybox:latest' 'ENV B=1'
	ctx c 'FROM busybox:latest' 'ENV C=1'
	ida=$(hypr build -q -t a:1 a)
	idb=$(hypr build -q -t b:1 b)
	idc=$(hypr build -q -t c:1 c)
	echo '{"hypr":"manif' > "$HYPR_ROOT/images/${ida#sha256:}.json"
	rm "$HYPR_ROOT/images/${idb#sha256:}.squashfs"
	run -0 --separate-stderr built_images '{{.Repository}}'
	[ "$output" = c ]
	[[ $stderr == *"${ida:7:12}: corrupt manifest"* ]]
	[[ $stderr == *"${idb:7:12}: squashfs missing"* ]]
	run -3 --separate-stderr hypr image inspect a:1
	[ "$stderr" = "hypr-store: image $ida: corrupt manifest" ]
	run -0 hypr image inspect c:1
	# rmi repairs one, a rebuild the other
	run -0 hypr rmi -f "${ida:7:12}"
	run -0 hypr build -q -t b:1 b
	run -0 --separate-stderr built_images '{{.Repository}}'
	[ -z "$stderr" ]
	[ "$(store_ok)" -eq 2 ]
	run -0 hypr build -q -t a:1 a
	[ "$(store_ok)" -eq 3 ]
}

@test "hostile: rebuilding over a corrupt manifest leaves no temp file in images/" {
	ctx c 'FROM busybox:latest' 'ENV A=1'
	id=$(hypr build -q -t a:1 c)
	echo '{"hypr":"manif' > "$HYPR_ROOT/images/${id#sha256:}.json"
	run -0 hypr build -q -t a:1 c
	[ "$output" = "$id" ]
	run ls "$HYPR_ROOT/images"
	[[ $output != *.tmp* ]]
	[ "$(store_ok)" -eq 1 ]
	nothing_left
}

@test "hostile: a full disk is a system error (4) naming the file; earlier images intact" {
	requires root
	SMALL="$BATS_TEST_TMPDIR/small"
	mkdir -p "$SMALL"
	mount -t tmpfs -o size=3m tmpfs "$SMALL" || skip "cannot mount a tmpfs"
	export HYPR_ROOT="$SMALL/root"
	hypr load --name busybox:latest "$(busybox_layout)" >/dev/null
	ctx ok 'FROM busybox:latest' 'ENV A=1'
	id=$(hypr build -q -t ok:1 ok)
	# the layer does not fit: hypr-exec fails writing it
	ctx big 'FROM busybox:latest' 'COPY blob /blob'
	head -c 1M /dev/urandom > big/blob
	run -4 --separate-stderr hypr build -q -t big:1 big
	# (nor does the base layer's unpacked copy, 2 MB: its listing reads the
	# gzip'd blob as before, from its first byte)
	[ -z "$(find "$HYPR_ROOT/blobs" -size +1500k)" ]
	one_error "hypr-exec: big/Dockerfile:2: COPY blob /blob: writing $HYPR_ROOT/tmp/"
	[[ $stderr == *": No space left on device"* ]]
	[[ $stderr == *"ERROR: hypr-exec failed (exit 4)"* ]]
	# the layer fits, its squashfs does not: hypr-squash fails
	head -c 300K /dev/urandom > big/blob
	run -4 --separate-stderr hypr build -q -t big:1 big
	one_error "hypr-squash: "
	[[ $stderr == *": No space left on device"* ]]
	[[ $stderr == *"ERROR: hypr-squash failed (exit 4)"* ]]
	run -0 built_images
	[ "$output" = "$id" ]
	[ "$(store_ok)" -eq 1 ]
	nothing_left
	# the full store still serves a cached build
	run -0 hypr build -q -t ok:2 ok
	[ "$output" = "$id" ]
	[ "$(store_ok)" -eq 1 ]
}

# small_root SIZE: $HYPR_ROOT on a tmpfs of SIZE (removed by teardown),
# with the busybox base loaded
small_root() {
	requires root
	SMALL="$BATS_TEST_TMPDIR/small"
	mkdir -p "$SMALL"
	mount -t tmpfs -o "size=$1" tmpfs "$SMALL" || skip "cannot mount a tmpfs"
	export HYPR_ROOT="$SMALL/root"
	hypr load --name busybox:latest "$(busybox_layout)" >/dev/null
}

# bats test_tags=vm
@test "hostile: a RUN that fills its build disk fails at once with one line; no hang" {
	small_root 400m
	ctx ok 'FROM busybox:latest' 'RUN echo ok > /ok'
	id=$(hypr build -q -t ok:1 ok)
	ctx c 'FROM busybox:latest' 'RUN dd if=/dev/zero of=/big bs=1M count=600'
	run -1 --separate-stderr timeout 300 hypr build -t fill:1 c
	one_error "hypr-exec: c/Dockerfile:2: RUN dd if=/dev/zero of=/big bs=1M count=600: exit code 1: the build disk is full ("
	[[ $stderr == *"GiB; raise it with --disk or HYPR_BUILD_DISK)"* ]]
	# an explicit limit above the free space fails before any VM boots
	run -4 --separate-stderr hypr build --disk 1t -t fill:1 c
	one_error "hypr-exec: c/Dockerfile:2: RUN dd if=/dev/zero of=/big bs=1M count=600: starting the build VM: build disk limit 1024.0 GiB: only "
	run -2 --separate-stderr hypr build --disk lots c
	[ "$stderr" = "hypr: build: --disk lots: not a size (e.g. 20g)" ]
	run -0 built_images
	[ "$output" = "$id" ]
	[ "$(store_ok)" -eq 1 ]
	nothing_left
}

# bats test_tags=vm
@test "hostile: a build disk limit holds in VMs restored from a snapshot, whose scratch fs spans the disk" {
	# $HYPR_ROOT on disk: the first VM saves the snapshot every base
	# shares, the second one of its base (seen again), the third is
	# restored from that; each is restored from what was saved (a restore
	# that fails warns and boots cold); the limit is what the guest sets
	# aside at GO
	export HYPR_SNAPSHOT_DIR="$BATS_TEST_TMPDIR/snaps"
	ctx c 'FROM busybox:latest' \
		'RUN df -k / | awk "NR == 2 { print \"avail\", \$4 }"; dd if=/dev/zero of=/big bs=1M count=200'
	for round in 1 2 3; do
		run -1 --separate-stderr hypr build --progress=plain --disk 128m -t fill:1 c
		[ "$(grep -c '^hypr-exec: c/Dockerfile:2: RUN df .*: exit code 1: the build disk is full (0.1 GiB; ' <<<"$stderr")" -eq 1 ]
		avail=$(sed -n 's/^#1 [0-9.]* avail \([0-9]*\)$/\1/p' <<<"$stderr")
		[ "$avail" -le 131072 ] && [ "$avail" -gt 120000 ]
		[[ $stderr == *"No space left on device"* ]]
		[[ $stderr != *"warning"* ]]
		[ "$(ls -d "$HYPR_SNAPSHOT_DIR"/snap-*/scratch.ext4 | wc -l)" -eq $((round > 1 ? 2 : 1)) ]
	done
	[ -f "$HYPR_SNAPSHOT_DIR"/snap-base-*/scratch.ext4 ]
	# without a limit, the whole disk is free (64 GiB, or 90% of the host's)
	ctx d 'FROM busybox:latest' 'RUN df -k / | awk "NR == 2 { print \"avail\", \$4 }"'
	run -0 --separate-stderr hypr build --progress=plain -t d:1 d
	avail=$(sed -n 's/^#1 [0-9.]* avail \([0-9]*\)$/\1/p' <<<"$stderr")
	[ "$avail" -gt 1000000 ]
	nothing_left
}

# bats test_tags=vm
@test "hostile: a host disk that fills during a RUN: the guest gets EIO, the error says why" {
	# the build disk had room when the VM started (90% of the free space);
	# then something else fills the host disk while the RUN writes
	small_root 300m
	ctx c 'FROM busybox:latest' \
		'RUN dd if=/dev/zero of=/a bs=1M count=20 conv=fsync && echo fi""lled && sleep 3 && dd if=/dev/zero of=/b bs=1M count=100 conv=fsync'
	bg_build --progress=plain -t fill:1 c
	wait_for grep -q '^#1 [0-9.]* filled' bg.err
	avail=$(df --output=avail -B1M "$SMALL" | tail -n 1)
	dd if=/dev/zero of="$SMALL/filler" bs=1M count=$((avail - 10)) 2>/dev/null || true
	finish_bg
	rm -f "$SMALL/filler"
	[ "$BG_RC" -eq 4 ]
	stderr=$(cat bg.err)
	one_error "hypr-exec: c/Dockerfile:2: RUN dd if=/dev/zero of=/a bs=1M count=20 "
	# the overlay is volatile: the guest may see EIO only at the diff
	[[ $stderr == *": the host disk is full (writing the build's "*" disk in $HYPR_ROOT/tmp/"* ]]
	[ "$(store_ok)" -eq 0 ]
	nothing_left
}

# bats test_tags=vm
@test "hostile: a guest that QEMU pauses is named at once, not after a timeout" {
	# QEMU's default drive policy pauses the guest on ENOSPC (hypr asks
	# for werror=report); put the pausing policy back with a wrapper
	small_root 300m
	cat > qemu-pausing <<'EOF'
#!/bin/bash
exec qemu-system-x86_64 "${@//werror=report/werror=stop}"
EOF
	chmod +x qemu-pausing
	ctx c 'FROM busybox:latest' \
		'RUN dd if=/dev/zero of=/a bs=1M count=20 conv=fsync && echo fi""lled && sleep 3 && dd if=/dev/zero of=/b bs=1M count=100'
	HYPR_QEMU=$PWD/qemu-pausing HYPR_STEP_TIMEOUT=600 bg_build --progress=plain -t p:1 c
	wait_for grep -q '^#1 [0-9.]* filled' bg.err
	avail=$(df --output=avail -B1M "$SMALL" | tail -n 1)
	dd if=/dev/zero of="$SMALL/filler" bs=1M count=$((avail - 10)) 2>/dev/null || true
	SECONDS=0
	finish_bg
	rm -f "$SMALL/filler"
	[ "$BG_RC" -eq 4 ]
	[ "$SECONDS" -lt 120 ]
	stderr=$(cat bg.err)
	one_error "hypr-exec: c/Dockerfile:2: RUN dd if=/dev/zero of=/a bs=1M count=20 "
	[[ $stderr == *"the guest was paused by QEMU (io-error): the host disk is full (writing the build's "* ]]
	nothing_left
}

# bats test_tags=vm
@test "hostile: sparse files keep their holes and sizes: base layer, RUN, layers, squashfs" {
	local t=$BATS_TEST_TMPDIR
	mkdir -p "$t/s"
	truncate -s 8G "$t/s/big"
	printf x >> "$t/s/big"
	truncate -s 1G "$t/s/hole"
	tar --sparse --posix -C "$t/s" -cf "$t/sparse.tar" big hole
	[ "$(stat -c %s "$t/sparse.tar")" -lt 20000 ]
	"$HYPR_SRC/tests/lib/mkbase.sh" "$t/oci" amd64 "$t/sparse.tar" >&2
	hypr load --name sparse:1 "$t/oci" >/dev/null
	ctx c 'FROM sparse:1' 'RUN stat -c "%s %n" /big /hole && tail -c 1 /big && echo && truncate -s 4G /made && echo y >> /made'
	run -0 --separate-stderr hypr build --progress=plain -t s:1 c
	[[ $stderr == *"#1 "[0-9]*" 8589934593 /big"* ]]
	[[ $stderr == *"#1 "[0-9]*" 1073741824 /hole"* ]]
	[[ $stderr == *'#1 '[0-9]*$' x\n'* ]]
	# nothing on the host grew by gigabytes: not the base, the layer, the image
	[ "$(du -sm "$HYPR_ROOT" | cut -f1)" -lt 100 ]
	run -0 hypr image inspect s:1
	sq=$HYPR_ROOT/images/$(jq -r '.[0].Id | ltrimstr("sha256:")' <<<"$output").squashfs
	run -0 unsquashfs -lls "$sq" big hole made
	assert_line --regexp ' 8589934593 .* squashfs-root/big$'
	assert_line --regexp ' 1073741824 .* squashfs-root/hole$'
	assert_line --regexp ' 4294967298 .* squashfs-root/made$'
	[ "$(unsquashfs -cat "$sq" made | tail -c 2)" = y ]
	nothing_left
}

# bats test_tags=vm
@test "hostile: whiteout names made by RUN or COPY are refused, never delete image files" {
	ctx c 'FROM busybox:latest' 'RUN touch /etc/.wh.passwd'
	run -1 --separate-stderr hypr build -t w:1 c
	one_error "hypr-exec: c/Dockerfile:2: RUN touch /etc/.wh.passwd: build VM: diff: /etc/.wh.passwd: a name starting with .wh. is reserved for layer whiteouts"
	ctx d 'FROM busybox:latest' 'RUN mkdir -p /root && touch /root/.wh..wh..opq'
	run -1 --separate-stderr hypr build -t w:1 d
	[[ $stderr == *"/root/.wh..wh..opq: a name starting with .wh. is reserved for layer whiteouts"* ]]
	ctx e 'FROM busybox:latest' 'COPY . /x/'
	touch e/.wh.home
	run -3 --separate-stderr hypr build -t w:1 e
	one_error "hypr-exec: e/Dockerfile:2: COPY . /x/: /x/.wh.home: a name starting with .wh. is reserved for layer whiteouts"
	[ "$(store_ok)" -eq 0 ]
	nothing_left
}

@test "hostile: Ctrl-C during the squash: exit 130, nothing half-written, a rebuild works" {
	ctx e 'FROM busybox:latest' 'ENV E=1'
	hypr build -q -t e:1 e > /dev/null
	ctx c 'FROM busybox:latest' 'COPY blob /blob'
	head -c 150M /dev/urandom > c/blob
	before=$(ls "$HYPR_ROOT/images" | sort)
	sq_before=$(ls "$HYPR_ROOT/cache/squashfs" | sort)
	bg_build -t c:1 c
	pg=$BG_PID
	wait_for pgrep -g "$pg" -x tar2sqfs
	kill -INT -- "-$pg"
	finish_bg
	[ "$BG_RC" -eq 130 ]
	[ "$(tail -n 1 bg.err)" = "hypr: build interrupted" ]
	wait_for bash -c "! pgrep -g $pg >/dev/null"
	[ "$(ls "$HYPR_ROOT/images" | sort)" = "$before" ]
	[ "$(ls "$HYPR_ROOT/cache/squashfs" | sort)" = "$sq_before" ]
	nothing_left
	[ "$(store_ok)" -eq 1 ]
	run -0 hypr build -q -t c:1 c
	[ "$(store_ok)" -eq 2 ]
	nothing_left
}

@test "hostile: two builds of one tag at once both succeed; the tag names one of them" {
	ctx a 'FROM busybox:latest' 'COPY f /f'
	ctx b 'FROM busybox:latest' 'COPY f /f'
	head -c 20M /dev/urandom > a/f
	head -c 20M /dev/urandom > b/f
	hypr build -q -t same:1 a > oa 2> ea &
	pa=$!
	hypr build -q -t same:1 b > ob 2> eb &
	pb=$!
	wait "$pa"
	wait "$pb"
	run -0 hypr images -q --no-trunc same:1
	[ "$output" = "$(cat oa)" ] || [ "$output" = "$(cat ob)" ]
	[ "$(store_ok)" -eq 2 ]
	run -0 built_images '{{.Repository}}:{{.Tag}}'
	[ "$(sort <<<"$output" | tr '\n' ' ')" = "<none>:<none> same:1 " ]
	nothing_left
}

@test "hostile: two cold builds of the same content at once both succeed" {
	ctx c 'FROM busybox:latest' 'COPY f /f'
	head -c 20M /dev/urandom > c/f
	for i in 1 2; do
		hypr build -q -t "same:$i" c > "o$i" 2> "e$i" &
		eval "p$i=\$!"
	done
	wait "$p1"
	wait "$p2"
	run -0 built_images '{{.Repository}}:{{.Tag}}'
	[ "$(sort <<<"$output" | tr '\n' ' ')" = "same:1 same:2 " ]
	n=$(store_ok)
	[ "$n" -eq 1 ] || [ "$n" -eq 2 ]
	nothing_left
}

@test "hostile: variables nested 100000 deep are bad input, not a crash" {
	deep=$(head -c 100000 /dev/zero | sed 's/\x0/${A:-/g')x$(head -c 100000 /dev/zero | tr '\0' '}')
	# in lines BuildKit can read (under 64 KiB), joined by continuations
	{ printf 'ARG A=%s\n' "$deep" | fold -w 60000 | sed '$!s/$/\\/'; echo 'FROM busybox:latest'; } > Dockerfile
	run -3 --separate-stderr "$HYPR_PARSE" -f Dockerfile
	[[ $stderr == 'hypr-parse: Dockerfile:1: failed to process "${A:-${A:-'*'...": syntax error: nested deeper than 1000 levels' ]]
	[ "${#stderr}" -lt 400 ]
	# ENV is expanded by hypr-exec: the same there
	mkdir -p c
	{ echo 'FROM busybox:latest'; printf 'ENV A=%s\n' "$deep" | fold -w 60000 | sed '$!s/$/\\/'; } > c/Dockerfile
	run -3 --separate-stderr hypr build -q -t deep:1 c
	one_error "hypr-exec: c/Dockerfile:2: ENV A="
	[[ $stderr == *"ERROR: hypr-exec failed (exit 3)"* ]]
}

# bats test_tags=vm
@test "hostile: Ctrl-C during a RUN: exit 130, no VM left, nothing visible; a rebuild works" {
	ctx ok 'FROM busybox:latest' 'ENV A=1'
	hypr build -q -t ok:1 ok > /dev/null
	ctx c 'FROM busybox:latest' 'RUN echo sta""rted; sleep 600'
	bg_build -t slow:1 c
	wait_for grep -q '^#1 [0-9.]* started' bg.err
	pgrep -f "qemu-system.*$HYPR_ROOT/" > /dev/null
	kill -INT -- "-$BG_PID"
	finish_bg
	[ "$BG_RC" -eq 130 ]
	[ "$(tail -n 1 bg.err)" = "hypr: build interrupted" ]
	nothing_left
	[ "$(ls "$HYPR_ROOT/logs")" = last.log ]
	run -0 built_images '{{.Repository}}'
	[ "$output" = ok ]
	[ "$(store_ok)" -eq 1 ]
	ctx c 'FROM busybox:latest' 'RUN echo fine > /fine'
	run -0 hypr build -q -t slow:1 c
	[ "$(store_ok)" -eq 2 ]
	nothing_left
}

# bats test_tags=vm
@test "hostile: RUN output of 300k lines is whole, a 3 MB line clipped; 137 and signals fail the step" {
	ctx c 'FROM busybox:latest' \
	    'RUN seq 1 300000; echo LAST-LINE' \
	    'RUN head -c 3000000 /dev/zero | tr "\\0" x; echo; echo END2 >&2; exit 137'
	run -1 --separate-stderr hypr build -t out:1 c
	[ "$(grep -cE '^#1 [0-9]+\.[0-9]{3} [0-9]+$' <<<"$stderr")" -eq 300000 ]
	grep -qxE '#1 [0-9]+\.[0-9]{3} 300000' <<<"$stderr"
	grep -qxE '#1 [0-9]+\.[0-9]{3} LAST-LINE' <<<"$stderr"
	grep -qxE '#2 [0-9]+\.[0-9]{3} END2' <<<"$stderr"
	# the long line: its first 64 KiB, then its whole length
	want="#2 $(head -c 65536 /dev/zero | tr '\0' x) [line clipped: 3000000 bytes]"
	# (output lines carry the step's time: hypr(1))
	[ "$(untime <<<"$stderr" | grep '^#2 x')" = "$want" ]
	[ "$(untime < "$HYPR_ROOT/logs/last.log" | grep '^#2 x')" = "$want" ]
	one_error "hypr-exec: c/Dockerfile:3: RUN head -c 3000000"
	[[ $stderr == *"hypr-exec: c/Dockerfile:3: RUN "*": exit code 137"* ]]
	[[ $stderr == *"ERROR: hypr-exec failed (exit 1)"* ]]
	# the full log has every short line
	[ "$(grep -cE '^#1 [0-9]+\.[0-9]{3} [0-9]+$' "$HYPR_ROOT/logs/last.log")" -eq 300000 ]
	# killed by a signal: the shell's 128+n, a step failure
	for sig in KILL SEGV; do
		ctx c 'FROM busybox:latest' "RUN kill -$sig \$\$"
		run -1 --separate-stderr hypr build -t sig:1 c
		code=$((128 + $(kill -l "$sig")))
		one_error "hypr-exec: c/Dockerfile:2: RUN kill -$sig \$\$: exit code $code"
	done
	nothing_left
	[ "$(store_ok)" -eq 0 ]
}

# bats test_tags=vm
@test "hostile: 50 MB of RUN output with no newline: clipped; hypr-exec stays small; NULs kept in the log" {
	# hypr-exec's peak RSS (VmHWM), sampled while it runs
	cat > exec-hwm <<-EOF
	#!/bin/bash
	"$(command -v hypr-exec)" "\$@" <&0 &
	p=\$!
	while kill -0 \$p 2>/dev/null; do
		grep VmHWM /proc/\$p/status >> "$PWD/exec.hwm" 2>/dev/null
		sleep 0.05
	done
	wait \$p
	EOF
	chmod +x exec-hwm
	ctx c 'FROM busybox:latest' 'RUN head -c 50000000 /dev/zero | tr "\\0" a; printf "\\n\\0after a NUL\\n"'
	HYPR_EXEC=$PWD/exec-hwm run --separate-stderr -0 hypr build --progress=plain -t big:1 c
	[ "$(grep -c '^#1 [0-9.]* aaaa' <<<"$stderr")" -eq 1 ]
	[[ $stderr == *"a [line clipped: 50000000 bytes]"* ]]
	# a NUL is kept in the log (bash drops it from $stderr)
	LC_ALL=C grep -qaP '^#1 \d+\.\d{3} \x00after a NUL$' "$HYPR_ROOT/logs/last.log"
	[ "$(stat -c %s "$HYPR_ROOT/logs/last.log")" -lt 100000 ]
	hwm=$(awk '{ if ($2 > m) m = $2 } END { print m }' exec.hwm)
	[ "$hwm" -lt 30000 ] || { echo "hypr-exec peak RSS $hwm kB" >&2; false; }
	[ "$(store_ok)" -eq 1 ]
	nothing_left
}

# bats test_tags=vm
@test "hostile: SIGKILL of the driver mid-RUN; a rebuild works and the store is intact" {
	ctx ok 'FROM busybox:latest' 'ENV A=1'
	hypr build -q -t ok:1 ok > /dev/null
	ctx c 'FROM busybox:latest' 'RUN echo sta""rted; sleep 4; echo done > /d'
	bg_build -t k:1 c
	wait_for grep -q '^#1 [0-9.]* started' bg.err
	ORPHAN_PG=$BG_PID
	kill -KILL "$BG_PID"
	finish_bg
	[ "$BG_RC" -eq 137 ]
	# the same build again, at once
	run -0 hypr build -q -t k:1 c
	run -0 unsquashfs -cat "$HYPR_ROOT/images/${output#sha256:}.squashfs" d
	[ "$output" = done ]
	[ "$(store_ok)" -eq 2 ]
	# the orphaned stage ends with its step at the latest
	wait_for no_vm
	wait_for bash -c '[ -z "$(ls -A "$HYPR_ROOT/tmp")" ]'
}

# bats test_tags=vm
@test "hostile: SIGKILL of hypr-exec mid-RUN: system df shows its leftovers by the space they use; prune takes them" {
	ctx ok 'FROM busybox:latest' 'ENV A=1'
	hypr build -q -t ok:1 ok > /dev/null
	ctx c 'FROM busybox:latest' 'RUN head -c 3000000 /dev/urandom > /f; sync; echo sta""rted; sleep 60'
	bg_build -t k:1 c
	wait_for grep -q '^#1 [0-9.]* started' bg.err
	kill -KILL "$(pgrep -g "$BG_PID" -x hypr-exec)"
	finish_bg
	[ "$BG_RC" -eq 137 ]
	wait_for no_vm
	# the VM's disks: 3 x 64 GiB apparent, a few MB used
	left=$(echo "$HYPR_ROOT"/tmp/hypr-exec.*)
	[ -f "$(echo "$left"/vm.*/hypr-vm-*/scratch.ext4)" ]
	used=$(du -s -B1 "$left" | cut -f1)
	[ "$used" -lt 50000000 ]
	h=$(awk -v x="$used" 'BEGIN { split("B kB MB GB", u, " "); i = 1
		while (x >= 1000 && i < 4) { x /= 1000; i++ }; printf "%.3g%s\n", x, u[i] }')
	run -0 hypr system df
	[[ $output == *$'\n'"Temporary Files   1         0         $h"*"$h (100%)"* ]]
	HYPR_PRUNE_GRACE=0 run -0 hypr system prune -f
	[[ $output == *"Deleted temporary files:"$'\n'"${left##*/}"$'\n\n'* ]]
	[ "${lines[-1]}" = "Total reclaimed space: $h" ]
	[ -z "$(ls -A "$HYPR_ROOT/tmp")" ]
	[ "$(store_ok)" -eq 1 ]
	ctx c 'FROM busybox:latest' 'RUN echo fine > /fine'
	run -0 hypr build -q -t k:1 c
	[ "$(store_ok)" -eq 2 ]
	nothing_left
}

# bats test_tags=vm
@test "hostile: system prune with no grace, over and over, beside a running build breaks nothing" {
	ctx c 'FROM busybox:latest' \
	    'RUN head -c 2000000 /dev/urandom > /a; echo sta""rted; sleep 2' \
	    'COPY f /f' \
	    'RUN head -c 2000000 /dev/urandom > /b; sleep 1'
	head -c 1000000 /dev/urandom > c/f
	bg_build --iidfile iid -t race:1 c
	wait_for grep -q '^#1 [0-9.]* started' bg.err
	n=0
	while kill -0 "$BG_PID" 2>/dev/null; do
		HYPR_PRUNE_GRACE=0 hypr system prune -f >> prunes.out
		n=$((n + 1))
	done
	finish_bg
	[ "$BG_RC" -eq 0 ] || { cat bg.err >&2; false; }
	[ "$n" -gt 3 ]
	# nothing of the build's was taken: its temp files, VM disks and new blobs
	sort -u prunes.out >&2
	[ "$(sort -u prunes.out)" = "Total reclaimed space: 0B" ]
	id=$(cat iid)
	for f in a b f; do
		unsquashfs -lls "$HYPR_ROOT/images/${id#sha256:}.squashfs" "$f" | grep -q "squashfs-root/$f$"
	done
	[ "$(store_ok)" -eq 1 ]
	nothing_left
}

# bats test_tags=vm
@test "hostile: a comma and a space in HYPR_ROOT reach QEMU intact" {
	export HYPR_ROOT="$BATS_TEST_TMPDIR/r oot,x=y"
	mkdir -p "$HYPR_ROOT"
	hypr load --name busybox:latest "$(busybox_layout)" >/dev/null
	ctx c 'FROM busybox:latest' 'RUN echo hi > /hi'
	run -0 hypr build -q -t comma:1 c
	run -0 unsquashfs -cat "$HYPR_ROOT/images/${output#sha256:}.squashfs" hi
	[ "$output" = hi ]
	nothing_left
}

@test "hostile: a damaged squashfs is rebuilt by a verifying build (HYPR_SQUASH_VERIFY=1)" {
	ctx c 'FROM busybox:latest' 'ENV A=1'
	id=$(hypr build -q -t a:1 c)
	f="$HYPR_ROOT/images/${id#sha256:}.squashfs"
	printf 'XXXX' | dd of="$f" bs=1 seek=5000 conv=notrunc 2>/dev/null
	# inspect notices, one line
	run -3 --separate-stderr hypr image inspect a:1
	[[ $stderr == "hypr-store: image $id: squashfs damaged ("* ]]
	[ "${#stderr_lines[@]}" -eq 1 ]
	HYPR_SQUASH_VERIFY=1 run -0 hypr build -q -t a:1 c
	f="$HYPR_ROOT/images/${output#sha256:}.squashfs"
	want=$(jq -r '.squashfs.digest' "${f%.squashfs}.json")
	[ "sha256:$(sha256sum "$f" | cut -d' ' -f1)" = "$want" ]
	[ "$(store_ok)" -eq 1 ]
}

# bats test_tags=vm
@test "hostile: RUN creating a file whose name is not UTF-8" {
	mkdir -p c
	printf 'FROM busybox:latest\nRUN touch "$(printf "bad\\377name")"\n' > c/Dockerfile
	run -0 hypr build -q -t nu:2 c
	run -0 unsquashfs -lls "$HYPR_ROOT/images/${output#sha256:}.squashfs"
	[[ $output == *"bad"$'\xff'"name"* ]]
}

# bats test_tags=vm
@test "hostile: SIGKILL of the driver: no VM outlives it" {
	ctx c 'FROM busybox:latest' 'RUN echo sta""rted; sleep 60'
	setsid hypr build -t k:1 c > out 2> err &
	ORPHAN_PG=$!
	wait_for grep -q '^#1 [0-9.]* started' err
	kill -KILL "$ORPHAN_PG"
	wait "$ORPHAN_PG" || true
	# within 5 s hypr-exec notices its reader is gone and stops the VM
	wait_for no_vm
	# the dead stages may stay zombies until init reaps them: count live ones
	live_in_group() { ps -o stat= -g "$ORPHAN_PG" | grep -qv '^Z'; }
	wait_for eval '! live_in_group' 
}

@test "hostile: ADD symlink-then-file: refused when the link leads nowhere in the archive" {
	mkdir -p c
	python3 - c <<-'EOF'
	import io, sys, tarfile
	with tarfile.open(sys.argv[1] + '/symfile.tar', 'w') as t:
	    ti = tarfile.TarInfo('lnk'); ti.type = tarfile.SYMTYPE; ti.linkname = '/etc'; t.addfile(ti)
	    ti = tarfile.TarInfo('lnk/f'); ti.size = 4; t.addfile(ti, io.BytesIO(b'evil'))
	EOF
	printf 'FROM busybox:latest\nADD symfile.tar /dst/\n' > c/Dockerfile
	# Docker unpacks chrooted into /dst, where lnk leads to /dst/etc, which
	# the archive never made: refused, and the host's /etc is never touched
	run -3 --separate-stderr hypr build -q -t add:1 c
	one_error "hypr-exec: c/Dockerfile:2: "
	[ ! -e /etc/f ]
}

@test "hostile: a hard link out of an ADD tar is named as in the tar" {
	mkdir -p c
	python3 - c <<-'EOF'
	import sys, tarfile
	with tarfile.open(sys.argv[1] + '/hard.tar', 'w') as t:
	    ti = tarfile.TarInfo('hl'); ti.type = tarfile.LNKTYPE; ti.linkname = '/etc/passwd'; t.addfile(ti)
	EOF
	printf 'FROM busybox:latest\nADD hard.tar /dst/\n' > c/Dockerfile
	run -3 --separate-stderr hypr build -q -t add:1 c
	# no internal staging path in the message
	[[ $stderr != *"$HYPR_ROOT/tmp"* ]]
	[[ $stderr == *"hard.tar: member 'hl'"*"/etc/passwd"* ]]
}

@test "hostile: STOPSIGNAL with an unknown signal is bad input" {
	ctx c 'FROM busybox:latest' 'STOPSIGNAL SIGFOO'
	run -3 --separate-stderr hypr build -q -t s:1 c
	[[ $stderr == *"hypr-exec: c/Dockerfile:2: STOPSIGNAL SIGFOO: "* ]]
}

@test "hostile: an ENV chain stops at 1 MiB per value and 16 MiB of Env and Labels, exit 3" {
	# issue 13: fourteen ENV L(n)=${L(n-1)} x4 over a 1 KB build arg took
	# hypr-exec to gigabytes; variables may add 1 MiB to one value
	mkdir -p c
	{ echo 'FROM busybox:latest'; echo 'ARG L0'
	  for i in $(seq 14); do echo "ENV L$i=\${L$((i - 1))}\${L$((i - 1))}\${L$((i - 1))}\${L$((i - 1))}"; done; } > c/Dockerfile
	run -3 --separate-stderr hypr build -q -t chain:1 --build-arg "L0=$(head -c 1024 /dev/zero | tr '\0' x)" c
	one_error 'hypr-exec: c/Dockerfile:8: ENV L6=${L5}${L5}${L5}${L5}: failed to process "${L5}${L5}${L5}${L5}": variables expand to more than 1 MiB (hypr'"'"'s limit)'
	[[ $stderr == *"ERROR: hypr-exec failed (exit 3)"* ]]
	# values under 1 MiB each: the config's Env and Labels stop at 16 MiB
	{ echo 'FROM busybox:latest'; echo 'ARG L0'; echo 'ENV L1=${L0}${L0}${L0}${L0}'
	  echo 'ENV L2=${L1}${L1}${L1}${L1}'; for i in $(seq 20); do echo "ENV M$i=\$L2"; done; } > c/Dockerfile
	run -3 --separate-stderr hypr build -q -t chain:1 --build-arg "L0=$(head -c 60000 /dev/zero | tr '\0' x)" c
	one_error "hypr-exec: c/Dockerfile:21: ENV M17=\$L2: ENV would make the image config's Env and Labels larger than 16777216 bytes (hypr's limit)"
	run -0 built_images
	[ -z "$output" ]
}

@test "hostile: a long instruction does not hide the error's reason" {
	deep=$(head -c 100000 /dev/zero | sed 's/\x0/${A:-/g')x$(head -c 100000 /dev/zero | tr '\0' '}')
	mkdir -p c
	{ echo 'FROM busybox:latest'; printf 'ENV A=%s\n' "$deep" | fold -w 60000 | sed '$!s/$/\\/'; } > c/Dockerfile
	run -3 --separate-stderr hypr build -q -t deep:1 c
	[[ $(grep '^hypr-exec: ' <<<"$stderr") == *"nested deeper than 1000 levels" ]]
}

@test "hostile: COPY of a file whose name is not UTF-8" {
	mkdir -p c
	touch "c/$(printf 'bad\xffname')"
	printf 'FROM busybox:latest\nCOPY . /x\n' > c/Dockerfile
	run -0 hypr build -q -t nu:1 c
	run -0 unsquashfs -lls "$HYPR_ROOT/images/${output#sha256:}.squashfs"
	[[ $output == *"x/bad"$'\xff'"name"* ]]
}

@test "hostile: COPY of a path longer than PATH_MAX is not silently dropped" {
	mkdir -p c
	printf 'FROM busybox:latest\nCOPY . /x\n' > c/Dockerfile
	python3 - c <<-'EOF2'
	import os, sys
	fd = os.open(sys.argv[1], os.O_RDONLY)
	for _ in range(3000):
	    os.mkdir('d', dir_fd=fd)
	    nfd = os.open('d', os.O_RDONLY, dir_fd=fd); os.close(fd); fd = nfd
	os.write(os.open('f', os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd), b'deep')
	EOF2
	run --separate-stderr hypr build -q --keep k -t deep:1 c
	if [ "$status" -eq 0 ]; then
		l=$(jq -r 'select(.type == "step") | .layer.digest' k/steps.jsonl)
		[ "$(tar tf "$HYPR_ROOT/blobs/sha256/${l#sha256:}" | grep -c '/f$')" -eq 1 ]
	else
		[ "$status" -eq 3 ] || [ "$status" -eq 4 ]
		[[ $stderr == *"hypr-exec: c/Dockerfile:2: COPY . /x: "* ]]
	fi
}

# bats test_tags=vm
@test "hostile: a RUN leaving a tree 200 levels deep is diffed whole" {
	ctx c 'FROM busybox:latest' \
	    'RUN mkdir -p /a && cd /a && i=0; while [ $i -lt 200 ]; do mkdir d && cd d || exit 9; i=$((i+1)); done; echo deep > f'
	run -0 --separate-stderr hypr build -q -t deep:1 c
	run -0 unsquashfs -lls "$HYPR_ROOT/images/${output#sha256:}.squashfs"
	[[ $output == *"/d/d/f"* ]]
}

# bats test_tags=vm
@test "hostile: no per-build log is left behind after SIGKILL" {
	ctx c 'FROM busybox:latest' 'RUN echo sta""rted; sleep 3'
	setsid hypr build -t k:1 c > out 2> err &
	ORPHAN_PG=$!
	wait_for grep -q '^#1 [0-9.]* started' err
	kill -KILL "$ORPHAN_PG"
	wait "$ORPHAN_PG" || true
	ctx ok 'FROM busybox:latest' 'ENV A=1'
	run -0 hypr build -q -t ok:1 ok
	# the next build clears stale logs/build.PID.log files
	[ "$(ls "$HYPR_ROOT/logs")" = last.log ]
}

@test "hostile: an invalid -t fails before any step runs" {
	ctx c 'FROM busybox:latest' 'RUN echo ran'
	run -2 --separate-stderr hypr build -t 'Bad:Tag!' c
	[[ $stderr == "hypr: build: invalid tag 'Bad:Tag!'"* ]]
	[[ $stderr != *" ran"* ]]
	run pgrep -f "qemu-system.*$HYPR_ROOT/"
	[ -z "$output" ]
}

# bats test_tags=vm
@test "hostile: SIGHUP is handled like SIGTERM" {
	ctx c 'FROM busybox:latest' 'RUN echo sta""rted; sleep 60'
	setsid hypr build -t h:1 c > out 2> err &
	ORPHAN_PG=$!
	wait_for grep -q '^#1 [0-9.]* started' err
	kill -HUP -- "-$ORPHAN_PG"
	rc=0
	wait "$ORPHAN_PG" || rc=$?
	[ "$rc" -eq 129 ]
	[ "$(tail -n 1 err)" = "hypr: build interrupted" ]
	[ "$(ls "$HYPR_ROOT/logs")" = last.log ]
	grep -q 'started' "$HYPR_ROOT/logs/last.log"
}

@test "hostile: hypr build --no-cache repairs a damaged squashfs" {
	ctx c 'FROM busybox:latest' 'ENV A=1'
	id=$(hypr build -q -t a:1 c)
	printf 'XXXX' | dd of="$HYPR_ROOT/images/${id#sha256:}.squashfs" bs=1 seek=5000 conv=notrunc 2>/dev/null
	run -3 --separate-stderr hypr image inspect a:1
	[[ $stderr == *"squashfs damaged"* ]]
	run -0 hypr build -q --no-cache -t a:1 c
	run -0 hypr image inspect a:1
}

@test "hostile: ADD <url> from a stalled, dripping, huge or endless server: one line naming the Dockerfile line; store intact" {
	ctx ok 'FROM busybox:latest' 'ENV A=1'
	id=$(hypr build -q -t ok:1 ok)
	httpd_start
	u=http://127.0.0.1:$HTTPD_PORT
	export HYPR_NET_SPEED_LIMIT=1000 HYPR_NET_SPEED_TIME=2 HYPR_NET_RETRIES=2
	# a byte every half second: cut by the speed limit, tried twice, exit 4
	ctx c 'FROM busybox:latest' "ADD $u/drip /x"
	run -4 --separate-stderr hypr build -q -t add:1 c
	one_error "hypr-exec: c/Dockerfile:2: ADD $u/drip /x: $u/drip: download failed: timed out: stalled below 1000 bytes/s for 2 s (HYPR_NET_SPEED_LIMIT, HYPR_NET_SPEED_TIME) (2 attempts)$"
	[[ $stderr == *"ERROR: hypr-exec failed (exit 4)"* ]]
	# larger than HYPR_ADD_MAX_SIZE: refused from its Content-Length, or
	# as soon as an unannounced body passes it; exit 3
	ctx c 'FROM busybox:latest' "ADD $u/big /x"
	HYPR_ADD_MAX_SIZE=1M run -3 --separate-stderr hypr build -q -t add:1 c
	one_error "hypr-exec: c/Dockerfile:2: ADD $u/big /x: $u/big: larger than 1 MiB (HYPR_ADD_MAX_SIZE): the server gives 2097152 bytes$"
	ctx c 'FROM busybox:latest' "ADD $u/endless /x"
	HYPR_ADD_MAX_SIZE=1M run -3 --separate-stderr hypr build -q -t add:1 c
	one_error "hypr-exec: c/Dockerfile:2: ADD $u/endless /x: $u/endless: larger than 1 MiB (HYPR_ADD_MAX_SIZE)$"
	run -0 built_images
	[ "$output" = "$id" ]
	[ "$(store_ok)" -eq 1 ]
	nothing_left
	# a stall after 1000 bytes: cut, then resumed with Range, complete
	ctx c 'FROM busybox:latest' "ADD $u/after /x"
	run -0 --separate-stderr hypr build -q -t add:2 c
	grep -qx "/after bytes=1000-" httpd.log
	run -0 unsquashfs -cat "$HYPR_ROOT/images/${output#sha256:}.squashfs" x
	[ "$output" = "$(python3 -c 'print("0123456789" * 300, end="")')" ]
	[ "$(store_ok)" -eq 2 ]
	# a bad limit is a usage error
	HYPR_ADD_MAX_SIZE=lots run -2 --separate-stderr hypr build -q -t add:3 c
	one_error "hypr-exec: HYPR_ADD_MAX_SIZE='lots': expected a size in bytes (suffix K, M, G or T allowed)$"
}

@test "hostile: a base layer with a ../ path, a hard link out or a whiteout directory is refused at its FROM line, naming the layer" {
	ctx ok 'FROM busybox:latest' 'ENV A=1'
	id=$(hypr build -q -t ok:1 ok)
	dd=$(python3 "$HYPR_SRC/tests/lib/mkevil.py" evil-dotdot dotdot)
	hl=$(python3 "$HYPR_SRC/tests/lib/mkevil.py" evil-hl hardlink)
	hypr load --name evil:dotdot evil-dotdot > /dev/null
	hypr load --name evil:hl evil-hl > /dev/null
	# first unpacked for the build VM's base, at the RUN two lines below
	ctx c 'FROM evil:dotdot' 'ENV A=1' 'RUN true'
	run -3 --separate-stderr hypr build -q -t evil:1 c
	one_error "hypr-exec: c/Dockerfile:1: FROM evil:dotdot: base image layer $dd: refusing hostile path '../hypr-evil-dotdot'$"
	[[ $stderr == *"   1 | >>> FROM evil:dotdot"* ]]
	# first unpacked for a COPY --from of its stage
	ctx c 'FROM evil:hl AS a' 'FROM busybox:latest' 'COPY --from=a / /x'
	run -3 --separate-stderr hypr build -q -t evil:1 c
	one_error "hypr-exec: c/Dockerfile:1: FROM evil:hl AS a: base image layer $hl: refusing hard link 'etc/shadow-link' -> '/etc/shadow'$"
	# COPY --from=<image> names the image itself: its own line
	ctx c 'FROM busybox:latest' 'COPY --from=evil:hl / /x'
	run -3 --separate-stderr hypr build -q -t evil:1 c
	one_error "hypr-exec: c/Dockerfile:2: COPY --from=evil:hl / /x: layer $hl: refusing hard link 'etc/shadow-link' -> '/etc/shadow'$"
	# a whiteout's name as a directory (found by fuzz_rootfs)
	wh=$(python3 "$HYPR_SRC/tests/lib/mkevil.py" evil-wh whdir)
	hypr load --name evil:wh evil-wh > /dev/null
	ctx c 'FROM busybox:latest' 'COPY --from=evil:wh / /x'
	run -3 --separate-stderr hypr build -q -t evil:1 c
	one_error "hypr-exec: c/Dockerfile:2: COPY --from=evil:wh / /x: layer $wh: refusing 'etc/.wh.x/f': a whiteout name (.wh.) as a directory$"
	[ ! -e "$BATS_TEST_TMPDIR/hypr-evil-dotdot" ] && [ ! -e "$HYPR_ROOT/hypr-evil-dotdot" ]
	run -0 built_images
	[ "$output" = "$id" ]
	[ "$(store_ok)" -eq 1 ]
	nothing_left
}

@test "hostile: FROM an image whose registry lies about diff_ids or sizes, or stalls: one line for the FROM line; store intact" {
	ctx ok 'FROM busybox:latest' 'ENV A=1'
	id=$(hypr build -q -t ok:1 ok)
	bb=$(busybox_layout)
	zero=sha256:$(printf '0%.0s' {1..64})
	m="$bb/blobs/sha256/$(jq -r '.manifests[0].digest' "$bb/index.json" | cut -c8-)"
	lay=$(jq -r '.layers[0].digest' "$m")
	real=$(jq -r '.rootfs.diff_ids[0]' "$bb/blobs/sha256/$(jq -r .config.digest "$m" | cut -c8-)")
	# one registry serving whichever layout "lay" points to
	mkdir -p lay
	reg_edit_layout "$bb" lay/diff ".rootfs.diff_ids = [\"$zero\"]" .
	reg_edit_layout "$bb" lay/big '.config.Labels.pad = ("x" * 17000000)' .
	python3 "$HYPR_SRC/tests/lib/mkevil.py" lay/new dotdot > /dev/null
	FAKE_DIR=$BATS_TEST_TMPDIR/fake
	ln -s lay/diff served
	port=$(fake_start "$FAKE_DIR" "$BATS_TEST_TMPDIR/served")
	r=127.0.0.1:$port
	ctx c "FROM $r/evil" 'ENV A=1'
	run -3 --separate-stderr hypr build -q -t evil:1 c
	one_error "hypr-fetch: line 1: $r/evil:latest: layer $lay: diff_id mismatch: the config says $zero, the layer decompresses to $real$"
	[[ $stderr == *"ERROR: hypr-fetch failed (exit 3)"* ]]
	ln -sfn lay/big served
	run -3 --separate-stderr hypr build -q --pull=always -t evil:1 c
	one_error "hypr-fetch: line 1: $r/evil:latest: config sha256:"
	[[ $stderr == *": the manifest gives "*" bytes, over the 16 MiB limit"* ]]
	run -0 built_images
	[ "$output" = "$id" ]
	[ "$(store_ok)" -eq 1 ]
	nothing_left
	# an image not in the store, from a registry that drips
	ln -sfn lay/new served
	echo "drip 0.5" > "$FAKE_DIR/mode"
	cfg=$(jq -r .config.digest "lay/new/blobs/sha256/$(jq -r '.manifests[0].digest' lay/new/index.json | cut -c8-)")
	HYPR_NET_SPEED_LIMIT=1000 HYPR_NET_SPEED_TIME=2 HYPR_NET_RETRIES=2 \
		run -4 --separate-stderr hypr build -q --pull=always -t evil:1 c
	one_error "hypr-fetch: line 1: $r/evil:latest: $r: blob $cfg: timed out: stalled below 1000 bytes/s for 2 s (HYPR_NET_SPEED_LIMIT, HYPR_NET_SPEED_TIME) (2 attempts)$"
	[ ! -e "$HYPR_ROOT/blobs/sha256/${cfg#sha256:}" ]
	[ "$(store_ok)" -eq 1 ]
}

@test "hostile: a resolved stream claiming a diff_id its layer does not have is refused by hypr-exec at the FROM line" {
	ctx c 'FROM busybox:latest' 'ENV A=1'
	run -0 hypr build -q --keep k -t a:1 c
	lay=$(jq -r 'select(.type == "stage") | .image.layers[0].digest' k/resolved.jsonl)
	real=$(jq -r 'select(.type == "stage") | .image.diff_ids[0]' k/resolved.jsonl)
	zero=sha256:$(printf '0%.0s' {1..64})
	jq -c --arg z "$zero" 'if .type == "stage" then .image.diff_ids = [$z] else . end' \
		k/resolved.jsonl > lie.jsonl
	run -3 --separate-stderr "$HYPR_EXEC" -q --context c < lie.jsonl
	[ "$stderr" = "hypr-exec: c/Dockerfile:1: FROM busybox:latest: base image layer $lay: diff_id mismatch: the config says $zero, the layer decompresses to $real" ]
	[[ $output != *'"end":true'* ]]
	# without hypr-fetch's record (an older store) it is computed once
	rm -r "$HYPR_ROOT/diffids"
	run -0 "$HYPR_EXEC" -q --context c < k/resolved.jsonl
	[ "$(cat "$HYPR_ROOT/diffids/${lay#sha256:}")" = "$real" ]
	[ "$(store_ok)" -eq 1 ]
}
