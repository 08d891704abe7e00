#!/bin/bash
# Build guests have a network (issue 25), on the Debian fixture, in as few
# guests as the cases allow:
#  1. the recipe with `vm.network: none` (one guest, fails early): the
#     first step that reaches out fails, its message says the guest is offline
#     because the recipe asked for it;
#  2. the same recipe with the default user network (build + test guest): the
#     component runs UpdateOS and `apt-get install -y hello` from Debian's
#     package registry; vm.proxy reaches every step's environment and never
#     a log; the test phase, on a fresh boot of the output, runs `hello`,
#     finds no upgradable package, and reaches a service in its guest through
#     the vm.forward port on the host (10.0.2.2 is the host's 127.0.0.1 seen
#     from the user network: guest → host loopback → hostfwd → guest);
#  3. the output disk, read-only with guestfish (one appliance): no DHCP
#     lease, no build-time resolv.conf, no cloud-init network file for the
#     build's instance, no proxy.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/build.sh"

build_test_setup build-network
export LIBGUESTFS_BACKEND=${LIBGUESTFS_BACKEND:-direct}
if [ ! -w /dev/kvm ] || [ -e /sys/module/kvm_pvm ]; then
	guestfish() { LIBGUESTFS_BACKEND_SETTINGS=force_tcg command guestfish "$@"; }
fi
# A proxy with credentials that nothing uses (the fixture's apt sources are
# http://; https_proxy is for https:// only; .invalid never resolves): it
# must reach the steps and no log.
SECRET=s3cretPW-$$-net
PROXY="http://builder:$SECRET@proxy.invalid:3128"
PROXY_SHA=$(printf %s "$PROXY" | sha256sum | cut -d' ' -f1)

r="$dir/r"
cat >"$r/install.yaml" <<EOF
name: net-install
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: ProxyEnv
        action: ExecuteBash
        inputs:
          commands:
            - test "\$(printf %s "\$https_proxy" | sha256sum | cut -d' ' -f1)" = $PROXY_SHA
            - test "\$HTTPS_PROXY" = "\$https_proxy"
            - test "\$no_proxy" = "localhost,10.0.2.2"
      - name: Update
        action: UpdateOS
      - name: InstallHello
        action: ExecuteBash
        inputs:
          commands:
            - apt-get install -y hello
EOF
cat >"$r/test.yaml" <<'EOF'
name: net-test
schemaVersion: 1.0
phases:
  - name: test
    steps:
      - name: Hello
        action: ExecuteBash
        inputs:
          commands:
            - test "$(hello)" = "Hello, world!"
      - name: NoUpgrades
        action: ExecuteBash
        inputs:
          commands:
            - apt-get update -qq
            - apt-get -s dist-upgrade | grep '^Inst' || true
            - test "$(apt-get -s dist-upgrade | grep -c '^Inst')" -eq 0
      - name: ForwardedPort
        action: ExecuteBash
        inputs:
          commands:
            - mkdir -p /tmp/www && echo "forwarded $AMIFORGE_HOST_PORT_8000" >/tmp/www/marker
            - cd /tmp/www && setsid python3 -m http.server 8000 </dev/null >/dev/null 2>&1 &
            - |
              for i in $(seq 1 60); do
                if got=$(python3 -c 'import os, urllib.request as u; print(u.urlopen("http://%s:%s/marker" % (os.environ["AMIFORGE_HOST_ADDR"], os.environ["AMIFORGE_HOST_PORT_8000"]), timeout=5).read().decode().strip())' 2>/dev/null); then
                  echo "through the host: $got"; test "$got" = "forwarded $AMIFORGE_HOST_PORT_8000"; exit $?
                fi
                sleep 1
              done
              echo "nothing answered on $AMIFORGE_HOST_ADDR:$AMIFORGE_HOST_PORT_8000" >&2; exit 1
EOF
cat >"$r/recipe.yaml" <<EOF
name: nettest
version: 1.0.0
parent: $base
components:
  - path: install.yaml
tests:
  - path: test.yaml
vm:
  memory: 1024
  proxy: {https: "$PROXY", no_proxy: "localhost,10.0.2.2"}
  forward: [8000]
EOF

# 1. Offline: the recipe asks for no network.
t0=$SECONDS
sed 's/^  forward: .*/  network: none/' "$r/recipe.yaml" >"$r/recipe-offline.yaml"
run_build "$dir/off.json" "$dir/off.err" "$r/recipe-offline.yaml" --output "$dir/builds-off" --json
rc=$?
echo "offline build: exit $rc after $((SECONDS - t0)) s"
check "network none: the build fails" test "$rc" -ne 0
failed_step=$(python3 - "$dir/off.json" <<'PY'
import json, sys
for e in map(json.loads, filter(str.strip, open(sys.argv[1]))):
    if e['event'] == 'step' and e['status'] == 'Failed':
        print(e['name'], '|', e.get('detail', '')); break
PY
)
echo "offline failure: $failed_step"
check_contains "network none: a step that reaches out fails" "$failed_step" "net-install/build/"
check_contains "network none: the message says the guest is offline because of the recipe" \
	"$failed_step" "[the guest is offline: the recipe sets vm.network: none]"
check "network none: the steps before it ran (the proxy environment)" \
	test "$(step_status "$dir/off.json" net-install/build/ProxyEnv)" = Success
check_eq "network none: no domain left" "$(domains_of "$build_pid")" 0

# 2. The default network.
t0=$SECONDS
# Without the inspection: case 3 reads the output itself (build.sh checks
# the inspection).
run_build "$dir/on.json" "$dir/on.err" "$r/recipe.yaml" --output "$dir/builds" --json --no-inspect
rc=$?
echo "online build: exit $rc after $((SECONDS - t0)) s"
check_eq "network user: the build succeeds" "$rc" 0
[ "$rc" = 0 ] || { sed 's/^/    | /' "$dir/on.err" | tail -n 30; grep '"Failed"' "$dir/on.json" | head -5; }
for s in ProxyEnv Update InstallHello; do
	check_eq "network user: step $s" "$(step_status "$dir/on.json" "net-install/build/$s")" Success
done
for s in Hello NoUpgrades ForwardedPort; do
	check_eq "network user: test step $s (fresh boot of the output)" \
		"$(step_status "$dir/on.json" "net-test/test/$s")" Success
done
# The offline build saved a checkpoint after ProxyEnv; the network is part
# of the key, so this build must not boot from it.
if [ "$(count_events "$dir/off.json" checkpoint saved)" -gt 0 ]; then
	check_eq "checkpoints: the offline build's layers are not reused online" \
		"$(count_events "$dir/on.json" checkpoint reused)" 0
else
	fail "checkpoints: the offline build saved no checkpoint to compare with"
fi
[ "$rc" = 0 ] && check "network user: the forward is on the host's 127.0.0.1" \
	grep -Eq 'port forward: 127\.0\.0\.1:[0-9]+ → guest port 8000' "$dir/on.err"
bd=$(ls -d "$dir"/builds/nettest-1.0.0-* 2>/dev/null | head -n 1)
[ -d "$bd/toe" ] && check "proxy: the password is in no log, event, manifest or TOE file" \
	bash -c "! grep -rqF -- '$SECRET' '$dir/on.json' '$dir/on.err' '$dir/off.json' '$dir/off.err' '$bd' '$dir'/builds-off"
check_eq "network user: no domain left" "$(domains_of "$build_pid")" 0

# 3. The output disk, read-only.
disk="$bd/output/nettest-1.0.0.qcow2"
if [ -s "$disk" ]; then
	guestfish --ro -a "$disk" -i >"$dir/gf.out" 2>"$dir/gf.err" <<'EOF'
echo leases:
-glob ls /var/lib/dhcp/
echo resolv-file:
-is-file /etc/resolv.conf followsymlinks:false
echo resolv-link:
-is-symlink /etc/resolv.conf
echo eni:
-glob ls /etc/network/interfaces.d/
echo hello:
-is-file /usr/bin/hello
echo proxy:
-sh "grep -rlF proxy.invalid /etc /root /var/lib/cloud 2>/dev/null || true"
echo end:
EOF
	sed 's/^/    gf| /' "$dir/gf.out"
	section() { awk -v s="$1:" '$0==s{f=1;next} /^[a-z-]+:$/{f=0} f' "$dir/gf.out"; }
	check "image: read with guestfish" grep -qx end: "$dir/gf.out"
	check_eq "image: hello installed" "$(section hello)" true
	check_eq "image: no DHCP lease in /var/lib/dhcp" "$(section leases | grep -c lease)" 0
	check_eq "image: no build-time /etc/resolv.conf (file)" "$(section resolv-file)" false
	check_eq "image: no cloud-init interfaces file for the build's instance" \
		"$(section eni | grep -c 50-cloud-init)" 0
	check_eq "image: the proxy is not written into it" "$(section proxy)" ""
else
	fail "image: output disk missing"
fi
finish
