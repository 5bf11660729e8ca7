#!/usr/bin/env bats
# hypr tag, hypr push and hypr history against real parts: Debian's
# docker-registry on loopback (plain and with htpasswd basic auth), read
# back with skopeo.
load helpers
load lib/registry
load lib/dockerd
load fixtures/layer/lib

setup_file() {
	export REGS="$BATS_FILE_TMPDIR/regs"
	mkdir -p "$REGS"
	PORT=$(reg_start "$REGS/plain")
	APORT=$(reg_start "$REGS/auth" alice s3cret)
	export REG="127.0.0.1:$PORT" AREG="127.0.0.1:$APORT"
}

teardown_file() {
	reg_stop "$REGS/plain"
	reg_stop "$REGS/auth"
}

teardown() {
	dockerd_stop "$BATS_TEST_TMPDIR/dockerd"
	if [ -f "$BATS_TEST_TMPDIR/flaky.pid" ]; then
		kill "$(cat "$BATS_TEST_TMPDIR/flaky.pid")" 2>/dev/null || true
	fi
}

setup() {
	fresh_root
	cd "$BATS_TEST_TMPDIR"
	export DOCKER_CONFIG="$BATS_TEST_TMPDIR/docker"
	unset REGISTRY_AUTH_FILE XDG_RUNTIME_DIR
}

# tree DIR: one line per entry below DIR: path, type, mode, size of a file
# or a link's target
tree() {
	(cd "$1" && find . -mindepth 1 \( -type d -printf '%P d %m\n' \) -o \
		\( -type l -printf '%P l %m %l\n' \) -o -printf '%P %y %m %s\n' | LC_ALL=C sort)
}

# oci_flatten LAYOUT OUT: the layers of the layout's first image unpacked in order
oci_flatten() {
	local m l
	m="$1/blobs/sha256/$(jq -r '.manifests[0].digest' "$1/index.json" | cut -c8-)"
	mkdir -p "$2"
	for l in $(jq -r '.layers[].digest' "$m"); do
		tar -xzf "$1/blobs/sha256/${l#sha256:}" -C "$2" --numeric-owner
	done
}

# pushed ARGS: run hypr push ARGS (stderr apart) that must exit 0; if it
# does not, its stderr and the end of the plain registry's log say why.
pushed() {
	run --separate-stderr hypr push "$@"
	[ "$status" = 0 ] && return 0
	echo "hypr push $*: exit $status: $stderr" >&2
	tail -20 "$REGS/plain/log" >&2
	return 1
}

# puts LOG: the blob uploads in a registry's access log
puts() { grep -cE '"(PUT|PATCH) /v2/[^ ]*/blobs/uploads/' "$1" || true; }

# republish REPO SUBJECT FILTER: replace the hypr manifest of SUBJECT's
# squashfs artifact with itself through jq FILTER (a new blob, artifact and
# referrers tag); prints the new artifact's digest
republish() {
	local repo=$1 subject=$2 ix a md loc ed ad
	ix=$(curl -s -H 'Accept: application/vnd.oci.image.index.v1+json' \
		"http://$REG/v2/$repo/manifests/sha256-${subject#sha256:}")
	a=$(curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
		"http://$REG/v2/$repo/manifests/$(jq -r '.manifests[0].digest' <<<"$ix")")
	md=$(jq -r '.layers[1].digest' <<<"$a")
	curl -s "http://$REG/v2/$repo/blobs/$md" | jq -c "$3" > evil.json
	loc=$(curl -s -D - -o /dev/null -X POST "http://$REG/v2/$repo/blobs/uploads/" |
		tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
	ed="sha256:$(sha256sum < evil.json | cut -d' ' -f1)"
	curl -s -f -X PUT -H 'Content-Type: application/octet-stream' --data-binary @evil.json \
		"$loc&digest=$ed"
	jq -c --arg d "$ed" --argjson s "$(stat -c %s evil.json)" \
		'.layers[1].digest = $d | .layers[1].size = $s' <<<"$a" > art.json
	ad="sha256:$(sha256sum < art.json | cut -d' ' -f1)"
	curl -s -f -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
		--data-binary @art.json "http://$REG/v2/$repo/manifests/$ad"
	jq -c --arg d "$ad" --argjson s "$(stat -c %s art.json)" \
		'.manifests[0].digest = $d | .manifests[0].size = $s' <<<"$ix" > ix.json
	curl -s -f -X PUT -H 'Content-Type: application/vnd.oci.image.index.v1+json' \
		--data-binary @ix.json "http://$REG/v2/$repo/manifests/sha256-${subject#sha256:}"
	echo "$ad"
}

@test "push: skopeo reads back the image: the same tree, config, history; the squashfs artifact refers to it" {
	id=$(build_image "$REG/x:1")
	pushed "$REG/x:1"
	[[ $output =~ ^1:\ digest:\ sha256:[0-9a-f]{64}\ size:\ [0-9]+$ ]]
	digest=$(cut -d' ' -f3 <<<"$output")
	[[ $stderr == "The push refers to repository [$REG/x]"* ]]
	[[ $stderr == *": Pushed"* ]]
	skopeo copy -q --src-tls-verify=false "docker://$REG/x:1" "oci:$BATS_TEST_TMPDIR/oci:x"
	oci_flatten "$BATS_TEST_TMPDIR/oci" flat
	unsquashfs -q -n -d sq "$HYPR_ROOT/images/${id#sha256:}.squashfs" > /dev/null
	run tree flat
	flat=$output
	run tree sq
	assert_output "$flat"
	[ -n "$flat" ]
	# the manifest, its gzip'd layers and the OCI config
	m=$(skopeo inspect --raw --tls-verify=false "docker://$REG/x:1")
	[ "sha256:$(printf '%s' "$m" | sha256sum | cut -d' ' -f1)" = "$digest" ]
	run jq -r '.mediaType, .config.mediaType, (.layers | map(.mediaType) | unique[])' <<<"$m"
	assert_output "application/vnd.oci.image.manifest.v1+json
application/vnd.oci.image.config.v1+json
application/vnd.oci.image.layer.v1.tar+gzip"
	cfg=$(skopeo inspect --config --raw --tls-verify=false "docker://$REG/x:1")
	hm="$HYPR_ROOT/images/${id#sha256:}.json"
	[ "$(jq -c .rootfs.diff_ids <<<"$cfg")" = "$(jq -c '[.layers[].diff_id]' "$hm")" ]
	[ "$(jq -cS .config <<<"$cfg")" = "$(jq -cS .config "$hm")" ]
	run jq -c '[.history[] | [.created_by, .comment, .empty_layer]]' <<<"$cfg"
	assert_output '[["FROM docker.io/library/busybox:latest","base layer",null],["COPY run /app/run",null,null],["LABEL l=x",null,true]]'
	# the squashfs: an artifact manifest whose subject is the image, listed
	# under the referrers tag of OCI distribution 1.1
	ix=$(skopeo inspect --raw --tls-verify=false "docker://$REG/x:sha256-${digest#sha256:}")
	run jq -r '.manifests[] | .artifactType' <<<"$ix"
	assert_output application/vnd.hypr.squashfs.v1
	ad=$(jq -r '.manifests[0].digest' <<<"$ix")
	a=$(curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REG/v2/x/manifests/$ad")
	[ "$(jq -r .subject.digest <<<"$a")" = "$digest" ]
	[ "$(jq -r .artifactType <<<"$a")" = application/vnd.hypr.squashfs.v1 ]
	sd=$(jq -r .layers[0].digest <<<"$a")
	[ "$sd" = "$(jq -r .squashfs.digest "$hm")" ]
	curl -s "http://$REG/v2/x/blobs/$sd" | cmp - "$HYPR_ROOT/images/${id#sha256:}.squashfs"
	[ -z "$(ls "$HYPR_ROOT/tmp")" ] || [ -z "$(ls "$HYPR_ROOT"/tmp/*)" ]
}

@test "push: a second push uploads no blob" {
	build_image "$REG/again:1" > /dev/null
	run -0 hypr push -q "$REG/again:1"
	n=$(puts "$REGS/plain/log")
	[ "$n" -gt 0 ]
	# nor compresses again: pushed/ remembers each tar's gzip'd digest.
	# Proof: the stored tars now hold other bytes, which compressed would
	# give other digests to upload.
	for d in $(jq -r '.layers[]? | select(.media_type | test("gzip") | not) | .digest' \
	    "$HYPR_ROOT"/images/*.json | sort -u); do
		f=$HYPR_ROOT/blobs/sha256/${d#sha256:}
		[ -f "$f" ]
		printf 'other bytes' >> "$f"
	done
	pushed "$REG/again:1"
	[ "$(puts "$REGS/plain/log")" = "$n" ]
	run grep -c ': Layer already exists' <<<"$stderr"
	[ "$output" = 6 ]
	[[ $stderr != *": Pushed"$'\n'* ]]
}

@test "push --no-artifact: the OCI image alone (no squashfs blob, no referrer); a pull of it is a base" {
	id=$(build_image "$REG/bare:1")
	pushed --no-artifact "$REG/bare:1"
	digest=$(cut -d' ' -f3 <<<"$output")
	[[ $digest == sha256:* ]]
	sq=$(jq -r .squashfs.digest "$HYPR_ROOT/images/${id#sha256:}.json")
	run -0 curl -s -o /dev/null -w '%{http_code}' -I "http://$REG/v2/bare/blobs/$sq"
	[ "$output" = 404 ]
	run -0 curl -s -o /dev/null -w '%{http_code}' \
		"http://$REG/v2/bare/manifests/sha256-${digest#sha256:}"
	[ "$output" = 404 ]
	# the image itself is whole: skopeo reads it, and a pull stores it as a base
	run -0 skopeo inspect --raw --tls-verify=false "docker://$REG/bare:1"
	[ "$(jq '.layers | length' <<<"$output")" -ge 1 ]
	hypr tag "$REG/bare:1" "$REG/bare:2"
	hypr rmi "$REG/bare:1"
	run --separate-stderr -0 hypr pull "$REG/bare:1"
	[ "$(hypr image inspect -f '{{if .Hypr.squashfs}}built{{else}}base{{end}}' "$REG/bare:1")" = base ]
	# the full push of the same image adds the artifact beside it
	pushed "$REG/bare:2"
	run -0 curl -s -o /dev/null -w '%{http_code}' -I "http://$REG/v2/bare/blobs/$sq"
	[ "$output" = 200 ]
}

@test "push: a base layer pulled from another repository of the registry is mounted, not uploaded" {
	reg_push "$(busybox_layout)" "$REG/base:1"
	img=$(hypr-fetch pull --json "$REG/base:1")
	base=$(jq -c '{digest: .layers[0].digest, diff_id: .diff_ids[0],
	  size: (.layers[0].size // 0), media_type: (.layers[0].mediaType // .layers[0].media_type)}' <<<"$img")
	[ "$(jq -r .media_type <<<"$base")" != null ]
	mkdir -p s/app
	echo hi > s/app/hi
	gnu_layer l1.tar s
	step=$(layer_json l1.tar)
	steps_stream "$base" "COPY|COPY hi /app/hi|$step|{\"Cmd\":[\"sh\"]}" |
		sed "s|docker.io/library/busybox:latest|$REG/base:1|" |
		hypr-layer | hypr-squash | hypr-store -q -t "$REG/app:1"
	before=$(puts "$REGS/plain/log")
	pushed "$REG/app:1"
	hex=$(jq -r .digest <<<"$base")
	[[ $stderr == *"${hex:7:12}: Mounted from base"* ]]
	run grep -c 'POST /v2/app/blobs/uploads/?mount=' "$REGS/plain/log"
	[ "$output" = 1 ]
	# the mounted layer is not uploaded: the new layer, config, squashfs,
	# the hypr manifest, {}
	[ "$(puts "$REGS/plain/log")" = $((before + 5)) ]
	skopeo copy -q --src-tls-verify=false "docker://$REG/app:1" "oci:$BATS_TEST_TMPDIR/oci:x"
	oci_flatten "$BATS_TEST_TMPDIR/oci" flat
	[ -n "$(ls flat/bin)" ]
	[ "$(cat flat/app/hi)" = hi ]
}

@test "push: large blobs go in PATCH chunks, each verified" {
	mkdir -p big/data
	head -c 300000 /dev/urandom > big/data/blob
	gnu_layer big.tar big
	base=$(layer_json big.tar)
	steps_stream "$base" 'CMD|CMD x|null|{"Cmd":["x"]}' | hypr-layer | hypr-squash |
		hypr-store -q -t "$REG/big:1"
	before=$(grep -c '"PATCH ' "$REGS/plain/log" || true)
	HYPR_PUSH_CHUNK=64K pushed "$REG/big:1"
	[[ $stderr == *"Pushing 64 KiB/"* ]]
	after=$(grep -c '"PATCH ' "$REGS/plain/log")
	[ $((after - before)) -ge 5 ]
	skopeo copy -q --src-tls-verify=false "docker://$REG/big:1" "oci:$BATS_TEST_TMPDIR/oci:x"
	oci_flatten "$BATS_TEST_TMPDIR/oci" flat
	cmp flat/data/blob big/data/blob
}

@test "push: a layer is gzip'd on its way up; a gzip that fails half way commits nothing" {
	mkdir -p big/data
	head -c 6000000 /dev/urandom > big/data/blob
	gnu_layer big.tar big
	steps_stream "$(layer_json big.tar)" 'CMD|CMD x|null|{"Cmd":["x"]}' | hypr-layer |
		hypr-squash | hypr-store -q -t "$REG/cut:1"
	d=$(jq -r '.layers[0].digest // empty' "$HYPR_ROOT"/images/*.json)
	f=$HYPR_ROOT/blobs/sha256/${d#sha256:}
	cp "$f" saved.tar
	before=$(grep -c '"PUT /v2/cut/blobs/uploads/[^ ]* HTTP/1.1" 201' "$REGS/plain/log" || true)
	# 64 KiB windows of the stream go up one PATCH at a time; once the
	# first has arrived, the layer shrinks under the compressor (which
	# reads ahead at most a slice of 1 MiB per core and what the socket
	# holds), and its stream fails half way
	patches() { grep -c '"PATCH /v2/cut/blobs/uploads/' "$REGS/plain/log" || true; }
	p0=$(patches)
	HYPR_PUSH_JOBS=1 HYPR_PUSH_CHUNK=64K hypr push "$REG/cut:1" > /dev/null 2> err &
	pid=$!
	for _ in $(seq 600); do [ "$(patches)" -gt "$p0" ] && break; sleep 0.05; done
	truncate -s 0 "$f"
	st=0
	wait "$pid" || st=$?
	cat err >&2
	[ "$st" = 4 ]
	grep -q "hypr-fetch: layer sha256:.*: gzip: the file shrank while it was read" err
	# the partial stream went up in PATCH chunks but was never PUT (at
	# most the squashfs was, before it)
	after=$(grep -c '"PUT /v2/cut/blobs/uploads/[^ ]* HTTP/1.1" 201' "$REGS/plain/log" || true)
	[ $((after - before)) -le 1 ]
	run curl -s -o /dev/null -w '%{http_code}' "http://$REG/v2/cut/manifests/1"
	assert_output 404
	# the layer back: it streams in 64 KiB PATCH chunks, then one PUT
	# with its digest, which skopeo reads back
	cp saved.tar "$f"
	HYPR_PUSH_CHUNK=64K pushed "$REG/cut:1"
	skopeo copy -q --src-tls-verify=false "docker://$REG/cut:1" "oci:$BATS_TEST_TMPDIR/oci:x"
	oci_flatten "$BATS_TEST_TMPDIR/oci" flat
	cmp flat/data/blob big/data/blob
}

@test "push: a chunked upload whose connection drops resumes where the registry's Range says, or starts again when the registry dropped the upload" {
	# tests/lib/flaky.py in front of the registry: the 2nd PATCH never
	# arrives (resume at 64 KiB), the 4th arrives cut in half and the 7th's
	# answer is lost (distribution then forgets the upload: a new one)
	printf 'PATCH 2 drop\nPATCH 4 half\nPATCH 7 noanswer\n' > plan
	python3 "$HYPR_SRC/tests/lib/flaky.py" "${REG##*:}" fport plan flog > /dev/null 2>&1 &
	echo $! > flaky.pid
	for _ in $(seq 300); do [ -s fport ] && break; sleep 0.1; done
	FREG=127.0.0.1:$(cat fport)
	mkdir -p big/data
	head -c 300000 /dev/urandom > big/data/blob
	gnu_layer big.tar big
	steps_stream "$(layer_json big.tar)" 'CMD|CMD x|null|{"Cmd":["x"]}' | hypr-layer |
		hypr-squash | hypr-store -q -t "$FREG/flaky:1"
	# one blob at a time, the costliest first: the plan's PATCH numbers
	# are then the big layer's (a stream of unknown size)
	HYPR_PUSH_JOBS=1 HYPR_PUSH_CHUNK=64K pushed "$FREG/flaky:1"
	[[ $stderr == *": Resuming at 64 KiB"*"(127.0.0.1:"*": PATCH request: "*")"* ]]
	[[ $stderr == *": Restarting the upload (127.0.0.1:"* ]]
	run grep -c '^PATCH .* \(drop\|half\|noanswer\)$' flog
	[ "$output" = 3 ]
	# a GET of the upload's status after each drop
	[ "$(grep -c '^GET /v2/flaky/blobs/uploads/' flog)" = 3 ]
	skopeo copy -q --src-tls-verify=false "docker://$REG/flaky:1" "oci:$BATS_TEST_TMPDIR/oci:x"
	oci_flatten "$BATS_TEST_TMPDIR/oci" flat
	cmp flat/data/blob big/data/blob
	# a monolithic PUT whose answer is lost: the blob is there (HEAD), done
	build_image "$FREG/mono:1" > /dev/null
	n=$(grep -c '^PUT ' flog)
	printf 'PUT %d noanswer\n' $((n + 1)) > plan
	pushed "$FREG/mono:1"
	[ "$(grep -c 'noanswer$' flog)" = 2 ]
	[[ $stderr != *Restarting* ]]
}

@test "push: --all-tags pushes every tag of the name; unknown tags and digests refused" {
	build_image "$REG/multi:a" > /dev/null
	hypr tag "$REG/multi:a" "$REG/multi:b"
	hypr tag "$REG/multi:a" "$REG/multi/other:c"
	pushed --all-tags "$REG/multi"
	[ "$(cut -d' ' -f1 <<<"$output")" = "a:
b:" ]
	run -0 skopeo list-tags --tls-verify=false "docker://$REG/multi"
	[ "$(jq -c '[.Tags[] | select(startswith("sha256-") | not)] | sort' <<<"$output")" = '["a","b"]' ]
	run --separate-stderr -3 hypr push "$REG/multi:nope"
	[ "$stderr" = "hypr-fetch: An image does not exist locally with the tag: $REG/multi:nope" ]
	run --separate-stderr -2 hypr push "$REG/multi@sha256:$(printf 'a%.0s' {1..64})"
	run --separate-stderr -2 hypr push -a "$REG/multi:a"
}

@test "push: the auth registry needs hypr login: refused in one line, exit 4; then pushed" {
	build_image "$AREG/sec:1" > /dev/null
	run --separate-stderr -4 hypr push "$AREG/sec:1"
	[ "${#stderr_lines[@]}" = 2 ]
	[ "${stderr_lines[0]}" = "The push refers to repository [$AREG/sec]" ]
	[[ ${stderr##*$'\n'} == "hypr-fetch: blob sha256:"*": $AREG: unauthorized: authentication required (hypr login $AREG)" ]]
	hypr login -u alice --password-stdin "$AREG" <<<"s3cret"
	mkdir -p bin
	printf '#!/bin/sh\necho "$*" >> "%s"\nexec /usr/bin/curl "$@"\n' "$BATS_TEST_TMPDIR/argv" > bin/curl
	chmod +x bin/curl
	PATH="$BATS_TEST_TMPDIR/bin:$PATH" pushed "$AREG/sec:1"
	[[ $output == "1: digest: sha256:"* ]]
	run grep -c s3cret "$BATS_TEST_TMPDIR/argv"
	[ "$output" = 0 ]
	run -0 skopeo inspect --raw --tls-verify=false --creds alice:s3cret "docker://$AREG/sec:1"
	hypr logout "$AREG"
	run --separate-stderr -4 hypr push "$AREG/sec:1"
}

@test "push: a registry that is gone is exit 4 naming it" {
	build_image 127.0.0.1:1/gone:1 > /dev/null
	HYPR_NET_RETRIES=1 run --separate-stderr -4 hypr push 127.0.0.1:1/gone:1
	[[ ${stderr##*$'\n'} == "hypr-fetch: blob sha256:"*": 127.0.0.1:1: "* ]]
}

@test "pull: an image hypr pushed comes back with its squashfs: the same image ID and squashfs, nothing squashed" {
	id=$(build_image "$REG/round:1")
	hm="$HYPR_ROOT/images/${id#sha256:}.json"
	sq=$(jq -r .squashfs.digest "$hm")
	run -0 hypr push -q "$REG/round:1"
	digest=$(cut -d' ' -f3 <<<"$output")
	# the artifact carries the hypr manifest beside the squashfs
	ix=$(curl -s -H 'Accept: application/vnd.oci.image.index.v1+json' \
		"http://$REG/v2/round/manifests/sha256-${digest#sha256:}")
	a=$(curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
		"http://$REG/v2/round/manifests/$(jq -r '.manifests[0].digest' <<<"$ix")")
	run jq -r '.layers[].mediaType' <<<"$a"
	assert_output "application/vnd.hypr.squashfs.v1
application/vnd.hypr.manifest.v1+json"
	hypr rmi "$REG/round:1"
	[ ! -e "$hm" ]
	# an empty store: the layers, config, squashfs and manifest all come
	# from the registry; no hypr-squash runs
	rm -rf "$HYPR_ROOT"
	mkdir -p bin
	printf '#!/bin/sh\necho squash >> "%s"\nexit 1\n' "$BATS_TEST_TMPDIR/sq.log" > bin/hypr-squash
	chmod +x bin/hypr-squash
	PATH="$BATS_TEST_TMPDIR/bin:$PATH" HYPR_SQUASH="$BATS_TEST_TMPDIR/bin/hypr-squash" \
		run --separate-stderr -0 hypr pull "$REG/round:1"
	[ "$output" = "$digest" ]
	[[ $stderr == *"stored image $id (the squashfs hypr pushed)"* ]]
	[ ! -e sq.log ]
	[ "$(hypr images -q --no-trunc "$REG/round:1")" = "$id" ]
	[ "$(jq -r .squashfs.digest "$hm")" = "$sq" ]
	[ "sha256:$(sha256sum < "$HYPR_ROOT/images/${id#sha256:}.squashfs" | cut -d' ' -f1)" = "$sq" ]
	# its layer tars are back in the store: it pushes again as it was
	# (nothing uploaded, nothing compressed)
	n=$(puts "$REGS/plain/log")
	pushed "$REG/round:1"
	[ "$output" = "1: digest: $digest size: $(cut -d' ' -f5 <<<"$output")" ]
	[ "$(puts "$REGS/plain/log")" = "$n" ]
}

@test "pull: a plain OCI image (no artifact) is a base as before; a lying artifact is refused" {
	reg_push "$(busybox_layout)" "$REG/plainbase:1"
	run --separate-stderr -0 hypr pull "$REG/plainbase:1"
	[[ $stderr != *"stored image"* ]]
	# a base image (listed as docker lists pulled images), no squashfs
	[ "$(hypr image inspect -f '{{if .Hypr.squashfs}}built{{else}}base{{end}}' "$REG/plainbase:1")" = base ]
	# an artifact whose manifest was changed: its ID no longer checks out
	id=$(build_image "$REG/liar:1")
	run -0 hypr push -q "$REG/liar:1"
	digest=$(cut -d' ' -f3 <<<"$output")
	hypr rmi "$REG/liar:1"
	ad=$(republish liar "$digest" '.cmd = ["evil"]')
	run --separate-stderr -3 hypr pull "$REG/liar:1"
	[[ ${stderr##*$'\n'} == "hypr-fetch: $REG: artifact $ad: the manifest's ID or squashfs does not check out" ]]
	[ "$(hypr image inspect -f '{{if .Hypr.squashfs}}built{{else}}base{{end}}' "$REG/liar:1")" = base ]
	# squashfs.file is not in the ID: what the registry says is not used
	republish liar "$digest" '.cmd = ["/app/run"] | .squashfs.file = "../../../escape.squashfs"' > /dev/null
	# the image is in the store now: --pull=missing asks no registry
	run --separate-stderr -0 hypr pull --pull=missing "$REG/liar:1"
	[ "$(hypr image inspect -f '{{if .Hypr.squashfs}}built{{else}}base{{end}}' "$REG/liar:1")" = base ]
	run --separate-stderr -0 hypr pull --pull=always "$REG/liar:1"
	[ "$(jq -r .squashfs.file "$HYPR_ROOT/images/${id#sha256:}.json")" = "${id#sha256:}.squashfs" ]
	[ "$(hypr images -q --no-trunc "$REG/liar:1")" = "$id" ]
}

# bats test_tags=vm
@test "pull: an image hypr pushed boots from the pulled squashfs in an empty store (hypr run --rm)" {
	run -0 hypr load --name bb:1 "$(busybox_layout)"
	img=$(hypr-fetch pull --json --pull=never bb:1)
	base=$(jq -c '{digest: .layers[0].digest, diff_id: .diff_ids[0],
	  size: .layers[0].size, media_type: .layers[0].media_type}' <<<"$img")
	mkdir -p osr/etc
	printf 'PRETTY_NAME="hypr pulled"\n' > osr/etc/os-release
	gnu_layer osr.tar osr
	steps_stream "$base" "COPY|COPY os-release /etc/os-release|$(layer_json osr.tar)|{\"Cmd\":[\"cat\",\"/etc/os-release\"]}" |
		hypr-layer | hypr-squash | hypr-store -q -t "$REG/boot:1"
	id=$(hypr images -q --no-trunc "$REG/boot:1")
	run -0 hypr push -q "$REG/boot:1"
	export HYPR_ROOT="$BATS_TEST_TMPDIR/empty"
	run -0 hypr pull -q "$REG/boot:1"
	[ "$(hypr images -q --no-trunc "$REG/boot:1")" = "$id" ]
	run --separate-stderr -0 hypr run --rm "$REG/boot:1"
	assert_output 'PRETTY_NAME="hypr pulled"'
}

# bats test_tags=docker
@test "interop: docker pulls the image hypr pushed and runs it (--network=none); docker load reads hypr save" {
	dockerd_start "$BATS_TEST_TMPDIR/dockerd"
	run -0 hypr load --name bb:1 "$(busybox_layout)"
	img=$(hypr-fetch pull --json --pull=never bb:1)
	base=$(jq -c '{digest: .layers[0].digest, diff_id: .diff_ids[0],
	  size: .layers[0].size, media_type: .layers[0].media_type}' <<<"$img")
	mkdir -p osr/etc
	printf 'PRETTY_NAME="hypr interop"\nID=hyprtest\n' > osr/etc/os-release
	gnu_layer osr.tar osr
	steps_stream "$base" "COPY|COPY os-release /etc/os-release|$(layer_json osr.tar)|{\"Cmd\":[\"cat\",\"/etc/os-release\"]}" |
		hypr-layer | hypr-squash | hypr-store -q -t "$REG/interop:1"
	run -0 hypr push -q "$REG/interop:1"
	run -0 docker pull -q "$REG/interop:1"
	run -0 docker run --rm --network=none "$REG/interop:1"
	assert_output 'PRETTY_NAME="hypr interop"
ID=hyprtest'
	run -0 docker run --rm --network=none "$REG/interop:1" cat /etc/os-release
	[[ $output == *'ID=hyprtest'* ]]
	# the same image as a docker-archive, through docker load
	docker rmi -f "$REG/interop:1" > /dev/null
	hypr tag "$REG/interop:1" hyprsave:1
	run -0 sh -c 'hypr save hyprsave:1 | docker load'
	assert_output "Loaded image: hyprsave:1"
	run -0 docker image inspect --format '{{json .RootFS.Layers}}' hyprsave:1
	[ "$output" = "$(jq -c '[.layers[].diff_id]' "$HYPR_ROOT"/images/"$(hypr images -q --no-trunc hyprsave:1 | cut -c8-)".json)" ]
	run -0 docker run --rm --network=none hyprsave:1
	[[ $output == *'ID=hyprtest'* ]]
	# the OCI layout carries docker's manifest.json too: an older docker loads it
	docker rmi -f hyprsave:1 > /dev/null
	run -0 sh -c 'hypr save --format oci hyprsave:1 | docker load'
	assert_output "Loaded image: hyprsave:1"
	run -0 docker run --rm --network=none hyprsave:1
	[[ $output == *'ID=hyprtest'* ]]
}

@test "history: docker's columns, newest first, <missing> below the top, --no-trunc, -q" {
	printf 'f a 644 0 0 a\n' | mklayer a.tar
	a=$(layer_json a.tar)
	printf 'f b 644 0 0 bb\n' | mklayer b.tar
	b=$(layer_json b.tar)
	long='RUN /bin/sh -c apt-get update && apt-get install -y --no-install-recommends ca-certificates'
	export SOURCE_DATE_EPOCH=0
	steps_stream "$a" "RUN|$long|$b|{\"Cmd\":[\"sh\"]}" \
		'CMD|CMD ["sh"]|null|{"Cmd":["sh"]}' | hypr-layer | hypr-squash |
		hypr-store -q -t hist:1
	id=$(hypr images -q --no-trunc hist:1)
	age=$(hypr images --format '{{.CreatedSince}}' hist:1)
	[[ $age == *" ago" ]]
	# SIZE: the stored layer's size, docker's human form
	[ "$(stat -c %s a.tar) $(stat -c %s b.tar)" = "10240 10240" ]
	hsa=10.2kB hsb=10.2kB
	run -0 hypr history hist:1
	exp=$(printf '%-15s%-15s%-48s%-10s%s\n' IMAGE CREATED 'CREATED BY' SIZE COMMENT \
		"${id:7:12}" "$age" 'CMD ["sh"]' 0B '' \
		'<missing>' "$age" 'RUN /bin/sh -c apt-get update && apt-get ins' "$hsb" '' \
		'<missing>' "$age" 'FROM docker.io/library/busybox:latest' "$hsa" 'base layer')
	exp=${exp//'apt-get ins '/'apt-get ins…'}
	assert_output "$exp"
	run -0 hypr image history --no-trunc hist:1
	assert_line --index 1 --regexp "^$id   $age   CMD \[\"sh\"\] +0B +\$"
	assert_line --index 2 --partial "   $long   "
	run -0 hypr history -q hist:1
	assert_output "${id:7:12}
<missing>
<missing>"
	run --separate-stderr -3 hypr history nope
	[ "$stderr" = "hypr-store: No such image: nope" ]
	run -2 hypr history
}

@test "build --push: the image is built, stored and pushed under each -t; -q keeps stdout to the ID" {
	mkdir ctx
	echo hi > ctx/hi
	printf 'FROM scratch\nCOPY hi /hi\nCMD ["/hi"]\n' > ctx/Dockerfile
	run --separate-stderr -0 hypr build --progress=plain --push -t "$REG/bp:1" -t "$REG/bp:2" ctx
	[[ $output == *"1: digest: sha256:"*"2: digest: sha256:"* ]]
	run -0 skopeo inspect --raw --tls-verify=false "docker://$REG/bp:2"
	[ "$(jq -r '.layers | length' <<<"$output")" = 1 ]
	run --separate-stderr -0 hypr build -q --push -t "$REG/bp:3" ctx
	[[ $output =~ ^sha256:[0-9a-f]{64}$ ]]
	[ "$output" = "$(hypr images -q --no-trunc "$REG/bp:1")" ]
	run -0 skopeo inspect --raw --tls-verify=false "docker://$REG/bp:3"
	# a push that fails is the build's failure, exit 4
	run --separate-stderr -4 env HYPR_NET_RETRIES=1 hypr build -q --push -t 127.0.0.1:1/bp:1 ctx
	[[ ${stderr##*$'\n'} == "hypr-fetch: blob sha256:"*": 127.0.0.1:1: "* ]]
	run -0 hypr build -n --push -t "$REG/bp:1" ctx
	[[ ${output##*$'\n'} == "hypr-fetch push $REG/bp:1" ]]
}

@test "compose push: the services built here that name an image, with their build tags" {
	mkdir -p proj/app
	echo hi > proj/app/hi
	printf 'FROM scratch\nCOPY hi /hi\n' > proj/app/Dockerfile
	cat > proj/compose.yaml <<EOC
services:
  app:
    build:
      context: app
      tags: ["$REG/cp:extra"]
    image: $REG/cp:1
  noname:
    build: app
  other:
    image: busybox
EOC
	run -0 hypr compose -f proj/compose.yaml build
	run --separate-stderr -0 hypr compose -f proj/compose.yaml push
	[[ $output == *"1: digest: sha256:"*"extra: digest: sha256:"* ]]
	[[ $stderr == *"hypr compose: noname: no image: to push to, skipped"* ]]
	run -0 skopeo inspect --raw --tls-verify=false "docker://$REG/cp:extra"
	run -0 hypr compose -f proj/compose.yaml push --dry-run app
	assert_output "hypr push $REG/cp:1
hypr push $REG/cp:extra"
	run --separate-stderr -0 hypr compose -f proj/compose.yaml push -q noname other
	[ -z "$output" ]
	run -2 hypr compose -f proj/compose.yaml push nope
}
