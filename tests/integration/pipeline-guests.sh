#!/bin/bash
# suite: guests  (make check-guests: slower guest tests, run by CI after make check)
# A pipeline with condition onlyIfUpdated over real builds on the Debian
# fixture (two guest builds):
#   1. the first run builds (reason "first build"), notifies the command;
#   2. a second run with nothing changed builds nothing ("skipped");
#   3. the base image touched (same content): still nothing built;
#   4. the base image changed (qemu-img resize of the copy): a build, whose
#      reason names the base image; status --json holds the three runs.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/build.sh"

build_test_setup pipeline-guests
cp "$base" "$dir/r/base.qcow2"
cp "$TOP/tests/recipes/components/hello.yaml" "$dir/r/hello.yaml"
cat >"$dir/r/recipe.yaml" <<'EOF'
name: pipeline-guest
version: 1.0.0
parent: {path: base.qcow2, format: qcow2}
components:
  - hello.yaml
EOF
cat >"$dir/r/pipeline.yaml" <<EOF
pipeline: guests-$$
recipe: recipe.yaml
schedule:
  expression: cron(0 4 ? * SUN *)
  condition: onlyIfUpdated
notifications:
  commands:
    - [tee, -a, "$dir/messages"]
EOF
p=$dir/r/pipeline.yaml
st() { "$AMIFORGE" pipeline status "$p" --json 2>&1 | jq -r "$1" 2>&1; }

t0=$SECONDS
"$AMIFORGE" pipeline run "$p" --now >"$dir/run1.out" 2>"$dir/run1.err"
rc=$?
echo "first pipeline build: $((SECONDS - t0)) s"
check_eq "run 1: a build, exit 0" "$rc" 0
[ "$rc" = 0 ] || tail -n 20 "$dir/run1.err" | sed 's/^/    | /'
check_eq "run 1: recorded succeeded, first build, with a build directory" \
	"$(st '.runs[0] | [.status, .reason, (.build_dir | startswith("'"$dir"'/r/builds/pipeline-guest-1.0.0-"))] | join(" ")')" \
	"succeeded first build true"
check_eq "run 1: the build's manifest says succeeded" \
	"$(jq -r .build.status "$(st '.runs[0].build_dir')/manifest.json" 2>&1)" succeeded
check_eq "run 1: the command got the success message" \
	"$(jq -sr '.[-1] | [.status, .buildId] | join(" ")' "$dir/messages" 2>&1)" \
	"succeeded $(st '.runs[0].build_id')"

"$AMIFORGE" pipeline run "$p" --now >"$dir/run2.out" 2>"$dir/run2.err"
check_eq "run 2 (nothing changed): exit 0" "$?" 0
check "run 2: says nothing to build" grep -q "nothing to build: inputs unchanged since run 1" "$dir/run2.out"
check_eq "run 2: recorded skipped, no build directory" \
	"$(st '.runs[1] | [.status, (.build_dir // "none")] | join(" ")')" "skipped none"
check_eq "run 2: one build directory in all" "$(ls -d "$dir"/r/builds/pipeline-guest-* | wc -l)" 1

touch "$dir/r/base.qcow2"
"$AMIFORGE" pipeline run "$p" --now >"$dir/run3.out" 2>"$dir/run3.err"
check_eq "run 3 (base touched, same content): exit 0, skipped" \
	"$?:$(st '.runs[2].status')" "0:skipped"
check "run 3: the base was hashed again (its mtime changed)" \
	grep -q "pipeline: hashing the base image" "$dir/run3.err"

qemu-img resize -q -f qcow2 "$dir/r/base.qcow2" +64M
t0=$SECONDS
"$AMIFORGE" pipeline run "$p" --now >"$dir/run4.out" 2>"$dir/run4.err"
rc=$?
echo "second pipeline build: $((SECONDS - t0)) s"
check_eq "run 4 (base changed): a build, exit 0" "$rc" 0
[ "$rc" = 0 ] || tail -n 20 "$dir/run4.err" | sed 's/^/    | /'
check_eq "run 4: recorded succeeded because the base image changed" \
	"$(st '.runs[3] | [.status, .reason] | join(" ")')" "succeeded base image changed"
check_eq "run 4: two build directories now" "$(ls -d "$dir"/r/builds/pipeline-guest-* | wc -l)" 2
check_eq "status: four runs: succeeded, skipped, skipped, succeeded" \
	"$(st '[.runs[].status] | join(",")')" "succeeded,skipped,skipped,succeeded"
finish
