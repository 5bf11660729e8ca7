#!/usr/bin/env bats
# hypr help CMD, hypr CMD --help and -h: every command's usage in hypr's
# words, on stdout, exit 0; bash and zsh completion (tools/completion/).
load helpers

setup() {
	fresh_root
}

# Every command and sub-command the driver has, and what its usage names
# ("image ls" prints hypr images' usage: an alias names the command it is).
COMMANDS=(
	build buildx run ps logs stop kill rm exec port inspect tag history pull push save
	load login logout images rmi version help compose image system builder container
	"image build" "image history" "image inspect" "image load" "image ls" "image list"
	"image prune" "image pull" "image push" "image save" "image rm" "image remove" "image tag"
	"system df" "system prune" "builder build" "builder prune"
	"container exec" "container inspect" "container kill" "container logs"
	"container ls" "container list" "container ps" "container port" "container prune"
	"container rm" "container remove" "container run" "container stop"
	"compose build" "compose up" "compose down" "compose ps" "compose logs"
	"compose stop" "compose config" "compose push"
	create start restart attach volume
	"container create" "container start" "container restart" "container attach"
	"volume create" "volume inspect" "volume ls" "volume list" "volume rm" "volume remove"
	"volume prune"
)

# the usage line's command for CMD: itself, or what it is an alias of
usage_of() {
	case $1 in
	buildx|"image build"|"builder build") echo build ;;
	"image ls"|"image list") echo images ;;
	"image rm"|"image remove") echo rmi ;;
	"container ls"|"container list"|"container ps") echo ps ;;
	"container remove") echo rm ;;
	"container exec"|"container kill"|"container logs"|"container rm"|"container run"|"container stop")
		echo "${1#container }" ;;
	"container create"|"container start"|"container restart"|"container attach")
		echo "${1#container }" ;;
	"volume list") echo "volume ls" ;;
	"volume remove") echo "volume rm" ;;
	*) echo "$1" ;;
	esac
}

@test "help: every command's --help, -h and help CMD: its usage on stdout, exit 0, no stage named" {
	local c want first
	for c in "${COMMANDS[@]}"; do
		want=$(usage_of "$c")
		for how in --help -h help; do
			# run -h is --hostname, as in docker
			[[ $how == -h && ( $c == *run || $c == *create ) ]] && continue
			# shellcheck disable=SC2086 # "image ls" is two words
			if [ $how = help ]; then
				run --separate-stderr hypr help $c
			else
				run --separate-stderr hypr $c $how
			fi
			first=${output%%$'\n'*}
			if [ "$status" != 0 ] || { [ "$first" != "usage: hypr $want" ] && [[ $first != "usage: hypr $want "* ]]; } ||
				[[ $output == *"usage: hypr-"* ]] || [[ $output == *"hypr-fetch ["* ]] || [ -n "$stderr" ]; then
				echo "hypr $c $how: status $status, first line '$first', stderr '$stderr'"
				return 1
			fi
		done
	done
}

@test "help: with other arguments, --help still wins; after -- it is an argument" {
	run -0 hypr pull --platform linux/amd64 busybox --help
	[[ ${lines[0]} == "usage: hypr pull "* ]]
	run -0 hypr compose -f x.yml -p p up -d --help
	[[ ${lines[0]} == "usage: hypr compose up "* ]]
	run -0 hypr container prune --help
	[[ ${lines[0]} == "usage: hypr container prune "* ]]
	run --separate-stderr -2 hypr tag -- --help x
	[[ $stderr == *"tag SOURCE TARGET" ]]
}

@test "help: an unknown command is a usage error in one line" {
	run --separate-stderr -2 hypr help nosuch
	[ -z "$output" ]
	[ "$stderr" = "hypr: help: no command 'nosuch' (see hypr help)" ]
	run --separate-stderr -2 hypr help image nosuch
	[ "$stderr" = "hypr: help: no command 'image nosuch' (see hypr help)" ]
	run --separate-stderr -2 hypr help build x
	[ "${#stderr_lines[@]}" = 1 ]
	run -0 hypr help
	[[ ${lines[0]} == "usage: hypr COMMAND "* ]]
	run -0 hypr --help
	run -0 hypr -h
}

@test "help: logs and compose logs list the options they take" {
	for cmd in "logs" "compose logs"; do
		# shellcheck disable=SC2086
		run -0 hypr $cmd --help
		[[ ${lines[0]} == "usage: hypr $cmd [-f] [-t] [-n N] [--since T] [--until T] "* ]]
		for opt in --follow --timestamps --tail --since; do
			assert_output --partial -- "$opt"
		done
	done
}
