#!/usr/bin/env bats
# hypr run and the container commands through the real binaries: a real VM
# per container (TCG here, ~1.5 s a boot), images built once per file.
load helpers

setup_file() {
	export HYPR_ROOT="$BATS_FILE_TMPDIR/root"
	mkdir -p "$HYPR_ROOT"
}

# images: what the VM tests run, built once per file by the first that
# needs them (the others need none, nor a guest kernel: the sanitizer
# build in CI runs them without one)
images() {
	[ ! -e "$BATS_FILE_TMPDIR/images" ] || return 0
	hypr load --name busybox:latest "$(busybox_layout)" >/dev/null
	hypr build -q -t hello "$HYPR_SRC/examples/hello" >/dev/null
	hypr build -q -t rt "$HYPR_SRC/tests/fixtures/run" >/dev/null
	touch "$BATS_FILE_TMPDIR/images"
}

teardown() {
	# nothing a test started outlives it
	local ids
	ids=$(hypr ps -aq 2>/dev/null) || true
	[ -z "$ids" ] || hypr rm -f $ids >/dev/null 2>&1 || true
}

# wait_until SECS CMD...: run CMD until it succeeds, at most SECS seconds
wait_until() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		if [ $SECONDS -ge "$end" ]; then
			echo "wait_until: timed out: $*" >&2
			return 1
		fi
		sleep 0.2
	done
}

status_is() { # NAME PATTERN: hypr ps -a's STATUS matches the glob
	local s
	s=$(hypr ps -a --filter "name=$1" --format '{{.Status}}')
	# shellcheck disable=SC2053
	[[ $s == $2 ]]
}

logs_have() { # NAME TEXT
	hypr logs "$1" 2>&1 | grep -qF -- "$2"
}

# bats test_tags=vm
@test "run: examples/hello prints its greeting, exits 0, and --rm leaves nothing" {
	images
	run --separate-stderr -0 hypr run --rm hello
	assert_output "Hello from a hypr microVM image
built by hypr"
	[ -z "$stderr" ]
	run -0 hypr ps -aq
	assert_output ""
	run -0 find "$HYPR_ROOT/containers" -mindepth 1 -not -name .lock
	assert_output ""
	run -1 pgrep -f "$HYPR_ROOT/containers"
}

# bats test_tags=vm
@test "run: -e, --env-file, -u, -w, --entrypoint, the image's ENV and WORKDIR" {
	images
	printf '# a comment\nFROMFILE=yes\nGREETING=from the file\n' > "$BATS_TEST_TMPDIR/env"
	run -0 hypr run --rm --env-file "$BATS_TEST_TMPDIR/env" -e A=1 -e 'B=two words' hello \
		sh -c 'echo "$A|$B|$FROMFILE|$GREETING|$(pwd)|$(id -u):$(id -g)|$HOME"'
	assert_output "1|two words|yes|from the file|/app|0:0|/root"
	run -0 hypr run --rm -u app -w /tmp/new/dir hello sh -c 'echo "$(id -un) $(pwd) $HOME"'
	assert_output "app /tmp/new/dir /home/app"
	run -0 hypr run --rm -u 1000:0 hello id
	assert_output "uid=1000(app) gid=0(root) groups=0(root)"
	run -0 hypr run --rm --entrypoint /bin/echo hello one two
	assert_output "one two"
	# --entrypoint drops the image's CMD, as docker's does
	run -0 hypr run --rm --entrypoint pwd hello
	assert_output "/app"
	run -0 hypr run --rm rt sh -c 'echo $MODE; pwd'
	assert_output "test
/srv"
}

# bats test_tags=vm
@test "run: the command's exit status is hypr's; stdout and stderr apart; 127 and 126" {
	images
	run --separate-stderr -42 hypr run --rm hello sh -c 'echo out; echo err >&2; exit 42'
	assert_output "out"
	assert_equal "$stderr" "err"
	run --separate-stderr -127 hypr run --rm hello /no/such/program
	assert_equal "$stderr" "hypr-init: exec /no/such/program: No such file or directory"
	run -126 hypr run --rm hello /etc/passwd
	run -137 hypr run --rm hello sh -c 'kill -9 $$'
	# a reader gone is the process's broken pipe (SIGPIPE: 141)
	run -141 bash -c 'hypr run --rm hello yes | head -1 >/dev/null; exit "${PIPESTATUS[0]}"'
	run -0 hypr ps -aq
	assert_output ""
}

# bats test_tags=vm
@test "run: -i feeds stdin (5 MB through the window); without it stdin is /dev/null" {
	images
	head -c 5000000 /dev/urandom > "$BATS_TEST_TMPDIR/big"
	run -0 hypr run -i --rm hello md5sum < "$BATS_TEST_TMPDIR/big"
	assert_output "$(md5sum < "$BATS_TEST_TMPDIR/big")"
	# without -i, stdin is /dev/null
	run -0 hypr run --rm hello sh -c 'cat; echo end' < "$BATS_TEST_TMPDIR/big"
	assert_output "end"
}

# bats test_tags=vm
@test "run: -p forwards a loopback port to busybox httpd in the VM" {
	images
	local port
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	run -0 hypr run -d --name web -p "$port:80" rt httpd -f -h /www
	[[ $output =~ ^[0-9a-f]{64}$ ]]
	wait_until 20 curl -sf -o /dev/null "http://127.0.0.1:$port/"
	run -0 curl -sf "http://127.0.0.1:$port/"
	assert_output "<h1>hypr run</h1>"
	run -0 hypr port web
	assert_output "80/tcp -> 127.0.0.1:$port"
	run -0 hypr ps --format '{{.Names}} {{.Ports}}'
	assert_output "web 127.0.0.1:$port->80/tcp"
	# a port in use is refused before anything boots
	run -125 hypr run --rm -p "$port:80" rt true
	assert_output "hypr: -p $port:80: 127.0.0.1:$port is already in use"
	# -P: every EXPOSEd port on a free one
	run -0 hypr run -d --name webp -P rt httpd -f -h /www
	run -0 hypr port webp 80
	[[ $output =~ ^127\.0\.0\.1:[0-9]+$ ]]
	wait_until 20 curl -sf -o /dev/null "http://$output/"
	# no -p and no --network: no network device at all
	run -0 hypr run --rm hello sh -c 'ls /sys/class/net'
	assert_output "lo"
	run -0 hypr run --rm --network=default hello sh -c 'ls /sys/class/net; cat /etc/resolv.conf'
	assert_output "eth0
lo
nameserver 10.0.2.3"
}

# bats test_tags=vm
@test "run: -p HOST:GUEST/udp forwards datagrams both ways (a static UDP echo server in the image)" {
	images
	local d=$BATS_TEST_TMPDIR/udp port
	mkdir -p "$d"
	cat > "$d/udpecho.c" <<-'EOF'
	#include <netinet/in.h>
	#include <stdlib.h>
	#include <string.h>
	#include <sys/socket.h>
	int main(int argc, char **argv)
	{
		int s = socket(AF_INET, SOCK_DGRAM, 0);
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[1])) }, p;
		char b[600] = "udp:";
		socklen_t l;
		(void)argc;
		if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0)
			return 1;
		for (;;) {
			ssize_t n;
			l = sizeof p;
			n = recvfrom(s, b + 4, 512, 0, (struct sockaddr *)&p, &l);
			if (n > 0)
				sendto(s, b, (size_t)n + 4, 0, (struct sockaddr *)&p, l);
		}
	}
	EOF
	gcc -static -O2 -o "$d/udpecho" "$d/udpecho.c"
	printf 'FROM busybox:latest\nCOPY udpecho /bin/udpecho\n' > "$d/Dockerfile"
	hypr build -q -t udpecho "$d" >/dev/null
	port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	run -0 hypr run -d --name echo -p "$port:5000/udp" udpecho udpecho 5000
	run -0 hypr port echo
	assert_output "5000/udp -> 127.0.0.1:$port"
	# the server may not listen yet: a datagram a second until one comes back
	run -0 python3 -c 'import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)
for _ in range(40):
    s.sendto(b"ping", ("127.0.0.1", int(sys.argv[1])))
    try:
        print(s.recv(600).decode()); break
    except socket.timeout:
        pass' "$port"
	assert_output "udp:ping"
	# ps shows it as docker ps does
	run -0 hypr ps --format '{{.Ports}}' --filter name=echo
	assert_output "127.0.0.1:$port->5000/udp"
}

# bats test_tags=vm
@test "run: -d, ps, logs, stop honours STOPSIGNAL; the timeout ends in SIGKILL" {
	images
	run -0 hypr run -d --name sig rt
	wait_until 20 logs_have sig ready
	run -0 hypr ps --format '{{.Names}}|{{.Image}}|{{.Command}}|{{.State}}'
	assert_output 'sig|rt|"sh /serve.sh"|running'
	run -0 hypr stop sig
	assert_output "sig"
	run -0 hypr logs sig
	assert_output "ready
got USR1"
	run -0 hypr ps -a --format '{{.Names}} {{.Status}}'
	[[ $output == "sig Exited (0) "*" ago" ]]
	run -0 hypr ps -q
	assert_output ""
	# a process that ignores the stop signal: stop -t 1 kills it after 1 s
	run -0 hypr run -d --name deaf rt sh -c 'trap "" USR1 TERM; echo ignoring; while :; do sleep 0.2; done'
	wait_until 20 logs_have deaf ignoring
	SECONDS=0
	run -0 hypr stop -t 1 deaf
	[ "$SECONDS" -ge 1 ]
	run -0 hypr inspect deaf
	run -0 jq -r '.[0].state | "\(.status) \(.exit_code)"' <<<"$output"
	assert_output "exited 137"
	# kill sends a signal (SIGKILL by default)
	run -0 hypr run -d --name k rt
	wait_until 20 logs_have k ready
	run -0 hypr kill -s USR1 k
	wait_until 20 status_is k 'Exited (0)*'
	run -0 hypr rm sig deaf k
	assert_output "sig
deaf
k"
}

# bats test_tags=vm
@test "run: a health check turns healthy, then unhealthy, and ps says so" {
	images
	run -0 hypr run -d --name hc -e HEALTHY_FOR=3 rt
	wait_until 30 status_is hc 'Up * (healthy)'
	wait_until 30 status_is hc 'Up * (unhealthy)'
	run -0 hypr inspect hc
	run -0 jq -r '.[0].state.health | "\(.status) \(.failing_streak >= 2) \(.log[-1].exit_code)"' <<<"$output"
	assert_output "unhealthy true 1"
	# --no-healthcheck and --health-cmd override the image's
	run -0 hypr run -d --name nohc --no-healthcheck rt
	run -0 hypr inspect nohc
	run -0 jq -c '.[0].config.health' <<<"$output"
	assert_output "null"
	run -0 hypr run -d --name cmdhc --health-cmd 'exit 1' --health-interval 500ms --health-retries 1 rt
	wait_until 30 status_is cmdhc 'Up * (unhealthy)'
}

# bats test_tags=vm
@test "run: exec runs next to the process: its env, user, workdir, stdin, exit status (125, 126, 127 as docker exec)" {
	images
	run -0 hypr run -d --name ex -u app rt
	wait_until 20 logs_have ex ready
	run -0 hypr exec ex sh -c 'echo "$MODE $(id -un) $(pwd) $(hostname)"; ls /tmp'
	assert_output "test app /srv ${output:14:12}
healthy"
	run -0 hypr exec -u root -w / -e X=1 ex sh -c 'echo "$X $(id -u) $(pwd)"'
	assert_output "1 0 /"
	run -0 hypr exec -i ex sh -c 'tr a-z A-Z' <<<"shout"
	assert_output "SHOUT"
	run -5 hypr exec ex sh -c 'exit 5'
	run -127 hypr exec ex nosuch
	run --separate-stderr -126 hypr exec ex /etc/passwd	# docker exec's codes
	assert_equal "$stderr" "hypr-init: exec /etc/passwd: Permission denied"
	run -125 hypr exec -u nosuchuser ex true
	run -0 hypr stop -t 0 ex
	run -3 hypr exec ex true
	assert_output --partial "is not running"
}

# bats test_tags=vm
@test "run: -v shares a host directory over 9p, read-write or :ro" {
	images
	mkdir -p "$BATS_TEST_TMPDIR/share"
	echo from-host > "$BATS_TEST_TMPDIR/share/in.txt"
	run -0 hypr run --rm -v "$BATS_TEST_TMPDIR/share:/data" hello \
		sh -c 'cat /data/in.txt; echo from-guest > /data/out.txt; chown 1000 /data/out.txt'
	assert_output "from-host"
	run -0 cat "$BATS_TEST_TMPDIR/share/out.txt"
	assert_output "from-guest"
	run -0 stat -c %u "$BATS_TEST_TMPDIR/share/out.txt"
	assert_output "1000"
	run -1 hypr run --rm -v "$BATS_TEST_TMPDIR/share:/data:ro" hello sh -c 'echo x > /data/x'
	assert_output --partial "Read-only file system"
	# a missing host directory is made, as docker -v makes it
	run -0 hypr run --rm -v "$BATS_TEST_TMPDIR/new/dir:/mnt/x" hello ls -a /mnt/x
	[ -d "$BATS_TEST_TMPDIR/new/dir" ]
}

# bats test_tags=vm
@test "run: -v FILE:PATH shares one file (its siblings stay out); --mount type=bind as docker's" {
	images
	mkdir -p "$BATS_TEST_TMPDIR/etc" "$BATS_TEST_TMPDIR/dir"
	echo greeting > "$BATS_TEST_TMPDIR/etc/app.conf"
	echo secret > "$BATS_TEST_TMPDIR/etc/sibling"
	echo in-dir > "$BATS_TEST_TMPDIR/dir/in.txt"
	run -0 hypr run --rm -v "$BATS_TEST_TMPDIR/etc/app.conf:/etc/app.conf" hello \
		sh -c 'cat /etc/app.conf; ls /etc/sibling 2>&1; echo changed > /etc/app.conf'
	assert_output "greeting
ls: /etc/sibling: No such file or directory"
	run -0 cat "$BATS_TEST_TMPDIR/etc/app.conf"
	assert_output "changed"
	run -1 hypr run --rm -v "$BATS_TEST_TMPDIR/etc/app.conf:/app.conf:ro" hello \
		sh -c 'cat /app.conf; echo x > /app.conf'
	assert_output --partial "changed"
	assert_output --partial "Read-only file system"
	run -0 hypr run --rm --mount "type=bind,source=$BATS_TEST_TMPDIR/dir,target=/data" \
		--mount "type=bind,src=$BATS_TEST_TMPDIR/etc/app.conf,dst=/c,readonly" hello \
		sh -c 'cat /data/in.txt /c; echo out > /data/out.txt'
	assert_output "in-dir
changed"
	run -0 cat "$BATS_TEST_TMPDIR/dir/out.txt"
	assert_output "out"
}

# bats test_tags=vm
@test "run: -it gives a terminal: its size, TERM, ^C to the process, the exit status; ^P^Q and --detach-keys detach" {
	images
	requires script
	# shellcheck disable=SC2016
	run -7 timeout 60 script -qec 'stty rows 30 cols 100; hypr run -it --rm hello sh' /dev/null \
		< <(sleep 3; printf 'stty size; echo $TERM; tty\n'; sleep 1;
			printf 'sleep 30\n'; sleep 1; printf '\003'; sleep 1; printf 'exit 7\n')
	assert_output --partial "30 100"
	assert_output --partial "xterm"
	assert_output --partial "/dev/pts/0"
	assert_output --partial "^C"
	# ^P^Q detaches, as docker run -it's: the container runs on; what it
	# printed before this terminal was attached is there too
	# shellcheck disable=SC2016
	run -0 timeout 60 script -qec 'hypr run -it --name dk hello sh -c "echo early; while read x; do echo got \$x; done"' /dev/null \
		< <(sleep 4; printf 'one\r'; sleep 1; printf '\020\021'; sleep 1)
	assert_output --partial "early"
	assert_output --partial "got one"
	status_is dk 'Up*'
	run -0 hypr exec dk echo alive
	assert_output "alive"
	run -0 hypr rm -f dk
	# --detach-keys of its own; a process quicker than the attach still
	# gives its output and status
	run -3 timeout 60 script -qec 'hypr run -it --rm --detach-keys ctrl-x,y hello sh -c "echo quick; exit 3"' /dev/null < /dev/null
	assert_output --partial "quick"
	run -125 hypr run -it --detach-keys ctrl-1 hello true
	assert_output --partial "--detach-keys ctrl-1: 'ctrl-1' is not a key"
	# without -t, ^C (SIGINT) goes to the process, as docker run's sig-proxy
	hypr run --name intr hello sleep 30 & pid=$!
	wait_until 30 status_is intr 'Up*'
	kill -INT "$pid"
	st=0
	wait "$pid" || st=$?
	assert_equal "$st" 130
}

# bats test_tags=vm
@test "run: restart on-failure:2 runs it three times; a killed supervisor leaves a dead container" {
	images
	# each run over the one writable layer, as docker's restarts
	run -0 hypr run -d --name rs --restart on-failure:2 hello sh -c 'echo run >> /n; wc -l < /n; exit 3'
	wait_until 40 status_is rs 'Exited (3)*'
	run -0 hypr logs rs
	assert_output "1
2
3"
	run -0 hypr logs --tail 2 rs
	assert_output "2
3"
	run -0 hypr logs -n 0 rs
	assert_output ""
	run -0 hypr logs -t --tail all rs
	assert_line --index 0 --regexp '^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{9}Z 1$'
	assert_line --index 2 --regexp 'Z 3$'
	# --since and --until: the records of a time window (a -t time, a
	# date, Unix seconds, a duration before now)
	t2=$(hypr logs -t rs | sed -n '2s/ .*//p')
	run -0 hypr logs --since "$t2" rs
	assert_output "2
3"
	run -0 hypr logs --until "$t2" rs
	assert_output "1
2"
	run -0 hypr logs --since "$t2" --until "$t2" rs
	assert_output "2"
	run -0 hypr logs --since 1h --tail 1 rs
	assert_output "3"
	run -0 hypr logs --since 2099-01-01 rs
	assert_output ""
	run -0 hypr logs --until 1000000000.5 rs
	assert_output ""
	run -0 hypr inspect rs
	run -0 jq -r '.[0].state.restart_count' <<<"$output"
	assert_output "2"
	run -0 hypr run -d --name victim hello sleep 60
	pid=$(hypr inspect victim | jq -r '.[0].state.pid')
	id=$(hypr inspect victim | jq -r '.[0].id')
	run -0 pgrep -f "containers/$id/hypr-vm"
	kill -9 "$pid"
	wait_until 10 status_is victim Dead
	# QEMU went with its supervisor
	wait_until 10 eval "! pgrep -f containers/$id/hypr-vm >/dev/null"
	run -0 hypr rm victim
}

@test "run: bad options and unknown images exit 125 as docker run's; unknown containers are bad input" {
	run -125 hypr run
	assert_output "hypr: run: an IMAGE is needed (see hypr run --help)"
	run -125 hypr run -p 99999:80 hello
	assert_output "hypr: -p 99999:80: bad port '99999'"
	run -125 hypr run -p 1.2.3:80:80 hello
	assert_output "hypr: -p 1.2.3:80:80: 1.2.3 is not an IPv4 address"
	run -125 hypr run --network host hello
	assert_output "hypr: run: --network host: none or default (QEMU user networking)"
	run -125 hypr run --restart sometimes hello
	run -125 hypr run --name 'bad name' hello
	run -125 hypr run no-such-image
	assert_output "hypr: No such image: no-such-image"
	run -125 hypr run --bogus hello
	run -125 hypr run --mount type=tmpfs,target=/data hello
	assert_output "hypr: --mount type=tmpfs,target=/data: type=tmpfs is not supported (bind or volume)"
	run -125 hypr run -v data:/data no-such-image
	run -0 hypr volume ls -q	# made once the image is found only
	assert_output ""
	run -125 hypr run --mount type=bind,source=/no/such/dir,target=/data hello
	assert_output "hypr: --mount type=bind,source=/no/such/dir,target=/data: bind source path does not exist: /no/such/dir"
	run -125 hypr run --mount type=bind,source=/tmp,target=/data,bogus=1 hello
	assert_output "hypr: --mount type=bind,source=/tmp,target=/data,bogus=1: unknown key 'bogus'"
	run -125 hypr run -v /dev/null:/x hello
	assert_output "hypr: -v /dev/null:/x: not a directory or a regular file (9p shares them)"
	run -125 hypr container run
	run -3 hypr logs nothing-here
	assert_output "hypr: No such container: nothing-here"
	run -2 hypr logs --tail abc nothing-here
	assert_output "hypr: logs: --tail abc: a count or all"
	run -2 hypr logs --since yesterday nothing-here
	assert_output "hypr: logs: --since yesterday: a time (RFC 3339, a date, Unix seconds) or a duration (42m)"
	run -2 hypr stop -t '' nothing-here
	assert_output "hypr: stop: -t : seconds"
	run -2 hypr restart -t 1x nothing-here
	assert_output "hypr: restart: -t 1x: seconds"
	run -3 hypr stop nothing-here
	run -3 hypr rm nothing-here
	run -0 hypr run --help
	assert_output --partial "usage: hypr run [OPTIONS] IMAGE [COMMAND [ARG...]]"
}

@test "run: a VM that cannot boot is hypr's failure: 125, attached or -d; the container says why" {
	hypr load --name busybox:latest "$(busybox_layout)" >/dev/null
	printf 'FROM busybox\nCMD ["true"]\n' > "$BATS_TEST_TMPDIR/Dockerfile"
	hypr build -q -t norun "$BATS_TEST_TMPDIR" >/dev/null	# no RUN: no VM
	HYPR_KERNEL=/nonexistent run -125 hypr run --rm norun
	assert_output "hypr: HYPR_KERNEL=/nonexistent: No such file or directory"
	HYPR_KERNEL=/nonexistent run -125 hypr run -d --name nokernel norun
	assert_output "hypr: HYPR_KERNEL=/nonexistent: No such file or directory"
	run -0 hypr inspect -f '{{.state.error}}' nokernel
	assert_output "HYPR_KERNEL=/nonexistent: No such file or directory"
}

@test "run: system df counts containers; rmi and image prune keep a stopped one's image; system prune takes both" {
	# a store of its own: its prunes leave the images of the other tests alone
	export HYPR_ROOT="$BATS_TEST_TMPDIR/root"
	mkdir -p "$HYPR_ROOT"
	hypr load --name busybox:latest "$(busybox_layout)" >/dev/null
	# its own image (norun of the other tests would be a second tag of it)
	printf 'FROM busybox\nLABEL test=kept\nCMD ["true"]\n' > "$BATS_TEST_TMPDIR/Dockerfile"
	hypr build -q -t kept "$BATS_TEST_TMPDIR" >/dev/null	# no RUN: no VM
	id=$(hypr images -q kept)
	# a container that never ran is still a container (docker's Created/Exited);
	# its size is its directory's blocks, the writable layer's disk
	# (metadata of an empty ext4: a few MB) among them
	HYPR_KERNEL=/nonexistent run -125 hypr run -d --name stopped kept
	cid=$(hypr ps -aq --no-trunc)
	run -0 hypr system df
	assert_line --regexp '^Containers +1 +0 +[0-9.]+[kM]B +[0-9.]+[kM]B \(100%\)$'
	run -0 hypr system df -v
	assert_line --regexp "^${cid:0:12} +kept +[0-9.]+[kM]B +exited +stopped\$"
	run -3 hypr rmi kept
	assert_output "hypr-store: conflict: unable to remove repository reference \"kept\" (must force) - container ${cid:0:12} is using its referenced image $id"
	run -3 hypr rmi "$id"
	assert_output "hypr-store: conflict: unable to delete $id (must be forced) - image is being used by stopped container ${cid:0:12}"
	run -0 hypr image prune -af
	refute_output --partial "$id"
	# system prune: the stopped container first, then the image it held
	run -0 hypr system prune -af
	assert_output --partial "Deleted Containers:
$cid

Deleted Images:
untagged: kept:latest
deleted: sha256:"
	run -0 hypr ps -aq
	assert_output ""
	run -0 hypr system df
	assert_line --regexp '^Containers +0 +0 +0B +0B \(0%\)$'
}

# bats test_tags=vm
@test "run: create, start -a (its status), start again over its kept writable layer, restart, start of a running one, rm" {
	images
	run -0 hypr create --name made -e X=1 hello sh -c 'echo run $X >> /state; wc -l < /state; exit 3'
	id=$output
	[ ${#id} -eq 64 ]
	run -0 hypr ps -a --filter name=made --format '{{.Status}}'
	assert_output "Created"
	run -3 hypr start -a made
	assert_output "1"
	# detached: the name, then it runs over the same writable layer
	run -0 hypr start made
	assert_output "made"
	wait_until 30 status_is made 'Exited (3)*'
	run -0 hypr logs made
	assert_output "1
2"
	[ -f "$HYPR_ROOT/containers/$id/rw.ext4" ]
	# rm takes the layer with it: a new container of the name starts afresh
	run -0 hypr rm made
	[ ! -e "$HYPR_ROOT/containers/$id" ]
	run -3 hypr run --name made hello sh -c 'echo run >> /state; wc -l < /state; exit 3'
	assert_output "1"
	run -0 hypr rm made
	run -0 hypr run -d --name srv hello sh -c 'echo up >> /up; sync; exec sleep 100'
	# run -d returns once the process started, not once it wrote /up
	wait_until 30 eval '[ "$(hypr exec srv cat /up)" = up ]'
	t0=$(hypr inspect -f '{{.state.started_at}}' srv)
	run -0 hypr start srv	# running: nothing to do
	assert_output "srv"
	[ "$(hypr inspect -f '{{.state.started_at}}' srv)" = "$t0" ]
	# sleep ignores SIGTERM as PID 1: killed at the timeout, its layer
	# (synced) is there for the next boot
	run -0 hypr restart -t 1 srv
	assert_output "srv"
	status_is srv 'Up *'
	[ "$(hypr inspect -f '{{.state.started_at}}' srv)" != "$t0" ]
	wait_until 30 eval '[ "$(hypr exec srv cat /up)" = "$(printf "up\nup")" ]'
	run -0 hypr container restart -t 0 srv
	run -3 hypr start nothing-here
	assert_output "hypr: No such container: nothing-here"
	# each name is done, or says why not; the exit status is the failure's
	run -3 --separate-stderr hypr rm srv nothing-here
	assert_output ""
	assert_equal "$stderr" 'hypr: cannot remove container "/srv": container is running: stop the container before removing or force remove
hypr: No such container: nothing-here'
	run -3 --separate-stderr hypr stop -t 0 nothing-here srv
	assert_output "srv"
	run -3 --separate-stderr hypr kill srv
	[[ $stderr == "hypr: cannot kill container: srv: container "*" is not running" ]]
	run -0 hypr rm srv
}

@test "run: create and start without a VM: usage, 125 for create, a start that cannot boot" {
	hypr load --name busybox:latest "$(busybox_layout)" >/dev/null
	printf 'FROM busybox\nCMD ["true"]\n' > "$BATS_TEST_TMPDIR/Dockerfile"
	hypr build -q -t norun "$BATS_TEST_TMPDIR" >/dev/null	# no RUN: no VM
	run -2 hypr start
	assert_output "hypr: start: at least one CONTAINER"
	run -2 hypr restart
	run -125 hypr create no-such-image
	run -125 hypr create -d norun
	run -0 hypr create --name idle norun
	run -0 hypr ps -a --format '{{.Names}} {{.Status}}'
	assert_output "idle Created"
	HYPR_KERNEL=/nonexistent run -4 hypr start idle
	assert_line "hypr: HYPR_KERNEL=/nonexistent: No such file or directory"
	run -0 hypr rm idle
}

@test "run: volume create, ls, inspect, rm and prune; a volume a container names is in use (no VM)" {
	hypr load --name busybox:latest "$(busybox_layout)" >/dev/null
	printf 'FROM busybox\nCMD ["true"]\n' > "$BATS_TEST_TMPDIR/Dockerfile"
	hypr build -q -t norun "$BATS_TEST_TMPDIR" >/dev/null	# no RUN: no VM
	run -0 hypr volume create -l tier=db data
	assert_output "data"
	run -0 hypr volume inspect data
	[ "$(jq -r '.[0] | "\(.Name) \(.Driver) \(.Labels.tier) \(.Scope)"' <<<"$output")" = "data local db local" ]
	[ -d "$(jq -r '.[0].Mountpoint' <<<"$output")" ]
	# hypr create makes a missing one, as docker run -v NAME:PATH does
	run -0 hypr create --name holder -v data:/data -v made:/m --mount type=volume,src=other,dst=/o norun
	run -0 hypr volume ls
	assert_output "DRIVER    VOLUME NAME
local     data
local     made
local     other"
	run -3 hypr volume rm data
	assert_output --regexp '^hypr: remove data: volume is in use - \[[0-9a-f]{64}\]$'
	run -0 hypr volume prune -af
	assert_output "Total reclaimed space: 0B"
	run -0 hypr rm holder
	run -0 hypr volume rm data
	assert_output "data"
	run -0 hypr volume prune -f	# named ones stay without -a
	run -0 hypr volume ls -q
	assert_output "made
other"
	run -0 hypr volume prune -af
	assert_output --partial "Deleted Volumes:
made
other"
	run -3 hypr volume rm nosuch
	assert_output "hypr: no such volume: nosuch"
	run -0 hypr volume rm -f nosuch
	run -2 hypr volume create x
	run -125 hypr run -v 'bad name:/x' norun
	assert_output "hypr: -v bad name:/x: \"bad name\" includes invalid characters for a local volume name, only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed; a host path must be absolute"
	run -125 hypr run -v data:relative norun
	assert_output "hypr: -v data:relative: the guest path must be absolute"
}

# bats test_tags=vm
@test "run: a named volume keeps its files between containers; anonymous ones go with --rm and rm -v" {
	images
	run -0 hypr run --rm -v keep:/data hello sh -c 'echo one >> /data/f'
	run -0 hypr run --rm -v keep:/data hello sh -c 'echo two >> /data/f; cat /data/f'
	assert_output "one
two"
	run -1 hypr run --rm -v keep:/data:ro hello sh -c 'echo x > /data/f'
	assert_output --partial "Read-only file system"
	run -0 hypr run --rm --mount type=volume,source=keep,target=/v,readonly hello cat /v/f
	assert_output "one
two"
	# anonymous: -v PATH, and --mount type=volume without a source
	run -0 hypr run --rm -v /anon hello sh -c 'echo a > /anon/a'
	run -0 hypr volume ls -q
	assert_output "keep"
	run -0 hypr run --name anon -v /anon hello sh -c 'echo a > /anon/a'
	run -0 hypr volume ls -q
	assert_line --regexp '^[0-9a-f]{64}$'
	run -0 hypr rm -v anon
	run -0 hypr volume ls -q
	assert_output "keep"
	run -0 hypr volume rm keep
}

@test "run: system df counts local volumes; system prune --volumes takes the unused anonymous ones (no VM)" {
	# a store of its own: its prunes leave the images of the other tests alone
	export HYPR_ROOT="$BATS_TEST_TMPDIR/root"
	mkdir -p "$HYPR_ROOT"
	hypr load --name busybox:latest "$(busybox_layout)" >/dev/null
	printf 'FROM busybox\nCMD ["true"]\n' > "$BATS_TEST_TMPDIR/Dockerfile"
	hypr build -q -t norun "$BATS_TEST_TMPDIR" >/dev/null	# no RUN: no VM
	run -0 hypr volume create named
	run -0 hypr create --name user -v /anon norun
	anon=$(hypr volume ls -q | grep -v '^named$')
	run -0 hypr system df
	assert_line --regexp '^Local Volumes +2 +1 +[0-9.]+kB +[0-9.]+kB \(50%\)$'
	run -0 hypr system df -v
	assert_line --regexp "^$anon +1 +[0-9.]+kB\$"
	assert_line --regexp '^named +0 +[0-9.]+kB$'
	run -0 hypr system prune -f --volumes	# the container first, then its volume
	assert_output --partial "Deleted Volumes:
$anon
"
	run -0 hypr volume ls -q
	assert_output "named"
	run -0 hypr system prune -af	# volumes only with --volumes
	run -0 hypr volume ls -q
	assert_output "named"
}

# bats test_tags=vm
@test "run: attach follows a detached process: its output, its status; stdin with -di; ^P^Q and --detach-keys detach" {
	images
	run -0 hypr run -d --name ends hello sh -c 'sleep 2; echo bye; echo err >&2; exit 7'
	run --separate-stderr -7 hypr attach ends </dev/null
	assert_output "bye"
	assert_equal "$stderr" "err"
	run -3 hypr attach ends
	assert_output "hypr: You cannot attach to a stopped container, start it first"
	# -di: stdin stays open; an attach types into it and detaches with ^P^Q
	run -0 hypr run -di --name cat hello cat
	run -0 bash -c "printf 'one\n\x10y\n\x10\x11' | hypr attach cat >/dev/null"
	wait_until 10 logs_have cat one
	run -0 bash -c "printf 'two\n\x01x' | hypr attach --detach-keys ctrl-a,x cat >/dev/null"
	wait_until 10 logs_have cat two
	status_is cat 'Up *'
	run -0 bash -c 'hypr logs cat | od -An -c | tr -s " "'
	assert_output --partial 'o n e \n 020 y \n t w o \n'
	# an attach's end of input is not the process's: it runs on
	run -124 timeout 3 hypr attach cat </dev/null
	status_is cat 'Up *'
	run -2 hypr attach --detach-keys ctrl-1 cat
	assert_output "hypr: --detach-keys ctrl-1: 'ctrl-1' is not a key (a letter, or ctrl-<value> with <value> a-z, @, [, \\, ], ^ or _)"
}

# bats test_tags=vm
@test "run: --memory and --cpus size the VM; hypr-init is PID 1 and reaps orphans" {
	images
	run -0 hypr run --rm -m 256m --cpus 2 hello sh -c 'grep MemTotal /proc/meminfo; nproc
		sh -c "sleep 0.2 & exit"; sleep 1; cat /proc/1/comm
		cat /proc/[0-9]*/stat 2>/dev/null | awk "{ if (\$3 == \"Z\") z++ } END { print z+0 }"'
	[ "${lines[0]//[^0-9]/}" -gt 200000 ] && [ "${lines[0]//[^0-9]/}" -le 262144 ]
	assert_equal "${lines[1]}" 2
	assert_equal "${lines[2]}" init
	assert_equal "${lines[3]}" 0	# no zombie: the orphaned sleep was reaped
}

# fake_ctr NAME: an exited container's directory, made by hand (no VM)
fake_ctr() {
	local id d
	id=$(printf '%s' "$1" | sha256sum | cut -d' ' -f1)
	d="$HYPR_ROOT/containers/$id"
	mkdir -p "$d"
	jq -n --arg id "$id" --arg name "$1" '{id:$id, name:$name, image:"hello:latest",
		argv:["/app/hello.sh","--loud"], created:"NS",
		labels:{"com.example.k":"v", tier:"web"}, ports:[]}' |
		sed 's/"NS"/1000000000000000000/' > "$d/config.json"	# jq would print 1e+18
	echo '{"status":"exited","exit_code":3,"finished_at":1000000001000000000}' > "$d/state.json"
	echo "$id"
}

@test "run: ps and inspect --format run the one template engine" {
	id=$(fake_ctr fmt-a)
	run -0 hypr ps -a --format '{{.Names}}\t{{.State}}|{{.Image}}|{{.Command}}|{{.Label "tier"}}|{{.Label "nope"}}|{{.Labels}}'
	assert_output "fmt-a	exited|hello:latest|\"/app/hello.sh --loud\"|web||com.example.k=v,tier=web"
	run -0 hypr ps -a --format '{{.ID}} {{.Status}} {{.CreatedAt}}'
	assert_output --regexp "^${id:0:12} Exited \(3\) [0-9]+ years ago 2001-09-09 01:46:40 \+0000 UTC\$"
	run -0 hypr ps -a --format 'table {{.Names}}\t{{upper .State}}'
	assert_output 'NAMES     STATE
fmt-a     EXITED'
	run -0 hypr ps -a --format json
	[ "$(jq -r '.Names + " " + .Label.tier' <<<"$output")" = "fmt-a web" ]
	run --separate-stderr -2 hypr ps -a --format '{{.Bogus}}'
	[ "$stderr" = "hypr: ps: --format: unknown field .Bogus" ]
	# inspect of a container: its object, through the same engine
	run -0 hypr inspect -f '{{.name}} {{.state.status}} {{index .config.labels "tier"}}{{index .config.labels "nope"}} {{join .config.argv ","}}' fmt-a
	assert_output 'fmt-a exited web /app/hello.sh,--loud'
	run -0 hypr container inspect --format '{{.id}}' fmt-a
	assert_output "$id"
	run --separate-stderr -2 hypr inspect -f '{{.State.Status}}' fmt-a
	[ "$stderr" = "hypr: inspect: --format: unknown field .State" ]
	run -0 hypr inspect --type container fmt-a
	[ "$(jq -r '.[0].name' <<<"$output")" = fmt-a ]
	run -2 hypr inspect --type volume fmt-a
	rm -rf "${HYPR_ROOT:?}/containers/$id"
}

# bats test_tags=vm
@test "run: an image in use is refused by rmi and skipped by image prune --all" {
	images
	hypr build -q -t inuse "$HYPR_SRC/examples/hello" --label use=1 >/dev/null
	id=$(hypr images -q inuse)
	run -0 hypr run -d --name user inuse sleep 60
	run -3 hypr rmi inuse
	assert_output "hypr-store: conflict: unable to remove repository reference \"inuse\" (must force) - a running container is using its referenced image $id"
	run -3 hypr rmi "$id"
	assert_output "hypr-store: conflict: unable to delete $id (cannot be forced) - image is being used by a running container"
	run -0 hypr image prune --all --force
	refute_output --partial "$id"
	run -0 hypr images -q inuse
	assert_output "$id"
	# system prune leaves a running container (and the tagged images the
	# tests after this one use)
	run -0 hypr system prune -f
	refute_output --partial "Deleted Containers:"
	run -0 hypr system df
	assert_line --regexp '^Containers +1 +1 '
	run -0 hypr rm -f user
	run -0 hypr image prune --all --force
	assert_output --partial "deleted: sha256:$id"
}
