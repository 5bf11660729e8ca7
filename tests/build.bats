#!/usr/bin/env bats
# End to end through `hypr build` with the real stages: real build VM (under
# TCG here), real squashfs. Each example's stored manifest is checked field by
# field against its Dockerfile and its file tree read back with unsquashfs.
# One store for the whole file, so later tests reuse the earlier cache.
load helpers

setup_file() {
	export HYPR_ROOT="$BATS_FILE_TMPDIR/root"
	mkdir -p "$HYPR_ROOT"
	hypr load --name busybox:latest "$(busybox_layout)" >/dev/null
}

setup() {
	EX="$HYPR_SRC/examples"
	export HYPR_PROGRESS=plain
}

# manifest NAME: the stored manifest (one object, hypr-manifest(5)) in $M;
# inspect finds the image (docker's shape, hypr(1) INSPECT)
manifest() {
	run -0 hypr image inspect -f '{{.Id}}' "$1"
	M=$(jq -c . "$HYPR_ROOT/images/${output#sha256:}.json")
}

# field JQ: a manifest field, compact
field() {
	jq -c "$1" <<<"$M"
}

# sqfs: the image's squashfs file
sqfs() {
	local f
	f=$(jq -r '.squashfs.file // empty' <<<"$M")
	[ -n "$f" ] || f="images/$(jq -r '.id | ltrimstr("sha256:")' <<<"$M").squashfs"
	case $f in /*) echo "$f" ;; images/*) echo "$HYPR_ROOT/$f" ;; *) echo "$HYPR_ROOT/images/$f" ;; esac
}

# tree: "mode uid/gid path" of every entry, from unsquashfs -lls
tree() {
	unsquashfs -lln "$(sqfs)" | awk 'NF >= 6 && $1 ~ /^[-dlcbps]/ {
		p = $6; for (i = 7; i <= NF; i++) p = p " " $i
		sub(/^squashfs-root/, "", p); print $1, $2, p }'
}

# cat_file PATH: a file's content from the image
cat_file() {
	unsquashfs -cat "$(sqfs)" "$1"
}

# bats test_tags=vm
@test "build: examples/hello, manifest and file tree" {
	run --separate-stderr -0 hypr build -t hello:latest "$EX/hello"
	[[ $stderr == *"[stage-0 2/7] LABEL"* || $stderr == *"LABEL org.opencontainers.image.title"* ]]
	[[ $stderr == *"naming to hello:latest done"* ]]
	manifest hello:latest
	assert_equal "$(field .tags)" '["hello:latest"]'
	assert_equal "$(field .cmd)" '["/app/hello.sh"]'
	assert_equal "$(field .entrypoint)" 'null'
	assert_equal "$(field .working_dir)" '"/app"'
	assert_equal "$(field .exposed_ports)" '["8080/tcp"]'
	assert_equal "$(field '.labels["org.opencontainers.image.title"]')" '"hello"'
	assert_equal "$(field '.labels["org.opencontainers.image.description"]')" "\"hypr's hello example\""
	assert_equal "$(field '[.env[] | select(startswith("GREETING="))]')" \
		'["GREETING=Hello from a hypr microVM image"]'
	assert_equal "$(field '.base.ref')" '"docker.io/library/busybox:latest"'
	assert_equal "$(field '.architecture')" '"amd64"'
	# one history entry per instruction after FROM, plus the base's
	assert_equal "$(field '[.history[] | select(.created_by | test("COPY hello.sh"))] | length')" 1
	assert_equal "$(field '[.history[] | select(.created_by | test("chmod 755"))] | length')" 1
	run -0 tree
	assert_line "-rwxr-xr-x 0/0 /app/hello.sh"
	assert_line --regexp '^-rw-r--r-- 0/0 /app/built-by$'
	assert_line --regexp '^-rwxr-xr-x 0/0 /bin/busybox$'
	refute_line --partial "README.md"
	run -0 cat_file /app/built-by
	assert_output "built by hypr"
	run -0 hypr images
	assert_output --partial "hello"
}

# bats test_tags=vm
@test "build: an unchanged rebuild is all CACHED, boots no VM, same ID" {
	hypr build -q -t hello:latest "$EX/hello" > "$BATS_TEST_TMPDIR/id1"
	run --separate-stderr -0 hypr build --keep "$BATS_TEST_TMPDIR/k" -t hello:again "$EX/hello"
	[[ $stderr != *"DONE"*"RUN chmod"* ]]
	assert_equal "$(grep -c ' CACHED$' <<<"$stderr")" 7
	run -0 tail -n1 "$BATS_TEST_TMPDIR/k/steps.jsonl"
	assert_equal "$(jq -c .vm_boots <<<"$output")" 0
	assert_equal "$(cat "$BATS_TEST_TMPDIR/k/id")" "$(cat "$BATS_TEST_TMPDIR/id1")"
	# the saved streams replay: --from squash gives the same image again
	run -0 hypr build -q --from squash "$BATS_TEST_TMPDIR/k" -t hello:replayed
	assert_output "$(cat "$BATS_TEST_TMPDIR/id1")"
}

# bats test_tags=vm
@test "build: multistage, --target and build args in FROM" {
	run --separate-stderr -0 hypr build -t ms:builder --target builder "$EX/multistage"
	manifest ms:builder
	assert_equal "$(field .working_dir)" '"/src"'
	assert_equal "$(field .stage)" '"builder"'
	run -0 cat_file /src/app.txt
	assert_output "app version 1.0"

	run --separate-stderr -0 hypr build -t ms:2 --build-arg VERSION=2.0 "$EX/multistage"
	[[ $stderr != *"this stage is not needed"* ]]
	manifest ms:2
	assert_equal "$(field .cmd)" '["cat","/usr/share/app/app.txt"]'
	assert_equal "$(field .working_dir)" '""'
	run -0 cat_file /usr/share/app/app.txt
	assert_output "app version 2.0"
	run -0 tree
	refute_line --partial "/src"
	refute_line --partial "/unused"

	# an ARG in FROM picks another base; an unknown one fails in hypr-fetch
	run --separate-stderr -4 hypr build --pull=never --build-arg TAG=nope -t ms:x "$EX/multistage"
	[[ $stderr == *"ERROR: "*"busybox:nope"* ]]
}

# bats test_tags=vm
@test "build: every instruction lands in the manifest and the tree" {
	run --separate-stderr -0 hypr build -t inst:1 "$EX/instructions"
	[[ $stderr == *"MAINTAINER"* ]]
	manifest inst:1
	assert_equal "$(field .user)" '"app"'
	assert_equal "$(field .working_dir)" '"/srv/app"'
	assert_equal "$(field .entrypoint)" '["/srv/app/bin/greet"]'
	assert_equal "$(field .cmd)" '["--verbose"]'
	assert_equal "$(field '.exposed_ports | sort')" '["53/udp","8080/tcp"]'
	assert_equal "$(field .volumes)" '["/srv/app/data"]'
	assert_equal "$(field .stop_signal)" '"SIGTERM"'
	assert_equal "$(field .shell)" '["/bin/sh","-c"]'
	assert_equal "$(field .healthcheck.Test)" '["CMD","/srv/app/bin/greet"]'
	assert_equal "$(field .healthcheck.Interval)" 30000000000
	assert_equal "$(field .onbuild)" '["RUN echo \"building on top of instructions\""]'
	assert_equal "$(field '.labels["com.example.version"]')" '"1.2"'
	assert_equal "$(field '.labels["com.example.name"]')" '"instructions"'
	assert_equal "$(field '[.env[] | select(startswith("APP_HOME=") or startswith("PATH="))]')" \
		'["PATH=/srv/app/bin:/usr/sbin:/usr/bin:/sbin:/bin","APP_HOME=/srv/app"]'
	[[ $(field '.env') != *GREETING* ]]
	run -0 tree
	assert_line "-rw-r----- 1000/1000 /srv/app/conf/config.txt"
	assert_line "-rw-r--r-- 0/0 /srv/app/data/d/inside.txt"
	assert_line "-rwxr-xr-x 0/0 /srv/app/bin/greet"
	run -0 cat_file /srv/app/greeting
	assert_output "hi"
	run -0 cat_file /srv/app/exec-form
	assert_output "exec-form"
	run -0 cat_file /srv/app/heredoc
	assert_output "heredoc"
	run -0 cat_file /srv/app/data/d/inside.txt
	assert_output "from the tar"
}

# bats test_tags=vm
@test "build: a failing RUN points at its line, exit code and output; exit 1" {
	mkdir -p "$BATS_TEST_TMPDIR/bad"
	printf 'FROM busybox:latest\nENV X=1\nRUN echo about to fail && echo to-stderr >&2 && exit 7\nCMD ["sh"]\n' \
		> "$BATS_TEST_TMPDIR/bad/Dockerfile"
	run --separate-stderr -1 hypr build -t bad "$BATS_TEST_TMPDIR/bad"
	[ -z "$output" ]
	[[ $stderr == *"about to fail"* ]]
	[[ $stderr == *"to-stderr"* ]]
	[[ $stderr == *"   3 | >>> RUN echo about to fail"* ]]
	[[ $stderr == *"ERROR: "*"Dockerfile:3: RUN echo about to fail"*": exit code 7"* ]]
	run -3 hypr image inspect bad
	run -0 grep -c "about to fail" "$HYPR_ROOT/logs/last.log"
}

@test "build: a syntax error is reported by hypr-parse with its line; exit 3" {
	mkdir -p "$BATS_TEST_TMPDIR/syn"
	printf 'FROM busybox:latest\nRUNN echo\n' > "$BATS_TEST_TMPDIR/syn/Dockerfile"
	run --separate-stderr -3 hypr build -t syn "$BATS_TEST_TMPDIR/syn"
	[[ $stderr == *"   2 | >>> RUNN echo"* ]]
	[[ $stderr == *"ERROR: "*"Dockerfile:2: unknown instruction"* ]]
	[[ $stderr != *"ERROR: hypr-fetch"* ]]
}

@test "build: COPY --from a stage defined later; stages run in dependency order" {
	local c="$BATS_TEST_TMPDIR/fwd"
	mkdir -p "$c"
	echo hello > "$c/greeting"
	printf '%s\n' 'FROM busybox:latest AS app' 'COPY --from=data /greeting /greeting' \
	    'FROM scratch AS data' 'COPY greeting /greeting' 'FROM app' 'CMD ["cat", "/greeting"]' > "$c/Dockerfile"
	run --separate-stderr -0 hypr build --progress=plain -t fwd:1 "$c"
	[ "$(grep -o '^#[0-9] \[[a-z0-9 /]*\]' <<<"$stderr" | tr '\n' ' ')" = '#1 [data 1/1] #2 [app 1/1] #3 [1/1] ' ]
	manifest fwd:1
	assert_equal "$(field .cmd)" '["cat","/greeting"]'
	assert_equal "$(cat_file /greeting)" hello
	# a cycle is refused by hypr-parse before anything runs
	printf '%s\n' 'FROM busybox:latest AS app' 'COPY --from=data /x /x' 'FROM app AS data' > "$c/Dockerfile"
	run --separate-stderr -3 hypr build -t fwd:2 "$c"
	[[ $stderr == *"ERROR: $c/Dockerfile:2: circular dependency detected on stage: app"* ]]
}

@test "build: EXPOSE takes BuildKit's forms and keeps the container ports" {
	local c="$BATS_TEST_TMPDIR/expose"
	mkdir -p "$c"
	printf '%s\n' 'FROM busybox:latest' \
	    'EXPOSE 1234:1234/tcp 0.0.0.0:1234-1235:3333-3334/tcp [::1]:80:80 53/UDP 9/ ::7' > "$c/Dockerfile"
	run --separate-stderr -0 hypr build -t expose:1 "$c"
	manifest expose:1
	assert_equal "$(field .exposed_ports)" '["1234/tcp","3333/tcp","3334/tcp","53/udp","7/tcp","80/tcp","9/tcp"]'
	check() {	# check PORT MESSAGE
		printf 'FROM busybox:latest\nEXPOSE %s\n' "$1" > "$c/Dockerfile"
		run --separate-stderr -3 hypr build -t expose:2 "$c"
		[[ $stderr == *"ERROR: $c/Dockerfile:2: EXPOSE $1: $2"* ]] ||
			{ echo "got: $stderr" >&2; return 1; }
	}
	check 70000 "invalid port '70000'"
	check 1.2.3:80:80 'invalid IP address: 1.2.3'
	check 1-2:80-82 'invalid ranges specified for container and host Ports: 80-82 and 1-2'
	check x:80 'invalid hostPort: x'
	check 80/icmp "invalid proto 'icmp'"
}

@test "build: .dockerignore patterns Go's filepath.Match rejects fail the build at their line; classes match characters" {
	local c="$BATS_TEST_TMPDIR/ign"
	mkdir -p "$c"
	printf 'FROM busybox:latest\nCOPY . /x\n' > "$c/Dockerfile"
	touch "$c/keep" "$c/a☺b" "$c/aab"
	for p in '[]a]' '[-]' '[x-]' '[a-b-c]' 'tail\'; do
		printf '# comment\n*.tmp\n%s\n' "$p" > "$c/.dockerignore"
		run --separate-stderr -3 hypr build -q -t ign:1 "$c"
		[[ $stderr == *"ERROR: $(realpath "$c")/.dockerignore:3: syntax error in pattern '$p'"* ]] ||
			{ echo "got: $stderr" >&2; return 1; }
	done
	printf 'a[^a]b\nDockerfile\n.dockerignore\n' > "$c/.dockerignore"
	run --separate-stderr -0 hypr build -q -t ign:2 "$c"
	manifest ign:2
	assert_equal "$(tree | awk '{print $3}' | grep '^/x/' | sort | tr '\n' ' ')" '/x/aab /x/keep '
}

# bats test_tags=vm
@test "build: RUN <<  EOF with blanks after << is a heredoc, run as the script (BuildKit); RUN --device is warned about" {
	local c="$BATS_TEST_TMPDIR/hd"
	mkdir -p "$c"
	printf '%s\n' 'FROM busybox:latest' 'RUN <<  EOF' 'echo one > /one' 'echo two > /two' 'EOF' \
	    'RUN << -EOF cat > /dash' 'x' '-EOF' 'RUN --device=/dev/fuse --device=/dev/kvm true' > "$c/Dockerfile"
	run --separate-stderr -0 hypr build --progress=plain -t hd:1 "$c"
	[[ $stderr == *"hypr-exec: warning: $c/Dockerfile:9: RUN --device is not supported: running without the device"* ]]
	manifest hd:1
	assert_equal "$(cat_file /one)$(cat_file /two)$(cat_file /dash)" onetwox
}

# bats test_tags=vm
@test "build: -n prints a pipeline that builds the same image" {
	run -0 hypr build -n -t piped:1 "$EX/hello"
	printf '%s\n' "$output" > "$BATS_TEST_TMPDIR/p.sh"
	PATH="$HYPR_SRC/build/bin:$PATH" run --separate-stderr -0 sh "$BATS_TEST_TMPDIR/p.sh"
	[[ $output == sha256:* ]]
	id=$output
	run -0 hypr build -q -t piped:2 "$EX/hello"
	assert_output "$id"
}

# bats test_tags=vm
@test "build: --label reaches the stored image" {
	run --separate-stderr -0 hypr build -t hello:labelled --label com.example.extra=yes \
		--label org.opencontainers.image.title=override "$EX/hello"
	manifest hello:labelled
	assert_equal "$(field '.labels["com.example.extra"]')" '"yes"'
	assert_equal "$(field '.labels["org.opencontainers.image.title"]')" '"override"'
}

# bats test_tags=vm
@test "build: RUN setcap and setfattr: security.capability and user.* reach the layer and the squashfs" {
	local d=$BATS_TEST_TMPDIR/cap b lib
	mkdir -p "$d/root/usr/sbin" "$d/root/lib64"
	# the host's setcap/getcap/setfattr/getfattr and their libraries
	for b in /usr/sbin/setcap /usr/sbin/getcap /usr/bin/setfattr /usr/bin/getfattr; do
		cp "$b" "$d/root/usr/sbin/"
		for lib in $(ldd "$b" | awk '$3 ~ /^\// { print $3 }'); do
			mkdir -p "$d/root${lib%/*}"
			cp -L "$lib" "$d/root$lib"
		done
	done
	cp -L /lib64/ld-linux-x86-64.so.2 "$d/root/lib64/"
	printf '%s\n' 'FROM busybox:latest' 'COPY root /' \
		'RUN cp /bin/busybox /usr/bin/ping && setcap cap_net_bind_service,cap_net_raw=+ep /usr/bin/ping && setfattr -n user.note -v hi /usr/bin/ping' \
		'RUN touch /other && getcap /usr/bin/ping && getfattr --only-values -n user.note /usr/bin/ping && echo' > "$d/Dockerfile"
	run --separate-stderr -0 hypr build --keep "$d/keep" -t cap:1 "$d"
	# plain lines: "#N SECONDS text" (hypr(1))
	[[ $stderr =~ \#[0-9]+\ [0-9.]+\ /usr/bin/ping\ cap_net_bind_service,cap_net_raw=ep ]]
	[[ $stderr =~ \#[0-9]+\ [0-9.]+\ hi ]]
	# the RUN's layer tar, then the final squashfs (through sqfs2tar)
	xattrs() {
		python3 -c 'import sys, tarfile
for m in tarfile.open(fileobj=sys.stdin.buffer, mode="r|*"):
    if m.name.lstrip("./") == "usr/bin/ping":
        print(" ".join(sorted(k for k in m.pax_headers if k.startswith("SCHILY.xattr"))))'
	}
	l=$(jq -r 'select(.type == "step" and .n == 2) | .layer.digest | ltrimstr("sha256:")' "$d/keep/steps.jsonl")
	run -0 xattrs < "$HYPR_ROOT/blobs/sha256/$l"
	assert_output "SCHILY.xattr.security.capability SCHILY.xattr.user.note"
	manifest cap:1
	run -0 xattrs < <(sqfs2tar "$(sqfs)")
	assert_output "SCHILY.xattr.security.capability SCHILY.xattr.user.note"
}

# bats test_tags=vm
@test "build: FROM scratch has docker's default PATH; a RUN leaves no /dev, /proc or /sys" {
	local d=$BATS_TEST_TMPDIR/scratch
	mkdir -p "$d"
	cp /bin/busybox "$d/"
	printf '%s\n' 'FROM scratch' 'COPY busybox /bin/busybox' \
		'RUN ["/bin/busybox", "sh", "-c", "/bin/busybox mkdir /x && /bin/busybox ls /dev/null /proc/self/exe && echo $PATH"]' > "$d/Dockerfile"
	run --separate-stderr -0 hypr build -t scratch:1 "$d"
	[[ $stderr == *"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"* ]]
	manifest scratch:1
	assert_equal "$(field .env)" '["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]'
	run -0 tree
	assert_output "$(printf '%s\n' 'drwxr-xr-x 0/0 ' 'drwxr-xr-x 0/0 /bin' '-rwxr-xr-x 0/0 /bin/busybox' 'drwxr-xr-x 0/0 /x')"
}
