/* sigv4-case.h: one signing case in the format of the AWS SigV4 test suite
 * (request.txt + context.json), used by `amiforge aws sigv4` and the tests. */
#ifndef AMIFORGE_SIGV4_CASE_H
#define AMIFORGE_SIGV4_CASE_H

#include "sigv4.h"

struct sigv4_case {
	struct sigv4_creds creds;     /* strings owned by the case */
	struct sigv4_params params;   /* creds points at .creds */
	struct sigv4_msg msg;
	char *request_text;           /* msg.body points into it */
	size_t request_len;
};

/* Load a case; presign selects the query variant. The secret key and token
 * are registered with the log redactor. 0 or -1 ("'path': ..." recorded). */
int sigv4_case_load(struct sigv4_case *c, const char *request_path,
		    const char *context_path, bool presign);
void sigv4_case_release(struct sigv4_case *c);

#endif
