#!/bin/bash
# The command line itself, without booting anything: help for every command,
# `help` and `version`, did-you-mean for mistyped commands, the manual page
# written from the help texts, bash completion, and what `make install` puts
# where.
. "$(dirname "$0")/../lib/common.sh"
dir=$(scratch)

cmds=$("$AMIFORGE" help | sed -n 's/^  \([a-z][a-z-]*\)  .*/\1/p')
check_eq "help: lists every command" "$(echo $cmds)" \
	"build validate init run attach component inspect convert publish cache clean sbom diff report pipeline lifecycle aws help version"

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

# validate --json: one object on stdout, the same exit codes as without.
out=$("$AMIFORGE" validate --json --var unused=1 "$TOP/tests/recipes/valid/minimal.yaml" 2>/dev/null)
check_eq "validate --json: a valid recipe exits 0" "$?" 0
check_eq "validate --json: valid, name, version, counts" \
	"$(jq -r '[.valid, .name, .version, .components, .tests, (.notes | length)] | @tsv' <<<"$out")" \
	"$(printf 'true\tmin\t0.0.1\t0\t0\t1')"
check_eq "validate --json: the parent" "$(jq -r .parent <<<"$out")" \
	"$TOP/tests/recipes/images/empty.raw"
bad=$TOP/tests/recipes/invalid/publish-region-100.yaml
out=$("$AMIFORGE" validate --json "$bad" 2>/dev/null)
check_eq "validate --json: an invalid recipe exits 2" "$?" 2
check_eq "validate --json: invalid, with the line and column" \
	"$(jq -r '[.valid, .line, .col] | @tsv' <<<"$out")" "$(printf 'false\t6\t11')"
check_eq "validate --json: the message" "$(jq -r .error <<<"$out")" \
	"$bad:6:11: publish.region 'eu-west-100' is not an AWS region name (e.g. eu-west-1)"
out=$("$AMIFORGE" validate --json "$dir/missing.yaml" 2>/dev/null)
check_eq "validate --json: a missing file: exit 2, no position" "$?:$(jq -c '[.valid, .line]' <<<"$out")" \
	"2:[false,null]"

# validate checks the recipe's parameters against each document's.
mkdir -p "$dir/params"
cat >"$dir/params/doc.yaml" <<'EOF'
name: needs
schemaVersion: 1.0
parameters:
  - Port:
      type: string
      default: "8080"
  - Site:
      type: string
phases:
  - name: build
    steps:
      - name: Echo
        action: ExecuteBash
        inputs:
          commands:
            - echo "{{ Port }} {{ Site }}"
EOF
params_recipe() {	# NAME PARAMETERS-FLOW-MAP
	printf 'name: p\nversion: 1.0.0\nparent: %s\ncomponents:\n  - path: doc.yaml\n    parameters: %s\n' \
		"$TOP/tests/recipes/images/empty.raw" "$2" >"$dir/params/$1.yaml"
	echo "$dir/params/$1.yaml"
}
f=$(params_recipe ok '{Port: "80", Site: "t"}')
check "validate parameters: declared ones, the required one set" "$AMIFORGE" validate "$f"
f=$(params_recipe typo '{Prot: "80", Site: "t"}')
out=$("$AMIFORGE" validate "$f" 2>&1)
check_eq "validate parameters: a misspelled one: exit 2, file:line:col, did you mean" "$?:$out" \
	"2:amiforge: error: $f:6:18: component 'doc.yaml' has no parameter 'Prot'; did you mean 'Port'?"
f=$(params_recipe missing '{Port: "80"}')
out=$("$AMIFORGE" validate "$f" 2>&1)
check_eq "validate parameters: one without a default not set: exit 2, at the document" "$?:$out" \
	"2:amiforge: error: $f:5:5: component 'doc.yaml' needs parameter 'Site' (it has no default): set it under parameters: or with --var Site=VALUE"
check "validate parameters: --var sets the required one" "$AMIFORGE" validate --var Site=t "$f"

# A path given with --var is relative to the current directory, as every
# command-line path is; the same path written in the recipe, to the recipe.
out=$(cd "$TOP/tests" && "$AMIFORGE" validate --json recipes/valid/minimal.yaml \
	--var parent=recipes/images/empty.raw 2>&1)
check_eq "validate --var parent=REL: relative to the current directory" \
	"$(jq -r .parent <<<"$out" 2>&1)" "$TOP/tests/recipes/images/empty.raw"
out=$(cd "$TOP/tests" && "$AMIFORGE" validate recipes/valid/minimal.yaml \
	--var parent=../images/empty.raw 2>&1)
check_eq "validate --var parent=REL: not relative to the recipe" "$?:$out" \
	"2:amiforge: error: recipes/valid/minimal.yaml:3:9: parent '../images/empty.raw': No such file or directory (value set by --var parent)"

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

# zsh: the same answers from doc/_amiforge, its compadd and _files stood in
# for (they print what they are given) so that no terminal is needed.
zcomp() {	# WORDS... : what the zsh completion offers for the last word
	zsh -f -c 'compadd() { local w; [[ $1 == -- ]] && shift
			for w; do [[ $w == "$PREFIX"* ]] && print -r -- "$w"; done; }
		_files() { print -r -- "(files)"; }
		words=("$@"); CURRENT=$#; PREFIX=${words[CURRENT]}
		source "$0"' "$TOP/doc/_amiforge" "$@" | sort | tr '\n' ' '
}
if have zsh "zsh completion"; then
	check_eq "zsh completion: every command" "$(zcomp "$AMIFORGE" '')" \
		"$(tr ' ' '\n' <<<"$cmds" | grep . | sort | tr '\n' ' ')"
	check_eq "zsh completion: commands starting with c" "$(zcomp "$AMIFORGE" c)" \
		"cache clean component convert "
	check_eq "zsh completion: a subcommand" "$(zcomp "$AMIFORGE" component v)" "validate "
	check_eq "zsh completion: an option of the command" "$(zcomp "$AMIFORGE" build --no-c)" \
		"--no-cache "
	check_eq "zsh completion: init's options" "$(zcomp "$AMIFORGE" init --y)" "--yes "
	check_eq "zsh completion: files otherwise" "$(zcomp "$AMIFORGE" build rec)" "(files) "
fi

# make install: one binary (the agent is inside it), the page, the completion.
if make -s -C "$TOP" install DESTDIR="$dir/root" PREFIX=/usr >"$dir/install.log" 2>&1; then
	got=$(cd "$dir/root" && find . -type f -not -path './usr/share/amiforge/*' | sort | tr '\n' ' ')
	check_eq "make install: the files" "$got" \
		"./usr/bin/amiforge ./usr/share/bash-completion/completions/amiforge ./usr/share/man/man1/amiforge.1 ./usr/share/zsh/vendor-completions/_amiforge "
	check_eq "make install: the component catalog" \
		"$(cd "$dir/root/usr/share/amiforge/components" && find . -name '*.yaml' | sort | tr '\n' ' ')" \
		"$(cd "$TOP/catalog" && find . -name '*.yaml' | sort | tr '\n' ' ')"
	check "make install: the installed binary runs" sh -c '"$1" version >/dev/null' _ "$dir/root/usr/bin/amiforge"
else
	fail "make install: $(tail -n 3 "$dir/install.log")"
fi

finish
