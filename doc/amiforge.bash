# bash completion for amiforge. Commands, subcommands and options come from
# amiforge's own help texts, so they stay true to the installed binary.
# Installed as $(PREFIX)/share/bash-completion/completions/amiforge.

_amiforge_words() {	# the --options and subcommands one help text names
	"$1" "${@:2}" --help 2>/dev/null | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u
}

_amiforge() {
	local cur prog cmd i words
	cur=${COMP_WORDS[COMP_CWORD]}
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
		*) words=$("$prog" help 2>/dev/null | sed -n 's/^  \([a-z][a-z-]*\)  .*/\1/p') ;;
		esac
		COMPREPLY=($(compgen -W "$words" -- "$cur"))
		return
	fi
	if [ "$i" -eq $((COMP_CWORD - 1)) ]; then
		case $cmd in
		component) words="validate run" ;;
		cache) words="list prune fetch dir" ;;
		aws) words="sigv4 whoami" ;;
		pipeline) words="run status install uninstall deliver" ;;
		lifecycle) words="plan apply" ;;
		help) words=$("$prog" help 2>/dev/null | sed -n 's/^  \([a-z][a-z-]*\)  .*/\1/p') ;;
		esac
		if [ -n "${words:-}" ] && [[ $cur != -* ]]; then
			COMPREPLY=($(compgen -W "$words" -- "$cur"))
			return
		fi
	fi
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$(_amiforge_words "$prog" "$cmd")" -- "$cur"))
		return
	fi
	COMPREPLY=($(compgen -f -- "$cur"))
}
complete -o filenames -F _amiforge amiforge
