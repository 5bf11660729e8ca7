#!/bin/sh
# bench/realworld.sh - the shape of the Dockerfiles people write (issue 10):
# a Node.js and a Python project on Debian, dependencies installed with the
# network and cache mounts (apt's cache and lists, npm's cache, pip's cache),
# then the sources copied in. Each is built three times with hypr and with
# docker build (BuildKit, --network=host: its private dockerd has no bridge):
#   cold     empty build cache (cache mounts empty too)
#   source   a source file changed: only the last COPY and what follows run
#   deps     a dependency added: the install runs again with warm cache mounts
# and the built image is checked (node and python3 import what was installed).
# Needs the Debian mirror and registry.npmjs.org from the build (the npm and
# Debian package mirrors are what these machines reach), debootstrap once
# (bench/peers.sh), skopeo, jq; root for dockerd. Opt-in: it downloads
# ~60 MB of packages per cold build and takes several minutes under TCG.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
hypr=${HYPR:-$src/build/bin/hypr}
# shellcheck source=bench/peers.sh
. "$src/bench/peers.sh"
peers_begin realworld.sh /var/tmp skopeo jq
peers_debian realworld.sh
deblayout=$layout
layout=$work/busybox-oci
"$src/tests/lib/mkbase.sh" "$layout" >/dev/null
export HYPR_ROOT="$work/hypr-root"
"$hypr" load --name debian:bookworm "$deblayout" >/dev/null
docker=''
if peers_dockerd realworld.sh; then
	skopeo copy -q oci:"$deblayout":latest --dest-daemon-host "$DOCKER_HOST" \
		docker-daemon:debian:bookworm
	docker=/usr/bin/docker
fi

# The host's own extra CAs (an intercepting proxy's, say), as a build
# secret npm trusts: the image's CA store knows none of them.
cat /usr/local/share/ca-certificates/*.crt > "$work/ca.pem" 2>/dev/null || : > "$work/ca.pem"

# --- Node.js: npm ci from a lock file --------------------------------------
node=$work/node
mkdir -p "$node/src"
cat > "$node/Dockerfile" <<'EOF'
FROM debian:bookworm
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt/lists,sharing=locked \
    rm -f /etc/apt/apt.conf.d/docker-clean && \
    echo 'Binary::apt::APT::Keep-Downloaded-Packages "true";' > /etc/apt/apt.conf.d/keep-cache && \
    apt-get update && apt-get install -y --no-install-recommends nodejs npm
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm --mount=type=secret,id=ca \
    NODE_EXTRA_CA_CERTS=/run/secrets/ca npm ci --omit=dev --no-audit --no-fund
COPY src ./src
RUN node -e "const ms = require('ms'); console.log(ms('2 days'), require('./src/app.js'))"
CMD ["node", "src/app.js"]
EOF
cat > "$node/package.json" <<'EOF'
{ "name": "app", "version": "1.0.0", "dependencies": { "ms": "2.1.3" } }
EOF
cat > "$node/package-lock.json" <<'EOF'
{
  "name": "app", "version": "1.0.0", "lockfileVersion": 3, "requires": true,
  "packages": {
    "": { "name": "app", "version": "1.0.0", "dependencies": { "ms": "2.1.3" } },
    "node_modules/ms": {
      "version": "2.1.3",
      "resolved": "https://registry.npmjs.org/ms/-/ms-2.1.3.tgz",
      "integrity": "sha512-6FlzubTLZG3J2a/NVCAleEhjzq5oxgHyaCU9yYXvcLsvoVaHJq/s5xXI6/XXP6tz7R9xAOtHnSO/tXtF3WRTlA=="
    }
  }
}
EOF
echo 'module.exports = "v1";' > "$node/src/app.js"
node_src() { echo 'module.exports = "v2";' > "$node/src/app.js"; }
node_deps() { # add a second dependency (its lock entry from the registry)
	i=$(curl -fsS https://registry.npmjs.org/is-number/7.0.0 | jq -r .dist.integrity)
	jq --arg i "$i" '.packages[""].dependencies["is-number"] = "7.0.0" |
	    .packages["node_modules/is-number"] = { version: "7.0.0",
	    resolved: "https://registry.npmjs.org/is-number/-/is-number-7.0.0.tgz",
	    integrity: $i, engines: { node: ">=0.12.0" } }' "$node/package-lock.json" > "$work/lock"
	mv "$work/lock" "$node/package-lock.json"
	jq '.dependencies["is-number"] = "7.0.0"' "$node/package.json" > "$work/pkg"
	mv "$work/pkg" "$node/package.json"
}

# --- Python: a venv, pip install of a local package (no PyPI here) ---------
py=$work/python
mkdir -p "$py/pkg/greet" "$py/src"
cat > "$py/Dockerfile" <<'EOF'
FROM debian:bookworm
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt/lists,sharing=locked \
    rm -f /etc/apt/apt.conf.d/docker-clean && \
    echo 'Binary::apt::APT::Keep-Downloaded-Packages "true";' > /etc/apt/apt.conf.d/keep-cache && \
    apt-get update && apt-get install -y --no-install-recommends python3 python3-venv python3-setuptools
RUN python3 -m venv --system-site-packages /venv
ENV PATH=/venv/bin:$PATH
WORKDIR /app
RUN --mount=type=bind,source=pkg,target=/tmp/pkg,rw \
    --mount=type=cache,target=/root/.cache/pip \
    pip install --no-index --no-build-isolation /tmp/pkg
COPY src ./src
RUN python3 -c "import greet, sys; sys.path.insert(0, 'src'); import app; print(greet.hello(), app.VERSION)"
CMD ["python3", "src/app.py"]
EOF
cat > "$py/pkg/setup.py" <<'EOF'
from setuptools import setup
setup(name="greet", version="1.0", packages=["greet"])
EOF
echo 'def hello(): return "hello"' > "$py/pkg/greet/__init__.py"
echo 'VERSION = "v1"' > "$py/src/app.py"
py_src() { echo 'VERSION = "v2"' > "$py/src/app.py"; }
py_deps() { echo 'def bye(): return "bye"' > "$py/pkg/greet/bye.py"; }

now() { date +%s.%N; }

# build NAME ROUND CTX: one build by each tool, "NAME ROUND hypr docker" out
build() {
	t0=$(now)
	"$hypr" build --progress=plain --network=default --secret id=ca,src="$work/ca.pem" -t "rw:$1" "$3" >/dev/null 2>"$work/err" ||
		{ echo "realworld.sh: hypr build of $1 ($2) failed:" >&2; tail -30 "$work/err" >&2; exit 1; }
	t1=$(now)
	h=$(echo "$t1 - $t0" | bc)
	d=0
	if [ -n "$docker" ]; then
		t0=$(now)
		"$docker" build -q --network=host --secret id=ca,src="$work/ca.pem" -t "rw:$1" "$3" >/dev/null 2>"$work/err" ||
			{ echo "realworld.sh: docker build of $1 ($2) failed:" >&2; tail -5 "$work/err" >&2; exit 1; }
		t1=$(now)
		d=$(echo "$t1 - $t0" | bc)
	fi
	echo "$1 $2 $h $d" >> "$work/results"
}

build node cold "$node"
node_src
build node source "$node"
node_deps
build node deps "$node"
build python cold "$py"
py_src
build python source "$py"
py_deps
build python deps "$py"

echo
echo "real-world shapes (seconds; load average $(cut -d' ' -f1-3 /proc/loadavg)):"
awk -v d="$docker" '{ if (d != "")
		printf "  %-7s %-7s hypr %7.1f   docker %7.1f   ratio %5.2fx\n", $1, $2, $3, $4, $3 / $4
	else
		printf "  %-7s %-7s hypr %7.1f\n", $1, $2, $3 }' "$work/results"
