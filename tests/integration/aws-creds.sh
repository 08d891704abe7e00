#!/bin/bash
# Credential, region and endpoint resolution like the AWS CLI, against moto:
# env, ~/.aws/credentials, [profile x] in ~/.aws/config, credential_process,
# role_arn + source_profile (STS AssumeRole), IMDSv2, per-service endpoints.
# Every secret contains a canary that must never appear in any output or in
# any file amiforge writes, even with --verbose (which logs request headers).
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/fixtures/aws/lib.sh"

require aws aws-creds
dir=$AWSFX_DIR
moto=$AMIFORGE_TEST_MOTO_URL
CANARY=CANARY7f3e9a
all_out=$dir/all-output
: >"$all_out"

clean_env() {
	unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE AWS_REGION \
		AWS_DEFAULT_REGION AWS_ENDPOINT_URL_STS AWS_EC2_METADATA_SERVICE_ENDPOINT
	export AWS_ENDPOINT_URL=$moto AWS_EC2_METADATA_DISABLED=true
	export AWS_CONFIG_FILE=$dir/config AWS_SHARED_CREDENTIALS_FILE=$dir/credentials
	: >"$dir/config"
	: >"$dir/credentials"
}

whoami() {	# run `amiforge -v aws whoami`, keep all output for the canary check
	"$AMIFORGE" -v aws whoami "$@" >"$dir/out" 2>"$dir/err"
	local rc=$?
	cat "$dir/out" "$dir/err" >>"$all_out"
	return $rc
}
field() { sed -n "s/^$1: //p" "$dir/out"; }

# 1. Environment, with a session token (logged headers must be redacted).
clean_env
export AWS_ACCESS_KEY_ID=AKIDENV000000001 AWS_SECRET_ACCESS_KEY=env-$CANARY-secret
export AWS_SESSION_TOKEN=env-$CANARY-token AWS_REGION=eu-central-1
check "env: whoami works" whoami
check_eq "env: source" "$(field Source)" env
check_eq "env: key id" "$(field AccessKeyId)" AKIDENV000000001
check_eq "env: region from AWS_REGION" "$(field Region)" eu-central-1
check "env: the token header is logged redacted" grep -q 'X-Amz-Security-Token: \[REDACTED\]' "$dir/err"

# 2. ~/.aws/credentials [default], region from [default] in config.
clean_env
printf '[default]\naws_access_key_id = AKIDFILE00000002\naws_secret_access_key = file-%s-secret\n' \
	"$CANARY" >"$dir/credentials"
printf '[default]\nregion = ap-south-1\n' >"$dir/config"
check "credentials file: whoami works" whoami
check_eq "credentials file: source" "$(field Source)" shared-credentials-file
check_eq "credentials file: region from config" "$(field Region)" ap-south-1
AWS_DEFAULT_REGION=us-west-2 whoami
check_eq "AWS_DEFAULT_REGION beats the profile" "$(field Region)" us-west-2

# 3. AWS_PROFILE selecting [profile dev] keys in ~/.aws/config.
clean_env
cat >"$dir/config" <<EOC
[default]
region = eu-west-1

[profile dev]
region = sa-east-1
aws_access_key_id = AKIDCONF00000003
aws_secret_access_key = conf-$CANARY-secret
s3 =
  max_concurrent_requests = 20
EOC
AWS_PROFILE=dev whoami
check_eq "profile in config: source" "$(field Source)" config-file
check_eq "profile in config: key id" "$(field AccessKeyId)" AKIDCONF00000003
check_eq "profile in config: region" "$(field Region)" sa-east-1
whoami --profile dev --region us-east-2
check_eq "--region beats the profile" "$(field Region)" us-east-2
AWS_PROFILE=missing whoami
check "missing profile: fails" test $? -ne 0
check "missing profile: says so" grep -q "AWS profile 'missing' not found" "$dir/err"

# 4. credential_process (split like the CLI, no shell).
clean_env
json="{\"Version\": 1, \"AccessKeyId\": \"AKIDPROC00000004\", \"SecretAccessKey\": \"proc-$CANARY-secret\", \"SessionToken\": \"proc-$CANARY-token\", \"Expiration\": \"2099-01-01T00:00:00Z\"}"
printf "[profile proc]\nregion = eu-west-1\ncredential_process = printf '%%s' '%s'\n" "$json" >"$dir/config"
AWS_PROFILE=proc whoami
check_eq "credential_process: source" "$(field Source)" credential-process
check_eq "credential_process: key id" "$(field AccessKeyId)" AKIDPROC00000004
printf "[profile bad]\ncredential_process = printf '{\"Version\": 2}'\n" >"$dir/config"
AWS_PROFILE=bad whoami
check "credential_process: wrong Version refused" grep -q "unsupported Version" "$dir/err"
printf "[profile bad]\ncredential_process = printf 'unterminated\n" >"$dir/config"
AWS_PROFILE=bad whoami
check "credential_process: bad quoting refused" grep -q "unterminated quote" "$dir/err"

# 5. role_arn + source_profile: STS AssumeRole (moto), used for the call.
clean_env
printf '[base]\naws_access_key_id = AKIDBASE00000005\naws_secret_access_key = base-%s-secret\n' \
	"$CANARY" >"$dir/credentials"
printf '[profile role]\nrole_arn = arn:aws:iam::123456789012:role/amiforge-test\nsource_profile = base\nrole_session_name = amiforge-ci\nregion = eu-west-1\n' >"$dir/config"
AWS_PROFILE=role whoami
check_eq "assume role: source" "$(field Source)" assume-role
check_contains "assume role: the call runs as the role" "$(field Arn)" "assumed-role/amiforge-test/amiforge-ci"
check "assume role: temporary key, not the source's" test "$(field AccessKeyId)" != AKIDBASE00000005

# 6. IMDSv2 (moto serves the instance metadata).
clean_env
unset AWS_EC2_METADATA_DISABLED
export AWS_EC2_METADATA_SERVICE_ENDPOINT=$moto AWS_REGION=eu-west-1
whoami
check_eq "imds: source" "$(field Source)" imds
check "imds: a key id" test -n "$(field AccessKeyId)"

# 7. Per-service endpoints: STS at moto, everything else at a dead port.
clean_env
export AWS_ACCESS_KEY_ID=AKIDENV000000001 AWS_SECRET_ACCESS_KEY=env-$CANARY-secret AWS_REGION=eu-west-1
export AWS_ENDPOINT_URL=http://127.0.0.1:9 AWS_ENDPOINT_URL_STS=$moto
check "AWS_ENDPOINT_URL_STS overrides AWS_ENDPOINT_URL" whoami
clean_env
export AWS_ACCESS_KEY_ID=AKIDENV000000001 AWS_SECRET_ACCESS_KEY=env-$CANARY-secret AWS_REGION=eu-west-1
AWS_ENDPOINT_URL=ftp://x whoami
check "endpoint URL scheme checked" grep -q "must start with http" "$dir/err"

# 8. No credentials at all.
clean_env
AWS_REGION=eu-west-1 whoami
check "no credentials: clear error" grep -q "no AWS credentials found" "$dir/err"

# 8b. 40 profiles in ~/.aws/credentials, each with a secret and a token: the
# redactor has no fixed table (it used to stop after 64 secrets).
clean_env
for i in $(seq -w 1 40); do
	printf '[p%s]\naws_access_key_id = AKIDPROF000000%s\naws_secret_access_key = p%s-%s-secret\naws_session_token = p%s-%s-token\n' \
		"$i" "$i" "$i" "$CANARY" "$i" "$CANARY" >>"$dir/credentials"
done
for p in p01 p33 p40; do
	AWS_PROFILE=$p AWS_REGION=eu-west-1 whoami
	check_eq "40 profiles: $p used" "$(field AccessKeyId)" "AKIDPROF000000${p#p}"
	check "40 profiles: $p token header logged redacted" \
		grep -q 'X-Amz-Security-Token: \[REDACTED\]' "$dir/err"
	check "40 profiles: $p no canary with --verbose" test "$(grep -c "$CANARY" "$dir/out" "$dir/err" | grep -vc ':0$')" = 0
done

# 9. The canary is nowhere: outputs above, and a publish's manifest and log.
clean_env
fx=$(start_import_fixture) || { fail "aws-creds: import fixture did not start"; exit 1; }
export AWS_ENDPOINT_URL=$fx AWS_ACCESS_KEY_ID=AKIDENV000000001 AWS_REGION=eu-west-1
export AWS_SECRET_ACCESS_KEY=env-$CANARY-secret AWS_SESSION_TOKEN=env-$CANARY-token
export AMIFORGE_AWS_POLL_MS=100
head -c 6M /dev/urandom | tr -d "$CANARY" >"$dir/disk.raw"
truncate -s 6M "$dir/disk.raw"
"$AMIFORGE" -v publish "$dir/disk.raw" --bucket amiforge-creds-$$ --create-bucket \
	--name "creds-$$" --json >"$dir/manifest.json" 2>"$dir/publish.log"
check "publish with session credentials works" test $? -eq 0
cat "$dir/manifest.json" "$dir/publish.log" >>"$all_out"
check "canary never appears in any output" test "$(grep -c "$CANARY" "$all_out")" = 0
check "canary never appears in files amiforge wrote" \
	test -z "$(grep -l "$CANARY" "$dir/manifest.json" "$dir/publish.log" "$dir/out" "$dir/err")"
finish
