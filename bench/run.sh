#!/bin/sh
# bench/run.sh - boot to exit: `hypr run --rm IMAGE true` (a microVM: QEMU,
# the guest kernel, hypr-init, the image's squashfs, the process, shutdown)
# against `docker run --rm --network=none IMAGE true` (namespaces), same
# busybox image made locally; under KVM too when hypr's canary allows it.
# Then what a -v share (9p, msize 512000, cache=none) moves: 256 MiB
# written and read back with dd from the guest, against the guest's own
# writable layer (tmpfs).
# Docker's engine may not run containers on this host (no cgroups or
# overlay in a sandbox): the bench says so and still prints hypr's figures.
# Needs hyperfine, skopeo, jq; root for dockerd.
# Usage: bench/run.sh ; RUNS=N (default 10).
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
hypr=${HYPR:-$src/build/bin/hypr}
runs=${RUNS:-10}
# shellcheck source=bench/peers.sh
. "$src/bench/peers.sh"
peers_begin run.sh /tmp hyperfine skopeo jq
layout=$work/busybox-oci
"$src/tests/lib/mkbase.sh" "$layout"

export HYPR_ROOT="$work/hypr-root"
"$hypr" load --name busybox:latest "$layout" >/dev/null
mkdir -p "$work/ctx"
printf 'FROM busybox:latest\nCMD ["true"]\n' > "$work/ctx/Dockerfile"
"$hypr" build -q -t bench:run "$work/ctx" >/dev/null

# which accelerator the runtime gets (the canary's verdict, as builds)
"$hypr" run --name probe bench:run true
accel=$("$hypr" inspect probe | jq -r '.[0].state.accel')
"$hypr" rm probe >/dev/null
hyperfine -N --style basic --warmup 1 --runs "$runs" --export-json "$work/hypr.json" \
	"$hypr run --rm bench:run true"
results="hypr-$accel $(jq '.results[0].mean' "$work/hypr.json") $(jq '.results[0].stddev' "$work/hypr.json")"
if [ "$accel" = kvm ]; then
	HYPR_ACCEL=tcg hyperfine -N --style basic --warmup 1 --runs "$runs" \
		--export-json "$work/tcg.json" "$hypr run --rm bench:run true"
	results="$results
hypr-tcg $(jq '.results[0].mean' "$work/tcg.json") $(jq '.results[0].stddev' "$work/tcg.json")"
else
	kvm="KVM: not used (the canary did not pass on this host: TCG only)"
fi

docker_note=
if peers_dockerd run.sh; then
	if err=$(/usr/bin/docker run --rm --network=none busybox:latest true 2>&1); then
		hyperfine -N --style basic --warmup 1 --runs "$runs" --export-json "$work/docker.json" \
			"/usr/bin/docker run --rm --network=none busybox:latest true"
		results="$results
docker $(jq '.results[0].mean' "$work/docker.json") $(jq '.results[0].stddev' "$work/docker.json")"
	else
		docker_note="docker: its engine cannot run a container here: $(echo "$err" | tail -1)"
	fi
else
	docker_note="docker: no docker engine here (docker.io missing)"
fi

# 9p: dd from the guest to the share and back, and to its own layer
mkdir -p "$work/share"
cat > "$work/share/dd.sh" <<'EOF'
cs() { awk '{ printf "%d", $1 * 100 }' /proc/uptime; }
t() { s=$(cs); "$@" 2>/dev/null; e=$(cs); echo $(( (e - s) * 10 + 1 )); }
w=$(t dd if=/dev/zero of=/data/f bs=1M count=256)
r=$(t dd if=/data/f of=/dev/null bs=1M)
lw=$(t dd if=/dev/zero of=/tmp/f bs=1M count=256)
lr=$(t dd if=/tmp/f of=/dev/null bs=1M)
echo "$w $r $lw $lr"
EOF
ninep=
for _ in 1 2 3; do
	ninep="$ninep
$("$hypr" run --rm -v "$work/share:/data" bench:run sh /data/dd.sh)"
	rm -f "$work/share/f"
done

echo
echo "hypr run --rm IMAGE true, boot to exit ($runs runs each, mean +- stddev):"
echo "$results" | awk 'NR == 1 { h = $2 }
	{ printf "  %-9s %8.1f ms +- %5.1f   %6.2fx hypr\n", $1, $2 * 1000, $3 * 1000, $2 / h }'
[ -z "${kvm:-}" ] || echo "  $kvm"
[ -z "$docker_note" ] || echo "  $docker_note"
echo
echo "a -v share (9p) from the guest, 256 MiB with dd bs=1M (3 runs):"
echo "$ninep" | awk 'NF == 4 { printf "  9p write %5.0f MB/s  read %5.0f MB/s   (guest layer: write %4.0f MB/s, read %4.0f MB/s)\n",
	268.4 / ($1 / 1000), 268.4 / ($2 / 1000), 268.4 / ($3 / 1000), 268.4 / ($4 / 1000) }'
