#!/usr/bin/env bats
# hypr-exec: config updates, COPY/ADD on the host, the cache, and RUN in the
# real build VM (tests tagged vm). Plans come from the real hypr-parse and
# hypr-fetch (the busybox base loaded offline with `hypr-fetch load`).
load helpers

setup() {
	fresh_root
	CTX="$BATS_TEST_TMPDIR/ctx"
	T="$BATS_TEST_TMPDIR"
	mkdir -p "$CTX"
	"$HYPR_FETCH" load --name busybox:latest "$(busybox_layout)" >/dev/null
}

teardown() {
	[ -z "${HTTP_PID:-}" ] || kill "$HTTP_PID" 2>/dev/null || true
}

# plan [hypr-parse options] < Dockerfile: write $CTX/Dockerfile and $T/res.
plan() {
	cat > "$CTX/Dockerfile"
	"$HYPR_PARSE" -f "$CTX/Dockerfile" "$@" 2>/dev/null > "$T/plan"
	"$HYPR_FETCH" --pull=never < "$T/plan" > "$T/res"
}

# steps [hypr-exec options]: run hypr-exec on $T/res into $T/steps.
steps() {
	"$HYPR_EXEC" -q -C "$CTX" "$@" < "$T/res" > "$T/steps"
}

# The config after the last step, keys sorted.
final_config() {
	jq -cS 'select(.type == "step") | .config' "$T/steps" | tail -1
}

# Listing of step N's layer (1-based over all step records): type mode
# uid/gid name [-> link], sorted.
layer_of() {
	local d
	d=$(jq -r "select(.type == \"step\")" "$T/steps" | jq -rs ".[$1 - 1].layer.digest")
	[ "$d" != null ] || { echo "no layer"; return; }
	tar --warning=no-unknown-keyword --numeric-owner -tvf "$HYPR_ROOT/blobs/sha256/${d#sha256:}" |
		awk '{ l = $1 " " $2 " " $6; for (i = 7; i <= NF; i++) l = l " " $i; print l }'
}

# Record the steps in the cache as the real pipeline does.
record_cache() {
	"$HYPR_LAYER" < "$T/steps" > /dev/null
}

# assert_cached FLAG...: the steps' "cached" flags in $T/steps, in order.
assert_cached() {
	run jq -r 'select(.type=="step") | .cached' "$T/steps"
	assert_output "$(printf '%s\n' "$@")"
}

@test "exec: config instructions update the base image's config exactly" {
	plan <<'EOF'
FROM busybox
ENV A=1 B="two words"
ENV C=${A}x D=$B
LABEL "com.example.k"="v" other=$A
EXPOSE 80 443/udp 8000-8002 53/UDP
VOLUME ["/data", "/$A"]
VOLUME /var/log /cache
USER app:app
WORKDIR /srv
WORKDIR sub/../www
STOPSIGNAL SIGINT
SHELL ["/bin/sh", "-ec"]
ONBUILD RUN echo child
CMD echo hi
EOF
	steps
	run final_config
	assert_output "$(jq -cS . <<'EOF'
{"Cmd":["/bin/sh","-ec","echo hi"],
 "Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","A=1","B=two words","C=1x","D=two words"],
 "ExposedPorts":{"443/udp":{},"53/udp":{},"80/tcp":{},"8000/tcp":{},"8001/tcp":{},"8002/tcp":{}},
 "Labels":{"com.example.k":"v","other":"1"},
 "OnBuild":["RUN echo child"],
 "Shell":["/bin/sh","-ec"],
 "StopSignal":"SIGINT",
 "User":"app:app",
 "Volumes":{"/1":{},"/cache":{},"/data":{},"/var/log":{}},
 "WorkingDir":"/srv/www"}
EOF
)"
	# the stage record carries the base config; steps are numbered
	run jq -c 'select(.type == "stage") | .config' "$T/steps"
	assert_output '{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"]}'
	run jq -r 'select(.type == "step") | "\(.n) \(.op) \(.empty_layer) \(.created_by)"' "$T/steps"
	assert_line --index 0 '1 ENV true ENV A=1 B=two words'
	assert_line --index 7 '8 WORKDIR false WORKDIR /srv'
	assert_line --index 8 '9 WORKDIR false WORKDIR /srv/www'
	assert_line --index 12 '13 CMD true CMD ["/bin/sh","-ec","echo hi"]'
	run jq -c 'select(.end) | .vm_boots' "$T/steps"
	assert_output 0
}

@test "exec: ENTRYPOINT resets the inherited CMD, a later CMD stays; shell forms" {
	plan <<'EOF'
FROM busybox
ENTRYPOINT ["/bin/echo"]
EOF
	steps
	run final_config
	assert_output '{"Entrypoint":["/bin/echo"],"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}'
	plan <<'EOF'
FROM busybox
CMD ["a"]
ENTRYPOINT run me
EOF
	steps
	run jq -cS '{Cmd, Entrypoint}' <<< "$(final_config)"
	assert_output '{"Cmd":["a"],"Entrypoint":["/bin/sh","-c","run me"]}'
}

@test "exec: HEALTHCHECK options become nanoseconds; NONE; bad duration is bad input" {
	plan <<'EOF'
FROM busybox
HEALTHCHECK --interval=1m30s --timeout=500ms --start-period=2s --retries=3 CMD wget -q localhost
EOF
	steps
	run jq -cS .Healthcheck <<< "$(final_config)"
	assert_output '{"Interval":90000000000,"Retries":3,"StartPeriod":2000000000,"Test":["CMD-SHELL","wget -q localhost"],"Timeout":500000000}'
	plan <<'EOF'
FROM busybox
HEALTHCHECK CMD ["/bin/true", "x"]
HEALTHCHECK NONE
EOF
	steps
	run jq -c .Healthcheck <<< "$(final_config)"
	assert_output '{"Test":["NONE"]}'
	# the config travels on a stage's last step only (hypr-steps(5) v2)
	run jq -c 'select(.type=="step") | .config.Healthcheck' "$T/steps"
	assert_output "$(printf 'null\n{"Test":["NONE"]}')"
	plan <<'EOF'
FROM busybox
HEALTHCHECK CMD ["/bin/true", "x"]
EOF
	steps
	run jq -c .Healthcheck <<< "$(final_config)"
	assert_output '{"Test":["CMD","/bin/true","x"]}'
	plan <<'EOF'
FROM busybox
HEALTHCHECK --interval=5parsecs CMD true
EOF
	run --separate-stderr -3 "$HYPR_EXEC" -q -C "$CTX" < "$T/res"
	assert_equal "$stderr" "hypr-exec: $CTX/Dockerfile:2: HEALTHCHECK --interval=5parsecs CMD true: HEALTHCHECK: --interval: invalid duration '5parsecs'"
	# nothing half-written: no end record
	run jq -c 'select(.end)' <<< "$output"
	assert_output ''
}

@test "exec: ARG scoping, --build-arg, proxy args, never stored in the config" {
	plan --build-arg B=from-cli --build-arg HTTP_PROXY=http://proxy:3128 <<'EOF'
ARG G=global
ARG H=unseen
FROM busybox
ARG G
ARG A=one B=default
ENV E=$A-$B-$G-$H
ARG A=two
LABEL l=$A
EOF
	steps
	run jq -c '{Env, Labels}' <<< "$(final_config)"
	assert_output '{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","E=one-from-cli-global-"],"Labels":{"l":"two"}}'
	# ENV wins over ARG of the same name
	plan <<'EOF'
FROM busybox
ENV X=env
ARG X=arg
LABEL x=$X
EOF
	steps
	run jq -c .Labels <<< "$(final_config)"
	assert_output '{"x":"env"}'
	# an ENV after an ARG of the same name hides it; ENV of a set name
	# replaces it in place (the base image's PATH stays first)
	plan <<'EOF'
FROM busybox
ARG Y=arg
ENV Y=env Z=1
ENV PATH=/x:$PATH Z=2
ARG Y=arg2
LABEL y=$Y z=$Z
EOF
	steps
	run jq -c '{Env, Labels}' <<< "$(final_config)"
	assert_output '{"Env":["PATH=/x:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","Y=env","Z=2"],"Labels":{"y":"env","z":"2"}}'
}

@test "exec: MAINTAINER sets the author; a truncated or unresolved plan is bad input" {
	plan <<'EOF'
FROM busybox
MAINTAINER Jane <jane@example.com>
EOF
	steps
	run jq -r 'select(.type=="step") | .author' "$T/steps"
	assert_output 'Jane <jane@example.com>'
	head -n 2 "$T/res" > "$T/cut"
	run --separate-stderr -3 "$HYPR_EXEC" -q -C "$CTX" < "$T/cut"
	[[ $stderr == "hypr-exec: resolved: truncated stream"* ]]
	run --separate-stderr -3 "$HYPR_EXEC" -q -C "$CTX" < "$T/plan"
	[[ $stderr == *"not a resolved stream"* ]]
	jq -c 'del(.image)' "$T/res" > "$T/unres"
	run --separate-stderr -3 "$HYPR_EXEC" -q -C "$CTX" < "$T/unres"
	[[ $stderr == *"base image 'busybox' not resolved"* ]]
}

@test "exec: a record with a missing or mistyped field is one error naming stream, line and field" {
	plan <<'EOF'
FROM busybox
ENV A=1
EOF
	jq -c 'if .type == "instr" then del(.op) else . end' "$T/res" > "$T/noop"
	run --separate-stderr -3 "$HYPR_EXEC" -q -C "$CTX" < "$T/noop"
	[ -z "$output" ]
	assert_equal "$stderr" "hypr-exec: resolved:3: instr record: op: missing"
	jq -c 'if .type == "stage" then .image.layers[0].size = "big" else . end' "$T/res" > "$T/bad"
	run --separate-stderr -3 "$HYPR_EXEC" -q -C "$CTX" < "$T/bad"
	assert_equal "$stderr" "hypr-exec: resolved:2: stage record: image.layers[0].size: not an integer"
}

@test "exec: COPY honours .dockerignore with exceptions, globs and directory contents" {
	mkdir -p "$CTX/src/a" "$CTX/src/b" "$CTX/logs"
	echo 1 > "$CTX/src/a/one.c"
	echo 2 > "$CTX/src/b/two.c"
	echo h > "$CTX/src/b/two.h"
	echo secret > "$CTX/src/a/secret.key"
	echo l > "$CTX/logs/x.log"
	echo keep > "$CTX/logs/keep.log"
	printf 'x.txt\n' > "$CTX/x.txt"
	printf '**/*.key\nlogs\n!logs/keep.log\n' > "$CTX/.dockerignore"
	plan <<'EOF'
FROM busybox
COPY src /app/
COPY src/*/*.c /cfiles/
COPY logs /logs
COPY x.txt /renamed
EOF
	steps
	run layer_of 1
	assert_output "$(cat <<'EOF'
drwxr-xr-x 0/0 app/
drwxr-xr-x 0/0 app/a/
-rw-r--r-- 0/0 app/a/one.c
drwxr-xr-x 0/0 app/b/
-rw-r--r-- 0/0 app/b/two.c
-rw-r--r-- 0/0 app/b/two.h
EOF
)"
	run layer_of 2
	assert_output "$(printf '%s\n' 'drwxr-xr-x 0/0 cfiles/' '-rw-r--r-- 0/0 cfiles/one.c' '-rw-r--r-- 0/0 cfiles/two.c')"
	run layer_of 3
	assert_output "$(printf '%s\n' 'drwxr-xr-x 0/0 logs/' '-rw-r--r-- 0/0 logs/keep.log')"
	run layer_of 4
	assert_output '-rw-r--r-- 0/0 renamed'
	# an ignored file is not there; several sources need a directory
	plan <<'EOF'
FROM busybox
COPY src/a/secret.key /
EOF
	run --separate-stderr -3 "$HYPR_EXEC" -q -C "$CTX" < "$T/res"
	assert_equal "$stderr" "hypr-exec: $CTX/Dockerfile:2: COPY src/a/secret.key /: src/a/secret.key: file not found in build context or excluded by .dockerignore"
	plan <<'EOF'
FROM busybox
COPY x.txt src/a/one.c /dst
EOF
	run --separate-stderr -3 "$HYPR_EXEC" -q -C "$CTX" < "$T/res"
	[[ $stderr == *"the destination must be a directory and end with a /" ]]
	# Dockerfile.dockerignore beside the Dockerfile replaces .dockerignore
	echo x.txt > "$CTX/Dockerfile.dockerignore"
	plan <<'EOF'
FROM busybox
COPY src/a/secret.key /
COPY x.txt /
EOF
	run --separate-stderr -3 "$HYPR_EXEC" -q -C "$CTX" < "$T/res"
	[[ $stderr == *"Dockerfile:3: COPY x.txt /: x.txt: file not found"* ]]
}

@test "exec: COPY --chown by name, --chmod, WORKDIR-relative dest, into an image symlink" {
	echo data > "$CTX/f"
	python3 -c 'import os, sys; os.setxattr(sys.argv[1], "user.note", b"kept")' "$CTX/f"
	mkdir -p "$CTX/d" "$CTX/root"
	echo x > "$CTX/d/x"
	ln -s usr/lib "$CTX/root/lib64"
	plan <<'EOF'
FROM busybox
WORKDIR /home/app
COPY --chown=app:nogroup --chmod=640 f d ./sub/
ARG ID=1234
COPY --chown=$ID f /n
COPY root/ /
COPY f /lib64/
EOF
	steps
	run layer_of 2
	assert_output "$(cat <<'EOF'
drwxr-xr-x 0/0 home/
drwxr-xr-x 1000/1000 home/app/
drw-r----- 1000/65534 home/app/sub/
-rw-r----- 1000/65534 home/app/sub/f
-rw-r----- 1000/65534 home/app/sub/x
EOF
)"
	run layer_of 4
	assert_output '-rw-r--r-- 1234/1234 n'
	# xattrs travel as pax records
	d=$(jq -rs '[.[] | select(.type == "step")][3].layer.digest' "$T/steps")
	run python3 -c 'import sys, tarfile; print(tarfile.open(sys.argv[1]).getmember("n").pax_headers["SCHILY.xattr.user.note"])' \
		"$HYPR_ROOT/blobs/sha256/${d#sha256:}"
	assert_output kept
	run layer_of 5
	assert_output 'lrwxrwxrwx 0/0 lib64 -> usr/lib'
	# the destination follows the image's own symlink
	run layer_of 6
	assert_output "$(printf '%s\n' 'drwxr-xr-x 0/0 usr/' 'drwxr-xr-x 0/0 usr/lib/' '-rw-r--r-- 0/0 usr/lib/f')"
	plan <<'EOF'
FROM busybox
COPY --chown=nosuchuser f /
EOF
	run --separate-stderr -3 "$HYPR_EXEC" -q -C "$CTX" < "$T/res"
	[[ $stderr == *": unable to find user nosuchuser" ]]
}

@test "exec: COPY sources stay inside the context (.., absolute, symlinks out)" {
	echo outside > "$T/secret"
	echo inside > "$CTX/secret"
	mkdir -p "$CTX/sub"
	ln -s ../../secret "$CTX/sub/up"
	ln -s /etc/passwd "$CTX/abs"
	mkdir -p "$CTX/etc"
	echo "ctx passwd" > "$CTX/etc/passwd"
	plan <<'EOF'
FROM busybox
COPY ../secret /a
COPY /secret /b
COPY sub/up /c
COPY abs /d
EOF
	steps
	for i in 1 2 3 4; do
		d=$(jq -rs "[.[] | select(.type == \"step\")][$((i - 1))].layer.digest" "$T/steps")
		tar -xOf "$HYPR_ROOT/blobs/sha256/${d#sha256:}"
	done > "$T/contents"
	assert_equal "$(cat "$T/contents")" "$(printf 'inside\ninside\ninside\nctx passwd')"
	rm "$CTX/secret"
	plan <<'EOF'
FROM busybox
COPY ../secret /a
EOF
	run --separate-stderr -3 "$HYPR_EXEC" -q -C "$CTX" < "$T/res"
	[[ $stderr == *"../secret: file not found in build context"* ]]
}

@test "exec: COPY of a context path longer than PATH_MAX fails naming it, never drops it" {
	python3 - "$CTX/deep" <<-'EOF'
	import os, sys
	os.mkdir(sys.argv[1])
	fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
	for _ in range(450):
	    os.mkdir("dddddddddd", dir_fd=fd)
	    nfd = os.open("dddddddddd", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
	    os.close(fd)
	    fd = nfd
	os.close(os.open("f", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
	EOF
	plan <<'EOF'
FROM busybox
COPY deep /x
EOF
	run --separate-stderr -3 "$HYPR_EXEC" -q -C "$CTX" < "$T/res"
	[[ $stderr == "hypr-exec: $CTX/Dockerfile:2: COPY deep /x: deep/dddddddddd/dddddddddd/"*"...: path too long ("*" bytes, the limit is 4095)" ]]
}

@test "exec: COPY --from an earlier stage keeps owners; heredoc COPY" {
	mkdir -p "$CTX/d"
	echo x > "$CTX/d/x"
	plan <<'EOF'
FROM busybox AS build
COPY --chown=app d /out/
FROM scratch
COPY --from=build /out /res
COPY --from=build /home/app /h/
ARG N=world
COPY <<EOT /note.txt
hello $N "q" \$N
EOT
COPY --from=busybox:latest /etc/group /bin/busybox /img/
EOF
	steps
	run jq -r 'select(.type == "stage") | "\(.index) \(.final) \(.base_layers | length)"' "$T/steps"
	assert_output "$(printf '0 false 1\n1 true 0')"
	run layer_of 2
	assert_output "$(printf '%s\n' 'drwxr-xr-x 1000/1000 res/' '-rw-r--r-- 1000/1000 res/x')"
	run layer_of 3
	assert_output 'drwxr-xr-x 1000/1000 h/'
	run layer_of 5
	assert_output '-rw-r--r-- 0/0 note.txt'
	d=$(jq -rs '[.[] | select(.type == "step")][4].layer.digest' "$T/steps")
	run tar -xOf "$HYPR_ROOT/blobs/sha256/${d#sha256:}"
	assert_output 'hello world "q" $N'
	# --from an image (resolved by hypr-fetch)
	run layer_of 6
	assert_output "$(printf '%s\n' 'drwxr-xr-x 0/0 img/' '-rwxr-xr-x 0/0 img/busybox' '-rw-r--r-- 0/0 img/group')"
}

@test "exec: ADD unpacks local tar archives (gzip, bzip2, xz, zstd) but copies other files" {
	mkdir -p "$T/a/dir"
	echo one > "$T/a/dir/one"
	ln -s one "$T/a/dir/link"
	tar -C "$T/a" --owner=7 --group=8 -czf "$CTX/a.tgz" dir
	tar -C "$T/a" -cjf "$CTX/a.tbz" dir
	tar -C "$T/a" -cJf "$CTX/a.txz" dir
	tar -C "$T/a" --zstd -cf "$CTX/a.tzst" dir
	echo "not an archive" > "$CTX/plain.gz"
	plan <<'EOF'
FROM busybox
ADD a.tgz /x/
ADD a.tbz a.txz /y/
ADD a.tzst /z
ADD plain.gz /p/
ADD --chown=app a.tgz /w
EOF
	steps
	run layer_of 1
	assert_output "$(cat <<'EOF'
drwxr-xr-x 0/0 x/
drwxr-xr-x 7/8 x/dir/
lrwxrwxrwx 7/8 x/dir/link -> one
-rw-r--r-- 7/8 x/dir/one
EOF
)"
	run layer_of 2
	assert_line 'lrwxrwxrwx 0/0 y/dir/link -> one'
	run layer_of 3
	assert_line '-rw-r--r-- 0/0 z/dir/one'
	run layer_of 4
	assert_output "$(printf '%s\n' 'drwxr-xr-x 0/0 p/' '-rw-r--r-- 0/0 p/plain.gz')"
	run layer_of 5
	assert_line '-rw-r--r-- 1000/1000 w/dir/one'
}

@test "exec: ADD refuses archives climbing out with .., keeps absolute names inside" {
	python3 - "$CTX" <<'EOF'
import io, sys, tarfile
def mk(path, names):
    with tarfile.open(path, "w:gz") as t:
        for n in names:
            i = tarfile.TarInfo(n); data = b"pwned\n"; i.size = len(data)
            t.addfile(i, io.BytesIO(data))
mk(sys.argv[1] + "/evil.tgz", ["ok", "../../etc/evil"])
mk(sys.argv[1] + "/abs.tgz", ["/etc/abs"])
EOF
	plan <<'EOF'
FROM busybox
ADD abs.tgz /dst/
EOF
	steps
	run layer_of 1
	assert_output "$(printf '%s\n' 'drwxr-xr-x 0/0 dst/' 'drwxr-xr-x 0/0 dst/etc/' '-rw-r--r-- 0/0 dst/etc/abs')"
	plan <<'EOF'
FROM busybox
ADD evil.tgz /dst/
EOF
	run --separate-stderr -3 "$HYPR_EXEC" -q -C "$CTX" < "$T/res"
	assert_equal "$stderr" "hypr-exec: $CTX/Dockerfile:2: ADD evil.tgz /dst/: evil.tgz: member '../../etc/evil' points outside the destination"
	[ ! -e /etc/evil ]
}

@test "exec: ADD follows a symlink of the archive inside the destination, never writes through it on the host" {
	python3 - "$CTX" <<-'EOF'
	import io, sys, tarfile
	def add(t, name, typ=tarfile.REGTYPE, link="", data=b"", mode=0o644):
	    ti = tarfile.TarInfo(name); ti.type = typ; ti.linkname = link; ti.mode = mode
	    ti.size = len(data); t.addfile(ti, io.BytesIO(data))
	with tarfile.open(sys.argv[1] + "/ok.tar", "w") as t:
	    add(t, "etc/", tarfile.DIRTYPE, mode=0o755)
	    add(t, "lnk", tarfile.SYMTYPE, "/etc")
	    add(t, "lnk/f", data=b"via\n")
	    add(t, "rel", tarfile.SYMTYPE, "../../etc")
	    add(t, "rel/g", data=b"rel\n")
	with tarfile.open(sys.argv[1] + "/dangling.tar", "w") as t:
	    add(t, "lnk", tarfile.SYMTYPE, "/etc")
	    add(t, "lnk/f", data=b"evil\n")
	with tarfile.open(sys.argv[1] + "/hl.tar", "w") as t:
	    add(t, "hl", tarfile.LNKTYPE, "/etc/passwd")
	EOF
	plan <<'EOF'
FROM busybox
ADD ok.tar /dst/
EOF
	steps
	run layer_of 1
	assert_output "$(cat <<'EOF'
drwxr-xr-x 0/0 dst/
drwxr-xr-x 0/0 dst/etc/
-rw-r--r-- 0/0 dst/etc/f
-rw-r--r-- 0/0 dst/etc/g
lrw-r--r-- 0/0 dst/lnk -> /etc
lrw-r--r-- 0/0 dst/rel -> ../../etc
EOF
)"
	# the link points nowhere in the archive: refused (Docker fails too)
	plan <<'EOF'
FROM busybox
ADD dangling.tar /dst/
EOF
	run --separate-stderr -3 "$HYPR_EXEC" -q -C "$CTX" < "$T/res"
	assert_equal "$stderr" "hypr-exec: $CTX/Dockerfile:2: ADD dangling.tar /dst/: dangling.tar: member 'lnk/f': a symlink in its path leads to '/etc', which is not a directory in the archive"
	[ ! -e /etc/f ]
	# a hard link to a member that is not there names the target as written
	plan <<'EOF'
FROM busybox
ADD hl.tar /dst/
EOF
	run --separate-stderr -3 "$HYPR_EXEC" -q -C "$CTX" < "$T/res"
	assert_equal "$stderr" "hypr-exec: $CTX/Dockerfile:2: ADD hl.tar /dst/: hl.tar: member 'hl': hard link target '/etc/passwd' is not in the archive before it"
}

@test "exec: file names that are not UTF-8 are copied as bytes; error lines escape them" {
	mkdir -p "$CTX/d"
	touch "$CTX/d/$(printf 'bad\377name')"
	echo hi > "$CTX/$(printf 'caf\351')"
	plan <<'EOF'
FROM busybox
COPY d caf* /x/
FROM busybox
COPY --from=0 /x /z
EOF
	steps
	run layer_of 1
	assert_output "$(printf '%s\n' 'drwxr-xr-x 0/0 x/' '-rw-r--r-- 0/0 x/bad\377name' '-rw-r--r-- 0/0 x/caf\351')"
	run layer_of 2
	assert_output "$(printf '%s\n' 'drwxr-xr-x 0/0 z/' '-rw-r--r-- 0/0 z/bad\377name' '-rw-r--r-- 0/0 z/caf\351')"
	python3 - "$CTX" <<-'EOF'
	import io, sys, tarfile
	def one(path, name, **kw):
	    with tarfile.open(sys.argv[1] + "/" + path, "w", **kw) as t:
	        ti = tarfile.TarInfo(name); ti.size = 1; t.addfile(ti, io.BytesIO(b"x"))
	one("up.tar", "../\xff\x01", format=tarfile.GNU_FORMAT, encoding="latin-1")
	one("bytes.tar", "\xffx", format=tarfile.GNU_FORMAT, encoding="latin-1")
	one("utf8.tar", "caf\u00e9", format=tarfile.PAX_FORMAT)
	EOF
	# archives whose names are bytes or UTF-8 pax are unpacked, not copied
	plan <<'EOF'
FROM busybox
ADD bytes.tar utf8.tar /a/
EOF
	steps
	LC_ALL=C.UTF-8 run layer_of 1
	assert_output "$(printf '%s\n' 'drwxr-xr-x 0/0 a/' '-rw-r--r-- 0/0 a/café' '-rw-r--r-- 0/0 a/\377x')"
	plan <<'EOF'
FROM busybox
ADD up.tar /dst/
EOF
	run --separate-stderr -3 "$HYPR_EXEC" -q -C "$CTX" < "$T/res"
	assert_equal "$stderr" "hypr-exec: $CTX/Dockerfile:2: ADD up.tar /dst/: up.tar: member '../\\xff\\x01' points outside the destination"
}

@test "exec: ADD a URL over HTTP: mode 600, --checksum verified" {
	requires python3
	mkdir -p "$T/www"
	echo "served" > "$T/www/file.txt"
	sum=$(sha256sum "$T/www/file.txt" | cut -d' ' -f1)
	python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$T/www" > "$T/http.log" 2>&1 &
	HTTP_PID=$!
	for _ in $(seq 50); do
		port=$(grep -o 'port [0-9]*' "$T/http.log" | cut -d' ' -f2) && [ -n "$port" ] && break
		sleep 0.1
	done
	plan <<EOF
FROM busybox
ADD http://127.0.0.1:$port/file.txt /dl/
ADD --checksum=sha256:$sum --chmod=644 http://127.0.0.1:$port/file.txt?x=1 /named
EOF
	steps
	run layer_of 1
	assert_output "$(printf '%s\n' 'drwxr-xr-x 0/0 dl/' '-rw------- 0/0 dl/file.txt')"
	run layer_of 2
	assert_output '-rw-r--r-- 0/0 named'
	plan <<EOF
FROM busybox
ADD --checksum=sha256:$(printf '0%.0s' $(seq 64)) http://127.0.0.1:$port/file.txt /bad
EOF
	run --separate-stderr -3 "$HYPR_EXEC" -q -C "$CTX" < "$T/res"
	[[ $stderr == *"checksum mismatch: expected sha256:000"* ]]
	plan <<EOF
FROM busybox
ADD http://127.0.0.1:$port/missing /m
EOF
	run --separate-stderr -4 "$HYPR_EXEC" -q -C "$CTX" < "$T/res"
	assert_equal "$stderr" "hypr-exec: $CTX/Dockerfile:2: ADD http://127.0.0.1:$port/missing /m: http://127.0.0.1:$port/missing: download failed: HTTP 404"
}

@test "exec: cache keys: hits after hypr-layer records them, source and arg changes miss, --no-cache" {
	echo v1 > "$CTX/f"
	echo same > "$CTX/g"
	plan --build-arg V=1 <<'EOF'
FROM busybox
ARG V
ENV E=$V
COPY f /f
COPY g /g
EOF
	steps
	assert_cached false false false false
	record_cache
	k1=$(jq -r 'select(.type=="step") | .key' "$T/steps")
	steps
	assert_cached true true true true
	assert_equal "$(jq -r 'select(.type=="step") | .key' "$T/steps")" "$k1"
	# mtime alone does not matter; content does, and everything after it
	touch -d '2001-01-01' "$CTX/f"
	steps
	assert_cached true true true true
	echo v2 > "$CTX/f"
	steps
	assert_cached true true false false
	steps --no-cache
	assert_cached false false false false
	# a different build-arg value changes the keys from the ARG on
	plan --build-arg V=2 <<'EOF'
FROM busybox
ARG V
ENV E=$V
COPY f /f
COPY g /g
EOF
	steps
	assert_cached false false false false
}

@test "exec: ONBUILD triggers of the base run after FROM and are not inherited" {
	echo t > "$CTX/t"
	plan <<'EOF'
FROM busybox AS base
ONBUILD COPY t /from-trigger
ONBUILD ENV T=1
FROM base
LABEL x=y
EOF
	steps
	run jq -r 'select(.type=="step" and .stage==1) | "\(.op) \(.created_by)"' "$T/steps"
	assert_output "$(printf '%s\n' 'COPY COPY t /from-trigger' 'ENV ENV T=1' 'LABEL LABEL x=y')"
	run jq -c '.OnBuild' <<< "$(final_config)"
	assert_output null
}

@test "exec: progress as hypr-events(5) records on HYPR_EVENTS_FD, the same as lines without it" {
	echo t > "$CTX/t"
	plan <<'EOF'
FROM busybox AS base
ONBUILD ENV T=1
COPY t /t
FROM base
LABEL x=y
EOF
	# without the channel: the human lines on stderr
	run --separate-stderr -0 "$HYPR_EXEC" -C "$CTX" < "$T/res"
	assert_equal "$(sed 's/DONE [0-9.]*s$/DONE/' <<<"$stderr")" "#1 [base 1/2] ONBUILD ENV T=1
#1 DONE
#2 [base 2/2] COPY t /t
#2 DONE
#3 [1/2] ENV T=1
#3 DONE
#4 [2/2] LABEL x=y
#4 DONE"
	# with it: records there (the plan's step count, then the trigger's
	# step added), nothing on stderr
	run --separate-stderr -0 sh -c 'HYPR_EVENTS_FD=3 "$1" -C "$2" < "$3" 3> "$4"' sh \
		"$HYPR_EXEC" "$CTX" "$T/res" "$T/events"
	[ -z "$stderr" ]
	run -0 jq -c 'del(.seconds)' "$T/events"
	assert_output '{"hypr":"events","version":1,"stage":"exec"}
{"event":"plan","stage":"exec","steps":3}
{"event":"step","stage":"exec","n":1,"name":"base","pos":1,"count":2,"line":[2,2],"text":"ONBUILD ENV T=1"}
{"event":"done","stage":"exec","n":1}
{"event":"step","stage":"exec","n":2,"name":"base","pos":2,"count":2,"line":[3,3],"text":"COPY t /t"}
{"event":"done","stage":"exec","n":2}
{"event":"plan","stage":"exec","steps":4}
{"event":"step","stage":"exec","n":3,"pos":1,"count":2,"line":[4,4],"text":"ENV T=1"}
{"event":"done","stage":"exec","n":3}
{"event":"step","stage":"exec","n":4,"pos":2,"count":2,"line":[5,5],"text":"LABEL x=y"}
{"event":"done","stage":"exec","n":4}'
	# an error: its line on stderr, and a record with its exit status
	plan <<'EOF'
FROM busybox
STOPSIGNAL SIGBOGUS
EOF
	run --separate-stderr -3 sh -c 'HYPR_EVENTS_FD=3 "$1" -C "$2" < "$3" 3> "$4"' sh \
		"$HYPR_EXEC" "$CTX" "$T/res" "$T/events"
	[[ $stderr == "hypr-exec: $CTX/Dockerfile:2: STOPSIGNAL SIGBOGUS: "* ]]
	run -0 jq -r 'select(.event == "error") | "\(.code) hypr-exec: \(.text)"' "$T/events"
	assert_output "3 $stderr"
}

@test "exec: STOPSIGNAL is checked as BuildKit's ParseSignal" {
	local s
	for s in SIGTERM term 9 64 SIGRTMIN+3 rtmax-14 RTMAX; do
		printf 'FROM busybox\nSTOPSIGNAL %s\n' "$s" | plan
		steps
		assert_equal "$(final_config | jq -r .StopSignal)" "$s"
	done
	for s in SIGFOO 0 65 -1 SIG RTMIN+16 RTMAX-15 RTMIN+0 9x; do
		printf 'FROM busybox\nSTOPSIGNAL %s\n' "$s" | plan
		run --separate-stderr -3 "$HYPR_EXEC" -q -C "$CTX" < "$T/res"
		assert_equal "$stderr" "hypr-exec: $CTX/Dockerfile:2: STOPSIGNAL $s: invalid signal"
	done
	printf 'FROM busybox\nARG S=SIGBAR\nSTOPSIGNAL $S\n' | plan
	run --separate-stderr -3 "$HYPR_EXEC" -q -C "$CTX" < "$T/res"
	assert_equal "$stderr" "hypr-exec: $CTX/Dockerfile:3: STOPSIGNAL \$S: invalid signal 'SIGBAR'"
}

@test "exec: an error on a huge instruction clips the instruction, not the reason" {
	# in lines BuildKit can read (under 64 KiB), joined by continuations
	{ echo 'FROM busybox'; printf 'ENV A=%s\n' "$(head -c 100000 /dev/zero | sed 's/\x0/${A:-/g')x$(head -c 100000 /dev/zero | tr '\0' '}')" |
		fold -w 60000 | sed '$!s/$/\\/'; } | plan
	run --separate-stderr -3 "$HYPR_EXEC" -q -C "$CTX" < "$T/res"
	[[ $stderr == "hypr-exec: $CTX/Dockerfile:2: ENV A=\${A:-\${A:-"*'...: failed to process "${A:-'*'...": syntax error: nested deeper than 1000 levels' ]]
	[ "${#stderr}" -lt 1024 ]
	[ "$(wc -l <<< "$stderr")" = 1 ]
}

# bats test_tags=vm
@test "exec: RUN in the VM: forms, heredoc, env, whiteouts, opaque dirs, links, USER, WORKDIR, no network" {
	plan <<'EOF'
FROM busybox
ARG SECRET=s3
ENV E=env
RUN echo "shell $E $SECRET"; echo to-stderr >&2
RUN ["/bin/echo", "exec", "$E"]
RUN <<EOT
echo heredoc $E
mkdir -p /opq/keep
echo a > /opq/old
EOT
RUN rm -rf /opq && mkdir /opq && echo n > /opq/new && rm /bin/vi
RUN cp /bin/busybox /sbin/su2 && chmod 4755 /sbin/su2 && echo h > /h1 && ln /h1 /h2 && ln -s h1 /s1
RUN setsid sleep 1000 & echo started
RUN ls /sys/class/net; nc -w 2 10.0.2.2 80 </dev/null || echo no network
USER app
WORKDIR w
RUN id -u; pwd; touch mine
EOF
	run --separate-stderr -0 "$HYPR_EXEC" -C "$CTX" < "$T/res"
	printf '%s\n' "$output" > "$T/steps"
	grep -v '^#[0-9]* \[' <<< "$stderr" | grep -v 'DONE\|CACHED' > "$T/log"
	run cat "$T/log"
	assert_line '#3 shell env s3'
	assert_line '#3 to-stderr'
	assert_line '#4 exec $E'
	assert_line '#5 heredoc env'
	assert_line '#8 started'
	assert_line '#9 lo'
	assert_line '#9 no network'
	assert_line '#12 1000'
	assert_line '#12 /w'
	refute_line --partial 'Segmentation'
	# ARG values reach RUN but not the image config
	run jq -c .Env <<< "$(final_config)"
	assert_output '["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","E=env"]'
	run layer_of 6
	assert_line --partial 'bin/.wh.vi'
	assert_line --partial 'opq/.wh..wh..opq'
	assert_line --partial 'opq/new'
	refute_line --partial 'opq/old'
	run layer_of 7
	assert_line '-rwsr-xr-x 0/0 sbin/su2'
	assert_line 'hrw-r--r-- 0/0 h2 link to h1'
	assert_line --regexp '^lrwx.* 0/0 s1 -> h1$'
	run layer_of 8
	assert_output 'no layer'
	run layer_of 12
	assert_line '-rw-r--r-- 1000/1000 w/mine'
	run jq -c 'select(.end) | .vm_boots' "$T/steps"
	assert_output 1
}

# bats test_tags=vm
@test "exec: a failing RUN stops with its line and exit code, nothing half-written" {
	plan <<'EOF'
FROM busybox
RUN echo before
RUN echo doomed; \
    exit 7
RUN echo never
EOF
	run --separate-stderr -1 "$HYPR_EXEC" -q -C "$CTX" < "$T/res"
	assert_equal "$(tail -n 1 <<< "$stderr")" "hypr-exec: $CTX/Dockerfile:3: RUN echo doomed;     exit 7: exit code 7"
	[[ $stderr == *"#2 doomed"* ]]
	[[ $stderr != *never* ]]
	printf '%s\n' "$output" > "$T/steps"
	run jq -c 'select(.type) | .type' "$T/steps"
	assert_output "$(printf '"stage"\n"step"')"
	run jq -c 'select(.end)' "$T/steps"
	assert_output ''
}

# bats test_tags=vm
@test "exec: a RUN that never ends hits HYPR_STEP_TIMEOUT" {
	plan <<'EOF'
FROM busybox
RUN sleep 600
EOF
	SECONDS=0
	HYPR_STEP_TIMEOUT=3 run --separate-stderr -1 "$HYPR_EXEC" -q -C "$CTX" < "$T/res"
	[ "$SECONDS" -lt 60 ]
	[[ $stderr == "hypr-exec: $CTX/Dockerfile:2: RUN sleep 600: "* ]]
	[[ $stderr == *time* ]]
}

# bats test_tags=vm
@test "exec: SIGKILL of the stream reader stops the RUN and its VM at once" {
	plan <<'EOF'
FROM busybox
RUN echo sta""rted; sleep 600
EOF
	# as `... | hypr-exec | hypr-layer` with hypr-layer killed
	{ "$HYPR_EXEC" -q -C "$CTX" < "$T/res" 2> "$T/err" || echo $? > "$T/rc"; } | sleep 900 &
	local reader=$! i
	for i in $(seq 1200); do grep -q '^#1 started' "$T/err" && break; sleep 0.5; done
	grep -q '^#1 started' "$T/err"
	SECONDS=0
	kill -KILL "$reader"
	for i in $(seq 100); do [ -s "$T/rc" ] && break; sleep 0.1; done
	[ "$SECONDS" -lt 10 ]
	assert_equal "$(cat "$T/rc")" 4
	assert_equal "$(tail -n 1 "$T/err")" "hypr-exec: $CTX/Dockerfile:2: RUN echo sta\"\"rted; sleep 600: build VM: step 1: the reader of fd 1 is gone (VM killed)"
	run -1 pgrep -f "qemu.*$HYPR_ROOT"
}

# bats test_tags=vm
@test "exec: a cached rebuild boots no VM; a change after a RUN boots one and imports cached layers" {
	echo 1 > "$CTX/a"
	echo 1 > "$CTX/b"
	plan <<'EOF'
FROM busybox
COPY a /a
RUN cat /a > /from-run
COPY b /b
RUN cat /a /from-run /b
EOF
	steps
	record_cache
	run jq -c 'select(.end) | .vm_boots' "$T/steps"
	assert_output 1
	run --separate-stderr -0 "$HYPR_EXEC" -C "$CTX" < "$T/res"
	printf '%s\n' "$output" > "$T/steps"
	run jq -c 'select(.end) | .vm_boots' "$T/steps"
	assert_output 0
	assert_cached true true true true
	[[ $stderr != *"#4 1"* ]]
	echo 2 > "$CTX/b"
	run --separate-stderr -0 "$HYPR_EXEC" -C "$CTX" < "$T/res"
	printf '%s\n' "$output" > "$T/steps"
	assert_cached true true false false
	run jq -c 'select(.end) | .vm_boots' "$T/steps"
	assert_output 1
	[[ $stderr == *"#4 1"$'\n'"#4 1"$'\n'"#4 2"* ]]
	# a miss after the stage's last RUN launches no VM (the boot is
	# started early only for a RUN still to come)
	plan <<'EOF'
FROM busybox
COPY a /a
RUN cat /a > /from-run
COPY b /b
EOF
	steps
	assert_cached true true false
	run jq -c 'select(.end) | .vm_boots' "$T/steps"
	assert_output 0
}

# bats test_tags=vm
@test "exec: the VM boots at the first cache miss; with --no-cache at the stage's start, before a COPY hashes its sources" {
	echo 1 > "$CTX/a"
	plan <<'EOF'
FROM busybox
COPY a /a
RUN cat /a
EOF
	HYPR_EXEC_DEBUG=1 run --separate-stderr -0 "$HYPR_EXEC" -C "$CTX" < "$T/res"
	assert_equal "$(grep -v -e 'DONE' -e 'run+diff' <<<"$stderr")" "#1 [1/2] COPY a /a
#1 build VM launched
#2 [2/2] RUN cat /a
#2 1"
	HYPR_EXEC_DEBUG=1 run --separate-stderr -0 "$HYPR_EXEC" --no-cache -C "$CTX" < "$T/res"
	assert_equal "$(grep -v -e 'DONE' -e 'run+diff' <<<"$stderr")" "hypr-exec: build VM launched
#1 [1/2] COPY a /a
#2 [2/2] RUN cat /a
#2 1"
	# a stage with no RUN boots none, --no-cache or not
	plan <<'EOF'
FROM busybox
COPY a /a
EOF
	HYPR_EXEC_DEBUG=1 run --separate-stderr -0 "$HYPR_EXEC" --no-cache -C "$CTX" < "$T/res"
	[[ $stderr != *"build VM"* ]]
}

@test "exec: COPY into an existing directory without a slash; bad EXPOSE is bad input" {
	echo f > "$CTX/f"
	plan <<'EOF'
FROM busybox
COPY f /tmp
COPY f /newname
EOF
	steps
	run layer_of 1
	assert_output "$(printf '%s\n' 'drwxrwxrwt 0/0 tmp/' '-rw-r--r-- 0/0 tmp/f')"
	run layer_of 2
	assert_output '-rw-r--r-- 0/0 newname'
	plan <<'EOF'
FROM busybox
EXPOSE 80/tcp 70000
EOF
	run --separate-stderr -3 "$HYPR_EXEC" -q -C "$CTX" < "$T/res"
	assert_equal "$stderr" "hypr-exec: $CTX/Dockerfile:2: EXPOSE 80/tcp 70000: invalid port '70000'"
}

@test "exec: with SOURCE_DATE_EPOCH host-built layers are byte-identical across builds" {
	mkdir -p "$CTX/d"
	echo a > "$CTX/d/a"
	plan <<'EOF'
FROM busybox
WORKDIR /w/x
COPY d /deep/er/
ADD d/a /added
EOF
	SOURCE_DATE_EPOCH=1000 steps --no-cache
	jq -r 'select(.type == "step") | .layer.digest' "$T/steps" > "$T/one"
	touch "$CTX/d/a"
	sleep 1
	SOURCE_DATE_EPOCH=1000 steps --no-cache
	jq -r 'select(.type == "step") | .layer.digest' "$T/steps" > "$T/two"
	diff -u "$T/one" "$T/two"
	run layer_of 2
	assert_output "$(printf '%s\n' 'drwxr-xr-x 0/0 deep/' 'drwxr-xr-x 0/0 deep/er/' '-rw-r--r-- 0/0 deep/er/a')"
	d=$(jq -rs '[.[] | select(.type == "step")][1].layer.digest' "$T/steps")
	run tar --full-time -tvf "$HYPR_ROOT/blobs/sha256/${d#sha256:}"
	assert_line --partial '1970-01-01 00:16:40 deep/er/a'
}

@test "exec: COPY --exclude (repeatable), ADD --exclude and COPY --parents (with a ./ pivot)" {
	mkdir -p "$CTX/x/y" "$CTX/z"
	echo a > "$CTX/x/y/a.txt"
	echo b > "$CTX/x/y/b.log"
	echo c > "$CTX/z/c.txt"
	echo d > "$CTX/z/d.md"
	plan <<'EOF2'
FROM busybox
COPY --exclude=*.log x/y /noexc/
COPY --exclude=**/*.txt --exclude=*.md z x /two/
ADD --exclude=*.txt z /added/
COPY --parents x/y/a.txt z/c.txt /par/
COPY --parents ./x/./y/a.txt /piv
EOF2
	steps
	run layer_of 1
	assert_output "$(printf '%s\n' 'drwxr-xr-x 0/0 noexc/' '-rw-r--r-- 0/0 noexc/a.txt')"
	run layer_of 2
	assert_output "$(printf '%s\n' 'drwxr-xr-x 0/0 two/' 'drwxr-xr-x 0/0 two/y/' '-rw-r--r-- 0/0 two/y/b.log')"
	run layer_of 3
	assert_output "$(printf '%s\n' 'drwxr-xr-x 0/0 added/' '-rw-r--r-- 0/0 added/d.md')"
	run layer_of 4
	assert_output "$(printf '%s\n' 'drwxr-xr-x 0/0 par/' 'drwxr-xr-x 0/0 par/x/' 'drwxr-xr-x 0/0 par/x/y/' '-rw-r--r-- 0/0 par/x/y/a.txt' 'drwxr-xr-x 0/0 par/z/' '-rw-r--r-- 0/0 par/z/c.txt')"
	run layer_of 5
	assert_output "$(printf '%s\n' 'drwxr-xr-x 0/0 piv/' 'drwxr-xr-x 0/0 piv/y/' '-rw-r--r-- 0/0 piv/y/a.txt')"
	# the patterns are in the key: another pattern is another layer
	sed -i 's/--exclude=\*.log/--exclude=*.txt/' "$CTX/Dockerfile"
	"$HYPR_PARSE" -f "$CTX/Dockerfile" > "$T/plan"
	"$HYPR_FETCH" --pull=never < "$T/plan" > "$T/res"
	steps
	run layer_of 1
	assert_output "$(printf '%s\n' 'drwxr-xr-x 0/0 noexc/' '-rw-r--r-- 0/0 noexc/b.log')"
}
