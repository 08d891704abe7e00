#include <ctype.h>
#include <openssl/evp.h>
#include <pthread.h>

#include "sigv4.h"
#include "error.h"
#include "util.h"

/* Longest canonical request we build: headers of a real request are a few
 * KiB; the suite's largest is under 2 KiB. */
#define SIGV4_TEXT_MAX (1024 * 1024)

void sigv4_msg_init(struct sigv4_msg *m, const char *method, const char *path,
		    const char *query)
{
	memset(m, 0, sizeof(*m));
	m->method = xstrdup(method);
	m->path = xstrdup(path ? path : "/");
	m->query = xstrdup(query ? query : "");
}

void sigv4_msg_release(struct sigv4_msg *m)
{
	size_t i;

	if (!m)
		return;
	for (i = 0; i < m->nhdrs; i++) {
		free(m->hdrs[i].name);
		free(m->hdrs[i].value);
	}
	free(m->hdrs);
	free(m->method);
	free(m->path);
	free(m->query);
	memset(m, 0, sizeof(*m));
}

void sigv4_msg_add(struct sigv4_msg *m, const char *name, const char *value)
{
	if (m->nhdrs == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 8;
		m->hdrs = xrealloc(m->hdrs, m->cap * sizeof(*m->hdrs));
	}
	m->hdrs[m->nhdrs].name = xstrdup(name);
	m->hdrs[m->nhdrs].value = xstrdup(value);
	m->nhdrs++;
}

const char *sigv4_msg_get(const struct sigv4_msg *m, const char *name)
{
	size_t i;

	for (i = 0; i < m->nhdrs; i++)
		if (strcasecmp(m->hdrs[i].name, name) == 0)
			return m->hdrs[i].value;
	return NULL;
}

void sigv4_msg_del(struct sigv4_msg *m, const char *name)
{
	size_t i, j = 0;

	for (i = 0; i < m->nhdrs; i++) {
		if (strcasecmp(m->hdrs[i].name, name) == 0) {
			free(m->hdrs[i].name);
			free(m->hdrs[i].value);
		} else {
			m->hdrs[j++] = m->hdrs[i];
		}
	}
	m->nhdrs = j;
}

void sigv4_debug_release(struct sigv4_debug *dbg)
{
	if (!dbg)
		return;
	free(dbg->canonical_request);
	free(dbg->string_to_sign);
	free(dbg->signature);
	memset(dbg, 0, sizeof(*dbg));
}

/* ---- small helpers ---- */

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~';
}

int sigv4_uri_encode(struct buf *b, const char *s, size_t n, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char e[3];

		if (unreserved(c) || (keep_slash && c == '/')) {
			if (buf_addc(b, (char)c) < 0)
				return -1;
			continue;
		}
		e[0] = '%';
		e[1] = hex[c >> 4];
		e[2] = hex[c & 15];
		if (buf_add(b, e, 3) < 0)
			return -1;
	}
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decode s[0..n) into b ("%zz" that is not an escape stays as is). */
static int uri_decode(struct buf *b, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n &&
		    hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
			if (buf_addc(b, (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]))) < 0)
				return -1;
			i += 2;
		} else if (buf_addc(b, s[i]) < 0) {
			return -1;
		}
	}
	return 0;
}

void sigv4_hex(const unsigned char *d, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 15];
	}
	out[2 * n] = '\0';
}

/* SHA-256, fetched from the default provider once: EVP_sha256() makes
 * OpenSSL 3 look the algorithm up again at every use, and HMAC() builds a
 * MAC context from names each time (together ~7% of EBS direct's CPU, two
 * lookups per HMAC, five HMACs per request). */
static const EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (!sha256_md)
		sha256_md = EVP_sha256();
}

static const EVP_MD *sigv4_sha256_md(void)
{
	pthread_once(&sha256_once, sha256_fetch);
	return sha256_md;
}

void sigv4_sha256(const void *data, size_t n, unsigned char md[32])
{
	unsigned int mdlen = 0;

	if (!EVP_Digest(data, n, md, &mdlen, sigv4_sha256_md(), NULL) || mdlen != 32)
		abort();	/* only fails on OOM or a broken libcrypto */
}

void sigv4_sha256_hex(const void *data, size_t n, char out[65])
{
	unsigned char md[32];

	sigv4_sha256(data, n, md);
	sigv4_hex(md, 32, out);
}

/* HMAC-SHA256 (RFC 2104) over the fetched digest. */
static void hmac(const void *key, size_t keylen, const char *data, unsigned char out[32])
{
	unsigned char k[64] = { 0 }, pad[64], inner[32];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	const EVP_MD *md = sigv4_sha256_md();
	size_t i;

	if (keylen > sizeof(k))
		sigv4_sha256(key, keylen, k);
	else
		memcpy(k, key, keylen);
	for (i = 0; i < sizeof(pad); i++)
		pad[i] = k[i] ^ 0x36;
	if (!ctx || !EVP_DigestInit_ex(ctx, md, NULL) || !EVP_DigestUpdate(ctx, pad, sizeof(pad)) ||
	    !EVP_DigestUpdate(ctx, data, strlen(data)) || !EVP_DigestFinal_ex(ctx, inner, NULL))
		abort();
	for (i = 0; i < sizeof(pad); i++)
		pad[i] = k[i] ^ 0x5c;
	if (!EVP_DigestInit_ex(ctx, md, NULL) || !EVP_DigestUpdate(ctx, pad, sizeof(pad)) ||
	    !EVP_DigestUpdate(ctx, inner, sizeof(inner)) || !EVP_DigestFinal_ex(ctx, out, NULL))
		abort();
	EVP_MD_CTX_free(ctx);
	explicit_bzero(k, sizeof(k));
	explicit_bzero(pad, sizeof(pad));
	explicit_bzero(inner, sizeof(inner));
}

void sigv4_amz_date(time_t t, char out[17])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

/* ---- canonical parts ---- */

/* RFC 3986 remove_dot_segments, also folding repeated slashes. */
static char *normalize_path(const char *path)
{
	struct strv segs = STRV_INIT;
	const char *p = path, *e;
	bool trailing = false;
	struct buf out;
	size_t i;

	buf_init(&out, SIGV4_TEXT_MAX);
	while (*p) {
		size_t n;

		while (*p == '/')
			p++;
		if (!*p) {
			trailing = true;
			break;
		}
		e = strchr(p, '/');
		n = e ? (size_t)(e - p) : strlen(p);
		trailing = false;
		if (n == 1 && p[0] == '.') {
			trailing = true;
		} else if (n == 2 && p[0] == '.' && p[1] == '.') {
			if (segs.n) {
				free(segs.v[--segs.n]);
				segs.v[segs.n] = NULL;
			}
			trailing = true;
		} else {
			char *s = xstrndup(p, n);
			strv_push(&segs, s);
			free(s);
		}
		p += n;
	}
	for (i = 0; i < segs.n; i++) {
		buf_addc(&out, '/');
		buf_adds(&out, segs.v[i]);
	}
	if (segs.n == 0 || trailing)
		buf_addc(&out, '/');
	strv_release(&segs);
	return buf_detach(&out, NULL);
}

static int canonical_path(struct buf *b, const char *path, bool s3, bool normalize)
{
	char *norm = NULL;
	int r;

	if (!*path)
		path = "/";
	if (s3) {
		/* Used as sent: keep escapes, encode only what cannot be sent. */
		const char *p;
		for (p = path; *p; p++) {
			if (*p == '%' || *p == '/' || unreserved((unsigned char)*p)) {
				if (buf_addc(b, *p) < 0)
					return -1;
			} else if (sigv4_uri_encode(b, p, 1, false) < 0) {
				return -1;
			}
		}
		return 0;
	}
	if (normalize)
		path = norm = normalize_path(path);
	r = sigv4_uri_encode(b, path, strlen(path), true);
	free(norm);
	return r;
}

struct qparam {
	char *k, *v;
};

static int qparam_cmp(const void *a, const void *b)
{
	const struct qparam *x = a, *y = b;
	int c = strcmp(x->k, y->k);

	return c ? c : strcmp(x->v, y->v);
}

/* Encode one query component: decode escapes first, then encode. */
static char *query_component(const char *s, size_t n)
{
	struct buf dec, enc;

	buf_init(&dec, SIGV4_TEXT_MAX);
	buf_init(&enc, SIGV4_TEXT_MAX);
	if (uri_decode(&dec, s, n) < 0 ||
	    sigv4_uri_encode(&enc, dec.data ? dec.data : "", dec.len, false) < 0) {
		buf_release(&dec);
		buf_release(&enc);
		return NULL;
	}
	buf_release(&dec);
	return buf_detach(&enc, NULL);
}

static int canonical_query(struct buf *b, const char *query)
{
	struct qparam *ps = NULL;
	size_t n = 0, cap = 0, i;
	const char *p = query;
	int r = -1;

	while (*p) {
		const char *amp = strchr(p, '&');
		size_t len = amp ? (size_t)(amp - p) : strlen(p);
		const char *eq = memchr(p, '=', len);

		if (len) {
			if (n == cap) {
				cap = cap ? cap * 2 : 16;
				ps = xrealloc(ps, cap * sizeof(*ps));
			}
			ps[n].k = query_component(p, eq ? (size_t)(eq - p) : len);
			ps[n].v = eq ? query_component(eq + 1, len - (size_t)(eq + 1 - p))
				     : xstrdup("");
			n++;
			if (!ps[n - 1].k || !ps[n - 1].v)
				goto cleanup;
		}
		p += len;
		if (*p == '&')
			p++;
	}
	if (n)
		qsort(ps, n, sizeof(*ps), qparam_cmp);
	for (i = 0; i < n; i++)
		if (buf_printf(b, "%s%s=%s", i ? "&" : "", ps[i].k, ps[i].v) < 0)
			goto cleanup;
	r = 0;
cleanup:
	for (i = 0; i < n; i++) {
		free(ps[i].k);
		free(ps[i].v);
	}
	free(ps);
	return r;
}

/* Headers that proxies and clients rewrite; never signed. */
static bool unsigned_header(const char *name)
{
	static const char *const skip[] = {
		"authorization", "user-agent", "expect", "connection",
		"x-amzn-trace-id", "transfer-encoding",
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(skip); i++)
		if (strcasecmp(name, skip[i]) == 0)
			return true;
	return false;
}

struct chdr {
	char *name;     /* lower case */
	size_t order;   /* position in the message, for a stable sort */
	const char *value;
};

static int chdr_cmp(const void *a, const void *b)
{
	const struct chdr *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* Trim and fold runs of whitespace (continuation lines included) to one space. */
static int add_folded(struct buf *b, const char *v)
{
	bool space = false, started = false;

	for (; *v; v++) {
		if (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n') {
			space = started;
			continue;
		}
		if (space && buf_addc(b, ' ') < 0)
			return -1;
		space = false;
		started = true;
		if (buf_addc(b, *v) < 0)
			return -1;
	}
	return 0;
}

/* Canonical headers text and the signed-header list. skip_token leaves
 * X-Amz-Security-Token out. */
static int canonical_headers(const struct sigv4_msg *m, bool skip_token,
			     struct buf *text, struct buf *names)
{
	struct chdr *hs = xcalloc(m->nhdrs ? m->nhdrs : 1, sizeof(*hs));
	size_t n = 0, i, j;
	int r = -1;

	for (i = 0; i < m->nhdrs; i++) {
		char *lc;

		if (unsigned_header(m->hdrs[i].name))
			continue;
		if (skip_token && strcasecmp(m->hdrs[i].name, "x-amz-security-token") == 0)
			continue;
		lc = xstrdup(m->hdrs[i].name);
		for (j = 0; lc[j]; j++)
			lc[j] = (char)tolower((unsigned char)lc[j]);
		hs[n].name = lc;
		hs[n].order = i;
		hs[n].value = m->hdrs[i].value;
		n++;
	}
	qsort(hs, n, sizeof(*hs), chdr_cmp);
	for (i = 0; i < n; i++) {
		bool first = i == 0 || strcmp(hs[i].name, hs[i - 1].name) != 0;

		if (first) {
			if (i && buf_addc(text, '\n') < 0)
				goto cleanup;
			if (buf_printf(text, "%s:", hs[i].name) < 0 ||
			    buf_printf(names, "%s%s", i ? ";" : "", hs[i].name) < 0)
				goto cleanup;
		} else if (buf_addc(text, ',') < 0) {
			goto cleanup;
		}
		if (add_folded(text, hs[i].value) < 0)
			goto cleanup;
	}
	if (n && buf_addc(text, '\n') < 0)
		goto cleanup;
	r = 0;
cleanup:
	for (i = 0; i < n; i++)
		free(hs[i].name);
	free(hs);
	return r;
}

static void append_query(struct sigv4_msg *m, const char *k, const char *v)
{
	struct buf b;

	buf_init(&b, SIGV4_TEXT_MAX);
	buf_adds(&b, m->query);
	if (m->query[0])
		buf_addc(&b, '&');
	buf_printf(&b, "%s=", k);
	sigv4_uri_encode(&b, v, strlen(v), false);
	free(m->query);
	m->query = buf_detach(&b, NULL);
}

int sigv4_sign(const struct sigv4_params *p, struct sigv4_msg *m, struct sigv4_debug *dbg)
{
	const struct sigv4_creds *c = p->creds;
	bool s3 = p->service && strcmp(p->service, "s3") == 0;
	const char *token = c->session_token && c->session_token[0] ? c->session_token : NULL;
	char amzdate[17], datestamp[9], payload[65], crhash[65], sig[65];
	char *scope = NULL, *credential = NULL;
	struct buf creq, sts, hdrs, names;
	unsigned char k[32];
	char *kinit = NULL;
	int r = -1;

	buf_init(&creq, SIGV4_TEXT_MAX);
	buf_init(&sts, SIGV4_TEXT_MAX);
	buf_init(&hdrs, SIGV4_TEXT_MAX);
	buf_init(&names, SIGV4_TEXT_MAX);
	if (!c || !c->access_key_id || !c->secret_access_key || !p->region || !p->service) {
		err_set("sign request: credentials, region and service are required");
		goto cleanup;
	}
	if (p->presign && (p->expires < 1 || p->expires > 604800)) {
		err_set("sign request: presign expiry %" PRId64 " out of range 1..604800",
			p->expires);
		goto cleanup;
	}
	sigv4_amz_date(p->time, amzdate);
	memcpy(datestamp, amzdate, 8);
	datestamp[8] = '\0';
	scope = xasprintf("%s/%s/%s/aws4_request", datestamp, p->region, p->service);
	credential = xasprintf("%s/%s", c->access_key_id, scope);

	if (m->payload_hash[0])
		memcpy(payload, m->payload_hash, sizeof(payload));
	else if (m->unsigned_payload || (p->presign && s3))
		snprintf(payload, sizeof(payload), "%s", SIGV4_UNSIGNED_PAYLOAD);
	else
		sigv4_sha256_hex(m->body, m->body_len, payload);

	if (!p->presign) {
		sigv4_msg_del(m, "authorization");
		sigv4_msg_del(m, "x-amz-date");
		if (token) {
			sigv4_msg_del(m, "x-amz-security-token");
			sigv4_msg_add(m, "X-Amz-Security-Token", token);
		}
		sigv4_msg_add(m, "X-Amz-Date", amzdate);
		if (s3 || p->sign_body) {
			sigv4_msg_del(m, "x-amz-content-sha256");
			sigv4_msg_add(m, "x-amz-content-sha256", payload);
		}
		if (canonical_headers(m, p->omit_session_token, &hdrs, &names) < 0)
			goto cleanup;
	} else {
		if (canonical_headers(m, true, &hdrs, &names) < 0)
			goto cleanup;
		char exp[24];
		snprintf(exp, sizeof(exp), "%" PRId64, p->expires);
		append_query(m, "X-Amz-Algorithm", SIGV4_ALGORITHM);
		append_query(m, "X-Amz-Credential", credential);
		append_query(m, "X-Amz-Date", amzdate);
		append_query(m, "X-Amz-SignedHeaders", names.data ? names.data : "");
		append_query(m, "X-Amz-Expires", exp);
		if (token && !p->omit_session_token)
			append_query(m, "X-Amz-Security-Token", token);
	}

	if (buf_printf(&creq, "%s\n", m->method) < 0 ||
	    canonical_path(&creq, m->path, s3, p->normalize) < 0 ||
	    buf_addc(&creq, '\n') < 0 ||
	    canonical_query(&creq, m->query) < 0 ||
	    buf_printf(&creq, "\n%s\n%s\n%s", hdrs.data ? hdrs.data : "",
		       names.data ? names.data : "", payload) < 0)
		goto cleanup;
	sigv4_sha256_hex(creq.data, creq.len, crhash);
	if (buf_printf(&sts, "%s\n%s\n%s\n%s", SIGV4_ALGORITHM, amzdate, scope, crhash) < 0)
		goto cleanup;

	kinit = xasprintf("AWS4%s", c->secret_access_key);
	hmac(kinit, strlen(kinit), datestamp, k);
	hmac(k, 32, p->region, k);
	hmac(k, 32, p->service, k);
	hmac(k, 32, "aws4_request", k);
	hmac(k, 32, sts.data, k);
	sigv4_hex(k, 32, sig);

	if (p->presign) {
		if (token && p->omit_session_token)
			append_query(m, "X-Amz-Security-Token", token);
		append_query(m, "X-Amz-Signature", sig);
	} else {
		char *auth = xasprintf("%s Credential=%s, SignedHeaders=%s, Signature=%s",
				       SIGV4_ALGORITHM, credential,
				       names.data ? names.data : "", sig);
		sigv4_msg_add(m, "Authorization", auth);
		free(auth);
	}
	if (dbg) {
		dbg->canonical_request = buf_detach(&creq, NULL);
		dbg->string_to_sign = buf_detach(&sts, NULL);
		dbg->signature = xstrdup(sig);
	}
	r = 0;
cleanup:
	if (kinit) {
		explicit_bzero(kinit, strlen(kinit));
		free(kinit);
	}
	explicit_bzero(k, sizeof(k));
	free(scope);
	free(credential);
	buf_release(&creq);
	buf_release(&sts);
	buf_release(&hdrs);
	buf_release(&names);
	return r;
}

/* ---- raw request text (the suite's format) ---- */

int sigv4_msg_parse(struct sigv4_msg *m, const char *text, size_t len)
{
	const char *end = text + len, *p = text, *eol, *sp1, *sp2;
	char *target = NULL, *q;

	memset(m, 0, sizeof(*m));
	eol = memchr(p, '\n', len);
	if (!eol)
		eol = end;
	sp1 = memchr(p, ' ', (size_t)(eol - p));
	sp2 = sp1 ? memrchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
	if (!sp1 || !sp2 || sp1 == p)
		return err_set("request: line 1: expected 'METHOD TARGET HTTP/1.1'");
	target = xstrndup(sp1 + 1, (size_t)(sp2 - sp1 - 1));
	q = strchr(target, '?');
	if (q)
		*q++ = '\0';
	m->method = xstrndup(p, (size_t)(sp1 - p));
	m->path = xstrdup(target);
	m->query = xstrdup(q ? q : "");
	free(target);
	p = eol < end ? eol + 1 : end;
	while (p < end) {
		const char *colon, *le;
		size_t ll;

		le = memchr(p, '\n', (size_t)(end - p));
		ll = le ? (size_t)(le - p) : (size_t)(end - p);
		if (ll && p[ll - 1] == '\r')
			ll--;
		if (ll == 0) {	/* blank line: the body follows */
			p = le ? le + 1 : end;
			break;
		}
		if ((*p == ' ' || *p == '\t') && m->nhdrs) {
			struct http_hdr *h = &m->hdrs[m->nhdrs - 1];
			char *v = xasprintf("%s\n%.*s", h->value, (int)ll, p);
			free(h->value);
			h->value = v;
		} else {
			char *name, *value;

			colon = memchr(p, ':', ll);
			if (!colon || colon == p) {
				sigv4_msg_release(m);
				return err_set("request: header line without a name: '%.*s'",
					       (int)(ll > 60 ? 60 : ll), p);
			}
			name = xstrndup(p, (size_t)(colon - p));
			value = xstrndup(colon + 1, ll - (size_t)(colon + 1 - p));
			sigv4_msg_add(m, name, value);
			free(name);
			free(value);
		}
		p = le ? le + 1 : end;
	}
	m->body = p;
	m->body_len = (size_t)(end - p);
	return 0;
}

char *sigv4_msg_format(const struct sigv4_msg *m)
{
	struct buf b;
	size_t i;

	buf_init(&b, SIZE_MAX / 2);
	buf_printf(&b, "%s %s%s%s HTTP/1.1\n", m->method, m->path, m->query[0] ? "?" : "",
		   m->query);
	for (i = 0; i < m->nhdrs; i++)
		buf_printf(&b, "%s:%s\n", m->hdrs[i].name, m->hdrs[i].value);
	buf_addc(&b, '\n');
	if (m->body_len)
		buf_add(&b, m->body, m->body_len);
	return buf_detach(&b, NULL);
}
