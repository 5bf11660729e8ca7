#!/usr/bin/env bats
# hypr-store: storing, tags, the image commands, prune/df, broken stores
# and concurrency.

load helpers
load fixtures/layer/lib

setup() {
	fresh_root
	cd "$BATS_TEST_TMPDIR"
	export HYPR_PRUNE_GRACE=0
}

teardown() {
	# a registry a test started (it would hold bats's output open)
	if [ -f "$BATS_TEST_TMPDIR/reg/pid" ]; then
		kill "$(cat "$BATS_TEST_TMPDIR/reg/pid")" 2>/dev/null || true
	fi
}

@test "store: stores squashfs + manifest, tags, prints the ID" {
	run -0 build_image app:1
	id=$output
	[[ $id =~ ^sha256:[0-9a-f]{64}$ ]]
	hex=${id#sha256:}
	[ -f "$HYPR_ROOT/images/$hex.squashfs" ]
	[ -f "$HYPR_ROOT/images/$hex.json" ]
	m="$HYPR_ROOT/images/$hex.json"
	[ "$(jq -r .id "$m")" = "$id" ]
	[ "$(jq -c .tags "$m")" = '["app:1"]' ]
	d=$(jq -r .squashfs.digest "$m")
	[ "$(sha256sum < "$HYPR_ROOT/images/$hex.squashfs" | cut -d' ' -f1)" = "${d#sha256:}" ]
	[ "$(jq -r .squashfs.size "$m")" = "$(stat -c %s "$HYPR_ROOT/images/$hex.squashfs")" ]
	run jq -c '[.cmd, .env, .labels, .build_args, (.history | length), .history[1].empty_layer, .base.ref, .architecture, .os]' "$m"
	assert_output '[["/app/run"],["PATH=/bin"],{"l":"x"},{"V":"1"},2,true,"docker.io/library/busybox:latest","amd64","linux"]'
	[ "$(jq -r '.["docker.io/library/app:1"]' <<<"$(jq .tags "$HYPR_ROOT/images/index.json")")" = "$id" ]
	# the image's squashfs is the real tree
	unsquashfs -cat "$HYPR_ROOT/images/$hex.squashfs" app/run | grep -qx 'run x'
}

@test "store: every manifest field of hypr-manifest(5) is there" {
	printf 'f a 644 0 0 a\n' | mklayer a.tar
	a=$(layer_json a.tar)
	cfg='{"Entrypoint":["/bin/app"],"Cmd":["--serve"],"Env":["A=1"],"WorkingDir":"/srv","User":"app",
	"ExposedPorts":{"80/tcp":{},"53/udp":{}},"Volumes":{"/data":{}},"Labels":{"k":"v"},
	"Healthcheck":{"Test":["CMD","true"],"Interval":1000000000},"Shell":["/bin/bash","-c"],
	"StopSignal":"SIGINT","OnBuild":["RUN echo hi"]}'
	steps_stream "$a" "CMD|CMD --serve|null|$(jq -c . <<<"$cfg")" | hypr-layer | hypr-squash | hypr-store -q -t full
	m=$(ls "$HYPR_ROOT"/images/*.json | grep -v index.json)
	for f in hypr version id tags created architecture os squashfs base entrypoint cmd env \
		working_dir user exposed_ports volumes labels healthcheck shell stop_signal onbuild \
		history build_args layers chain config stage; do
		jq -e "has(\"$f\")" "$m" > /dev/null || { echo "missing $f"; false; }
	done
	run jq -c '[.entrypoint, .working_dir, .user, .exposed_ports, .volumes, .healthcheck.Test, .shell, .stop_signal, .onbuild]' "$m"
	assert_output '[["/bin/app"],"/srv","app",["53/udp","80/tcp"],["/data"],["CMD","true"],["/bin/bash","-c"],"SIGINT",["RUN echo hi"]]'
}

@test "store: same content twice gives the same ID; retag moves a tag" {
	id1=$(build_image app:1)
	id2=$(build_image app:2)
	[ "$id1" = "$id2" ]
	id3=$(build_image app:1 other)
	[ "$id3" != "$id1" ]
	run -0 hypr-store images --format '{{.Repository}}:{{.Tag}} {{.ID}}'
	run sort <<<"$output"
	assert_output "app:1 ${id3:7:12}
app:2 ${id1:7:12}"
	# the manifests on disk say so too: a put rewrites the image that
	# lost the tag (it loads only the tagged images and its own)
	[ "$(jq -c .tags "$HYPR_ROOT/images/${id1#sha256:}.json")" = '["app:2"]' ]
	[ "$(jq -c .tags "$HYPR_ROOT/images/${id3#sha256:}.json")" = '["app:1"]' ]
	# app:1 moves on: id3 is left dangling, its manifest says so; a put
	# does not read a dangling image's manifest, even a corrupt one
	id4=$(build_image app:1 third)
	[ "$(jq -c .tags "$HYPR_ROOT/images/${id3#sha256:}.json")" = '[]' ]
	echo '{"garbage' > "$HYPR_ROOT/images/${id3#sha256:}.json"
	id5=$(build_image app:2 fourth)
	[ "$(jq -c .tags "$HYPR_ROOT/images/${id1#sha256:}.json")" = '[]' ]
	[ "$(jq -c .tags "$HYPR_ROOT/images/${id5#sha256:}.json")" = '["app:2"]' ]
	[ "$(jq -c .tags "$HYPR_ROOT/images/${id4#sha256:}.json")" = '["app:1"]' ]
}

@test "store: images table, -q, --no-trunc, --digests, --format json, filters" {
	id1=$(build_image app:1 one)
	id2=$(build_image '' two)
	id3=$(build_image web:latest three)
	run hypr-store images
	assert_line --index 0 --regexp '^REPOSITORY +TAG +IMAGE ID +CREATED +SIZE$'
	assert_line --regexp "^app +1 +${id1:7:12} +.+ ago +[0-9.]+kB\$"
	assert_line --regexp "^<none> +<none> +${id2:7:12} "
	assert_line --regexp "^web +latest +${id3:7:12} "
	[ "${#lines[@]}" = 4 ]
	run hypr-store images -q
	[ "${#lines[@]}" = 3 ]
	run hypr-store images -q --no-trunc --filter dangling=true
	assert_output "$id2"
	run hypr-store images --filter dangling=false -q
	[ "${#lines[@]}" = 2 ]
	run hypr-store images --filter reference='we*' -q
	assert_output "${id3:7:12}"
	run hypr-store images --filter label=l=one -q
	assert_output "${id1:7:12}"
	run hypr-store images --filter label=l -q
	[ "${#lines[@]}" = 3 ]
	run hypr-store images app
	[ "${#lines[@]}" = 2 ]
	run hypr-store images --digests
	assert_line --index 0 --regexp '^REPOSITORY +TAG +DIGEST +IMAGE ID +CREATED +SIZE$'
	run hypr-store images --format json --filter reference=app
	run jq -r '[.Repository, .Tag, .ID, (.Digest | startswith("sha256:")), (.Size | test("B$"))] | @tsv' <<<"$output"
	assert_output "app	1	${id1:7:12}	true	true"
	run hypr-store images --format 'table {{.ID}}\t{{.Repository}}' --filter reference=web
	assert_output "IMAGE ID       REPOSITORY
${id3:7:12}   web"
	run -2 hypr-store images --format '{{.Bogus}}'
	run -2 hypr-store images --filter color=red
	run -2 hypr-store images --filter dangling=maybe
}

@test "store: rmi untags by tag, deletes with the last tag, -f for several tags" {
	id=$(build_image app:1)
	hypr-store tag app:1 app:2
	hypr-store tag "${id:7:8}" other
	run -0 hypr-store rmi app:2
	assert_output "Untagged: app:2"
	[ -f "$HYPR_ROOT/images/${id#sha256:}.json" ]
	run --separate-stderr -3 hypr-store rmi "${id:7:12}"
	[[ $stderr == *"must be forced"* ]]
	[ -f "$HYPR_ROOT/images/${id#sha256:}.json" ]
	run -0 hypr-store rmi -f "${id:7:12}"
	assert_output "Untagged: app:1
Untagged: other:latest
Deleted: $id"
	[ ! -e "$HYPR_ROOT/images/${id#sha256:}.json" ]
	[ ! -e "$HYPR_ROOT/images/${id#sha256:}.squashfs" ]
	run hypr-store images -q
	assert_output ""
	# rmi of the last tag deletes, and gives the squashfs space back
	id=$(build_image app:1)
	d=$(jq -r .squashfs.digest "$HYPR_ROOT/images/${id#sha256:}.json")
	run -0 hypr-store rmi app:1
	assert_output "Untagged: app:1
Deleted: $id"
	[ ! -e "$HYPR_ROOT/blobs/sha256/${d#sha256:}" ]
}

@test "store: tag as docker tag: by tag, ID or prefix, default latest, moves a tag, prints nothing" {
	id1=$(build_image app:1)
	id2=$(build_image app:2 other)
	run -0 hypr-store tag app:1 app
	assert_output ""
	run -0 hypr-store tag "$id1" 127.0.0.1:5000/team/app:v1
	run -0 hypr-store tag "${id1:7:6}" Example.com/x
	run -0 hypr-store images --format '{{.Repository}}:{{.Tag}} {{.ID}}'
	run sort <<<"$output"
	assert_output "127.0.0.1:5000/team/app:v1 ${id1:7:12}
Example.com/x:latest ${id1:7:12}
app:1 ${id1:7:12}
app:2 ${id2:7:12}
app:latest ${id1:7:12}"
	# a tag on another image moves; that image keeps its other tags
	run -0 hypr-store tag app:2 app:1
	run -0 hypr-store images --format '{{.Repository}}:{{.Tag}} {{.ID}}' app
	run sort <<<"$output"
	assert_output "app:1 ${id2:7:12}
app:2 ${id2:7:12}
app:latest ${id1:7:12}"
	[ "$(jq -c .tags "$HYPR_ROOT/images/${id2#sha256:}.json")" = '["app:1","app:2"]' ]
	run --separate-stderr -3 hypr-store tag nope app:9
	[ "$stderr" = "hypr-store: No such image: nope" ]
	run --separate-stderr -2 hypr-store tag app:1 'x:bad tag'
	[ "${#lines[@]}" = 0 ]
	run --separate-stderr -2 hypr-store tag app:1
	[ "$stderr" = "hypr-store: usage: hypr-store tag SOURCE TARGET" ]
}

@test "store: unknown image, ambiguous prefix, bad tag" {
	build_image app:1 > /dev/null
	run --separate-stderr -3 hypr-store rmi nope
	[[ $stderr == *"No such image: nope"* ]]
	run --separate-stderr -3 hypr-store inspect nope
	assert_output "[]"
	# a second image whose ID shares the first 12 digits
	id=$(hypr-store images -q --no-trunc)
	hex=${id#sha256:}
	twin=${hex:0:12}$(printf '0%.0s' {1..52})
	jq --arg id "sha256:$twin" '.id = $id' "$HYPR_ROOT/images/$hex.json" > "$HYPR_ROOT/images/$twin.json"
	ln "$HYPR_ROOT/images/$hex.squashfs" "$HYPR_ROOT/images/$twin.squashfs"
	run --separate-stderr -3 hypr-store rmi "${hex:0:12}"
	[[ $stderr == *"ambiguous image ID prefix"* ]]
	run -0 hypr-store inspect -f '{{.Id}}' "${hex:0:13}"
	assert_output "$id"
	run --separate-stderr -2 hypr-store -t 'Bad:Tag' < /dev/null
	run -2 hypr-store tag app:1 'x@sha256:abc'
	run -2 hypr-store frobnicate
}

@test "store: inspect prints docker's image objects, hypr's own fields under Hypr" {
	id=$(build_image app:1)
	hex=${id#sha256:}
	run -0 hypr-store inspect app:1 "${id:7:5}"
	run jq -r 'length, .[0].Id, .[1].Id, (.[0].RepoTags | join(","))' <<<"$output"
	assert_output "2
$id
$id
app:1"
	run -0 hypr-store inspect app:1
	# docker's keys, in docker's order, and one of hypr's own
	run jq -c '.[0] | keys_unsorted' <<<"$output"
	assert_output '["Id","RepoTags","RepoDigests","Parent","Comment","Created","Author","Config","Architecture","Os","Size","RootFS","Metadata","Hypr"]'
	run -0 hypr-store inspect app:1
	m="$HYPR_ROOT/images/$hex.json"
	run jq -c --slurpfile m "$m" '.[0] | [.Created == $m[0].created, .Size, .RootFS.Type,
		(.RootFS.Layers == [$m[0].layers[].diff_id]), .Config.Cmd, .Config.Env, .Config.Labels,
		.Config.Entrypoint, .Config.ExposedPorts, .Config.Healthcheck, .Architecture, .Os,
		.RepoDigests, .Parent, .Metadata.LastTagTime]' <<<"$output"
	assert_output "[true,$(stat -c %s "$HYPR_ROOT/images/$hex.squashfs"),\"layers\",true,[\"/app/run\"],[\"PATH=/bin\"],{\"l\":\"x\"},null,null,null,\"amd64\",\"linux\",[],\"\",\"0001-01-01T00:00:00Z\"]"
	# Hypr: the manifest's own fields (squashfs with its path), nothing lost
	run -0 hypr-store inspect app:1
	run jq -c --slurpfile m "$m" '.[0].Hypr | [.squashfs.digest == $m[0].squashfs.digest,
		.squashfs.path, .squashfs.size, .base.ref, .chain == $m[0].chain,
		(.history | length), .build_args, (.layers == $m[0].layers), .version, has("cmd")]' <<<"$output"
	assert_output "[true,\"$HYPR_ROOT/images/$hex.squashfs\",$(stat -c %s "$HYPR_ROOT/images/$hex.squashfs"),\"docker.io/library/busybox:latest\",true,2,{\"V\":\"1\"},true,1,false]"
}

@test "store: inspect -f runs Go templates: fields, json, range, index, join, if" {
	id=$(build_image app:1)
	hypr-store tag app:1 app:2
	created=$(jq -r .created "$HYPR_ROOT/images/${id#sha256:}.json")
	run -0 hypr image inspect -f '{{.Id}} {{.Created}}' app:1
	assert_output "$id $created"
	run -0 hypr inspect --format '{{.Id}} {{.Created}}' app:1
	assert_output "$id $created"
	run -0 hypr image inspect -f '{{json .Config.Env}}' app:1
	assert_output '["PATH=/bin"]'
	run -0 hypr image inspect --format '{{range .RepoTags}}{{.}} {{end}}' app:1
	assert_output 'app:1 app:2 '
	run -0 hypr image inspect -f '{{index .Config.Labels "l"}}|{{index .Config.Labels "nope"}}|{{.Config.Labels.l}}' app:1
	assert_output 'x||x'
	run -0 hypr image inspect -f '{{join .Config.Cmd " "}}' app:1
	assert_output '/app/run'
	run -0 hypr-store inspect -f '{{if .Config.Entrypoint}}ep{{else}}no entrypoint{{end}}\t{{.Os}}/{{.Architecture}}' app:1
	assert_output $'no entrypoint\tlinux/amd64'
	run -0 hypr-store inspect -f '{{.Hypr.squashfs.path}}' app:1
	assert_output "$HYPR_ROOT/images/${id#sha256:}.squashfs"
	# one line per image
	run -0 hypr-store inspect -f '{{.Id}}' app:1 app:2
	assert_output "$id
$id"
	run -0 hypr-store inspect -f json app:1
	[ "$(jq -r .Id <<<"$output")" = "$id" ]
	# an unknown field is a usage error naming it, never "<no value>"
	run --separate-stderr -2 hypr image inspect -f '{{.Config.Nope}}' app:1
	assert_output ''
	[ "$stderr" = "hypr-store: --format: unknown field .Config.Nope" ]
	run --separate-stderr -2 hypr inspect -f '{{.Nope}}' app:1
	[ "$stderr" = "hypr-store: --format: unknown field .Nope" ]
	run --separate-stderr -2 hypr-store inspect -f '{{.id}}' app:1
	[ "$stderr" = "hypr-store: --format: unknown field .id" ]
	run --separate-stderr -2 hypr-store inspect -f '{{.Id' app:1
	[ "$stderr" = "hypr-store: --format: col 6: unclosed action" ]
	run --separate-stderr -2 hypr-store inspect -f '{{frob .Id}}' app:1
	[ "$stderr" = 'hypr-store: --format: col 3: function "frob" not defined' ]
}

@test "store: images --format: \\t is a tab, table adds titles, unknown fields exit 2" {
	id=$(build_image app:1)
	run -0 hypr images --format '{{.ID}}\t{{.Size}}'
	assert_output "${id:7:12}	$(hypr-store images --format '{{.Size}}')"
	[[ $output == "${id:7:12}"$'\t'[0-9]* ]]
	run -0 hypr-store images --format '{{.Repository}}:{{.Tag}}{{if eq .Tag "1"}} one{{end}} {{lower .Repository | upper}}'
	assert_output 'app:1 one APP'
	run -0 hypr-store images --format 'table {{.Repository}}\t{{.Tag}}'
	assert_output 'REPOSITORY   TAG
app          1'
	run --separate-stderr -2 hypr-store images --format '{{.Bogus}}'
	[ "$stderr" = "hypr-store: --format: unknown field .Bogus" ]
	# with no image at all too
	hypr-store rmi app:1 > /dev/null
	run --separate-stderr -2 hypr-store images --format '{{.Bogus}}'
	[ "$stderr" = "hypr-store: --format: unknown field .Bogus" ]
}

@test "store: image prune removes dangling images; prompt unless -f" {
	id1=$(build_image app:1 one)
	id2=$(build_image '' two)
	run -0 hypr-store image-prune <<<"n"
	[[ $output == *"WARNING! This will remove all dangling images."* ]]
	[ -f "$HYPR_ROOT/images/${id2#sha256:}.json" ]
	run -0 hypr-store image-prune <<<"y"
	assert_line "deleted: $id2"
	assert_line --regexp '^Total reclaimed space: [0-9.]+kB$'
	[ ! -e "$HYPR_ROOT/images/${id2#sha256:}.json" ]
	[ -f "$HYPR_ROOT/images/${id1#sha256:}.json" ]
	run -0 hypr-store image-prune -f
	assert_output "Total reclaimed space: 0B"
}

@test "store: image prune --all keeps only images a running VM holds" {
	id1=$(build_image app:1 one)
	id2=$(build_image web:1 two)
	# a runner holds a shared lock on the squashfs it boots
	flock -s "$HYPR_ROOT/images/${id1#sha256:}.squashfs" sleep 30 &
	holder=$!
	sleep 0.3
	run -0 hypr-store image-prune --all -f
	kill $holder
	assert_line "untagged: web:1"
	assert_line "deleted: $id2"
	refute_line "deleted: $id1"
	run hypr-store images -q --no-trunc
	assert_output "$id1"
}

@test "store: system df lists images, base images and build cache" {
	build_image app:1 one > /dev/null
	build_image '' two > /dev/null
	run -0 hypr-store system-df
	assert_line --index 0 --regexp '^TYPE +TOTAL +ACTIVE +SIZE +RECLAIMABLE$'
	# the dangling image's own squashfs is reclaimable, not its cached layers
	assert_line --regexp '^Images +2 +1 +[0-9.]+kB +[0-9.]+kB \([1-9][0-9]?%\)$'
	assert_line --regexp '^Base Images +0 +0 '
	assert_line --regexp '^Build Cache +[0-9]+ +0 '
	run -0 hypr-store system-df -v
	assert_line "Images space usage:"
	assert_line --regexp '^app +1 +[0-9a-f]{12} .* [0-9.]+kB +[0-9.]+kB +[0-9.]+k?B$'
}

# bytes HUMAN: the bytes a figure of human (3 digits) stands for
bytes() {
	awk -v s="$1" 'BEGIN { n = s + 0; u = s; sub(/^[0-9.]+/, "", u)
		m["B"] = 1; m["kB"] = 1e3; m["MB"] = 1e6; m["GB"] = 1e9; printf "%d\n", n * m[u] }'
}

# A context whose build needs no VM (COPY and LABEL only).
copy_ctx() {
	mkdir -p "$1"
	echo "$2" > "$1/f"
	printf 'FROM %s\nCOPY f /f\nARG L=x\nLABEL l=$L\n' "$3" > "$1/Dockerfile"
}

@test "store: pulled and loaded base images are listed, inspected, tagged and removed as docker's" {
	load lib/registry
	BB=$(busybox_layout)
	p=$(reg_start "$BATS_TEST_TMPDIR/reg")
	reg_push "$BB" "127.0.0.1:$p/library/busybox:1.35"
	m="$BB/blobs/sha256/$(jq -r '.manifests[0].digest' "$BB/index.json" | cut -c8-)"
	md=$(jq -r '.manifests[0].digest' "$BB/index.json")
	cfg=$(jq -r .config.digest "$m")
	diff=$(jq -r '.rootfs.diff_ids[0]' "$BB/blobs/sha256/${cfg#sha256:}")
	hypr pull -q "127.0.0.1:$p/library/busybox:1.35" > /dev/null
	hypr load --name mybase:1 "$BB" > /dev/null
	# listed by name, the ID is the config's digest (docker's image ID)
	run -0 hypr images --format '{{.Repository}} {{.Tag}} {{.ID}} {{.Digest}}'
	assert_line "127.0.0.1:$p/library/busybox 1.35 ${cfg:7:12} $md"
	assert_line "mybase 1 ${cfg:7:12} $md"
	run -0 hypr images -q
	assert_output "${cfg:7:12}"
	run -0 hypr images "127.0.0.1:$p/library/busybox:1.35"
	assert_line --index 1 --regexp "^127\.0\.0\.1:$p/library/busybox +1\.35 +${cfg:7:12} .* 1\.03MB$"
	run -0 hypr images --filter reference='myb*' --format '{{.Repository}}:{{.Tag}}'
	assert_output "mybase:1"
	run -0 hypr images --filter dangling=true -q
	assert_output ""
	# inspect: docker's object, from the OCI config
	run -0 hypr image inspect -f '{{.Id}} {{json .RepoTags}} {{json .Config.Cmd}} {{index .RootFS.Layers 0}} {{.Hypr.manifest}} {{if .Hypr.squashfs}}sq{{else}}none{{end}}' mybase:1
	assert_output "$cfg [\"127.0.0.1:$p/library/busybox:1.35\",\"mybase:1\"] [\"sh\"] $diff $md none"
	run -0 hypr image inspect -f '{{json .RepoDigests}}' "${cfg:7:12}"
	assert_output "[\"127.0.0.1:$p/library/busybox@$md\",\"mybase@$md\"]"
	run -0 hypr history mybase:1
	assert_line --index 1 --regexp "^${cfg:7:12} .* 1\.03MB"
	# tag: another base tag, which FROM resolves
	run -0 hypr tag mybase:1 other/base:2
	[ "$(jq -r .digest "$HYPR_ROOT/refs/docker.io/other/base/_tags/2")" = "$md" ]
	# a stored image built FROM it: by ID the base cannot go (docker 20.10:
	# a parent with dependent child images), by tag it is untagged
	copy_ctx c one other/base:2
	run -0 hypr build -q -t app:1 c
	run --separate-stderr -3 hypr rmi -f "${cfg:7:12}"
	assert_equal "$stderr" "hypr-store: conflict: unable to delete ${cfg:7:12} (cannot be forced) - image has dependent child images"
	run -0 hypr rmi other/base:2
	assert_output "Untagged: other/base:2"
	[ ! -e "$HYPR_ROOT/refs/docker.io/other" ]
	# by ID with several tags: -f, as for built images
	run -3 hypr rmi "${cfg:7:12}"
	hypr rmi app:1
	run -0 hypr rmi -f "${cfg:7:12}"
	assert_output "Untagged: 127.0.0.1:$p/library/busybox:1.35
Untagged: mybase:1
Deleted: $cfg"
	run -0 hypr images -q
	assert_output ""
	# no build runs: what only the base named went with it
	for d in "$md" "$cfg" "$(jq -r '.layers[0].digest' "$m")"; do
		[ ! -e "$HYPR_ROOT/blobs/sha256/${d#sha256:}" ]
	done
	run -3 hypr image inspect mybase:1
	reg_stop "$BATS_TEST_TMPDIR/reg"
}

@test "store: system df counts shared blobs once; prune -a leaves nothing no image names" {
	# the default grace: what rmi and prune let go goes all the same
	unset HYPR_PRUNE_GRACE
	BB=$(busybox_layout)
	hypr load --name busybox:1 "$BB" > /dev/null
	hypr load --name spare:1 "$BB" > /dev/null
	copy_ctx c same busybox:1
	# six images with one squashfs (only their labels differ)
	for i in 1 2 3 4 5 6; do hypr build -q --build-arg "L=$i" -t "app:$i" c > /dev/null; done
	[ "$(ls "$HYPR_ROOT"/images/*.squashfs | wc -l)" = 6 ]
	sq=$(stat -c %s "$(ls "$HYPR_ROOT"/images/*.squashfs | head -1)")
	run -0 hypr system df
	assert_line --regexp '^Images +6 +6 '
	assert_line --regexp '^Base Images +1 +1 '
	isize=$(bytes "$(awk '$1 == "Images" { print $4 }' <<<"$output")")
	bsize=$(bytes "$(awk '$1 == "Base" { print $5 }' <<<"$output")")
	csize=$(bytes "$(awk '$1 == "Build" { print $5 }' <<<"$output")")
	# the squashfs once, not six times; the rows add up to the blobs
	[ "$isize" -lt $((2 * sq + 100000)) ]
	total=$(du -s -B1 "$HYPR_ROOT/blobs" | cut -f1)
	sum=$((isize + bsize + csize))
	[ "$sum" -gt $((total * 98 / 100)) ] && [ "$sum" -lt $((total * 102 / 100)) ]
	run -0 hypr system df -v
	assert_line --regexp '^busybox +1 +[0-9a-f]{12} '
	assert_line --regexp '^spare +1 +[0-9a-f]{12} '
	# every blob is named by something listed, or by the cache
	hypr tag app:1 keep:1
	hypr rmi app:2 app:3 spare:1 > /dev/null
	named=$(for id in $(hypr images -q --no-trunc | sort -u); do
			hypr image inspect -f '{{.Id}} {{json .Hypr}}' "$id"
		done; grep -rhoE 'sha256:[0-9a-f]{64}' "$HYPR_ROOT/cache")
	for b in "$HYPR_ROOT"/blobs/sha256/*; do
		grep -q "sha256:${b##*/}" <<<"$named" || { echo "unnamed blob ${b##*/}"; false; }
	done
	# prune -a, then nothing is left but the store's own files
	run -0 hypr system prune -a -f
	run -0 hypr system df
	assert_line --regexp '^Images +0 +0 +0B '
	assert_line --regexp '^Base Images +0 +0 +0B '
	assert_line --regexp '^Build Cache +0 +0 +0B '
	run -0 find "$HYPR_ROOT" -type f ! -path "$HYPR_ROOT/images/index.*" ! -path "$HYPR_ROOT/logs/*" ! -path "$HYPR_ROOT/vm/*"
	assert_output ""
	[ ! -e "$HYPR_ROOT/refs" ]
	run -0 find "$HYPR_ROOT" -mindepth 2 -type d ! -path "$HYPR_ROOT/blobs/sha256" ! -path "$HYPR_ROOT/cache/squashfs"
	assert_output ""
}

@test "store: system prune keeps what images and cache entries use; --all clears the cache" {
	id=$(build_image app:1)
	printf 'f junk 644 0 0 junk\n' | mklayer junk.tar
	junk=$(put_blob junk.tar)
	mkdir -p "$HYPR_ROOT/tmp/stale.d" && echo x > "$HYPR_ROOT/tmp/stale.d/f"
	ncache=$(ls "$HYPR_ROOT/cache"/*.json | wc -l)
	run -0 hypr-store system-prune -f
	assert_line --regexp '^Total reclaimed space: '
	[ ! -e "$HYPR_ROOT/blobs/sha256/${junk#sha256:}" ]
	[ -z "$(ls "$HYPR_ROOT/tmp")" ]
	[ "$(ls "$HYPR_ROOT/cache"/*.json | wc -l)" = "$ncache" ]
	for d in $(jq -r '.layers[].digest, .squashfs.digest' "$HYPR_ROOT/images/${id#sha256:}.json"); do
		[ -f "$HYPR_ROOT/blobs/sha256/${d#sha256:}" ]
	done
	# a young unreferenced blob (a build in progress) survives the grace period
	junk=$(put_blob junk.tar)
	HYPR_PRUNE_GRACE=3600 hypr-store system-prune -f
	[ -f "$HYPR_ROOT/blobs/sha256/${junk#sha256:}" ]
	# --all: build cache and every image nothing runs
	run -0 hypr-store system-prune --all -f
	assert_line "Deleted build cache objects:"
	assert_line "deleted: $id"
	[ -z "$(ls "$HYPR_ROOT/cache"/*.json 2>/dev/null)" ]
	[ -z "$(ls "$HYPR_ROOT/blobs/sha256")" ]
}

# human SIZE: hypr's figure for N bytes (3 digits, 1000-based units)
human() {
	awk -v x="$1" 'BEGIN { split("B kB MB GB TB", u, " "); i = 1
		while (x >= 1000 && i < 5) { x /= 1000; i++ }; printf "%.3g%s\n", x, u[i] }'
}

@test "store: system df counts temp files by the space they use; prune takes a dead build's only" {
	dead=$HYPR_ROOT/tmp/hypr-exec.1700000000.41.aaaaaa
	live=$HYPR_ROOT/tmp/hypr.1700000000.42.bbbbbb
	mkdir -p "$dead/vm.x" "$live"
	# a SIGKILLed build's VM disk: sparse, 64 GiB apparent, 1 MiB used
	truncate -s 64G "$dead/vm.x/scratch.ext4"
	head -c 1M /dev/urandom | dd of="$dead/vm.x/scratch.ext4" conv=notrunc status=none
	head -c 300K /dev/urandom > "$live/blob.x"
	# a running build holds its temp dir locked
	( exec 9< "$live"; flock 9; exec sleep 60 ) &
	holder=$!
	wait_locked() { ! flock -n "$live" true; }
	for i in $(seq 100); do wait_locked && break; sleep 0.05; done
	d=$(du -s -B1 "$dead" | cut -f1)
	l=$(du -s -B1 "$live" | cut -f1)
	[ "$d" -lt 2000000 ]
	run -0 hypr-store system-df
	assert_line --regexp "^Temporary Files +2 +1 +$(human $((d + l))) +$(human "$d") \($((d * 100 / (d + l)))%\)$"
	run -0 hypr-store system-df -v
	assert_line "Temporary files space usage:"
	assert_line --regexp "^hypr-exec\.1700000000\.41\.aaaaaa +left over +$(human "$d")$"
	assert_line --regexp "^hypr\.1700000000\.42\.bbbbbb +in use +$(human "$l")$"
	# a blob nothing names, made while that build runs: it may be the build's
	printf 'f junk 644 0 0 junk\n' | mklayer junk.tar
	junk=$(put_blob junk.tar)
	run -0 hypr-store system-prune -f
	assert_output "Deleted temporary files:
hypr-exec.1700000000.41.aaaaaa

Total reclaimed space: $(human "$d")"
	[ ! -e "$dead" ]
	[ -f "$live/blob.x" ]
	[ -f "$HYPR_ROOT/blobs/sha256/${junk#sha256:}" ]
	# the build is gone: its leftovers and the blob go too
	kill "$holder"
	wait "$holder" || true
	run -0 hypr-store system-prune -f
	assert_line "hypr.1700000000.42.bbbbbb"
	[ -z "$(ls -A "$HYPR_ROOT/tmp")" ]
	[ ! -e "$HYPR_ROOT/blobs/sha256/${junk#sha256:}" ]
	run -0 hypr-store system-df
	assert_line --regexp '^Temporary Files +0 +0 +0B +0B \(0%\)$'
}

@test "store: base images tagged by hypr-fetch count as used" {
	printf 'f b 644 0 0 b\n' | mklayer base.tar
	layer=$(put_blob base.tar)
	echo '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' > cfg.json
	cfg=$(put_blob cfg.json)
	jq -cn --arg c "$cfg" --arg l "$layer" '{schemaVersion:2,mediaType:"application/vnd.oci.image.manifest.v1+json",
	  config:{mediaType:"application/vnd.oci.image.config.v1+json",digest:$c,size:1},
	  layers:[{mediaType:"application/vnd.oci.image.layer.v1.tar",digest:$l,size:1}]}' > man.json
	man=$(put_blob man.json)
	mkdir -p "$HYPR_ROOT/refs/docker.io/library/busybox/_tags"
	jq -cn --arg d "$man" '{name:"docker.io/library/busybox",tag:"latest",digest:$d}' \
		> "$HYPR_ROOT/refs/docker.io/library/busybox/_tags/latest"
	run -0 hypr-store system-df
	assert_line --regexp '^Base Images +1 +0 +[0-9.]+[kM]?B '
	hypr-store system-prune -f
	for d in $layer $cfg $man; do [ -f "$HYPR_ROOT/blobs/sha256/${d#sha256:}" ]; done
	hypr-store system-prune -f --all
	for d in $layer $cfg $man; do [ ! -e "$HYPR_ROOT/blobs/sha256/${d#sha256:}" ]; done
	[ ! -e "$HYPR_ROOT/refs" ]
}

@test "store: a corrupt manifest or missing squashfs is reported and repairable" {
	id1=$(build_image app:1 one)
	id2=$(build_image web:1 two)
	echo '{"garbage' > "$HYPR_ROOT/images/${id1#sha256:}.json"
	rm "$HYPR_ROOT/images/${id2#sha256:}.squashfs"
	run --separate-stderr -0 hypr-store images
	[[ $stderr == *"${id1:7:12}: corrupt manifest"* ]]
	[[ $stderr == *"${id2:7:12}: squashfs missing"* ]]
	[ "${#lines[@]}" = 1 ]
	run --separate-stderr -3 hypr-store inspect "${id1:7:12}"
	[[ $stderr == *"corrupt manifest"* ]]
	run -0 hypr-store rmi -f "${id1:7:12}"
	assert_line "Deleted: $id1"
	run -0 hypr-store image-prune -f
	assert_line "deleted: $id2"
	run --separate-stderr -0 hypr-store images
	[ -z "$stderr" ]
	# rebuilding repairs too
	[ "$(build_image web:1 two)" = "$id2" ]
	[ -f "$HYPR_ROOT/images/${id2#sha256:}.squashfs" ]
	# repairing an image whose squashfs is already the blob's link
	# leaves no temp file (rename between two links is a no-op)
	echo '{"garbage' > "$HYPR_ROOT/images/${id2#sha256:}.json"
	[ "$(build_image web:1 two)" = "$id2" ]
	run -0 ls "$HYPR_ROOT/images"
	refute_output --partial ".tmp."
	[ "$(hypr-store inspect "${id2:7:12}" | jq -r '.[0].Id')" = "$id2" ]
	# a corrupt index is reported, not silently emptied
	echo 'nonsense' > "$HYPR_ROOT/images/index.json"
	run --separate-stderr -3 hypr-store images
	[[ $stderr == *"index.json is corrupt"* ]]
}

@test "store: a truncated or squashfs-less image stream is bad input" {
	printf '{"hypr":"image","version":1}\n{"type":"image","layers":[]}\n' > cut
	run -3 hypr-store < cut
	printf '{"hypr":"image","version":1}\n{"type":"image","layers":[]}\n{"end":true,"records":1}\n' > nosq
	run --separate-stderr -3 hypr-store < nosq
	[[ $stderr == *"no squashfs"* ]]
	[ -z "$(ls "$HYPR_ROOT/images" | grep -v index)" ]
}

@test "store: concurrent stores lose no tag; a prune beside builds breaks nothing" {
	# the default grace period is what protects a build's fresh blobs
	unset HYPR_PRUNE_GRACE
	build_image base:0 seed > /dev/null
	for i in $(seq 8); do
		build_image "app:$i" "c$i" > "out.$i" &
	done
	for i in $(seq 4); do hypr-store system-prune -f > /dev/null; hypr-store image-prune -f > /dev/null; done &
	wait
	for n in $(seq 8); do
		id=$(cat "out.$n")
		[[ $id =~ ^sha256: ]]
		run -0 hypr-store inspect -f '{{.Id}}' "app:$n"
		assert_output "$id"
		[ -f "$HYPR_ROOT/images/${id#sha256:}.squashfs" ]
		run -0 unsquashfs -cat "$HYPR_ROOT/images/${id#sha256:}.squashfs" app/run
		assert_output "run c$n"
	done
	[ "$(jq '.tags | length' "$HYPR_ROOT/images/index.json")" = 9 ]
	run --separate-stderr -0 hypr-store images
	[ -z "$stderr" ]
}

@test "store: --root moves the store; a non-root user gets one under XDG_DATA_HOME" {
	requires root
	requires setpriv
	id=$(build_image app:1)
	mv "$HYPR_ROOT" "$BATS_TEST_TMPDIR/moved"
	run -0 env -u HYPR_ROOT hypr-store --root "$BATS_TEST_TMPDIR/moved" images -q --no-trunc
	assert_output "$id"
	# the bats run directory is private to root: use one nobody can reach
	xdg=$(mktemp -d /tmp/hypr-xdg.XXXXXX)
	chmod 755 "$xdg"
	chown 65534:65534 "$xdg"
	run -0 setpriv --reuid=65534 --regid=65534 --clear-groups \
		env -u HYPR_ROOT XDG_DATA_HOME="$xdg" "$(command -v hypr-store)" images -q
	assert_output ""
	[ -d "$xdg/hypr/images" ]
	[ "$(stat -c %u "$xdg/hypr/images")" = 65534 ]
	rm -rf "$xdg"
}

@test "store: the advice for a damaged squashfs repairs it" {
	hypr load --name busybox:latest "$(busybox_layout)" >/dev/null
	mkdir c && printf 'FROM busybox:latest\nENV A=1\n' > c/Dockerfile
	id=$(hypr build -q -t a:1 c)
	printf 'XXXX' | dd of="$HYPR_ROOT/images/${id#sha256:}.squashfs" bs=1 seek=5000 conv=notrunc 2>/dev/null
	run --separate-stderr -3 hypr image inspect a:1
	[[ $stderr == *"squashfs damaged"*"): rebuild it with HYPR_SQUASH_VERIFY=1 hypr build" ]]
	# what the line says to do, literally
	env HYPR_SQUASH_VERIFY=1 hypr build -q -t a:1 c
	run -0 hypr image inspect a:1
	[ "$(jq -r '.[0].Id' <<< "$output")" = "$id" ]
}

@test "store: system df counts the build VM snapshots; system prune -a removes them, prune keeps them" {
	# the files as lib/vm_snap.c leaves them (hypr-guest(7), SNAPSHOTS);
	# their format is vm.bats's to test
	unset HYPR_SNAPSHOT_DIR
	mkdir -p "$HYPR_ROOT/vm/snap-0123456789abcdef0123456789abcdef"
	head -c 3000000 /dev/urandom > "$HYPR_ROOT/vm/snap-0123456789abcdef0123456789abcdef/ram"
	head -c 60000 /dev/urandom > "$HYPR_ROOT/vm/snap-0123456789abcdef0123456789abcdef/state"
	echo '{}' > "$HYPR_ROOT/vm/snap-0123456789abcdef0123456789abcdef/meta"
	echo tsc > "$HYPR_ROOT/vm/tsc-khz-x"
	run -0 hypr system df
	[[ $output =~ VM\ Snapshots\ +1\ +0\ +3\.[0-9]+MB\ +3\.[0-9]+MB\ \(100%\) ]]
	run -0 hypr system prune -f
	[ -d "$HYPR_ROOT/vm/snap-0123456789abcdef0123456789abcdef" ]
	run -0 hypr system prune -a -f
	[[ $output == *"Total reclaimed space: 3."*"MB"* ]]
	[ ! -e "$HYPR_ROOT/vm/snap-0123456789abcdef0123456789abcdef" ]
	# the host facts stay
	[ -f "$HYPR_ROOT/vm/tsc-khz-x" ]
	run -0 hypr system df
	[[ $output =~ VM\ Snapshots\ +0\ +0\ +0B ]]
	# HYPR_SNAPSHOT_DIR moves them
	mkdir -p "$BATS_TEST_TMPDIR/snaps/snap-x" && head -c 100000 /dev/urandom > "$BATS_TEST_TMPDIR/snaps/snap-x/ram"
	HYPR_SNAPSHOT_DIR="$BATS_TEST_TMPDIR/snaps" run -0 hypr system df
	[[ $output =~ VM\ Snapshots\ +1\ +0\ +1[0-9][0-9](\.[0-9]+)?kB ]]
}
