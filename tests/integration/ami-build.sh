#!/bin/bash
# suite: guests  (make check-guests: a build guest boots a base fetched from an AMI)
# A build whose parent is an AMI (issue 20's tests), against moto: the Debian
# fixture is published --via ebs and registered; a recipe with
# parent: {ami: ...} then builds from it: the base is fetched through EBS
# direct (content equal to the fixture block for block), the build guest
# boots it and runs the demo's component (hello-web, with its reboot) and a
# step that packages the service with dpkg in the guest; the last step lists
# the image's packages with `dpkg-query -W` through the agent. The build's
# SBOM (read offline from the output disk) lists exactly those packages and
# validates; `amiforge diff` between the fixture and the output shows the
# package added and the files the component wrote. A second fetch of the AMI
# asks AWS nothing; a recipe whose parent is an SSM parameter naming the AMI
# builds from the same cached base.
# TEST FIXTURE: moto 5.2.1 drops RegisterImage's block device mapping;
# image-fixture.py describes registered AMIs as AWS documents.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/build.sh"
. "$TOP/tests/fixtures/aws/lib.sh"

require aws ami-build
build_test_setup ami-build
aws_env "$AMIFORGE_TEST_MOTO_URL"
id=$$
jf() { jq -r "$1" "$2" 2>/dev/null; }

fx=$(start_image_fixture) || { fail "ami-build: image fixture did not start"; exit 1; }
export AWS_ENDPOINT_URL=$fx

# 1. The fixture as an AMI.
t0=$(date +%s)
"$AMIFORGE" publish "$base" --via ebs --name "ami-build-$id" --block-dir "$dir" --json \
	>"$dir/pub" 2>"$dir/pub.err"
rc=$?
check_eq "ami-build: the fixture published --via ebs" "$rc" 0
[ "$rc" = 0 ] || { tail -n 5 "$dir/pub.err" | sed 's/^/    | /'; finish; exit; }
ami=$(jf .ami_id "$dir/pub")
echo "# publish: $(($(date +%s) - t0)) s, $(jf .ebs.blocks_sent "$dir/pub") blocks"

# 2. A recipe on it: the demo's component, a package made with dpkg in the
# guest, and the package list as dpkg-query sees it inside the image.
cat >"$dir/r/pkg.yaml" <<'EOF'
name: hello-web-package
description: the demo's web service as a Debian package, made and installed in the guest
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: Package
        action: ExecuteBash
        inputs:
          commands:
            - |
              set -e
              mkdir -p /tmp/hw/DEBIAN /tmp/hw/usr/share/doc/hello-web
              echo "amiforge demo" >/tmp/hw/usr/share/doc/hello-web/README
              cat >/tmp/hw/DEBIAN/control <<CONTROL
              Package: hello-web
              Version: 1.0.0-1
              Architecture: all
              Maintainer: amiforge tests <tests@example.invalid>
              Description: amiforge demo web service
              CONTROL
              dpkg-deb --build /tmp/hw /tmp/hello-web.deb
              dpkg -i /tmp/hello-web.deb
              rm -rf /tmp/hw /tmp/hello-web.deb
      - name: Packages
        action: ExecuteBash
        inputs:
          commands:
            - |
              dpkg-query -W -f '${db:Status-Abbrev} ${Package} ${Version}\n' | sed -n 's/^ii  */PKG /p'
EOF
cat >"$dir/r/from-ami.yaml" <<EOF
name: from-ami
version: 1.0.0
parent:
  ami: $ami
  region: $AWS_REGION
components:
  - path: $TOP/recipes/components/hello-web.yaml
    parameters:
      Port: "8080"
      Greeting: "hello from an AMI"
  - path: pkg.yaml
vm:
  cpus: 2
  memory: 1024
output:
  formats: [qcow2]
EOF
t0=$(date +%s)
run_build "$dir/b.out" "$dir/b.err" "$dir/r/from-ami.yaml" --output "$dir/builds" --json
rc=$?
check_eq "ami-build: a recipe with parent: {ami} builds (exit status)" "$rc" 0
[ "$rc" = 0 ] || tail -n 20 "$dir/b.err" | sed 's/^/    | /'
echo "# build: $(($(date +%s) - t0)) s"
bd=$(ls -d "$dir"/builds/from-ami-1.0.0-* 2>/dev/null | head -n 1)
m=$bd/manifest.json
check_eq "ami-build: the manifest's base is the AMI" \
	"$(python3 -c "import json,sys; b=[i for i in json.load(open(sys.argv[1]))['inputs'] if i['kind']=='base'][0]
print(b['source'].split(' ')[0], b['format'], b.get('architecture'))" "$m" 2>&1)" "$ami qcow2 x86_64"
cached=$(python3 -c "import json,sys; print([i for i in json.load(open(sys.argv[1]))['inputs'] if i['kind']=='base'][0]['path'])" "$m" 2>/dev/null)
check "ami-build: the fetched base equals the fixture block for block" \
	qemu-img compare -q -f qcow2 -F qcow2 "$base" "$cached"
check "ami-build: the build guest booted the fetched base (its console log)" \
	grep -q 'serving /dev/vport' "$bd/console.log"

# 3. The SBOM against dpkg-query inside the image (the agent's output).
want=$(python3 -c '
import glob, json, sys
out = set()
def walk(o):
    if isinstance(o, dict):
        for v in o.values(): walk(v)
    elif isinstance(o, list):
        for v in o: walk(v)
    elif isinstance(o, str):
        out.update(l[4:] for l in o.split("\n") if l.startswith("PKG "))
for f in glob.glob(sys.argv[1] + "/toe/TOE_*/detailedoutput.json"):
    walk(json.load(open(f)))
print("\n".join(sorted(out)))' "$bd")
sb=$(jf '.inspect.sbom.path // empty' "$m")
check "ami-build: the build wrote its SBOM ($sb)" test -n "$sb" -a -s "$sb"
check "ami-build: the SBOM validates against CycloneDX 1.5" python3 "$TOP/tests/lib/cdx_validate.py" "$sb"
got=$(python3 -c 'import json,sys
for c in json.load(open(sys.argv[1]))["components"]: print(c["name"], c["version"])' "$sb" 2>/dev/null | sort)
check "ami-build: dpkg-query in the guest listed packages ($(echo "$want" | grep -c .))" \
	test "$(echo "$want" | grep -c .)" -gt 100
check_contains "ami-build: ... the package made in the guest among them" "$want" "hello-web 1.0.0-1"
if [ -n "$want" ] && [ "$got" = "$want" ]; then
	pass "ami-build: the SBOM lists exactly what dpkg-query lists inside the image"
else
	fail "ami-build: SBOM and dpkg-query differ: $(diff <(echo "$want") <(echo "$got") | head -n 6 | tr '\n' ' ')"
fi

# 4. diff: the fixture against the build's output.
out=$("$AMIFORGE" -q diff "$base" "$bd/output/from-ami-1.0.0.qcow2" --input-format qcow2 \
	--paths /etc/systemd/system,/srv,/usr/share/doc/hello-web 2>&1)
check_eq "ami-build: diff fixture output (exit status)" "$?" 0
check_eq "ami-build: diff shows the package added" "$(grep -c '^+ ' <<<"$out") $(grep -x '+ hello-web 1.0.0-1' <<<"$out")" \
	"1 + hello-web 1.0.0-1"
check_eq "ami-build: diff shows no package removed or changed" "$(grep -c '^[-~] ' <<<"$out")" 0
for f in /srv/hello-web/index.html /etc/systemd/system/hello-web.service \
	/usr/share/doc/hello-web/README; do
	check "ami-build: diff shows the file $f written" grep -qx "A $f" <<<"$out"
done

# 5. The second fetch asks AWS nothing.
AWS_ENDPOINT_URL=http://127.0.0.1:9 "$AMIFORGE" cache fetch "$ami" >"$dir/f2" 2>&1
check_eq "ami-build: fetching the AMI again with AWS unreachable succeeds" "$?" 0
check_eq "ami-build: ... from the cache, the same object" \
	"$(grep -cx cached "$dir/f2") $(sed -n 's/^path //p' "$dir/f2")" "1 $cached"

# 6. Once via an SSM parameter naming the AMI: resolved, the base taken from
# the cache (no block fetched), the guest boots it and runs a step.
python3 -c "
import boto3, os, sys
c = boto3.client('ssm', endpoint_url=os.environ['AMIFORGE_TEST_MOTO_URL'],
                 region_name=os.environ['AWS_REGION'], aws_access_key_id='x', aws_secret_access_key='x')
c.put_parameter(Name=sys.argv[1], Value=sys.argv[2], Type='String', DataType='aws:ec2:image',
                Overwrite=True)" /amiforge/test/golden "$ami" || fail "ami-build: put the SSM parameter"
cat >"$dir/r/mark.yaml" <<'EOF'
name: ssm-mark
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: Mark
        action: ExecuteBash
        inputs:
          commands:
            - echo "built from ssm" > /var/lib/ssm-mark
EOF
cat >"$dir/r/from-ssm.yaml" <<EOF
name: from-ssm
version: 1.0.0
parent:
  ssm: /amiforge/test/golden
  region: $AWS_REGION
components:
  - path: mark.yaml
output:
  formats: [qcow2]
EOF
t0=$(date +%s)
run_build "$dir/s.out" "$dir/s.err" "$dir/r/from-ssm.yaml" --output "$dir/builds" --json --no-inspect
rc=$?
check_eq "ami-build: a recipe with parent: {ssm} builds (exit status)" "$rc" 0
[ "$rc" = 0 ] || tail -n 20 "$dir/s.err" | sed 's/^/    | /'
echo "# build from ssm: $(($(date +%s) - t0)) s"
bd=$(ls -d "$dir"/builds/from-ssm-1.0.0-* 2>/dev/null | head -n 1)
check_eq "ami-build: the SSM build's base is the AMI's cached base" \
	"$(python3 -c "import json,sys; b=[i for i in json.load(open(sys.argv[1]))['inputs'] if i['kind']=='base'][0]
print(b['source'].split(' ')[0], b['path'])" "$bd/manifest.json" 2>&1)" "$ami $cached"
check_eq "ami-build: the SSM build's output has the step's file" \
	"$(guestfish --ro --format=qcow2 -a "$bd/output/from-ssm-1.0.0.qcow2" -i cat /var/lib/ssm-mark 2>&1)" \
	"built from ssm"
finish
