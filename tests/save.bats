#!/usr/bin/env bats
# hypr save: stored images out as a docker-archive or an OCI layout tar,
# read back by hypr load, skopeo and (where dockerd runs) docker load.
load helpers
load fixtures/layer/lib

setup() {
	fresh_root
	cd "$BATS_TEST_TMPDIR"
}

# layers_ok TAR DIR: unpack a docker-archive; every Layers entry hashes to
# the config's diff_id at the same index
layers_ok() {
	local t=$1 d=$2 cfg i l
	mkdir -p "$d"
	tar -xf "$t" -C "$d"
	cfg="$d/$(jq -r '.[0].Config' "$d/manifest.json")"
	i=0
	for l in $(jq -r '.[0].Layers[]' "$d/manifest.json"); do
		[ "sha256:$(sha256sum < "$d/$l" | cut -d' ' -f1)" = "$(jq -r ".rootfs.diff_ids[$i]" "$cfg")" ]
		i=$((i + 1))
	done
	[ "$i" = "$(jq '.rootfs.diff_ids | length' "$cfg")" ]
}

@test "save: a docker-archive hypr load reads back: config, diff_ids, the tag; the same bytes twice" {
	id=$(build_image app:1)
	hm="$HYPR_ROOT/images/${id#sha256:}.json"
	run --separate-stderr -0 hypr save -o app.tar app:1
	[ -z "$output" ]
	[ ! -e app.tar.tmp.* ]
	layers_ok app.tar x
	[ "$(jq -c '.[0].RepoTags' x/manifest.json)" = '["app:1"]' ]
	cfg="x/$(jq -r '.[0].Config' x/manifest.json)"
	[ "$(jq -c .rootfs.diff_ids "$cfg")" = "$(jq -c '[.layers[].diff_id]' "$hm")" ]
	[ "$(jq -cS .config "$cfg")" = "$(jq -cS .config "$hm")" ]
	# deterministic; to stdout when it is not a terminal
	hypr image save app:1 > again.tar
	cmp app.tar again.tar
	# hypr load in another store gets the same image
	HYPR_ROOT="$BATS_TEST_TMPDIR/r2" run --separate-stderr -0 hypr load app.tar
	run -0 env HYPR_ROOT="$BATS_TEST_TMPDIR/r2" hypr-fetch pull --json --pull=never app:1
	[ "$(jq -c .diff_ids <<<"$output")" = "$(jq -c '[.layers[].diff_id]' "$hm")" ]
	[ "$(jq -r .config <<<"$output")" = "sha256:$(sha256sum < "$cfg" | cut -d' ' -f1)" ]
}

@test "save: --format oci is an OCI layout skopeo reads; a pulled base's gzip layers stay gzip'd there and are unpacked in a docker-archive" {
	requires skopeo
	run -0 hypr load --name bb:1 "$(busybox_layout)"
	img=$(hypr-fetch pull --json --pull=never bb:1)
	base=$(jq -c '{digest: .layers[0].digest, diff_id: .diff_ids[0],
	  size: .layers[0].size, media_type: .layers[0].media_type}' <<<"$img")
	mkdir -p s/app
	echo hi > s/app/hi
	gnu_layer l1.tar s
	steps_stream "$base" "COPY|COPY hi /app/hi|$(layer_json l1.tar)|{\"Cmd\":[\"sh\"]}" |
		hypr-layer | hypr-squash | hypr-store -q -t app:2
	id=$(hypr images -q --no-trunc app:2)
	hypr save --format oci -o app.oci.tar app:2 "${id:7:12}"
	mkdir o
	tar -xf app.oci.tar -C o
	[ "$(cat o/oci-layout)" = '{"imageLayoutVersion":"1.0.0"}' ]
	run jq -r '.manifests | length, .[0].annotations["io.containerd.image.name"], .[1].annotations' o/index.json
	assert_output "2
docker.io/library/app:2
null"
	m="o/blobs/sha256/$(jq -r '.manifests[0].digest' o/index.json | cut -c8-)"
	run jq -r '.layers[].mediaType' "$m"
	assert_output "application/vnd.oci.image.layer.v1.tar+gzip
application/vnd.oci.image.layer.v1.tar"
	# every blob once, each its digest
	for b in o/blobs/sha256/*; do
		[ "$(sha256sum < "$b" | cut -d' ' -f1)" = "${b##*/}" ]
	done
	[ "$(tar -tf app.oci.tar | sort | uniq -d)" = "" ]
	# and docker's manifest.json, naming the same blobs (as docker 25 writes it)
	run jq -c '[.[] | [.RepoTags, (.Layers | length)]]' o/manifest.json
	assert_output '[[["app:2"],2],[null,2]]'
	[ "o/$(jq -r '.[0].Config' o/manifest.json)" = "o/blobs/sha256/$(jq -r .config.digest "$m" | cut -c8-)" ]
	# skopeo names an entry by its ref.name, the tag (as docker save writes it)
	skopeo copy -q "oci-archive:app.oci.tar:2" "oci:sk:x"
	sm="sk/blobs/sha256/$(jq -r '.manifests[0].digest' sk/index.json | cut -c8-)"
	[ "$(jq -r .config.digest "$sm")" = "$(jq -r .config.digest "$m")" ]
	HYPR_ROOT="$BATS_TEST_TMPDIR/r2" run --separate-stderr -0 hypr load app.oci.tar
	run -0 env HYPR_ROOT="$BATS_TEST_TMPDIR/r2" hypr-fetch pull --json --pull=never app:2
	[ "$(jq -r '.layers[0].media_type' <<<"$output")" = application/vnd.oci.image.layer.v1.tar+gzip ]
	# the docker-archive has the base layer decompressed, checked against its diff_id
	hypr save app:2 > app.tar
	layers_ok app.tar x
	[ "$(jq -r '.[0].Layers[0]' x/manifest.json)" = "blobs/sha256/$(jq -r .diff_id <<<"$base" | cut -c8-)" ]
}

@test "save: refused on a terminal, unknown images and formats; nothing half-written is left" {
	build_image app:1 > /dev/null
	run --separate-stderr -3 hypr save -o out.tar app:1 nope:1
	[ "$stderr" = "hypr-fetch: No such image: nope:1" ]
	[ -z "$(ls -d out.tar* 2>/dev/null)" ]
	# a failure while writing leaves no file either
	rm "$HYPR_ROOT/blobs/sha256/$(jq -r '.layers[1].digest' "$HYPR_ROOT"/images/*.json | cut -c8-)"
	run --separate-stderr -3 hypr save -o out.tar app:1
	[[ $stderr == "hypr-fetch: save: layer sha256:"*" is not in the store: "* ]]
	[ -z "$(ls -d out.tar* 2>/dev/null)" ]
	run --separate-stderr -2 hypr save --format tgz -o out.tar app:1
	[ "$stderr" = "hypr-fetch: save: --format tgz: docker or oci" ]
	run -2 hypr save
	if command -v script > /dev/null; then
		run -0 script -qec "$HYPR_BIN/hypr save app:1; echo rc=\$?" /dev/null
		[[ $output == *"cowardly refusing to write an archive to a terminal"*"rc=2"* ]]
	fi
}
