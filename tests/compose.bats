#!/usr/bin/env bats
# hypr compose: reading compose files (lib/compose.c) and turning each
# service's build: into a `hypr build`. `hypr compose config` prints those
# commands without running them; the last tests build for real.
load helpers

setup() {
	fresh_root
	C="$FIX/compose"
	unset COMPOSE_PROJECT_NAME APPDIR FROMENV
}

@test "compose: string form, full form, list and map args, tags, labels" {
	run --separate-stderr -0 hypr compose -f "$C/forms.yaml" config
	[ -z "$stderr" ]
	assert_output "hypr build -t compose_str $C/app
hypr build -t example.com/team/full:2 -t extra:tag -f $C/app/Other.Dockerfile --build-arg=ONE=1 --build-arg=BARE --build-arg=QUOTED= --target=runtime --label=a=b --no-cache --pull=always $C/app
hypr build -t compose_listargs --build-arg=X=1 --build-arg=FROMENV $C/app"
}

@test "compose: interpolation from the environment" {
	mkdir -p "$BATS_TEST_TMPDIR/p/other"
	cat > "$BATS_TEST_TMPDIR/p/compose.yml" <<-'EOF'
	services:
	  svc:
	    image: "reg.example/${IMG:-dflt}:${TAG-none}"
	    build:
	      context: ${DIR}
	      args: ["PRICE=$$5", "WHO=${WHO:+set}"]
	EOF
	DIR=other TAG= WHO=x run -0 hypr compose --project-directory "$BATS_TEST_TMPDIR/p" config
	assert_output "hypr build -t reg.example/dflt: '--build-arg=PRICE=\$5' --build-arg=WHO=set $BATS_TEST_TMPDIR/p/other"
	printf 'services:\n  s:\n    build: ${NEED:?set NEED}\n' > "$BATS_TEST_TMPDIR/p/compose.yml"
	run -3 hypr compose --project-directory "$BATS_TEST_TMPDIR/p" config
	assert_output --partial "required variable NEED is missing a value: set NEED"
}

@test "compose: project name from -p, COMPOSE_PROJECT_NAME, name:, the directory" {
	mkdir -p "$BATS_TEST_TMPDIR/My.Project_Dir"
	printf 'services:\n  web:\n    build: .\n' > "$BATS_TEST_TMPDIR/My.Project_Dir/compose.yaml"
	cd "$BATS_TEST_TMPDIR/My.Project_Dir"
	run -0 hypr compose config
	assert_output "hypr build -t myproject_dir_web $PWD"
	COMPOSE_PROJECT_NAME=FromEnv run -0 hypr compose config
	assert_output "hypr build -t fromenv_web $PWD"
	COMPOSE_PROJECT_NAME=FromEnv run -0 hypr compose -p 'Cli Name' config
	assert_output "hypr build -t cliname_web $PWD"
	printf 'name: top\nservices:\n  web:\n    build: .\n' > compose.yaml
	run -0 hypr compose config
	assert_output "hypr build -t top_web $PWD"
	run -2 hypr compose -p '!!!' config
}

@test "compose: the default file names, in compose's order" {
	cd "$BATS_TEST_TMPDIR"
	printf 'services:\n  b:\n    build: .\n' > docker-compose.yml
	run -0 hypr compose -p p config
	assert_output "hypr build -t p_b $PWD"
	printf 'services:\n  a:\n    build: .\n' > compose.yaml
	run -0 hypr compose -p p config
	assert_output "hypr build -t p_a $PWD"
	rm compose.yaml docker-compose.yml
	run -2 hypr compose config
	assert_output --partial "no compose file found"
}

@test "compose: unsupported build keys are warned about, not dropped silently" {
	run --separate-stderr -0 hypr compose -f "$C/unsupported.yaml" config
	assert_output "hypr build -t compose_web $C"
	[[ $stderr == *"unsupported.yaml:5: services.web.build.secrets is not supported by hypr; ignored"* ]]
	[[ $stderr == *"unsupported.yaml:6: services.web.build.cache_from is not supported by hypr; ignored"* ]]
	[[ $stderr == *"unsupported.yaml:7: services.web.build.frobnicate is unknown; ignored"* ]]
}

@test "compose: bad files are bad input with file:line (exit 3)" {
	run -3 hypr compose -f "$C/broken.yaml" config
	assert_output --partial "broken.yaml:4:"
	run -3 hypr compose -f "$C/remote.yaml" config
	assert_output --partial "remote contexts"
	run -3 hypr compose -f "$C/remote-string.yaml" config
	assert_output --partial "remote-string.yaml:3: services.web.build: remote contexts (https://github.com/x/y.git) are not supported by hypr"
	run -3 hypr compose -f "$C/noservices.yaml" config
	assert_output --partial "no services"
	run -3 hypr compose -f "$C/badargs.yaml" config
	assert_output --partial "badargs.yaml:4: build.args must be a mapping or a list"
	run -2 hypr compose -f "$C/missing.yaml" config
	run -2 hypr compose -f "$C/forms.yaml" build nosuch
	assert_output --partial "no such service: nosuch"
	run -2 hypr compose -f "$C/forms.yaml" restart
	assert_output "hypr: compose restart: not supported (build, up, down, ps, logs, stop, config)"
	run -3 hypr compose -f "$C/cycle.yaml" up
	assert_output "hypr: compose: $C/cycle.yaml:5: dependency cycle: b and a"
	run -3 hypr compose -f "$C/undefined.yaml" up
	assert_output "hypr: compose: $C/undefined.yaml:2: service a depends on undefined service nosuch"
}

@test "compose: runtime keys are read; what hypr cannot honour is warned about with its line" {
	run --separate-stderr -0 hypr compose -f "$C/runtime.yaml" config
	assert_output ""
	assert_equal "$stderr" "hypr: warning: compose: runtime.yaml:24: top-level networks: not supported by hypr (each project has one user network); ignored
hypr: warning: compose: runtime.yaml:11: services.web.volumes: volume volumes are not supported by hypr (only host directories); ignored
hypr: warning: compose: runtime.yaml:11: services.web.volumes: tmpfs volumes are not supported by hypr (only host directories); ignored
hypr: warning: compose: runtime.yaml:15: services.web.healthcheck.start_interval is not supported by hypr; ignored
hypr: warning: compose: runtime.yaml:17: services.web.cap_add is not supported by hypr; ignored
hypr: warning: compose: runtime.yaml:18: services.web.networks: hypr gives each project one user network (service names resolve on it); ignored
hypr: warning: compose: runtime.yaml:19: services.web.frobnicate is unknown; ignored"
	# nothing runs: ps and down of a project with no containers
	run --separate-stderr -0 hypr compose -f "$C/runtime.yaml" ps
	assert_output "NAME   IMAGE   COMMAND   SERVICE   CREATED   STATUS   PORTS"
	run --separate-stderr -0 hypr compose -f "$C/runtime.yaml" down
	assert_output ""
}

# WIRING TEST WITH FAKE STAGES (see driver.bats): compose runs one `hypr
# build` per service, in file order, and `up --build` says what it did not do.
@test "compose: build and up --build run hypr build per service (fake stages)" {
	FAKES="$BATS_TEST_TMPDIR/fakes"
	mkdir -p "$FAKES"
	for s in parse fetch exec layer squash store; do
		ln -s "$FIX/driver/fake-stage" "$FAKES/hypr-$s"
		export "HYPR_${s^^}=$FAKES/hypr-$s"
	done
	export FAKE_LOG="$BATS_TEST_TMPDIR/calls"
	run -0 hypr compose -f "$C/forms.yaml" build -q str listargs
	run -0 grep '^hypr-store' "$FAKE_LOG"
	assert_output "hypr-store -t compose_str
hypr-store -t compose_listargs"
	# up builds, then wants the image the fake stages never stored
	run --separate-stderr -3 hypr compose -f "$C/forms.yaml" up --build str
	[[ $stderr == *"hypr compose: building str"* ]]
	[[ $stderr == *"hypr: compose: $C/forms.yaml:2: service str: image compose_str is not in hypr's store"* ]]
	FAKE_FAIL='hypr-exec:1:hypr-exec: Dockerfile:2: RUN true: exit code 1' \
		run --separate-stderr -1 hypr compose -f "$C/forms.yaml" build str full
	[[ $stderr == *"service str failed to build (exit 1)"* ]]
	[[ $stderr != *"building full"* ]]
}

# bats test_tags=vm
@test "compose: examples/compose builds, starts web then worker (healthy first), worker reaches web by name, down" {
	hypr load --name busybox:latest "$(busybox_layout)" >/dev/null
	F="$HYPR_SRC/examples/compose/compose.yaml"
	WEB_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	export WEB_PORT
	run --separate-stderr -0 hypr compose -f "$F" up --build -d --wait
	[[ $stderr == *"Container hyprdemo-web-1  Started"*"Container hyprdemo-web-1  Healthy"* ]]
	run -0 hypr image inspect hyprdemo_web hyprdemo/worker:1.0
	run -0 jq -c '[.[0].Config.Cmd, .[1].Config.Cmd, .[1].Hypr.stage]' <<<"$output"
	assert_output '[["httpd","-f","-h","/www"],["cat","/etc/worker-message"],"runtime"]'
	run -0 curl -sf "http://127.0.0.1:$WEB_PORT/"
	assert_output "<h1>hello from hyprdemo web</h1>"
	# the worker waited for web to be healthy, then fetched http://web/
	for _ in $(seq 1 100); do
		[[ $(hypr compose -f "$F" logs worker) == *"</h1>"* ]] && break
		sleep 0.2
	done
	run -0 hypr compose -f "$F" logs worker
	assert_output "hyprdemo-worker-1 | built by hypr compose
hyprdemo-worker-1 | <h1>hello from hyprdemo web</h1>"
	run -0 hypr compose -f "$F" ps -a --services
	assert_output "worker
web"
	run -0 hypr ps --filter label=com.docker.compose.service=web --format '{{.Names}} {{.Ports}}'
	assert_output "hyprdemo-web-1 127.0.0.1:$WEB_PORT->80/tcp"
	# up again: nothing changed, web stays (the worker has exited: made again)
	run --separate-stderr -0 hypr compose -f "$F" up -d
	[[ $stderr == *"Container hyprdemo-web-1  Running"* ]]
	# dependents first
	run --separate-stderr -0 hypr compose -f "$F" down
	[[ $stderr =~ ^(Container\ hyprdemo-worker-1\ \ Stopping.Container\ hyprdemo-worker-1\ \ Stopped.)?Container\ hyprdemo-worker-1\ \ Removed.Container\ hyprdemo-web-1\ \ Stopping.Container\ hyprdemo-web-1\ \ Stopped.Container\ hyprdemo-web-1\ \ Removed$ ]]
	run -0 hypr ps -aq
	assert_output ""
}

# bats test_tags=vm
@test "compose: up attached prints each service's lines with its name until all have exited" {
	hypr load --name busybox:latest "$(busybox_layout)" >/dev/null
	mkdir -p "$BATS_TEST_TMPDIR/p"
	cat > "$BATS_TEST_TMPDIR/p/compose.yaml" <<-'EOF'
	services:
	  first:
	    image: busybox:latest
	    build:
	      dockerfile_inline: "FROM busybox:latest"
	    command: echo one
	  second:
	    image: busybox:latest
	    command: ["sh", "-c", "echo $$GREETING; exit 3"]
	    environment:
	      GREETING: two
	    depends_on:
	      first: {condition: service_completed_successfully}
	EOF
	run --separate-stderr -0 hypr compose --project-directory "$BATS_TEST_TMPDIR/p" up
	assert_output "p-first-1  | one
p-first-1 exited with code 0
p-second-1 | two
p-second-1 exited with code 3"
	run -0 hypr compose --project-directory "$BATS_TEST_TMPDIR/p" down
}

@test "compose: dockerfile_inline goes to hypr build -f - (real stages, no RUN)" {
	run -0 hypr compose -f "$C/inline.yaml" config
	assert_output "printf '%s\n' 'FROM busybox:latest
ENV INLINE=yes
CMD [\"echo\", \"it'\\''s inline\"]
' | hypr build -t compose_inline -f - $C/app"
	run -3 hypr compose -f "$C/both.yaml" config
	assert_output --partial "both.yaml:4: services.both.build: dockerfile and dockerfile_inline are exclusive"
	hypr load --name busybox:latest "$(busybox_layout)" >/dev/null
	run -0 hypr compose -f "$C/inline.yaml" build -q
	run -0 hypr image inspect compose_inline
	run -0 jq -c '.[0] | [.Config.Cmd, (.Config.Env | map(select(startswith("INLINE"))))]' <<<"$output"
	assert_output '[["echo","it'\''s inline"],["INLINE=yes"]]'
}
