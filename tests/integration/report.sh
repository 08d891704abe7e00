#!/bin/bash
# amiforge report on build directories made here with the shapes a build
# writes (manifest.json, toe/*/detailedoutput.json, inspect.json,
# console.log): a failed build with a reused step and hostile text, a
# succeeded one with AMIs; the page is checked as text, by tidy and by
# rendering it in headless Chromium. The real builds' pages are checked in
# build.sh, build-checkpoint.sh and build-onerror.sh (tests/lib/report.sh).
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/report.sh"
dir=${REPORT_KEEP:-$(scratch)}	# REPORT_KEEP=DIR keeps the pages and screenshots
b=$dir/builds/web-1.0.0-20261203-100000
mkdir -p "$b/toe/TOE_2026-12-03_10-00-10_UTC-0_e1"

cat >"$b/manifest.json" <<'J'
{ "schema": 1, "amiforge": "0.1.0",
  "build": { "name": "web", "version": "1.0.0", "started": "2026-12-03T10:00:00Z",
             "finished": "2026-12-03T10:03:00Z", "status": "failed",
             "error": "hello/build/Install: exit status 100 <b>bold</b>",
             "architecture": { "name": "aarch64", "ec2": "arm64", "boot": "uefi",
                               "from": "vm.arch<i>" } },
  "inputs": [ { "kind": "base", "source": "https://user:pw@example.invalid/x.qcow2",
                "sha256": "aa" },
              { "kind": "component", "path": "components/hello.yaml", "sha256": "bb" },
              { "kind": "component", "path": "/cat/update-linux/1.0.2/document.yaml",
                "name": "update-linux", "version": "1.0.2", "requested": "update-linux@1.0.x",
                "sha256": "cc" } ],
  "stages": [ { "name": "base", "started": "2026-12-03T10:00:00Z", "seconds": 2, "status": "ok" },
              { "name": "boot", "started": "2026-12-03T10:00:02Z", "seconds": 8, "status": "ok" },
              { "name": "components", "started": "2026-12-03T10:00:10Z", "seconds": 170,
                "status": "failed" } ],
  "outputs": [], "amis": [] }
J
cat >"$b/toe/TOE_2026-12-03_10-00-10_UTC-0_e1/detailedoutput.json" <<'J'
{ "executionId": "e1", "status": "Failed", "documents": [ { "name": "hello",
  "phases": [ { "name": "build", "steps": [
    { "name": "Prepare", "action": "ExecuteBash", "status": "Skipped",
      "skippedReason": "done before the resumed checkpoint" },
    { "name": "Configure", "action": "ExecuteBash", "status": "Success",
      "startTime": "2026-12-03T10:00:10.000Z", "endTime": "2026-12-03T10:00:40.500Z",
      "outputs": { "stdout": "configured" } },
    { "name": "Install<script>alert(1)</script>", "action": "ExecuteBash", "status": "Failed",
      "startTime": "2026-12-03T10:00:40.500Z", "endTime": "2026-12-03T10:03:00.000Z",
      "failureMessage": "exit status 100",
      "outputs": { "stdout": "line 1\n<script>alert('x')</script>\nE: Unable to fetch some archives" } }
  ] } ] } ] }
J
printf 'Debian GNU/Linux 12 ttyS0\n\033[31mred\033[0m\nlast console line\n' >"$b/console.log"
cat >"$b/inspect.json" <<'J'
{ "ok": false, "for": "ebs", "summary": { "pass": 1, "warn": 0, "fail": 1, "skip": 0 },
  "checks": [ { "id": "clean.private-keys", "status": "fail",
  "reason": "a private key is left in the image", "evidence": "/root/.ssh/id_rsa" },
  { "id": "boot.default-kernel", "status": "pass", "reason": "vmlinuz-6.1.0", "evidence": "" } ] }
J

out=$("$AMIFORGE" report "$b" 2>&1)
check_eq "report: exit 0, prints the page's path" "$?:$out" "0:$b/report.html"
html=$b/report.html
check_eq "report: page is 0600" "$(stat -c %a "$html")" 600
page=$(cat "$html")
check_contains "report: failing step named" "$page" \
	'<code class="failstep">hello/build/Install&lt;script&gt;alert(1)&lt;/script&gt;</code>'
check_contains "report: its last output lines, escaped" "$page" \
	"&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
check_eq "report: no markup from the build directory" "$(grep -c '<script' "$html")" 0
check_eq "report: no <b> from the error message" "$(grep -c '<b>' "$html")" 0
check_contains "report: guest console tail, control characters neutralised" "$page" \
	$'\xef\xbf\xbd[31mred'
check_contains "report: resume command" "$page" "amiforge build --resume $b"
check_contains "report: reused step marked" "$page" "Skipped (reused from a checkpoint)"
check_contains "report: the architecture (issue 22), escaped" "$page" \
	"<p>Architecture: <strong>aarch64</strong> (EC2 arm64, boot uefi), from vm.arch&lt;i&gt;.</p>"
check_contains "report: inspection, a failed check with its evidence" "$page" \
	'<tr class="failed"><td>clean.private-keys</td><td>fail</td><td>a private key is left in the image [/root/.ssh/id_rsa]</td></tr>'
check_contains "report: inspection summary" "$page" "(1 passed, 0 warnings, 1 failed, 0 skipped), checks for <code>ebs</code>"
for s in base boot components; do
	check_contains "report: stage $s in the timeline" "$page" "<title>$s: "
done
check_contains "report: a failed step bar" "$page" '<g class="step failed">'
check_contains "report: a reused step mark" "$page" '<g class="step reused">'
check_contains "report: slowest steps" "$page" "The slowest ten"
check_contains "report: a catalog component's version" "$page" \
	"update-linux 1.0.2 (asked: update-linux@1.0.x)<br>/cat/update-linux/1.0.2/document.yaml"

json=$("$AMIFORGE" report --json "$b")
check_eq "report --json: the same facts" "$(echo "$json" | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(len(d["steps"]), d["failure"]["step"]["name"], d["steps"][0].get("reused"),
      d["slowest"][0]["name"], d["inspection"]["ok"])')" \
	"3 Install<script>alert(1)</script> True Install<script>alert(1)</script> False"

report_render "report: failed build" "$html" "hello/build/Install" "Failure" "Timeline"

# A succeeded build with AMIs: console links, outputs, no failure section.
s=$dir/builds/ok
mkdir -p "$s"
cat >"$s/manifest.json" <<'J'
{ "build": { "name": "ok", "version": "2.0.0", "status": "succeeded",
             "started": "2026-12-03T11:00:00Z" },
  "stages": [ { "name": "base", "started": "2026-12-03T11:00:00Z", "seconds": 1, "status": "ok" } ],
  "outputs": [ { "format": "qcow2", "path": "output/ok.qcow2", "size": 1234, "sha256": "cc" } ],
  "amis": [ { "region": "eu-west-1", "image_id": "ami-0123", "snapshot_id": "snap-1" } ] }
J
out=$("$AMIFORGE" report "$s" -o "$dir/ok.html" 2>&1)
check_eq "report: succeeded build, -o FILE" "$?:$out" "0:$dir/ok.html"
page=$(cat "$dir/ok.html")
check_contains "report: AMI console link" "$page" \
	'href="https://eu-west-1.console.aws.amazon.com/ec2/home?region=eu-west-1#ImageDetails:imageId=ami-0123"'
check_contains "report: output size" "$page" '<td class="num">1234</td>'
check_eq "report: no failure section when it succeeded" "$(grep -c 'id="failure"' "$dir/ok.html")" 0
report_render "report: succeeded build" "$dir/ok.html" "eu-west-1" "Outputs"

# Hostile build directories: a symlinked manifest, a huge one, not JSON.
h=$dir/hostile
mkdir -p "$h"
echo '{"build": {"name": "SECRET-HOST-FILE"}}' >"$dir/host-file.json"
ln -s "$dir/host-file.json" "$h/manifest.json"
out=$("$AMIFORGE" report "$h" 2>&1)
check_eq "report: symlinked manifest refused (exit 1)" "$?" 1
check_contains "report: symlinked manifest: says why" "$out" "manifest.json"
check_eq "report: symlinked manifest: nothing written" "$(ls "$h")" "manifest.json"
rm "$h/manifest.json"
truncate -s 40M "$h/manifest.json"
out=$("$AMIFORGE" report "$h" 2>&1)
check_eq "report: a 40 MiB manifest refused" "$?" 1
printf '{"build": ' >"$h/manifest.json"
out=$("$AMIFORGE" report "$h" 2>&1)
check_eq "report: broken JSON refused with its position" "$?:$(echo "$out" | grep -c 'manifest.json:1:')" "1:1"
out=$("$AMIFORGE" report "$dir/nowhere" 2>&1)
check_eq "report: not a build directory" "$?:$out" \
	"1:amiforge: error: '$dir/nowhere' is not a build directory: it has no manifest.json"

finish
