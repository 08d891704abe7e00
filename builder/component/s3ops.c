/* s3ops.c: struct s3_ops over a lazily created AWS client (see s3ops.h). */
#include <sys/stat.h>

#include "s3ops.h"
#include "drivers/aws/s3.h"
#include "error.h"
#include "util.h"

struct s3ops {
	struct s3_ops ops;          /* first: ops.opaque points back here */
	struct aws_client_opts o;
	char *profile, *region;
	struct aws_client *cl;
	char *cl_error;             /* why the client could not be created */
};

static struct aws_client *client(struct s3ops *s)
{
	if (s->cl)
		return s->cl;
	if (!s->cl_error) {
		s->cl = aws_client_new(&s->o);
		if (s->cl)
			return s->cl;
		s->cl_error = xstrdup(err_msg());
	}
	err_set("S3 support not available: %s", s->cl_error);
	return NULL;
}

static int ops_get(void *opaque, const char *bucket, const char *key,
		   const char *expected_owner, const char *host_path)
{
	struct aws_client *cl = client(opaque);

	return cl ? s3_get_object(cl, bucket, key, expected_owner, S3_GET_MAX, host_path) : -1;
}

static int ops_list(void *opaque, const char *bucket, const char *prefix,
		    const char *expected_owner, struct strv *keys)
{
	struct aws_client *cl = client(opaque);

	return cl ? s3_list_keys(cl, bucket, prefix, expected_owner, keys) : -1;
}

static int ops_put(void *opaque, const char *host_path, const char *bucket, const char *key,
		   const char *expected_owner)
{
	struct aws_client *cl = client(opaque);
	struct s3_upload_opts uo = { .bucket = bucket, .key = key,
				     .expected_owner = expected_owner };
	struct s3_upload_result res;
	struct stat st;
	int r;

	if (!cl)
		return -1;
	if (stat(host_path, &st) < 0)
		return err_errno("S3Upload: '%s'", host_path);
	if ((uint64_t)st.st_size < S3_PART_MIN)
		return s3_put_object(cl, host_path, bucket, key, expected_owner);
	r = s3_upload_file(cl, host_path, &uo, &res);
	s3_upload_result_release(&res);
	return r;
}

struct s3_ops *s3ops_new(const struct aws_client_opts *o)
{
	struct s3ops *s = xcalloc(1, sizeof(*s));

	if (o)
		s->o = *o;
	s->profile = o && o->profile ? xstrdup(o->profile) : NULL;
	s->region = o && o->region ? xstrdup(o->region) : NULL;
	s->o.profile = s->profile;
	s->o.region = s->region;
	s->ops.opaque = s;
	s->ops.get = ops_get;
	s->ops.list = ops_list;
	s->ops.put = ops_put;
	return &s->ops;
}

void s3ops_free(struct s3_ops *ops)
{
	struct s3ops *s;

	if (!ops)
		return;
	s = ops->opaque;
	aws_client_free(s->cl);
	free(s->cl_error);
	free(s->profile);
	free(s->region);
	free(s);
}
