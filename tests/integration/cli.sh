#!/bin/bash
# The command line itself, without booting anything: help for every command,
# `help` and `version`, did-you-mean for mistyped commands, the manual page
# written from the help texts, bash completion, and what `make install` puts
# where.
. "$(dirname "$0")/../lib/common.sh"
dir=$(scratch)

cmds=$("$AMIFORGE" help | sed -n 's/^  \([a-z][a-z-]*\)  .*/\1/p')
check_eq "help: lists every command" "$(echo $cmds)" \
	"build validate run attach component inspect convert publish cache clean sbom diff report pipeline lifecycle aws help version"

for c in $cmds; do
	out=$("$AMIFORGE" help "$c" 2>&1)
	rc=$?
	check_eq "help $c: exit 0" "$rc" 0
	check_contains "help $c: describes it" "$out" "usage: amiforge"
	out2=$("$AMIFORGE" "$c" --help 2>&1)
	check_eq "help $c: same text as $c --help" "$out2" "$out"
done
out=$("$AMIFORGE" component validate --help 2>&1)
rc=$?
check_eq "component validate --help: exit 0" "$rc" 0
check_contains "component validate --help: describes it" "$out" "file:line:col"

out=$("$AMIFORGE" version)
check_eq "version: exit 0 and one line" "$?:$(echo "$out" | wc -l)" "0:1"
check_eq "version: same as --version" "$("$AMIFORGE" --version)" "$out"

out=$("$AMIFORGE" biuld 2>&1)
rc=$?
check_eq "mistyped command: exit 2" "$rc" 2
check_eq "mistyped command: one line with a hint" "$out" \
	"amiforge: error: unknown command 'biuld'; did you mean 'build'? (see 'amiforge help')"
out=$("$AMIFORGE" frobnicate 2>&1)
check_eq "unknown command: no hint when nothing is close" "$out" \
	"amiforge: error: unknown command 'frobnicate' (see 'amiforge help')"
out=$("$AMIFORGE" component valdate x.yaml 2>&1)
check_eq "mistyped subcommand: hint" "$?:$out" \
	"2:amiforge: error: unknown subcommand 'component valdate'; did you mean 'validate'?"
out=$("$AMIFORGE" help biuld 2>&1)
check_eq "help of a mistyped command: exit 2 with the hint" "$?" 2
check_contains "help of a mistyped command: hint" "$out" "did you mean 'build'?"

# The manual page: written from the help texts, renders without warnings,
# and has a section per command.
man1=$dir/amiforge.1
if python3 "$TOP/doc/mkman.py" "$AMIFORGE" >"$man1"; then
	pass "man page: written"
else
	fail "man page: doc/mkman.py failed"
fi
warn=$(groff -man -ww -z "$man1" 2>&1)
check_eq "man page: groff finds nothing to warn about" "$warn" ""
for c in $cmds; do
	case $c in help | version) continue ;; esac
	check "man page: section for $c" grep -qx ".SH \"AMIFORGE ${c^^}\"" "$man1"
done
text=$(MANWIDTH=80 man -l "$man1" 2>/dev/null)
check_contains "man page: renders the build options" "$text" "--on-error=MODE"

# Completion: commands, subcommands and options come from the binary.
comp() {	# WORDS... : the completions for the last word
	bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _amiforge;
		printf "%s\n" "${COMPREPLY[@]}"' _ "$TOP/doc/amiforge.bash" "$@"
}
check_eq "completion: a command" "$(comp "$AMIFORGE" bui)" "build"
check_eq "completion: commands starting with c" "$(comp "$AMIFORGE" c | sort | tr '\n' ' ')" \
	"cache clean component convert "
check_eq "completion: a subcommand" "$(comp "$AMIFORGE" component v)" "validate"
check_eq "completion: an option of the command" "$(comp "$AMIFORGE" build --no-c)" "--no-cache"
check_eq "completion: pipeline subcommands" "$(comp "$AMIFORGE" pipeline "" | sort | tr '\n' ' ')" \
	"deliver install run status uninstall "
check_eq "completion: a pipeline option" "$(comp "$AMIFORGE" pipeline install f --sch)" "--scheduler"
check_eq "completion: lifecycle subcommands" "$(comp "$AMIFORGE" lifecycle "" | sort | tr '\n' ' ')" "apply plan "
check_eq "completion: options of another command" "$(comp "$AMIFORGE" inspect --ca)" "--canary"
touch "$dir/recipe-a.yaml"
check_eq "completion: files otherwise" "$(comp "$AMIFORGE" build "$dir/recipe-")" "$dir/recipe-a.yaml"

# make install: one binary (the agent is inside it), the page, the completion.
if make -s -C "$TOP" install DESTDIR="$dir/root" PREFIX=/usr >"$dir/install.log" 2>&1; then
	got=$(cd "$dir/root" && find . -type f -not -path './usr/share/amiforge/*' | sort | tr '\n' ' ')
	check_eq "make install: the files" "$got" \
		"./usr/bin/amiforge ./usr/share/bash-completion/completions/amiforge ./usr/share/man/man1/amiforge.1 "
	check_eq "make install: the component catalog" \
		"$(cd "$dir/root/usr/share/amiforge/components" && find . -name '*.yaml' | sort | tr '\n' ' ')" \
		"$(cd "$TOP/catalog" && find . -name '*.yaml' | sort | tr '\n' ' ')"
	check "make install: the installed binary runs" sh -c '"$1" version >/dev/null' _ "$dir/root/usr/bin/amiforge"
else
	fail "make install: $(tail -n 3 "$dir/install.log")"
fi

finish
