#!/bin/sh
# bench/parse.sh - hypr-parse time per instruction on a large, real-world
# shaped Dockerfile (multi-stage, continuations, heredocs, JSON forms), then
# memory and time on the largest Dockerfile it takes: 1M ENV lines, 16 MB
# (GNU time measures the peak; HYPR_BENCH_BIG=0 skips it).
# Usage: bench/parse.sh [STAGES] [RUNS]   (defaults: 60 stages, 20 runs)
set -eu
stages=${1:-60}
runs=${2:-20}
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${HYPR_PARSE:-$here/build/bin/hypr-parse}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# shellcheck disable=SC1003 # the backslashes are Dockerfile continuations
gen() {
	echo '# syntax=docker/dockerfile:1'
	echo 'ARG DEBIAN=bookworm'
	echo 'ARG GO_VERSION=1.22'
	i=0
	while [ "$i" -lt "$stages" ]; do
		echo "FROM debian:\${DEBIAN}-slim AS s$i"
		echo 'ARG GO_VERSION'
		echo "ENV PATH=/usr/local/go/bin:\$PATH \\"
		echo "    GOPATH=/go CGO_ENABLED=0 STAGE=$i"
		echo 'RUN apt-get update \'
		echo '    && apt-get install -y --no-install-recommends \'
		echo '       ca-certificates curl git make gcc libc6-dev \'
		echo '    # keep the image small'
		echo '    && rm -rf /var/lib/apt/lists/*'
		echo 'WORKDIR /src'
		echo 'COPY --chown=1000:1000 go.mod go.sum ./'
		echo 'RUN --mount=type=bind,target=/src/vendor,source=vendor go mod download'
		echo 'COPY <<EOF /etc/app.conf'
		echo "name = app-$i"
		echo 'listen = :8080'
		echo 'EOF'
		echo 'RUN <<-SCRIPT'
		printf '\tset -e\n\tgo build -o /out/app ./cmd/app\n\tSCRIPT\n'
		echo 'LABEL org.opencontainers.image.source="https://example.com/app" \'
		echo "      org.opencontainers.image.revision=\"rev-$i\""
		echo 'EXPOSE 8080/tcp 9090'
		echo 'USER 1000:1000'
		echo 'HEALTHCHECK --interval=30s CMD ["/out/app", "health"]'
		if [ "$i" -gt 0 ]; then
			echo "COPY --from=s$((i - 1)) /out/app /out/prev"
		fi
		echo 'ENTRYPOINT ["/out/app"]'
		echo 'CMD ["serve", "--port", "8080"]'
		i=$((i + 1))
	done
}

gen > "$tmp/Dockerfile"
"$bin" -f "$tmp/Dockerfile" > "$tmp/plan"
ninstr=$(grep -c '"type":"\(instr\|stage\|arg\)"' "$tmp/plan")
lines=$(wc -l < "$tmp/Dockerfile")
# the cost of starting the program at all, from a one-line Dockerfile
echo 'FROM scratch' > "$tmp/tiny"

now() { date +%s%N; }
t0=$(now)
n=0
while [ "$n" -lt "$runs" ]; do "$bin" -f "$tmp/tiny" > /dev/null; n=$((n + 1)); done
t1=$(now)
n=0
while [ "$n" -lt "$runs" ]; do "$bin" -f "$tmp/Dockerfile" > /dev/null; n=$((n + 1)); done
t2=$(now)

start_us=$(( (t1 - t0) / runs / 1000 ))
total_us=$(( (t2 - t1) / runs / 1000 ))
per=$(awk -v t="$total_us" -v s="$start_us" -v n="$ninstr" \
	'BEGIN { printf "%.2f", (t - s) / n }')
printf 'parse: %d lines, %d instructions (%d stages), %d runs\n' \
	"$lines" "$ninstr" "$stages" "$runs"
printf 'parse: %d us per run, %d us process start, %s us per instruction\n' \
	"$total_us" "$start_us" "$per"

if [ "${HYPR_BENCH_BIG:-1}" != 0 ] && [ -x /usr/bin/time ]; then
	{ echo 'FROM scratch'; seq 1 1000000 | awk '{ printf "ENV K%07d=xy\n", $1 }'; } > "$tmp/big"
	/usr/bin/time -f '%M %e' -o "$tmp/time" "$bin" -f "$tmp/big" > /dev/null
	read -r kb secs < "$tmp/time"
	printf 'parse: 1000000 ENV lines (%d bytes): %d MB max RSS, %s s\n' \
	    "$(wc -c < "$tmp/big")" $((kb / 1024)) "$secs"
fi
