#!/bin/sh
# bench/limits.sh - peak memory of every stage (issue 13: bounded by design).
# Three hostile-but-legal builds, each run once through `hypr build --keep`,
# then each stage re-run alone on its saved input under /usr/bin/time:
#   files: COPY of 100 000 small files      (flatten and squash per file)
#   big:   COPY of one 1 GiB file           (streams, not memory)
#   env:   10 000 ENV lines                 (the config once per stage)
# Prints max RSS in MB per stage and the wall time of the whole build.
# Usage: bench/limits.sh [FILES] [MIB] [ENVS]   (defaults 100000 1024 10000)
set -eu
files=${1:-100000}
mib=${2:-1024}
envs=${3:-10000}
here=$(cd "$(dirname "$0")/.." && pwd)
bin=$here/build/bin
tmp=$(mktemp -d /var/tmp/hypr-limits.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export HYPR_ROOT="$tmp/root" HYPR_PROGRESS=plain
"$bin/hypr" load --name busybox:latest "$("$here/tests/lib/mkbase.sh" "$tmp/oci" >&2; echo "$tmp/oci")" >/dev/null

mkdir -p "$tmp/files/d" "$tmp/big" "$tmp/env"
python3 - "$tmp/files/d" "$files" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    sub = os.path.join(d, "%03d" % (i // 1000))
    os.makedirs(sub, exist_ok=True)
    with open(os.path.join(sub, "f%06d" % i), "w") as f:
        f.write("x" * (i % 200))
PY
printf 'FROM busybox:latest\nCOPY d /d\n' > "$tmp/files/Dockerfile"
head -c "$((mib * 1048576))" /dev/urandom > "$tmp/big/blob"
printf 'FROM busybox:latest\nCOPY blob /blob\n' > "$tmp/big/Dockerfile"
{
	echo 'FROM busybox:latest'
	i=0
	while [ "$i" -lt "$envs" ]; do
		echo "ENV VAR_$i=value_$i"
		i=$((i + 1))
	done
} > "$tmp/env/Dockerfile"

rss() { # STAGE INPUT CMD...: max RSS in MB of CMD < INPUT
	stage=$1 in=$2
	shift 2
	/usr/bin/time -f '%M' -o "$tmp/t" "$@" < "$in" > /dev/null 2>"$tmp/err" ||
		{ echo "$stage failed:" >&2; cat "$tmp/err" >&2; exit 1; }
	printf ' %s=%sMB' "$stage" "$(($(cat "$tmp/t") / 1024))"
}

for w in files big env; do
	start=$(date +%s.%N)
	"$bin/hypr" build -q --keep "$tmp/k-$w" -t "limits-$w" "$tmp/$w" > /dev/null
	end=$(date +%s.%N)
	k=$tmp/k-$w
	printf '%-6s build %.1fs:' "$w" "$(echo "$end - $start" | bc)"
	rss parse "$tmp/$w/Dockerfile" "$bin/hypr-parse" -f "$tmp/$w/Dockerfile"
	rss fetch "$k/plan.jsonl" "$bin/hypr-fetch"
	rss exec "$k/resolved.jsonl" "$bin/hypr-exec" -q --no-cache -C "$tmp/$w"
	rss layer "$k/steps.jsonl" "$bin/hypr-layer"
	rm -rf "$HYPR_ROOT/cache/squashfs"	# a hit would measure nothing
	rss squash "$k/image.jsonl" "$bin/hypr-squash"
	printf ' steps-stream=%sKB\n' "$(($(stat -c %s "$k/steps.jsonl") / 1024))"
done
