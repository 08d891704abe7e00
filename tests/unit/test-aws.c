/* Unit tests of the AWS client's pure parts: credential_process splitting,
 * INI parsing, part sizing, retry classification, RegisterImage parameters,
 * target checks, the 16-lane SHA-256. */
#include <openssl/evp.h>

#include "test.h"
#include "error.h"
#include "util.h"
#include "drivers/aws/aws.h"
#include "drivers/aws/ami.h"
#include "drivers/aws/client.h"
#include "drivers/aws/s3.h"
#include "drivers/aws/sha256-mb.h"
#include "drivers/target/target.h"

static void test_split(void)
{
	struct strv sv = STRV_INIT;

	CHECK(aws_split_command("/bin/tool --profile 'my prof' \"a \\\"b\\\" $c\" x\\ y ''", &sv) == 0 &&
	      sv.n == 6, "credential_process split: 6 words");
	if (sv.n == 6) {
		CHECK_STR(sv.v[1], "--profile", "split: plain word");
		CHECK_STR(sv.v[2], "my prof", "split: single quotes");
		CHECK_STR(sv.v[3], "a \"b\" $c", "split: double quotes with escapes");
		CHECK_STR(sv.v[4], "x y", "split: backslash outside quotes");
		CHECK_STR(sv.v[5], "", "split: empty quotes give an empty word");
	}
	strv_release(&sv);
	CHECK(aws_split_command("tool 'open", &sv) < 0, "split: unterminated quote fails");
	CHECK(aws_split_command("   ", &sv) < 0, "split: empty command fails");
	strv_release(&sv);
}

static void test_ini(void)
{
	char path[] = "/tmp/amiforge-ini-XXXXXX";
	int fd = mkstemp(path);
	const char text[] = "# comment\n[default]\nregion = eu-west-1\n[profile x]\n"
			    "s3 =\n  max_concurrent_requests = 4\nregion=us-east-2 \n";
	struct aws_ini ini;

	CHECK(fd >= 0 && write_all(fd, text, sizeof(text) - 1) == 0, "ini: temp file");
	close(fd);
	CHECK(aws_ini_load(&ini, path) == 0, "ini: parses");
	CHECK_STR(aws_ini_get(&ini, "default", "region"), "eu-west-1", "ini: default region");
	CHECK_STR(aws_ini_get(&ini, "profile x", "region"), "us-east-2", "ini: profile region trimmed");
	CHECK(aws_ini_get(&ini, "profile x", "max_concurrent_requests") == NULL,
	      "ini: sub-section keys skipped");
	aws_ini_release(&ini);
	write_file_atomic(path, "key = value\n", 12, 0600);
	CHECK(aws_ini_load(&ini, path) < 0 && strstr(err_msg(), ":1:"), "ini: key outside a section: line number");
	unlink(path);
	CHECK(aws_ini_load(&ini, "/nonexistent/config") == 0 && ini.n == 0, "ini: missing file is empty");
}

static void test_s3(void)
{
	CHECK(s3_part_size(100ull << 20, 0) == S3_PART_DEFAULT, "part size: default");
	CHECK(s3_part_size(1ull << 40, 0) * S3_PARTS_MAX >= (1ull << 40), "part size: 1 TiB fits 10,000 parts");
	CHECK(s3_part_size(1ull << 40, 8ull << 20) == 0, "part size: explicit too small for 1 TiB refused");
	CHECK(s3_part_size(10ull << 20, 1ull << 20) == S3_PART_MIN, "part size: at least 5 MiB");
	CHECK(s3_stream_part_size(S3_STREAM_PART, 1) == S3_STREAM_PART &&
	      s3_stream_part_size(S3_STREAM_PART, S3_STREAM_DOUBLING) == S3_STREAM_PART &&
	      s3_stream_part_size(S3_STREAM_PART, S3_STREAM_DOUBLING + 1) == 2 * S3_STREAM_PART &&
	      s3_stream_part_size(S3_STREAM_PART, S3_PARTS_MAX) == 512 * S3_STREAM_PART,
	      "stream parts: doubled every 1,000 parts");
	CHECK(s3_stream_part_size(4ull << 30, S3_PARTS_MAX) == S3_PART_MAX,
	      "stream parts: never over 5 GiB");
	CHECK(s3_stream_capacity(S3_STREAM_PART) >= (4ull << 40) &&
	      s3_stream_capacity(S3_PART_MIN) >= (4ull << 40),
	      "stream parts: 10,000 hold 4 TiB (a VMDK holds at most 2)");
	CHECK(S3_STREAM_MEMORY / S3_STREAM_PART >= 2, "stream parts: two default parts fit the memory bound");
}

/* The 16-lane SHA-256 against OpenSSL: every count of messages up to 33
 * (full batches, the remainders that go to OpenSSL or fill duplicate
 * lanes), EBS's 512 KiB blocks and short lengths, including none. */
static void test_sha256_mb(void)
{
	enum { N = 33, L = 512 * 1024 };
	static const size_t lens[] = { 0, 64, 128, 4096, L };
	unsigned char *b[N], md[N][32], ref[32];
	size_t n, i, k, bad = 0;
	uint32_t x = 2463534242u;

	for (i = 0; i < N; i++) {
		b[i] = xmalloc(L);
		for (k = 0; k < L; k++) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			b[i][k] = (unsigned char)x;
		}
	}
	for (k = 0; k < ARRAY_SIZE(lens); k++)
		for (n = 1; n <= N; n += lens[k] == L ? 4 : 1) {
			sha256_mb((const unsigned char *const *)b, n, lens[k], md);
			for (i = 0; i < n; i++) {
				unsigned int l = 32;

				EVP_Digest(b[i], lens[k], ref, &l, EVP_sha256(), NULL);
				bad += memcmp(ref, md[i], 32) != 0;
			}
		}
	CHECK(bad == 0, "sha256_mb (%s): %zu digests differ from OpenSSL's",
	      sha256_mb_fast() ? "16 lanes" : "OpenSSL only", bad);
	for (i = 0; i < N; i++)
		free(b[i]);
}

static void test_retry(void)
{
	CHECK(aws_retryable_code("SlowDown") && aws_retryable_code("RequestLimitExceeded") &&
	      aws_retryable_code("RequestThrottledException"), "retry: throttling codes");
	CHECK(!aws_retryable_code("AccessDenied") && !aws_retryable_code(NULL),
	      "retry: client errors are final");
}

static void test_register(void)
{
	struct target_tag tags[] = { { "env", "ci" } };
	struct publish_spec s = { .name = "img-1", .boot_mode = "uefi", .tpm = true, .ena = true,
				  .sriov = true, .imds_v2 = true, .tags = tags, .ntags = 1 };
	struct strv p = STRV_INIT;
	char *joined;
	struct buf b = BUF_INIT(64 * 1024);
	size_t i;

	ami_register_params(&s, "snap-1", 8, &p);
	for (i = 0; i + 1 < p.n; i += 2)
		buf_printf(&b, "%s=%s;", p.v[i], p.v[i + 1]);
	joined = buf_detach(&b, NULL);
	CHECK(strstr(joined, "BlockDeviceMapping.1.Ebs.VolumeSize=8;") &&
	      strstr(joined, "TpmSupport=v2.0;") && strstr(joined, "ImdsSupport=v2.0;") &&
	      strstr(joined, "BootMode=uefi;") && strstr(joined, "SriovNetSupport=simple;"),
	      "RegisterImage parameters: %s", joined);
	free(joined);
	strv_release(&p);
	CHECK(target_check_common(&s) == 0, "target check: valid spec");
	s.boot_mode = "legacy-bios";
	CHECK(target_check_common(&s) < 0 && strstr(err_msg(), "TPM"), "target check: TPM needs UEFI");
	s.tpm = false;
	s.arch = "arm64";
	CHECK(target_check_common(&s) < 0, "target check: arm64 needs UEFI");
	s.arch = NULL;
	s.name = "ab";
	CHECK(target_check_common(&s) < 0, "target check: name too short");
}

/* The routes' table: names in step with the words the option takes, the
 * default first, each route's needs. */
static void test_vias(void)
{
	const struct target_via *v;
	size_t i;

	for (i = 0; target_vias[i].name && target_via_names[i]; i++)
		CHECK_STR(target_via_names[i], target_vias[i].name, "via %zu: names in step", i);
	CHECK(!target_vias[i].name && !target_via_names[i], "vias: as many names as rows");
	v = target_via_find(NULL);
	CHECK(v && strcmp(v->name, "import-snapshot") == 0 && v->s3_staged && !v->block_level,
	      "via: the default is import-snapshot, staged in S3");
	v = target_via_find("ebs");
	CHECK(v && v->block_level && !v->s3_staged && v->driver &&
	      strcmp(v->driver->name, "aws-ebs") == 0, "via ebs: block level, its driver");
	CHECK(v && v->formats && strcmp(v->formats[0], "qcow2") == 0,
	      "via ebs: takes qcow2 first (read in place)");
	for (i = 0; target_vias[i].name; i++)
		CHECK(target_vias[i].formats && target_vias[i].formats[0],
		      "via %s: says which disk formats it takes", target_vias[i].name);
	v = target_via_find("import-image");
	CHECK(v && v->s3_staged && strcmp(v->driver->name, "aws-import") == 0,
	      "via import-image: the import driver");
	CHECK(!target_via_find("ebz") &&
	      strcmp(err_msg(), "unknown --via 'ebz' (import-snapshot, import-image, ebs)") == 0,
	      "via: unknown, the routes listed (%s)", err_msg());
}

int main(void)
{
	test_vias();
	test_split();
	test_ini();
	test_s3();
	test_retry();
	test_sha256_mb();
	test_register();
	return TEST_DONE();
}
