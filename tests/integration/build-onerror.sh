#!/bin/bash
# suite: guests  (make check-guests: slower guest tests, run by CI after make check)
# `amiforge build --on-error=ask|abort` and `amiforge attach`, on the Debian
# fixture with two guest boots:
#   1. libvirt, --on-error=ask under a pseudo-terminal (python3 pty): step Two
#      fails, `amiforge attach` fixes it while the question waits, "retry"
#      passes; step Three fails, "retry" fails again, "continue"; step Five
#      fails, "abort": amiforge exits 1 and prints how to reach the guest;
#      the domain runs on; attach runs commands in it (output and exit status
#      passed through, earlier steps' files visible); checkpoints stop after
#      the continued step; TOE log and manifest record the decisions;
#      `amiforge clean` destroys the domain and removes everything.
#   2. the direct QEMU driver, --on-error=abort: QEMU outlives amiforge (its
#      pid journaled), attach works, clean stops it.
# Plus the refusals that boot nothing.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/build.sh"

build_test_setup build-onerror
mkdir -p "$dir/tmp"
chmod 711 "$dir/tmp"
export TMPDIR="$dir/tmp"          # the staging area goes here: checked empty

cat >"$dir/r/steps.yaml" <<'EOF'
name: onerr-steps
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: One
        action: ExecuteBash
        inputs:
          commands:
            - echo one > /var/lib/onerr-one
      - name: Two
        action: ExecuteBash
        inputs:
          commands:
            - test -e /var/lib/onerr-fixed
      - name: Three
        action: ExecuteBash
        inputs:
          commands:
            - echo attempt >> /var/lib/onerr-three
            - exit 3
      - name: Four
        action: ExecuteBash
        inputs:
          commands:
            - echo four > /var/lib/onerr-four
      - name: Five
        action: ExecuteBash
        inputs:
          commands:
            - exit 7
EOF

# --- refusals (no guest) ---------------------------------------------------
cat >"$dir/r/recipe.yaml" <<EOF
name: onerr
version: 1.0.0
parent: $base
components:
  - path: steps.yaml
vm: {cpus: 2, memory: 1024}
EOF
out=$("$AMIFORGE" build "$dir/r/recipe.yaml" --output "$dir/b0" --on-error=ask </dev/null 2>&1)
rc=$?
check_eq "onerror: --on-error=ask without a terminal exits 2" "$rc" 2
check_contains "onerror: ... and says it needs a terminal" "$out" "needs a terminal"
out=$("$AMIFORGE" build "$dir/r/recipe.yaml" --output "$dir/b0" --on-error=later 2>&1)
rc=$?
check_eq "onerror: unknown --on-error mode exits 2" "$rc" 2
check_contains "onerror: ... and names the modes" "$out" "expected cleanup, abort or ask"
check "onerror: refusals created no build directory" test ! -e "$dir/b0"
out=$("$AMIFORGE" attach "$dir/r" -- true 2>&1)
rc=$?
check_eq "onerror: attach to a directory without a kept guest exits 125" "$rc" 125
check_contains "onerror: ... and says there is no kept guest" "$out" "no guest kept for inspection"

# attach against a local agent (no guest): streams, exit status, --timeout,
# one client after another on the same socket.
mkdir -p "$dir/fake"
"$TOP/amiforge-agent" --socket "$dir/fake/a.sock" 2>/dev/null &
agent=$!
cat >"$dir/fake/guest.json" <<EOF
{"name": "fake", "driver": "libvirt", "agent_socket": "$dir/fake/a.sock",
 "console_log": "/nonexistent", "dir": "$dir/fake", "pid": 0}
EOF
for ((i = 0; i < 50; i++)); do [ -S "$dir/fake/a.sock" ] && break; sleep 0.1; done
out=$("$AMIFORGE" attach "$dir/fake" -- sh -c 'echo out; echo err >&2; exit 3' 2>"$dir/fake/err")
check_eq "attach (local agent): exit status passed through" "$?" 3
check_eq "attach (local agent): stdout" "$out" "out"
check_eq "attach (local agent): stderr" "$(cat "$dir/fake/err")" "err"
"$AMIFORGE" attach --timeout 1 "$dir/fake" -- sleep 30 2>/dev/null
check_eq "attach (local agent): --timeout exits 124" "$?" 124
out=$("$AMIFORGE" attach "$dir/fake" -- echo again 2>&1)
check_eq "attach (local agent): a later client is served too" "$out" "again"
kill $agent
wait $agent 2>/dev/null
rm -rf "$dir/fake"   # its socket too: the checks below look for sockets left

# --- 1. ask under a pty, libvirt --------------------------------------------
# The driver: answers the questions, runs attach while the first one waits.
# Writes what it saw (one line per question: the step and the answer) to
# $dir/asked; amiforge's exit status to $dir/rc; the terminal text to $dir/tty.
cat >"$dir/drive.py" <<'EOF'
import os, pty, re, select, subprocess, sys, time
amiforge, recipe, out, d = sys.argv[1:5]
answers = {'Two': ['attach+r'], 'Three': ['r', 'c'], 'Five': ['a']}
master, slave = pty.openpty()
events = open(os.path.join(d, 'ev1'), 'w')
# Every step checkpointed: the default policy's choice after Two hangs on
# how long a checkpoint took against the time spent answering (timing).
p = subprocess.Popen([amiforge, 'build', recipe, '--output', out, '--on-error=ask', '--json',
                      '--checkpoint-every-step'],
                     stdin=slave, stdout=events, stderr=slave, close_fds=True)
os.close(slave)
tty = b''
seen = 0
asked = open(os.path.join(d, 'asked'), 'w')
deadline = time.time() + 1800
QUESTION = b'[a]bort and keep the guest? '
def read_some(t):
    global tty
    r, _, _ = select.select([master], [], [], t)
    if r:
        try:
            data = os.read(master, 65536)
        except OSError:
            return False
        if not data:
            return False
        tty += data
    return True
while time.time() < deadline:
    alive = read_some(1.0)
    if tty.count(QUESTION) > seen:
        seen = tty.count(QUESTION)
        text = tty.decode('utf-8', 'replace')
        m = list(re.finditer(r'step onerr-steps/build/(\w+) failed', text))
        step = m[-1].group(1) if m else '?'
        todo = answers.get(step) or ['a']
        ans = todo.pop(0) if todo else 'a'
        if ans.startswith('attach+'):
            bd = re.findall(r'amiforge attach (\S+) --', text)[-1]
            r = subprocess.run([amiforge, 'attach', bd, '--', 'touch', '/var/lib/onerr-fixed'],
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=300)
            asked.write('attach-while-asking %d\n' % r.returncode)
            ans = ans.split('+')[1]
        asked.write('%s %s\n' % (step, ans))
        asked.flush()
        os.write(master, (ans + '\n').encode())
    if p.poll() is not None:
        while read_some(0.5):
            pass
        break
    if not alive and p.poll() is None:
        time.sleep(0.5)
else:
    p.kill()
rc = p.wait()
open(os.path.join(d, 'rc'), 'w').write('%d\n' % rc)
open(os.path.join(d, 'tty'), 'wb').write(tty)
EOF
python3 "$dir/drive.py" "$AMIFORGE" "$dir/r/recipe.yaml" "$dir/b1" "$dir"
rc=$(cat "$dir/rc" 2>/dev/null)
bd=$(ls -d "$dir"/b1/onerr-1.0.0-* 2>/dev/null | head -n 1)
check_eq "ask: the build fails after 'abort' (exit 1)" "$rc" 1
[ "$rc" = 1 ] || tail -n 30 "$dir/tty" | sed 's/^/    | /'
# Five, the last step, started the inspection's appliance (build.c
# start_early); the build ended without inspecting: it is stopped, its
# directory gone (the kept guest is the build's; the appliance is not).
check "ask: the inspection's appliance, started at the last step, was started" \
	grep -q "inspection: its appliance starts now" "$bd/build.log"
check_eq "ask: ... and stopped when the build failed (no QEMU with its QMP socket)" \
	"$(pgrep -c -f 'qemu-system.*-qmp unix:.*/qmp\.sock,server=on')" 0
check_eq "ask: ... its directory removed" "$(find "$dir/tmp" -name 'appliance.*' | wc -l)" 0
sock=$(sed -n 's|^+ \([0-9]*\) dir \(/tmp/libguestfs[A-Za-z0-9]*\)$|\1 \2|p' "$bd/journal" | head -n 1)
check "ask: ... libguestfs's socket directory for it was journaled (for clean, after a SIGKILL)" \
	test -n "$sock"
check "ask: ... and is gone" test ! -e "${sock#* }"
check "ask: ... and released in the journal" grep -qx -- "- ${sock%% *}" "$bd/journal"
check_eq "ask: questions and answers" "$(tr '\n' '|' <"$dir/asked")" \
	"attach-while-asking 0|Two r|Three r|Three c|Five a|"
tty=$(tr -d '\r' <"$dir/tty")
check_contains "ask: the question names the step and its failure" "$tty" \
	"step onerr-steps/build/Five failed: 'bash' exited with status 7"
check_contains "ask: after abort, says how to run a command in the guest" "$tty" \
	"amiforge attach $bd -- COMMAND"
check_contains "ask: ... where its console log is" "$tty" "console log: "
check_contains "ask: ... and how to destroy it" "$tty" "amiforge clean $bd"

check_eq "ask: step One passed" "$(step_status "$dir/ev1" onerr-steps/build/One)" Success
check_eq "ask: step Two passed when retried (fixed through attach)" \
	"$(step_status "$dir/ev1" onerr-steps/build/Two)" Success
check_eq "ask: step Three continued past: IgnoredFailure" \
	"$(step_status "$dir/ev1" onerr-steps/build/Three)" IgnoredFailure
check_eq "ask: step Four ran after the continued step" "$(step_status "$dir/ev1" onerr-steps/build/Four)" Success
check_eq "ask: step Five failed" "$(step_status "$dir/ev1" onerr-steps/build/Five)" Failed
check_eq "ask: checkpoints after One and the retried Two only (none after the continued Three)" \
	"$(grep -c '"event":"checkpoint".*"status":"saved"' "$dir/ev1")" 2
check "ask: a 'guest kept' event" grep -q '"event":"guest".*"status":"kept"' "$dir/ev1"
check "ask: detailedoutput.json records the retries and the continue" python3 -c "
import json,glob,sys
d=json.load(open(glob.glob('$bd/toe/TOE_*/detailedoutput.json')[0]))
st={s['name']:s for p in d['documents'][0]['phases'] for s in p['steps']}
sys.exit(not (st['Two']['status']=='Success' and st['Two'].get('retries')==1 and
  st['Three']['status']=='IgnoredFailure' and st['Three'].get('continued') is True and
  st['Three'].get('retries')==1 and 'failureMessage' in st['Three'] and
  st['Five']['status']=='Failed' and 'continued' not in st['Five'] and d['status']=='Failed'))"
check "ask: manifest.json records the decisions, the build failed" python3 -c "
import json,sys
m=json.load(open('$bd/manifest.json'))
got=[(x['step'].split('/')[-1], x['decision']) for x in m.get('decisions', [])]
sys.exit(not (got==[('Two','retry'),('Three','retry'),('Three','continue'),('Five','abort')]
              and m['build']['status']=='failed'))"

# The guest runs on after amiforge exited.
name=$(python3 -c "import json; print(json.load(open('$bd/guest.json'))['name'])" 2>/dev/null)
check "ask: the domain still runs after amiforge exited" bash -c \
	"virsh -c qemu:///system list --name | grep -qx '$name'"
out=$("$AMIFORGE" attach "$bd" -- echo hi 2>"$dir/attach.err")
rc=$?
check_eq "attach: echo hi exits 0" "$rc" 0
check_eq "attach: echo hi prints hi" "$out" "hi"
out=$("$AMIFORGE" attach "$bd" -- sh -c 'cat /var/lib/onerr-one /var/lib/onerr-four; wc -l </var/lib/onerr-three; echo err >&2; exit 5' 2>"$dir/attach.err")
rc=$?
check_eq "attach: the command's exit status is passed through" "$rc" 5
check_eq "attach: earlier steps' files are there (Three ran twice)" "$(echo $out)" "one four 2"
check_eq "attach: stderr is passed through" "$(cat "$dir/attach.err")" "err"
# cache prune while the guest runs: the layers under its disk stay (QEMU has
# them open), with their records; a deleted layer shows as "(deleted)".
"$AMIFORGE" cache prune >"$dir/prune1" 2>&1
check_eq "prune beside a kept guest: succeeds" "$?" 0
check_contains "prune beside a kept guest: says why it kept layers" "$(cat "$dir/prune1")" \
	"a running guest uses its layer"
qpid=$(pgrep -f "qemu-system.*guest=$name" | head -n 1)
held=$(for fd in /proc/$qpid/fd/*; do readlink "$fd"; done 2>/dev/null | grep -F "$ck/layers/")
check "prune beside a kept guest: the guest's disk backs onto checkpoint layers" test -n "$held"
check_eq "prune beside a kept guest: none of them deleted" "$(echo "$held" | grep -c '(deleted)')" 0
# All but one have a record: the guest's own top layer becomes a checkpoint
# only when a step completes (none did after the continued step).
recorded=0 unrecorded=0
for l in $held; do
	if grep -qs "\"$l\"" "$ck"/*.json; then
		recorded=$((recorded + 1))
	else
		unrecorded=$((unrecorded + 1))
	fi
done
check "prune beside a kept guest: the records under its disk stay ($recorded)" test "$recorded" -ge 1
check_eq "prune beside a kept guest: only its own top layer has no record" "$unrecorded" 1
out=$("$AMIFORGE" clean --dry-run "$bd" 2>&1)
check_contains "clean --dry-run: lists the domain" "$out" "would release domain $name"
check_contains "clean --dry-run: ... kept for inspection" "$out" "(kept for inspection)"
check "clean --dry-run: the domain still runs" bash -c \
	"virsh -c qemu:///system list --name | grep -qx '$name'"
"$AMIFORGE" clean "$bd" >"$dir/clean1" 2>&1
check_eq "clean: succeeds" "$?" 0
for ((i = 0; i < 60; i++)); do
	[ "$(pgrep -c -f "qemu-system.*$dir/")" = 0 ] && break
	sleep 1
done
check_eq "clean: the domain is gone" "$(domains_matching "$name\$")" 0
check_eq "clean: no qemu process on the build's files" "$(pgrep -c -f "qemu-system.*$dir/")" 0
check_eq "clean: the staging area is empty" "$(ls -A "$dir/tmp" | grep -c amiforge-build)" 0
check "clean: no socket left" bash -c "[ -z \"\$(find '$dir' -type s)\" ]"
check "clean: the guest record is gone" test ! -e "$bd/guest.json"
orphan=
for l in "$ck"/layers/*.qcow2; do
	[ -e "$l" ] || continue
	grep -qs "\"$l\"" "$ck"/*.json || orphan="$orphan $l"
done
check_eq "clean: no checkpoint layer without a record" "$orphan" ""
check "clean: the journal has nothing left to release" journal_nothing_live "$bd"
out=$("$AMIFORGE" attach "$bd" -- true 2>&1)
rc=$?
check_eq "attach after clean: exits 125" "$rc" 125
check_contains "attach after clean: no guest kept" "$out" "no guest kept for inspection"

# --- 2. the direct QEMU driver, --on-error=abort ----------------------------
sed -e 's/vm: {cpus: 2, memory: 1024}/vm: {cpus: 2, memory: 1024, driver: qemu}/' \
	"$dir/r/recipe.yaml" >"$dir/r/recipe-qemu.yaml"
sed -i -e 's/- test -e \/var\/lib\/onerr-fixed/- exit 9/' "$dir/r/steps.yaml"
"$AMIFORGE" build "$dir/r/recipe-qemu.yaml" --output "$dir/b2" --on-error=abort --no-cache \
	>"$dir/out2" 2>"$dir/err2" </dev/null
rc=$?
check_eq "abort (qemu): the build fails (exit 1)" "$rc" 1
bd2=$(ls -d "$dir"/b2/onerr-1.0.0-* 2>/dev/null | head -n 1)
check_contains "abort (qemu): says how to attach" "$(cat "$dir/err2")" "amiforge attach $bd2 --"
pid=$(python3 -c "import json; print(json.load(open('$bd2/guest.json'))['pid'])" 2>/dev/null)
check "abort (qemu): QEMU outlives amiforge" bash -c "[ -n '$pid' ] && [ '$pid' -gt 0 ] && kill -0 '$pid'"
check "abort (qemu): its pid is in the journal" grep -q "^+ [0-9]* qemu-pid $pid " "$bd2/journal"
out=$("$AMIFORGE" attach "$bd2" -- cat /var/lib/onerr-one 2>&1)
check_eq "abort (qemu): attach sees step One's file" "$out" "one"
"$AMIFORGE" clean "$bd2" >"$dir/clean2" 2>&1
check_eq "abort (qemu): clean succeeds" "$?" 0
# (gone, or a zombie waiting for pid 1 to reap it: it was not our child)
gone_or_zombie() {
	local st
	st=$(ps -o stat= -p "$1" 2>/dev/null)
	[ -z "$st" ] || [ "${st#Z}" != "$st" ]
}
check "abort (qemu): QEMU is gone after clean" gone_or_zombie "$pid"
check_eq "abort (qemu): the staging area is empty" "$(ls -A "$dir/tmp" | grep -c amiforge-build)" 0
check "abort (qemu): the journal has nothing left to release" journal_nothing_live "$bd2"
finish
