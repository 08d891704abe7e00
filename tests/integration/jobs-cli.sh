#!/bin/bash
# `amiforge build A B ... --jobs N` without guests (seconds): argument checks,
# the host-sized limit (a build whose vm.cpus fill the host waits, and says
# so), one summary and --json, each build's own log. Every build here fails
# before a guest starts (its component document is invalid), which is also
# what the summary must report. build-jobs.sh boots the real ones.
. "$(dirname "$0")/../lib/common.sh"

dir=$(scratch)
cd "$dir" || exit 1
echo "name: broken" >bad-doc.yaml
echo "not a disk" >notadisk
cpus=$(($(nproc) * 2))	# the whole vCPU budget (build-jobs.h) for one build
for n in a b c; do
	cat >"$n.yaml" <<YAML
name: big-$n
version: 1.0.0
parent: $dir/notadisk
components:
  - path: bad-doc.yaml
vm: {cpus: $cpus, memory: 1024}
YAML
done

"$AMIFORGE" build a.yaml b.yaml --jobs 0 >out 2>err
check_eq "jobs: --jobs 0 is a usage error" "$?" 2
check_contains "jobs: --jobs 0 says the range" "$(cat err)" "expected 1-"
"$AMIFORGE" build a.yaml b.yaml --resume "$dir" >out 2>err
check_eq "jobs: several recipes with --resume refused" "$?" 2
check_contains "jobs: several recipes with --resume says why" "$(cat err)" "without --resume"

"$AMIFORGE" build a.yaml b.yaml c.yaml --jobs 3 --output "$dir/b" --json >sum.json 2>err
check_eq "jobs: three failing builds exit 1" "$?" 1
check_eq "jobs: builds that fill the host's vCPUs wait (b and c said so once each)" \
	"$(grep -c '^amiforge: \[[23]/3\] [bc].yaml: waiting (1 running; limit: --jobs 3, ' err)" 2
check "jobs: --json summary: three failed builds, each with exit 2 (a recipe that does not load), each with its own log saying why" \
	python3 -c "
import json, sys
s = json.load(open('sum.json'))
b = s['builds']
ok = [x['recipe'] for x in b] == ['a.yaml', 'b.yaml', 'c.yaml']
for x in b:
    ok = ok and x['status'] == 'failed' and x['exit'] == 2 and x['disk'] is None
    ok = ok and 'schemaVersion' in open(x['log']).read()
sys.exit(not ok)"
check_eq "jobs: --json prints nothing but the summary on stdout" \
	"$(python3 -c 'import json,sys; json.load(open(sys.argv[1])); print("ok")' sum.json)" ok

"$AMIFORGE" build a.yaml b.yaml --output "$dir/b" >out 2>err
check_eq "jobs: without --jobs, several recipes run one at a time" \
	"$(grep -c 'b.yaml: waiting (1 running; limit: --jobs 1' err)" 1
check_eq "jobs: the text summary lists both as failed" "$(grep -cE '^  failed +[0-9.]+ s  [ab].yaml$' err)" 2
finish
