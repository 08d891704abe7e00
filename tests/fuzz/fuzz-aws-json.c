/* libFuzzer target: AWS JSON the client reads: EBS direct answers
 * (StartSnapshot, ListSnapshotBlocks, CompleteSnapshot, GetSnapshotBlock,
 * ListChangedBlocks, and their errors), the instance metadata service (token, role, credentials)
 * and the output of a profile's credential_process. A local server
 * (fuzz-http.h) answers every request with the next part of the input; for
 * credential_process the input is what the process prints (`cat` of a
 * file). The first byte picks which. Nothing may crash, hang or leak. */
#include "fuzz-http.h"
#include "drivers/aws/aws.h"
#include "drivers/aws/ebs.h"

static int on_block(uint64_t index, const char *token, void *opaque)
{
	(void)index;
	(void)token;
	return ++*(int *)opaque > 100000 ? err_set("too many blocks") : 0;
}

static int on_change(uint64_t index, const char *first, const char *second, void *opaque)
{
	(void)index;
	if (!first && !second)
		__builtin_trap();	/* ebs.h: at least one token */
	return ++*(int *)opaque > 100000 ? err_set("too many blocks") : 0;
}

static void ebs_calls(struct aws_client *cl)
{
	struct ebs_start in = { .volume_size_gib = 8, .client_token = "t", .description = "d" };
	char *snap = NULL, *next = NULL;
	int n = 0;
	void *blk = xmalloc(EBS_BLOCK_SIZE);

	if (ebs_start_snapshot(cl, &in, &snap) == 0)
		free(snap);
	/* two pages at most; ebs_list_blocks frees the token it is given */
	if (ebs_list_blocks(cl, "snap-1", &next, on_block, &n) == 0 && next)
		ebs_list_blocks(cl, "snap-1", &next, on_block, &n);
	free(next);
	ebs_complete_snapshot(cl, "snap-1", 1, "AAAA");
	ebs_get_block(cl, "snap-1", 0, "tok", blk);
	ebs_list_changed_blocks(cl, "snap-1", "snap-2", 16, on_change, &n);
	free(blk);
}

/* Credentials from the environment are off; the profile or IMDS give them. */
static void creds_only(const char *config)
{
	char url[64];

	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	setenv("AWS_CONFIG_FILE", config, 1);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", http_port);
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", url, 1);
	setenv("AWS_EC2_METADATA_DISABLED", "false", 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct aws_client *cl;
	struct aws_client_opts o = { .region = "eu-west-1", .max_attempts = 1 };

	if (size == 0)
		return 0;
	http_start();
	cl = http_client();   /* sets the environment up; static keys */
	if (!cl) {
		err_clear();
		return 0;
	}
	switch (data[0] % 3) {
	case 0:
		http_script(data + 1, size - 1);
		ebs_calls(cl);
		aws_client_free(cl);
		break;
	case 1:
		aws_client_free(cl);
		creds_only("/dev/null");
		http_script(data + 1, size - 1);
		cl = aws_client_new(&o);
		if (cl)
			aws_client_free(cl);
		break;
	default: {
		const char *out = fuzz_file("process-output", data + 1, size - 1);
		char *cfg = xasprintf("[default]\ncredential_process = cat %s\n", out);

		aws_client_free(cl);
		creds_only(fuzz_file("config", cfg, strlen(cfg)));
		free(cfg);
		cl = aws_client_new(&o);
		aws_client_free(cl);
		break;
	}
	}
	err_clear();
	http_script(NULL, 0);
	return 0;
}
