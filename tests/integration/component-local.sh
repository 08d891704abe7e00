#!/bin/bash
# The component engine with the local executor (`amiforge component ... --local`):
#  - every malformed document in tests/component/invalid/ is rejected with the
#    file:line:col and message on its first line ("# expect: L:C: message");
#  - every document in tests/component/run/ runs in a scratch directory and
#    matches the expectations in its leading comments (tests/component/README);
#  - the command line: exit codes, the TOE log folder, --image, examples.
# Reboots through exit 194 / Reboot need a guest (the agent executor).
. "$(dirname "$0")/../lib/common.sh"
cd "$TOP" || exit 1
# No AWS credentials or configuration: S3 actions must fail with a clear
# error (tests/component/run/28-s3-unavailable.yaml); component-s3.sh runs
# them against moto.
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE
export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/nonexistent AWS_SHARED_CREDENTIALS_FILE=/nonexistent
S=$(scratch)
CORPUS=tests/component

# ---- malformed documents ----
n=0
for f in "$CORPUS"/invalid/[0-9]*.yaml; do
	n=$((n + 1))
	exp=$(head -n 1 "$f" | sed -n 's/^# expect: //p')
	pos=${exp%%: *}
	msg=${exp#*: }
	name=component-invalid/$(basename "$f" .yaml)
	if [ -z "$exp" ]; then
		fail "$name: no '# expect:' line"
		continue
	fi
	out=$("$AMIFORGE" component validate "$f" 2>&1)
	rc=$?
	if [ "$rc" != 2 ]; then
		fail "$name: exit status $rc, want 2 ($out)"
		continue
	fi
	case "$out" in
	*"$f:$pos: "*"$msg"*) pass "$name" ;;
	*) fail "$name: got '$out', want '$f:$pos: ...$msg...'" ;;
	esac
done
[ "$n" -ge 40 ] && pass "component-invalid: $n malformed documents (>= 40)" ||
	fail "component-invalid: only $n malformed documents"

# ---- conformance corpus ----
mkdir -p "$S/www"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$S/www" "$port" >"$S/http.log" 2>&1 &
http_pid=$!
at_exit_kill $http_pid
export BASE_URL=http://127.0.0.1:$port
for i in $(seq 50); do
	python3 -c "import urllib.request; urllib.request.urlopen('$BASE_URL/')" 2>/dev/null && break
	sleep 0.1
done

for doc in "$CORPUS"/run/[0-9]*.yaml; do
	base=$(basename "$doc" .yaml)
	d=$S/run-$base
	mkdir -p "$d/work"
	params="Scratch=$d/work"
	grep -q '^  - BaseUrl:' "$doc" && params="$params,BaseUrl=$BASE_URL"
	extra=$(sed -n 's/^# param //p' "$doc" | paste -sd, -)
	[ -n "$extra" ] && params="$params,$extra"
	args=(--local --log-dir "$d/logs" --parameters "$params")
	# the test server is on 127.0.0.1: WebDownload needs the flag for it
	grep -q '^  - BaseUrl:' "$doc" && args+=(--allow-local-sources)
	ph=$(sed -n 's/^# phases = //p' "$doc")
	[ -n "$ph" ] && args+=(--phases "$ph")
	while IFS= read -r line; do
		line=${line//\{\{S\}\}/$d/work}
		line=${line//\{\{W\}\}/$S/www}
		mkdir -p "$S/www"
		bash -c "$line" || fail "component/$base: setup '$line' failed"
	done < <(sed -n 's/^# setup //p' "$doc")
	"$AMIFORGE" component run "$doc" "${args[@]}" >"$d/stdout" 2>"$d/stderr"
	rc=$?
	detailed=$(ls "$d"/logs/TOE_*/detailedoutput.json 2>/dev/null | head -n 1)
	python3 "$CORPUS/check-run.py" "$doc" "$d" "$rc" "${detailed:--}" "$d/stderr" ||
		{ _fails=$((_fails + 1)); sed 's/^/    | /' "$d/stderr" | tail -n 15; }
done

# ---- the command line and the log folder ----
d=$S/cli
mkdir -p "$d"
"$AMIFORGE" component run "$CORPUS/run/01-bash-output.yaml" --local --log-dir "$d/logs" \
	--parameters "Scratch=$d" >"$d/out" 2>"$d/err"
check_eq "component-cli: run exits 0" "$?" 0
logdir=$(ls -d "$d"/logs/TOE_* 2>/dev/null | head -n 1)
case "$(basename "${logdir:-none}")" in
TOE_[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]_[0-9][0-9]-[0-9][0-9]-[0-9][0-9]_UTC-0_*-*-*-*-*)
	pass "component-cli: TOE_<date>_UTC-0_<executionId> folder" ;;
*) fail "component-cli: log folder '${logdir:-none}'" ;;
esac
for f in document.yaml application.log console.log chaining.json detailedoutput.json; do
	check "component-cli: log folder has $f" test -s "$logdir/$f"
done
check "component-cli: document.yaml is the document" cmp -s "$logdir/document.yaml" "$CORPUS/run/01-bash-output.yaml"
check_contains "component-cli: console.log has the command output" "$(cat "$logdir/console.log")" "hello world"
id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["executionId"])' "$logdir/detailedoutput.json")
case "$logdir" in *"_$id") pass "component-cli: folder named after executionId" ;;
*) fail "component-cli: executionId '$id' not in '$logdir'" ;; esac
chain=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["bash-output"]["build"]["Hello"]["outputs"]["stdout"])' "$logdir/chaining.json" 2>&1)
check_eq "component-cli: chaining.json holds step outputs" "$chain" "hello world"
check_contains "component-cli: live progress per step" "$(cat "$d/err")" "build/Hello: Success"
check_contains "component-cli: application.log records steps" "$(cat "$logdir/application.log")" "build/Multi: Success"

"$AMIFORGE" component validate "$CORPUS/invalid/13-unknown-action.yaml" "$CORPUS/run/01-bash-output.yaml" >/dev/null 2>&1
check_eq "component-cli: validate exits 2 when any document is invalid" "$?" 2
out=$("$AMIFORGE" component validate "$CORPUS/run/01-bash-output.yaml" 2>&1)
check_eq "component-cli: validate exits 0 on a valid document" "$?" 0
out=$("$AMIFORGE" component run "$CORPUS/invalid/13-unknown-action.yaml" --local 2>&1)
check_eq "component-cli: run refuses an invalid document with 2" "$?" 2
out=$("$AMIFORGE" component run "$CORPUS/run/01-bash-output.yaml" 2>&1)
check_eq "component-cli: run needs --local or --image" "$?" 2
out=$("$AMIFORGE" component run "$CORPUS/run/01-bash-output.yaml" --local --phases deploy 2>&1)
check_eq "component-cli: unknown phase rejected" "$?" 2
check_contains "component-cli: unknown phase message" "$out" "unknown phase 'deploy'"
out=$("$AMIFORGE" component run "$CORPUS/run/01-bash-output.yaml" --local --parameters novalue 2>&1)
check_eq "component-cli: bad --parameters rejected" "$?" 2
out=$("$AMIFORGE" component run "$CORPUS/run/01-bash-output.yaml" --image /nonexistent.qcow2 --parameters "Scratch=$d" 2>&1)
check_eq "component-cli: --image with a missing image fails" "$?" 1
check_contains "component-cli: --image names the missing image" "$out" "/nonexistent.qcow2"

# ---- WebDownload runs on this host: no local sources unless allowed ----
d=$S/local-sources
mkdir -p "$d"
echo "canary-$$-local-file" >"$d/secret.txt"
printf 'served' >"$S/www/served.txt"
cat >"$d/fetch.yaml" <<'EOF'
name: fetch
schemaVersion: 1.0
parameters:
  - Src: {type: string}
  - Dst: {type: string}
phases:
  - name: build
    steps:
      - name: Get
        action: WebDownload
        inputs:
          - source: "{{ Src }}"
            destination: "{{ Dst }}"
EOF
fetch_doc() {   # SRC DST [flags...]
	local src=$1 dst=$2
	shift 2
	"$AMIFORGE" component run "$d/fetch.yaml" --local --parameters "Src=$src,Dst=$dst" "$@" 2>&1
}
out=$(fetch_doc "$BASE_URL/served.txt" "$d/a.txt")
check_eq "local-sources: loopback http refused by default (exit 1)" "$?" 1
check_contains "local-sources: the refusal names the address and the flag" "$out" \
	"127.0.0.1 is an address of this host or its link (--allow-local-sources allows it)"
check "local-sources: nothing downloaded from loopback" test ! -e "$d/a.txt"
out=$(fetch_doc "$BASE_URL/served.txt" "$d/b.txt" --allow-local-sources)
check_eq "local-sources: loopback http allowed with --allow-local-sources" "$?" 0
check_eq "local-sources: loopback download content" "$(cat "$d/b.txt" 2>/dev/null)" "served"
out=$(fetch_doc "file://$d/secret.txt" "$d/c.txt")
check_eq "local-sources: file:// refused by default (exit 1)" "$?" 1
check_contains "local-sources: file:// refusal names the flag" "$out" "file:// needs --allow-local-sources"
check "local-sources: file:// not copied" test ! -e "$d/c.txt"
out=$(fetch_doc "file://$d/secret.txt" "$d/e.txt" --allow-local-sources)
check_eq "local-sources: file:// allowed with --allow-local-sources" "$?" 0
check_eq "local-sources: file:// content" "$(cat "$d/e.txt" 2>/dev/null)" "canary-$$-local-file"
# A redirect to file:// fails even when local sources are allowed.
rport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 - "$rport" "file://$d/secret.txt" >"$d/redir.log" 2>&1 <<'EOF' &
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(302)
        self.send_header("Location", sys.argv[2])
        self.send_header("Content-Length", "0")
        self.end_headers()
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF
redir_pid=$!
at_exit_kill $redir_pid
for i in $(seq 50); do
	python3 -c "import socket; socket.create_connection(('127.0.0.1', $rport))" 2>/dev/null && break
	sleep 0.1
done
out=$(fetch_doc "http://127.0.0.1:$rport/x" "$d/f.txt" --allow-local-sources)
check_eq "local-sources: redirect to file:// fails (exit 1)" "$?" 1
check "local-sources: redirect to file:// copied nothing" test ! -e "$d/f.txt"
case "$out" in
*"canary-$$-local-file"*) fail "local-sources: redirect to file:// leaked the file: $out" ;;
*) pass "local-sources: redirect to file:// leaks no content" ;;
esac
kill "$redir_pid" 2>/dev/null

# ---- control characters reach the terminal escaped, the logs as they are ----
d=$S/ctl
mkdir -p "$d"
cat >"$d/esc.yaml" <<'EOF'
name: esc
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: Noisy
        action: ExecuteBash
        inputs:
          commands:
            - printf 'out\033]0;owned\007 text\n'
            - printf 'err\033[2J\033[31mred\n' >&2
            - exit 3
EOF
"$AMIFORGE" component run "$d/esc.yaml" --local --log-dir "$d/logs" >"$d/out" 2>"$d/err"
check_eq "ctl-escape: failing step exits 1" "$?" 1
check "ctl-escape: no raw ESC or BEL on the terminal (stderr)" \
	bash -c '! grep -q "[[:cntrl:]]" <(tr -d "\n\t" <"$1")' _ "$d/err"
check_contains "ctl-escape: the failure shows the escape as \\x1b" "$(cat "$d/err")" 'err\x1b[2J\x1b[31mred'
check "ctl-escape: console.log keeps the raw output" \
	grep -q $'out\033]0;owned\007 text' "$d"/logs/TOE_*/console.log
# A YAML key holding ESC (double-quoted "\e") in an error message.
printf 'name: x\nschemaVersion: 1.0\n"k\\e[2Jz": 1\n"k\\e[2Jz": 2\nphases: []\n' >"$d/dup.yaml"
"$AMIFORGE" component validate "$d/dup.yaml" >"$d/vout" 2>"$d/verr"
check_eq "ctl-escape: duplicate YAML key refused" "$?" 2
check_contains "ctl-escape: the YAML key is shown escaped" "$(cat "$d/verr")" "duplicate key 'k\\x1b[2Jz'"
check "ctl-escape: no raw ESC in the validate message" \
	bash -c '! grep -q "[[:cntrl:]]" <(tr -d "\n\t" <"$1")' _ "$d/verr"

# ---- the scratch directory on this host is made with mkdtemp ----
d=$S/workdir
mkdir -p "$d/tmp"
cat >"$d/doc.yaml" <<'EOF'
name: where
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: Where
        action: ExecuteBash
        inputs:
          commands:
            - pwd
            - stat -c '%a %U' .
EOF
TMPDIR=$d/tmp "$AMIFORGE" component run "$d/doc.yaml" --local --log-dir "$d/logs" >"$d/out" 2>"$d/err"
check_eq "component-workdir: run exits 0" "$?" 0
wd=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["where"]["build"]["Where"]["outputs"]["stdout"])' \
	"$(ls "$d"/logs/TOE_*/chaining.json | head -n 1)" 2>&1)
dir=${wd%%$'\n'*}
case "$dir" in
"$d"/tmp/amiforge-toe-*-[A-Za-z0-9][A-Za-z0-9][A-Za-z0-9][A-Za-z0-9][A-Za-z0-9][A-Za-z0-9])
	pass "component-workdir: work directory made by mkdtemp under \$TMPDIR ($dir)" ;;
*) fail "component-workdir: work directory '$dir' is not a mkdtemp name under $d/tmp" ;;
esac
check_eq "component-workdir: work directory is private" "${wd#*$'\n'}" "700 $(id -un)"
check "component-workdir: work directory removed afterwards" test ! -e "$dir"

# ---- the example components validate ----
for f in recipes/components/*.yaml; do
	[ -f "$f" ] || continue
	out=$("$AMIFORGE" component validate "$f" 2>&1)
	check_eq "component-examples: $(basename "$f") validates" "$?" 0
done

# An input unlike any the action takes (AWS's own samples give DeleteFile a
# 'force') is ignored with a warning at its position; a near miss stays an error
# (invalid/58-input-typo.yaml).
printf '%s\n' 'name: extra-input' 'schemaVersion: 1.0' 'phases:' '  - name: build' '    steps:' \
	'      - name: Cleanup' '        action: DeleteFile' '        inputs:' \
	'          - path: /tmp/amiforge-nothing-here' '            force: true' >"$S/extra-input.yaml"
out=$("$AMIFORGE" component validate "$S/extra-input.yaml" 2>&1)
check_eq "component: an unrelated extra input validates" "$?" 0
check_contains "component: ... with a warning at its position" "$out" \
	"$S/extra-input.yaml:10:13: phase 'build', step 'Cleanup': unknown input 'force' for DeleteFile: ignored"


# --work-dir relative to the current directory: the steps (which run in
# directories of their own) still find their scripts there.
wdt=$(scratch)
cat >"$wdt/doc.yaml" <<'EOF'
name: wd
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: Hello
        action: ExecuteBash
        inputs:
          commands:
            - echo hello-from-wd
EOF
out=$(cd "$wdt" && "$AMIFORGE" component run doc.yaml --local --work-dir wd --log-dir logs 2>&1)
check_eq "component-cli: --work-dir relative: exit 0" "$?" 0
check_contains "component-cli: --work-dir relative: the step ran" "$out" "build/Hello: Success"
check "component-cli: --work-dir relative: made under the current directory" test -d "$wdt/wd"
finish
