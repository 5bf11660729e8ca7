# Real registries for hypr-fetch's tests: Debian's docker-registry on
# 127.0.0.1 with a free port (optionally with htpasswd basic auth), images
# pushed by skopeo, and tests/lib/fakereg.py for registries that lie.
# shellcheck shell=bash

reg_free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# reg_wait URL [curl args]: until it answers (any HTTP status) or 15 s pass.
reg_wait() {
	local _
	for _ in $(seq 150); do
		curl -s -o /dev/null "$@" && return 0
		sleep 0.1
	done
	echo "registry at $1 did not start" >&2
	return 1
}

# reg_tls_certs DIR: a CA (DIR/ca.crt) and a server certificate for
# 127.0.0.1 and localhost signed by it (DIR/server.crt, DIR/server.key).
reg_tls_certs() {
	local d=$1
	mkdir -p "$d"
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=hypr-test-ca \
		-keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
	openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 \
		-keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$d/ext"
	openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" \
		-CAcreateserial -days 2 -extfile "$d/ext" -out "$d/server.crt" 2>/dev/null
}

# reg_start DIR [USER PASS]: start docker-registry with its storage, config,
# log and pid under DIR; prints the port. With REG_TLS=CERTDIR (from
# reg_tls_certs) it serves HTTPS.
reg_start() {
	local dir=$1 port auth='' tls='' scheme=http
	mkdir -p "$dir/storage"
	port=$(reg_free_port)
	if [ -n "${REG_TLS:-}" ]; then
		tls="  tls:
    certificate: $REG_TLS/server.crt
    key: $REG_TLS/server.key"
		scheme=https
	fi
	if [ $# -ge 3 ]; then
		htpasswd -Bbn "$2" "$3" > "$dir/htpasswd"
		auth="auth:
  htpasswd:
    realm: hypr-test
    path: $dir/htpasswd"
	fi
	cat > "$dir/config.yml" <<EOC
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
$tls
$auth
EOC
	docker-registry serve "$dir/config.yml" > "$dir/log" 2>&1 &
	echo $! > "$dir/pid"
	reg_wait "$scheme://127.0.0.1:$port/v2/" -k >&2 || return 1
	echo "$port"
}

# reg_stop DIR: stop what reg_start (or fake_start) started there.
reg_stop() {
	local pid
	[ -f "$1/pid" ] || return 0
	pid=$(cat "$1/pid")
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	rm -f "$1/pid"
}

# reg_push LAYOUT[:TAG] DEST [skopeo args...]: push an OCI layout with skopeo
# (plain HTTP) to DEST (host:port/name:tag).
reg_push() {
	local src=$1 dest=$2
	shift 2
	case $src in *:*) ;; *) src=$src:latest ;; esac
	skopeo copy -q --dest-tls-verify=false "$@" "oci:$src" "docker://$dest" >&2
}

# reg_multiarch_layout OUT: an OCI layout whose "latest" is an index of an
# attestation entry (unknown/unknown), then linux/arm64, then linux/amd64.
reg_multiarch_layout() {
	local out=$1 a d ix ixs
	[ -f "$out/index.json" ] && return 0
	for a in arm64 amd64; do
		"$HYPR_SRC/tests/lib/mkbase.sh" "$out.$a" "$a" >&2
	done
	mkdir -p "$out/blobs/sha256"
	cp -n "$out.arm64/blobs/sha256/"* "$out.amd64/blobs/sha256/"* "$out/blobs/sha256/"
	ix=$(jq -c --slurpfile arm "$out.arm64/index.json" --slurpfile amd "$out.amd64/index.json" -n '{
	  schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json",
	  manifests: [
	    ($arm[0].manifests[0] | del(.annotations) | .platform = {os: "unknown", architecture: "unknown"}
	      | .annotations = {"vnd.docker.reference.type": "attestation-manifest"}),
	    ($arm[0].manifests[0] | del(.annotations)),
	    ($amd[0].manifests[0] | del(.annotations))]}')
	printf '%s' "$ix" > "$out/ix.json"
	d=$(sha256sum "$out/ix.json" | cut -d' ' -f1)
	ixs=$(stat -c %s "$out/ix.json")
	mv "$out/ix.json" "$out/blobs/sha256/$d"
	jq -cn --arg d "sha256:$d" --argjson s "$ixs" '{schemaVersion: 2,
	  mediaType: "application/vnd.oci.image.index.v1+json",
	  manifests: [{mediaType: "application/vnd.oci.image.index.v1+json", digest: $d, size: $s,
	    annotations: {"org.opencontainers.image.ref.name": "latest"}}]}' > "$out/index.json"
	echo '{"imageLayoutVersion":"1.0.0"}' > "$out/oci-layout"
	rm -rf "$out.arm64" "$out.amd64"
}

# fake_start DIR LAYOUT: start fakereg.py serving LAYOUT; prints the port.
# Its mode is DIR/mode, its request log DIR/log.
fake_start() {
	local dir=$1 _
	mkdir -p "$dir"
	: > "$dir/log"
	echo ok > "$dir/mode"
	rm -f "$dir/port"
	python3 "$HYPR_SRC/tests/lib/fakereg.py" "$2" "$dir/port" "$dir/log" "$dir/mode" \
		> "$dir/stderr" 2>&1 &
	echo $! > "$dir/pid"
	for _ in $(seq 100); do
		[ -f "$dir/port" ] && break
		sleep 0.05
	done
	cat "$dir/port"
}

# reg_edit_layout SRC OUT CONFIG_FILTER MANIFEST_FILTER: a copy of the OCI
# layout SRC (its first image, tagged "latest") whose config and manifest
# are rewritten by jq filters. The config's digest and size are put in the
# manifest before MANIFEST_FILTER runs, so that filter can lie about them.
reg_edit_layout() {
	local src=$1 out=$2 m c h s
	rm -rf "$out"
	mkdir -p "$out/blobs/sha256"
	cp "$src/blobs/sha256/"* "$out/blobs/sha256/"
	m="$src/blobs/sha256/$(jq -r '.manifests[0].digest' "$src/index.json" | cut -c8-)"
	c="$src/blobs/sha256/$(jq -r .config.digest "$m" | cut -c8-)"
	jq -c "$3" "$c" > "$out/part"
	h=$(sha256sum < "$out/part" | cut -d' ' -f1)
	s=$(stat -c %s "$out/part")
	mv "$out/part" "$out/blobs/sha256/$h"
	jq -c --arg d "sha256:$h" --argjson s "$s" ".config.digest = \$d | .config.size = \$s | $4" \
		"$m" > "$out/part"
	h=$(sha256sum < "$out/part" | cut -d' ' -f1)
	s=$(stat -c %s "$out/part")
	mv "$out/part" "$out/blobs/sha256/$h"
	jq -cn --arg d "sha256:$h" --argjson s "$s" '{schemaVersion: 2,
	  mediaType: "application/vnd.oci.image.index.v1+json",
	  manifests: [{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $d,
	    size: $s, annotations: {"org.opencontainers.image.ref.name": "latest"}}]}' \
		> "$out/index.json"
	echo '{"imageLayoutVersion":"1.0.0"}' > "$out/oci-layout"
}
