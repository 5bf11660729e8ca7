# bash completion for hypr(1): commands, sub-commands, each command's flags
# and their values, image names (hypr images), container names (hypr ps),
# and the stages of the Dockerfile for build --target.
# Needs nothing from the bash-completion package. zsh runs the same code
# under bashcompinit (_hypr, made from this file by make install): so it
# keeps to what both shells do (no mapfile, no ${!name}).
# shellcheck shell=bash

_hypr_commands="build run ps logs stop kill rm exec port inspect container compose
create start restart attach volume images rmi tag history pull push load image system builder login logout version help"

_hypr_subs() {
	case $1 in
	image) echo "build history inspect load ls prune pull push rm tag" ;;
	system) echo "df prune" ;;
	builder) echo "build prune" ;;
	container) echo "attach create exec inspect kill logs ls port prune restart rm run start stop" ;;
	volume) echo "create inspect ls prune rm" ;;
	compose) echo "build up down ps logs stop config" ;;
	esac
}

# _hypr_reply COMPGEN-ARGS...: add compgen's words to COMPREPLY
_hypr_reply() {
	local w
	while IFS= read -r w; do
		[ -z "$w" ] || COMPREPLY+=("$w")
	done <<EOF
$(compgen "$@")
EOF
}

# The flags of a command ("image ls" is one word here: image_ls).
_hypr_flags() {
	case $1 in
	build|buildx|image_build|builder_build)
		echo "-t --tag -f --file -q --quiet -n --print --build-arg --target --no-cache
			--platform --pull --iidfile --label --progress --keep --from --network
			--disk --add-host --secret --debug --help" ;;
	run|container_run|create|container_create)
		echo "-d --detach --rm --name -e --env --env-file -u --user -w --workdir --mount
			--entrypoint -i --interactive -t --tty -p --publish -P --publish-all
			--network -v --volume -m --memory --cpus -h --hostname --add-host -l --label
			--restart --stop-signal --stop-timeout --health-cmd --health-interval
			--health-timeout --health-start-period --health-retries --no-healthcheck
			--init --platform --pull --detach-keys --help" ;;
	ps|container_ls|container_list|container_ps)
		echo "-a --all -q --quiet --no-trunc --filter --format --help" ;;
	start|container_start) echo "-a --attach -i --interactive --help" ;;
	restart|container_restart) echo "-t --time --help" ;;
	attach|container_attach) echo "--no-stdin --detach-keys --help" ;;
	volume_create) echo "-l --help" ;;
	volume_ls|volume_list) echo "-q --help" ;;
	volume_rm|volume_remove) echo "-f --help" ;;
	volume_prune) echo "-a -f --help" ;;
	logs|container_logs) echo "-f --follow -t --timestamps -n --tail --since --until --help" ;;
	stop|container_stop) echo "-t --time -s --signal --help" ;;
	kill|container_kill) echo "-s --signal --help" ;;
	rm|container_rm) echo "-f --force -v --volumes --help" ;;
	exec|container_exec) echo "-d --detach -i --interactive -t --tty -e --env -u --user -w --workdir --help" ;;
	inspect) echo "-f --format --type --help" ;;
	container_inspect|image_inspect) echo "-f --format --help" ;;
	container_prune) echo "-f --force --help" ;;
	images|image_ls|image_list) echo "-a --all -q --quiet --digests --no-trunc --format --filter --help" ;;
	rmi|image_rm|image_remove) echo "-f --force --no-prune --help" ;;
	history|image_history) echo "-q --quiet --no-trunc --help" ;;
	image_prune|builder_prune) echo "-a --all -f --force --help" ;;
	system_prune) echo "-a --all -f --force --volumes --help" ;;
	system_df) echo "-v --verbose --help" ;;
	pull|image_pull) echo "--platform -q --quiet --insecure-registry --help" ;;
	push|image_push) echo "-a --all-tags -q --quiet --no-artifact --insecure-registry --help" ;;
	load|image_load) echo "-i --input --name -q --quiet --help" ;;
	login) echo "-u --username --password-stdin --help" ;;
	compose) echo "-f --file -p --project-name --project-directory --env-file --profile --help" ;;
	compose_build) echo "--no-cache --pull -q --quiet --build-arg -n --dry-run --progress --help" ;;
	compose_up) echo "--build --no-build -d --detach --wait --force-recreate --no-deps -n --dry-run --help" ;;
	compose_down|compose_stop) echo "-t --timeout --remove-orphans -v --volumes --help" ;;
	compose_ps) echo "-a --all -q --quiet --services --help" ;;
	compose_logs) echo "-f --follow -t --timestamps -n --tail --since --until --help" ;;
	compose_config) echo "--services --commands --help" ;;
	*) echo "--help" ;;
	esac
}

# The flags of a command (key as for _hypr_flags) whose value is the next word.
_hypr_value_flags() {
	case $1 in
	build|buildx|image_build|builder_build)
		echo "-t --tag -f --file --build-arg --target --platform --iidfile --label --progress
			--keep --from --network --disk --add-host --secret" ;;
	run|container_run|create|container_create)
		echo "--name -e --env --env-file -u --user -w --workdir --entrypoint -p --publish --mount
			--network --net -v --volume -m --memory --cpus -h --hostname --add-host -l --label
			--restart --stop-signal --stop-timeout --health-cmd --health-interval
			--health-timeout --health-start-period --health-retries --platform --pull
			--detach-keys" ;;
	ps|container_ls|container_list|container_ps|images|image_ls|image_list)
		echo "--filter --format" ;;
	logs|container_logs) echo "-n --tail --since --until" ;;
	stop|container_stop) echo "-t --time -s --signal" ;;
	restart|container_restart) echo "-t --time" ;;
	attach|container_attach) echo "--detach-keys" ;;
	volume_create) echo "-l" ;;
	kill|container_kill) echo "-s --signal" ;;
	exec|container_exec) echo "-e --env -u --user -w --workdir" ;;
	inspect) echo "-f --format --type" ;;
	container_inspect|image_inspect) echo "-f --format" ;;
	pull|image_pull) echo "--platform --insecure-registry" ;;
	push|image_push) echo "--insecure-registry" ;;
	load|image_load) echo "-i --input --name" ;;
	login) echo "-u --username" ;;
	compose) echo "-f --file -p --project-name --project-directory --env-file --profile" ;;
	compose_build) echo "--build-arg --progress" ;;
	compose_down|compose_stop) echo "-t --timeout" ;;
	compose_logs) echo "-n --tail --since --until" ;;
	esac
}

# _hypr_takes_value KEY FLAG
_hypr_takes_value() {
	[[ $2 != *=* ]] && [[ " $(_hypr_value_flags "$1" | tr -s '\t\n' '  ') " == *" $2 "* ]]
}

_hypr_images() {
	"${COMP_WORDS[0]}" images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null |
		grep -v '<none>'
}

_hypr_containers() {
	"${COMP_WORDS[0]}" ps -a --format '{{.Names}}' 2>/dev/null
}

# The stage names (FROM ... AS NAME) of build's Dockerfile: -f's, else
# CONTEXT/Dockerfile, else ./Dockerfile.
_hypr_stages() {
	local i w file='' ctx=. seen=0
	for ((i = 1; i < ${#COMP_WORDS[@]}; i++)); do
		w=${COMP_WORDS[i]}
		[ "$i" = "$COMP_CWORD" ] && continue
		case $w in
		-f|--file) file=${COMP_WORDS[i + 1]}; i=$((i + 1)) ;;
		--file=*) file=${w#--file=} ;;
		-*) _hypr_takes_value build "$w" && i=$((i + 1)) ;;
		*)
			# the words up to build are the command; then CONTEXT
			if [ $seen = 1 ]; then
				ctx=$w
			elif [ "$w" = build ] || [ "$w" = buildx ]; then
				seen=1
			fi ;;
		esac
	done
	[ -n "$file" ] || file=$ctx/Dockerfile
	[ -r "$file" ] || return 0
	awk 'tolower($1) == "from" { for (i = 2; i < NF; i++) if (tolower($i) == "as") print $(i + 1) }' "$file"
}

_hypr_bash() {
	# zsh (bashcompinit): bash's 0-based COMP_WORDS
	[ -z "${ZSH_VERSION:-}" ] || setopt local_options ksh_arrays
	local cur=${COMP_WORDS[COMP_CWORD]} prev='' cmd='' sub='' key i w
	[ "$COMP_CWORD" -gt 0 ] && prev=${COMP_WORDS[COMP_CWORD - 1]}
	COMPREPLY=()

	# the command, its sub-command, and how many positional words follow
	local npos=0
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		if [[ $w == -* ]]; then
			[ -n "$cmd" ] && _hypr_takes_value "$cmd${sub:+_$sub}" "$w" && i=$((i + 1))
			continue
		fi
		if [ -z "$cmd" ]; then
			cmd=$w
		elif [ -z "$sub" ] && [[ " image system builder container compose volume " == *" $cmd "* ]]; then
			sub=$w
		else
			npos=$((npos + 1))
		fi
	done

	if [ -z "$cmd" ]; then
		if [[ $cur == -* ]]; then
			_hypr_reply -W "--help --version" -- "$cur"
		else
			_hypr_reply -W "$_hypr_commands" -- "$cur"
		fi
		return 0
	fi
	if [ "$cmd" = help ]; then
		if [ "$npos" = 0 ] && [ -z "$sub" ]; then
			_hypr_reply -W "$_hypr_commands" -- "$cur"
		fi
		return 0
	fi
	if [[ " image system builder container compose volume " == *" $cmd "* ]] && [ -z "$sub" ] &&
		[[ $cur != -* ]] && ! _hypr_takes_value "$cmd" "$prev"; then
		_hypr_reply -W "$(_hypr_subs "$cmd")" -- "$cur"
		return 0
	fi
	key=$cmd${sub:+_$sub}

	# a flag's value
	case $prev in
	--target)
		_hypr_reply -W "$(_hypr_stages)" -- "$cur"
		return 0 ;;
	--platform)
		_hypr_reply -W "linux/amd64 linux/arm64" -- "$cur"
		return 0 ;;
	--progress)
		_hypr_reply -W "auto plain tty quiet none" -- "$cur"
		return 0 ;;
	--pull)
		# build's --pull takes no value unless --pull=WHEN
		if [ "$key" = run ] || [ "$key" = container_run ] || [ "$key" = create ] ||
			[ "$key" = container_create ]; then
			_hypr_reply -W "missing always never" -- "$cur"
			return 0
		fi ;;
	--network|--net)
		_hypr_reply -W "none default" -- "$cur"
		return 0 ;;
	--type)
		_hypr_reply -W "container image" -- "$cur"
		return 0 ;;
	esac
	if _hypr_takes_value "$key" "$prev"; then
		case $prev in
		-f|--file|--iidfile|--env-file|-i|--input|--keep|-v|--volume)
			_hypr_reply -f -- "$cur" ;;
		esac
		return 0
	fi

	if [[ $cur == -* ]]; then
		_hypr_reply -W "$(_hypr_flags "$key")" -- "$cur"
		return 0
	fi

	# positional words
	case $key in
	build|buildx|image_build|builder_build)
		_hypr_reply -d -- "$cur"
		[ "$cur" = - ] && COMPREPLY+=(-) ;;
	run|container_run|create|container_create|history|image_history|push|image_push)
		[ "$npos" = 0 ] && _hypr_reply -W "$(_hypr_images)" -- "$cur" ;;
	volume_rm|volume_remove|volume_inspect)
		_hypr_reply -W "$("${COMP_WORDS[0]}" volume ls -q 2>/dev/null)" -- "$cur" ;;
	rmi|image_rm|image_remove|image_inspect|tag|image_tag)
		_hypr_reply -W "$(_hypr_images)" -- "$cur" ;;
	inspect)
		_hypr_reply -W "$(_hypr_images) $(_hypr_containers)" -- "$cur" ;;
	logs|stop|kill|rm|port|start|restart|attach|container_*)
		# one container for exec, logs, port and attach: then its command, or a port
		if ! [[ $key == *exec || $key == *logs || $key == *port || $key == *attach ]] ||
			[ "$npos" = 0 ]; then
			_hypr_reply -W "$(_hypr_containers)" -- "$cur"
		fi ;;
	exec)
		[ "$npos" = 0 ] && _hypr_reply -W "$(_hypr_containers)" -- "$cur" ;;
	load|image_load)
		_hypr_reply -f -- "$cur" ;;
	esac
	return 0
}

complete -o default -F _hypr_bash hypr
