#!/usr/bin/env bats
# The build VM for real (QEMU microvm, TCG here): hypr-init + lib/vm.c,
# driven through hypr-vmctl (tools/hypr-vmctl.c). One VM boot per test (~1.5 s).
# bats file_tags=vm

load helpers

setup_file() {
	local layout blob
	layout=$(busybox_layout)
	export BASE_TAR="$BATS_FILE_TMPDIR/base.tar" BASE="$BATS_FILE_TMPDIR/base.sqfs"
	blob=$(jq -r '.manifests[0].digest' "$layout/index.json")
	blob=$(jq -r '.layers[0].digest' "$layout/blobs/sha256/${blob#sha256:}")
	zcat "$layout/blobs/sha256/${blob#sha256:}" > "$BASE_TAR"
	tar2sqfs -q -f -c gzip "$BASE" < "$BASE_TAR" >/dev/null
}

setup() {
	VMCTL=${HYPR_VMCTL:-${HYPR_BIN:-$HYPR_SRC/build/bin}/hypr-vmctl}
	# private temp dir: lets a test look for QEMU processes left behind
	export TMPDIR="$BATS_TEST_TMPDIR"
	export HYPR_ROOT="$BATS_TEST_TMPDIR/root"
	export HYPR_ACCEL=${HYPR_ACCEL:-tcg}
}

vm() {
	"$VMCTL" -b "$BASE" "$@"
}

# tar listing "mode uid/gid name[ -> target]" via python (PAX aware)
tarls() {
	python3 - "$1" <<'PY'
import sys, tarfile
for m in tarfile.open(sys.argv[1]):
    x = ' '.join(f'{k}={v}' for k, v in sorted(m.pax_headers.items()) if k.startswith('SCHILY.xattr'))
    t = {tarfile.SYMTYPE: ' -> ' + m.linkname, tarfile.LNKTYPE: ' link ' + m.linkname}.get(m.type, '')
    print(f'{m.type.decode()} {m.mode:04o} {m.uid}:{m.gid} {m.mtime} {m.name}{t} {x}'.rstrip())
PY
}

# bats test_tags=vm
@test "vm: shell and exec forms, env, exit status, live output" {
	run --separate-stderr -0 vm sh 'echo out; echo err >&2' \; \
		run -e A=1 -e 'B=two words' -- /bin/sh -c 'echo "$A|$B"' \; \
		run /bin/echo exec form \; sh 'seq 1 100000 | tail -n 1'
	assert_equal "$output" "$(printf 'out\n1|two words\nexec form\n100000')"
	assert_equal "$stderr" "err"
	run -3 vm sh 'exit 3'
	run -127 vm run /no/such/binary
	[[ $output == *"exec /no/such/binary"* ]]
}

# bats test_tags=vm
@test "vm: big output is streamed whole" {
	run -0 vm sh 'seq 1 300000'
	assert_equal "${#lines[@]}" 300000
	assert_equal "${lines[299999]}" 300000
}

# bats test_tags=vm
@test "vm: deleting a base file gives a whiteout, a replaced dir is opaque" {
	run -0 vm sh 'rm /bin/ls; rm -rf /home/app; mkdir /home/app; touch /home/app/new' \
		\; diff "$BATS_TEST_TMPDIR/d.tar"
	run -0 tarls "$BATS_TEST_TMPDIR/d.tar"
	assert_line --regexp '^0 0600 0:0 [0-9]+ bin/\.wh\.ls$'
	assert_line --regexp '^5 0755 0:0 [0-9]+ home/app$'
	assert_line --regexp '^0 0755 0:0 [0-9]+ home/app/\.wh\.\.wh\.\.opq$'
	assert_line --regexp '^0 0644 0:0 [0-9]+ home/app/new$'
	refute_output --partial 'overlay'
}

# bats test_tags=vm
@test "vm: setuid, hard links, symlinks, owners survive; names sorted; mtimes clamped" {
	run -0 vm sh 'mkdir /z; cp /bin/busybox /z/su; chmod 4755 /z/su; echo a > /z/b;
		ln /z/b /z/a; ln -s ../etc/passwd /z/c; chown 1000:1000 /z/b; mknod /z/p p' \
		\; diff "$BATS_TEST_TMPDIR/d.tar" 0
	run -0 tarls "$BATS_TEST_TMPDIR/d.tar"
	# a symlink is 0777, as on any Linux host (Docker's layers too)
	assert_output "5 0755 0:0 0 z
0 0644 1000:1000 0 z/a
1 0644 1000:1000 0 z/b link z/a
2 0777 0:0 0 z/c -> ../etc/passwd
6 0644 0:0 0 z/p
0 4755 0:0 0 z/su"
}

# bats test_tags=vm
@test "vm: diff content is byte exact across buffer boundaries" {
	run -0 vm sh 'mkdir /d; cd /d; for n in 0 1 511 512 1048575 1048576 1048577 3000001; do
		head -c $n /dev/urandom > f$n; done; sha256sum f*' \; diff "$BATS_TEST_TMPDIR/d.tar"
	local want=$output
	mkdir "$BATS_TEST_TMPDIR/x"
	tar -C "$BATS_TEST_TMPDIR/x" -xf "$BATS_TEST_TMPDIR/d.tar"
	run -0 sh -c "cd '$BATS_TEST_TMPDIR/x/d' && sha256sum f*"
	assert_output "$want"
}

# bats test_tags=vm
@test "vm: user.* xattrs survive import, copy-up and diff" {
	python3 - "$BATS_TEST_TMPDIR/x.tar" <<'PY'
import io, sys, tarfile
t = tarfile.open(sys.argv[1], 'w', format=tarfile.PAX_FORMAT)
d = tarfile.TarInfo('opt'); d.type = tarfile.DIRTYPE; d.mode = 0o755; t.addfile(d)
f = tarfile.TarInfo('opt/x'); f.size = 3; f.mode = 0o644
f.pax_headers = {'SCHILY.xattr.user.foo': 'bar'}
t.addfile(f, io.BytesIO(b'hi\n'))
t.close()
PY
	run -0 vm import "$BATS_TEST_TMPDIR/x.tar" \; sh 'cat /opt/x; chmod 600 /opt/x' \
		\; diff "$BATS_TEST_TMPDIR/d.tar"
	assert_output "hi"
	run -0 tarls "$BATS_TEST_TMPDIR/d.tar"
	assert_line --regexp '^0 0600 0:0 [0-9]+ opt/x SCHILY.xattr.user.foo=bar$'
}

# bats test_tags=vm
@test "vm: USER by name, uid:gid, supplementary groups; unknown user fails" {
	run -0 vm sh 'echo "wheel:x:10:root,app" >> /etc/group' \
		\; run -u app id \; run -u 1000:65534 id \; run -u 4242 id -u \; run -u app:wheel id
	assert_line --index 0 "uid=1000(app) gid=1000(app) groups=10(wheel),1000(app)"
	assert_line --index 1 "uid=1000(app) gid=65534(nogroup) groups=65534(nogroup)"
	assert_line --index 2 "4242"
	assert_line --index 3 "uid=1000(app) gid=10(wheel) groups=10(wheel)"
	run -125 vm run -u nosuchuser id
	assert_output --partial "unable to find user nosuchuser"
}

# bats test_tags=vm
@test "vm: WORKDIR is created, HOME and PATH defaulted" {
	run -0 vm run -u app -w /work/a/b -- sh -c 'pwd; echo $HOME; echo $PATH; ls -ld /work/a/b' \
		\; diff "$BATS_TEST_TMPDIR/d.tar"
	assert_line --index 0 /work/a/b
	assert_line --index 1 /home/app
	assert_line --index 2 /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
	run -0 tarls "$BATS_TEST_TMPDIR/d.tar"
	assert_line --regexp '^5 0755 0:0 [0-9]+ work/a/b$'
}

# bats test_tags=vm
@test "vm: a background process is killed after its step; the next step works" {
	run -0 vm sh 'sleep 1000 & echo started' \; sh 'ps -o args | grep -c "[s]leep 1000"; true' \
		\; sh 'echo next'
	assert_output "started
0
next"
}

# bats test_tags=vm
@test "vm: no network, only lo; minimal /dev; hosts files stay out of the layer" {
	run -0 vm sh 'ls /sys/class/net; ip route; ls /dev | tr "\n" " "; echo;
		echo 10.0.0.1 x >> /etc/hosts; hostname; cat /etc/hostname' \; diff "$BATS_TEST_TMPDIR/d.tar"
	assert_line --index 0 lo
	assert_line --index 1 "fd full null ptmx pts random shm stderr stdin stdout tty urandom zero "
	assert_line --index 2 hypr
	assert_line --index 3 hypr
	run -0 tarls "$BATS_TEST_TMPDIR/d.tar"
	refute_output --partial hosts
}

# bats test_tags=vm
@test "vm: a step cannot reach the build's disks: nodev, no chroot escape, read-only kernel knobs" {
	local t=$BATS_TEST_TMPDIR
	mkdir -p "$t/x/bin"
	# the classic chroot escape (CAP_SYS_CHROOT is Docker's), then a look
	# for the agent's root: its /init, its layers /L, its devtmpfs disks
	cat > "$t/esc.c" <<'C'
#include <dirent.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
int main(void) {
	DIR *d;
	struct dirent *de;
	mkdir("/esc", 0755);
	if (chroot("/esc") < 0) { perror("chroot"); return 1; }
	for (int i = 0; i < 64; i++) chdir("..");
	chroot(".");
	if (!(d = opendir("/"))) return 1;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.') printf("%s ", de->d_name);
	printf("\n");
	return 0;
}
C
	gcc -static -O1 -o "$t/x/bin/esc" "$t/esc.c"
	tar -C "$t/x" -cf "$t/x.tar" bin/esc
	run -0 vm import "$t/x.tar" \; sh '/bin/esc | tr " " "\n" | sort | tr "\n" " "; echo
		ls /sys/class/net
		mknod /tmp/vd b 254 0 && { head -c 1 /tmp/vd >/dev/null 2>&1 && echo disk read || echo disk refused; }
		mknod /dev/vd b 254 16 && { head -c 1 /dev/vd >/dev/null 2>&1 && echo dev disk read || echo dev disk refused; }
		{ echo 1 > /proc/sys/vm/drop_caches; } 2>/dev/null && echo sysctl written || echo sysctl refused
		{ echo c > /proc/sysrq-trigger; } 2>/dev/null && echo sysrq written || echo sysrq refused
		echo x > /dev/null && echo null ok'
	assert_line --index 0 " bin dev esc etc home linuxrc proc root sbin sys tmp usr var "
	assert_line --index 1 lo
	assert_line --index 2 "disk refused"
	assert_line --index 3 "dev disk refused"
	assert_line --index 4 "sysctl refused"
	assert_line --index 5 "sysrq refused"
	assert_line --index 6 "null ok"
}

# bats test_tags=vm
@test "vm: RUN gets Docker's default capabilities: no mount, no reboot" {
	run -0 vm sh 'grep -E "^Cap(Eff|Bnd|Inh)" /proc/self/status; mkdir /m;
		mount -t tmpfs x /m 2>/dev/null || echo mount refused; reboot -f 2>/dev/null || echo reboot refused;
		mknod /tmp/n c 1 3 && chown 1000 /tmp/n && echo mknod chown ok'
	assert_output "CapInh:	0000000000000000
CapEff:	00000000a80425fb
CapBnd:	00000000a80425fb
mount refused
reboot refused
mknod chown ok"
}

# bats test_tags=vm
@test "vm: guest clock follows the host" {
	run -0 vm run date +%s
	(( output - $(date +%s) < 3 && $(date +%s) - output < 3 ))
}

# bats test_tags=vm
@test "vm: a step that never ends is killed at its timeout with the VM" {
	local t0=$SECONDS
	run -1 vm run -t 2 sleep 100
	assert_output --partial "step timed out after 2s"
	(( SECONDS - t0 < 20 ))
	run -1 pgrep -f "$BATS_TEST_TMPDIR"
}

# bats test_tags=vm
@test "vm: a gone stdout reader stops the step at once; SIGKILL of the caller kills QEMU" {
	local t0=$SECONDS
	# head exits after the first line; the step would sleep 60 s more
	run -0 bash -c '"$1" -b "$2" sh "echo start; sleep 60; echo end" 2>"$3" | head -n 1' \
		_ "$VMCTL" "$BASE" "$BATS_TEST_TMPDIR/err"
	assert_output "start"
	(( SECONDS - t0 < 20 ))
	grep -q "reader of fd 1 is gone (VM killed)" "$BATS_TEST_TMPDIR/err"
	run -1 pgrep -f "$BATS_TEST_TMPDIR"
	# PR_SET_PDEATHSIG: QEMU dies with its caller, whatever kills it
	"$VMCTL" -b "$BASE" sh 'echo up; sleep 60' > "$BATS_TEST_TMPDIR/out" 2>&1 &
	local pid=$!
	for _ in $(seq 100); do grep -q up "$BATS_TEST_TMPDIR/out" && break; sleep 0.2; done
	grep -q up "$BATS_TEST_TMPDIR/out"
	pgrep -f "qemu.*$BATS_TEST_TMPDIR" >/dev/null
	kill -KILL "$pid"
	wait "$pid" || true
	for _ in $(seq 50); do pgrep -f "qemu.*$BATS_TEST_TMPDIR" >/dev/null || break; sleep 0.1; done
	run -1 pgrep -f "qemu.*$BATS_TEST_TMPDIR"
}

# bats test_tags=vm
@test "vm: a reader gone once the output is complete does not fail the shutdown" {
	local t="$BATS_TEST_TMPDIR"
	# the reader leaves when the step is reported done, while the VM stops
	"$VMCTL" -T -b "$BASE" sh 'echo hi' 2> "$t/err" |
		{ read -r l; until grep -q 'run .* status 0' "$t/err"; do sleep 0.02; done; }
	st=${PIPESTATUS[0]}
	run cat "$t/err"
	refute_output --partial "gone"
	[ "$st" = 0 ]
}

# bats test_tags=vm
@test "vm: names that are not UTF-8 (byte 0xff) survive RUN, diff, import, flatten and squashfs" {
	local t="$BATS_TEST_TMPDIR"
	run -0 vm sh 'b=$(printf "\377"); mkdir "/d$b"; echo x > "/d$b/f$b"; echo é > /café
		ln -s "t$b" "/l$b"; ln "/d$b/f$b" "/h$b"; rm /bin/ls' \; diff "$t/l.tar"
	# pax: raw bytes under hdrcharset=BINARY; valid UTF-8 stays readable
	python3 - "$t/l.tar" <<'PY'
import sys, tarfile
m = {x.name.encode('utf-8', 'surrogateescape'): x for x in
     tarfile.open(sys.argv[1], encoding='utf-8', errors='surrogateescape')}
assert b'd\xff/f\xff' in m and 'café'.encode() in m and b'bin/.wh.ls' in m, sorted(m)
assert m[b'l\xff'].linkname.encode('utf-8', 'surrogateescape') == b't\xff'
assert m[b'h\xff'].islnk()
PY
	# import (guest reader) then read them back
	run -0 "$VMCTL" -b "$BASE" import "$t/l.tar" \; sh 'b=$(printf "\377"); cat "/d$b/f$b" "/h$b" /café; readlink "/l$b"; test -e /bin/ls || echo gone'
	assert_output "$(printf 'x\nx\né\nt\377\ngone')"
	# flatten (whiteouts applied, lib/rootfs.c reader and writer) and direct
	HYPR_SQUASH_NO_DIRECT=1 hypr-squash -o "$t/flat.sqfs" < "$t/l.tar"
	hypr-squash -o "$t/direct.sqfs" < "$t/l.tar"
	for s in flat direct; do
		unsquashfs -q -d "$t/$s" "$t/$s.sqfs"
		[ "$(cat "$t/$s/d"$'\xff'"/f"$'\xff')" = x ]
		[ "$(readlink "$t/$s/l"$'\xff')" = t$'\xff' ]
		[ "$(stat -c %h "$t/$s/h"$'\xff')" = 2 ]
		[ "$(cat "$t/$s/café")" = é ]
	done
}

# bats test_tags=vm
@test "vm: a tree 300 levels deep is diffed and imported (no stack per level)" {
	local t="$BATS_TEST_TMPDIR"
	run -0 vm sh 'mkdir /a && cd /a && i=0; while [ $i -lt 300 ]; do mkdir d && cd d || exit 9; i=$((i+1)); done; echo bottom > f; ln f h' \; diff "$t/l.tar"
	[ "$(tar tf "$t/l.tar" | grep -c '/f$')" = 1 ]
	run -0 "$VMCTL" -b "$BASE" import "$t/l.tar" \; sh 'cd /a; i=0; while [ $i -lt 300 ]; do cd d || exit 9; i=$((i+1)); done; cat f; stat -c %h f'
	assert_output "bottom
2"
}

# bats test_tags=vm
@test "vm: paths longer than PATH_MAX (1000 levels, 6 KB): diff, import, xattrs, whiteout" {
	local t="$BATS_TEST_TMPDIR"
	# two relative halves of 3000 bytes each: no command sees a path > PATH_MAX
	local mk='p=$(i=0; while [ $i -lt 500 ]; do printf ddddd/; i=$((i+1)); done); cd /; mkdir -p $p && cd $p && mkdir -p $p'
	run -0 vm sh "$mk"' && echo deep > ${p}f' \; diff "$t/l.tar"
	python3 - "$t/l.tar" "$t/x.tar" <<'PY'
import io, sys, tarfile
m = list(tarfile.open(sys.argv[1]))
assert len(m) == 1001 and m[-1].name == 'ddddd/' * 1000 + 'f', (len(m), m[-1].name[-20:])
t = tarfile.open(sys.argv[2], 'w', format=tarfile.PAX_FORMAT)
f = tarfile.TarInfo('ddddd/' * 1000 + 'x'); f.size = 3; f.mode = 0o644
f.pax_headers = {'SCHILY.xattr.user.k': 'v'}
t.addfile(f, io.BytesIO(b'hi\n'))
t.close()
PY
	run -0 "$VMCTL" -b "$BASE" import "$t/l.tar" \; import "$t/x.tar" \
		\; sh "$mk"' && cat ${p}f ${p}x && rm ${p}f && chmod 600 ${p}x' \; diff "$t/l2.tar"
	assert_output "deep
hi"
	python3 - "$t/l2.tar" <<'PY'
import sys, tarfile
m = {x.name[6000:]: x for x in tarfile.open(sys.argv[1]) if len(x.name) > 6000}
assert sorted(m) == ['.wh.f', 'x'], sorted(m)
assert m['x'].pax_headers.get('SCHILY.xattr.user.k') == 'v' and m['x'].mode == 0o600, m['x'].pax_headers
PY
}

# bats test_tags=vm
@test "vm: an imported tar is the next step's lower, with whiteouts" {
	python3 - "$BATS_TEST_TMPDIR/i.tar.gz" <<'PY'
import io, sys, tarfile
t = tarfile.open(sys.argv[1], 'w:gz', format=tarfile.PAX_FORMAT)
def add(name, data=None, typ=tarfile.REGTYPE, mode=0o644):
    i = tarfile.TarInfo(name); i.type = typ; i.mode = mode
    if data is not None: i.size = len(data)
    t.addfile(i, io.BytesIO(data) if data is not None else None)
add('etc', typ=tarfile.DIRTYPE, mode=0o755)
add('etc/.wh.group', b'')
add('srv', typ=tarfile.DIRTYPE, mode=0o755)
add('srv/hello', b'imported\n')
add('home', typ=tarfile.DIRTYPE, mode=0o755)
add('home/.wh..wh..opq', b'')
t.close()
PY
	run -0 vm import "$BATS_TEST_TMPDIR/i.tar.gz" \; sh 'cat /srv/hello; ls /home; test -e /etc/group || echo nogroup'
	assert_output "imported
nogroup"
}

# bats test_tags=vm
@test "vm: a layer without whiteouts is a squashfs on a loop device: owners, modes, xattrs, links, copy-up and diff" {
	python3 - "$BATS_TEST_TMPDIR/c.tar" "$BATS_TEST_TMPDIR/w.tar" <<'PY'
import io, sys, tarfile
def layer(path, entries):
    t = tarfile.open(path, 'w', format=tarfile.PAX_FORMAT)
    for name, data, typ, mode, extra in entries:
        i = tarfile.TarInfo(name); i.type = typ; i.mode = mode; i.uid = i.gid = 1000
        i.mtime = 1700000000
        if typ == tarfile.LNKTYPE: i.linkname = extra
        elif extra: i.pax_headers = extra
        if data is not None: i.size = len(data)
        t.addfile(i, io.BytesIO(data) if data is not None else None)
    t.close()
R, D, L = tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.LNKTYPE
layer(sys.argv[1], [('app', None, D, 0o750, None),
    ('app/run', b'#!/bin/sh\necho ran\n', R, 0o4755, {'SCHILY.xattr.user.k': 'v'}),
    ('app/big', b'x' * 300000, R, 0o600, None),
    ('app/same', None, L, 0o4755, 'app/run')])
# a cached RUN layer: whiteouts, so a tar extracted in the guest
layer(sys.argv[2], [('app', None, D, 0o750, None), ('app/.wh.big', b'', R, 0o600, None)])
PY
	run -0 vm import "$BATS_TEST_TMPDIR/c.tar" \; sh 'grep -c loop /proc/partitions; stat -c "%a %u:%g %n" /app; stat -c "%a %u:%g %h %s %n" /app/run /app/big; /app/same; echo more >> /app/run; chmod 644 /app/big' \; diff "$BATS_TEST_TMPDIR/d.tar"
	assert_line --index 0 1
	assert_line --index 1 "750 1000:1000 /app"
	assert_line --index 2 "4755 1000:1000 2 19 /app/run"
	assert_line --index 3 "600 1000:1000 1 300000 /app/big"
	assert_line --index 4 "ran"
	# copy-up from the squashfs lower: the diff has the changed files, with
	# the xattr the squashfs kept
	run -0 tarls "$BATS_TEST_TMPDIR/d.tar"
	assert_line --regexp '^0 4755 1000:1000 [0-9]+ app/run SCHILY.xattr.user.k=v$'
	assert_line --regexp '^0 0644 1000:1000 [0-9]+ app/big$'
	refute_output --partial "app/same"
	# a layer with whiteouts goes in as a tar, and hides the squashfs's file
	run -0 vm import "$BATS_TEST_TMPDIR/c.tar" \; import "$BATS_TEST_TMPDIR/w.tar" \; sh 'grep -c loop /proc/partitions; ls /app'
	assert_output "1
run
same"
	# HYPR_VM_IMPORT_TAR=1: no loop device at all, the same tree
	HYPR_VM_IMPORT_TAR=1 run -0 vm import "$BATS_TEST_TMPDIR/c.tar" \; sh 'grep -c loop /proc/partitions; ls /app'
	assert_output "0
big
run
same"
}

# bats test_tags=vm
@test "vm: files of every size around page and block ends read back exact from a squashfs lower" {
	# the guest kernel's readahead patch stops at a file's last page
	# (pipeline/vm/kernel-patches/); COPY layers use 1 MiB blocks, so
	# small files share fragment blocks and big ones end mid-block
	python3 - "$BATS_TEST_TMPDIR/s.tar" > "$BATS_TEST_TMPDIR/want" <<'PY'
import hashlib, io, random, sys, tarfile
r = random.Random(7)
t = tarfile.open(sys.argv[1], 'w', format=tarfile.PAX_FORMAT)
sizes = [0, 1, 100, 4095, 4096, 4097, 131071, 131072, 131073, 1048575,
         1048576, 1048577, 3145733] + [r.randrange(1, 9000) for _ in range(60)]
for n, size in enumerate(sizes):
    data = r.randbytes(size)
    i = tarfile.TarInfo('d/f%02d' % n); i.size = size; i.mode = 0o644
    t.addfile(i, io.BytesIO(data))
    print(hashlib.sha256(data).hexdigest(), '/d/f%02d' % n)
    if size > 8192:	# a page in the middle, read first: readahead from there
        print(hashlib.sha256(data[4096:8192]).hexdigest(), 'mid', n)
t.close()
PY
	run -0 vm import "$BATS_TEST_TMPDIR/s.tar" \; sh 'grep -c loop /proc/partitions
		for f in /d/*; do
			n=${f#/d/f}; n=${n#0}
			[ "$(wc -c < $f)" -gt 8192 ] && echo "$(dd if=$f bs=4096 skip=1 count=1 2>/dev/null | sha256sum | cut -d" " -f1) mid $n"
		done
		sha256sum /d/*'
	assert_line --index 0 1
	printf '%s\n' "${lines[@]:1}" | sed 's/  / /' | sort > "$BATS_TEST_TMPDIR/got"
	diff -u <(sort "$BATS_TEST_TMPDIR/want") "$BATS_TEST_TMPDIR/got"
}

# bats test_tags=vm
@test "vm: an import with .. paths is refused" {
	python3 - "$BATS_TEST_TMPDIR/evil.tar" <<'PY'
import io, sys, tarfile
t = tarfile.open(sys.argv[1], 'w')
i = tarfile.TarInfo('../../evil'); i.size = 1
t.addfile(i, io.BytesIO(b'x'))
t.close()
PY
	run -3 vm import "$BATS_TEST_TMPDIR/evil.tar"
	assert_output --partial "path outside the layer"
}

# bats test_tags=vm
@test "vm: FROM scratch: import a rootfs tar, then run in it" {
	run -0 "$VMCTL" import "$BASE_TAR" \; sh 'echo from scratch; ls /bin/busybox'
	assert_output "from scratch
/bin/busybox"
}

# bats test_tags=vm
@test "vm: commas in the base, temp and root paths are not QEMU option syntax" {
	local d="$BATS_TEST_TMPDIR/a,readonly=off,file=/etc/passwd"
	mkdir -p "$d/tmp,x=y"
	cp "$BASE" "$d/base,format=qcow2.sqfs"
	export TMPDIR="$d/tmp,x=y" HYPR_ROOT="$d/root,y"
	run -0 "$VMCTL" -b "$d/base,format=qcow2.sqfs" import "$BASE_TAR" \; \
		sh 'echo ok > /comma; cat /comma' \; diff "$d/l,x.tar"
	assert_output "ok"
	tar -tf "$d/l,x.tar" | grep -qx 'comma'
	run -1 pgrep -f "$BATS_TEST_TMPDIR"
}

# bats test_tags=vm
@test "vm: relative base, cache and temp paths are taken from the caller's directory" {
	mkdir -p "$BATS_TEST_TMPDIR/rel/t"
	cp "$BASE" "$BATS_TEST_TMPDIR/rel/b.sqfs"
	cd "$BATS_TEST_TMPDIR/rel"
	truncate -s 64M c.ext4
	mke2fs -q -t ext4 -O ^has_journal c.ext4
	export TMPDIR=t
	run -0 "$VMCTL" -b b.sqfs -c c.ext4 run -m type=cache,target=/c,source=0 -- \
		sh -c 'ls /bin/busybox; echo kept > /c/f; cat /c/f'
	assert_output "/bin/busybox
kept"
	run -1 pgrep -f "$BATS_TEST_TMPDIR/rel"
}

# bats test_tags=vm
@test "vm: a guest crash is one clear line: build VM crashed, with the panic reason" {
	requires cc cpio
	local t="$BATS_TEST_TMPDIR"
	# an init that dies of SIGSEGV: the kernel panics ("Attempted to kill init")
	mkdir -p "$t/rd"
	printf 'int main(void) { *(volatile int *)0 = 1; return 0; }\n' > "$t/crash.c"
	cc -static -o "$t/rd/init" "$t/crash.c"
	(cd "$t/rd" && echo init | cpio --quiet -o -H newc > "$t/crash.cpio")
	HYPR_INITRD="$t/crash.cpio" run -4 --separate-stderr vm sh true
	assert_equal "$stderr" "hypr-vmctl: build VM crashed (waiting for the guest (boot)): the guest init (hypr-init) died of Segmentation fault (Attempted to kill init! exitcode=0x0000000b)"
}

# bats test_tags=vm
@test "vm: a missing kernel is a system error" {
	HYPR_KERNEL=/nonexistent/vmlinux run -4 vm sh true
	assert_output --partial "HYPR_KERNEL=/nonexistent/vmlinux"
}

# bats test_tags=vm
@test "vm: a KVM that fails the canary boot falls back to TCG, once per host boot" {
	unset HYPR_ACCEL
	# A forced canary that cannot reach READY in time (a /dev/kvm that
	# cannot run a guest, none at all, or this deadline) falls back.
	HYPR_KVM_CANARY=force HYPR_KVM_CANARY_TIMEOUT=0.001 run -0 "$VMCTL" -T -b "$BASE" run /bin/true
	assert_output --partial "accel tcg, kvm canary failed"
	run -0 cat "$HYPR_ROOT"/vm/accel-*
	assert_output tcg
	# the verdict holds for this host boot: no second canary
	HYPR_KVM_CANARY=force run -0 "$VMCTL" -T -b "$BASE" run /bin/true
	assert_output --partial "accel tcg, kvm canary none"
	# HYPR_ACCEL wins over the verdict, without a canary
	rm "$HYPR_ROOT"/vm/accel-*
	HYPR_ACCEL=tcg run -0 "$VMCTL" -T -b "$BASE" run /bin/true
	assert_output --partial "accel tcg, kvm canary none"
}

# bats test_tags=vm
@test "vm: fallback to a distribution kernel with its modules (slow; needs one)" {
	local root=${HYPR_TEST_DISTRO_ROOT:-} kver vmlinuz
	vmlinuz=$(ls "$root"/boot/vmlinuz-* 2>/dev/null | head -n1)
	[ -n "$vmlinuz" ] || skip "no distribution kernel (set HYPR_TEST_DISTRO_ROOT to an unpacked linux-image)"
	kver=${vmlinuz##*/vmlinuz-}
	[ -d "$root/lib/modules/$kver/kernel" ] || skip "no modules for $kver"
	run -0 "$HYPR_SRC/pipeline/vm/distro-kernel.sh" "$vmlinuz" "$root/lib/modules/$kver" \
		"${VMCTL%/*}/hypr-init.cpio" "$BATS_TEST_TMPDIR/distro"
	HYPR_KERNEL="$BATS_TEST_TMPDIR/distro/vmlinux" run -0 vm sh 'uname -r; rm /bin/ls' \
		\; diff "$BATS_TEST_TMPDIR/d.tar"
	assert_output "$kver"
	run -0 tarls "$BATS_TEST_TMPDIR/d.tar"
	assert_line --regexp 'bin/\.wh\.ls$'
}

# bats test_tags=vm
@test "vm: a step with the network reaches the host's loopback; one without has lo only" {
	local t=$BATS_TEST_TMPDIR port
	mkdir -p "$t/www"
	echo "hello from the host" > "$t/www/f.txt"
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	python3 -m http.server "$port" --bind 127.0.0.1 --directory "$t/www" >/dev/null 2>&1 &
	HTTP_PID=$!
	for _ in $(seq 50); do curl -s "http://127.0.0.1:$port/f.txt" >/dev/null && break; sleep 0.1; done
	run -0 "$VMCTL" -N -b "$BASE" \
		sh -n -A "10.0.2.2 hostbox" "wget -qO- http://hostbox:$port/f.txt; cat /etc/resolv.conf; ls /sys/class/net | tr '\n' ' '; echo" \; \
		sh "wget -qO- -T 2 http://10.0.2.2:$port/f.txt >/dev/null 2>&1 && echo reached || echo unreachable; ls /sys/class/net; cat /etc/resolv.conf"
	kill "$HTTP_PID"
	assert_output "hello from the host
nameserver 10.0.2.3
eth0 lo 
unreachable
lo"
	# without -N the VM has no network device at all
	run -0 "$VMCTL" -b "$BASE" sh -n 'ls /sys/class/net'
	assert_output lo
}

# bats test_tags=vm
@test "vm: RUN mounts: bind (ro, rw thrown away, a file), cache that persists, tmpfs, secret; no trace in the layer" {
	local t=$BATS_TEST_TMPDIR
	mkdir -p "$t/src/sub"
	echo data1 > "$t/src/a.txt"
	echo sub > "$t/src/sub/b"
	tar -C "$t/src" -cf "$t/src.tar" .
	truncate -s 256M "$t/cache.ext4"
	mke2fs -q -t ext4 -O ^has_journal "$t/cache.ext4"
	run -0 "$VMCTL" -c "$t/cache.ext4" -b "$BASE" mountdata "$t/src.tar" ctx \; \
		sh -m type=bind,target=/mnt/src,source=ctx -m type=bind,target=/etc/a.conf,source=ctx/a.txt \
		-m type=tmpfs,target=/scratch,size=1048576 -m type=secret,target=/run/secrets/tok,data=s3cr3t,mode=0440,gid=1000 \
		-m type=cache,target=/var/cache/x,source=0,mode=0750,uid=1000 \
		'cat /mnt/src/a.txt /mnt/src/sub/b /etc/a.conf; touch /mnt/src/nope 2>/dev/null || echo ro;
		df -k /scratch | awk "NR == 2 { print \$2 }"; stat -c "%a %u:%g %s" /run/secrets/tok; stat -c "%a %u:%g" /var/cache/x;
		echo run1 >> /var/cache/x/log; touch /newfile' \; \
		sh -m type=bind,target=/opt/rw,source=ctx,rw 'echo new > /opt/rw/x && cat /opt/rw/x' \; \
		diff "$t/d.tar"
	assert_output "data1
sub
data1
ro
1024
440 0:1000 6
750 1000:0
new"
	# the layer of the last step holds what it wrote outside its mounts only
	run -0 tarls "$t/d.tar"
	assert_output ''
	# the cache outlives the VM; nothing of the mounts reached the base
	run -0 "$VMCTL" -c "$t/cache.ext4" -b "$BASE" sh -m type=cache,target=/c,source=0,ro \
		'cat /c/log; touch /c/x 2>/dev/null || echo ro; ls -d /mnt /scratch /run/secrets /var/cache 2>&1 | sort'
	assert_output "run1
ro
ls: /mnt: No such file or directory
ls: /run/secrets: No such file or directory
ls: /scratch: No such file or directory
ls: /var/cache: No such file or directory"
}

# ---- snapshots (hypr-guest(7), lib/vm_snap.c) ----

# bats test_tags=vm
@test "vm snapshot: saved once, then restored; a restored guest is fresh (entropy, base, disks)" {
	# the snapshot every base shares (a base's own: the test after these)
	export HYPR_VM_SNAPSHOT=shared
	export HYPR_SNAPSHOT_DIR="$BATS_TEST_TMPDIR/snaps"
	run --separate-stderr -0 vm -T sh 'head -c 16 /dev/urandom | od -An -tx1; echo one > /f; cat /f'
	[[ $stderr == *"snapshot saved"* ]]
	first=${lines[0]}
	assert_equal "${lines[1]}" one
	assert_equal "$(ls "$HYPR_SNAPSHOT_DIR")" "$(cd "$HYPR_SNAPSHOT_DIR" && ls -d snap-*)"
	snap=$(ls -d "$HYPR_SNAPSHOT_DIR"/snap-*)
	# (the scratch disk is 64 GiB of holes: its data extents, through tar)
	sum=$(sha256sum "$snap/ram" "$snap/state"; tar --sparse -C "$snap" -cf - scratch.ext4 | sha256sum)
	# two guests restored at once from the same files: each its own RAM
	# (copy-on-write), its own random state, this run's disks
	vm -T sh 'head -c 16 /dev/urandom | od -An -tx1; ls /f 2>&1; sleep 1' \
		>"$BATS_TEST_TMPDIR/a" 2>"$BATS_TEST_TMPDIR/a.err" &
	vm -T sh 'head -c 16 /dev/urandom | od -An -tx1; ls /f 2>&1; sleep 1' \
		>"$BATS_TEST_TMPDIR/b" 2>"$BATS_TEST_TMPDIR/b.err"
	wait $!
	grep -q "snapshot restored" "$BATS_TEST_TMPDIR/a.err"
	grep -q "snapshot restored" "$BATS_TEST_TMPDIR/b.err"
	a=$(head -1 "$BATS_TEST_TMPDIR/a") b=$(head -1 "$BATS_TEST_TMPDIR/b")
	[ -n "$a" ] && [ "$a" != "$b" ] && [ "$a" != "$first" ] && [ "$b" != "$first" ]
	grep -q "No such file" "$BATS_TEST_TMPDIR/a"
	# the snapshot is never written by the guests restored from it
	assert_equal "$(sha256sum "$snap/ram" "$snap/state"; tar --sparse -C "$snap" -cf - scratch.ext4 | sha256sum)" "$sum"
	# a base of another size than the last one (the guest saw a placeholder)
	mkdir "$BATS_TEST_TMPDIR/big" && tar -xf "$BASE_TAR" -C "$BATS_TEST_TMPDIR/big"
	head -c 3000000 /dev/urandom > "$BATS_TEST_TMPDIR/big/blob"
	tar2sqfs -q -f -c gzip "$BATS_TEST_TMPDIR/big.sqfs" < <(tar -C "$BATS_TEST_TMPDIR/big" -cf - .) >/dev/null
	run --separate-stderr -0 "$VMCTL" -T -b "$BATS_TEST_TMPDIR/big.sqfs" sh 'wc -c < /blob'
	[[ $stderr == *"snapshot restored"* ]]
	assert_output 3000000
}

# bats test_tags=vm
@test "vm snapshot: another kernel, QEMU, RAM size or device never uses it (a new one is saved)" {
	# the snapshot every base shares (a base's own: the test after these)
	export HYPR_VM_SNAPSHOT=shared
	export HYPR_SNAPSHOT_DIR="$BATS_TEST_TMPDIR/snaps" HYPR_SNAPSHOT_KEEP=3
	run --separate-stderr -0 vm -T sh true
	[[ $stderr == *"snapshot saved"* ]]
	run --separate-stderr -0 vm -T sh true
	[[ $stderr == *"snapshot restored"* ]]
	HYPR_VM_MEM=1024 run --separate-stderr -0 vm -T sh 'grep MemTotal /proc/meminfo'
	[[ $stderr == *"snapshot saved"* ]]
	[[ $output =~ MemTotal:\ +(9[0-9]{5}|10[0-9]{5})\ kB ]]
	# the same kernel bytes in another file: another identity
	kdir=$(dirname "$VMCTL")/../vm
	mkdir "$BATS_TEST_TMPDIR/k" && cp "$kdir/vmlinux" "$kdir/hypr-init.cpio" "$BATS_TEST_TMPDIR/k/"
	HYPR_KERNEL="$BATS_TEST_TMPDIR/k/vmlinux" run --separate-stderr -0 vm -T sh true
	[[ $stderr == *"snapshot saved"* ]]
	printf '#!/bin/sh\nexec qemu-system-x86_64 "$@"\n' > "$BATS_TEST_TMPDIR/qemu" && chmod +x "$BATS_TEST_TMPDIR/qemu"
	HYPR_QEMU="$BATS_TEST_TMPDIR/qemu" run --separate-stderr -0 vm -T sh true
	[[ $stderr == *"snapshot saved"* ]]
	# at most 3 kept, the least recently used go
	assert_equal "$(ls -d "$HYPR_SNAPSHOT_DIR"/snap-* | wc -l)" 3
	# with a network device: another shape
	run --separate-stderr -0 vm -T -N sh true
	[[ $stderr == *"snapshot saved"* ]]
	assert_equal "$(ls -d "$HYPR_SNAPSHOT_DIR"/snap-* | wc -l)" 3
	# a cache disk is each build's own: never from a snapshot
	truncate -s 64M "$BATS_TEST_TMPDIR/c.ext4" && mke2fs -q -t ext4 "$BATS_TEST_TMPDIR/c.ext4"
	run --separate-stderr -0 vm -T -c "$BATS_TEST_TMPDIR/c.ext4" sh true
	[[ $stderr == *"snapshot none"* ]]
	HYPR_VM_SNAPSHOT=0 run --separate-stderr -0 vm -T sh true
	[[ $stderr == *"snapshot none"* ]]
}

# bats test_tags=vm
@test "vm snapshot: a changed or unrestorable snapshot is removed with one warning; the VM boots cold" {
	# the snapshot every base shares (a base's own: the test after these)
	export HYPR_VM_SNAPSHOT=shared
	export HYPR_SNAPSHOT_DIR="$BATS_TEST_TMPDIR/snaps"
	run -0 vm sh true
	snap=$(ls -d "$HYPR_SNAPSHOT_DIR"/snap-*)
	# a byte of the RAM file changed: detected before QEMU sees it
	printf 'x' | dd of="$snap/ram" bs=1 seek=4096 conv=notrunc status=none
	run --separate-stderr -0 vm -T sh 'echo ok'
	assert_output ok
	[[ $stderr == *"warning: build VM: the snapshot $snap is not usable (its RAM file changed since it was saved): saved again"* ]]
	[ "$(grep -c warning <<<"$stderr")" = 1 ]
	[[ $stderr == *"snapshot saved"* ]]
	# the state truncated
	: > "$snap/state"
	run --separate-stderr -0 vm sh 'echo ok'
	[[ $stderr == *"its state file changed since it was saved"* ]]
	# the scratch fs the saved guest has mounted, written to
	printf 'x' | dd of="$snap/scratch.ext4" bs=1 seek=1024 conv=notrunc status=none
	run --separate-stderr -0 vm sh 'echo ok'
	[[ $stderr == *"its scratch disk changed since it was saved"* ]]
	# one that does not come back in time: removed, this VM boots cold
	HYPR_SNAPSHOT_TIMEOUT=0.01 run --separate-stderr -0 vm -T sh 'echo ok'
	assert_output ok
	[[ $stderr == *"warning: build VM: the snapshot $snap did not restore ("*"): removed, booting cold"* ]]
	[[ $stderr == *"snapshot none"* ]]
	[ ! -e "$snap" ]
	run --separate-stderr -0 vm -T sh 'echo ok'
	[[ $stderr == *"snapshot saved"* ]]
	[ "$(grep -c warning <<<"$stderr")" = 0 ]
}

# bats test_tags=vm
@test "vm snapshot: a base seen again gets its own (mounted, warmed); another base, or that base changed, never uses it" {
	export HYPR_SNAPSHOT_DIR="$BATS_TEST_TMPDIR/snaps"
	cp "$BASE" "$BATS_TEST_TMPDIR/b.sqfs"
	b() { "$VMCTL" -T -b "$BATS_TEST_TMPDIR/b.sqfs" "$@"; }
	# first: the shared snapshot, and the base marked as seen
	run --separate-stderr -0 b sh 'echo one > /f; cat /f'
	[[ $stderr == *"snapshot saved"* ]] && [[ $stderr != *"(base)"* ]]
	assert_output one
	[ "$(ls "$HYPR_SNAPSHOT_DIR"/snap-*.seen | wc -l)" -eq 1 ]
	# seen again: saved for it (the guest paused with it mounted), then
	# restored from that; a guest restored from it starts fresh
	run --separate-stderr -0 b sh 'ls /f 2>&1; head -c 16 /dev/urandom | od -An -tx1'
	[[ $stderr == *"snapshot saved (base)"* ]]
	assert_line --index 0 "ls: /f: No such file or directory"
	first=${lines[1]}
	[ -z "$(ls "$HYPR_SNAPSHOT_DIR" | grep '[.]seen$')" ]
	[ "$(ls -d "$HYPR_SNAPSHOT_DIR"/snap-*/ | wc -l)" -eq 2 ] && [ -d "$HYPR_SNAPSHOT_DIR"/snap-base-*/ ]
	run --separate-stderr -0 b sh 'ls /f 2>&1; head -c 16 /dev/urandom | od -An -tx1; echo two > /f; cat /f' \; sh 'cat /f'
	[[ $stderr == *"snapshot restored (base)"* ]]
	assert_line --index 0 "ls: /f: No such file or directory"
	[ "${lines[1]}" != "$first" ]
	assert_line --index 3 two
	# another base: never this one's snapshot (the shared one, and its files)
	mkdir "$BATS_TEST_TMPDIR/o" && tar -xf "$BASE_TAR" -C "$BATS_TEST_TMPDIR/o"
	echo other > "$BATS_TEST_TMPDIR/o/which"
	tar2sqfs -q -f -c gzip "$BATS_TEST_TMPDIR/o.sqfs" < <(tar -C "$BATS_TEST_TMPDIR/o" -cf - .) >/dev/null
	run --separate-stderr -0 "$VMCTL" -T -b "$BATS_TEST_TMPDIR/o.sqfs" sh 'cat /which'
	[[ $stderr == *"snapshot restored"* ]] && [[ $stderr != *"(base)"* ]]
	assert_output other
	# the same path rewritten in place (another mtime): not its snapshot
	cat "$BATS_TEST_TMPDIR/o.sqfs" > "$BATS_TEST_TMPDIR/b.sqfs"
	run --separate-stderr -0 b sh 'cat /which'
	[[ $stderr != *"(base)"* ]]
	assert_output other
	# HYPR_VM_SNAPSHOT=shared: only the shared one
	cp "$BASE" "$BATS_TEST_TMPDIR/b.sqfs"
	for i in 1 2; do
		HYPR_VM_SNAPSHOT=shared run --separate-stderr -0 b sh true
		[[ $stderr == *"snapshot restored"* ]] && [[ $stderr != *"(base)"* ]]
	done
}

# bats test_tags=vm
@test "vm snapshot: a base whose /bin/sh never ends is saved once its warm-up is killed; nothing of it is restored" {
	export HYPR_SNAPSHOT_DIR="$BATS_TEST_TMPDIR/snaps"
	mkdir "$BATS_TEST_TMPDIR/r" && tar -xf "$BASE_TAR" -C "$BATS_TEST_TMPDIR/r"
	rm "$BATS_TEST_TMPDIR/r/bin/sh"
	printf '#!/bin/busybox yes\n' > "$BATS_TEST_TMPDIR/r/bin/sh"
	chmod 755 "$BATS_TEST_TMPDIR/r/bin/sh"
	tar2sqfs -q -f -c gzip "$BATS_TEST_TMPDIR/yes.sqfs" < <(tar -C "$BATS_TEST_TMPDIR/r" -cf - .) >/dev/null
	bb() { "$VMCTL" -T -b "$BATS_TEST_TMPDIR/yes.sqfs" "$@"; }
	run --separate-stderr -0 bb run -- /bin/busybox true
	run --separate-stderr -0 bb run -- /bin/busybox true
	[[ $stderr == *"snapshot saved (base)"* ]]
	[[ $stderr != *"warning"* ]]
	# restored: one warm-up process, this guest's own (the saved one was
	# killed before the snapshot); waits 10 s at most for it
	look='for i in $(seq 50); do ps -o args | grep -q "[/]bin/busybox yes" && break; sleep 0.2; done; ps -o args | grep -c "[/]bin/busybox yes"'
	run --separate-stderr -0 bb run -- /bin/busybox sh -c "$look"
	[[ $stderr == *"snapshot restored (base)"* ]]
	assert_output 1
}

# bats test_tags=vm
@test "vm warm-up: under TCG the base's /bin/sh -c : runs at READY, read-only; it never outlives the first step" {
	# a base whose /bin/sh never ends: busybox yes, as the script's interpreter
	mkdir "$BATS_TEST_TMPDIR/r" && tar -xf "$BASE_TAR" -C "$BATS_TEST_TMPDIR/r"
	rm "$BATS_TEST_TMPDIR/r/bin/sh"
	printf '#!/bin/busybox yes\n' > "$BATS_TEST_TMPDIR/r/bin/sh"
	chmod 755 "$BATS_TEST_TMPDIR/r/bin/sh"
	tar2sqfs -q -f -c gzip "$BATS_TEST_TMPDIR/yes.sqfs" < <(tar -C "$BATS_TEST_TMPDIR/r" -cf - .) >/dev/null
	bb() { "$VMCTL" -b "$BATS_TEST_TMPDIR/yes.sqfs" "$@"; }
	# waits (10 s at most) for the warm-up's process, which never ends
	look='for i in $(seq 50); do ps -o args | grep -q "[/]bin/busybox yes" && break; sleep 0.2; done; ps -o args | grep -o "[/]bin/busybox yes.*"'
	run -0 bb run -- /bin/busybox sh -c "$look; echo one > /f" \; diff "$BATS_TEST_TMPDIR/d.tar" \
		\; run -- /bin/busybox sh -c 'ps -o args | grep -c "[y]es"; ls /; cat /f'
	assert_output "/bin/busybox yes /bin/sh -c :
0
bin
dev
etc
f
home
linuxrc
proc
root
sbin
sys
tmp
usr
var
one"
	# the first step's layer holds what it wrote and nothing of the warm-up
	assert_equal "$(tar -tf "$BATS_TEST_TMPDIR/d.tar")" "f"
	# turned off: no such process
	HYPR_VM_WARM=0 run -0 bb run -- /bin/busybox sh -c 'sleep 1; ps -o args | grep -c "[y]es"; true'
	assert_output 0
}
