/* amiforge aws: helpers for debugging AWS access.
 *
 *   amiforge aws sigv4 --request FILE --context FILE [--query]
 *       Sign a request in the SigV4 test-suite format and print the canonical
 *       request, the string to sign, the signature and the signed request.
 *   amiforge aws whoami [--profile P] [--region R]
 *       Resolve credentials like the AWS CLI, call STS GetCallerIdentity and
 *       print where the credentials came from (never the secret). */
#include <getopt.h>

#include "commands.h"
#include "error.h"
#include "log.h"
#include "util.h"
#include "drivers/aws/sigv4.h"
#include "drivers/aws/sigv4-case.h"
#include "drivers/aws/aws.h"

static int aws_sigv4(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "request", required_argument, NULL, 'r' },
		{ "context", required_argument, NULL, 'c' },
		{ "query", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const char usage[] = "aws sigv4 --request FILE --context FILE [--query]";
	const char *req = NULL, *ctx = NULL;
	bool presign = false;
	struct sigv4_case c;
	struct sigv4_debug dbg = { 0 };
	char *out;
	int ch;

	while ((ch = cmd_getopt(argc, argv, "r:c:qh", opts)) != -1) {
		switch (ch) {
		case 'r': req = optarg; break;
		case 'c': ctx = optarg; break;
		case 'q': presign = true; break;
		case 'h':
			printf("usage: amiforge %s\n\n"
			       "Signs request.txt (raw HTTP; path as sent on the wire) with the\n"
			       "settings of context.json (credentials, region, service, timestamp,\n"
			       "normalize, sign_body, token, omit_session_token,\n"
			       "expiration_in_seconds). \"service\": \"s3\" applies the S3 rules.\n"
			       "--query presigns (X-Amz-* query parameters) instead of the\n"
			       "Authorization header.\n", usage);
			return EXIT_OK;
		default:
			return cmd_usage(usage);
		}
	}
	if (!req || !ctx || optind != argc)
		return cmd_usage(usage);
	if (sigv4_case_load(&c, req, ctx, presign) < 0) {
		log_err_msg();
		return EXIT_FAIL;
	}
	if (sigv4_sign(&c.params, &c.msg, &dbg) < 0) {
		log_err_msg();
		sigv4_case_release(&c);
		return EXIT_FAIL;
	}
	out = sigv4_msg_format(&c.msg);
	printf("--- canonical request\n%s\n--- string to sign\n%s\n--- signature\n%s\n",
	       dbg.canonical_request, dbg.string_to_sign, dbg.signature);
	if (presign)
		printf("--- presigned URL\nhttps://%s%s?%s\n",
		       sigv4_msg_get(&c.msg, "host") ? sigv4_msg_get(&c.msg, "host") : "HOST",
		       c.msg.path, c.msg.query);
	else
		printf("--- authorization\n%s\n", sigv4_msg_get(&c.msg, "authorization"));
	printf("--- signed request\n%s\n", out);
	free(out);
	sigv4_debug_release(&dbg);
	sigv4_case_release(&c);
	return EXIT_OK;
}

static int aws_whoami(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "profile", required_argument, NULL, 'p' },
		{ "region", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const char usage[] = "aws whoami [--profile P] [--region R]";
	struct aws_client *cl = NULL;
	struct aws_identity id = { 0 };
	struct aws_client_opts o = { 0 };
	int ch, rc = EXIT_FAIL;

	while ((ch = cmd_getopt(argc, argv, "p:r:h", opts)) != -1) {
		switch (ch) {
		case 'p': o.profile = optarg; break;
		case 'r': o.region = optarg; break;
		case 'h':
			printf("usage: amiforge %s\n", usage);
			return EXIT_OK;
		default:
			return cmd_usage(usage);
		}
	}
	if (optind != argc)
		return cmd_usage(usage);
	cl = aws_client_new(&o);
	if (!cl || aws_sts_whoami(cl, &id) < 0) {
		log_err_msg();
		goto cleanup;
	}
	printf("Account: %s\nArn: %s\nUserId: %s\nAccessKeyId: %s\nSource: %s\nRegion: %s\n",
	       id.account, id.arn, id.user_id, aws_client_creds(cl)->access_key_id,
	       aws_client_creds(cl)->source, aws_client_region(cl));
	rc = EXIT_OK;
cleanup:
	aws_identity_release(&id);
	aws_client_free(cl);
	return rc;
}

int cmd_aws(int argc, char **argv)
{
	static const char usage[] = "aws sigv4 --request FILE --context FILE [--query]\n"
				    "       amiforge aws whoami [--profile P] [--region R]";

	if (argc < 2)
		return cmd_usage(usage);
	if (strcmp(argv[1], "sigv4") == 0)
		return aws_sigv4(argc - 1, argv + 1);
	if (strcmp(argv[1], "whoami") == 0)
		return aws_whoami(argc - 1, argv + 1);
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		printf("usage: amiforge %s\n\n"
		       "Helpers for debugging AWS access ('amiforge aws SUBCOMMAND --help').\n"
		       "  sigv4    sign a request in the SigV4 test-suite format; print the canonical\n"
		       "           request, the string to sign, the signature, the signed request\n"
		       "  whoami   resolve credentials as the AWS CLI does, call STS\n"
		       "           GetCallerIdentity, say where the credentials came from (never\n"
		       "           the secret)\n", usage);
		return EXIT_OK;
	}
	return cmd_unknown_sub(argv[1]);
}
