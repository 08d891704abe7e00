#!/bin/bash
# `amiforge aws sigv4`: prints canonical request, string to sign, signature
# and signed request for suite cases (generic rules) and S3 examples.
. "$(dirname "$0")/../lib/common.sh"

suite=$TOP/tests/data/sigv4/v4
if [ ! -d "$suite" ]; then
	fail "aws-sigv4-cli: SigV4 suite missing at $suite"
	exit 1
fi

for c in get-vanilla-with-session-token post-x-www-form-urlencoded get-space-normalized; do
	for v in header query; do
		flag=; [ "$v" = query ] && flag=--query
		out=$("$AMIFORGE" aws sigv4 --request "$suite/$c/request.txt" \
			--context "$suite/$c/context.json" $flag 2>&1)
		sig=$(printf '%s\n' "$out" | sed -n '/^--- signature$/{n;p}')
		check_eq "aws sigv4 $v $c: signature" "$sig" "$(cat "$suite/$c/$v-signature.txt")"
		creq=$(printf '%s\n' "$out" | sed -n '/^--- canonical request$/,/^--- string to sign$/p' |
			sed '1d;$d')
		check_eq "aws sigv4 $v $c: canonical request" "$creq" \
			"$(cat "$suite/$c/$v-canonical-request.txt")"
	done
done

s3=$TOP/tests/fixtures/aws/sigv4-s3
out=$("$AMIFORGE" aws sigv4 --request "$s3/put-object/request.txt" --context "$s3/put-object/context.json")
check_contains "aws sigv4 s3: path not double-encoded" "$out" $'\n/test%24file.text\n'
check_contains "aws sigv4 s3: x-amz-content-sha256 signed" "$out" \
	"SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class"
check_contains "aws sigv4 s3: signature of the S3 docs example" "$out" \
	"Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
out=$("$AMIFORGE" aws sigv4 --request "$s3/presign-get-object/request.txt" \
	--context "$s3/presign-get-object/context.json" --query)
check_contains "aws sigv4 s3: presigned URL" "$out" \
	"https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
check_contains "aws sigv4 s3: presigned signature" "$out" \
	"X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
# The whole secret of the context, counted exactly (a needle "0" in the count
# passed on 10, 20, 100 lines); a context without a secret fails.
secret=$(jq -r '.credentials.secret_access_key // empty' "$s3/presign-get-object/context.json")
check_eq "aws sigv4 s3: secret never printed" \
	"$([ "${#secret}" -ge 16 ] && grep -cF -- "$secret" <<<"$out")" 0

out=$("$AMIFORGE" aws sigv4 --request /nonexistent --context "$s3/get-object/context.json" 2>&1)
check "aws sigv4: missing request file fails" test $? -ne 0
check_contains "aws sigv4: missing file message" "$out" "/nonexistent"
finish
