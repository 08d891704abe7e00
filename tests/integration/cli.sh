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
check_eq "version: exit 0, five lines" "$?:$(echo "$out" | wc -l)" "0:5"
check_eq "version: the first line is --version's" "$("$AMIFORGE" --version)" "$(head -n 1 <<<"$out")"
for arch in x86_64 aarch64; do
	check "version: the $arch agent carried (size, protocol, digest)" \
		grep -qE "^agent $arch: built in, [0-9]+ bytes, protocol [0-9]+\.\.[0-9]+, digest [0-9a-f]{16}\$" <<<"$out"
done
for lib in libvirt libguestfs libcurl OpenSSL libyaml jansson libxml2 libarchive libdeflate; do
	check "version: $lib's version" grep -qE "(^|, )$lib[ /][0-9]+\.[0-9]+" <<<"$out"
done

# Every subcommand from the command table: --help exits 0 with usage,
# examples and the exit statuses; `help CMD SUB` says the same.
check_eq "help --commands: the commands, one a line" "$("$AMIFORGE" help --commands | tr '\n' ' ')" "$(echo $cmds) "
check_eq "help --commands cache: its subcommands" "$("$AMIFORGE" help --commands cache | tr '\n' ' ')" \
	"list prune fetch dir "
declare -A subs
for c in $cmds; do
	subs[$c]=$("$AMIFORGE" help --commands "$c")
	out=$("$AMIFORGE" "$c" --help 2>/dev/null)
	check_contains "$c --help: the exit statuses" "$out" "Exit status"
	[ "$c" = version ] || check_contains "$c --help: examples" "$out" "Examples:
  amiforge $c"
	for s in ${subs[$c]}; do
		out=$("$AMIFORGE" "$c" "$s" --help 2>/dev/null)
		rc=$?
		check_eq "$c $s --help: exit 0" "$rc" 0
		check_contains "$c $s --help: usage" "$out" "usage: amiforge"
		check_contains "$c $s --help: the exit statuses" "$out" "Exit status"
	done
done
check_eq "help component run: the same text as component run --help" \
	"$("$AMIFORGE" help component run 2>&1)" "$("$AMIFORGE" component run --help 2>&1)"

# An unknown option, for every command and subcommand: exit 2, one line on
# stderr naming it, nothing on stdout.
bad_option() {	# NAME WANT ARGS...
	local name=$1 want=$2 out rc
	shift 2
	out=$("$AMIFORGE" "$@" 2>"$dir/err" </dev/null)
	rc=$?
	check_eq "$name: exit 2, one line, nothing on stdout" \
		"$rc:$(wc -l <"$dir/err"):${#out}" "2:1:0"
	check_contains "$name: the line" "$(cat "$dir/err")" "$want"
}
for c in $cmds; do
	[ "$c" = help ] && continue
	bad_option "$c --bogus-opt" "$c: unknown option '--bogus-opt'" "$c" --bogus-opt
	for s in ${subs[$c]}; do
		bad_option "$c $s --bogus-opt" "$c: unknown option '--bogus-opt'" "$c" "$s" --bogus-opt
	done
done
bad_option "did you mean an option" \
	"amiforge: error: build: unknown option '--no-cahce'; did you mean '--no-cache'? (see 'amiforge help build')" \
	build --no-cahce x.yaml
bad_option "did you mean an option of a subcommand" \
	"pipeline: unknown option '--jsn'; did you mean '--json'?" pipeline status --jsn f.yaml
bad_option "an option without its value" \
	"amiforge: error: publish: option '--region' needs a value (see 'amiforge help publish')" \
	publish d.raw --region
bad_option "a value given to a flag" "inspect: option '--json' takes no value" inspect --json=yes d.raw
bad_option "a mistyped subcommand" \
	"amiforge: error: unknown subcommand 'cache lst'; did you mean 'list'? (see 'amiforge help cache')" \
	cache lst
bad_option "a publish option's value: did you mean" \
	"amiforge: error: --volume-type 'gp4' is not one of gp3, gp2, io1, io2, st1, sc1, standard; did you mean 'gp3'? (see 'amiforge help publish')" \
	publish d.raw --volume-type gp4

# Every option a command's parser takes is in its help (which the man page
# and shell completion read): the option tables in the sources against the
# help texts.
declare -A files=([attach]="attach" [aws]="aws sigv4|aws whoami" [build]="build" [cache]="cache"
	[clean]="clean" [component]="component run|component list|component show|component validate"
	[convert]="convert" [init]="init" [inspect]="inspect" [pipeline]="pipeline|lifecycle"
	[publish]="publish" [report]="report" [run]="run" [sbom]="sbom|diff" [validate]="validate")
for f in "${!files[@]}"; do
	help=
	IFS='|' read -ra cs <<<"${files[$f]}"
	for c in "${cs[@]}"; do help+=$("$AMIFORGE" $c --help 2>&1); done
	opts=$(grep -oE '\{ "[a-z][a-z0-9-]*", (no|required|optional)_argument' "$TOP/builder/cli/cmd-$f.c" |
		cut -d'"' -f2 | grep -vx help)
	[ "$f" = publish ] && opts+=" $(grep -oE '\.flag = "[a-z-]+"' "$TOP/builder/publish/publish-opts.c" | cut -d'"' -f2)"
	missing=
	for o in $opts; do
		grep -qE -- "--$o([^a-z-]|$)" <<<"$help" || missing+=" --$o"
	done
	check_eq "cmd-$f.c: every option it parses ($(wc -w <<<"$opts")) is in its help" "$missing" ""
done

# publish: the command's options and a recipe's publish: keys are one table.
out=$("$AMIFORGE" publish --help)
check "publish --help: each option with its recipe key" grep -qE '^  --volume-size GIB +volume_size$' <<<"$out"
check "publish --help: an option only the command has" \
	grep -qE '^  --copy-to REGION\[=KMS_KEY\] +\(command only\)$' <<<"$out"
keys=$(sed -nE 's/^  --[a-z-]+( [^ ]+)? +([a-z_0-9]+)$/\2/p' <<<"$out" | sort | tr '\n' ' ')
check_eq "publish --help: the recipe keys" "$keys" \
	"architecture boot_mode bucket create_bucket description ena encrypted imds_v2 keep_object kms_key_id license_type name parallel parent_snapshot part_size platform prefix profile region role root_device sriov tags tpm via volume_size volume_type "
mkdir -p "$dir/pub"
cat >"$dir/pub/all.yaml" <<EOF
name: pub
version: 1.0.0
parent: $TOP/tests/recipes/images/empty.raw
publish:
  via: import-image
  bucket: my-images
  prefix: amiforge/pub/
  region: eu-west-1
  profile: build
  role: vmimport
  platform: Linux
  license_type: BYOL
  name: "pub-{{ version }}"
  description: a test
  tags: {team: web}
  architecture: x86_64
  boot_mode: uefi
  root_device: /dev/xvda
  volume_size: 16
  volume_type: gp3
  tpm: true
  ena: true
  sriov: false
  imds_v2: false
  encrypted: true
  kms_key_id: alias/x
  part_size: 16M
  parallel: 4
  create_bucket: false
  keep_object: true
  parent_snapshot: auto
EOF
check "recipe publish: every key of the table validates" "$AMIFORGE" validate "$dir/pub/all.yaml"
for k in $keys; do
	check "recipe publish: the test recipe sets $k" grep -q "^  $k:" "$dir/pub/all.yaml"
done
# A disk of a format the route does not take (target.h's formats column):
# one line naming what it does take, before anything is sent.
qemu-img create -q -f vhdx "$dir/pub/d.vhdx" 16M
for via in ebs import-snapshot; do
	out=$("$AMIFORGE" publish "$dir/pub/d.vhdx" --via "$via" --name cli-test --bucket cli-test 2>&1)
	rc=$?
	want="qcow2, raw, vmdk, vhd"
	[ "$via" = ebs ] || want="vmdk, vhd, raw, qcow2"
	check_eq "publish --via $via of a VHDX: exit 1, the formats the route takes" "$rc:$out" \
		"1:amiforge: error: disk '$dir/pub/d.vhdx' is vhdx: publish --via $via takes $want (amiforge convert)"
done
sed 's/^  volume_size: 16$/  volume_size: 0/' "$dir/pub/all.yaml" >"$dir/pub/bad.yaml"
out=$("$AMIFORGE" validate "$dir/pub/bad.yaml" 2>&1)
check_eq "recipe publish: a bad value: exit 2, file:line:col" "$?:$out" \
	"2:amiforge: error: $dir/pub/bad.yaml:19:16: publish.volume_size number '0' out of range [1, 65536]"
sed 's/^  keep_object: true$/  copy_to: [us-east-1]/' "$dir/pub/all.yaml" >"$dir/pub/cli.yaml"
out=$("$AMIFORGE" validate "$dir/pub/cli.yaml" 2>&1)
check_eq "recipe publish: a command-only option says where a recipe says it" "$?:$out" \
	"2:amiforge: error: $dir/pub/cli.yaml:30:3: publish.copy_to: a recipe distributes in its distribution: section (regions: [{region: ...}])"
out=$("$AMIFORGE" build "$dir/pub/bad.yaml" 2>&1)
check_eq "build of a recipe validate refuses: exit 2, the same line" "$?:$out" \
	"2:amiforge: error: $dir/pub/bad.yaml:19:16: publish.volume_size number '0' out of range [1, 65536]"

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
	"2:amiforge: error: unknown subcommand 'component valdate'; did you mean 'validate'? (see 'amiforge help component')"
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
check_contains "man page: a subcommand's own help (component run)" "$text" \
	"Run AWSTOE documents as Image Builder would"
check_contains "man page: the publish options with their recipe keys" "$text" "--volume-size GIB"
check "man page: the exit status table, run's and attach's own" \
	grep -q "exit with the command's own status, 124 when" "$man1"

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
out=$(cd "$TOP/tests" && "$AMIFORGE" validate --check-parent recipes/valid/minimal.yaml \
	--var parent=../images/empty.raw 2>&1)
check_eq "validate --var parent=REL: not relative to the recipe" "$?:$out" \
	"2:amiforge: error: recipes/valid/minimal.yaml:3:9: parent '../images/empty.raw': No such file or directory (value set by --var parent)"

# validate checks a parent path's form; a parent not there yet (make demo
# writes the demo's) is a note, an error only with --check-parent.
sed "s|^parent: .*|parent: not-there-yet.qcow2|" "$TOP/tests/recipes/valid/minimal.yaml" >"$dir/later.yaml"
out=$("$AMIFORGE" validate --json "$dir/later.yaml" 2>/dev/null)
check_eq "validate: a parent not there yet: valid, with a note" \
	"$?:$(jq -r '[.valid, .notes[0]] | @tsv' <<<"$out")" \
	"$(printf "0:true\tparent '%s' does not exist yet: the build needs it (--check-parent makes this an error)" "$dir/not-there-yet.qcow2")"
out=$("$AMIFORGE" validate --check-parent "$dir/later.yaml" 2>&1)
check_eq "validate --check-parent: a missing parent: exit 2, file:line:col" "$?:$out" \
	"2:amiforge: error: $dir/later.yaml:3:9: parent 'not-there-yet.qcow2': No such file or directory"
mkdir "$dir/adir.qcow2"
sed "s|^parent: .*|parent: adir.qcow2|" "$TOP/tests/recipes/valid/minimal.yaml" >"$dir/dirparent.yaml"
out=$("$AMIFORGE" validate "$dir/dirparent.yaml" 2>&1)
check_eq "validate: a parent that is there is still checked (a directory)" "$?:$out" \
	"2:amiforge: error: $dir/dirparent.yaml:3:9: parent 'adir.qcow2': not a regular file"
out=$("$AMIFORGE" build "$dir/later.yaml" --output "$dir/b" 2>&1)
check_eq "build: a missing parent is an error (exit 2, before anything)" "$?:$out" \
	"2:amiforge: error: $dir/later.yaml:3:9: parent 'not-there-yet.qcow2': No such file or directory"

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
check_eq "completion: the subcommands of another command (the table)" \
	"$(comp "$AMIFORGE" aws "" | tr '\n' ' ')" "sigv4 whoami "
check_eq "completion: an option's values (--format)" \
	"$(comp "$AMIFORGE" convert d.qcow2 --format v | tr '\n' ' ')" "vmdk vhd vhdx "
check_eq "completion: an option's values after = (--on-error=)" \
	"$(comp "$AMIFORGE" build r.yaml --on-error = a | tr '\n' ' ')" "abort ask "
check_eq "completion: a publish option's values (the table)" \
	"$(comp "$AMIFORGE" publish d.raw --volume-type io | tr '\n' ' ')" "io1 io2 "
mkdir -p "$dir/kinds/sub"
touch "$dir/kinds/r.yaml" "$dir/kinds/d.qcow2" "$dir/kinds/notes.txt"
check_eq "completion: file kinds: recipes for build" \
	"$(comp "$AMIFORGE" build "$dir/kinds/" | sort | tr '\n' ' ')" "$dir/kinds/r.yaml $dir/kinds/sub "
check_eq "completion: file kinds: disks for inspect" \
	"$(comp "$AMIFORGE" inspect "$dir/kinds/" | sort | tr '\n' ' ')" "$dir/kinds/d.qcow2 $dir/kinds/sub "
check_eq "completion: file kinds: directories for clean" \
	"$(comp "$AMIFORGE" clean "$dir/kinds/" | tr '\n' ' ')" "$dir/kinds/sub "

# zsh: the same answers from doc/_amiforge, its compadd and _files stood in
# for (they print what they are given) so that no terminal is needed.
zcomp() {	# WORDS... : what the zsh completion offers for the last word
	zsh -f -c 'compadd() { local w; [[ $1 == -- ]] && shift
			for w; do [[ $w == "$PREFIX"* ]] && print -r -- "$w"; done; }
		_files() { print -r -- "(files $*)"; }
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
	check_eq "zsh completion: recipes for build" "$(zcomp "$AMIFORGE" build rec)" \
		"(files -g *.(yaml|yml)) "
	check_eq "zsh completion: disks for inspect" "$(zcomp "$AMIFORGE" inspect d)" \
		"(files -g *.(qcow2|raw|img|vmdk|vhd|vhdx|ova)) "
	check_eq "zsh completion: an option's values" "$(zcomp "$AMIFORGE" convert d.qcow2 --format v)" \
		"vhd vhdx vmdk "
	check_eq "zsh completion: subcommands from the table" "$(zcomp "$AMIFORGE" cache '')" \
		"dir fetch list prune "
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
