#!/usr/bin/env bats
# hypr-fetch against real parts: Debian's docker-registry (plain and with
# htpasswd basic auth), images pushed by skopeo, and fakereg.py for
# registries that lie (wrong digest, truncated blob, 404, 429, stalls).
load helpers
load lib/registry

setup_file() {
	export REGS="$BATS_FILE_TMPDIR/regs"
	mkdir -p "$REGS"
	BB=$(busybox_layout)
	export BB
	export MULTI="$BATS_FILE_TMPDIR/multi"
	reg_multiarch_layout "$MULTI"
	PORT=$(reg_start "$REGS/plain")
	APORT=$(reg_start "$REGS/auth" alice s3cret)
	FPORT=$(fake_start "$REGS/fake" "$BB")
	reg_tls_certs "$REGS/certs"
	TPORT=$(REG_TLS="$REGS/certs" reg_start "$REGS/tls")
	export PORT APORT FPORT TPORT
	export REG="127.0.0.1:$PORT" AREG="127.0.0.1:$APORT" FREG="127.0.0.1:$FPORT"
	export TREG="localhost:$TPORT"
	reg_push "$BB" "$REG/busybox:latest"
	reg_push "$BB" "$REG/busybox:v2s2" --format v2s2
	reg_push "$MULTI" "$REG/multi:latest" --all
	reg_push "$BB" "$AREG/busybox:latest" --dest-creds alice:s3cret
	reg_push "$BB" "$TREG/busybox:latest"
}

teardown_file() {
	reg_stop "$REGS/plain"
	reg_stop "$REGS/auth"
	reg_stop "$REGS/fake"
	reg_stop "$REGS/tls"
}

setup() {
	fresh_root
	export DOCKER_CONFIG="$BATS_TEST_TMPDIR/docker"
	unset REGISTRY_AUTH_FILE XDG_RUNTIME_DIR
	echo ok > "$REGS/fake/mode"
	: > "$REGS/fake/log"
}

teardown() {
	# a registry a test started itself (it would hold bats's output open)
	reg_stop "$BATS_TEST_TMPDIR/reg"
}

# The digest skopeo (an independent client) sees for a reference.
skopeo_digest() {
	skopeo inspect --tls-verify=false --raw "docker://$1" "${@:2}" | sha256sum | sed 's/^/sha256:/; s/ .*//'
}

# A plan stream as hypr-parse writes it.
plan() {
	local base=$1 from=$2 plat=${3:-null}
	jq -cn '{hypr: "plan", version: 1, dockerfile: "Dockerfile", context: null,
	  target: null, platform: "linux/amd64", build_args: {}, directives: {}}'
	jq -cn --arg b "$base" --argjson p "$plat" '{type: "stage", index: 0, name: "b",
	  line: [1, 1], from: $b, base: $b, platform: $p, final: false}'
	jq -cn '{type: "instr", stage: 0, line: [2, 2], op: "RUN", original: "RUN true",
	  flags: {}, args: ["true"], form: "shell"}'
	jq -cn '{type: "stage", index: 1, name: null, line: [3, 3], from: "b", base: "b",
	  base_stage: 0, platform: null, final: true}'
	jq -cn --arg f "$from" '{type: "instr", stage: 1, line: [4, 4], op: "COPY",
	  original: "COPY --from=x / /", flags: {from: $f}, args: ["/", "/"], form: null}'
	jq -cn '{type: "instr", stage: 1, line: [5, 5], op: "COPY",
	  original: "COPY --from=b / /", flags: {from: "b"}, from_stage: 0, args: ["/", "/"]}'
	jq -cn '{type: "stage", index: 2, name: null, line: [6, 6], from: "scratch",
	  base: "scratch", platform: null, final: false}'
	echo '{"end":true,"records":6}'
}

@test "fetch: bad reference is exit 3 and names it" {
	run --separate-stderr -3 hypr-fetch pull 'Busybox:latest'
	[[ $stderr == *"Busybox:latest"*"must be lowercase"* ]]
	run --separate-stderr -3 hypr-fetch pull "$REG/busybox:bad tag"
	[[ $stderr == "hypr-fetch: invalid reference"* ]]
}

@test "fetch: pull by tag stores verified blobs and a tag record" {
	run --separate-stderr -0 hypr-fetch pull "$REG/busybox"
	[ "$output" = "$(skopeo_digest "$REG/busybox:latest")" ]
	run --separate-stderr -0 hypr-fetch pull --json "$REG/busybox:latest"
	img=$output
	for d in $(jq -r '.digest, .config, .layers[].digest' <<<"$img"); do
		[ "$(sha256sum < "$HYPR_ROOT/blobs/sha256/${d#sha256:}" | cut -d' ' -f1)" = "${d#sha256:}" ]
	done
	[ "$(jq -r .platform <<<"$img")" = linux/amd64 ]
	[ "$(jq -r '.diff_ids | length' <<<"$img")" = 1 ]
	[ -f "$HYPR_ROOT/refs/$REG/busybox/_tags/latest" ]
	[ -z "$(ls "$HYPR_ROOT/tmp")" ]
}

@test "fetch: pull by digest; a present digest needs no network" {
	d=$(skopeo_digest "$REG/busybox:latest")
	run --separate-stderr -0 hypr-fetch pull "$REG/busybox@$d"
	[ "$output" = "$d" ]
	# the same content through fakereg; then it refuses everything
	run -0 hypr-fetch pull "$FREG/busybox@$d"
	: > "$REGS/fake/log"
	echo 429 > "$REGS/fake/mode"
	run -0 hypr-fetch pull --pull=always "$FREG/busybox@$d"
	[ ! -s "$REGS/fake/log" ]
}

@test "fetch: platform choice from an index skips attestations" {
	amd=$(jq -r '.manifests[2].digest' "$MULTI/blobs/sha256/$(jq -r '.manifests[0].digest' "$MULTI/index.json" | cut -c8-)")
	arm=$(jq -r '.manifests[1].digest' "$MULTI/blobs/sha256/$(jq -r '.manifests[0].digest' "$MULTI/index.json" | cut -c8-)")
	run --separate-stderr -0 hypr-fetch pull --json "$REG/multi"
	[ "$(jq -r .digest <<<"$output")" = "$amd" ]
	[ "$(jq -r .platform <<<"$output")" = linux/amd64 ]
	[ "$(jq -r .index <<<"$output")" = "$(skopeo_digest "$REG/multi:latest")" ]
	run --separate-stderr -0 hypr-fetch pull --json --platform linux/aarch64 "$REG/multi"
	[ "$(jq -r .digest <<<"$output")" = "$arm" ]
	[ "$(jq -r .platform <<<"$output")" = linux/arm64 ]
	run --separate-stderr -3 hypr-fetch pull --platform linux/s390x "$REG/multi"
	[[ $stderr == *"no image for platform linux/s390x (index has: linux/arm64, linux/amd64)"* ]]
}

@test "fetch: Docker v2 schema 2 manifest" {
	run --separate-stderr -0 hypr-fetch pull --json "$REG/busybox:v2s2"
	[ "$(jq -r .media_type <<<"$output")" = application/vnd.docker.distribution.manifest.v2+json ]
	[ "$(jq -r '.layers[0].media_type' <<<"$output")" = application/vnd.docker.image.rootfs.diff.tar.gzip ]
}

@test "fetch: basic auth: none, config.json, wrong password, REGISTRY_AUTH_FILE" {
	run --separate-stderr -4 hypr-fetch pull "$AREG/busybox"
	[[ $stderr == *"$AREG/busybox:latest"*"authentication required"* ]]
	mkdir -p "$DOCKER_CONFIG"
	printf '{"auths":{"http://%s":{"auth":"%s"}}}' "$AREG" "$(printf alice:wrong | base64)" \
		> "$DOCKER_CONFIG/config.json"
	run --separate-stderr -4 hypr-fetch pull "$AREG/busybox"
	[[ $stderr == *"rejected the credentials"* ]]
	[[ $stderr != *wrong* ]]
	printf '{"auths":{"%s":{"auth":"%s"}}}' "$AREG" "$(printf alice:s3cret | base64)" \
		> "$DOCKER_CONFIG/config.json"
	run -0 hypr-fetch pull "$AREG/busybox"
	rm "$DOCKER_CONFIG/config.json" "$HYPR_ROOT/refs/$AREG/busybox/_tags/latest"
	printf '{"auths":{"%s":{"username":"alice","password":"s3cret"}}}' "$AREG" \
		> "$BATS_TEST_TMPDIR/auth.json"
	REGISTRY_AUTH_FILE="$BATS_TEST_TMPDIR/auth.json" run -0 hypr-fetch pull "$AREG/busybox"
	# containers' host/namespace keys: the longest matching one wins
	printf '{"auths":{"%s":{"auth":"%s"},"%s/busybox":{"auth":"%s"},"%s/bus":{"auth":"%s"}}}' \
		"$AREG" "$(printf alice:wrong | base64)" "$AREG" "$(printf alice:s3cret | base64)" \
		"$AREG" "$(printf alice:wrong | base64)" > "$BATS_TEST_TMPDIR/auth.json"
	REGISTRY_AUTH_FILE="$BATS_TEST_TMPDIR/auth.json" run -0 hypr-fetch pull --pull=always "$AREG/busybox"
	REGISTRY_AUTH_FILE="$BATS_TEST_TMPDIR/auth.json" run -4 hypr-fetch pull "$AREG/other"
}

@test "fetch: HTTPS with a per-registry CA under certs.d; untrusted is exit 4" {
	run --separate-stderr -4 hypr-fetch pull "$TREG/busybox"
	[[ $stderr == *"$TREG/busybox:latest"*"not trusted"* ]]
	mkdir -p "$HYPR_ROOT/certs.d/$TREG"
	cp "$REGS/certs/ca.crt" "$HYPR_ROOT/certs.d/$TREG/ca.crt"
	run --separate-stderr -0 hypr-fetch pull "$TREG/busybox"
	[ "$output" = "$(skopeo_digest "$REG/busybox:latest")" ]
}

@test "fetch: credentials from a credential helper" {
	mkdir -p "$BATS_TEST_TMPDIR/bin" "$DOCKER_CONFIG"
	printf '#!/bin/sh\nread s\n[ "$s" = "%s" ] || exit 1\necho "{\\"Username\\":\\"alice\\",\\"Secret\\":\\"s3cret\\"}"\n' \
		"$AREG" > "$BATS_TEST_TMPDIR/bin/docker-credential-hyprtest"
	chmod +x "$BATS_TEST_TMPDIR/bin/docker-credential-hyprtest"
	printf '{"credHelpers":{"%s":"hyprtest"}}' "$AREG" > "$DOCKER_CONFIG/config.json"
	PATH="$BATS_TEST_TMPDIR/bin:$PATH" run -0 hypr-fetch pull "$AREG/busybox"
	printf '{"credsStore":"hyprtest"}' > "$DOCKER_CONFIG/config.json"
	PATH="$BATS_TEST_TMPDIR/bin:$PATH" run -0 hypr-fetch pull --pull=always "$AREG/busybox"
}

@test "fetch: an identity token is exchanged with an OAuth2 refresh grant" {
	echo oauth > "$REGS/fake/mode"
	run --separate-stderr -4 hypr-fetch pull "$FREG/busybox"
	mkdir -p "$DOCKER_CONFIG"
	printf '{"auths":{"%s":{"auth":"%s","identitytoken":"refresh-xyz"}}}' "$FREG" \
		"$(printf '<token>:' | base64)" > "$DOCKER_CONFIG/config.json"
	run -0 hypr-fetch pull "$FREG/busybox"
	grep -q "POST /token.*'refresh_token'" "$REGS/fake/log"
	[ "$(grep -c refresh-xyz "$REGS/fake/log")" = 0 ]
}

@test "fetch: login checks and stores credentials; logout removes them; never on argv" {
	mkdir -p "$BATS_TEST_TMPDIR/bin"
	printf '#!/bin/sh\necho "$*" >> "%s"\nexec /usr/bin/curl "$@"\n' "$BATS_TEST_TMPDIR/argv" \
		> "$BATS_TEST_TMPDIR/bin/curl"
	chmod +x "$BATS_TEST_TMPDIR/bin/curl"
	run --separate-stderr -4 hypr-fetch login -u alice --password-stdin "$AREG" <<<"nope"
	[ ! -e "$DOCKER_CONFIG/config.json" ]
	PATH="$BATS_TEST_TMPDIR/bin:$PATH" run -0 hypr-fetch login -u alice --password-stdin "$AREG" <<<"s3cret"
	[ "$output" = "Login Succeeded" ]
	[ "$(stat -c %a "$DOCKER_CONFIG/config.json")" = 600 ]
	PATH="$BATS_TEST_TMPDIR/bin:$PATH" run -0 hypr-fetch pull "$AREG/busybox"
	[ -s "$BATS_TEST_TMPDIR/argv" ]
	run grep -c s3cret "$BATS_TEST_TMPDIR/argv"
	[ "$output" = 0 ]
	run -0 hypr-fetch logout "$AREG"
	run -4 hypr-fetch pull --pull=always "$AREG/busybox"
	run -3 hypr-fetch logout "$AREG"
}

@test "fetch: unknown tag is exit 3 naming the reference" {
	run --separate-stderr -3 hypr-fetch pull "$REG/busybox:nope"
	[[ $stderr == *"hypr-fetch: $REG/busybox:nope: "*"not found (HTTP 404)" ]]
	echo 404 > "$REGS/fake/mode"
	run --separate-stderr -3 hypr-fetch pull "$FREG/busybox"
}

@test "fetch: registry stopped is exit 4; what was pulled still resolves" {
	p=$(reg_start "$BATS_TEST_TMPDIR/reg")
	reg_push "$BB" "127.0.0.1:$p/busybox:latest"
	run -0 hypr-fetch pull "127.0.0.1:$p/busybox"
	reg_stop "$BATS_TEST_TMPDIR/reg"
	run --separate-stderr -4 hypr-fetch pull "127.0.0.1:$p/other"
	[[ $stderr == *"127.0.0.1:$p/other:latest"*"connection refused (4 attempts)" ]]
	run --separate-stderr -4 hypr-fetch pull --pull=always "127.0.0.1:$p/busybox"
	plan "127.0.0.1:$p/busybox" "127.0.0.1:$p/busybox" > "$BATS_TEST_TMPDIR/plan"
	run --separate-stderr -0 hypr-fetch < "$BATS_TEST_TMPDIR/plan"
	[ "$(sed -n 2p <<<"$output" | jq -r .image.ref)" = "127.0.0.1:$p/busybox:latest" ]
}

@test "fetch: 429 says rate limited" {
	echo 429 > "$REGS/fake/mode"
	run --separate-stderr -4 hypr-fetch pull "$FREG/busybox"
	[[ $stderr == *"rate limited (HTTP 429 Too Many Requests), retry after 3600 s"* ]]
}

@test "fetch: a blob whose bytes do not match its digest never enters the store" {
	echo baddigest > "$REGS/fake/mode"
	run --separate-stderr -3 hypr-fetch pull "$FREG/busybox"
	[[ $stderr == *"$FREG/busybox:latest"*"digest mismatch"* ]]
	cfg=$(jq -r .config.digest "$BB/blobs/sha256/$(jq -r '.manifests[0].digest' "$BB/index.json" | cut -c8-)")
	lay=$(jq -r '.layers[0].digest' "$BB/blobs/sha256/$(jq -r '.manifests[0].digest' "$BB/index.json" | cut -c8-)")
	[ ! -e "$HYPR_ROOT/blobs/sha256/${cfg#sha256:}" ]
	[ ! -e "$HYPR_ROOT/blobs/sha256/${lay#sha256:}" ]
	[ -z "$(ls "$HYPR_ROOT/tmp")" ]
}

@test "fetch: a truncated blob is retried with Range, then exit 4, nothing stored" {
	echo truncate > "$REGS/fake/mode"
	run --separate-stderr -4 hypr-fetch pull "$FREG/busybox"
	[[ $stderr == *"truncated"* ]]
	# the config comes first (its diff_ids check the layers as they arrive)
	cfg=$(jq -r .config.digest "$BB/blobs/sha256/$(jq -r '.manifests[0].digest' "$BB/index.json" | cut -c8-)")
	lay=$(jq -r '.layers[0].digest' "$BB/blobs/sha256/$(jq -r '.manifests[0].digest' "$BB/index.json" | cut -c8-)")
	[ ! -e "$HYPR_ROOT/blobs/sha256/${cfg#sha256:}" ]
	[ ! -e "$HYPR_ROOT/blobs/sha256/${lay#sha256:}" ]
	grep -q "blobs/$cfg bytes=" "$REGS/fake/log"
}

@test "fetch: Ctrl-C mid-pull, then the next pull resumes with Range" {
	# blobs of 4 KiB or more stall: the config arrives, the layer hangs
	echo stall 4096 > "$REGS/fake/mode"
	lay=$(jq -r '.layers[0].digest' "$BB/blobs/sha256/$(jq -r '.manifests[0].digest' "$BB/index.json" | cut -c8-)")
	part="$HYPR_ROOT/tmp/fetch-${lay#sha256:}.part"
	# a process group of its own with SIGINT at default, as at a terminal
	python3 -c 'import os, signal, sys
os.setsid(); signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])' \
		hypr-fetch pull "$FREG/busybox" 2>/dev/null &
	pid=$!
	for _ in $(seq 100); do
		[ "$(stat -c %s "$part" 2>/dev/null || echo 0)" -gt 0 ] && break
		sleep 0.1
	done
	sleep 0.3
	kill -INT -- "-$pid"
	st=0
	wait "$pid" || st=$?
	[ "$st" = 130 ]
	# the signal handler removed the pull's temp directory; the partial
	# blob stays for the next pull
	run -0 find "$HYPR_ROOT/tmp" -mindepth 1 -maxdepth 1 -type d
	assert_output ""
	have=$(stat -c %s "$part")
	[ "$have" -gt 0 ]
	echo ok > "$REGS/fake/mode"
	run -0 hypr-fetch pull "$FREG/busybox"
	grep -q "blobs/$lay bytes=$have-" "$REGS/fake/log"
	[ -e "$HYPR_ROOT/blobs/sha256/${lay#sha256:}" ]
	[ ! -e "$part" ]
}

@test "fetch: a second pull asks for the manifest only; --pull=missing asks nothing" {
	run -0 hypr-fetch pull "$FREG/busybox"
	grep -q /blobs/ "$REGS/fake/log"
	: > "$REGS/fake/log"
	# docker pull checks the tag every time: the manifest, no blob
	run --separate-stderr -0 hypr-fetch pull "$FREG/busybox"
	grep -q /manifests/ "$REGS/fake/log"
	run grep -c /blobs/ "$REGS/fake/log"
	[ "$output" = 0 ]
	: > "$REGS/fake/log"
	run --separate-stderr -0 hypr-fetch pull --pull=missing "$FREG/busybox"
	[ ! -s "$REGS/fake/log" ]
	[ -z "$stderr" ]
}

@test "fetch: pull checks a stored tag: a new image under it is pulled, a logout fails it" {
	p=$(reg_start "$BATS_TEST_TMPDIR/reg" alice s3cret)
	r="127.0.0.1:$p"
	reg_push "$BB" "$r/app:1" --dest-creds alice:s3cret
	echo s3cret | hypr-fetch login -u alice --password-stdin "$r"
	run --separate-stderr -0 hypr-fetch pull "$r/app:1"
	old=$output
	[[ $stderr == *"Status: Downloaded newer image for $r/app:1"* ]]
	run --separate-stderr -0 hypr-fetch pull "$r/app:1"
	[ "$output" = "$old" ]
	[[ $stderr == *"Status: Image is up to date for $r/app:1"* ]]
	# another image under the same tag
	mkdir -p "$BATS_TEST_TMPDIR/x" && echo new > "$BATS_TEST_TMPDIR/x/new"
	tar -C "$BATS_TEST_TMPDIR/x" -cf "$BATS_TEST_TMPDIR/extra.tar" new
	"$HYPR_SRC/tests/lib/mkbase.sh" "$BATS_TEST_TMPDIR/bb2" amd64 "$BATS_TEST_TMPDIR/extra.tar" >&2
	reg_push "$BATS_TEST_TMPDIR/bb2" "$r/app:1" --dest-creds alice:s3cret
	new=$(skopeo_digest "$r/app:1" --creds alice:s3cret)
	[ "$new" != "$old" ]
	# a build (plan mode, --pull=missing) keeps the stored tag, asks nothing
	plan "$r/app:1" "$r/app:1" > "$BATS_TEST_TMPDIR/plan"
	: > "$BATS_TEST_TMPDIR/reg/log"
	run --separate-stderr -0 hypr-fetch < "$BATS_TEST_TMPDIR/plan"
	[ "$(sed -n 2p <<<"$output" | jq -r .image.digest)" = "$old" ]
	run grep -c "GET /v2/" "$BATS_TEST_TMPDIR/reg/log"
	[ "$output" = 0 ]
	run --separate-stderr -0 hypr-fetch pull "$r/app:1"
	[ "$output" = "$new" ]
	[[ $stderr == *"Status: Downloaded newer image for $r/app:1"* ]]
	[ "$(jq -r .digest "$HYPR_ROOT/refs/$r/app/_tags/1")" = "$new" ]
	run --separate-stderr -0 hypr-fetch < "$BATS_TEST_TMPDIR/plan"
	[ "$(sed -n 2p <<<"$output" | jq -r .image.digest)" = "$new" ]
	# logged out: the registry refuses, the stored tag does not hide it
	hypr-fetch logout "$r"
	run --separate-stderr -4 hypr-fetch pull "$r/app:1"
	[[ $stderr == *"$r/app:1"*"authentication required"* ]]
	# a build's default policy (missing) still needs no registry
	run --separate-stderr -0 hypr-fetch pull --pull=missing "$r/app:1"
	[ "$output" = "$new" ]
	reg_stop "$BATS_TEST_TMPDIR/reg"
}

@test "fetch: plan stream gets image and from_image; stages and scratch pass through" {
	plan "$REG/busybox" "$REG/multi" > "$BATS_TEST_TMPDIR/plan"
	run --separate-stderr -0 hypr-fetch < "$BATS_TEST_TMPDIR/plan"
	printf '%s\n' "$output" > "$BATS_TEST_TMPDIR/out"
	[ "$(head -1 "$BATS_TEST_TMPDIR/out" | jq -r .hypr)" = resolved ]
	[ "$(tail -1 "$BATS_TEST_TMPDIR/out")" = '{"end":true,"records":6}' ]
	[ "$(sed -n 2p "$BATS_TEST_TMPDIR/out" | jq -r .image.ref)" = "$REG/busybox:latest" ]
	[ "$(sed -n 4p "$BATS_TEST_TMPDIR/out" | jq -r 'has("image")')" = false ]
	[ "$(sed -n 5p "$BATS_TEST_TMPDIR/out" | jq -r .from_image.platform)" = linux/amd64 ]
	[ "$(sed -n 6p "$BATS_TEST_TMPDIR/out" | jq -r 'has("from_image")')" = false ]
	[ "$(sed -n 7p "$BATS_TEST_TMPDIR/out" | jq -r 'has("image")')" = false ]
	# FROM --platform picks the stage's image
	plan "$REG/multi" "$REG/busybox" '"linux/arm64"' > "$BATS_TEST_TMPDIR/plan2"
	run -0 hypr-fetch < "$BATS_TEST_TMPDIR/plan2"
	[ "$(sed -n 2p <<<"$output" | jq -r .image.platform)" = linux/arm64 ]
}

@test "fetch: truncated plan is exit 3; --pull=never without the image is exit 4" {
	plan "$REG/busybox" "$REG/busybox" | head -3 > "$BATS_TEST_TMPDIR/plan"
	run --separate-stderr -3 hypr-fetch < "$BATS_TEST_TMPDIR/plan"
	plan "$REG/busybox" "$REG/busybox" > "$BATS_TEST_TMPDIR/plan"
	export HYPR_ROOT="$BATS_TEST_TMPDIR/root2"
	run --separate-stderr -4 hypr-fetch --pull=never < "$BATS_TEST_TMPDIR/plan"
	[[ $stderr == "hypr-fetch: line 1: $REG/busybox:latest: not in the store and --pull=never" ]]
}

@test "fetch: load an OCI layout, then FROM busybox resolves offline" {
	run -0 hypr-fetch load --name busybox:latest "$BB"
	[[ $output == "Loaded image: docker.io/library/busybox:latest sha256:"* ]]
	plan busybox busybox > "$BATS_TEST_TMPDIR/plan"
	run --separate-stderr -0 hypr-fetch --pull=never < "$BATS_TEST_TMPDIR/plan"
	[ "$(sed -n 2p <<<"$output" | jq -r .image.ref)" = docker.io/library/busybox:latest ]
	# a build's default policy needs no network either (docker.io is
	# unreachable here); a bare pull asks the registry, as docker pull does
	run -0 hypr-fetch pull --pull=missing busybox
}

@test "fetch: load a docker-save tar; hostile tars are refused" {
	m="$BB/blobs/sha256/$(jq -r '.manifests[0].digest' "$BB/index.json" | cut -c8-)"
	d="$BATS_TEST_TMPDIR/save"
	mkdir -p "$d/l1"
	cp "$BB/blobs/sha256/$(jq -r .config.digest "$m" | cut -c8-)" "$d/config.json"
	gunzip < "$BB/blobs/sha256/$(jq -r '.layers[0].digest' "$m" | cut -c8-)" > "$d/l1/layer.tar"
	echo '[{"Config":"config.json","RepoTags":["saved:v1"],"Layers":["l1/layer.tar"]}]' > "$d/manifest.json"
	tar -C "$d" -cf "$BATS_TEST_TMPDIR/save.tar" manifest.json config.json l1
	run -0 hypr-fetch load "$BATS_TEST_TMPDIR/save.tar"
	[[ $output == "Loaded image: docker.io/library/saved:v1 sha256:"* ]]
	run -0 hypr-fetch pull --pull=never --json saved:v1
	[ "$(jq -r '.layers[0].media_type' <<<"$output")" = application/vnd.oci.image.layer.v1.tar ]
	# a lying layer (does not match its diff_id) is refused
	echo junk >> "$d/l1/layer.tar"
	tar -C "$d" -cf "$BATS_TEST_TMPDIR/bad.tar" manifest.json config.json l1
	run --separate-stderr -3 hypr-fetch load "$BATS_TEST_TMPDIR/bad.tar"
	[[ $stderr == *"does not match diff_id"* ]]
	# path traversal inside the archive
	python3 -c 'import tarfile, io, sys
t = tarfile.open(sys.argv[1], "w")
i = tarfile.TarInfo("../../escaped"); i.size = 2
t.addfile(i, io.BytesIO(b"x\n")); t.close()' "$BATS_TEST_TMPDIR/evil.tar"
	run --separate-stderr -3 hypr-fetch load "$BATS_TEST_TMPDIR/evil.tar"
	[ ! -e "$HYPR_ROOT/escaped" ] && [ ! -e "$HYPR_ROOT/../escaped" ]
	[ -z "$(ls "$HYPR_ROOT/tmp")" ]
}

# A short leash for the slow-registry tests: cut below 1000 bytes/s after
# 2 s, two attempts.
slow_env() {
	export HYPR_NET_SPEED_LIMIT=1000 HYPR_NET_SPEED_TIME=2 HYPR_NET_RETRIES=2
}

# busybox's config and layer digests
bb_digests() {
	local m="$BB/blobs/sha256/$(jq -r '.manifests[0].digest' "$BB/index.json" | cut -c8-)"
	cfg=$(jq -r .config.digest "$m")
	lay=$(jq -r '.layers[0].digest' "$m")
}

@test "fetch: a blob that stalls is cut by the speed limit, resumed with Range, then exit 4 naming it" {
	slow_env
	bb_digests
	echo "after 1000" > "$REGS/fake/mode"
	SECONDS=0
	run --separate-stderr -4 hypr-fetch pull -q "$FREG/busybox"
	[ "$stderr" = "hypr-fetch: $FREG/busybox:latest: $FREG: blob $lay: timed out: stalled below 1000 bytes/s for 2 s (HYPR_NET_SPEED_LIMIT, HYPR_NET_SPEED_TIME) (2 attempts)" ]
	[ "$SECONDS" -lt 30 ]
	# the second attempt resumed where the first stopped
	grep -q "blobs/$lay bytes=1000-" "$REGS/fake/log"
	# nothing partial in the store; the partial file waits for a resume
	[ ! -e "$HYPR_ROOT/blobs/sha256/${lay#sha256:}" ]
	[ "$(stat -c %s "$HYPR_ROOT/tmp/fetch-${lay#sha256:}.part")" = 2000 ]
	[ -e "$HYPR_ROOT/blobs/sha256/${cfg#sha256:}" ]
	[ ! -e "$HYPR_ROOT/refs/$FREG" ]
	echo ok > "$REGS/fake/mode"
	run -0 hypr-fetch pull -q "$FREG/busybox"
	grep -q "blobs/$lay bytes=2000-" "$REGS/fake/log"
	[ -e "$HYPR_ROOT/blobs/sha256/${lay#sha256:}" ]
}

@test "fetch: a registry that drips, hangs or never finishes is cut; exit 4 with why" {
	slow_env
	bb_digests
	want() {
		[ "$stderr" = "hypr-fetch: $FREG/busybox:latest: $FREG: blob $1: timed out: $2" ]
	}
	# headers, then a byte every half second
	echo "drip 0.5" > "$REGS/fake/mode"
	run --separate-stderr -4 hypr-fetch pull -q "$FREG/busybox"
	want "$cfg" "stalled below 1000 bytes/s for 2 s (HYPR_NET_SPEED_LIMIT, HYPR_NET_SPEED_TIME) (2 attempts)"
	# the request read, nothing answered
	echo hang > "$REGS/fake/mode"
	run --separate-stderr -4 hypr-fetch pull -q "$FREG/busybox"
	want "$cfg" "no answer in 2 s (HYPR_NET_SPEED_TIME) (2 attempts)"
	# fast enough for the speed limit, too slow for the deadline:
	# HYPR_NET_TIMEOUT + size / HYPR_NET_MIN_RATE = 1 + 1 s
	echo "drip 0.02" > "$REGS/fake/mode"
	HYPR_NET_SPEED_LIMIT=1 HYPR_NET_TIMEOUT=1 HYPR_NET_MIN_RATE=1G \
		run --separate-stderr -4 hypr-fetch pull -q "$FREG/busybox"
	want "$cfg" "not done within 2 s (HYPR_NET_TIMEOUT + size / HYPR_NET_MIN_RATE) (2 attempts)"
	# only the manifest is stored
	[ "$(ls "$HYPR_ROOT/blobs/sha256")" = "$(jq -r '.manifests[0].digest' "$BB/index.json" | cut -c8-)" ]
	# a bad value is a usage error
	HYPR_NET_SPEED_TIME=soon run --separate-stderr -2 hypr-fetch pull -q "$FREG/busybox"
	[ "$stderr" = "hypr-fetch: HYPR_NET_SPEED_TIME='soon': expected a positive number" ]
}

@test "fetch: a Content-Length longer than the body on a kept-alive connection: cut, then resumed complete" {
	slow_env
	bb_digests
	echo longcl > "$REGS/fake/mode"
	SECONDS=0
	run -0 hypr-fetch pull -q "$FREG/busybox"
	[ "$SECONDS" -lt 30 ]
	# every byte came in the first attempt; the digest decides
	[ "$(grep -c "blobs/$lay" "$REGS/fake/log")" = 1 ]
	[ -e "$HYPR_ROOT/blobs/sha256/${lay#sha256:}" ]
	[ -z "$(ls "$HYPR_ROOT/tmp")" ]
}

# evil_start KIND CONFIG_FILTER MANIFEST_FILTER: fakereg serving busybox
# rewritten by the filters (see reg_edit_layout) as $EREG/evil
evil_start() {
	reg_edit_layout "$BB" "$BATS_TEST_TMPDIR/$1" "$2" "$3"
	EPORT=$(fake_start "$BATS_TEST_TMPDIR/reg-$1" "$BATS_TEST_TMPDIR/$1")
	EVIL_REGS+=("$BATS_TEST_TMPDIR/reg-$1")
	EREG=127.0.0.1:$EPORT
}

teardown() {
	local d
	for d in "${EVIL_REGS[@]}"; do
		reg_stop "$d"
	done
}

ZERO=sha256:0000000000000000000000000000000000000000000000000000000000000000

@test "fetch: a config whose diff_id lies is exit 3 naming image, layer and both digests; nothing unverified is used" {
	bb_digests
	real=$(jq -r '.rootfs.diff_ids[0]' "$BB/blobs/sha256/${cfg#sha256:}")
	evil_start diff ".rootfs.diff_ids = [\"$ZERO\"]" .
	# downloaded: checked as it streams, never stored
	run --separate-stderr -3 hypr-fetch pull -q "$EREG/evil"
	[ "$stderr" = "hypr-fetch: $EREG/evil:latest: $EREG: layer $lay: diff_id mismatch: the config says $ZERO, the layer decompresses to $real" ]
	[ ! -e "$HYPR_ROOT/blobs/sha256/${lay#sha256:}" ]
	[ ! -e "$HYPR_ROOT/refs/$EREG" ]
	[ -z "$(ls "$HYPR_ROOT/tmp")" ]
	# already stored (by an honest image): checked against its record
	run -0 hypr-fetch pull -q "$FREG/busybox"
	[ "$(cat "$HYPR_ROOT/diffids/${lay#sha256:}")" = "$real" ]
	run --separate-stderr -3 hypr-fetch pull -q "$EREG/evil"
	[ "$stderr" = "hypr-fetch: $EREG/evil:latest: layer $lay: diff_id mismatch: the config says $ZERO, the layer decompresses to $real" ]
	# a plan naming it fails at its FROM line
	plan "$EREG/evil" "$FREG/busybox" > "$BATS_TEST_TMPDIR/plan"
	run --separate-stderr -3 hypr-fetch < "$BATS_TEST_TMPDIR/plan"
	[ "$stderr" = "hypr-fetch: line 1: $EREG/evil:latest: layer $lay: diff_id mismatch: the config says $ZERO, the layer decompresses to $real" ]
	# a store without the record (older hypr, hypr load) decompresses once
	rm -r "$HYPR_ROOT/diffids"
	run -0 hypr-fetch pull --pull=never -q "$FREG/busybox"
	[ "$(cat "$HYPR_ROOT/diffids/${lay#sha256:}")" = "$real" ]
	run -3 hypr-fetch pull -q "$EREG/evil"
	# hypr load checks an OCI layout's layers the same way
	export HYPR_ROOT="$BATS_TEST_TMPDIR/root2"
	run --separate-stderr -3 hypr-fetch load --name evil:1 "$BATS_TEST_TMPDIR/diff"
	[ "$stderr" = "hypr-fetch: load: $BATS_TEST_TMPDIR/diff: layer $lay: diff_id mismatch: the config says $ZERO, the layer decompresses to $real" ]
	[ ! -e "$HYPR_ROOT/blobs/sha256/${lay#sha256:}" ]
	[ ! -e "$HYPR_ROOT/refs" ]
}

@test "fetch: sizes are checked before downloading: config over 16 MiB, layer over HYPR_PULL_MAX_LAYER or unlike the stored blob" {
	bb_digests
	lsize=$(stat -c %s "$BB/blobs/sha256/${lay#sha256:}")
	evil_start big '.config.Labels.pad = ("x" * 17000000)' .
	big=$(jq -r .config.digest "$BATS_TEST_TMPDIR/big/blobs/sha256/$(jq -r '.manifests[0].digest' "$BATS_TEST_TMPDIR/big/index.json" | cut -c8-)")
	bsize=$(stat -c %s "$BATS_TEST_TMPDIR/big/blobs/sha256/${big#sha256:}")
	run --separate-stderr -3 hypr-fetch pull -q "$EREG/evil"
	[ "$stderr" = "hypr-fetch: $EREG/evil:latest: config $big: the manifest gives $bsize bytes, over the 16 MiB limit" ]
	run grep -c "/blobs/" "$BATS_TEST_TMPDIR/reg-big/log"
	[ "$output" = 0 ]
	[ ! -e "$HYPR_ROOT/blobs/sha256/${big#sha256:}" ]
	# an honest image first: its layer is then in the store
	run -0 hypr-fetch pull -q "$FREG/busybox"
	# 2^62 (jq writes it as 4611686018427388000)
	evil_start huge . '.layers[0].size = 4611686018427387904'
	run --separate-stderr -3 hypr-fetch pull -q "$EREG/evil"
	[ "$stderr" = "hypr-fetch: $EREG/evil:latest: layer $lay: the manifest gives 4611686018427388000 bytes, over the 64 GiB limit (HYPR_PULL_MAX_LAYER)" ]
	evil_start plus1 . ".layers[0].size = $((lsize + 1))"
	run --separate-stderr -3 hypr-fetch pull -q "$EREG/evil"
	[ "$stderr" = "hypr-fetch: $EREG/evil:latest: layer $lay: the manifest gives $((lsize + 1)) bytes, the stored blob has $lsize" ]
	# the limit is the user's
	HYPR_PULL_MAX_LAYER=100K run --separate-stderr -3 hypr-fetch pull --pull=always -q "$FREG/busybox"
	[ "$stderr" = "hypr-fetch: $FREG/busybox:latest: layer $lay: the manifest gives $lsize bytes, over the 100 KiB limit (HYPR_PULL_MAX_LAYER)" ]
	# the honest image still resolves from the store alone
	run -0 hypr-fetch pull --pull=never -q "$FREG/busybox"
	[ "$(ls "$HYPR_ROOT/refs/127.0.0.1:$EPORT" 2>/dev/null)" = "" ]
}
