#!/usr/bin/env bats
# hypr-squash: rootfs tar or image stream -> squashfs, read back with
# unsquashfs (squashfs-tools, an independent reader).

load helpers
load fixtures/layer/lib

setup() {
	fresh_root
	cd "$BATS_TEST_TMPDIR"
}

# Everything a rootfs holds: modes with setuid/sticky, owners, symlinks,
# hard links, devices, a fifo, xattrs, an empty file, a big file.
rich_layer() {
	mklayer "$1" <<'EOF'
d bin 755 0 0
f bin/su 4755 0 0 su-binary
l bin/sh busybox
f bin/busybox 755 0 0 busybox
h bin/ls bin/busybox
d dev 755 0 0
c dev/null 1 3
c dev/tty 5 0
p dev/fifo
d etc 755 0 0
f etc/passwd 644 0 0 root:x:0:0::/root:/bin/sh
x etc/passwd user.note hello
f etc/shadow 640 0 42 secret
d home 755 0 0
d home/app 700 1000 1000
f home/app/.profile 600 1000 1000 export A=1
d tmp 1777 0 0
f empty 644 0 0
F big 644 300000
l abs /etc/passwd
EOF
}

@test "squash: rootfs read back with unsquashfs matches the expected tree" {
	rich_layer l1.tar
	printf 'w etc/shadow\nf etc/motd 644 0 0 hi\n' | mklayer l2.tar
	hypr-layer --flatten l1.tar l2.tar | hypr-squash -o img.sqfs
	sqfs_tree img.sqfs > got
	big=$(python3 -c 'import random,hashlib;print(hashlib.sha256(random.Random("big").randbytes(300000)).hexdigest()[:12])')
	cat > want <<EOF
/ d rwxr-xr-x 0 0 - -
/abs l rwxrwxrwx 0 0 11 /etc/passwd
/big - rw-r--r-- 0 0 300000 $big
/bin d rwxr-xr-x 0 0 - -
/bin/busybox - rwxr-xr-x 0 0 8 $(sha12 busybox)
/bin/ls - rwxr-xr-x 0 0 8 $(sha12 busybox)
/bin/sh l rwxrwxrwx 0 0 7 busybox
/bin/su - rwsr-xr-x 0 0 10 $(sha12 su-binary)
/dev d rwxr-xr-x 0 0 - -
/dev/fifo p rw-r--r-- 0 0 0 -
/dev/null c rw-rw-rw- 0 0 0 1,3
/dev/tty c rw-rw-rw- 0 0 0 5,0
/empty - rw-r--r-- 0 0 1 $(sha12 '')
/etc d rwxr-xr-x 0 0 - -
/etc/motd - rw-r--r-- 0 0 3 $(sha12 hi)
/etc/passwd - rw-r--r-- 0 0 26 $(sha12 'root:x:0:0::/root:/bin/sh')
/home d rwxr-xr-x 0 0 - -
/home/app d rwx------ 1000 1000 - -
/home/app/.profile - rw------- 1000 1000 11 $(sha12 'export A=1')
/tmp d rwxrwxrwt 0 0 - -
EOF
	diff -u want got
	# xattrs and the hard link survive too
	run rdsquashfs -x /etc/passwd img.sqfs
	assert_output "user.note=hello"
	[ "$(rdsquashfs -s /bin/ls img.sqfs | grep 'Hard link count')" = "Hard link count: 2" ]
	# default compression is zstd
	unsquashfs -s img.sqfs | grep -q 'Compression zstd'
}

@test "squash: byte-identical squashfs twice with SOURCE_DATE_EPOCH, mtimes clamped" {
	rich_layer l1.tar
	export SOURCE_DATE_EPOCH=500
	hypr-squash -o a.sqfs < l1.tar
	sleep 1
	hypr-squash < l1.tar > b.sqfs
	cmp a.sqfs b.sqfs
	unsquashfs -s a.sqfs | grep -q 'Creation or last append time Thu Jan  1 00:08:20 1970'
	unsquashfs -lln -UTC a.sqfs bin/su | grep -q '1970-01-01 00:08 squashfs-root/bin/su'
	# and through the store: two fresh stores, same chain, same bytes
	for r in r1 r2; do
		HYPR_ROOT=$BATS_TEST_TMPDIR/$r
		export HYPR_ROOT
		mkdir -p "$HYPR_ROOT"
		l=$(layer_json l1.tar)
		steps_stream "$l" "CMD|CMD x|null|{}" | hypr-layer | hypr-squash > $r.image
	done
	[ "$(jq -r 'select(.type) | .squashfs.digest' r1.image)" = "$(jq -r 'select(.type) | .squashfs.digest' r2.image)" ]
	cmp r1.image r2.image
}

@test "squash: image stream mode adds the squashfs and reuses it for an unchanged chain" {
	rich_layer l1.tar
	l=$(layer_json l1.tar)
	steps_stream "$l" "CMD|CMD x|null|{}" | hypr-layer > image
	hypr-squash < image > out
	run jq -c 'select(.type == "image") | .squashfs | [.compression, (.size > 0)]' out
	assert_output '["zstd",true]'
	d=$(jq -r 'select(.type == "image") | .squashfs.digest' out)
	f="$HYPR_ROOT/blobs/sha256/${d#sha256:}"
	[ "$(sha256sum < "$f" | cut -d' ' -f1)" = "${d#sha256:}" ]
	[ "$(stat -c %s "$f")" = "$(jq -r 'select(.type == "image") | .squashfs.size' out)" ]
	# a second run must not rebuild: make tar2sqfs unusable and still succeed
	HYPR_TAR2SQFS=/bin/false hypr-squash < image > out2
	cmp out out2
	# other options are another cache entry, so this one does build (and fails)
	run --separate-stderr -3 env HYPR_TAR2SQFS=/bin/false hypr-squash --comp gzip < image
	[[ $stderr == *"tar2sqfs failed"* ]]
}

@test "squash: a damaged cached squashfs: truncation always rebuilds, a bit flip with --verify" {
	rich_layer l1.tar
	l=$(layer_json l1.tar)
	steps_stream "$l" "CMD|CMD x|null|{}" | hypr-layer > image
	export SOURCE_DATE_EPOCH=1700000000
	hypr-squash < image > out
	d=$(jq -r 'select(.type == "image") | .squashfs.digest' out)
	f="$HYPR_ROOT/blobs/sha256/${d#sha256:}"
	id=$(hypr-store -t dmg:1 < out)
	img="$HYPR_ROOT/images/${id#sha256:}.squashfs"
	[ "$(stat -c %i "$img")" = "$(stat -c %i "$f")" ]
	good=$(sha256sum < "$f")
	# one flipped bit inside the data: same size, superblock fine
	flip() { python3 -c 'import sys; f=open(sys.argv[1],"r+b"); f.seek(int(sys.argv[2])); b=f.read(1); f.seek(-1,1); f.write(bytes([b[0]^1]))' "$@"; }
	flip "$f" 2000
	[ "$(sha256sum < "$f")" != "$good" ]
	# hypr image inspect reads it whole and says so
	run --separate-stderr -3 hypr-store inspect dmg:1
	[[ $stderr == *"image $id: squashfs damaged"*"rebuild it with HYPR_SQUASH_VERIFY=1 hypr build" ]]
	# the cheap check cannot see it: reused (tar2sqfs unusable still works)
	HYPR_TAR2SQFS=/bin/false hypr-squash < image > out2
	cmp out out2
	# --verify re-digests and rebuilds: the same bytes again (epoch set)
	run --separate-stderr -3 env HYPR_TAR2SQFS=/bin/false hypr-squash --verify < image
	hypr-squash --verify < image > out3
	cmp out out3
	[ "$(sha256sum < "$f")" = "$good" ]
	# the image's hard link is renewed by the next store of that image
	[ "$(hypr-store -t dmg:1 < out3)" = "$id" ]
	[ "$(stat -c %i "$img")" = "$(stat -c %i "$f")" ]
	[ "$(sha256sum < "$img")" = "$good" ]
	run -0 hypr-store inspect dmg:1
	run -0 ls "$HYPR_ROOT/images"
	refute_output --partial ".tmp."
	# truncated, or a wrong superblock: rebuilt without --verify
	truncate -s -4096 "$f"
	HYPR_SQUASH_VERIFY=0 hypr-squash < image > out4
	cmp out out4
	[ "$(sha256sum < "$f")" = "$good" ]
	printf 'XXXX' | dd of="$f" conv=notrunc status=none
	hypr-squash < image > out5
	cmp out out5
	[ "$(sha256sum < "$f")" = "$good" ]
}

@test "squash: compressors, levels and block sizes; bad options are usage errors" {
	printf 'F big 644 200000\n' | mklayer l.tar
	for c in gzip xz lz4 zstd; do
		hypr-squash --comp $c --level 1 --block-size 64K -o $c.sqfs < l.tar
		unsquashfs -s $c.sqfs | grep -q "Compression $c"
		unsquashfs -s $c.sqfs | grep -q "Block size 65536"
		# unsquashfs 4.5.1 cannot read lz4 metadata written by tar2sqfs (the
		# kernel can), so read the data back with rdsquashfs
		rdsquashfs -c /big $c.sqfs | cmp - <(python3 -c 'import random,sys;sys.stdout.buffer.write(random.Random("big").randbytes(200000))')
	done
	# zstd's default level is 1: the same bytes as --level 1, a higher
	# level packs text tighter
	mkdir t && seq 1 200000 > t/text
	tar -C t -cf c.tar .
	SOURCE_DATE_EPOCH=0 hypr-squash -o d.sqfs < c.tar
	SOURCE_DATE_EPOCH=0 hypr-squash --level 1 -o 1.sqfs < c.tar
	SOURCE_DATE_EPOCH=0 hypr-squash --level 19 -o 19.sqfs < c.tar
	cmp d.sqfs 1.sqfs
	unsquashfs -s d.sqfs | grep -q "Compression zstd"
	[ "$(stat -c %s 19.sqfs)" -lt "$(stat -c %s d.sqfs)" ]
	run -2 hypr-squash --comp brotli -o x < l.tar
	run -2 hypr-squash --level 30 -o x < l.tar
	run -2 hypr-squash --block-size 1000 -o x < l.tar
	run -2 hypr-squash --bogus
}

@test "squash: empty, truncated and hostile input is bad input (exit 3)" {
: > nothing
	run --separate-stderr -3 hypr-squash -o x.sqfs < nothing
	[[ $stderr == *"empty input"* ]]
	printf 'F big 644 100000\n' | mklayer l.tar
	head -c 30000 l.tar > cut.tar
	run --separate-stderr -3 hypr-squash -o x.sqfs < cut.tar
	[ ! -e x.sqfs ]
	printf 'r ../../etc/passwd\n' | mklayer evil.tar
	run --separate-stderr -3 hypr-squash -o x.sqfs < evil.tar
	[[ $stderr == *"refusing hostile path"* ]]
	[ ! -e x.sqfs ]
	printf '{"hypr":"image","version":1}\n{"type":"image","layers":[]}\n' > cut.image
	run -3 hypr-squash < cut.image
	# a pipe works like a file
	cat l.tar | hypr-squash > piped.sqfs
	unsquashfs -s piped.sqfs > /dev/null
}

@test "squash: SIGKILL mid-squash leaves no blob, no cache entry, nothing half-visible" {
	# big incompressible input and slow settings keep tar2sqfs busy
	printf 'F big 644 60000000\n' | mklayer l.tar
	l=$(layer_json l.tar)
	steps_stream "$l" "CMD|CMD x|null|{}" | hypr-layer > image
	blobs_before=$(ls "$HYPR_ROOT/blobs/sha256" | sort)
	hypr-squash --comp xz --level 9 < image > out &
	pid=$!
	# wait until tar2sqfs is writing its temp file (in the temp dir
	# hypr-squash holds locked), then kill
	for _ in $(seq 100); do
		ls "$HYPR_ROOT"/tmp/hypr-squash.*/squash-* >/dev/null 2>&1 && break
		sleep 0.1
	done
	ls "$HYPR_ROOT"/tmp/hypr-squash.*/squash-*
	kill -KILL $pid
	wait $pid || true
	sleep 0.5
	[ "$(ls "$HYPR_ROOT/blobs/sha256" | sort)" = "$blobs_before" ]
	[ -z "$(ls "$HYPR_ROOT/cache/squashfs" 2>/dev/null)" ]
	# the store stays usable: prune clears the temp file (and the layer,
	# which no image or cache entry names), a rerun works
	HYPR_PRUNE_GRACE=0 hypr-store system-prune -f
	[ -z "$(ls "$HYPR_ROOT/tmp")" ]
	[ -z "$(ls "$HYPR_ROOT/blobs/sha256")" ]
	layer_json l.tar > /dev/null
	hypr-squash --comp lz4 < image > out
	d=$(jq -r 'select(.type == "image") | .squashfs.digest' out)
	[ -f "$HYPR_ROOT/blobs/sha256/${d#sha256:}" ]
}

@test "squash: a clean tar file goes to tar2sqfs directly, with the same tree" {
	rich_layer l1.tar
	hypr-squash -o direct.sqfs < l1.tar
	HYPR_SQUASH_NO_DIRECT=1 hypr-squash -o flat.sqfs < l1.tar
	diff -u <(sqfs_tree flat.sqfs) <(sqfs_tree direct.sqfs)
	[ "$(rdsquashfs -s /bin/ls direct.sqfs | grep 'Hard link count')" = "Hard link count: 2" ]
	# whiteouts in a single tar are still applied (not passed through)
	printf 'f a 644 0 0 a\nw b\n' | mklayer wh.tar
	hypr-squash -o wh.sqfs < wh.tar
	run sqfs_tree wh.sqfs
	assert_output "/ d rwxr-xr-x 0 0 - -
/a - rw-r--r-- 0 0 2 $(sha12 a)"
}

@test "squash: big files reach tar2sqfs mapped from the layers and the spill, byte for byte" {
	# a small file first: the big files' data starts off a page boundary;
	# 1 MiB is where mapping starts (rootfs.c MAP_MIN), one byte less is read
	printf 'f a 644 0 0 x\nF big1 644 3000001\nF mid 644 1048576\nF below 644 1048575\nF gone 644 2000000\n' |
		mklayer l1.tar
	# gzip'd: its data is spilled into a temp file, mapped from there
	printf 'F big2 644 2500000\nw gone\nF mid 644 1500000\n' | mklayer l2.tar gz
	want() {
		for f in "$@"; do
			python3 -c 'import random,hashlib,sys
print(hashlib.sha256(random.Random(sys.argv[1]).randbytes(int(sys.argv[2]))).hexdigest()[:12])' "${f%:*}" "${f#*:}"
		done
	}
	expect="$(printf '%s\n' $(want big1:3000001 below:1048575 big2:2500000 mid:1500000))"
	# through hypr-layer's pipe, and an image's chain through tar2sqfs's
	hypr-layer --flatten l1.tar l2.tar | hypr-squash -o piped.sqfs
	l1=$(layer_json l1.tar)
	l2=$(layer_json l2.tar)
	steps_stream "$l1" "RUN|RUN x|$l2|{}" | hypr-layer | hypr-squash > image
	d=$(jq -r 'select(.type == "image") | .squashfs.digest' image)
	for img in piped.sqfs "$HYPR_ROOT/blobs/sha256/${d#sha256:}"; do
		run sqfs_tree "$img"
		assert_output "/ d rwxr-xr-x 0 0 - -
/a - rw-r--r-- 0 0 2 $(sha12 x)
/below - rw-r--r-- 0 0 1048575 $(sed -n 2p <<<"$expect")
/big1 - rw-r--r-- 0 0 3000001 $(sed -n 1p <<<"$expect")
/big2 - rw-r--r-- 0 0 2500000 $(sed -n 3p <<<"$expect")
/mid - rw-r--r-- 0 0 1500000 $(sed -n 4p <<<"$expect")"
	done
}

@test "squash: two builds of the same chain at once both succeed" {
	printf 'F big 644 3000000\nf a 644 0 0 a\n' | mklayer l.tar
	l=$(layer_json l.tar)
	steps_stream "$l" "CMD|CMD x|null|{}" | hypr-layer > image
	for i in 1 2 3 4; do hypr-squash < image > out.$i & done
	wait
	for i in 1 2 3 4; do
		d=$(jq -r 'select(.type == "image") | .squashfs.digest' out.$i)
		[ "$d" = "$(jq -r 'select(.type == "image") | .squashfs.digest' out.1)" ]
	done
	[ -f "$HYPR_ROOT/blobs/sha256/${d#sha256:}" ]
	[ -z "$(ls "$HYPR_ROOT/tmp")" ]
}

@test "squash: a compressed layer is unpacked once (the blob of its diff_id), never decompressed again, and goes with its images" {
	mkdir -p b/bin s t
	echo hello > b/bin/hello
	echo one > s/one
	echo two > t/two
	gnu_layer base.tar b
	gnu_layer one.tar s
	gnu_layer two.tar t
	gzip -n -c base.tar > base.tar.gz
	diff=sha256:$(sha256sum < base.tar | cut -d' ' -f1)
	gz=$(put_blob base.tar.gz)
	copy=$HYPR_ROOT/blobs/sha256/${diff#sha256:}
	base=$(jq -cn --arg d "$gz" --arg di "$diff" --argjson s "$(stat -c %s base.tar.gz)" \
		'{digest:$d, diff_id:$di, size:$s, media_type:"application/vnd.oci.image.layer.v1.tar+gzip"}')
	[ ! -e "$copy" ]
	steps_stream "$base" "COPY|COPY one /|$(layer_json one.tar)|{}" | hypr-layer |
		hypr-squash | hypr-store -q -t one:1
	# the copy is the plain tar, stored under its own digest, and recorded
	cmp "$copy" base.tar
	[ "$(cat "$HYPR_ROOT/diffids/${gz#sha256:}")" = "$diff" ]
	# another chain on that base reads the copy: the compressed blob could
	# now hold anything
	echo junk | gzip -n > "$HYPR_ROOT/blobs/sha256/${gz#sha256:}"
	steps_stream "$base" "COPY|COPY two /|$(layer_json two.tar)|{}" | hypr-layer |
		hypr-squash | hypr-store -q -t two:1
	sq=$(ls -t "$HYPR_ROOT"/images/*.squashfs | head -1)
	unsquashfs -d tree "$sq" > /dev/null
	[ "$(cat tree/bin/hello)" = hello ] && [ "$(cat tree/two)" = two ]
	# a copy that does not match the recorded diff_id is refused, naming it
	rm "$copy"
	run --separate-stderr -3 hypr-squash < <(steps_stream "$base" "CMD|CMD z|null|{}" | hypr-layer)
	[[ $stderr == *"layer $gz decompresses to sha256:"*", not its diff_id $diff"* ]]
	[ ! -e "$copy" ]
	# it goes with the last image that names the layer
	cp base.tar "$copy"
	hypr rmi one:1 > /dev/null
	[ -e "$copy" ]
	hypr rmi two:1 > /dev/null
	[ ! -e "$copy" ]
}
