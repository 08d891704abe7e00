#!/bin/bash
# Image pipelines against moto (no guest): pipeline files checked by
# validate (file:line:col); install/uninstall as text (systemd units in a
# directory, the real crontab); a real `pipeline run` whose build fails at
# the base image notifies an SNS topic (read back from its SQS subscription),
# a webhook (a local HTTP server that fails once: retried) and a command;
# `pipeline deliver` of a build with AMIs in two regions tags them, adds a
# launch template version (default), writes an SSM parameter
# (aws:ec2:image) and attaches license configurations; lifecycle plan/apply
# over 6 tagged AMIs in two regions (+ one excluded, + one of another
# pipeline): deprecate / disable / delete with snapshots, idempotent,
# journaled, an interrupted deletion finished. EnableImageDeprecation,
# DisableImage and License Manager come from tests/fixtures/aws/lifecycle-fixture.py
# (moto 5.2.1 lacks them).
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/fixtures/aws/lib.sh"

require aws pipeline
dir=$AWSFX_DIR
: >"$dir/fx.log"
fx=$(start_lifecycle_fixture --log "$dir/fx.log") ||
	{ fail "pipeline: fixture did not start"; exit 1; }
aws_env "$fx"
export AMIFORGE_WEBHOOK_RETRY_MS=50 AMIFORGE_FETCH_RETRY_MS=0
id=$$
name=pl$id

# boto3 against the fixture (which forwards to moto).
pyfx() {
	python3 -c "
import boto3, json, sys, os, time
def c(svc, region='eu-west-1'):
    return boto3.client(svc, endpoint_url=os.environ['AWS_ENDPOINT_URL'], region_name=region,
                        aws_access_key_id='x', aws_secret_access_key='x')
$1" "${@:2}"
}

# ---- validate ----------------------------------------------------------------
mkdir -p "$dir/p"
cp "$TOP/tests/recipes/components/hello.yaml" "$dir/p/c.yaml"
cat >"$dir/p/recipe.yaml" <<EOF
name: pipe-$id
version: 1.0.0
parent: {url: "http://127.0.0.1:9/base.qcow2", sha256: "$(printf '%064d' 0)"}
components:
  - c.yaml
EOF
valid() {	# valid FILE BODY: a pipeline file with the common head
	{ printf 'pipeline: %s\nrecipe: recipe.yaml\n' "$name"; cat; } >"$dir/p/$1"
}
valid ok.yaml <<'EOF'
schedule: {expression: "cron(0 3 ? * MON-FRI *)", timezone: Europe/Paris, condition: onlyIfUpdated}
lifecycle:
  regions: [eu-west-1]
  rules: [{action: delete, keep_last: 2}]
EOF
out=$("$AMIFORGE" validate "$dir/p/ok.yaml" 2>&1)
check_eq "validate: a pipeline file is valid (exit 0)" "$?" 0
check "validate: says it is a pipeline, its schedule and condition" \
	grep -q "valid pipeline $name: .*schedule cron(0 3 ? \* MON-FRI \*), condition onlyIfUpdated" <<<"$out"

bad() {	# bad NAME WANT: the file $dir/p/bad.yaml fails with exactly WANT
	local got rc
	got=$("$AMIFORGE" validate "$dir/p/bad.yaml" 2>&1)
	rc=$?
	check_eq "validate: $1: exit 2" "$rc" 2
	check_eq "validate: $1: message" "$got" "amiforge: error: $dir/p/bad.yaml:$2"
}
valid bad.yaml <<'EOF'
schedule: {expresion: "cron(0 3 * * ? *)"}
EOF
bad "unknown key" "3:12: unknown key 'expresion' in schedule; did you mean 'expression'?"
valid bad.yaml <<'EOF'
schedule:
  expression: cron(0 3 * * * *)
EOF
bad "both days given" "4:15: cron expression 'cron(0 3 * * * *)': exactly one of day-of-month and day-of-week must be '?'"
valid bad.yaml <<'EOF'
schedule:
  expression: cron(0 25 * * ? *)
EOF
bad "hour out of range" "4:15: cron expression: hours must be 0-23, not '25'"
valid bad.yaml <<'EOF'
schedule:
  expression: cron(0 3 * * ?)
EOF
bad "five fields" "4:15: cron expression 'cron(0 3 * * ?)' must have 6 fields (minutes hours day-of-month month day-of-week year), not 5"
valid bad.yaml <<'EOF'
schedule:
  expression: cron(0 3 L * ? *)
EOF
bad "L refused" "4:15: cron expression: 'L' in day-of-month: L, W and # are not supported by amiforge"
valid bad.yaml <<'EOF'
schedule:
  expression: cron(0 3 * * ? *)
  timezone: Mars/Olympus
EOF
bad "unknown timezone" "5:13: timezone 'Mars/Olympus' is not an IANA timezone known to this system (/usr/share/zoneinfo)"
valid bad.yaml <<'EOF'
lifecycle:
  regions: [eu-west-1]
  rules:
    - {action: delete, keep_last: 2, older_than: 30d}
EOF
bad "count and age in one rule" "6:7: a lifecycle rule needs keep_last or older_than (one of them)"
valid bad.yaml <<'EOF'
lifecycle:
  regions: [eu-west-1]
  rules:
    - {action: destroy, keep_last: 2}
EOF
bad "unknown action" "6:16: action 'destroy' is not one of deprecate, disable, delete"
valid bad.yaml <<'EOF'
lifecycle:
  regions: [eu-west-100]
  rules: [{action: delete, keep_last: 2}]
EOF
bad "region by AWS's rule (drivers/aws/names.h, as recipes)" "4:13: a lifecycle region 'eu-west-100' is not an AWS region name (like eu-west-1)"
valid bad.yaml <<'EOF'
distribution:
  launch_templates:
    - {region: eu-west-1, name: web, default: maybe}
EOF
bad "boolean as recipes word it" "5:47: default must be true or false, not 'maybe'"
valid ok2.yaml <<'EOF'
distribution:
  launch_templates:
    - {region: eu-west-1, name: web, default: True}
EOF
out=$("$AMIFORGE" validate "$dir/p/ok2.yaml" 2>&1)
check_eq "validate: a boolean spelt True, as recipes take it (exit 0; $out)" "$?" 0
valid bad.yaml <<'EOF'
distribution:
  ssm_parameters:
    - {region: eu-west-1, name: "aws/x"}
EOF
bad "SSM name" "5:33: 'aws/x' is not a valid SSM parameter name (a-z A-Z 0-9 _ . - /, not starting with aws or ssm)"
valid bad.yaml <<'EOF'
distribution:
  license_configurations:
    - region: eu-west-1
      arns: ["arn:aws:license-manager:us-east-1:123456789012:license-configuration:lic-0123"]
EOF
bad "license ARN of another region" "6:14: 'arn:aws:license-manager:us-east-1:123456789012:license-configuration:lic-0123' is not a license configuration ARN of eu-west-1 (arn:aws:license-manager:eu-west-1:ACCOUNT:license-configuration:lic-...)"

# ---- install / uninstall ----------------------------------------------------------
"$AMIFORGE" pipeline install "$dir/p/ok.yaml" --scheduler systemd --unit-dir "$dir/units" \
	>"$dir/inst.out" 2>&1
check_eq "install systemd: exit 0" "$?" 0
svc=$dir/units/amiforge-pipeline-$name.service
tmr=$dir/units/amiforge-pipeline-$name.timer
amiforge_abs=$(readlink -f "$AMIFORGE")
check_eq "install systemd: ExecStart runs pipeline run FILE" \
	"$(grep '^ExecStart=' "$svc" 2>&1)" "ExecStart=\"$amiforge_abs\" pipeline run \"$dir/p/ok.yaml\""
check_eq "install systemd: a oneshot service" "$(grep -c '^Type=oneshot$' "$svc" 2>&1)" 1
check_eq "install systemd: OnCalendar is the cron expression in its timezone" \
	"$(grep '^OnCalendar=' "$tmr" 2>&1)" "OnCalendar=Mon..Fri *-*-* 03:00:00 Europe/Paris"
check_eq "install systemd: Persistent and the service named" \
	"$(grep -E '^(Persistent=true|Unit=amiforge-pipeline-'"$name"'.service)$' "$tmr" 2>&1 | wc -l)" 2
if command -v systemd-analyze >/dev/null 2>&1; then
	check "install systemd: systemd-analyze accepts the OnCalendar value" \
		systemd-analyze calendar "Mon..Fri *-*-* 03:00:00 Europe/Paris"
fi
"$AMIFORGE" pipeline uninstall "$dir/p/ok.yaml" --scheduler systemd --unit-dir "$dir/units" >/dev/null 2>&1
check "uninstall systemd: both units removed" test ! -e "$svc" -a ! -e "$tmr" -a -d "$dir/units"

if command -v crontab >/dev/null 2>&1; then
	saved=$dir/crontab.saved
	had=0
	crontab -l >"$saved" 2>/dev/null && had=1
	restore_crontab() { if [ "$had" = 1 ]; then crontab "$saved"; else crontab -r 2>/dev/null; fi; }
	at_exit restore_crontab
	printf '# someone else\n17 4 * * * /bin/true\n' | crontab -
	"$AMIFORGE" pipeline install "$dir/p/ok.yaml" --scheduler cron >"$dir/cron.out" 2>&1
	check_eq "install cron: exit 0" "$?" 0
	"$AMIFORGE" pipeline install "$dir/p/ok.yaml" --scheduler cron >>"$dir/cron.out" 2>&1
	want="* * * * * '$amiforge_abs' pipeline run '$dir/p/ok.yaml' >>'$dir/p/.amiforge-pipeline/$name/cron.log' 2>&1 # amiforge-pipeline $dir/p/ok.yaml"
	check_eq "install cron: one entry (installed twice), the right command" \
		"$(crontab -l | grep -F "# amiforge-pipeline $dir/p/ok.yaml")" "$want"
	check_eq "install cron: other entries kept" "$(crontab -l | grep -c '^17 4 \* \* \* /bin/true$')" 1
	"$AMIFORGE" pipeline uninstall "$dir/p/ok.yaml" --scheduler cron >/dev/null 2>&1
	check_eq "uninstall cron: entry gone, others kept" \
		"$(crontab -l | grep -c 'amiforge-pipeline'):$(crontab -l | grep -c /bin/true)" "0:1"
	restore_crontab
else
	fail "install cron: crontab not installed (make deps installs cron)"
fi

# ---- notifications on a failed build -------------------------------------------
# A webhook receiver that answers 500 to its first POST, then 204.
python3 - "$dir/hook" >"$dir/hook.log" 2>&1 <<'PY' &
import http.server, sys, json, os
d = sys.argv[1]; os.makedirs(d, exist_ok=True); n = [0]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        n[0] += 1
        open(os.path.join(d, "req%d" % n[0]), "wb").write(body)
        open(os.path.join(d, "ctype%d" % n[0]), "w").write(self.headers.get("Content-Type", ""))
        self.send_response(500 if n[0] == 1 else 204); self.send_header("Content-Length", "0"); self.end_headers()
s = http.server.HTTPServer(("127.0.0.1", 0), H)
open(os.path.join(d, "port.tmp"), "w").write(str(s.server_address[1])); os.rename(os.path.join(d, "port.tmp"), os.path.join(d, "port"))
s.serve_forever()
PY
hook_pid=$!
for _ in $(seq 1 100); do [ -s "$dir/hook/port" ] && break; sleep 0.1; done
hook="http://127.0.0.1:$(cat "$dir/hook/port" 2>/dev/null)/hook"
dead=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

pyfx 'sns, sqs = c("sns"), c("sqs")
t = sns.create_topic(Name=sys.argv[1])["TopicArn"]
q = sqs.create_queue(QueueName=sys.argv[1])["QueueUrl"]
qa = sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
sns.subscribe(TopicArn=t, Protocol="sqs", Endpoint=qa)
print(t); print(q)' "$name" >"$dir/sns" 2>&1
topic=$(sed -n 1p "$dir/sns")
queue=$(sed -n 2p "$dir/sns")
valid fail.yaml <<EOF
notifications:
  sns: ["$topic"]
  webhooks:
    - {url: "$hook", retries: 2, timeout: 5}
    - {url: "http://127.0.0.1:$dead/x", retries: 1, timeout: 2}
  commands:
    - [tee, "$dir/cmd.json"]
EOF
"$AMIFORGE" pipeline run "$dir/p/fail.yaml" --now >"$dir/run.out" 2>"$dir/run.err"
check_eq "run (base image unreachable): exit 1" "$?" 1
check "run: the error names the failed build" grep -q "amiforge: error: pipeline $name: build failed: " "$dir/run.err"
"$AMIFORGE" pipeline status "$dir/p/fail.yaml" --json >"$dir/status.json" 2>&1
check_eq "status --json: one run, failed at the base stage, notifications recorded" \
	"$(jq -r '[(.runs|length), .runs[0].status, .runs[0].failed_step,
		([.runs[0].notifications[] | "\(.kind)=\(.ok)"] | join(","))] | join(" ")' "$dir/status.json" 2>&1)" \
	"1 failed base sns=true,webhook=true,webhook=false,command=true"
check_eq "status --json: the unreachable webhook was tried 1 + 1 times" \
	"$(jq -r '.runs[0].notifications[2].attempts' "$dir/status.json" 2>&1)" 2
bid=$(jq -r '.runs[0].build_id' "$dir/status.json" 2>/dev/null)
# While an evaluation holds the lock (a long build), the scheduler's next
# call does nothing, and status still answers.
lockf=$dir/p/.amiforge-pipeline/$name/lock
if [ -f "$lockf" ]; then
	out=$(flock "$lockf" "$AMIFORGE" pipeline run "$dir/p/fail.yaml" --now 2>&1)
	check_eq "run while another evaluation runs: exit 0, nothing done" "$?:$out" \
		"0:pipeline $name: an evaluation is running already; nothing to do"
	check_eq "status while an evaluation runs: answers, says so, one run" \
		"$(flock "$lockf" "$AMIFORGE" pipeline status "$dir/p/fail.yaml" --json 2>&1 | jq -r '[.evaluating, (.runs|length)] | join(" ")' 2>&1)" \
		"true 1"
else
	fail "run: no lock file in the state directory ($lockf)"
fi
pyfx 'sqs = c("sqs")
m = sqs.receive_message(QueueUrl=sys.argv[1], WaitTimeSeconds=2, MaxNumberOfMessages=10).get("Messages", [])
print(len(m))
env = json.loads(m[0]["Body"]) if m else {}
print(env.get("Subject")); print(env.get("Message"))' "$queue" >"$dir/sqs" 2>&1
check_eq "SNS: one message reached the subscribed SQS queue" "$(sed -n 1p "$dir/sqs")" 1
check_eq "SNS: subject" "$(sed -n 2p "$dir/sqs")" "amiforge pipeline $name: failed"
sed -n 3p "$dir/sqs" >"$dir/sns-msg.json"
check_eq "SNS: message: pipeline, buildId, status, failedStep, no AMI" \
	"$(jq -r '[.pipeline, .buildId, .status, .failedStep, (.amis|length), (.error|test("base.qcow2"))] | join(" ")' "$dir/sns-msg.json" 2>&1)" \
	"$name $bid failed base 0 true"
check_eq "webhook: a 500 was retried, the second POST accepted" "$(ls "$dir/hook" | grep -c '^req')" 2
check_eq "webhook: same message" "$(jq -cS . "$dir/hook/req2" 2>&1)" "$(jq -cS . "$dir/sns-msg.json" 2>&1)"
check_eq "webhook: Content-Type" "$(cat "$dir/hook/ctype2" 2>&1)" "application/json"
check_eq "command: the same JSON on stdin" "$(jq -cS . "$dir/cmd.json" 2>&1)" "$(jq -cS . "$dir/sns-msg.json" 2>&1)"

# A state file that is not one: one line with its position, exit 1.
mkdir -p "$dir/p/.amiforge-pipeline/${name}x"
chmod 700 "$dir/p/.amiforge-pipeline" "$dir/p/.amiforge-pipeline/${name}x"
printf '{"runs": [1,\n  2,,]}' >"$dir/p/.amiforge-pipeline/${name}x/state.json"
chmod 600 "$dir/p/.amiforge-pipeline/${name}x/state.json"
sed "s/^pipeline: .*/pipeline: ${name}x/" "$dir/p/ok.yaml" >"$dir/p/x.yaml"
out=$("$AMIFORGE" pipeline status "$dir/p/x.yaml" 2>&1)
check_eq "status of a corrupt state file: exit 1, one line with file:line:col" "$?:$(wc -l <<<"$out")" "1:1"
check "status of a corrupt state file: names the position" \
	grep -q "^amiforge: error: $dir/p/.amiforge-pipeline/${name}x/state.json:2:5: not a pipeline state file" <<<"$out"

# ---- deliver a build with AMIs: tags, launch template, SSM, licenses ----------------
pyfx 'out = {}
for region in ("eu-west-1", "us-east-1"):
    e = c("ec2", region)
    v = e.create_volume(AvailabilityZone=region + "a", Size=1)["VolumeId"]
    s = e.create_snapshot(VolumeId=v)["SnapshotId"]
    i = e.register_image(Name=sys.argv[1] + "-built", RootDeviceName="/dev/xvda",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": s}}])["ImageId"]
    out[region] = (i, e.describe_images(ImageIds=[i])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"])
e = c("ec2")
old = e.register_image(Name=sys.argv[1] + "-old", RootDeviceName="/dev/xvda",
    BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": s}}])["ImageId"]
lt = e.create_launch_template(LaunchTemplateName=sys.argv[1], LaunchTemplateData={"ImageId": old,
     "InstanceType": "t3.micro"})["LaunchTemplate"]["LaunchTemplateId"]
lic = c("license-manager").create_license_configuration(Name=sys.argv[1], LicenseCountingType="vCPU")["LicenseConfigurationArn"]
print(json.dumps({"amis": out, "lt": lt, "lic": lic, "old": old}))' "$name" >"$dir/made.json" 2>&1
ami_eu=$(jq -r '.amis["eu-west-1"][0]' "$dir/made.json" 2>&1)
jq -e . "$dir/made.json" >/dev/null 2>&1 || sed "s/^/    | /" "$dir/made.json"
snap_eu=$(jq -r '.amis["eu-west-1"][1]' "$dir/made.json" 2>&1)
ami_us=$(jq -r '.amis["us-east-1"][0]' "$dir/made.json" 2>&1)
lt=$(jq -r .lt "$dir/made.json" 2>&1)
lic=$(jq -r .lic "$dir/made.json" 2>&1)
mkdir -p "$dir/builds/pipe-$id-1.0.0-20250101-000000"
bd=$dir/builds/pipe-$id-1.0.0-20250101-000000
jq -n --arg eu "$ami_eu" --arg se "$snap_eu" --arg us "$ami_us" \
	'{schema: 1, build: {status: "succeeded"}, stages: [{name: "publish", status: "ok"}],
	  amis: [{region: "eu-west-1", image_id: $eu, snapshot_id: $se},
	         {region: "us-east-1", image_id: $us, snapshot_id: null}]}' >"$bd/manifest.json"
valid dist.yaml <<EOF
notifications:
  commands:
    - [tee, "$dir/cmd2.json"]
distribution:
  launch_templates:
    - {region: eu-west-1, id: $lt, default: true}
  ssm_parameters:
    - {region: us-east-1, name: /amiforge/$name/latest}
  license_configurations:
    - {region: eu-west-1, arns: ["$lic"]}
EOF
"$AMIFORGE" pipeline deliver "$dir/p/dist.yaml" "$bd" >"$dir/deliver.out" 2>"$dir/deliver.err"
rc=$?
check_eq "deliver: exit 0" "$rc" 0
[ "$rc" = 0 ] || sed 's/^/    | /' "$dir/deliver.err"
pyfx 'e = c("ec2"); u = c("ec2", "us-east-1")
tags = lambda cl, i: {t["Key"]: t["Value"] for t in cl.describe_images(ImageIds=[i])["Images"][0].get("Tags", [])}
print(tags(e, sys.argv[1]).get("amiforge:pipeline"), tags(u, sys.argv[2]).get("amiforge:pipeline"))
st = {t["Key"]: t["Value"] for t in e.describe_snapshots(SnapshotIds=[sys.argv[5]])["Snapshots"][0].get("Tags", [])}
print(st.get("amiforge:build"))
lt = e.describe_launch_templates(LaunchTemplateIds=[sys.argv[3]])["LaunchTemplates"][0]
v = e.describe_launch_template_versions(LaunchTemplateId=sys.argv[3], Versions=["$Default"])["LaunchTemplateVersions"][0]
print(lt["LatestVersionNumber"], lt["DefaultVersionNumber"], v["LaunchTemplateData"].get("ImageId"), v["LaunchTemplateData"].get("InstanceType"))
p = c("ssm", "us-east-1").get_parameter(Name="/amiforge/" + sys.argv[4] + "/latest")["Parameter"]
print(p["Value"], p.get("DataType"))
arn = "arn:aws:ec2:eu-west-1:123456789012:image/" + sys.argv[1]
print(",".join(s["LicenseConfigurationArn"] for s in c("license-manager").list_license_specifications_for_resource(ResourceArn=arn)["LicenseSpecifications"]))' \
	"$ami_eu" "$ami_us" "$lt" "$name" "$snap_eu" >"$dir/dist" 2>&1
check_eq "deliver: both AMIs tagged amiforge:pipeline" "$(sed -n 1p "$dir/dist")" "$name $name"
check_eq "deliver: the snapshot tagged with the build id" "$(sed -n 2p "$dir/dist")" "pipe-$id-1.0.0-20250101-000000"
# (moto ignores SourceVersion=$Latest, so the other settings are not carried
# over there as in AWS: only the AMI is checked.)
check_eq "launch template: version 2, the default, holds the new AMI" \
	"$(sed -n 3p "$dir/dist" | cut -d' ' -f1-3)" "2 2 $ami_eu"
check_eq "SSM parameter: the us-east-1 AMI, data type aws:ec2:image" "$(sed -n 4p "$dir/dist")" "$ami_us aws:ec2:image"
check_eq "license configuration attached to the AMI (fixture)" "$(sed -n 5p "$dir/dist")" "$lic"
check_eq "deliver: success message with the AMIs per region" \
	"$(jq -r '[.status, (.amis|map("\(.region)=\(.imageId)")|join(","))] | join(" ")' "$dir/cmd2.json" 2>&1)" \
	"succeeded eu-west-1=$ami_eu,us-east-1=$ami_us"
# A launch template that does not exist: the run fails, and says which step.
sed -i "s/id: $lt/id: lt-0000000000000dead/" "$dir/p/dist.yaml"
"$AMIFORGE" pipeline deliver "$dir/p/dist.yaml" "$bd" >/dev/null 2>"$dir/deliver2.err"
check_eq "deliver: a missing launch template fails (exit 1)" "$?" 1
check "deliver: the failure names the launch template" \
	grep -q "distribution launch-template lt-0000000000000dead: CreateLaunchTemplateVersion: " "$dir/deliver2.err"
check_eq "deliver: failure message says distribution" \
	"$(jq -r '[.status, .failedStep] | join(" ")' "$dir/cmd2.json" 2>&1)" "failed distribution"

# ---- lifecycle -------------------------------------------------------------------
# eu-west-1: 4 AMIs of the pipeline (oldest first) + a newer one tagged keep=true
# + one of another pipeline; us-east-1: 2 AMIs. 1 s apart: creationDate differs.
pyfx 'out = {}
def make(region, n, tags):
    e = c("ec2", region)
    v = e.create_volume(AvailabilityZone=region + "a", Size=1)["VolumeId"]
    s = e.create_snapshot(VolumeId=v)["SnapshotId"]
    i = e.register_image(Name=n, RootDeviceName="/dev/xvda",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": s}}])["ImageId"]
    e.create_tags(Resources=[i], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    time.sleep(1.1)
    # moto gives the AMI a snapshot of its own: the one DescribeImages names
    s = e.describe_images(ImageIds=[i])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    return [i, s]
lc = sys.argv[1] + "lc"
for k in range(4):
    out["eu%d" % k] = make("eu-west-1", "%s-eu-%d" % (lc, k), {"amiforge:pipeline": lc})
for k in range(2):
    out["us%d" % k] = make("us-east-1", "%s-us-%d" % (lc, k), {"amiforge:pipeline": lc})
out["keep"] = make("eu-west-1", lc + "-keep", {"amiforge:pipeline": lc, "keep": "true"})
out["other"] = make("eu-west-1", lc + "-other", {"amiforge:pipeline": lc + "x"})
print(json.dumps(out))' "$name" >"$dir/lc.json" 2>&1
g() { jq -r ".$1[$2]" "$dir/lc.json" 2>&1; }
{
	printf 'pipeline: %slc\nrecipe: recipe.yaml\n' "$name"
	cat <<'EOF'
lifecycle:
  regions: [eu-west-1, us-east-1]
  exclude_tags: {keep: "true"}
  rules:
    - {action: deprecate, keep_last: 1}
    - {action: disable, keep_last: 2}
    - {action: delete, keep_last: 3}
EOF
} >"$dir/p/lc.yaml"
"$AMIFORGE" lifecycle plan "$dir/p/lc.yaml" --json >"$dir/plan.json" 2>"$dir/plan.err"
check_eq "lifecycle plan: exit 0" "$?" 0
plan_of() { jq -r --arg i "$1" '[.regions[][] | select(.image == $i) | .action] | join(",")' "$dir/plan.json" 2>&1; }
check_eq "plan: eu-west-1 newest kept, then deprecate, disable, delete; excluded left" \
	"$(plan_of "$(g eu3 0)") $(plan_of "$(g eu2 0)") $(plan_of "$(g eu1 0)") $(plan_of "$(g eu0 0)") $(plan_of "$(g keep 0)")" \
	"keep deprecate disable delete keep"
check_eq "plan: the excluded AMI is marked excluded" \
	"$(jq -r --arg i "$(g keep 0)" '.regions["eu-west-1"][] | select(.image == $i) | .excluded' "$dir/plan.json" 2>&1)" true
check_eq "plan: us-east-1 keeps the newest, deprecates the other" \
	"$(plan_of "$(g us1 0)") $(plan_of "$(g us0 0)")" "keep deprecate"
check_eq "plan: another pipeline's AMI is not listed" "$(plan_of "$(g other 0)")" ""
check_eq "plan: 7 AMIs considered" "$(jq '[.regions[][]] | length' "$dir/plan.json" 2>&1)" 7
check_eq "plan: changes nothing" "$(grep -cE 'EnableImageDeprecation|DisableImage' "$dir/fx.log")" 0

"$AMIFORGE" lifecycle apply "$dir/p/lc.yaml" >"$dir/apply.out" 2>"$dir/apply.err"
rc=$?
check_eq "lifecycle apply: exit 0" "$rc" 0
[ "$rc" = 0 ] || sed 's/^/    | /' "$dir/apply.err"
facts() {
	pyfx 'e, u = c("ec2"), c("ec2", "us-east-1")
lc = json.load(open(sys.argv[1]))
def exists(cl, i):
    return bool(cl.describe_images(ImageIds=[i], IncludeDeprecated=True)["Images"]) if True else None
def img(cl, i):
    try: return cl.describe_images(ImageIds=[i])["Images"][0]
    except Exception: return None
def snap(cl, s):
    try: return len(cl.describe_snapshots(SnapshotIds=[s])["Snapshots"])
    except Exception: return 0
r = []
for k in ("eu0", "eu1", "eu2", "eu3", "keep", "other"):
    i = img(e, lc[k][0])
    r.append("%s:%s/%s/%d" % (k, "gone" if i is None else i.get("State"), "dep" if i and i.get("DeprecationTime") else "-", snap(e, lc[k][1])))
for k in ("us0", "us1"):
    i = img(u, lc[k][0])
    r.append("%s:%s/%s/%d" % (k, "gone" if i is None else i.get("State"), "dep" if i and i.get("DeprecationTime") else "-", snap(u, lc[k][1])))
print(" ".join(r))' "$dir/lc.json" 2>&1
}
# Through the fixture: describe_images without IncludeDisabled hides disabled AMIs ("gone").
check_eq "apply: deleted (AMI and snapshot), disabled, deprecated, kept; excluded and other untouched" \
	"$(facts)" \
	"eu0:gone/-/0 eu1:gone/-/1 eu2:available/dep/1 eu3:available/-/1 keep:available/-/1 other:available/-/1 us0:available/dep/1 us1:available/-/1"
check_eq "apply: the disabled AMI is listed with IncludeDisabled" \
	"$(pyfx 'print(c("ec2").describe_images(ImageIds=[sys.argv[1]], IncludeDisabled=True)["Images"][0]["State"])' "$(g eu1 0)" 2>&1)" \
	disabled
j=$dir/p/.amiforge-pipeline/${name}lc/lifecycle.journal
check_eq "apply: journal: begin and done for each of 4 actions" \
	"$(jq -r '.phase' "$j" 2>&1 | sort | uniq -c | tr -s ' ' | sed 's/^ //' | tr '\n' ' ')" "4 begin 4 done "
check_eq "apply: the deletion's journal entry lists its snapshot" \
	"$(jq -r --arg i "$(g eu0 0)" 'select(.image == $i and .phase == "begin") | .snapshots | join(",")' "$j" 2>&1)" "$(g eu0 1)"
calls=$(grep -cE 'EnableImageDeprecation|DisableImage' "$dir/fx.log")
"$AMIFORGE" lifecycle apply "$dir/p/lc.yaml" >"$dir/apply2.out" 2>&1
check_eq "apply again: exit 0" "$?" 0
check_eq "apply again: no new deprecation or disable call" \
	"$(grep -cE 'EnableImageDeprecation|DisableImage' "$dir/fx.log")" "$calls"
check_eq "apply again: nothing journaled" "$(wc -l <"$j")" 8
check_eq "apply again: the 3 actions in effect are said so" \
	"$(grep -c "already " "$dir/apply2.out")" 3

# An apply killed between DeregisterImage and DeleteSnapshot: the journal has
# the begin entry; the next apply deletes the snapshot left.
pyfx 'c("ec2", "us-east-1").deregister_image(ImageId=sys.argv[1])' "$(g us0 0)" >/dev/null 2>&1
jq -nc --arg i "$(g us0 0)" --arg s "$(g us0 1)" \
	'{action: "delete", image: $i, phase: "begin", region: "us-east-1", snapshots: [$s], time: "2025-01-01T00:00:00Z"}' >>"$j"
"$AMIFORGE" lifecycle apply "$dir/p/lc.yaml" >"$dir/apply3.out" 2>"$dir/apply3.err"
check_eq "apply after an interrupted deletion: exit 0" "$?" 0
check "apply after an interrupted deletion: says it finishes it" \
	grep -q "finishing the deletion of $(g us0 0) in us-east-1 (journal)" "$dir/apply3.err"
check_eq "apply after an interrupted deletion: its snapshot is deleted" \
	"$(pyfx 'import botocore
try: print(len(c("ec2", "us-east-1").describe_snapshots(SnapshotIds=[sys.argv[1]])["Snapshots"]))
except botocore.exceptions.ClientError as e: print(e.response["Error"]["Code"])' "$(g us0 1)" 2>&1)" \
	"InvalidSnapshot.NotFound"
check_eq "apply after an interrupted deletion: journaled done" \
	"$(tail -n 1 "$j" | jq -r '[.image, .phase] | join(" ")' 2>&1)" "$(g us0 0) done"

kill "$hook_pid" 2>/dev/null
wait "$hook_pid" 2>/dev/null
finish
