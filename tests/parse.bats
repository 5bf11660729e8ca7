#!/usr/bin/env bats
# hypr-parse: the Dockerfile language as BuildKit parses it, and the plan.
load helpers

setup() {
	cd "$BATS_TEST_TMPDIR"
}

# df TEXT: write ./Dockerfile (printf %b, so \t \n and \\ work).
df() {
	printf '%b' "$1" > Dockerfile
}

# parse_df -STATUS TEXT: df TEXT, then run hypr-parse -f on it expecting
# exit STATUS, stderr apart.
parse_df() {
	df "$2"
	run "$1" --separate-stderr "$HYPR_PARSE" -f Dockerfile
}

# q FILTER: jq -c over the last plan in $output.
q() {
	printf '%s\n' "$output" | jq -c "$@"
}

# instrs [jq options] FILTER: over the instr records only.
instrs() {
	printf '%s\n' "$output" | jq -c 'select(.type == "instr")' | jq -c "$@"
}

@test "parse: golden plan (every instruction, heredocs, flags, pruned stage)" {
	"$HYPR_PARSE" --platform linux/arm64/v8 < "$FIX/parse/basic.Dockerfile" > out
	diff -u "$FIX/parse/basic.jsonl" out
}

@test "parse: golden plan of the hypr-plan(5) example" {
	"$HYPR_PARSE" --platform linux/amd64 < "$FIX/parse/example.Dockerfile" > out
	diff -u "$FIX/parse/example.jsonl" out
	# and the EXAMPLES section of the man page shows exactly that stream
	sed -n '/^\.Bd -literal -offset 0n -compact$/,/^\.Ed$/p' "$HYPR_SRC/man/hypr-plan.5" |
		sed '1d;$d' | sed 's/\\e/\\/g' > man.jsonl
	diff -u "$FIX/parse/example.jsonl" man.jsonl
}

@test "parse: stream framing, -f -, stdin, --help, usage errors" {
	run -0 --separate-stderr "$HYPR_PARSE" --help
	[[ $output == usage:* ]]
	run -2 --separate-stderr "$HYPR_PARSE" --bogus
	[ -z "$output" ]
	run -2 --separate-stderr "$HYPR_PARSE" extra-arg
	run -2 --separate-stderr "$HYPR_PARSE" --platform amd64 < /dev/null
	[[ $stderr == "hypr-parse: --platform amd64: expected OS/ARCH"* ]]
	df 'FROM a\n'
	run -0 --separate-stderr "$HYPR_PARSE" -f - < Dockerfile
	[ "$(q -s 'length')" = 3 ]
	[ "$(q -s '.[0] | [.hypr, .version, .dockerfile]')" = '["plan",1,"Dockerfile"]' ]
	[ "$(q -s '.[-1]')" = '{"end":true,"records":1}' ]
	run -2 --separate-stderr "$HYPR_PARSE" -f does-not-exist
	[[ $stderr == "hypr-parse: does-not-exist: cannot read the Dockerfile (No such file or directory)" ]]
}

@test "parse: parser directives and where they stop" {
	parse_df -0 '# syntax=docker/dockerfile:1\n#  ESCAPE = `\n# check=skip=all\nFROM a\nRUN echo `\n  hi\n'
	[ "$(q -s '.[0].directives')" = '{"syntax":"docker/dockerfile:1","escape":"`","check":"skip=all"}' ]
	[ "$(instrs '.args')" = '["echo   hi"]' ]
	# a comment first: what looks like a directive is a comment
	parse_df -0 '# a comment\n# escape=`\nFROM a\nRUN echo `\n'
	[ "$(q -s '.[0].directives.escape')" = '"\\"' ]
	[ "$(instrs '.args')" = '["echo `"]' ]
	# a blank line ends directives
	parse_df -0 '\n# escape=`\nFROM a\n'
	[ "$(q -s '.[0].directives.escape')" = '"\\"' ]
	# an unknown directive ends them too
	parse_df -0 '# foo=bar\n# escape=`\nFROM a\n'
	[ "$(q -s '.[0].directives')" = '{"escape":"\\"}' ]
	# after an instruction they are comments
	parse_df -0 'FROM a\n# syntax=x\n'
	[ "$(q -s '.[0].directives')" = '{"escape":"\\"}' ]
	# repeated or invalid: bad input
	parse_df -3 '# escape=`\n# escape=\\\\\nFROM a\n'
	[ "$stderr" = "hypr-parse: Dockerfile:2: only one escape parser directive can be used" ]
	parse_df -3 '# escape=x\nFROM a\n'
	[[ $stderr == "hypr-parse: Dockerfile:1: invalid escape token 'x'"* ]]
}

@test "parse: continuations with comments, blank lines, trailing blanks, EOF" {
	parse_df -0 'FROM a\nRUN one \\\n# comment inside\n  two \\   \n\n  three \\\\\nRUN four \\'
	[ "$(instrs '[.line, .args]')" = $'[[2,6],["one   two   three \\\\\\\\"]]\n[[7,7],["four"]]' ]
	# the blank line inside is warned about, on stderr and in the plan
	[ "$stderr" = "hypr-parse: warning: Dockerfile:2: empty continuation line found in: RUN one   two   three \\\\" ]
	[ "$(q 'select(.type == "warning") | .line')" = 2 ]
	# an escaped escape at the end is not a continuation
	parse_df -0 'FROM a\nENV C=trailing\\\\\nENV D=x\n'
	[ "$(instrs -r '.pairs[0].value')" = $'trailing\\\\\nx' ]
	# CRLF line endings and a byte-order mark
	printf '\xef\xbb\xbfFROM a\r\nRUN a \\\r\n b\r\n' > Dockerfile
	run -0 --separate-stderr "$HYPR_PARSE" -f Dockerfile
	[ "$(instrs '[.line, .args]')" = '[[2,3],["a  b"]]' ]
}

@test "parse: exec form vs shell form for every instruction that has both" {
	parse_df -0 'FROM a\nRUN ["echo", "x y"]\nRUN echo "x y"\nCMD ["c"]\nCMD c d\nENTRYPOINT ["e"]\nENTRYPOINT e f\nSHELL ["/bin/bash", "-c"]\nHEALTHCHECK CMD ["h"]\nHEALTHCHECK CMD h i\nCOPY ["a b", "/c"]\nCOPY a b /c/\nADD ["x", "/y"]\nVOLUME ["/v"]\nVOLUME /v /w\n'
	[ "$(instrs '[.op, .form, .args]' | tr '\n' ' ')" = '["RUN","exec",["echo","x y"]] ["RUN","shell",["echo \"x y\""]] ["CMD","exec",["c"]] ["CMD","shell",["c d"]] ["ENTRYPOINT","exec",["e"]] ["ENTRYPOINT","shell",["e f"]] ["SHELL","exec",["/bin/bash","-c"]] ["HEALTHCHECK","exec",["CMD","h"]] ["HEALTHCHECK","shell",["CMD","h i"]] ["COPY","exec",["a b","/c"]] ["COPY","shell",["a","b","/c/"]] ["ADD","exec",["x","/y"]] ["VOLUME","exec",["/v"]] ["VOLUME","shell",["/v","/w"]] ' ]
}

@test "parse: which instructions exec must expand" {
	parse_df -0 'FROM a\nRUN $A\nCMD $A\nENTRYPOINT $A\nSHELL ["$A"]\nHEALTHCHECK CMD $A\nONBUILD RUN $A\nMAINTAINER $A\nADD $A /\nARG A=$B\nCOPY $A /\nENV A=$B\nEXPOSE $A\nLABEL a=$A\nSTOPSIGNAL $A\nUSER $A\nVOLUME $A\nWORKDIR $A\n'
	[ "$(instrs -r 'select(.expand == false) | .op' | tr '\n' ' ')" = 'RUN CMD ENTRYPOINT SHELL HEALTHCHECK ONBUILD MAINTAINER ' ]
	[ "$(instrs -r 'select(.expand) | .op' | tr '\n' ' ')" = 'ADD ARG COPY ENV EXPOSE LABEL STOPSIGNAL USER VOLUME WORKDIR ' ]
	# and nothing is expanded in the plan itself
	[ "$(instrs -r '.args[-1]' | sort -u | tr '\n' ' ')" = '$A $B / A=$B RUN $A ' ]
}

@test "parse: invalid JSON falls back to shell form; non-string arrays are errors" {
	df "FROM a\nCMD ['single']\nCMD [\"unterminated\"\nCMD [\"a\"] trailing\nRUN [ \"ok\" ]\nCMD []\n"
	run -0 --separate-stderr "$HYPR_PARSE" -f Dockerfile
	[ "$(instrs '[.form, .args]' | tr '\n' ' ')" = "[\"shell\",[\"['single']\"]] [\"shell\",[\"[\\\"unterminated\\\"\"]] [\"shell\",[\"[\\\"a\\\"] trailing\"]] [\"exec\",[\"ok\"]] [\"exec\",[]] " ]
	parse_df -3 'FROM a\nRUN ["a", 1]\n'
	[ "$stderr" = "hypr-parse: Dockerfile:2: when using JSON array syntax, arrays must be comprised of strings only" ]
	[ -z "$output" ]
}

@test "parse: flags on any instruction, repeatable ones as arrays, -- ends them" {
	parse_df -0 'FROM --platform=linux/arm64 a\nRUN --mount=type=bind,target=/x --mount=type=tmpfs,target=/t --network=none true\nCOPY --link --exclude=*.md --exclude="a b" . /\nCOPY -- --weird /\nADD --checksum=sha256:00 http://x/y /y\n'
	[ "$(q 'select(.type == "stage") | [.flags, .platform]')" = '[{"platform":"linux/arm64"},"linux/arm64"]' ]
	[ "$(instrs '.flags' | tr '\n' ' ')" = '{"mount":["type=bind,target=/x","type=tmpfs,target=/t"],"network":"none"} {"link":"true","exclude":["*.md","a b"]} {} {"checksum":"sha256:00"} ' ]
	[ "$(instrs -s '.[2].args')" = '["--weird","/"]' ]
	parse_df -3 'FROM a\nCOPY --chown=a --chown=b . /\n'
	[ "$stderr" = "hypr-parse: Dockerfile:2: duplicate flag specified: --chown" ]
}

@test "parse: ENV and LABEL forms, ARG with and without values" {
	parse_df -0 'FROM a\nENV K v w\nENV A=1 B="two words" C=x\\ y\nLABEL k v\nLABEL "a.b"=c d=\nARG N\nARG M=1 O\n'
	[ "$(instrs '[.op, .pairs, .legacy]' | tr '\n' ' ')" = '["ENV",[{"key":"K","value":"v w"}],true] ["ENV",[{"key":"A","value":"1"},{"key":"B","value":"\"two words\""},{"key":"C","value":"x\\ y"}],null] ["LABEL",[{"key":"k","value":"v"}],true] ["LABEL",[{"key":"\"a.b\"","value":"c"},{"key":"d","value":""}],null] ["ARG",[{"key":"N","value":null}],null] ["ARG",[{"key":"M","value":"1"},{"key":"O","value":null}],null] ' ]
	parse_df -3 'FROM a\nENV A=1 B\n'
	[[ $stderr == 'hypr-parse: Dockerfile:2: Syntax error - can'"'"'t find = in "B"'* ]]
	parse_df -3 'FROM a\nENV ONLY\n'
	[ "$stderr" = "hypr-parse: Dockerfile:2: ENV must have two arguments" ]
}

@test "parse: EXPOSE, USER, WORKDIR, ONBUILD, keywords in any case" {
	parse_df -0 'from a\nexpose 80 443/udp\nUser app:app\nworkDIR /a b\nonbuild copy . /src\nOnBuild run ["x"]\n'
	[ "$(instrs '[.op, .args]' | tr '\n' ' ')" = '["EXPOSE",["80","443/udp"]] ["USER",["app:app"]] ["WORKDIR",["/a b"]] ["ONBUILD",["copy . /src"]] ["ONBUILD",["run [\"x\"]"]] ' ]
	[ "$(instrs 'select(.onbuild) | .onbuild | [.op, .args, .form]' | tr '\n' ' ')" = '["COPY",[".","/src"],"shell"] ["RUN",["x"],"exec"] ' ]
	parse_df -3 'FROM a\nONBUILD ONBUILD RUN x\n'
	[ "$stderr" = "hypr-parse: Dockerfile:2: Chaining ONBUILD via \`ONBUILD ONBUILD\` isn't allowed" ]
	parse_df -3 'FROM a\nONBUILD FROM b\n'
	[ "$stderr" = "hypr-parse: Dockerfile:2: FROM isn't allowed as an ONBUILD trigger" ]
}

@test "parse: MAINTAINER is kept and warned about" {
	parse_df -0 'FROM a\nMAINTAINER Jane <j@example.com>\n'
	[ "$stderr" = "hypr-parse: warning: Dockerfile:2: MAINTAINER is deprecated, use LABEL maintainer=... instead" ]
	[ "$(q -s 'map(select(.type != null) | [.type, .line]) | tostring')" = '"[[\"stage\",[1,1]],[\"warning\",2],[\"instr\",[2,2]]]"' ]
	[ "$(instrs '.args')" = '["Jane <j@example.com>"]' ]
}

@test "parse: heredocs (<<EOF, <<-EOF, quoted, several on a line, ONBUILD)" {
	parse_df -0 'FROM a\nRUN <<EOF\necho $HOME\nEOF\nRUN 3<<-"END" cat <<ONE > /x\n\t\tindented\n\tEND\nplain\nONE\nCOPY <<'"'"'A'"'"' <<B /dst/\na\nA\nb\nB\nONBUILD RUN <<X\nx\nX\nRUN ["json", "<<EOF"]\n'
	[ "$(instrs -s 'map(.line)')" = '[[2,4],[5,9],[10,14],[15,17],[18,18]]' ]
	[ "$(instrs '.heredocs' | sed -n 1,3p | tr '\n' ' ')" = '[{"name":"EOF","content":"echo $HOME\n","expand":true,"strip_tabs":false}] [{"name":"END","content":"indented\n","expand":false,"strip_tabs":true,"fd":3},{"name":"ONE","content":"plain\n","expand":true,"strip_tabs":false}] [{"name":"A","content":"a\n","expand":false,"strip_tabs":false},{"name":"B","content":"b\n","expand":true,"strip_tabs":false}] ' ]
	[ "$(instrs -s '.[3].onbuild.heredocs[0].content')" = '"x\n"' ]
	# exec form takes no heredoc
	[ "$(instrs -s '.[4].heredocs')" = null ]
	parse_df -3 'FROM a\nRUN <<EOF\nnever ends\n'
	[ "$stderr" = "hypr-parse: Dockerfile:2: unterminated heredoc EOF (started here, file ends at line 3)" ]
	[ -z "$output" ]
}

@test "parse: global ARGs expand FROM; --build-arg overrides; bare K from the environment" {
	parse_df -0 'ARG REG=docker.io\nARG IMG=${REG}/library/busybox\nARG TAG\nARG UNUSED=x\nFROM ${IMG}:${TAG:-latest}\nARG TAG\nRUN echo $TAG\n'
	[ "$(q 'select(.type == "stage") | .base')" = '"docker.io/library/busybox:latest"' ]
	[ "$(q -c 'select(.type == "arg") | [.name, .value]' | tr '\n' ' ')" = '["REG","docker.io"] ["IMG","docker.io/library/busybox"] ["TAG",null] ["UNUSED","x"] ' ]
	# the redeclared ARG in the stage has no value of its own: exec looks it up
	[ "$(instrs -s '.[0].pairs')" = '[{"key":"TAG","value":null}]' ]
	TAG=1.36 run -0 --separate-stderr "$HYPR_PARSE" -f Dockerfile --build-arg TAG --build-arg REG=example.com:5000 --build-arg NOTDECLARED=1
	[ "$(q 'select(.type == "stage") | .base')" = '"example.com:5000/library/busybox:1.36"' ]
	[ "$(q -s '.[0].build_args')" = '{"TAG":"1.36","REG":"example.com:5000","NOTDECLARED":"1"}' ]
	# a bare K missing from the environment is ignored, as docker does
	env -u TAG "$HYPR_PARSE" -f Dockerfile --build-arg TAG > out
	[ "$(jq -c 'select(.type == "stage") | .base' out)" = '"docker.io/library/busybox:latest"' ]
	# an ARG declared after the first FROM is not visible to later FROMs
	parse_df -0 'FROM a\nARG LATE=x\nFROM b${LATE}\n'
	[ "$(q 'select(.type == "stage") | .base')" = '"b"' ]
	# built-in platform ARGs
	df 'FROM --platform=$BUILDPLATFORM img-$TARGETOS-$TARGETARCH$TARGETVARIANT\n'
	run -0 --separate-stderr "$HYPR_PARSE" -f Dockerfile --platform linux/arm/v7
	[ "$(q 'select(.type == "stage") | .base')" = '"img-linux-armv7"' ]
	# ${V:?msg} fails with the message
	parse_df -3 'ARG V\nFROM ${V:?set-V-please}\n'
	[[ $stderr == "hypr-parse: Dockerfile:2: "*"V: set-V-please" ]]
	parse_df -3 'FROM ${EMPTY}\n'
	[ "$stderr" = 'hypr-parse: Dockerfile:1: base name (${EMPTY}) should not be blank' ]
}

@test "parse: --target writes only the stages it needs, in file order" {
	df 'FROM alpine AS base\nFROM base AS deps\nRUN deps\nFROM busybox AS tools\nFROM scratch AS unused\nFROM deps AS app\nCOPY --from=tools /bin/x /x\nCOPY --from=0 /etc /etc\nCOPY --from=nginx:latest /a /a\nRUN --mount=type=bind,from=alpine:3,target=/m true\nFROM app AS unused2\nFROM scratch AS last\n'
	run -0 --separate-stderr "$HYPR_PARSE" -f Dockerfile --target APP
	[ "$(q -c 'select(.type == "stage") | [.index, .name, .base_stage, .final]' | tr '\n' ' ')" = '[0,"base",null,false] [1,"deps",0,false] [2,"tools",null,false] [4,"app",1,true] ' ]
	[ "$(instrs -c '[.stage, .from_stage]' | tr '\n' ' ')" = '[1,null] [4,2] [4,0] [4,null] [4,null] ' ]
	[ "$(q -s '.[0].target')" = '"APP"' ]
	# default target: the last stage only
	run -0 --separate-stderr "$HYPR_PARSE" -f Dockerfile
	[ "$(q -c 'select(.type == "stage") | [.index, .final]')" = '[6,true]' ]
	# bind mounts from a stage are dependencies too
	parse_df -0 'FROM a AS one\nFROM b\nRUN --mount=type=bind,from=one,target=/m true\n'
	[ "$(q -c 'select(.type == "stage") | .index' | tr '\n' ' ')" = '0 1 ' ]
	df 'FROM a AS one\n'
	run -2 --separate-stderr "$HYPR_PARSE" -f Dockerfile --target two
	[ "$stderr" = 'hypr-parse: Dockerfile: --target: no stage named "two"' ]
	[ -z "$output" ]
}

@test "parse: bad input is one line with Dockerfile:LINE, exit 3, nothing on stdout" {
	check() {	# check TEXT MESSAGE
		df "$1"
		run -3 --separate-stderr "$HYPR_PARSE" -f Dockerfile
		[ -z "$output" ]
		[ "$stderr" = "hypr-parse: $2" ] || { echo "got: $stderr" >&2; return 1; }
	}
	check 'FROM a\nRUNN echo\n' 'Dockerfile:2: unknown instruction: RUNN (did you mean RUN?)'
	check 'FROM a\ncopyy . /\n' 'Dockerfile:2: unknown instruction: copyy (did you mean COPY?)'
	check 'FROM a\nENTRYPIONT x\n' 'Dockerfile:2: unknown instruction: ENTRYPIONT (did you mean ENTRYPOINT?)'
	check 'FROM a\nFOO bar\n' 'Dockerfile:2: unknown instruction: FOO'
	check '# c\n\nRUN x\nFROM a\n' 'Dockerfile:3: RUN before the first FROM (only ARG may come before FROM)'
	check 'FROM a AS 1x\n' 'Dockerfile:1: invalid name for build stage: "1x", name can'"'"'t start with a number or contain symbols'
	check 'FROM a b\n' 'Dockerfile:1: FROM requires either one or three arguments (FROM image [AS name])'
	check 'FROM a AS me\nCOPY --from=me / /\n' 'Dockerfile:2: circular dependency detected on stage: me'
	check 'FROM a\nCOPY --from=0 / /\n' 'Dockerfile:2: circular dependency detected on stage: stage-0'
	check 'FROM a\nCOPY --from=2 / /\nFROM b\n' 'Dockerfile:2: invalid stage index 2'
	# secret and cache mounts are hypr's (tests/mount.bats); ssh is out of scope
	check "FROM a\nRUN --mount=type=ssh,id=x \\\\\n  true\n" "Dockerfile:2: RUN --mount=type=ssh is not supported by hypr (no SSH agent reaches the build VM; fetch over HTTPS with a --mount=type=secret instead)"
	check 'FROM a\nCOPY onlyone\n' 'Dockerfile:2: COPY requires at least two arguments, but only one was provided. Destination could not be determined'
	check 'FROM a\nWORKDIR\n' 'Dockerfile:2: WORKDIR requires exactly one argument'
	check 'FROM a\nENV\n' 'Dockerfile:2: ENV requires at least one argument'
	check '' 'Dockerfile:1: file with no instructions'
	check '# only a comment\n\n' 'Dockerfile:2: file with no instructions'
	check 'ARG A=1\n' 'Dockerfile:1: no FROM instruction: a Dockerfile needs at least one stage'
}

@test "parse: hostile input: NUL bytes, invalid UTF-8, a huge line, deep JSON" {
	printf 'FROM a\nRUN echo a\0b\n' > Dockerfile
	run -3 --separate-stderr "$HYPR_PARSE" -f Dockerfile
	[ "$stderr" = "hypr-parse: Dockerfile:2: NUL byte in instruction" ]
	printf 'FROM a\nRUN echo \xff\xfe\n' > Dockerfile
	run -3 --separate-stderr "$HYPR_PARSE" -f Dockerfile
	[ "$stderr" = "hypr-parse: Dockerfile:2: invalid UTF-8 in instruction" ]
	# comments may hold anything
	printf '# caf\xe9\nFROM a\n' > Dockerfile
	run -0 --separate-stderr "$HYPR_PARSE" -f Dockerfile
	# a 3 MB instruction is fine in lines BuildKit can read (64 KiB - 1)
	{ echo FROM a; printf 'RUN '; for _ in $(seq 50); do head -c 60000 /dev/zero | tr '\0' x; echo ' \'; done; echo; } > Dockerfile
	run -0 --separate-stderr "$HYPR_PARSE" -f Dockerfile
	[ "$(instrs '.args[0] | gsub(" "; "") | length')" = 3000000 ]
	# a longer line is refused as BuildKit refuses it, at its line
	{ echo FROM a; printf 'RUN '; head -c 65531 /dev/zero | tr '\0' x; echo; printf 'RUN '; head -c 65532 /dev/zero | tr '\0' x; echo; } > Dockerfile
	run -3 --separate-stderr "$HYPR_PARSE" -f Dockerfile
	[ "$stderr" = "hypr-parse: Dockerfile:3: dockerfile line greater than max allowed size of 65535" ]
	[ -z "$output" ]
	{ echo FROM a; printf 'CMD '; for _ in $(seq 5000); do printf '['; done; echo; } > Dockerfile
	run -0 --separate-stderr "$HYPR_PARSE" -f Dockerfile
	[ "$(instrs '.form')" = '"shell"' ]
	head -c $((17 << 20)) /dev/zero > Dockerfile
	run -3 --separate-stderr "$HYPR_PARSE" -f Dockerfile
	[[ $stderr == "hypr-parse: Dockerfile: larger than "* ]]
}

@test "parse: --parse-only checks syntax without stage rules" {
	df 'CMD ["a"]\nARG X\nRUN y\n'
	run -0 --separate-stderr "$HYPR_PARSE" --parse-only -f Dockerfile
	[ "$(q -s '.[0].parse_only')" = true ]
	[ "$(instrs -c '[.stage, .op]' | tr '\n' ' ')" = '[null,"CMD"] [null,"ARG"] [null,"RUN"] ' ]
}

@test "parse: \${V:#p} and \${V:%p} are unsupported modifiers, as in BuildKit" {
	parse_df -3 'ARG V=abc\nFROM img${V:#a}\n'
	[ "$stderr" = 'hypr-parse: Dockerfile:2: failed to process "img${V:#a}": unsupported modifier (:#) in substitution' ]
	[ -z "$output" ]
	parse_df -3 'ARG V=abc\nFROM img${V:%c}\n'
	[ "$stderr" = 'hypr-parse: Dockerfile:2: failed to process "img${V:%c}": unsupported modifier (:%) in substitution' ]
	# without the colon they trim
	parse_df -0 'ARG V=abc\nFROM img${V#a}${V%c}\n'
	[ "$(q 'select(.type == "stage") | .base')" = '"imgbcab"' ]
}

@test "parse: blanks after << still make a heredoc (<<  EOF is EOF, << -EOF is -EOF)" {
	parse_df -0 'FROM a\nRUN <<  EOF\nhello\nEOF\nRUN << -EOF  > foo\nx\n-EOF\nRUN 3<<\tEND cat\ny\nEND\nRUN <<- EOF\nRUN ["<<  EOF"]\n'
	[ "$(instrs -c '[.line, .heredocs]' | tr '\n' ' ')" = '[[2,4],[{"name":"EOF","content":"hello\n","expand":true,"strip_tabs":false}]] [[5,7],[{"name":"-EOF","content":"x\n","expand":true,"strip_tabs":false}]] [[8,10],[{"name":"END","content":"y\n","expand":true,"strip_tabs":false,"fd":3}]] [[11,11],null] [[12,12],null] ' ]
}

@test "parse: errors come in BuildKit's order: syntax first, then each instruction in file order" {
	# an arity error on line 1 before an unknown instruction on line 2
	parse_df -3 'FROM\nFOO x\n'
	[ "$stderr" = "hypr-parse: Dockerfile:1: FROM requires either one or three arguments (FROM image [AS name])" ]
	parse_df -3 'FROM a\nENV\nCOPYY . /\n'
	[ "$stderr" = "hypr-parse: Dockerfile:2: ENV requires at least one argument" ]
	parse_df -3 'FROM a\nCOPYY . /\nENV\n'
	[ "$stderr" = "hypr-parse: Dockerfile:2: unknown instruction: COPYY (did you mean COPY?)" ]
	# a syntax error anywhere comes first (BuildKit parses the whole file first)
	parse_df -3 'FROM a\nFOO x\nRUN ["a", 1]\n'
	[ "$stderr" = "hypr-parse: Dockerfile:3: when using JSON array syntax, arrays must be comprised of strings only" ]
	# expanding FROM comes after every instruction was checked
	parse_df -3 'FROM ${V:?unset}\nFOO x\n'
	[ "$stderr" = "hypr-parse: Dockerfile:2: unknown instruction: FOO" ]
	[ -z "$output" ]
}

@test "parse: BuildKit's instruction rules and wording: arity, heredoc destinations, HEALTHCHECK, SHELL, VOLUME" {
	check() {	# check TEXT MESSAGE
		parse_df -3 "$1"
		[ -z "$output" ]
		[ "$stderr" = "hypr-parse: Dockerfile:2: $2" ] || { echo "got: $stderr" >&2; return 1; }
	}
	check 'FROM a\nMAINTAINER\n' 'MAINTAINER requires exactly one argument'
	check 'FROM a\nUSER\n' 'USER requires exactly one argument'
	check 'FROM a\nSTOPSIGNAL\n' 'STOPSIGNAL requires exactly one argument'
	check 'FROM a\nHEALTHCHECK\n' 'HEALTHCHECK requires at least one argument'
	check 'FROM a\nHEALTHCHECK --interval=5s\n' 'HEALTHCHECK requires at least one argument'
	check 'FROM a\nHEALTHCHECK NONE x\n' 'HEALTHCHECK NONE takes no arguments'
	check 'FROM a\nHEALTHCHECK CMD\n' 'Missing command after HEALTHCHECK CMD'
	check 'FROM a\nHEALTHCHECK connect tcp\n' 'Unknown type "CONNECT" in HEALTHCHECK (try CMD)'
	check 'FROM a\nCOPY src <<EOF\nx\nEOF\n' 'COPY cannot accept a heredoc as a destination'
	check 'FROM a\nADD ["src", "<<-\\"END\\""]\n' 'ADD cannot accept a heredoc as a destination'
	check 'FROM a\nCOPY <<EOF\nx\nEOF\n' 'COPY requires at least two arguments, but only one was provided. Destination could not be determined'
	check 'FROM a\nSHELL sh -c\n' 'SHELL requires the arguments to be in JSON form'
	check 'FROM a\nSHELL []\n' 'SHELL requires at least one argument'
	check 'FROM a\nVOLUME ["/a", " "]\n' 'VOLUME specified can not be an empty string'
	check 'FROM a\nCOPY --chwon=1 a b\n' 'unknown flag: --chwon (did you mean chown?)'
	check 'FROM a\nCMD --boo x\n' 'unknown flag: --boo'
	check 'FROM a\nCOPY --link= a b\n' 'missing a value on flag: --link'
	check 'FROM a\nONBUILD\n' 'ONBUILD requires at least one argument'
	# what BuildKit accepts: flags it never parses, HEALTHCHECK NONE with
	# flags, a heredoc as a source
	parse_df -0 'FROM a\nSTOPSIGNAL --x TERM\nHEALTHCHECK --interval=1s NONE\nCOPY <<EOF /dst\nx\nEOF\n'
	parse_df -0 'ARG --x=1 A\nFROM a\n'
}

@test "parse: RUN --device is repeatable, as BuildKit's other string lists" {
	parse_df -0 'FROM a\nRUN --device=/dev/fuse --device=nvidia.com/gpu=all --mount=type=tmpfs,target=/t true\n'
	[ "$(instrs -c '.flags')" = '{"device":["/dev/fuse","nvidia.com/gpu=all"],"mount":["type=tmpfs,target=/t"]}' ]
	parse_df -3 'FROM a\nRUN --network=none --network=host true\n'
	[ "$stderr" = "hypr-parse: Dockerfile:2: duplicate flag specified: --network" ]
}

@test "parse: two stages with one name are a warning; --from and --target take the last, FROM the latest before" {
	parse_df -0 'FROM a AS x\nFROM b AS X\nFROM x AS y\nFROM c\nCOPY --from=x /a /a\n'
	[ "$stderr" = 'hypr-parse: warning: Dockerfile:2: Duplicate stage name "x", stage names should be unique' ]
	[ "$(q -c 'select(.type == "warning")')" = '{"type":"warning","line":2,"message":"Duplicate stage name \"x\", stage names should be unique"}' ]
	[ "$(q -c 'select(.type == "stage") | [.index, .base_stage]' | tr '\n' ' ')" = '[1,null] [3,null] ' ]
	[ "$(instrs -c '.from_stage')" = 1 ]
	run -0 --separate-stderr "$HYPR_PARSE" -f Dockerfile --target y
	[ "$(q -c 'select(.type == "stage") | [.index, .base_stage, .final]' | tr '\n' ' ')" = '[1,null,false] [2,1,true] ' ]
	run -0 --separate-stderr "$HYPR_PARSE" -f Dockerfile --target x
	[ "$(q -c 'select(.type == "stage") | [.index, .final]' | tr '\n' ' ')" = '[1,true] ' ]
}

@test "parse: COPY --from a later stage: stages come in dependency order; a cycle is an error" {
	parse_df -0 'FROM a AS app\nCOPY --from=tools /x /x\nCOPY --from=2 /y /y\nFROM b AS tools\nRUN make\nFROM c AS data\nFROM app\n'
	[ "$(q -c 'select(.type == "stage" or .type == "instr") | [.type, .index // .stage, .line[0], .from_stage]' | tr '\n' ' ')" = '["stage",1,4,null] ["instr",1,5,null] ["stage",2,6,null] ["stage",0,1,null] ["instr",0,2,1] ["instr",0,3,2] ["stage",3,7,null] ' ]
	# a bind mount from a later stage is a dependency too
	df 'FROM a AS app\nRUN --mount=type=bind,from=later,target=/m true\nFROM b AS later\nFROM c AS unused\n'
	run -0 --separate-stderr "$HYPR_PARSE" -f Dockerfile --target app
	[ "$(q -c 'select(.type == "stage") | .index' | tr '\n' ' ')" = '1 0 ' ]
	check() {	# check TEXT MESSAGE
		parse_df -3 "$1"
		[ -z "$output" ]
		[ "$stderr" = "hypr-parse: Dockerfile:$2" ] || { echo "got: $stderr" >&2; return 1; }
	}
	check 'FROM a AS one\nCOPY --from=two / /\nFROM b AS two\nCOPY --from=one / /\n' '2: circular dependency detected on stage: one'
	# through a FROM: two is built on one, which copies from two
	check 'FROM a AS one\nCOPY --from=two / /\nFROM one AS two\n' '2: circular dependency detected on stage: one'
	check 'FROM a\nFROM b\nRUN --mount=from=1,target=/x true\n' '3: circular dependency detected on stage: stage-1'
	check 'FROM a\nCOPY --from=-1 / /\n' '2: invalid stage index -1'
	# a name that is no stage is an image, as before
	parse_df -0 'FROM a\nCOPY --from=nginx:latest / /\nCOPY --from=$X / /\n'
	[ "$(instrs -c '.from_stage')" = $'null\nnull' ]
}

@test "parse: limits on what a Dockerfile can make hypr-parse do, one line each" {
	# instructions
	{ echo 'FROM a'; yes RUN | head -n 1048576; } > Dockerfile
	run -3 --separate-stderr "$HYPR_PARSE" -f Dockerfile
	[ "$stderr" = "hypr-parse: Dockerfile:1048577: more than 1048576 instructions" ]
	[ -z "$output" ]
	# heredocs in one instruction
	{ echo 'FROM a'; printf 'RUN cat'; for _ in $(seq 1025); do printf ' <<A'; done; echo; yes A | head -n 1025; } > Dockerfile
	run -3 --separate-stderr "$HYPR_PARSE" -f Dockerfile
	[ "$stderr" = "hypr-parse: Dockerfile:2: more than 1024 heredocs in one instruction" ]
	{ echo 'FROM a'; printf 'RUN cat'; for _ in $(seq 1024); do printf ' <<A'; done; echo; yes A | head -n 1024; } > Dockerfile
	run -0 --separate-stderr "$HYPR_PARSE" -f Dockerfile
	[ "$(instrs '.heredocs | length')" = 1024 ]
	# global ARG values, 16 MiB in all
	x=$(head -c 60000 /dev/zero | tr '\0' x)
	{ echo "ARG A=$x"; for i in $(seq 300); do echo "ARG B$i=\$A"; done; echo 'FROM a'; } > Dockerfile
	run -3 --separate-stderr "$HYPR_PARSE" -f Dockerfile
	[ "$stderr" = "hypr-parse: Dockerfile:280: global ARG values larger than 16777216 bytes in all" ]
	# what variables add to one value (here a global ARG chain): 1 MiB
	{ echo "ARG L0=$x"; for i in 1 2 3; do echo "ARG L$i=\${L$((i - 1))}\${L$((i - 1))}\${L$((i - 1))}\${L$((i - 1))}"; done; echo 'FROM a'; } > Dockerfile
	run -3 --separate-stderr "$HYPR_PARSE" -f Dockerfile
	[ "$stderr" = "hypr-parse: Dockerfile:4: failed to process \"\${L2}\${L2}\${L2}\${L2}\": variables expand to more than 1 MiB (hypr's limit)" ]
	# an expanded FROM image
	{ echo "ARG A=${x:0:5000}"; echo 'FROM img$A'; } > Dockerfile
	run -3 --separate-stderr "$HYPR_PARSE" -f Dockerfile
	[ "$stderr" = 'hypr-parse: Dockerfile:2: FROM img$A...: longer than 4096 bytes once expanded' ]
}
