#!/bin/sh
# bench/vm.sh - the build VM against the floors of research/microvm.md §9:
# QEMU spawn to agent READY, per-step overhead of `RUN true`, diff
# throughput of a 100 MiB layer. Uses build/bin/hypr-vmctl and a busybox base.
# ROUNDS=N (default 5), HYPR_ACCEL as for hypr.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
vmctl=${HYPR_VMCTL:-$src/build/bin/hypr-vmctl}
rounds=${ROUNDS:-5}
steps=${STEPS:-40}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
export HYPR_ROOT="$work/root" TMPDIR="$work"

"$src/tests/lib/mkbase.sh" "$work/oci" >/dev/null
m=$(jq -r '.manifests[0].digest' "$work/oci/index.json")
l=$(jq -r '.layers[0].digest' "$work/oci/blobs/sha256/${m#sha256:}")
zcat "$work/oci/blobs/sha256/${l#sha256:}" | tar2sqfs -q -f -c gzip "$work/base.sqfs" >/dev/null

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# 1. boot to READY
i=0
while [ $i -lt "$rounds" ]; do
	"$vmctl" -T -b "$work/base.sqfs" run /bin/true 2>&1 >/dev/null |
		sed -n 's/.*(ready \([0-9.]*\) s) accel \(.*\)/\1 \2/p' >> "$work/boot"
	i=$((i + 1))
done
accel=$(awk '{print $2; exit}' "$work/boot")
boot=$(awk '{print $1}' "$work/boot" | median)

# 2. per-step overhead: median RUN true round trip minus what fork+exec of
# /bin/true costs inside the guest (measured there, 200 times, in us)
set --
i=0
while [ $i -lt "$steps" ]; do
	set -- "$@" run /bin/true ";"
	i=$((i + 1))
done
# shellcheck disable=SC2016 # expanded in the guest
"$vmctl" -T -b "$work/base.sqfs" "$@" sh 'read a _ < /proc/uptime; i=0; while [ $i -lt 200 ]; do /bin/true; i=$((i+1)); done; read b _ < /proc/uptime; echo "exec $(( (${b%.*}${b#*.} - ${a%.*}${a#*.}) * 50 ))"' \
	> "$work/steps.out" 2> "$work/steps.err"
step=$(sed -n 's/.*: run \([0-9.]*\) s status 0/\1/p' "$work/steps.err" | sed '1d;$d' | median)
exec_us=$(sed -n 's/^exec //p' "$work/steps.out")
step_ms=$(awk -v s="$step" 'BEGIN {printf "%.1f", s * 1000}')
exec_ms=$(awk -v u="$exec_us" 'BEGIN {printf "%.1f", u / 1000}')
over_ms=$(awk -v s="$step_ms" -v e="$exec_ms" 'BEGIN {printf "%.1f", s - e}')

# 3. diff throughput, 100 MiB file
i=0
while [ $i -lt "$rounds" ]; do
	"$vmctl" -T -b "$work/base.sqfs" sh 'dd if=/dev/zero of=/big bs=1M count=100 2>/dev/null' ";" \
		diff "$work/d.tar" 2>&1 >/dev/null | sed -n 's/.*: diff \([0-9.]*\) s \([0-9]*\) bytes/\1 \2/p' >> "$work/diff"
	i=$((i + 1))
done
rate=$(awk '{print $2 / $1 / 1e6}' "$work/diff" | median)

printf 'build VM bench (%s, %s rounds, load %s)\n' "$accel" "$rounds" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-34s %10s %12s\n' metric measured floor
printf '%-34s %9ss %12s\n' "spawn to READY (median)" "$boot" "<= 0.9 s"
printf '%-34s %8sms %12s\n' "RUN true round trip (median)" "$step_ms" ""
printf '%-34s %8sms %12s\n' "  of which fork+exec of true" "$exec_ms" ""
printf '%-34s %8sms %12s\n' "  per-step overhead" "$over_ms" "<= 15 ms"
printf '%-34s %6.0fMB/s %12s\n' "diff of 100 MiB (median)" "$rate" ">= 150 MB/s"
