#!/bin/sh
# bench/cold.sh - cold builds (no build cache, base images already local):
# `hypr build --no-cache` against `docker build --no-cache --network=none`
# (BuildKit, Debian's docker.io), alternating, RUNS rounds each (default 3),
# medians and the ratio hypr/docker (issue 16: the goal is <= 1.0).
#   small:  busybox base, 3 RUN, COPYs and every config instruction
#   files:  Debian minbase, COPY of 2000 small files and a 50 MiB file, one
#           RUN (sha256sum of the big file)
# hypr is also timed with HYPR_NO_PRESTART=1 (the VM booted at the RUN, not
# at the stage's first cache miss) and with HYPR_VM_SNAPSHOT=0 (cold VM
# boots, no snapshot; the warm-up round saves the snapshots) and with
# HYPR_VM_IMPORT_TAR=1 (COPY layers extracted in the VM, not mounted as
# squashfs lowers) and with HYPR_VM_WARM=0 (no step warming QEMU's
# translations at READY) and with HYPR_VM_SNAPSHOT=shared (never the base's
# own snapshot). VARIANTS names the variants run (default all: late nosnap
# tars nowarm shared); VARIANTS= times hypr against docker alone, for more
# rounds in the same time. Medians and the best (fastest) of the rounds
# are printed: noise only adds time, and docker's own builds spread
# wider than hypr's here. For hypr it also prints the peak RSS of the whole
# build (the largest process: QEMU or a stage) and the bytes the build wrote under
# $HYPR_ROOT/tmp. Needs skopeo, jq, debootstrap once (bench/peers.sh) and
# root for dockerd; without docker.io only hypr's times are printed.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
hypr=${HYPR:-$src/build/bin/hypr}
runs=${RUNS:-3}
variants=${VARIANTS-late nosnap tars nowarm shared}
nv=$(($(echo "early $variants" | wc -w)))
# shellcheck source=bench/peers.sh
. "$src/bench/peers.sh"
peers_begin cold.sh /var/tmp skopeo jq
peers_debian cold.sh
deblayout=$layout
layout=$work/busybox-oci
"$src/tests/lib/mkbase.sh" "$layout" >/dev/null

export HYPR_ROOT="$work/hypr-root"
"$hypr" load --name busybox:latest "$layout" >/dev/null
"$hypr" load --name debian:bookworm "$deblayout" >/dev/null
docker=
if peers_dockerd cold.sh; then
	skopeo copy -q oci:"$deblayout":latest --dest-daemon-host "$DOCKER_HOST" \
		docker-daemon:debian:bookworm
	docker=/usr/bin/docker
fi

# --- the contexts ---------------------------------------------------------
small=$work/small
mkdir -p "$small/dir"
echo one > "$small/f1"
echo two > "$small/f2"
for i in 1 2 3 4 5; do echo "$i" > "$small/dir/$i"; done
cat > "$small/Dockerfile" <<'EOF'
FROM busybox
LABEL org.example.name=small
ENV APP=/app MODE=cold
ARG BUILD=1
WORKDIR /app
COPY f1 f2 ./
RUN echo "built $BUILD" > /app/built && ls /app > /app/listing
COPY dir /srv/dir
RUN mkdir -p /data && for i in $(seq 100); do echo "$i" > /data/f$i; done
USER 0:0
EXPOSE 8080/tcp
VOLUME /data
RUN cat /app/built /app/listing > /app/all
HEALTHCHECK --interval=30s CMD test -f /app/all
SHELL ["/bin/sh", "-c"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /app/all"]
ONBUILD RUN true
EOF

files=$work/files
peers_files "$files"
cat > "$files/Dockerfile" <<'EOF'
FROM debian:bookworm
COPY small /srv/small
COPY big /srv/big
RUN sha256sum /srv/big > /srv/big.sha256
EOF

now() { date +%s.%N; }
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
best() { sort -n | head -1; }

# one NAME CTX: a round of each tool on CTX, times appended to $work/NAME.*
# rot K WORD...: the words from the K-th on, then those before it
rot() {
	k=$1
	shift
	j=0
	for v; do [ "$j" -ge "$k" ] && printf '%s ' "$v"; j=$((j + 1)); done
	j=0
	for v; do [ "$j" -lt "$k" ] && printf '%s ' "$v"; j=$((j + 1)); done
}

one() {
	# hypr and its variants rotate, each first once in as many rounds;
	# each timed build waits for a quiet machine first (peers_settle)
	# shellcheck disable=SC2086
	for v in $(rot $((i % nv)) early $variants); do
		"$v" "$1" "$2"
	done
	if [ -n "$docker" ]; then
		peers_settle
		t0=$(now)
		"$docker" build -q --no-cache --network=none -t "cold:$1" "$2" \
			>/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
		t1=$(now)
		echo "$t1 - $t0" | bc >> "$work/$1.docker"
		# docker's build cache and dangling images grow with each
		# build and slow the next (0.84 s to 1.6 s in 5 rounds)
		"$docker" builder prune -af >/dev/null
		"$docker" image prune -f >/dev/null
	fi
}

early() {
	peers_settle
	t0=$(now)
	/usr/bin/time -f %M -o "$work/rss" "$hypr" build -q --no-cache -t "cold:$1" "$2" \
		>/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
	t1=$(now)
	echo "$t1 - $t0" | bc >> "$work/$1.hypr"
	cat "$work/rss" >> "$work/$1.rss"
}

# variant KIND NAME CTX VAR=VALUE: hypr with one setting changed, its time
# appended to $work/NAME.KIND
variant() {
	peers_settle
	t0=$(now)
	env "$4" "$hypr" build -q --no-cache -t "cold:$2" "$3" \
		>/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
	t1=$(now)
	echo "$t1 - $t0" | bc >> "$work/$2.$1"
}
# without the VM's early boot (its share of the gain)
late() { variant late "$1" "$2" HYPR_NO_PRESTART=1; }
# with cold VM boots (no snapshot: hypr-guest(7), SNAPSHOTS)
nosnap() { variant nosnap "$1" "$2" HYPR_VM_SNAPSHOT=0; }
# with every layer sent to the VM as a tar it extracts (no squashfs lowers)
tars() { variant tars "$1" "$2" HYPR_VM_IMPORT_TAR=1; }
# with no warm-up step at READY (hypr-guest(7), Warm-up)
nowarm() { variant nowarm "$1" "$2" HYPR_VM_WARM=0; }
# with the snapshot every base shares, never the base's own
shared() { variant shared "$1" "$2" HYPR_VM_SNAPSHOT=shared; }

# tmpbytes NAME CTX: the most disk the build held under $HYPR_ROOT/tmp at
# once, sampled every 50 ms (the build removes its files when it ends)
tmpbytes() {
	(
		max=0
		while [ ! -f "$work/stop" ]; do
			a=$(du -sB1 "$HYPR_ROOT/tmp" 2>/dev/null | cut -f1) || a=0
			[ "${a:-0}" -gt "$max" ] && max=$a
			echo "$max" > "$work/tmpmax"
			sleep 0.05
		done
	) &
	w=$!
	"$hypr" build -q --no-cache -t "cold:$1" "$2" >/dev/null 2>&1
	touch "$work/stop"
	wait "$w"
	rm -f "$work/stop"
	cat "$work/tmpmax"
}

# warm-up, twice (page cache, the KVM verdict, docker's base; a base seen
# again gets its own VM snapshot, for each variant's VM shape)
for i in 0 1; do
	one small "$small" >/dev/null
	one files "$files" >/dev/null
done
for f in "$work"/*.hypr "$work"/*.docker "$work"/*.rss; do : > "$f"; done 2>/dev/null || true
for v in $variants; do
	for f in "$work"/*."$v"; do : > "$f"; done 2>/dev/null || true
done
i=0
while [ "$i" -lt "$runs" ]; do
	one small "$small"
	one files "$files"
	i=$((i + 1))
done

echo
echo "cold build, median of $runs (load average $(cut -d' ' -f1-3 /proc/loadavg)):"
# vlabel VARIANT: what it changes, as printed
vlabel() {
	case $1 in
	late) echo "booting at the RUN" ;;
	nosnap) echo "no VM snapshot" ;;
	tars) echo "layers as tars" ;;
	nowarm) echo "no warm-up" ;;
	shared) echo "shared snapshot only" ;;
	esac
}
for c in small files; do
	h=$(median < "$work/$c.hypr")
	rss=$(sort -n "$work/$c.rss" | tail -1)
	tmp=$(tmpbytes "$c" "$([ "$c" = small ] && echo "$small" || echo "$files")")
	if [ -n "$docker" ]; then
		d=$(median < "$work/$c.docker")
		printf '  %-6s hypr %6.2f s   docker %6.2f s   ratio %5.2fx' "$c" "$h" "$d" \
			"$(echo "$h / $d" | bc -l)"
	else
		printf '  %-6s hypr %6.2f s' "$c" "$h"
	fi
	sep='   ('
	for v in $variants; do
		printf '%s%s: %.2f s' "$sep" "$(vlabel "$v")" "$(median < "$work/$c.$v")"
		sep=', '
	done
	[ -z "$variants" ] || printf ')'
	printf '   peak RSS %d MB, tmp %d MB\n' "$((rss / 1024))" "$((tmp / 1048576))"
done
if [ -n "$docker" ]; then
	echo "best of $runs:"
	for c in small files; do
		h=$(best < "$work/$c.hypr")
		d=$(best < "$work/$c.docker")
		printf '  %-6s hypr %6.2f s   docker %6.2f s   ratio %5.2fx\n' "$c" "$h" "$d" \
			"$(echo "$h / $d" | bc -l)"
	done
fi
echo "each run, in order (hypr, then docker):"
for c in small files; do
	printf '  %-6s hypr %s   docker %s\n' "$c" "$(tr '\n' ' ' < "$work/$c.hypr")" \
		"$(tr '\n' ' ' < "$work/$c.docker" 2>/dev/null)"
done
