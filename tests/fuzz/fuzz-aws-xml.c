/* libFuzzer target: AWS XML answers (EC2 and STS query API, S3 REST), both
 * results and errors, through the real client: curl, the HTTP layer, the
 * error parser and each call's own parsing. A local server (fuzz-http.h)
 * answers every request with the next part of the input. The first byte
 * picks the calls: EC2 describe/import/register/tags, S3 list/get/put/
 * bucket/delete, or STS. Nothing may crash, hang or leak; every failure must
 * be a recorded error. */
#include "fuzz-http.h"
#include "drivers/aws/aws.h"
#include "drivers/aws/ec2.h"
#include "drivers/aws/s3.h"

static void ec2_calls(struct aws_client *cl)
{
	struct ec2_import_status st;
	struct strv p = STRV_INIT;
	char *id = NULL, *state = NULL, *reason = NULL;
	int gib = 0;
	static const char *const ids[] = { "ami-1", NULL };
	static const char *const kv[] = { "Name", "x", NULL };

	ec2_param(&p, "DiskContainer.Format", "RAW");
	if (ec2_import_snapshot(cl, &p, &id) == 0)
		free(id);
	memset(&st, 0, sizeof(st));
	ec2_describe_import_snapshot(cl, "import-snap-1", &st);
	ec2_import_status_release(&st);
	memset(&st, 0, sizeof(st));
	ec2_describe_import_image(cl, "import-ami-1", &st);
	ec2_import_status_release(&st);
	id = NULL;
	if (ec2_register_image(cl, &p, &id) == 0)
		free(id);
	ec2_image_state(cl, "ami-1", &state, &reason);
	free(state);
	free(reason);
	id = NULL;
	if (ec2_find_image_by_name(cl, "n", &id) == 0)
		free(id);
	state = NULL;
	ec2_snapshot_info(cl, "snap-1", &gib, &state);
	free(state);
	ec2_create_tags(cl, ids, kv);
	ec2_cancel_import_task(cl, "import-snap-1");
	strv_release(&p);
}

static void s3_calls(struct aws_client *cl)
{
	struct strv keys = STRV_INIT;
	char *out = xasprintf("%s/got", fuzz_dir());
	const char *small = fuzz_file("small", "hello", 5);
	char *copy = xstrdup(small);

	s3_list_keys(cl, "bucket", "pre/", NULL, &keys);
	strv_release(&keys);
	s3_get_object(cl, "bucket", "key", "123456789012", S3_GET_MAX, out);
	s3_put_object(cl, copy, "bucket", "key", NULL);
	s3_create_bucket(cl, "bucket");
	s3_delete_object(cl, "bucket", "key");
	s3_abort_upload(cl, "bucket", "key", "up1");
	free(copy);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct aws_client *cl;

	if (size == 0)
		return 0;
	http_start();
	cl = http_client();
	if (!cl) {
		err_clear();
		return 0;
	}
	http_script(data + 1, size - 1);
	switch (data[0] % 3) {
	case 0:
		ec2_calls(cl);
		break;
	case 1:
		s3_calls(cl);
		break;
	default: {
		struct aws_identity id = { 0 };

		if (aws_sts_whoami(cl, &id) == 0)
			aws_identity_release(&id);
		break;
	}
	}
	err_clear();
	aws_client_free(cl);
	http_script(NULL, 0);
	return 0;
}
