# bash completion for amiforge. Commands and subcommands come from the
# binary's command table ('amiforge help --commands [CMD]'), options and their
# values (--format raw|qcow2|...) from its help texts (tests/integration/cli.sh
# checks every option the parser takes is in them), so they stay true to the
# installed binary; files of the kind a command reads otherwise.
# Installed as $(PREFIX)/share/bash-completion/completions/amiforge.

_amiforge_words() {	# the --options one help text names
	"$1" "${@:2}" --help 2>/dev/null | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u
}

_amiforge_values() {	# PROG CMD OPTION: the values its help lists (--opt a|b|c)
	"$1" "$2" --help 2>/dev/null |
		grep -oE -- "$3[ =][A-Za-z0-9_.-]+(\|[A-Za-z0-9_.-]+)+" | head -n 1 |
		cut -c$((${#3} + 2))- | tr '|' '\n' | grep -v '\.\.\.'
}

_amiforge() {
	local cur prev prog cmd i words
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD - 1]}
	prog=${COMP_WORDS[0]}
	cmd=
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		-*) ;;
		*) cmd=${COMP_WORDS[i]}; break ;;
		esac
	done
	if [ -z "$cmd" ]; then
		case $cur in
		-*) words="--verbose --quiet --help --version" ;;
		*) words=$("$prog" help --commands 2>/dev/null) ;;
		esac
		COMPREPLY=($(compgen -W "$words" -- "$cur"))
		return
	fi
	if [ "$i" -eq $((COMP_CWORD - 1)) ]; then
		case $cmd in
		help) words=$("$prog" help --commands 2>/dev/null) ;;
		*) words=$("$prog" help --commands "$cmd" 2>/dev/null) ;;
		esac
		if [ -n "${words:-}" ] && [[ $cur != -* ]]; then
			COMPREPLY=($(compgen -W "$words" -- "$cur"))
			return
		fi
	fi
	# An option's value: --format <TAB>, --on-error=<TAB> (bash splits at =).
	[ "$prev" = "=" ] && prev=${COMP_WORDS[COMP_CWORD - 2]}
	if [[ $prev == --* ]]; then
		words=$(_amiforge_values "$prog" "$cmd" "$prev")
		if [ -n "$words" ]; then
			COMPREPLY=($(compgen -W "$words" -- "$cur"))
			return
		fi
	fi
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$(_amiforge_words "$prog" "$cmd")" -- "$cur"))
		return
	fi
	# The kind of file the command reads; directories to walk into.
	case $cmd in
	build | validate | component | pipeline | lifecycle) words="yaml yml" ;;
	inspect | convert | sbom | run | publish) words="qcow2 raw img vmdk vhd vhdx ova" ;;
	attach | clean | report | init) words=" " ;;
	*) COMPREPLY=($(compgen -f -- "$cur")); return ;;
	esac
	COMPREPLY=($(compgen -d -- "$cur"))
	for i in $words; do
		COMPREPLY+=($(compgen -f -X "!*.$i" -- "$cur"))
	done
}
complete -o filenames -F _amiforge amiforge
