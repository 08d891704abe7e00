#!/bin/bash
# amiforge init: a starter recipe, a component and its test that validate
# accepts, written from flags (--yes) or from a dialogue on a terminal
# (driven here under a pseudo-terminal by python3's pty module); existing
# files are never overwritten; answers the recipe refuses leave nothing.
# Boots nothing, downloads nothing.
. "$(dirname "$0")/../lib/common.sh"
dir=$(scratch)
img=$TOP/tests/recipes/images/empty.raw

# --yes with the defaults: Debian 12's cloud image, with its sums file.
out=$(cd "$dir" && "$AMIFORGE" init def --yes 2>&1)
check_eq "init --yes: exit 0" "$?" 0
check_contains "init --yes: says what it wrote" "$out" "wrote def/recipe.yaml"
check_eq "init --yes: the files" "$(cd "$dir/def" && find . -type f | sort | tr '\n' ' ')" \
	"./components/hello-test.yaml ./components/hello.yaml ./recipe.yaml "
check_eq "init --yes: validate accepts it" \
	"$("$AMIFORGE" validate --json "$dir/def/recipe.yaml" | jq -r '[.valid, .name, .components, .tests] | @tsv')" \
	"$(printf 'true\tmy-image\t1\t1')"
check "init --yes: the default parent is checked against Debian's sums" \
	grep -qx '  checksum_url: "https://cloud.debian.org/images/cloud/bookworm/latest/SHA512SUMS".*' \
	"$dir/def/recipe.yaml"
check "init --yes: the documents validate" "$AMIFORGE" component validate \
	"$dir/def/components/hello.yaml" "$dir/def/components/hello-test.yaml"

# Every answer as a flag.
"$AMIFORGE" init "$dir/flags" --yes --name web --version 2.1.0 --parent "$img" --cpus 4 \
	--memory 1536 --formats qcow2,vmdk >/dev/null 2>&1
check_eq "init flags: exit 0" "$?" 0
out=$("$AMIFORGE" validate --json "$dir/flags/recipe.yaml")
check_eq "init flags: validate accepts name, version and the parent path" \
	"$(jq -r '[.valid, .name, .version, .parent] | @tsv' <<<"$out")" \
	"$(printf 'true\tweb\t2.1.0\t%s' "$img")"
check_eq "init flags: vm and formats as given" \
	"$(grep -E '^  (cpus|memory|formats):' "$dir/flags/recipe.yaml" | tr '\n' ' ' | tr -s ' ')" \
	' cpus: 4 memory: 1536 # MiB formats: ["qcow2", "vmdk"] '

# Nothing is overwritten.
echo "mine" >"$dir/flags/components/hello.yaml.keep"
cp "$dir/flags/recipe.yaml" "$dir/recipe.before"
out=$("$AMIFORGE" init "$dir/flags" --yes --name other 2>&1)
check_eq "init again: exit 1" "$?" 1
check_contains "init again: says which file exists" "$out" "recipe.yaml': File exists"
check "init again: the recipe is untouched" cmp -s "$dir/recipe.before" "$dir/flags/recipe.yaml"

# Answers the recipe refuses: the recipe's own message, nothing left behind.
out=$("$AMIFORGE" init "$dir/badname" --yes --name "my image" --parent "$img" 2>&1)
check_eq "init bad name: exit 2" "$?" 2
check_contains "init bad name: file:line:col" "$out" "$dir/badname/recipe.yaml:6:7: name 'my image'"
check_eq "init bad name: nothing left" "$(find "$dir/badname" -type f | wc -l)" 0
out=$("$AMIFORGE" init "$dir/badurl" --yes --parent https://example.com/x.qcow2 2>&1)
check_eq "init URL without a checksum: exit 2" "$?" 2
check_contains "init URL without a checksum: says so" "$out" "needs 'sha256', 'sha512' or 'checksum_url'"
out=$("$AMIFORGE" init "$dir/badcpu" --yes --cpus "2
parent: /etc/passwd" 2>&1)
check_eq "init --cpus not a number: exit 2" "$?" 2
check_contains "init --cpus not a number: says so" "$out" "expected a whole number"
check_eq "init --cpus not a number: nothing written" "$(find "$dir/badcpu" -type f 2>/dev/null | wc -l)" 0

# Not a terminal and no --yes: asks nothing, writes nothing.
out=$("$AMIFORGE" init "$dir/notty" </dev/null 2>&1)
check_eq "init without a terminal: exit 2" "$?" 2
check_contains "init without a terminal: says to use --yes" "$out" "--yes"
check "init without a terminal: nothing written" test ! -e "$dir/notty/recipe.yaml"

# The dialogue under a pseudo-terminal: each question answered in turn.
cat >"$dir/drive.py" <<'EOF'
import os, pty, select, sys, time
amiforge, target, img = sys.argv[1:4]
answers = [("Recipe name", "dialog-web"), ("Version", ""), ("Base image", img),
           ("vCPUs", "3"), ("memory", ""), ("Output formats", "raw"), ("Write it?", "y")]
pid, fd = pty.fork()
if pid == 0:
    os.execv(amiforge, [amiforge, "init", target])
seen, i, deadline = b"", 0, time.time() + 30
while time.time() < deadline:
    r, _, _ = select.select([fd], [], [], 0.5)
    if r:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        seen += data
    while i < len(answers) and answers[i][0].encode() in seen.split(b"\n")[-1]:
        os.write(fd, answers[i][1].encode() + b"\n")
        seen += b"\n"
        i += 1
_, status = os.waitpid(pid, 0)
print("asked %d exit %d" % (i, os.waitstatus_to_exitcode(status)))
EOF
out=$(python3 "$dir/drive.py" "$AMIFORGE" "$dir/dialog" "$img" 2>&1)
check_eq "init dialogue: every question asked, exit 0" "$(tail -n 1 <<<"$out")" "asked 7 exit 0"
out=$("$AMIFORGE" validate --json "$dir/dialog/recipe.yaml")
check_eq "init dialogue: validate accepts the answers (Enter keeps the default)" \
	"$(jq -r '[.valid, .name, .version, .parent] | @tsv' <<<"$out")" \
	"$(printf 'true\tdialog-web\t1.0.0\t%s' "$img")"
check_eq "init dialogue: vm and formats from the answers" \
	"$(grep -E '^  (cpus|memory|formats):' "$dir/dialog/recipe.yaml" | tr '\n' ' ' | tr -s ' ')" \
	' cpus: 3 memory: 2048 # MiB formats: ["raw"] '

finish
