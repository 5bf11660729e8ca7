#!/usr/bin/env bats
# hypr build --cache-to / --cache-from (hypr-cache(5)) against real parts:
# Debian's docker-registry on loopback, an OCI layout directory, the build
# VM. "Machine B" is a second, empty HYPR_ROOT in another directory, with
# the context copied to another path.
load helpers
load lib/registry
load fixtures/layer/lib

setup_file() {
	export REGS="$BATS_FILE_TMPDIR/regs"
	mkdir -p "$REGS"
	PORT=$(reg_start "$REGS/plain")
	APORT=$(reg_start "$REGS/auth" alice s3cret)
	export REG="127.0.0.1:$PORT" AREG="127.0.0.1:$APORT"
	reg_push "$(busybox_layout)" "$REG/busybox:latest"
}

teardown_file() {
	reg_stop "$REGS/plain"
	reg_stop "$REGS/auth"
}

setup() {
	cd "$BATS_TEST_TMPDIR"
	export HYPR_PROGRESS=plain
	export DOCKER_CONFIG="$BATS_TEST_TMPDIR/docker"
	unset HYPR_ROOT REGISTRY_AUTH_FILE XDG_RUNTIME_DIR
	# the context on machine A
	mkdir -p a/ctx
	cat > a/ctx/Dockerfile <<DF
FROM $REG/busybox:latest
COPY one /one
RUN cat /one > /made && echo built >> /made
COPY two /two
RUN cat /two /made > /both
ENV X=1
CMD ["cat", "/both"]
DF
	echo one > a/ctx/one
	echo two > a/ctx/two
}

# on A|B ARGS...: hypr with that machine's store
on() {
	local m=$1
	shift
	HYPR_ROOT="$BATS_TEST_TMPDIR/$m/root" hypr "$@"
}

# machine_b: B's store and a copy of A's context at another path
machine_b() {
	mkdir -p b/elsewhere
	cp -a a/ctx b/elsewhere/ctx
	# a checkout's times differ from machine to machine: no key holds them
	touch -d 2001-02-03T04:05:06 b/elsewhere/ctx/*
}

# boots DIR: the build VMs booted, from a --keep directory
boots() { jq -c 'select(.end) | .vm_boots' "$1/steps.jsonl"; }

# bats test_tags=vm
@test "cache: --cache-to registry, then an empty store elsewhere: same ID, all CACHED, no VM" {
	run --separate-stderr -0 on a build -q --cache-to "type=registry,ref=$REG/cache:main" a/ctx
	id=$output
	[[ $stderr == "" ]]
	# the artifact: hypr's artifactType, the index as config, tar layers
	m=$(skopeo inspect --raw --tls-verify=false "docker://$REG/cache:main")
	run jq -r '.artifactType, .config.mediaType, (.layers | map(.mediaType) | unique[])' <<<"$m"
	assert_output "application/vnd.hypr.cache.v1
application/vnd.hypr.cache.index.v1+json
application/vnd.oci.image.layer.v1.tar"
	machine_b
	run --separate-stderr -0 on b build --keep b/k --cache-from "type=registry,ref=$REG/cache:main" \
		-t b:1 b/elsewhere/ctx
	[[ $stderr == *"writing image $id"* || $stderr == *"$id"* ]]
	assert_equal "$(cat b/k/id)" "$id"
	assert_equal "$(grep -c ' CACHED$' <<<"$stderr")" 6
	assert_equal "$(boots b/k)" 0
	# the final image's four step layers came from the cache, fetched once
	[[ $stderr == *"--cache-from: 4 layer(s) fetched"* ]]
	assert_equal "$(grep -c 'fetching layer sha256:' <<<"$stderr")" 4
	# the keys hold no path: both stores have the same entries for this build
	run -0 jq -r 'select(.key) | .key' b/k/steps.jsonl
	keys=$output
	for k in $keys; do [ -f "a/root/cache/${k#sha256:}.json" ]; done
	# a rebuild on B needs no --cache-from any more
	run --separate-stderr -0 on b build -q b/elsewhere/ctx
	assert_output "$id"
}

# bats test_tags=vm
@test "cache: one changed file on B: the steps before it CACHED, the later ones run" {
	on a build -q --cache-to "type=registry,ref=$REG/cache:two,mode=max" a/ctx >/dev/null
	machine_b
	echo changed > b/elsewhere/ctx/two
	run --separate-stderr -0 on b build --keep b/k --cache-from "type=registry,ref=$REG/cache:two" \
		b/elsewhere/ctx
	run -0 grep -E ' (CACHED|DONE [0-9.]+s)$' <<<"$stderr"
	cached=$(grep -c CACHED <<<"$output")
	assert_equal "$cached" 2
	assert_equal "$(boots b/k)" 1
	run -0 on b run --rm "$(cat b/k/id)"
	assert_output "changed
one
built"
}

# bats test_tags=vm
@test "cache: multi-stage, mode=max: the builder's layers are never downloaded on B" {
	mkdir -p m
	cat > m/Dockerfile <<DF
FROM $REG/busybox:latest AS builder
RUN head -c 2000000 /dev/urandom > /big && echo small > /out
FROM $REG/busybox:latest
COPY --from=builder /out /out
DF
	run -0 on a build -q --cache-to "type=registry,ref=$REG/cache:ms,mode=max" m
	id=$output
	big=$(jq -r 'select(.op == "RUN") | .layer.digest' <<<"$(on a build -q --keep a/k m >/dev/null; cat a/k/steps.jsonl)")
	[ -n "$big" ]
	# mode=max holds the builder's step and its layer
	run -0 skopeo inspect --raw --tls-verify=false "docker://$REG/cache:ms"
	[[ $output == *"$big"* ]]
	mkdir -p b/other && cp -a m b/other/m
	run --separate-stderr -0 on b build --keep b/k --cache-from "type=registry,ref=$REG/cache:ms" b/other/m
	assert_equal "$(cat b/k/id)" "$id"
	assert_equal "$(boots b/k)" 0
	[[ $stderr == *"--cache-from: 1 layer(s) fetched"* ]]
	[ ! -e "b/root/blobs/sha256/${big#sha256:}" ]
}

# bats test_tags=vm
@test "cache: type=local dest= then src=: same ID, no VM; an OCI layout" {
	run -0 on a build -q --cache-to "type=local,dest=$BATS_TEST_TMPDIR/lc" a/ctx
	id=$output
	[ -f lc/oci-layout ]
	run -0 jq -r '.manifests[0].artifactType' lc/index.json
	assert_output application/vnd.hypr.cache.v1
	machine_b
	run --separate-stderr -0 on b build --keep b/k --cache-from "type=local,src=$BATS_TEST_TMPDIR/lc" b/elsewhere/ctx
	assert_equal "$(cat b/k/id)" "$id"
	assert_equal "$(boots b/k)" 0
	assert_equal "$(grep -c ' CACHED$' <<<"$stderr")" 6
}

# bats test_tags=vm
@test "cache: a lying cache blob is a digest error in one line; the build without it is right" {
	on a build -q --cache-to "type=local,dest=$BATS_TEST_TMPDIR/lc" a/ctx >/dev/null
	# every layer of the layout replaced by other bytes
	for l in $(jq -r '.layers[].digest' "lc/blobs/sha256/$(jq -r '.manifests[0].digest' lc/index.json | cut -c8-)"); do
		f=lc/blobs/sha256/${l#sha256:}
		chmod u+w "$f"
		tar -cf "$f" -C a/ctx two
	done
	machine_b
	run --separate-stderr on b build --cache-from "type=local,src=$BATS_TEST_TMPDIR/lc" b/elsewhere/ctx
	[ "$status" -eq 3 ]
	[[ $stderr == *"digest"* ]]
	# no entry was written for the bad bytes: the next build (no cache) is right
	run --separate-stderr -0 on b build -q b/elsewhere/ctx
	run -0 on b run --rm "$output"
	assert_output "two
one
built"
}

# bats test_tags=vm
@test "cache: a registry that serves other bytes for a layer: a digest error in one line" {
	echo "lie $$ $RANDOM" > a/ctx/one	# layers of this test alone
	echo "lie $$ $RANDOM" > a/ctx/two
	on a build -q --cache-to "type=registry,ref=$REG/cache:lie" a/ctx >/dev/null
	m=$(skopeo inspect --raw --tls-verify=false "docker://$REG/cache:lie")
	for l in $(jq -r '.layers[].digest' <<<"$m"); do
		h=${l#sha256:}
		f="$REGS/plain/storage/docker/registry/v2/blobs/sha256/${h:0:2}/$h/data"
		[ -f "$f" ]
		# the same size, other bytes
		head -c "$(stat -c %s "$f")" /dev/zero > "$f"
	done
	machine_b
	run --separate-stderr on b build --cache-from "type=registry,ref=$REG/cache:lie" b/elsewhere/ctx
	[ "$status" -eq 3 ]
	[[ $stderr == *"ERROR: hypr-exec failed"*"sha256:"* ]]
	[ -z "$(ls b/root/cache/*.json 2>/dev/null | xargs -r grep -l "$(jq -r '.layers[0].digest' <<<"$m")")" ]
}

@test "cache: a --cache-from that does not exist is a warning; the build goes on" {
	mkdir -p c
	printf 'FROM %s/busybox:latest\nENV A=1\n' "$REG" > c/Dockerfile
	run --separate-stderr -0 on a build --cache-from "type=registry,ref=$REG/nothing:here" \
		--cache-from "type=local,src=$BATS_TEST_TMPDIR/none" c
	[[ $stderr == *"WARNING"*"--cache-from type=registry,ref=$REG/nothing:here: not imported"* ||
		$stderr == *"--cache-from type=registry,ref=$REG/nothing:here: not imported"* ]]
	[[ $stderr == *"--cache-from type=local,src=$BATS_TEST_TMPDIR/none: not imported"* ]]
}

@test "cache: bad --cache-to and --cache-from values are usage errors before any stage" {
	run --separate-stderr -2 hypr build --cache-to type=gha a/ctx
	[[ $stderr == *"--cache-to: type=gha is not supported"* ]]
	run --separate-stderr -2 hypr build --cache-to type=local a/ctx
	[[ $stderr == *"type=local needs dest=DIR"* ]]
	run --separate-stderr -2 hypr build --cache-from "type=registry,ref=x,mode=all" a/ctx
	[[ $stderr == *"mode=all: want min or max"* ]]
	run -0 hypr build -n --cache-to type=local,dest=/d --cache-from r/c:1 a/ctx
	[[ $output == *"hypr-fetch --cache-from=r/c:1"* ]]
	[[ $output == *"tee /tmp/hypr-cache-steps.jsonl"* ]]
	[[ $output == *"hypr-fetch cache-export --to type=local,dest=/d < /tmp/hypr-cache-steps.jsonl"* ]]
}

# two_stages: a steps stream of a builder stage (a layer) and a final stage
# (a COPY layer, a CMD), their layer blobs in $HYPR_ROOT
two_stages() {
	local d=$BATS_TEST_TMPDIR/ts lb lf lbase
	mkdir -p "$d/b" "$d/f" "$d/base"
	echo big > "$d/b/big"
	echo out > "$d/f/out"
	echo base > "$d/base/base"
	gnu_layer "$d/b.tar" "$d/b"
	gnu_layer "$d/f.tar" "$d/f"
	gnu_layer "$d/base.tar" "$d/base"
	lb=$(layer_json "$d/b.tar")
	lf=$(layer_json "$d/f.tar")
	lbase=$(layer_json "$d/base.tar")
	k() { printf 'sha256:%064d' "$1"; }
	echo '{"hypr":"steps","version":2,"context":"/ctx","build_args":{}}'
	jq -cn --argjson b "$lbase" '{type:"stage",index:0,name:"builder",final:false,
	  base:{ref:"x",digest:"sha256:\("b"*64)"},base_layers:[$b],config:{}}'
	jq -cn --argjson l "$lb" --arg k "$(k 1)" '{type:"step",stage:0,n:1,line:[2,2],
	  op:"RUN",created_by:"RUN make",key:$k,cached:false,layer:$l,config:{}}'
	jq -cn --argjson b "$lbase" '{type:"stage",index:1,name:null,final:true,
	  base:{ref:"x",digest:"sha256:\("b"*64)"},base_layers:[$b],config:{}}'
	jq -cn --argjson l "$lf" --arg k "$(k 2)" '{type:"step",stage:1,n:1,line:[4,4],
	  op:"COPY",created_by:"COPY --from=builder /out /out",key:$k,cached:false,layer:$l}'
	jq -cn --arg k "$(k 3)" '{type:"step",stage:1,n:2,line:[5,5],op:"CMD",
	  created_by:"CMD [\"x\"]",key:$k,cached:true,layer:null,config:{Cmd:["x"]}}'
	echo '{"end":true,"records":5,"vm_boots":0}'
}

@test "cache: hypr-fetch cache-export: mode=min and max, the index, the layout; --cache-from names it in the resolved header" {
	export HYPR_ROOT=$BATS_TEST_TMPDIR/root
	two_stages > steps
	run --separate-stderr -0 hypr-fetch cache-export --to "type=local,dest=$PWD/min" < steps
	[[ $stderr == "exported 2 cache entries to $PWD/min: sha256:"* ]]
	man=min/blobs/sha256/$(jq -r '.manifests[0].digest' min/index.json | cut -c8-)
	run -0 jq -r '.artifactType, .config.mediaType, (.layers | length)' "$man"
	assert_output "application/vnd.hypr.cache.v1
application/vnd.hypr.cache.index.v1+json
1"
	idx=min/blobs/sha256/$(jq -r .config.digest "$man" | cut -c8-)
	run -0 jq -c '[.hypr, .version, [.entries[] | [.op, (.layer != null)]]]' "$idx"
	assert_output '["hypr-cache",1,[["COPY",true],["CMD",false]]]'
	# every blob is its digest
	for f in min/blobs/sha256/*; do
		[ "$(sha256sum "$f" | cut -d' ' -f1)" = "${f##*/}" ]
	done
	run --separate-stderr -0 hypr-fetch cache-export -q --to "type=registry,ref=$REG/ce:max,mode=max" < steps
	[ -z "$stderr" ]
	m=$(skopeo inspect --raw --tls-verify=false "docker://$REG/ce:max")
	assert_equal "$(jq '.layers | length' <<<"$m")" 2
	# import, into another store: the header names the index, stored
	printf 'FROM scratch\nCMD ["x"]\n' > Dockerfile
	export HYPR_ROOT=$BATS_TEST_TMPDIR/other
	run --separate-stderr -0 bash -c "hypr-parse -f Dockerfile | hypr-fetch --cache-from=type=local,src=$PWD/min \
		--cache-from=type=registry,ref=$REG/ce:max --cache-from=$REG/ce:absent"
	[[ $stderr == *"--cache-from $REG/ce:absent: not imported"* ]]
	run -0 jq -c 'select(.hypr) | [.cache_from[].source]' <<<"$output"
	assert_output "[\"type=local,src=$PWD/min\",\"type=registry,ref=$REG/ce:max\"]"
	for d in $(jq -r 'select(.hypr) | .cache_from[].index' <<<"$output"); do
		[ -f "$HYPR_ROOT/blobs/sha256/${d#sha256:}" ]
	done
	# a steps stream cut short exports nothing
	head -n 3 steps | hypr-fetch cache-export --to "type=local,dest=$PWD/cut" && false
	[ ! -e cut/index.json ]
}

@test "cache: an htpasswd registry: refused without hypr login (a warning on import), then out and in" {
	mkdir -p c
	printf 'FROM %s/busybox:latest\nCOPY f /f\nENV A=1\n' "$REG" > c/Dockerfile
	echo "auth $$" > c/f
	run --separate-stderr on a build -q --cache-to "type=registry,ref=$AREG/cache:a" c
	[ "$status" -eq 4 ]
	[[ $stderr == *"unauthorized"*"(hypr login $AREG)"* ]]
	hypr login -u alice --password-stdin "$AREG" <<<"s3cret" >/dev/null
	run --separate-stderr -0 on a build -q --cache-to "type=registry,ref=$AREG/cache:a" c
	id=$output
	# no VM in this build: B's store is empty, its context elsewhere
	mkdir -p b/x && cp -a c b/x/c
	run --separate-stderr -0 on b build --keep b/k --cache-from "type=registry,ref=$AREG/cache:a" b/x/c
	assert_equal "$(cat b/k/id)" "$id"
	assert_equal "$(grep -c ' CACHED$' <<<"$stderr")" 2
	[[ $stderr == *"--cache-from: 1 layer(s) fetched"* ]]
	hypr logout "$AREG" >/dev/null
	run --separate-stderr -0 on b build -q --no-cache --cache-from "type=registry,ref=$AREG/cache:a" b/x/c
	assert_output "$id"
	run --separate-stderr -0 env HYPR_ROOT="$BATS_TEST_TMPDIR/c/root" hypr build --iidfile iid \
		--cache-from "type=registry,ref=$AREG/cache:a" b/x/c
	[[ $stderr == *"--cache-from type=registry,ref=$AREG/cache:a: not imported"*"unauthorized"* ]]
	assert_equal "$(cat iid)" "$id"
}
