#!/usr/bin/env bats
# hypr-layer: flattening layer chains (whiteouts, opaque dirs, hard links,
# hostile names) and the steps -> image stream with cache entries.

load helpers
load fixtures/layer/lib

setup() {
	fresh_root
	cd "$BATS_TEST_TMPDIR"
}

# Three layers: gzip, zstd, plain.
three_layers() {
	mklayer l1.tar.gz gz <<'EOF'
d etc 755 0 0
f etc/passwd 644 0 0 root
f etc/hosts 644 0 0 hosts1
d usr 755 0 0
d usr/lib 755 0 0
f usr/lib/a 644 0 0 a
f usr/lib/b 644 0 0 b
d usr/lib/sub 755 0 0
f usr/lib/sub/deep 644 0 0 deep
d opt 755 0 0
f opt/x 644 0 0 x
f data 600 1000 1000 file-then-dir
f hl 644 0 0 shared
h hl2 hl
d var 755 0 0
f var/keep 644 0 0 keep
EOF
	mklayer l2.tar.zst zst <<'EOF'
f etc/passwd 600 0 0 root2
w etc/hosts
o usr/lib
d usr/lib 700 0 0
f usr/lib/c 644 0 0 c
w hl
d data 755 0 0
f data/inner 644 0 0 inner
w opt
EOF
	mklayer l3.tar <<'EOF'
d opt 750 0 0
f opt/y 644 0 0 y
f usr/lib/d 644 0 0 d
w data/inner
f var 644 0 0 now-a-file
w etc/nonexistent
EOF
}

@test "layer: whiteouts and opaque dirs across three layers (gzip, zstd, plain)" {
	three_layers
	hypr-layer --flatten l1.tar.gz l2.tar.zst l3.tar > rootfs.tar
	tar_tree rootfs.tar > got
	cat > want <<EOF
data d 755 0 0 0 - 1000
etc d 755 0 0 0 - 1000
etc/passwd - 600 0 0 6 $(sha12 root2) 1000
hl2 - 644 0 0 7 $(sha12 shared) 1000
opt d 750 0 0 0 - 1000
opt/y - 644 0 0 2 $(sha12 y) 1000
usr d 755 0 0 0 - 1000
usr/lib d 700 0 0 0 - 1000
usr/lib/c - 644 0 0 2 $(sha12 c) 1000
usr/lib/d - 644 0 0 2 $(sha12 d) 1000
var - 644 0 0 11 $(sha12 now-a-file) 1000
EOF
	diff -u want got
}

@test "layer: an opaque dir hides only lower layers, not its own layer" {
	mklayer a.tar <<'EOF'
d d 755 0 0
f d/old 644 0 0 old
EOF
	mklayer b.tar <<'EOF'
d d 755 0 0
f d/new 644 0 0 new
o d
f d/after 644 0 0 after
EOF
	hypr-layer --flatten a.tar b.tar > out.tar
	run tar_tree out.tar
	assert_output "d d 755 0 0 0 - 1000
d/after - 644 0 0 6 $(sha12 after) 1000
d/new - 644 0 0 4 $(sha12 new) 1000"
}

@test "layer: a root opaque marker hides every lower entry" {
	printf 'f a 644 0 0 a\nd b 755 0 0\nf b/c 644 0 0 c\n' | mklayer a.tar
	printf 'o .\nf z 644 0 0 z\n' | mklayer b.tar
	hypr-layer --flatten a.tar b.tar > out.tar
	run tar_tree out.tar
	assert_output "z - 644 0 0 2 $(sha12 z) 1000"
}

@test "layer: hard links stay valid when their first name sorts later or is deleted" {
	mklayer a.tar <<'EOF'
d z 755 0 0
f z/f 4755 0 0 payload
h a/link z/f
h m/link2 z/f
EOF
	hypr-layer --flatten a.tar > out.tar
	run tar_tree out.tar
	assert_output "a/link - 4755 0 0 8 $(sha12 payload) 1000
m/link2 h 4755 0 0 0 a/link 1000
z d 755 0 0 0 - 1000
z/f h 4755 0 0 0 a/link 1000"
	# delete the data-carrying name in a higher layer: the others keep it
	printf 'w z/f\n' | mklayer b.tar
	hypr-layer --flatten a.tar b.tar > out2.tar
	run tar_tree out2.tar
	assert_output "a/link - 4755 0 0 8 $(sha12 payload) 1000
m/link2 h 4755 0 0 0 a/link 1000
z d 755 0 0 0 - 1000"
}

@test "layer: a hard link to a file of a lower layer" {
	printf 'f base 644 0 0 lower\n' | mklayer a.tar
	printf 'h up base\n' | mklayer b.tar
	hypr-layer --flatten a.tar b.tar > out.tar
	run tar_tree out.tar
	assert_output "base - 644 0 0 6 $(sha12 lower) 1000
up h 644 0 0 0 base 1000"
}

@test "layer: a link to a link whose names a higher layer hides still ends at the data" {
	# in one layer: x is replaced above, y (a link to x) whited out
	printf 'f x 600 0 0 payload\nh y x\nh c y\n' | mklayer a.tar
	printf 'f x 644 0 0 new\nw y\n' | mklayer b.tar
	hypr-layer --flatten a.tar b.tar > out.tar
	run tar_tree out.tar
	assert_output "c - 600 0 0 8 $(sha12 payload) 1000
x - 644 0 0 4 $(sha12 new) 1000"
	# the data in a lower layer than the hidden link
	printf 'f x 600 0 0 payload\n' | mklayer l1.tar
	printf 'h y x\nh c y\n' | mklayer l2.tar
	printf 'w x\nw y\n' | mklayer l3.tar
	hypr-layer --flatten l1.tar l2.tar l3.tar > out2.tar
	run tar_tree out2.tar
	assert_output "c - 600 0 0 8 $(sha12 payload) 1000"
}

@test "layer: a hard link to a directory is refused, in its layer or a lower one" {
	printf 'd d 755 0 0\nf d/f 644 0 0 x\n' | mklayer a.tar
	printf 'h a d\n' | mklayer b.tar
	run --separate-stderr -3 hypr-layer --flatten a.tar b.tar
	[ -z "$output" ]
	assert_equal "$stderr" "hypr-layer: hard link 'a' -> 'd': a directory"
	printf 'd d 755 0 0\nh z d\n' | mklayer c.tar
	run --separate-stderr -3 hypr-layer --flatten c.tar
	assert_equal "$stderr" "hypr-layer: hard link 'z' -> 'd': a directory"
}

@test "layer: later duplicate in one layer wins; names are cleaned" {
	mklayer a.tar <<'EOF'
r ./x
r ./x
r .//a/./b
EOF
	hypr-layer --flatten a.tar > out.tar
	run tar_tree out.tar
	assert_output "a/b - 644 0 0 1 $(printf x | sha256sum | cut -c1-12) 1000
x - 644 0 0 1 $(printf x | sha256sum | cut -c1-12) 1000"
}

@test "layer: hostile member names are refused (exit 3)" {
	for name in ../evil /etc/passwd a/../../b 'x/../..'; do
		printf 'r %s\n' "$name" | mklayer evil.tar
		run --separate-stderr -3 hypr-layer --flatten evil.tar
		[[ $stderr == *"refusing hostile path"* ]] || { echo "$name: $stderr"; false; }
	done
	printf 'f ok 644 0 0 ok\nh l ../../etc/shadow\n' | mklayer evil.tar
	run --separate-stderr -3 hypr-layer --flatten evil.tar
	[[ $stderr == *"refusing hard link"* ]]
	printf 'r .wh..\n' | mklayer evil.tar
	run --separate-stderr -3 hypr-layer --flatten evil.tar
	[[ $stderr == *"bad whiteout"* ]]
}

@test "layer: truncated, garbage and missing layers are bad input" {
	printf 'F big 644 100000\n' | mklayer a.tar
	head -c 50000 a.tar > cut.tar
	run --separate-stderr -3 hypr-layer --flatten cut.tar
	[[ $stderr == "hypr-layer: layer cut.tar: "* ]]
	head -c 4096 /dev/urandom > junk.tar
	run -3 hypr-layer --flatten junk.tar
	run -3 hypr-layer --flatten missing.tar
	run -2 hypr-layer --flatten
}

@test "layer: SOURCE_DATE_EPOCH clamps later mtimes only" {
	printf 'f old 644 0 0 old\n' | MTIME=1000 mklayer a.tar
	printf 'f new 644 0 0 new\n' | MTIME=9000 mklayer b.tar
	SOURCE_DATE_EPOCH=5000 hypr-layer --flatten a.tar b.tar > out.tar
	run tar_tree out.tar
	assert_output "new - 644 0 0 4 $(sha12 new) 5000
old - 644 0 0 4 $(sha12 old) 1000"
	run -2 env SOURCE_DATE_EPOCH=soon hypr-layer --flatten a.tar
}

@test "layer: steps -> image stream and cache entries" {
	printf 'd bin 755 0 0\nf bin/sh 755 0 0 sh\n' | mklayer base.tar
	printf 'f bin/app 755 0 0 app\n' | mklayer l1.tar
	base=$(layer_json base.tar)
	l1=$(layer_json l1.tar)
	steps_stream "$base" \
		"RUN|RUN /bin/sh -c make|$l1|{\"Env\":[\"PATH=/bin\"],\"Cmd\":[\"sh\"]}" \
		"CMD|CMD [\"app\"]|null|{\"Env\":[\"PATH=/bin\"],\"Cmd\":[\"app\"]}" > steps
	SOURCE_DATE_EPOCH=86400 hypr-layer < steps > image
	run jq -c 'select(.hypr)' image
	assert_output '{"hypr":"image","version":1}'
	run jq -c 'select(.end)' image
	assert_output '{"end":true,"records":1}'
	img=$(jq -c 'select(.type == "image")' image)
	[ "$(jq -r '.layers | map(.digest) | join(" ")' <<<"$img")" = \
		"$(jq -r .digest <<<"$base") $(jq -r .digest <<<"$l1")" ]
	[ "$(jq -c .config <<<"$img")" = '{"Env":["PATH=/bin"],"Cmd":["app"]}' ]
	[ "$(jq -c .history <<<"$img")" = '[{"created":"1970-01-02T00:00:00Z","created_by":"RUN /bin/sh -c make"},{"created":"1970-01-02T00:00:00Z","created_by":"CMD [\"app\"]","empty_layer":true}]' ]
	[ "$(jq -r .created <<<"$img")" = 1970-01-02T00:00:00Z ]
	[ "$(jq -c .build_args <<<"$img")" = '{"V":"1"}' ]
	[ "$(jq -r .base.ref <<<"$img")" = docker.io/library/busybox:latest ]
	# OCI chain id: sha256 of "<chain> <diff_id>"
	want="sha256:$(printf '%s %s' "$(jq -r .diff_id <<<"$base")" "$(jq -r .diff_id <<<"$l1")" | sha256sum | cut -d' ' -f1)"
	[ "$(jq -r .chain <<<"$img")" = "$want" ]
	# one cache entry per step, in the format hypr-exec reads (hypr(7))
	for k in $(jq -r 'select(.type == "step") | .key' steps); do
		e="$HYPR_ROOT/cache/${k#sha256:}.json"
		[ -f "$e" ]
		[ "$(jq -r .key "$e")" = "$k" ]
		[ "$(jq -r .hypr "$e")" = cache ]
	done
	k1=$(jq -r 'select(.n == 1) | .key' steps)
	[ "$(jq -c .layer "$HYPR_ROOT/cache/${k1#sha256:}.json")" = "$l1" ]
	k2=$(jq -r 'select(.n == 2) | .key' steps)
	# no config in an entry: a hit recomputes it (N ENVs made N-squared bytes)
	run jq -c '[.layer, .empty_layer, .config, .op]' "$HYPR_ROOT/cache/${k2#sha256:}.json"
	assert_output '[null,true,null,"CMD"]'
}

@test "layer: cached steps write no cache entry; only the final stage makes the image" {
	printf 'f a 644 0 0 a\n' | mklayer a.tar
	printf 'f b 644 0 0 b\n' | mklayer b.tar
	a=$(layer_json a.tar)
	b=$(layer_json b.tar)
	k1="sha256:$(echo 1 | sha256sum | cut -d' ' -f1)"
	k2="sha256:$(echo 2 | sha256sum | cut -d' ' -f1)"
	{
		echo '{"hypr":"steps","version":1}'
		jq -cn --argjson a "$a" '{type:"stage",index:0,name:"builder",final:false,base:null,base_layers:[$a],config:{}}'
		jq -cn --argjson b "$b" --arg k "$k1" '{type:"step",stage:0,n:1,op:"RUN",created_by:"RUN x",key:$k,cached:true,layer:$b,config:{},empty_layer:false}'
		jq -cn --argjson a "$a" '{type:"stage",index:1,name:"final",final:true,base:null,base_layers:[$a],config:{User:"app"}}'
		jq -cn --arg k "$k2" '{type:"step",stage:1,n:1,op:"WORKDIR",created_by:"WORKDIR /w",key:$k,cached:false,layer:null,config:{User:"app",WorkingDir:"/w"},empty_layer:true}'
		echo '{"end":true,"records":4}'
	} > steps
	hypr-layer < steps > image
	[ ! -e "$HYPR_ROOT/cache/${k1#sha256:}.json" ]
	[ -f "$HYPR_ROOT/cache/${k2#sha256:}.json" ]
	run jq -c 'select(.type == "image") | [.stage, (.layers | length), .config.WorkingDir, (.history | length)]' image
	assert_output '["final",1,"/w",1]'
}

@test "layer: a step layer missing from the store, a cut stream, no final stage: exit 3" {
	printf 'f a 644 0 0 a\n' | mklayer a.tar
	a=$(layer_json a.tar)
	ghost='{"digest":"sha256:'$(printf '0%.0s' {1..64})'","size":1}'
	steps_stream "$a" "RUN|RUN x|$ghost|{}" > steps
	run --separate-stderr -3 hypr-layer < steps
	[[ $stderr == *"is not in the store"* ]]
	steps_stream "$a" "RUN|RUN x|null|{}" | head -n 2 > cut
	run --separate-stderr -3 hypr-layer < cut
	printf '{"hypr":"steps","version":1}\n{"end":true,"records":0}\n' > empty
	run --separate-stderr -3 hypr-layer < empty
	[[ $stderr == *"no final stage"* ]]
	printf '{"hypr":"plan","version":1}\n' > wrong
	run -3 hypr-layer < wrong
}

@test "layer: a step record with a missing or mistyped field is one error naming it" {
	printf 'f a 644 0 0 a\n' | mklayer a.tar
	a=$(layer_json a.tar)
	steps_stream "$a" "RUN|RUN x|null|{}" | jq -c 'if .type == "step" then del(.key) else . end' > nokey
	run --separate-stderr -3 hypr-layer < nokey
	[ -z "$output" ]
	assert_equal "$stderr" "hypr-layer: steps:3: step record: key: missing"
	steps_stream "$a" "RUN|RUN x|null|{}" | jq -c 'if .type == "step" then .cached = "no" else . end' > badcached
	run --separate-stderr -3 hypr-layer < badcached
	assert_equal "$stderr" "hypr-layer: steps:3: step record: cached: not true or false"
}

@test "layer: --cat reads one file through whiteouts, links and opaque dirs" {
	mklayer a.tar.gz gz <<'EOF2'
d etc 755 0 0
f etc/passwd 644 0 0 root:x:0:0
f etc/group 644 0 0 g1
d usr 755 0 0
d usr/share 755 0 0
f usr/share/base-passwd 644 0 0 shared-passwd
d opt 755 0 0
f opt/conf 644 0 0 c1
f hard 644 0 0 hardcontent
EOF2
	mklayer b.tar <<'EOF2'
w etc/group
l etc/alt ../usr/share/base-passwd
l etc/abs /usr/share/base-passwd
h etc/hl hard
o opt
f opt/new 644 0 0 n
EOF2
	a=$(put_blob a.tar.gz)
	b=$(put_blob b.tar)
	run -0 hypr-layer --cat etc/passwd "$a" "$b"
	assert_output "root:x:0:0"
	run -0 hypr-layer --cat /etc/alt "$a" "$b"
	assert_output "shared-passwd"
	run -0 hypr-layer --cat etc/abs "$a" "$b"
	assert_output "shared-passwd"
	run -0 hypr-layer --cat etc/hl "$a" "$b"
	assert_output "hardcontent"
	run -0 hypr-layer --cat etc/group "$a"
	assert_output "g1"
	run --separate-stderr -3 hypr-layer --cat etc/group "$a" "$b"
	[[ $stderr == *"no such file"* ]]
	run -3 hypr-layer --cat opt/conf "$a" "$b"
	run -0 hypr-layer --cat opt/new "$a" "$b"
	run -3 hypr-layer --cat etc "$a" "$b"
	run -3 hypr-layer --cat etc/passwd "sha256:$(printf '1%.0s' {1..64})"
	run -2 hypr-layer --cat etc/passwd nodigest
}

@test "layer: data of an uncompressed layer is read where it is, not copied (a 1 MiB file-size limit); a gzip'd one is spilled" {
	mkdir -p d
	head -c 3000000 /dev/urandom > d/big
	echo small > d/small
	gnu_layer big.tar d
	gzip -n -c big.tar > big.tar.gz
	# RLIMIT_FSIZE (1024 blocks of 1 KiB) stops any write of a file past
	# 1 MiB: the spill's; a pipe is not limited
	run bash -c 'ulimit -f 1024; hypr-layer --flatten big.tar | tar -xOf - big | cmp - d/big'
	[ "$status" = 0 ]
	run bash -c 'ulimit -f 1024; hypr-layer --flatten big.tar.gz | tar -xOf - big | cmp - d/big'
	[ "$status" != 0 ]
	hypr-layer --flatten big.tar.gz | tar -xOf - big | cmp - d/big
}
