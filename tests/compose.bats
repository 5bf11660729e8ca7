#!/usr/bin/env bats
# hypr compose: reading compose files (lib/compose.c) and turning each
# service's build: into a `hypr build`. `hypr compose config --commands` prints those
# commands without running them; the last tests build for real.
load helpers

setup() {
	fresh_root
	C="$FIX/compose"
	unset COMPOSE_PROJECT_NAME APPDIR FROMENV
}

@test "compose: string form, full form, list and map args, tags, labels" {
	run --separate-stderr -0 hypr compose -f "$C/forms.yaml" config --commands
	[ -z "$stderr" ]
	assert_output "hypr build -t compose-str $C/app
hypr build -t example.com/team/full:2 -t extra:tag -f $C/app/Other.Dockerfile --build-arg=ONE=1 --build-arg=BARE --build-arg=QUOTED= --target=runtime --label=a=b --no-cache --pull=always $C/app
hypr build -t compose-listargs --build-arg=X=1 --build-arg=FROMENV $C/app"
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
	DIR=other TAG= WHO=x run -0 hypr compose --project-directory "$BATS_TEST_TMPDIR/p" config --commands
	assert_output "hypr build -t reg.example/dflt: '--build-arg=PRICE=\$5' --build-arg=WHO=set $BATS_TEST_TMPDIR/p/other"
	printf 'services:\n  s:\n    build: ${NEED:?set NEED}\n' > "$BATS_TEST_TMPDIR/p/compose.yml"
	run -3 hypr compose --project-directory "$BATS_TEST_TMPDIR/p" config --commands
	assert_output --partial "required variable NEED is missing a value: set NEED"
}

@test "compose: project name from -p, COMPOSE_PROJECT_NAME, name:, the directory" {
	mkdir -p "$BATS_TEST_TMPDIR/My.Project_Dir"
	printf 'services:\n  web:\n    build: .\n' > "$BATS_TEST_TMPDIR/My.Project_Dir/compose.yaml"
	cd "$BATS_TEST_TMPDIR/My.Project_Dir"
	run -0 hypr compose config --commands
	assert_output "hypr build -t myproject_dir-web $PWD"
	COMPOSE_PROJECT_NAME=FromEnv run -0 hypr compose config --commands
	assert_output "hypr build -t fromenv-web $PWD"
	COMPOSE_PROJECT_NAME=FromEnv run -0 hypr compose -p 'Cli Name' config --commands
	assert_output "hypr build -t cliname-web $PWD"
	printf 'name: top\nservices:\n  web:\n    build: .\n' > compose.yaml
	run -0 hypr compose config --commands
	assert_output "hypr build -t top-web $PWD"
	run -2 hypr compose -p '!!!' config --commands
}

@test "compose: the default file names, in compose's order" {
	cd "$BATS_TEST_TMPDIR"
	printf 'services:\n  b:\n    build: .\n' > docker-compose.yml
	run -0 hypr compose -p p config --commands
	assert_output "hypr build -t p-b $PWD"
	printf 'services:\n  a:\n    build: .\n' > compose.yaml
	run -0 hypr compose -p p config --commands
	assert_output "hypr build -t p-a $PWD"
	rm compose.yaml docker-compose.yml
	run -2 hypr compose config
	assert_output --partial "no compose file found"
}

@test "compose: unsupported build keys are warned about, not dropped silently" {
	run --separate-stderr -0 hypr compose -f "$C/unsupported.yaml" config --commands
	assert_output "hypr build -t compose-web $C"
	[[ $stderr == *"unsupported.yaml:5: services.web.build.secrets is not supported by hypr; ignored"* ]]
	[[ $stderr == *"unsupported.yaml:6: services.web.build.ssh is not supported by hypr; ignored"* ]]
	[[ $stderr == *"unsupported.yaml:7: services.web.build.frobnicate is unknown; ignored"* ]]
}

@test "compose: build.cache_from and build.cache_to become --cache-from and --cache-to" {
	cd "$BATS_TEST_TMPDIR"
	cat > compose.yaml <<'EOF'
services:
  w:
    build:
      context: .
      cache_from: [reg.example/w:cache, "type=local,src=/c"]
      cache_to: ["type=registry,ref=reg.example/w:cache,mode=max"]
EOF
	run --separate-stderr -0 hypr compose -p p config --commands
	assert_output "hypr build -t p-w --cache-from=reg.example/w:cache --cache-from=type=local,src=/c --cache-to=type=registry,ref=reg.example/w:cache,mode=max $PWD"
	[ -z "$stderr" ]
	run -0 hypr compose -p p config
	[[ $output == *"cache_from:"*"- reg.example/w:cache"*"- type=local,src=/c"*"cache_to:"* ]]
}

@test "compose: bad files are bad input with file:line (exit 3)" {
	run -3 hypr compose -f "$C/broken.yaml" config --commands
	assert_output --partial "broken.yaml:4:"
	run -3 hypr compose -f "$C/remote.yaml" config --commands
	assert_output --partial "remote contexts"
	run -3 hypr compose -f "$C/remote-string.yaml" config --commands
	assert_output --partial "remote-string.yaml:3: services.web.build: remote contexts (https://github.com/x/y.git) are not supported by hypr"
	run -3 hypr compose -f "$C/noservices.yaml" config --commands
	assert_output --partial "no services"
	run -3 hypr compose -f "$C/badargs.yaml" config --commands
	assert_output --partial "badargs.yaml:4: build.args must be a mapping or a list"
	run -2 hypr compose -f "$C/missing.yaml" config --commands
	run -2 hypr compose -f "$C/forms.yaml" build nosuch
	assert_output --partial "no such service: nosuch"
	run -2 hypr compose -f "$C/forms.yaml" restart
	assert_output "hypr: compose restart: not supported (build, up, down, ps, logs, stop, push, config)"
	run -3 hypr compose -f "$C/cycle.yaml" up
	assert_output "hypr: compose: $C/cycle.yaml:5: dependency cycle: b and a"
	run -3 hypr compose -f "$C/undefined.yaml" up
	assert_output "hypr: compose: $C/undefined.yaml:2: service a depends on undefined service nosuch"
}

@test "compose: runtime keys are read; what hypr cannot honour is warned about with its line" {
	run --separate-stderr -0 hypr compose -f "$C/runtime.yaml" config --commands
	assert_output ""
	assert_equal "$stderr" "hypr: warning: compose: runtime.yaml:24: top-level networks: not supported by hypr (each project has one user network); ignored
hypr: warning: compose: runtime.yaml:11: services.web.volumes: tmpfs volumes are not supported by hypr (host directories and named volumes); ignored
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
	assert_output "hypr-store -t compose-str
hypr-store -t compose-listargs"
	# up builds, then wants the image the fake stages never stored
	run --separate-stderr -3 hypr compose -f "$C/forms.yaml" up --build str
	[[ $stderr == *"hypr compose: building str"* ]]
	[[ $stderr == *"hypr: compose: $C/forms.yaml:2: service str: image compose-str is not in hypr's store"* ]]
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
	run -0 hypr image inspect hyprdemo-web hyprdemo/worker:1.0
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
@test "compose: up attached prints each service's lines with its name until all have exited; environment, env_file, entrypoint" {
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
	    entrypoint: ["sh", "-c"]
	    command: ["echo $$GREETING $$FROM_FILE $$BOTH; echo last; exit 3"]
	    env_file: [vars.env]
	    environment:
	      GREETING: two
	      BOTH: environment
	    depends_on:
	      first: {condition: service_completed_successfully}
	EOF
	# environment wins over env_file, as compose's
	printf 'FROM_FILE=file\nBOTH=env_file\n' > "$BATS_TEST_TMPDIR/p/vars.env"
	run --separate-stderr -0 hypr compose --project-directory "$BATS_TEST_TMPDIR/p" up
	assert_output "p-first-1  | one
p-first-1 exited with code 0
p-second-1 | two file environment
p-second-1 | last
p-second-1 exited with code 3"
	# logs: -n is each container's last lines; -t puts a line's time after the name
	run -0 hypr compose --project-directory "$BATS_TEST_TMPDIR/p" logs --tail 1
	assert_output "p-first-1  | one
p-second-1 | last"
	run -0 hypr compose --project-directory "$BATS_TEST_TMPDIR/p" logs -t -n 5 second
	assert_line --index 0 --regexp '^p-second-1 \| 20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{9}Z two file environment$'
	assert_line --index 1 --regexp '^p-second-1 \| [0-9T:.-]{29}Z last$'
	run -0 hypr compose --project-directory "$BATS_TEST_TMPDIR/p" logs --since 1h -n 1 second
	assert_output "p-second-1 | last"
	run -0 hypr compose --project-directory "$BATS_TEST_TMPDIR/p" logs --since 2099-01-01T00:00:00Z
	assert_output ""
	run -2 hypr compose --project-directory "$BATS_TEST_TMPDIR/p" logs --tail x
	assert_output --partial "compose logs: --tail x: a count or all"
	run -2 hypr compose --project-directory "$BATS_TEST_TMPDIR/p" logs --until soon
	assert_output --partial "compose logs: --until soon: a time"
	run -0 hypr compose --project-directory "$BATS_TEST_TMPDIR/p" down
}

@test "compose: dockerfile_inline goes to hypr build -f - (real stages, no RUN)" {
	run -0 hypr compose -f "$C/inline.yaml" config --commands
	assert_output "printf '%s\n' 'FROM busybox:latest
ENV INLINE=yes
CMD [\"echo\", \"it'\\''s inline\"]
' | hypr build -t compose-inline -f - $C/app"
	run -3 hypr compose -f "$C/both.yaml" config --commands
	assert_output --partial "both.yaml:4: services.both.build: dockerfile and dockerfile_inline are exclusive"
	hypr load --name busybox:latest "$(busybox_layout)" >/dev/null
	run -0 hypr compose -f "$C/inline.yaml" build -q
	run -0 hypr image inspect compose-inline
	run -0 jq -c '.[0] | [.Config.Cmd, (.Config.Env | map(select(startswith("INLINE"))))]' <<<"$output"
	assert_output '[["echo","it'\''s inline"],["INLINE=yes"]]'
}

@test "compose: .env feeds \${VAR}, the environment wins over it, --env-file replaces it" {
	P="$BATS_TEST_TMPDIR/p"
	mkdir -p "$P"
	cat > "$P/compose.yaml" <<-'EOF2'
	services:
	  api:
	    image: x/api:${API_TAG}
	    environment:
	      WHO: ${WHO:-nobody}
	      QUOTED: ${QUOTED}
	EOF2
	cat > "$P/.env" <<-'EOF2'
	# a comment
	API_TAG=1.2
	export WHO = dotenv  # trailing comment
	QUOTED="a ${API_TAG} b"
	EOF2
	printf 'API_TAG=9\n' > "$BATS_TEST_TMPDIR/other.env"
	printf 'WHO=second\n' > "$BATS_TEST_TMPDIR/second.env"
	cd "$P"
	run --separate-stderr -0 hypr compose config
	[ -z "$stderr" ]
	assert_output "name: p
services:
  api:
    environment:
      QUOTED: a 1.2 b
      WHO: dotenv
    image: x/api:1.2"
	API_TAG=3.0 run -0 hypr compose config
	assert_line "    image: x/api:3.0"
	API_TAG= run -0 hypr compose config
	assert_line "    image: 'x/api:'"
	run --separate-stderr -0 hypr compose --env-file "$BATS_TEST_TMPDIR/other.env" --env-file "$BATS_TEST_TMPDIR/second.env" config
	assert_line "    image: x/api:9"
	assert_line "      WHO: second"
	assert_equal "$stderr" 'hypr: warning: compose: compose.yaml:6: The "QUOTED" variable is not set. Defaulting to a blank string.'
	run -2 hypr compose --env-file "$BATS_TEST_TMPDIR/nosuch.env" config
	assert_output "hypr: compose: $BATS_TEST_TMPDIR/nosuch.env: No such file or directory"
	printf 'GOOD=1\nBAD LINE\n' > .env
	run -3 hypr compose config
	assert_output "hypr: compose: ./.env:2: BAD: no '=' after the name"
}

@test "compose: an unset variable is warned about with file:line; \${VAR:?msg} and \${VAR?msg} are errors" {
	P="$BATS_TEST_TMPDIR/p"
	mkdir -p "$P"
	printf 'services:\n  api:\n    image: x/api:${API_TAG}\n    user: $USERX\n' > "$P/compose.yaml"
	cd "$P"
	run --separate-stderr -0 hypr compose config
	assert_equal "$stderr" 'hypr: warning: compose: compose.yaml:3: The "API_TAG" variable is not set. Defaulting to a blank string.
hypr: warning: compose: compose.yaml:4: The "USERX" variable is not set. Defaulting to a blank string.'
	assert_line "    image: 'x/api:'"
	printf 'services:\n  api:\n    image: x\n    user: "${NEED:?set NEED to a user}"\n' > compose.yaml
	run --separate-stderr -3 hypr compose config
	assert_equal "$stderr" "hypr: compose: compose.yaml:4: required variable NEED is missing a value: set NEED to a user"
	NEED= run -3 hypr compose config
	NEED=someone run -0 hypr compose config
	assert_line "    user: someone"
	printf 'services:\n  api:\n    image: x\n    user: "${NEED?needed}"\n' > compose.yaml
	NEED= run -0 hypr compose config --commands
	run --separate-stderr -3 hypr compose config
	assert_equal "$stderr" "hypr: compose: compose.yaml:4: required variable NEED is missing a value: needed"
	printf 'services:\n  api:\n    image: "$$HOME ${A:+alt} ${B:-dflt} ${C-dash}"\n' > compose.yaml
	A=1 B= C= run --separate-stderr -0 hypr compose config
	assert_line "    image: '\$\$HOME alt dflt '"
}

@test "compose: several -f files are merged as compose merges them" {
	P="$BATS_TEST_TMPDIR/p"
	mkdir -p "$P"
	cat > "$P/base.yaml" <<-'EOF2'
	name: merged
	services:
	  web:
	    image: web:1
	    build:
	      context: .
	      args: [A=1, B=2]
	    command: ["httpd", "-f"]
	    environment:
	      - ONE=1
	      - TWO=2
	    ports: ["8080:80"]
	    expose: ["81"]
	    volumes: ["./data:/data"]
	    labels: {a: b}
	EOF2
	cat > "$BATS_TEST_TMPDIR/over.yaml" <<-'EOF2'
	services:
	  web:
	    image: web:2
	    build:
	      args:
	        B: "3"
	    command: echo over
	    environment:
	      TWO: two
	      THREE: "3"
	    ports: ["9090:90"]
	    expose: ["82"]
	    volumes: ["/srv:/srv:ro"]
	    frobnicate: 1
	  db:
	    image: db:1
	EOF2
	run --separate-stderr -0 hypr compose -f "$P/base.yaml" -f "$BATS_TEST_TMPDIR/over.yaml" config
	assert_equal "$stderr" "hypr: warning: compose: over.yaml:14: services.web.frobnicate is unknown; ignored"
	assert_output "name: merged
services:
  db:
    image: db:1
  web:
    build:
      context: $P
      dockerfile: Dockerfile
      args:
        A: \"1\"
        B: \"3\"
    command:
    - echo
    - over
    environment:
      ONE: \"1\"
      THREE: \"3\"
      TWO: two
    expose:
    - \"81\"
    - \"82\"
    image: web:2
    labels:
      a: b
    ports:
    - 8080:80
    - 9090:90
    volumes:
    - $P/data:/data
    - /srv:/srv:ro"
	# the second file alone is no project of its own; the order matters
	run -0 hypr compose -f "$BATS_TEST_TMPDIR/over.yaml" -f "$P/base.yaml" config
	assert_line "    image: web:1"
	assert_line "    - httpd"
	# COMPOSE_FILE, colon-separated
	COMPOSE_FILE="$P/base.yaml:$BATS_TEST_TMPDIR/over.yaml" run -0 hypr compose config
	assert_line "    image: web:2"
	assert_line "  db:"
	# an error about a service names the file that defines it
	printf 'services:\n  extra:\n    image: e\n    depends_on: [nosuch]\n' > "$BATS_TEST_TMPDIR/over2.yaml"
	run -3 hypr compose -f "$P/base.yaml" -f "$BATS_TEST_TMPDIR/over2.yaml" up
	assert_output "hypr: compose: $BATS_TEST_TMPDIR/over2.yaml:2: service extra depends on undefined service nosuch"
}

@test "compose: compose.override.yaml beside the default file is merged in" {
	P="$BATS_TEST_TMPDIR/p"
	mkdir -p "$P"
	printf 'services:\n  web:\n    image: web:1\n    build: .\n' > "$P/compose.yaml"
	printf 'services:\n  web:\n    image: web:over\n    user: nobody\n' > "$P/compose.override.yaml"
	cd "$P"
	run --separate-stderr -0 hypr compose config
	assert_output "name: p
services:
  web:
    build:
      context: $P
      dockerfile: Dockerfile
    image: web:over
    user: nobody"
	run -0 hypr compose config --commands
	assert_output "hypr build -t web:over $P"
	# -f names the files: no override then
	run -0 hypr compose -f compose.yaml config --commands
	assert_output "hypr build -t web:1 $P"
	rm compose.yaml compose.override.yaml
	printf 'services:\n  web:\n    build: .\n' > docker-compose.yml
	printf 'services:\n  web:\n    image: dc:over\n' > docker-compose.override.yml
	run -0 hypr compose config --commands
	assert_output "hypr build -t dc:over $P"
}

@test "compose: project name: -p, COMPOSE_PROJECT_NAME (also from .env), name:; images are <project>-<service>" {
	P="$BATS_TEST_TMPDIR/Proj"
	mkdir -p "$P"
	printf 'name: top\nservices:\n  web:\n    build: .\n' > "$P/compose.yaml"
	cd "$P"
	run -0 hypr compose config
	assert_line "name: top"
	printf 'COMPOSE_PROJECT_NAME=FromDotEnv\n' > .env
	run -0 hypr compose config --commands
	assert_output "hypr build -t fromdotenv-web $P"
	COMPOSE_PROJECT_NAME=env run -0 hypr compose config
	assert_line "name: env"
	COMPOSE_PROJECT_NAME=env run -0 hypr compose -p cli config
	assert_line "name: cli"
	FAKES="$BATS_TEST_TMPDIR/fakes"
	mkdir -p "$FAKES"
	for s in parse fetch exec layer squash store; do
		ln -s "$FIX/driver/fake-stage" "$FAKES/hypr-$s"
		export "HYPR_${s^^}=$FAKES/hypr-$s"
	done
	export FAKE_LOG="$BATS_TEST_TMPDIR/calls"
	printf 'FROM scratch\n' > Dockerfile
	run -0 hypr compose -p demo build -q
	run -0 grep '^hypr-store' "$FAKE_LOG"
	assert_output "hypr-store -t demo-web"
}

@test "compose: profiles: --profile, COMPOSE_PROFILES; a service named on the command line is active" {
	P="$BATS_TEST_TMPDIR/p"
	mkdir -p "$P"
	cat > "$P/compose.yaml" <<-'EOF2'
	services:
	  web:
	    build: .
	  debug:
	    build: .
	    profiles: [debug, tools]
	  seed:
	    build: .
	    profiles: ["${SEED_PROFILE:-seed}"]
	EOF2
	cd "$P"
	run --separate-stderr -0 hypr compose config --commands
	[ -z "$stderr" ]
	assert_output "hypr build -t p-web $P"
	run -0 hypr compose --profile tools config --commands
	assert_output "hypr build -t p-web $P
hypr build -t p-debug $P"
	COMPOSE_PROFILES=seed,debug run -0 hypr compose config --commands
	assert_output "hypr build -t p-web $P
hypr build -t p-debug $P
hypr build -t p-seed $P"
	# --profile, when given, wins over COMPOSE_PROFILES
	COMPOSE_PROFILES=seed run -0 hypr compose --profile tools config --commands
	assert_output "hypr build -t p-web $P
hypr build -t p-debug $P"
	run -0 hypr compose --profile '*' config --commands
	assert_line "hypr build -t p-seed $P"
	run -0 hypr compose config --commands seed
	assert_output "hypr build -t p-seed $P"
	run -0 hypr compose config
	assert_output "name: p
services:
  web:
    build:
      context: $P
      dockerfile: Dockerfile"
	FAKES="$BATS_TEST_TMPDIR/fakes"
	mkdir -p "$FAKES"
	for s in parse fetch exec layer squash store; do
		ln -s "$FIX/driver/fake-stage" "$FAKES/hypr-$s"
		export "HYPR_${s^^}=$FAKES/hypr-$s"
	done
	export FAKE_LOG="$BATS_TEST_TMPDIR/calls"
	printf 'FROM scratch\n' > Dockerfile
	run -0 hypr compose build -q
	run -0 grep '^hypr-store' "$FAKE_LOG"
	assert_output "hypr-store -t p-web"
}

@test "compose: config prints the project as YAML, keys as compose prints them" {
	run --separate-stderr -0 hypr compose -f "$C/forms.yaml" config
	[ -z "$stderr" ]
	assert_output "name: compose
services:
  full:
    build:
      context: $C/app
      dockerfile: Other.Dockerfile
      args:
        BARE: null
        ONE: \"1\"
        QUOTED: \"\"
      labels:
        a: b
      no_cache: true
      pull: true
      target: runtime
      tags:
      - extra:tag
    image: example.com/team/full:2
  listargs:
    build:
      context: $C/app
      dockerfile: Dockerfile
      args:
        FROMENV: null
        X: \"1\"
  runtime_only:
    image: redis:7
    ports:
    - 6379:6379
  str:
    build:
      context: $C/app
      dockerfile: Dockerfile"
	FROMENV=v run -0 hypr compose -f "$C/forms.yaml" config listargs
	assert_line "        FROMENV: v"
	run --separate-stderr -0 hypr compose -f "$C/runtime.yaml" config
	run -0 python3 -c 'import sys, yaml; d = yaml.safe_load(sys.stdin); print(sorted(d["services"]["web"]))' <<<"$output"
}

@test "compose: what hypr does not read is warned about with file:line (top level, long syntax); x- keys and << merges are read" {
	run --separate-stderr -0 hypr compose -f "$C/keys.yaml" config
	assert_equal "$stderr" "hypr: warning: compose: keys.yaml:1: the attribute \`version\` is obsolete, it will be ignored, please remove it to avoid potential confusion
hypr: warning: compose: keys.yaml:5: top-level frob is unknown; ignored
hypr: warning: compose: keys.yaml:10: services.web.platform is not supported by hypr; ignored
hypr: warning: compose: keys.yaml:12: services.web.ports.app_protocol is not supported by hypr; ignored
hypr: warning: compose: keys.yaml:14: services.web.volumes.bind is not supported by hypr; ignored
hypr: warning: compose: keys.yaml:16: services.web.depends_on.db.restart is not supported by hypr; ignored"
	assert_output "name: compose
services:
  db:
    image: db
  web:
    depends_on:
      db:
        condition: service_started
        required: true
    image: busybox
    ports:
    - 8080:80/tcp
    volumes:
    - $C:/src"
}

@test "compose: hostile files: alias bombs and recursive aliases are bad input naming the file" {
	cd "$BATS_TEST_TMPDIR"
	{
		echo 'x-a0: &a0 [x, x, x, x, x, x, x, x, x, x]'
		for i in 1 2 3 4 5 6 7 8; do
			printf 'x-a%d: &a%d [' "$i" "$i"
			for _ in 1 2 3 4 5 6 7 8 9; do printf '*a%d, ' "$((i - 1))"; done
			printf '*a%d]\n' "$((i - 1))"
		done
		printf 'services:\n  web:\n    image: x\n'
	} > compose.yaml
	run -3 timeout 60 hypr compose config
	assert_output "hypr: compose: compose.yaml: over 200000 YAML nodes once aliases are expanded"
	printf 'services:\n  web:\n    labels: &l\n      a: *l\n' > compose.yaml
	run -3 hypr compose config
	assert_output "hypr: compose: compose.yaml:4: nested over 64 levels deep"
	printf 'services: &s\n  web:\n    <<: *s\n' > compose.yaml
	run -3 hypr compose config
	assert_output "hypr: compose: compose.yaml:1: nested over 64 levels deep"
	head -c 70000 /dev/zero | tr '\0' a | sed 's/^/A=/' > .env
	printf 'services:\n  web:\n    image: x\n' > compose.yaml
	run -3 hypr compose config
	assert_output "hypr: compose: ./.env:1: line over 65536 bytes"
}

@test "compose: up warns that a UDP port cannot be reached by a service name (no VM: the start fails)" {
	hypr load --name busybox:latest "$(busybox_layout)" >/dev/null
	mkdir -p "$BATS_TEST_TMPDIR/udp"
	cat > "$BATS_TEST_TMPDIR/udp/compose.yaml" <<'YAML'
services:
  dns:
    build:
      context: .
      dockerfile_inline: |
        FROM busybox:latest
        CMD ["sleep", "60"]
    ports: ["5353:53/udp"]
    expose: ["5354/udp", "80"]
YAML
	cd "$BATS_TEST_TMPDIR/udp"
	HYPR_KERNEL=/nonexistent run -4 hypr compose -p udp up --build -d
	assert_line "hypr: warning: compose: service dns: 5353:53/udp: the other services cannot reach a UDP port by the service's name (QEMU forwards TCP only); they can at 10.0.2.2 and its published host port"
	assert_line "hypr: warning: compose: service dns: 5354/udp: the other services cannot reach a UDP port by the service's name (QEMU forwards TCP only)"
	refute_line --partial "service dns: 80"
	run -0 hypr compose -p udp down
}

@test "compose: a service's named volume is <project>_NAME; down -v removes it (no VM: the start fails)" {
	hypr load --name busybox:latest "$(busybox_layout)" >/dev/null
	mkdir -p "$BATS_TEST_TMPDIR/vol"
	cat > "$BATS_TEST_TMPDIR/vol/compose.yaml" <<'YAML'
services:
  db:
    build:
      context: .
      dockerfile_inline: |
        FROM busybox:latest
        CMD ["sleep", "60"]
    volumes: ["data:/var/lib/db", {type: volume, source: logs, target: /logs, read_only: true}]
volumes:
  data:
  logs: {}
YAML
	cd "$BATS_TEST_TMPDIR/vol"
	HYPR_KERNEL=/nonexistent run --separate-stderr -4 hypr compose -p vp up --build -d
	refute_output --partial "warning"
	run -0 hypr volume ls -q
	assert_output "vp_data
vp_logs"
	run -0 hypr inspect -f '{{range .config.volumes}}{{.volume}}:{{.target}}:{{.ro}} {{end}}' vp-db-1
	assert_output "vp_data:/var/lib/db:false vp_logs:/logs:true "
	run -3 hypr volume rm vp_data
	run -0 hypr compose -p vp down -v
	assert_line "Volume vp_data  Removed"
	assert_line "Volume vp_logs  Removed"
	run -0 hypr volume ls -q
	assert_output ""
	printf 'services:\n  a:\n    image: x\n    volumes: ["d:/d"]\nvolumes:\n  d:\n    external: true\n' > compose.yaml
	run --separate-stderr -0 hypr compose config
	assert_equal "$stderr" "hypr: warning: compose: compose.yaml:5: top-level volumes: options (driver, external, name) are not read by hypr; a service's volume NAME is <project>_NAME"
}

@test "compose: include: another project's services, its paths its own; cycles and clashes are errors" {
	P=$BATS_TEST_TMPDIR/p
	mkdir -p "$P/sub/app"
	printf 'FROM busybox:latest\n' > "$P/sub/app/Dockerfile"
	printf 'services:\n  api:\n    build: ./app\n    image: x/api:${TAG:-1}\n    volumes: ["./data:/data"]\n' \
		> "$P/sub/compose.yaml"
	printf 'include:\n  - sub/compose.yaml\n  - path: sub/more.yaml\n    env_file: x.env\nservices:\n  web:\n    build: .\n' \
		> "$P/compose.yaml"
	printf 'services:\n  db:\n    image: db:1\n' > "$P/sub/more.yaml"
	TAG=2 run --separate-stderr -0 hypr compose --project-directory "$P" config --commands
	assert_output "hypr build -t p-web $P
hypr build -t x/api:2 $P/sub/app"
	assert_equal "$stderr" "hypr: warning: compose: compose.yaml:4: include: env_file: not supported by hypr; ignored"
	run --separate-stderr -0 hypr compose --project-directory "$P" config api db
	assert_output "name: p
services:
  api:
    build:
      context: $P/sub/app
      dockerfile: Dockerfile
    image: x/api:1
    volumes:
    - $P/sub/data:/data
  db:
    image: db:1"
	# a service both define: an error naming it
	printf 'services:\n  web:\n    image: other\n' > "$P/sub/more.yaml"
	run --separate-stderr -3 hypr compose --project-directory "$P" config
	assert_equal "$stderr" "hypr: compose: compose.yaml:3: include: sub/more.yaml: service web is defined twice"
	# a file that includes itself
	printf 'include: [compose.yaml]\nservices:\n  a:\n    image: a\n' > "$P/sub/more.yaml"
	printf 'include: [more.yaml]\n' > "$P/sub/compose.yaml"
	run --separate-stderr -3 hypr compose -f "$P/sub/compose.yaml" config
	[[ $stderr == *"more than 16 levels (a cycle?)" ]]
	[ "$(grep -c . <<<"$stderr")" -eq 1 ]
}

@test "compose: -f - reads the compose file from stdin; the project is the working directory's" {
	P=$BATS_TEST_TMPDIR/Stdin
	mkdir -p "$P/app"
	cd "$P" || return
	run --separate-stderr -0 hypr compose -f - config --commands <<-'EOF'
	services:
	  web:
	    build: ./app
	EOF
	assert_output "hypr build -t stdin-web $P/app"
	# with another -f: merged in order, as any file
	printf 'services:\n  web:\n    image: over:1\n' > over.yaml
	run --separate-stderr -0 hypr compose -f - -f over.yaml config --commands <<<$'services:\n  web:\n    build: ./app\n'
	assert_output "hypr build -t over:1 $P/app"
	# errors name it stdin
	run --separate-stderr -3 hypr compose -f - config <<<$'services: [\n'
	[[ $stderr == "hypr: compose: stdin:"* ]]
	# twice: a usage error, as is a terminal
	run --separate-stderr -2 hypr compose -f - -f - config <<<$'services:\n  a:\n    image: a\n'
	assert_equal "$stderr" "hypr: compose: -f -: standard input read already"
	run --separate-stderr -2 script -qec "hypr compose -f - config" /dev/null
}
