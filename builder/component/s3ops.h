/* s3ops.h: the struct s3_ops the component engine uses for S3Download and
 * S3Upload, over an AWS client (drivers/aws/) created on first use, so runs
 * without S3 steps never resolve credentials. Credentials and region are
 * resolved like the AWS CLI (environment, profile, IMDS); the client
 * registers every secret with the log redactor. Everything happens on the
 * host: the engine moves files into and out of the target itself.
 *
 *	struct s3_ops *s3 = s3ops_new(NULL);      // or { .profile, .region }
 *	opts.s3 = s3;
 *	component_run(&opts, ex, &res);
 *	s3ops_free(s3);
 */
#ifndef AMIFORGE_S3OPS_H
#define AMIFORGE_S3OPS_H

#include "component.h"
#include "drivers/aws/aws.h"

/* o (may be NULL) is copied. Never fails: a client that cannot be created
 * (no credentials...) makes each S3 call fail with
 * "S3 support not available: <why>". */
struct s3_ops *s3ops_new(const struct aws_client_opts *o);
void s3ops_free(struct s3_ops *ops);

#endif
