#!/bin/sh
# bench/mounts.sh - what RUN --mount=type=cache and --network buy (issue 10).
#
# 1. cache mount: one RUN does a slow "compile" (gzip of MIB MiB of random
#    data, 2000 small outputs) into a cache mount unless the cache already
#    holds it, then copies the result into the image. Build 1 starts with
#    an empty cache; build 2 changes a build arg so the step runs again,
#    with the cache warm. Prints both times and the speedup, for hypr,
#    docker build (BuildKit) and buildah, same Dockerfile, same base.
# 2. network: a RUN downloads NET MiB from a server on the host; the server
#    times each transfer from first to last byte. Prints MiB/s for the build
#    VM (--network=default, user-mode network), for curl on the host and
#    for docker build --network=host.
# Needs skopeo, jq, python3, curl and root (dockerd).
# Usage: bench/mounts.sh ; MIB=N (default 64), NET=N (default 256).
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
hypr=${HYPR:-$src/build/bin/hypr}
mib=${MIB:-64}
net=${NET:-256}
# shellcheck source=bench/peers.sh
. "$src/bench/peers.sh"
peers_begin mounts.sh /var/tmp skopeo jq python3 curl
layout=$work/busybox-oci
"$src/tests/lib/mkbase.sh" "$layout" >/dev/null
export HYPR_ROOT="$work/hypr-root"
"$hypr" load --name busybox:latest "$layout" >/dev/null

now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc; }

# --- 1. cache mount ----------------------------------------------------------
ctx=$work/cache
mkdir -p "$ctx"
cat > "$ctx/Dockerfile" <<EOF
FROM busybox
ARG ROUND=1
RUN --mount=type=cache,target=/cache,id=bench \\
    if [ ! -f /cache/done ]; then \\
        mkdir -p /cache/out && \\
        head -c $((mib * 1048576)) /dev/urandom | gzip -9 > /cache/out/blob.gz && \\
        for i in \$(seq 2000); do echo "\$i" > /cache/out/f\$i; done && \\
        touch /cache/done; \\
    fi && cp -r /cache/out /out && echo "round \$ROUND"
EOF

cache_pair() { # NAME CMD...: prints "NAME cold warm"
	name=$1
	shift
	t0=$(now)
	"$@" --build-arg ROUND=1 "$ctx" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
	t1=$(now)
	"$@" --build-arg ROUND=2 "$ctx" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
	t2=$(now)
	echo "$name $(secs "$t0" "$t1") $(secs "$t1" "$t2")" >> "$work/cache.out"
}

cache_pair hypr "$hypr" build -q -t bench:cache
if peers_dockerd mounts.sh; then
	cache_pair docker /usr/bin/docker build -q --network=none -t bench:cache
fi
if peers_buildah mounts.sh; then
	# shellcheck disable=SC2086
	cache_pair buildah buildah $bs bud -q --pull=never --isolation chroot -t bench:cache
fi

# --- 2. network ----------------------------------------------------------------
srv=$work/srv
mkdir -p "$srv"
cat > "$srv/serve.py" <<'PY'
import http.server, sys, time
size, log = int(sys.argv[1]) << 20, sys.argv[2]
chunk = bytes(1 << 20)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        t = time.monotonic()
        for _ in range(size >> 20):
            self.wfile.write(chunk)
        self.wfile.flush()
        with open(log, "a") as f:
            f.write("%.3f\n" % (time.monotonic() - t))
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", 0), H).serve_forever()
PY
python3 "$srv/serve.py" "$net" "$srv/log" &
spid=$!
port=
i=0
while [ -z "$port" ] && [ $i -lt 50 ]; do
	sleep 0.1
	port=$(ss -Hltnp 2>/dev/null | awk -v p="pid=$spid," 'index($0, p) { n = split($4, a, ":"); print a[n]; exit }')
	i=$((i + 1))
done
[ -n "$port" ] || { echo "mounts.sh: the HTTP server did not start" >&2; exit 4; }

rate() { # NAME: MiB/s of the last logged transfer
	echo "$1 $(tail -1 "$srv/log")" >> "$work/net.out"
}
curl -s -o /dev/null "http://127.0.0.1:$port/"
rate host-curl
nctx=$work/net
mkdir -p "$nctx"
# shellcheck disable=SC2016 # $ROUND is for the build
printf 'FROM busybox\nARG ROUND=1\nRUN wget -q -O /dev/null http://%s:%s/ && echo "$ROUND"\n' \
	10.0.2.2 "$port" > "$nctx/Dockerfile"
"$hypr" build -q --no-cache --network=default -t bench:net "$nctx" >/dev/null
rate hypr
if [ -n "$dpid" ]; then
	printf 'FROM busybox\nRUN wget -q -O /dev/null http://127.0.0.1:%s/\n' "$port" > "$nctx/Dockerfile"
	if /usr/bin/docker build -q --no-cache --network=host -t bench:net "$nctx" >/dev/null 2>"$work/err"; then
		rate docker
	else
		echo "mounts.sh: docker build --network=host failed: $(head -1 "$work/err")" >&2
	fi
fi

echo
echo "cache mount, RUN that gzips $mib MiB and writes 2000 files (seconds):"
awk '{ printf "  %-8s cold %6.1f   warm %6.1f   speedup %5.1fx\n", $1, $2, $3, $2 / $3 }' "$work/cache.out"
echo "network, one $net MiB download inside RUN:"
awk -v n="$net" '$1 == "host-curl" { h = n / $2 }
	{ printf "  %-9s %7.1f MiB/s   %5.2fx host curl\n", $1, n / $2, (n / $2) / h }' "$work/net.out"
