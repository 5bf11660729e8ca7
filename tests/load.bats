#!/usr/bin/env bats
# hypr load as docker load: -i FILE, or the archive on stdin (an OCI image
# layout tar or a docker save tar); --name and a PATH still work.
load helpers

setup_file() {
	BB=$(busybox_layout)
	export BB
	# a docker save tar of the same image
	local m d="$BATS_FILE_TMPDIR/save"
	m="$BB/blobs/sha256/$(jq -r '.manifests[0].digest' "$BB/index.json" | cut -c8-)"
	mkdir -p "$d/l1"
	cp "$BB/blobs/sha256/$(jq -r .config.digest "$m" | cut -c8-)" "$d/config.json"
	gunzip < "$BB/blobs/sha256/$(jq -r '.layers[0].digest' "$m" | cut -c8-)" > "$d/l1/layer.tar"
	echo '[{"Config":"config.json","RepoTags":["saved:v1"],"Layers":["l1/layer.tar"]}]' > "$d/manifest.json"
	export SAVE="$BATS_FILE_TMPDIR/save.tar" OCI="$BATS_FILE_TMPDIR/oci.tar"
	tar -C "$d" -cf "$SAVE" manifest.json config.json l1
	tar -C "$BB" -cf "$OCI" .
}

setup() {
	fresh_root
}

@test "load: -i FILE and --input FILE, a docker save tar" {
	run -0 hypr load -i "$SAVE"
	[[ $output == "Loaded image: docker.io/library/saved:v1 sha256:"* ]]
	run -0 hypr-fetch pull --pull=never saved:v1
	run -0 hypr load --input="$SAVE" --name other:2
	run -0 hypr-fetch pull --pull=never other:2
}

@test "load: the archive on stdin, docker save or OCI layout tar (with --name)" {
	run -0 hypr load < "$SAVE"
	[[ $output == "Loaded image: docker.io/library/saved:v1 sha256:"* ]]
	run -0 hypr-fetch pull --pull=never saved:v1
	run -0 hypr load --name busybox:stdin < "$OCI"
	run -0 hypr-fetch pull --pull=never busybox:stdin
	gzip -c < "$OCI" > "$BATS_TEST_TMPDIR/oci.tar.gz"
	run -0 hypr image load -q --name busybox:gz < "$BATS_TEST_TMPDIR/oci.tar.gz"
	run -0 hypr-fetch pull --pull=never busybox:gz
}

@test "load: PATH with --name before or after, as before" {
	run -0 hypr load --name busybox:latest "$BB"
	run -0 hypr load "$OCI" --name busybox:t
	run -0 hypr-fetch pull --pull=never busybox:t
}

@test "load: junk or nothing on stdin is bad input in one line; a terminal is refused; two archives are a usage error" {
	run --separate-stderr -3 hypr load <<<"not a tar"
	[ "${#stderr_lines[@]}" = 1 ]
	[[ $stderr == "hypr-fetch: load stdin: "* ]]
	run --separate-stderr -3 hypr load < /dev/null
	[ "${#stderr_lines[@]}" = 1 ]
	[ -z "$(ls "$HYPR_ROOT/tmp")" ]
	run -2 script -qec "$HYPR_BIN/hypr load" /dev/null < /dev/null
	[[ $output == *"hypr-fetch: load: stdin is a terminal"* ]]
	run --separate-stderr -2 hypr load -i "$SAVE" "$OCI"
	[ "$stderr" = "hypr: load: one archive (-i FILE, PATH, or stdin), not 2" ]
}
