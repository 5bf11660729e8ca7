#!/usr/bin/env zsh
# zcomplete.zsh FPATHDIR INPUT: type INPUT and a Tab into an interactive
# zsh (on a pty) whose completion system finds _hypr in FPATHDIR, and print
# the command line that completion left (the real widget, not a stub).
zmodload zsh/zpty || exit 4
zpty z 'zsh -f -i' || exit 4

# wait_for PATTERN: read the pty until its output matches (20 s at most: a
# loaded machine, or a sanitizer build of hypr listing the images)
wait_for() {
	local i chunk
	for i in {1..200}; do
		while zpty -r -t z chunk; do out+=$chunk; done
		[[ $out == $~1 ]] && return 0
		sleep 0.1
	done
	return 1
}

out=
zpty -w z "PS1='%% '; fpath=(${(q)1} \$fpath); autoload -U compinit; compinit -u -D; setopt nobeep; print RE''ADY"
wait_for "*READY*% *" || exit 4
zpty -w -n z "$2"$'\t'
# the widget runs hypr (images, stages): give it time before the next keys
sleep 2
# the line, echoed back by a command that starts with it
out=
zpty -w -n z $'\C-a echo ZLINE: \n'
wait_for $'*ZLINE: *\n*' || exit 4
zpty -d z
out=${out##*ZLINE: }
print -r -- "${out%%$'\r'*}"
