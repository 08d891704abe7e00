#!/bin/bash
# amiforge init: a starter recipe, a component and its test that validate
# accepts, written from flags (--yes) or from a dialogue on a terminal
# (driven here under a pseudo-terminal by python3's pty module), the catalog
# and distribution questions included; existing
# files are never overwritten; answers the recipe refuses leave nothing.
# Boots nothing, downloads nothing.
. "$(dirname "$0")/../lib/common.sh"
dir=$(scratch)
img=$TOP/tests/recipes/images/empty.raw
# The catalog of this tree, wherever the binary under test is (build-asan/...).
export AMIFORGE_COMPONENT_PATH=$TOP/catalog

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
	--memory 1536 --disk-size 6G --driver qemu --formats qcow2,vmdk >/dev/null 2>&1
check_eq "init flags: exit 0" "$?" 0
out=$("$AMIFORGE" validate --json "$dir/flags/recipe.yaml")
check_eq "init flags: validate accepts name, version and the parent path" \
	"$(jq -r '[.valid, .name, .version, .parent] | @tsv' <<<"$out")" \
	"$(printf 'true\tweb\t2.1.0\t%s' "$img")"
check_eq "init flags: vm and formats as given" \
	"$(grep -E '^  (cpus|memory|disk_size|driver|formats):' "$dir/flags/recipe.yaml" | tr '\n' ' ' | tr -s ' ')" \
	' cpus: 4 memory: 1536 # MiB disk_size: 6G driver: qemu # auto: libvirt, else QEMU itself formats: ["qcow2", "vmdk"] '
"$AMIFORGE" init "$dir/baddrv" --yes --parent "$img" --driver kvm >/dev/null 2>&1
check_eq "init --driver kvm: exit 2" "$?" 2
"$AMIFORGE" init "$dir/baddisk" --yes --parent "$img" --disk-size lots >/dev/null 2>&1
check_eq "init --disk-size lots: exit 2" "$?" 2
check_eq "init bad --driver/--disk-size: nothing written" \
	"$(find "$dir/baddrv" "$dir/baddisk" -type f 2>/dev/null | wc -l)" 0

# An AMI, or the AMI an SSM parameter names, as the parent.
"$AMIFORGE" init "$dir/ami" --yes --parent ami-0123456789abcdef0 >/dev/null 2>&1
check_eq "init --parent ami-ID: validate accepts it, the AMI as parent" \
	"$?:$("$AMIFORGE" validate --json "$dir/ami/recipe.yaml" | jq -r '[.valid, .parent] | @tsv')" \
	"$(printf '0:true\tami-0123456789abcdef0')"
"$AMIFORGE" init "$dir/ssm" --yes --parent ssm:/images/debian/latest >/dev/null 2>&1
check_eq "init --parent ssm:NAME: validate accepts it, the parameter as parent" \
	"$?:$("$AMIFORGE" validate --json "$dir/ssm/recipe.yaml" | jq -r '[.valid, .parent] | @tsv')" \
	"$(printf '0:true\t/images/debian/latest')"

# The catalog and distribution answers as flags.
"$AMIFORGE" init "$dir/dist" --yes --parent "$img" --components update-linux,python-3-linux \
	--publish import-snapshot --bucket my-images --region eu-west-1 --ami-name 'web-{{ buildDate }}' \
	--tags team=web,env=prod --copy-to us-east-1,eu-central-1 --share 123456789012 >/dev/null 2>&1
check_eq "init distribution flags: exit 0" "$?" 0
check_eq "init distribution flags: validate accepts it, the catalog components counted" \
	"$("$AMIFORGE" validate --json "$dir/dist/recipe.yaml" | jq -r '[.valid, .components] | @tsv')" \
	"$(printf 'true\t3')"
check_eq "init distribution flags: publish as given" \
	"$(sed -n '/^publish:/,/^$/p' "$dir/dist/recipe.yaml" | grep -v '^#' | tr -s ' ' | tr '\n' '|')" \
	'publish:| via: import-snapshot| region: "eu-west-1"| bucket: "my-images" # VM Import'"'"'s staging bucket| name: "web-{{ buildDate }}"| tags:| "team": "web"| "env": "prod"||'
check_eq "init distribution flags: three regions, each shared" \
	"$(grep -cE '^    - region: "(eu-west-1|us-east-1|eu-central-1)"$' "$dir/dist/recipe.yaml"):$(grep -c 'accounts: \["123456789012"\]' "$dir/dist/recipe.yaml")" \
	"3:3"
out=$("$AMIFORGE" init "$dir/nobucket" --yes --parent "$img" --publish import-image 2>&1)
check_eq "init --publish import-image without --bucket: exit 2, says so" "$?:$out" \
	"2:amiforge: error: init: --publish import-image needs --bucket B (VM Import's staging bucket)"
out=$("$AMIFORGE" init "$dir/badroute" --yes --parent "$img" --publish eb 2>&1)
check_eq "init --publish mistyped: exit 2, did you mean" "$?:$out" \
	"2:amiforge: error: init: --publish 'eb': expected no, ebs, import-snapshot or import-image; did you mean 'ebs'?"
out=$("$AMIFORGE" init "$dir/badcomp" --yes --parent "$img" --components no-such-thing 2>&1)
check_eq "init --components unknown: exit 2" "$?" 2
check_contains "init --components unknown: says what was looked for" "$out" \
	"component 'no-such-thing' version 'x.x.x' not found"
out=$("$AMIFORGE" init "$dir/badregion" --yes --parent "$img" --publish ebs --copy-to mars-1 2>&1)
check_eq "init --copy-to not a region: exit 2, nothing left" \
	"$?:$(find "$dir/badregion" -type f | wc -l)" "2:0"
check_contains "init --copy-to not a region: the recipe's message" "$out" "'mars-1' is not an AWS region name"

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
           ("Catalog components", "update-linux"), ("vCPUs", "3"), ("memory", ""),
           ("disk size", ""), ("Hypervisor driver", "libvirt"),
           ("Output formats", "raw"), ("Publish an AMI", "ebs"), ("Region to publish", "eu-west-1"),
           ("AMI name", ""), ("Tags on the AMI", "team=web"), ("Copy the AMI", "us-east-1"),
           ("Accounts that may launch", "123456789012"), ("Write it?", "y")]
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
if time.time() >= deadline:
    os.kill(pid, 9)     # a question nobody answers: never wait forever
_, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode(errors="replace") + "\n")
print("asked %d exit %d" % (i, os.waitstatus_to_exitcode(status)))
EOF
out=$(python3 "$dir/drive.py" "$AMIFORGE" "$dir/dialog" "$img" 2>&1)
check_eq "init dialogue: every question asked, exit 0" "$(tail -n 1 <<<"$out")" "asked 16 exit 0"
check_contains "init dialogue: the catalog's components are shown" "$out" \
	"The catalog has: chrony-time-linux docker-ce-linux"
out=$("$AMIFORGE" validate --json "$dir/dialog/recipe.yaml")
check_eq "init dialogue: validate accepts the answers (Enter keeps the default)" \
	"$(jq -r '[.valid, .name, .version, .parent, .components] | @tsv' <<<"$out")" \
	"$(printf 'true\tdialog-web\t1.0.0\t%s\t2' "$img")"
check_eq "init dialogue: the catalog component, publish and distribution answers" \
	"$(grep -E '^(  - \{name|  via|  region|  name|    "team"|    - region|        accounts)' \
		"$dir/dialog/recipe.yaml" | tr -s ' ' | tr '\n' '|')" \
	' - {name: "update-linux", version: "1.x.x"} # the catalog'"'"'s| via: ebs| region: "eu-west-1"| name: "{{ name }}-{{ version }}-{{ buildDate }}"| "team": "web"| regions:| - region: "eu-west-1"| accounts: ["123456789012"]| - region: "us-east-1"| accounts: ["123456789012"]|'
# Not publishing: no distribution question is asked.
sed -e 's/("Catalog components", "update-linux")/("Catalog components", "")/' \
    -e 's/("Publish an AMI", "ebs").*$/("Publish an AMI", ""),/' \
    -e '/("AMI name", "")/d' -e '/("Accounts that may launch"/s/.*/           ("Write it?", "y")]/' \
    "$dir/drive.py" >"$dir/drive-nopub.py"
out=$(python3 "$dir/drive-nopub.py" "$AMIFORGE" "$dir/dialog2" "$img" 2>&1)
check_eq "init dialogue, no publishing: no distribution question, exit 0" "$(tail -n 1 <<<"$out")" \
	"asked 11 exit 0"
check "init dialogue, no publishing: validate accepts it" "$AMIFORGE" validate "$dir/dialog2/recipe.yaml"
check_eq "init dialogue, no publishing: publish: only as a comment" \
	"$(grep -cE '^(publish|distribution):' "$dir/dialog2/recipe.yaml")" 0
check_eq "init dialogue: vm and formats from the answers" \
	"$(grep -E '^  (cpus|memory|# disk_size|driver|formats):' "$dir/dialog/recipe.yaml" | tr '\n' ' ' | tr -s ' ')" \
	' cpus: 3 memory: 2048 # MiB # disk_size: 8G (default: the base image'"'"'s size) driver: libvirt # auto: libvirt, else QEMU itself formats: ["raw"] '

finish
