#include <curl/curl.h>
#include <ctype.h>

#include "recipe.h"
#include "builder/base/ami.h"
#include "builder/component/catalog.h"
#include "buf.h"
#include "drivers/aws/names.h"
#include "drivers/hypervisor/hypervisor.h"
#include "error.h"
#include "log.h"
#include "template.h"
#include "util.h"

/* Most --var options taken (each may be a parameter override). */
#define RECIPE_VARS_MAX 256

static const char *const top_keys[] = {
	"name", "version", "description", "parent", "components", "tests", "vm",
	"cleanup", "output", "publish", "distribution", "inspect",
};
static const char *const parent_keys[] = {
	"url", "path", "sha256", "sha512", "checksum_url", "format", "member", "ami", "ssm",
	"region", "profile",
};
static const char *const doc_keys[] = { "path", "name", "version", "parameters", "pin" };
static const char *const vm_keys[] = {
	"cpus", "memory", "disk_size", "accel", "driver", "connect", "network", "proxy", "forward",
	"wait_for_cloud_init", "arch",
};
static const char *const cleanup_keys[] = {
	"cloudinit", "ssh", "logs", "machine-id", "agent", "history", "network",
};
static const char *const net_modes[] = { "user", "none" };
static const char *const net_source_keys[] = { "network", "bridge" };
static const char *const proxy_keys[] = { "http", "https", "no_proxy" };
static const char *const output_keys[] = { "formats", "directory" };
static const char *const image_formats[] = { "qcow2", "raw", "vmdk" };
static const char *const accels[] = { "auto", "kvm", "tcg" };
static const char *const output_formats[] = { "qcow2", "raw", "vmdk", "vhd", "vhdx", "ova" };

struct override {
	const struct ynode *node;
	char *var;
};

struct rctx {
	struct recipe *r;
	const struct recipe_opts *o;
	struct tvar *tvars;
	size_t ntvars;
	struct override *ov;
	size_t nov;
};

const char *checksum_algo_name(enum checksum_algo a)
{
	switch (a) {
	case CHECKSUM_SHA256:
		return "sha256";
	case CHECKSUM_SHA512:
		return "sha512";
	case CHECKSUM_NONE:
		break;
	}
	return "none";
}

size_t checksum_hex_len(enum checksum_algo a)
{
	return a == CHECKSUM_SHA256 ? 64 : a == CHECKSUM_SHA512 ? 128 : 0;
}

enum archive_kind archive_kind_of(const char *name)
{
	static const struct { const char *suffix; enum archive_kind kind; } s[] = {
		{ ".tar.gz", ARCHIVE_TAR_GZ }, { ".tgz", ARCHIVE_TAR_GZ },
		{ ".tar.xz", ARCHIVE_TAR_XZ }, { ".txz", ARCHIVE_TAR_XZ },
		{ ".tar.zst", ARCHIVE_TAR_ZST }, { ".tar.zstd", ARCHIVE_TAR_ZST },
		{ ".tzst", ARCHIVE_TAR_ZST }, { ".tar", ARCHIVE_TAR }, { ".zip", ARCHIVE_ZIP },
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(s); i++)
		if (str_endswith(name, s[i].suffix))
			return s[i].kind;
	return ARCHIVE_NONE;
}

const char *output_format_name(unsigned bit)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(output_formats); i++)
		if (bit == 1u << i)
			return output_formats[i];
	return NULL;
}

static bool is_digits(const char *s, size_t n)
{
	size_t i;

	if (n == 0)
		return false;
	for (i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* Dot-separated identifiers of [0-9A-Za-z-]; numeric ones without leading
 * zeros when numeric_strict. */
static bool semver_idents(const char *s, size_t n, bool numeric_strict)
{
	size_t start = 0, i;

	if (n == 0)
		return false;
	for (i = 0; i <= n; i++) {
		if (i < n && s[i] != '.') {
			char c = s[i];

			if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
			      (c >= 'A' && c <= 'Z') || c == '-'))
				return false;
			continue;
		}
		if (i == start)
			return false;
		if (numeric_strict && is_digits(s + start, i - start) && i - start > 1 &&
		    s[start] == '0')
			return false;
		start = i + 1;
	}
	return true;
}

bool semver_valid(const char *s)
{
	const char *p = s, *pre = NULL, *build = NULL;
	int part;

	if (!s || strlen(s) > 256)
		return false;
	for (part = 0; part < 3; part++) {
		const char *q = p;

		while (*q >= '0' && *q <= '9')
			q++;
		if (q == p || (q - p > 1 && *p == '0') || q - p > 18)
			return false;
		p = q;
		if (part < 2) {
			if (*p != '.')
				return false;
			p++;
		}
	}
	if (*p == '-')
		pre = ++p;
	build = strchr(p, '+');
	if (pre && !semver_idents(pre, build ? (size_t)(build - pre) : strlen(pre), true))
		return false;
	if (!pre && *p && *p != '+')
		return false;
	if (build && !semver_idents(build + 1, strlen(build + 1), false))
		return false;
	return true;
}

/* ---- errors ---------------------------------------------------------- */

static const char *override_var(const struct rctx *c, const struct ynode *n)
{
	size_t i;

	for (i = 0; n && i < c->nov; i++)
		if (c->ov[i].node == n)
			return c->ov[i].var;
	return NULL;
}

static int rerr(const struct rctx *c, const struct ynode *n, const char *fmt, ...)
	PRINTF_LIKE(3, 4);
static int rerr(const struct rctx *c, const struct ynode *n, const char *fmt, ...)
{
	char msg[ERR_MAX];
	const char *var = override_var(c, n);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (var)
		return yerr(&c->r->doc, n, "%s (value set by --var %s)", msg, var);
	return yerr(&c->r->doc, n, "%s", msg);
}

static int check_keys(const struct rctx *c, const struct ynode *map, const char *where,
		      const char *const *keys, size_t nkeys)
{
	return ymap_check_keys(&c->r->doc, map, where, keys, nkeys);
}

static int want_map(const struct rctx *c, const struct ynode *n, const char *what)
{
	if (n->type != YNODE_MAP)
		return rerr(c, n, "%s must be a mapping, not %s", what, ynode_kind(n));
	return 0;
}

/* The scalar at key, or NULL when absent or null; -1 on a non-scalar. */
static int get_str(const struct rctx *c, const struct ynode *map, const char *key,
		   const char *what, const struct ynode **node, const char **out)
{
	const struct ynode *n = ymap_get(map, key);

	*out = NULL;
	if (node)
		*node = n;
	if (!n || ynode_is_null(n))
		return 0;
	if (n->type != YNODE_SCALAR)
		return rerr(c, n, "%s must be a string, not %s", what, ynode_kind(n));
	*out = n->str;
	return 0;
}

static int one_of(const struct rctx *c, const struct ynode *n, const char *what,
		  const char *v, const char *const *words, size_t nwords)
{
	char *msg = yword_mismatch(what, v, words, nwords);
	int r;

	if (!msg)
		return 0;
	r = rerr(c, n, "%s", msg);
	free(msg);
	return r;
}

static int get_bool(const struct rctx *c, const struct ynode *n, const char *what, bool *out)
{
	if (n->type == YNODE_SCALAR) {
		if (ybool_parse(n->str, out))
			return 0;
		return rerr(c, n, "%s must be true or false, not '%s'", what, n->str);
	}
	return rerr(c, n, "%s must be true or false, not %s", what, ynode_kind(n));
}

/* Line and column of byte offset off inside scalar n (best effort: exact for
 * single-line scalars). */
static void scalar_pos(const struct ynode *n, size_t off, int *line, int *col)
{
	*line = n->line;
	*col = n->col + (int)off + (n->plain ? 0 : 1);
	if (memchr(n->str, '\n', off < n->len ? off : n->len))
		*col = n->col;
}

static int expand(const struct rctx *c, const struct ynode *n, const char *in, char **out)
{
	size_t off;

	if (template_expand(in, c->tvars, c->ntvars, out, &off) < 0) {
		struct ynode at = *n;
		char *msg = xstrdup(err_msg());
		int r;

		scalar_pos(n, off, &at.line, &at.col);
		r = rerr(c, &at, "%s", msg);
		free(msg);
		return r;
	}
	return 0;
}

/* ---- paths ------------------------------------------------------------ */

/* A relative path in the recipe is relative to the recipe's folder; one
 * given with --var, like every path on the command line, to the current
 * directory. */
static char *resolve(const struct rctx *c, const struct ynode *n, const char *given)
{
	char *cwd, *out;

	if (given[0] == '/')
		return xstrdup(given);
	if (!override_var(c, n) || !(cwd = getcwd(NULL, 0)))
		return xasprintf("%s/%s", c->r->dir, given);
	out = xasprintf("%s/%s", cwd, given);
	free(cwd);
	return out;
}

/* An existing, readable regular file; *abs gets its canonical path. */
static int readable_file(const struct rctx *c, const struct ynode *n, const char *what,
			 const char *given, char **abs)
{
	char *joined = resolve(c, n, given), *real;
	struct stat st;
	int r = -1;

	*abs = NULL;
	real = realpath(joined, NULL);
	if (!real) {
		rerr(c, n, "%s '%s': %s", what, given, strerror(errno));
		goto cleanup;
	}
	if (stat(real, &st) < 0) {
		rerr(c, n, "%s '%s': %s", what, given, strerror(errno));
		goto cleanup;
	}
	if (!S_ISREG(st.st_mode)) {
		rerr(c, n, "%s '%s': not a regular file", what, given);
		goto cleanup;
	}
	if (access(real, R_OK) < 0) {
		rerr(c, n, "%s '%s': %s", what, given, strerror(errno));
		goto cleanup;
	}
	*abs = real;
	real = NULL;
	r = 0;
cleanup:
	free(real);
	free(joined);
	return r;
}

/* An http(s) URL that libcurl can parse, with a host. */
static int check_url(const struct rctx *c, const struct ynode *n, const char *what,
		     const char *url)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL;
	int r = -1;
	size_t i;

	if (!u) {
		err_set("curl_url: out of memory");
		return -1;
	}
	for (i = 0; url[i]; i++) {
		if ((unsigned char)url[i] <= ' ' || url[i] == 0x7f) {
			rerr(c, n, "%s '%s' contains whitespace or control characters", what, url);
			goto cleanup;
		}
	}
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host[0]) {
		rerr(c, n, "%s '%s' is not a valid URL", what, url);
		goto cleanup;
	}
	if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
		rerr(c, n, "%s '%s': only http:// and https:// URLs are supported", what, url);
		goto cleanup;
	}
	r = 0;
cleanup:
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return r;
}

/* The URL's path without query or fragment (for suffixes and SHA256SUMS names). */
static char *url_path(const char *url)
{
	CURLU *u = curl_url();
	char *p = NULL, *copy;

	if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PATH, &p, 0) == CURLUE_OK) {
		copy = xstrdup(p);
		curl_free(p);
	} else {
		copy = xstrdup(url);
	}
	curl_url_cleanup(u);
	return copy;
}

/* ---- --var -------------------------------------------------------------- */

static struct ynode *new_scalar(const struct ynode *at, const char *s)
{
	struct ynode *n = xcalloc(1, sizeof(*n));

	n->type = YNODE_SCALAR;
	n->line = at ? at->line : 1;
	n->col = at ? at->col : 1;
	n->str = xstrdup(s);
	n->len = strlen(s);
	n->plain = false;
	return n;
}

static void node_free(struct ynode *n)
{
	size_t i;

	if (!n)
		return;
	free(n->str);
	for (i = 0; i < n->nitems; i++)
		node_free(n->items[i]);
	free(n->items);
	for (i = 0; i < n->npairs; i++) {
		node_free(n->pairs[i].key);
		node_free(n->pairs[i].value);
	}
	free(n->pairs);
	free(n);
}

static void mark_override(struct rctx *c, const struct ynode *n, const char *var)
{
	c->ov = xrealloc(c->ov, (c->nov + 1) * sizeof(*c->ov));
	c->ov[c->nov].node = n;
	c->ov[c->nov].var = xstrdup(var);
	c->nov++;
}

/* Set the node at dotted path key (creating mappings on the way) to value. */
static int override_tree(struct rctx *c, const char *key, const char *value)
{
	struct ynode *cur = c->r->doc.root;
	char *copy = xstrdup(key), *seg = copy, *dot;
	int r = -1;

	for (;;) {
		struct ynode **slot = NULL;
		bool last;

		dot = strchr(seg, '.');
		if (dot)
			*dot = '\0';
		last = !dot;
		if (!*seg) {
			err_set("--var '%s': empty name component", key);
			goto cleanup;
		}
		if (cur->type == YNODE_MAP) {
			size_t i;

			for (i = 0; i < cur->npairs; i++)
				if (strcmp(cur->pairs[i].key->str, seg) == 0)
					slot = &cur->pairs[i].value;
			if (!slot) {
				cur->pairs = xrealloc(cur->pairs,
						      (cur->npairs + 1) * sizeof(*cur->pairs));
				cur->pairs[cur->npairs].key = new_scalar(cur, seg);
				cur->pairs[cur->npairs].value = NULL;
				slot = &cur->pairs[cur->npairs].value;
				cur->npairs++;
			}
		} else if (cur->type == YNODE_SEQ) {
			uint64_t idx;

			if (parse_u64(seg, SIZE_MAX, &idx) < 0 || idx >= cur->nitems) {
				err_set("--var '%s': no item '%s' in the list at line %d", key,
					seg, cur->line);
				goto cleanup;
			}
			slot = &cur->items[idx];
		} else {
			err_set("--var '%s': '%.*s' is %s, not a mapping (line %d)", key,
				(int)(seg - copy - 1), key, ynode_kind(cur), cur->line);
			goto cleanup;
		}
		if (last) {
			struct ynode *old = *slot, *n = new_scalar(old ? old : cur, value);

			node_free(old);
			*slot = n;
			mark_override(c, n, key);
			break;
		}
		if (!*slot || ynode_is_null(*slot)) {
			struct ynode *m = xcalloc(1, sizeof(*m));

			m->type = YNODE_MAP;
			m->line = *slot ? (*slot)->line : cur->line;
			m->col = *slot ? (*slot)->col : cur->col;
			node_free(*slot);
			*slot = m;
		}
		cur = *slot;
		seg = dot + 1;
	}
	r = 0;
cleanup:
	free(copy);
	return r;
}

static bool is_top_key(const char *key)
{
	size_t i, n = strcspn(key, ".");

	for (i = 0; i < ARRAY_SIZE(top_keys); i++)
		if (strlen(top_keys[i]) == n && strncmp(top_keys[i], key, n) == 0)
			return true;
	return false;
}

static int apply_vars(struct rctx *c)
{
	const char *const *v = c->o ? c->o->vars : NULL;
	size_t count = 0;

	for (; v && *v; v++) {
		const char *eq = strchr(*v, '=');
		char *key;
		size_t i;

		if (++count > RECIPE_VARS_MAX)
			return err_set("too many --var options (at most %d)", RECIPE_VARS_MAX);
		if (!eq || eq == *v)
			return err_set("--var '%s': expected NAME=VALUE", *v);
		key = xstrndup(*v, (size_t)(eq - *v));
		if (is_top_key(key)) {
			int r = c->r->doc.root && c->r->doc.root->type == YNODE_MAP
				? override_tree(c, key, eq + 1) : 0;

			free(key);
			if (r < 0)
				return -1;
			continue;
		}
		for (i = 0; i < c->r->nvars; i++)
			if (strcmp(c->r->vars[i].name, key) == 0)
				break;
		if (i == c->r->nvars) {
			c->r->vars = xrealloc(c->r->vars, (i + 1) * sizeof(*c->r->vars));
			c->r->vars[i].name = key;
			c->r->vars[i].value = NULL;
			c->r->vars[i].from_var = true;
			c->r->nvars++;
		} else {
			free(key);
		}
		free(c->r->vars[i].value);
		c->r->vars[i].value = xstrdup(eq + 1);
	}
	return 0;
}

static const char *var_value(const struct rctx *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->r->nvars; i++)
		if (strcmp(c->r->vars[i].name, name) == 0)
			return c->r->vars[i].value;
	return NULL;
}

/* ---- sections ------------------------------------------------------------ */

static int check_hex(const struct rctx *c, const struct ynode *n, enum checksum_algo a,
		     char **out)
{
	size_t want = checksum_hex_len(a), i;
	char *s;

	if (n->len != want)
		return rerr(c, n, "%s checksum must be %zu hex digits, not %zu",
			    checksum_algo_name(a), want, n->len);
	s = xstrdup(n->str);
	for (i = 0; i < want; i++) {
		char ch = s[i];

		if (ch >= 'A' && ch <= 'F')
			s[i] = (char)(ch - 'A' + 'a');
		else if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) {
			free(s);
			return rerr(c, n, "%s checksum has a non-hex character '%c' at position %zu",
				    checksum_algo_name(a), ch, i + 1);
		}
	}
	*out = s;
	return 0;
}

/* parent: {ami: ami-..., region: ..., profile: ...}: nothing else of a disk
 * file's keys applies. */
static int parse_parent_ami(struct rctx *c, const struct ynode *n, const struct ynode *an,
			    const char *ami, const struct ynode *sn, const char *ssm,
			    const struct ynode *rn, const char *region, const char *profile)
{
	static const char *const file_keys[] = { "url", "path", "sha256", "sha512",
						  "checksum_url", "format", "member" };
	struct recipe_parent *p = &c->r->parent;
	const struct ypair *kp;
	size_t i;

	if (!ami && !ssm)
		return rerr(c, n, "parent.region and parent.profile go with parent.ami or parent.ssm");
	if (ami && ssm)
		return rerr(c, sn, "parent takes 'ami' or 'ssm' (a parameter naming an AMI), not both");
	if (ssm && !ssm_name_ok(ssm))
		return rerr(c, sn, "parent.ssm '%s' is not an SSM parameter name (letters, digits, "
			    "'_', '.', '-', '/'; at most 2048 characters)", ssm);
	for (i = 0; i < ARRAY_SIZE(file_keys); i++)
		if ((kp = ymap_pair(n, file_keys[i])))
			return rerr(c, kp->key, "parent.%s does not go with parent.%s (the "
				    "AMI's root snapshot is the disk)", file_keys[i], ami ? "ami" : "ssm");
	if (ami && !ami_id_ok(ami))
		return rerr(c, an, "parent.ami '%s' is not an AMI id (ami- and 8 or 17 hex "
			    "digits)", ami);
	if (region && !aws_region_ok(region))
		return rerr(c, rn, "parent.region '%s' is not an AWS region name (e.g. "
			    AWS_REGION_EXAMPLE ")", region);
	p->ami = ami ? xstrdup(ami) : NULL;
	p->ssm = ssm ? xstrdup(ssm) : NULL;
	p->region = region ? xstrdup(region) : NULL;
	p->profile = profile ? xstrdup(profile) : NULL;
	p->format = xstrdup("qcow2");   /* what the cache makes of it */
	return 0;
}

static int parse_parent(struct rctx *c, const struct ynode *root)
{
	struct recipe_parent *p = &c->r->parent;
	const struct ypair *pair = ymap_pair(root, "parent");
	const struct ynode *n = pair ? pair->value : NULL, *un = NULL, *pn = NULL, *sn = NULL;
	const struct ynode *s5 = NULL, *cn = NULL, *fn = NULL, *mn = NULL;
	const char *url = NULL, *path = NULL, *s256 = NULL, *s512 = NULL, *curl = NULL;
	const char *fmt = NULL, *member = NULL, *ami = NULL, *region = NULL, *profile = NULL;
	const char *ssm = NULL;
	const struct ynode *an = NULL, *rn = NULL, *prn = NULL, *sn2 = NULL;
	char *upath;

	if (!n || ynode_is_null(n))
		return rerr(c, pair ? pair->key : root,
			    "missing 'parent' (a base image path, or {url: ..., sha256: ...})");
	p->line = n->line;
	p->col = n->col;
	if (n->type == YNODE_SCALAR) {
		if (str_startswith(n->str, "http://") || str_startswith(n->str, "https://"))
			return rerr(c, n, "parent URL '%s' needs a checksum: write "
				    "{url: ..., sha256: ...} or {url: ..., checksum_url: ...}",
				    n->str);
		path = n->str;
		pn = n;
	} else {
		if (want_map(c, n, "'parent'") < 0 ||
		    check_keys(c, n, "parent", parent_keys, ARRAY_SIZE(parent_keys)) < 0 ||
		    get_str(c, n, "url", "parent.url", &un, &url) < 0 ||
		    get_str(c, n, "path", "parent.path", &pn, &path) < 0 ||
		    get_str(c, n, "sha256", "parent.sha256", &sn, &s256) < 0 ||
		    get_str(c, n, "sha512", "parent.sha512", &s5, &s512) < 0 ||
		    get_str(c, n, "checksum_url", "parent.checksum_url", &cn, &curl) < 0 ||
		    get_str(c, n, "format", "parent.format", &fn, &fmt) < 0 ||
		    get_str(c, n, "member", "parent.member", &mn, &member) < 0 ||
		    get_str(c, n, "ami", "parent.ami", &an, &ami) < 0 ||
		    get_str(c, n, "ssm", "parent.ssm", &sn2, &ssm) < 0 ||
		    get_str(c, n, "region", "parent.region", &rn, &region) < 0 ||
		    get_str(c, n, "profile", "parent.profile", &prn, &profile) < 0)
			return -1;
		if (ami || ssm || region || profile)
			return parse_parent_ami(c, n, an, ami, sn2, ssm, rn, region, profile);
		if (!url && !path)
			return rerr(c, n, "parent needs 'url', 'path' or 'ami'");
		if (url && path)
			return rerr(c, pn, "parent has both 'url' and 'path'; keep one");
		if (!!s256 + !!s512 + !!curl > 1)
			return rerr(c, s512 ? s5 : cn,
				    "parent takes one of 'sha256', 'sha512' or 'checksum_url'");
		if (url && !s256 && !s512 && !curl)
			return rerr(c, un, "parent URL needs 'sha256', 'sha512' or 'checksum_url' "
				    "(a download is never used unverified)");
		if (path && curl)
			return rerr(c, cn, "'checksum_url' is for URLs; a local parent takes "
				    "'sha256' or 'sha512'");
	}
	if (s256 && check_hex(c, sn, CHECKSUM_SHA256, &p->checksum) < 0)
		return -1;
	if (s512 && check_hex(c, s5, CHECKSUM_SHA512, &p->checksum) < 0)
		return -1;
	p->algo = s256 ? CHECKSUM_SHA256 : s512 ? CHECKSUM_SHA512 : CHECKSUM_NONE;
	if (curl) {
		if (check_url(c, cn, "parent.checksum_url", curl) < 0)
			return -1;
		p->checksum_url = xstrdup(curl);
	}
	if (fmt) {
		if (one_of(c, fn, "parent.format", fmt, image_formats,
			   ARRAY_SIZE(image_formats)) < 0)
			return -1;
		p->format = xstrdup(fmt);
	}
	if (url) {
		if (check_url(c, un, "parent.url", url) < 0)
			return -1;
		p->url = xstrdup(url);
		upath = url_path(url);
		p->archive = archive_kind_of(upath);
		if (curl && (!strrchr(upath, '/') || !strrchr(upath, '/')[1])) {
			free(upath);
			return rerr(c, un, "parent.url '%s' has no file name to look up in "
				    "the checksum file", url);
		}
		free(upath);
	} else {
		/* validate: a parent that is not there yet (make demo writes the
		 * demo's) is the build's to look up; one that is there is checked. */
		char *joined = resolve(c, pn, path);
		bool look = !(c->o && c->o->parent_unchecked) || access(joined, F_OK) == 0;

		if (!look)
			p->path = joined;
		else
			free(joined);
		if (look && readable_file(c, pn, "parent", path, &p->path) < 0)
			return -1;
		p->archive = archive_kind_of(p->path);
	}
	if (member) {
		if (!p->archive)
			return rerr(c, mn, "parent.member is only for archives (.tar.gz, .tar.xz, "
				    ".tar.zst, .zip)");
		if (member[0] == '/' || strstr(member, "..") || !member[0])
			return rerr(c, mn, "parent.member '%s' must be a relative path inside "
				    "the archive without '..'", member);
		p->member = xstrdup(member);
	}
	return 0;
}

static int parse_params(struct rctx *c, const struct ynode *n, struct recipe_doc *d)
{
	size_t i;

	if (n && !ynode_is_null(n)) {
		if (want_map(c, n, "'parameters'") < 0)
			return -1;
		if (n->npairs > RECIPE_PARAMS_MAX)
			return rerr(c, n, "more than %d parameters", RECIPE_PARAMS_MAX);
		d->params = xcalloc(n->npairs, sizeof(*d->params));
		for (i = 0; i < n->npairs; i++) {
			const struct ynode *k = n->pairs[i].key, *v = n->pairs[i].value;
			struct recipe_param *p = &d->params[d->nparams];
			const char *over = var_value(c, k->str);

			if (!k->len)
				return rerr(c, k, "empty parameter name");
			if (v->type != YNODE_SCALAR)
				return rerr(c, v, "parameter '%s' must be a string, not %s",
					    k->str, ynode_kind(v));
			p->name = xstrdup(k->str);
			p->line = k->line;
			p->col = k->col;
			d->nparams++;
			p->from_var = over != NULL;
			if (expand(c, v, over ? over : v->str, &p->value) < 0)
				return -1;
		}
	}
	/* --var values for parameters the recipe does not set stay in r->vars
	 * for the component engine (document defaults). */
	return 0;
}

/* A component named by name and version: resolved in the catalog
 * (builder/component/catalog.h) to its highest matching version. Under
 * tests:, a component with a test document (NAME/VERSION/test.yaml) means
 * that document: `tests: [{name: update-linux, version: 1.x.x}]` checks what
 * update-linux did. */
static int catalog_doc(const struct rctx *c, const struct ynode *nn, const struct ynode *vn,
		       const char *name, const char *version, bool is_test, struct recipe_doc *d)
{
	struct catalog_entry e;

	if (!version)
		return rerr(c, nn, "component '%s' needs a 'version' (1.2.3, 1.2.x, 1.x.x or "
			    "x.x.x)", name);
	if (catalog_pattern_check(version) < 0)
		return rerr(c, vn, "%s", err_msg());
	if (catalog_resolve(c->r->dir, name, version, &e) < 0)
		return rerr(c, nn, "%s", err_msg());
	if (is_test && e.test_path) {
		d->path = e.test_path;
		e.test_path = NULL;
	} else {
		d->path = e.path;
		e.path = NULL;
	}
	d->name = e.name;
	d->version = e.version;
	d->given = xasprintf("%s@%s", name, version);
	e.name = e.version = NULL;
	catalog_entry_release(&e);
	return 0;
}

static int parse_docs(struct rctx *c, const struct ynode *root, const char *key,
		      struct recipe_doc **out, size_t *nout)
{
	const struct ynode *seq = ymap_get(root, key);
	char what[64];
	size_t i;

	if (!seq || ynode_is_null(seq))
		return 0;
	if (seq->type != YNODE_SEQ)
		return rerr(c, seq, "'%s' must be a list of documents, not %s", key,
			    ynode_kind(seq));
	if (seq->nitems > RECIPE_DOCS_MAX)
		return rerr(c, seq, "more than %d %s", RECIPE_DOCS_MAX, key);
	*out = xcalloc(seq->nitems ? seq->nitems : 1, sizeof(**out));
	for (i = 0; i < seq->nitems; i++) {
		const struct ynode *it = seq->items[i], *pn = it;
		struct recipe_doc *d = &(*out)[*nout];
		const char *path = NULL;

		snprintf(what, sizeof(what), "%s[%zu]", key, i);
		(*nout)++;
		d->line = it->line;
		d->col = it->col;
		if (it->type == YNODE_MAP) {
			const struct ynode *nn = NULL, *vn = NULL;
			const char *name = NULL, *version = NULL;

			if (check_keys(c, it, what, doc_keys, ARRAY_SIZE(doc_keys)) < 0 ||
			    get_str(c, it, "path", "'path'", &pn, &path) < 0 ||
			    get_str(c, it, "name", "'name'", &nn, &name) < 0 ||
			    get_str(c, it, "version", "'version'", &vn, &version) < 0)
				return -1;
			if (path && (name || version))
				return rerr(c, nn ? nn : vn, "%s: give a 'path' or a 'name' and "
					    "'version', not both", what);
			if (!path && !name)
				return rerr(c, it, "%s needs a 'path', or a 'name' and 'version'", what);
			if (name && catalog_doc(c, nn, vn, name, version,
						strcmp(key, "tests") == 0, d) < 0)
				return -1;
			if (parse_params(c, ymap_get(it, "parameters"), d) < 0)
				return -1;
			if (ymap_get(it, "pin") &&
			    get_bool(c, ymap_get(it, "pin"), "'pin'", &d->pin) < 0)
				return -1;
			if (name)
				continue;
		} else if (it->type == YNODE_SCALAR && !ynode_is_null(it)) {
			path = it->str;
		} else {
			return rerr(c, it, "%s must be a path or {path: ..., parameters: ...}, "
				    "not %s", what, ynode_is_null(it) ? "empty" : ynode_kind(it));
		}
		d->given = xstrdup(path);
		snprintf(what, sizeof(what), "%s document",
			 strcmp(key, "tests") == 0 ? "test" : "component");
		if (readable_file(c, pn, what, path, &d->path) < 0)
			return -1;
	}
	return 0;
}

/* vm.network: user | none | {network: NAME} | {bridge: NAME}. */
static int parse_network(struct rctx *c, const struct ynode *n)
{
	struct recipe_vm *vm = &c->r->vm;
	const struct ynode *v;
	const char *s;
	size_t i, len, max;

	if (n->type == YNODE_SCALAR) {
		if (one_of(c, n, "vm.network", n->str, net_modes, ARRAY_SIZE(net_modes)) < 0)
			return -1;
		vm->network = strcmp(n->str, "none") == 0 ? VM_NET_NONE : VM_NET_USER;
		return 0;
	}
	if (n->type != YNODE_MAP || n->npairs != 1)
		return rerr(c, n, "vm.network must be user, none, {network: NAME} or "
			    "{bridge: NAME}");
	if (check_keys(c, n, "vm.network", net_source_keys, ARRAY_SIZE(net_source_keys)) < 0)
		return -1;
	v = n->pairs[0].value;
	vm->network = strcmp(n->pairs[0].key->str, "bridge") == 0 ? VM_NET_BRIDGE : VM_NET_NETWORK;
	s = yscalar(v);
	max = vm->network == VM_NET_BRIDGE ? 15 : VM_NET_SOURCE_MAX;
	len = s ? strlen(s) : 0;
	if (!s || ynode_is_null(v) || len > max)
		return rerr(c, v, "vm.network.%s must be a name of 1 to %zu characters",
			    n->pairs[0].key->str, max);
	for (i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("_.:-", s[i]))
			return rerr(c, v, "vm.network.%s '%s' may only hold letters, digits "
				    "and _ . : -", n->pairs[0].key->str, s);
	vm->network_source = xstrdup(s);
	return 0;
}

/* One proxy value: an http(s) URL without spaces or control characters
 * (never quoted back: it may hold a password), registered as a secret. */
static int proxy_url(struct rctx *c, const struct ynode *n, const char *what, const char *s,
		     bool is_url, char **out)
{
	size_t i, len = strlen(s);
	const char *at, *user;

	if (len == 0 || len > RECIPE_PROXY_MAX)
		return rerr(c, n, "%s must be 1 to %d characters", what, RECIPE_PROXY_MAX);
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f)
			return rerr(c, n, "%s holds a space or a control character", what);
	if (is_url) {
		if (strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0)
			return rerr(c, n, "%s must be an http:// or https:// URL", what);
		user = strstr(s, "://") + 3;
		at = strchr(user, '@');
		if (at && (!strchr(user, '/') || at < strchr(user, '/'))) {
			char *cred = xstrndup(user, (size_t)(at - user));

			log_add_secret(cred);
			free(cred);
		}
		log_add_secret(s);
	}
	free(*out);
	*out = xstrdup(s);
	return 0;
}

/* vm.proxy: {http, https, no_proxy} or inherit. */
static int parse_proxy(struct rctx *c, const struct ynode *n)
{
	struct recipe_proxy *p = &c->r->vm.proxy;
	char **slots[] = { &p->http, &p->https, &p->no_proxy };
	static const char *const env_lower[] = { "http_proxy", "https_proxy", "no_proxy" };
	static const char *const env_upper[] = { "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY" };
	size_t i;

	if (n->type == YNODE_SCALAR) {
		if (strcmp(n->str, "inherit") != 0)
			return rerr(c, n, "vm.proxy must be 'inherit' or {http: URL, https: URL, "
				    "no_proxy: LIST}");
		p->inherit = true;
		for (i = 0; i < ARRAY_SIZE(slots); i++) {
			const char *e = getenv(env_lower[i]);
			char what[64];

			if (!e || !*e)
				e = getenv(env_upper[i]);
			if (!e || !*e)
				continue;
			snprintf(what, sizeof(what), "vm.proxy: inherit: $%s", env_lower[i]);
			if (proxy_url(c, n, what, e, i < 2, slots[i]) < 0)
				return -1;
		}
		return 0;
	}
	if (want_map(c, n, "vm.proxy") < 0 ||
	    check_keys(c, n, "vm.proxy", proxy_keys, ARRAY_SIZE(proxy_keys)) < 0)
		return -1;
	for (i = 0; i < ARRAY_SIZE(slots); i++) {
		const struct ynode *v;
		const char *s;
		char what[64];

		snprintf(what, sizeof(what), "vm.proxy.%s", proxy_keys[i]);
		if (get_str(c, n, proxy_keys[i], what, &v, &s) < 0)
			return -1;
		if (s && proxy_url(c, v, what, s, i < 2, slots[i]) < 0)
			return -1;
	}
	return 0;
}

/* vm.forward: a list of GUEST or "HOST:GUEST" ports; user network only. */
static int parse_forward(struct rctx *c, const struct ynode *n)
{
	struct recipe_vm *vm = &c->r->vm;
	size_t i, k;

	if (n->type != YNODE_SEQ)
		return rerr(c, n, "vm.forward must be a list of ports (8080 or \"2222:22\"), "
			    "not %s", ynode_kind(n));
	if (n->nitems > VM_FORWARDS_MAX)
		return rerr(c, n, "vm.forward: at most %d ports", VM_FORWARDS_MAX);
	for (i = 0; i < n->nitems; i++) {
		const struct ynode *it = n->items[i];
		struct vm_forward *f = &vm->forwards[i];

		if (it->type != YNODE_SCALAR || ynode_is_null(it))
			return rerr(c, it, "vm.forward entries must be ports, not %s",
				    ynode_kind(it));
		if (vm_forward_parse(it->str, f) < 0)
			return rerr(c, it, "vm.forward '%s': expected GUEST_PORT or "
				    "HOST_PORT:GUEST_PORT, ports 1-65535", it->str);
		for (k = 0; k < i; k++) {
			if (vm->forwards[k].guest_port == f->guest_port)
				return rerr(c, it, "vm.forward: guest port %u is listed twice",
					    f->guest_port);
			if (f->host_port && vm->forwards[k].host_port == f->host_port)
				return rerr(c, it, "vm.forward: host port %u is listed twice",
					    f->host_port);
		}
	}
	vm->nforwards = n->nitems;
	if (vm->nforwards && vm->network != VM_NET_USER)
		return rerr(c, n, "vm.forward needs vm.network: user (QEMU's user network), "
			    "not %s", vm_net_name(vm->network));
	return 0;
}

static int parse_vm(struct rctx *c, const struct ynode *root)
{
	struct recipe_vm *vm = &c->r->vm;
	const struct ynode *n = ymap_get(root, "vm"), *v;
	const struct hv_driver *drv = NULL;  /* the one named (not "auto") */
	const char *s;
	uint64_t u;

	vm->cpus = 2;
	vm->memory_mib = 1024;
	vm->network = VM_NET_USER;
	if (!n || ynode_is_null(n))
		goto defaults;
	if (want_map(c, n, "'vm'") < 0 ||
	    check_keys(c, n, "vm", vm_keys, ARRAY_SIZE(vm_keys)) < 0)
		return -1;
	if (get_str(c, n, "cpus", "vm.cpus", &v, &s) < 0)
		return -1;
	if (s) {
		if (parse_u64(s, RECIPE_CPUS_MAX, &u) < 0 || u == 0)
			return rerr(c, v, "vm.cpus '%s' must be a number from 1 to %d", s,
				    RECIPE_CPUS_MAX);
		vm->cpus = (unsigned)u;
	}
	if (get_str(c, n, "memory", "vm.memory", &v, &s) < 0)
		return -1;
	if (s) {
		if (is_digits(s, strlen(s))) {
			if (parse_u64(s, UINT64_MAX >> 20, &u) < 0)
				return rerr(c, v, "vm.memory '%s' is out of range", s);
		} else {
			if (parse_size(s, &u) < 0)
				return rerr(c, v, "vm.memory '%s' must be MiB or a size like 2G", s);
			u >>= 20;
		}
		if (u < RECIPE_MEMORY_MIN_MIB || u > RECIPE_MEMORY_MAX_MIB)
			return rerr(c, v, "vm.memory '%s' must be between %d MiB and %u MiB", s,
				    RECIPE_MEMORY_MIN_MIB, RECIPE_MEMORY_MAX_MIB);
		vm->memory_mib = u;
	}
	if (get_str(c, n, "disk_size", "vm.disk_size", &v, &s) < 0)
		return -1;
	if (s) {
		if (parse_size(s, &vm->disk_size) < 0)
			return rerr(c, v, "vm.disk_size '%s' must be a size like 8G", s);
		if (vm->disk_size < (1u << 20) || vm->disk_size > RECIPE_DISK_MAX)
			return rerr(c, v, "vm.disk_size '%s' must be between 1M and 64T", s);
	}
	if (get_str(c, n, "accel", "vm.accel", &v, &s) < 0)
		return -1;
	if (s) {
		if (one_of(c, v, "vm.accel", s, accels, ARRAY_SIZE(accels)) < 0)
			return -1;
		vm->accel = xstrdup(s);
	}
	if (get_str(c, n, "driver", "vm.driver", &v, &s) < 0)
		return -1;
	if (s) {
		/* "auto", then the hypervisor driver table's names. */
		const char *drivers[8] = { "auto" };
		size_t nd = 1;

		for (size_t i = 0; hv_drivers[i] && nd < ARRAY_SIZE(drivers); i++)
			drivers[nd++] = hv_drivers[i]->name;
		if (one_of(c, v, "vm.driver", s, drivers, nd) < 0)
			return -1;
		vm->driver = xstrdup(s);
		drv = hv_driver_find(s);
	}
	if (get_str(c, n, "arch", "vm.arch", &v, &s) < 0)
		return -1;
	if (s) {
		/* The architecture table's names and aliases (arch.h). */
		size_t nw = 0;

		while (arch_words[nw])
			nw++;
		if (one_of(c, v, "vm.arch", s, arch_words, nw) < 0)
			return -1;
		vm->arch = arch_find(s)->id;
	}
	if (get_str(c, n, "connect", "vm.connect", &v, &s) < 0)
		return -1;
	if (s) {
		if (drv && !drv->takes_uri)
			return rerr(c, v, "vm.connect is a libvirt URI; it does not apply to "
				    "driver '%s'", vm->driver);
		if (hv_uri_check(s) < 0)
			return rerr(c, v, "vm.connect: %s", err_msg());
		vm->connect = xstrdup(s);
	}
	v = ymap_get(n, "network");
	if (v && !ynode_is_null(v) && parse_network(c, v) < 0)
		return -1;
	if (vm->network == VM_NET_NETWORK && drv && !drv->named_networks)
		return rerr(c, v, "vm.network {network: ...} is a libvirt network; the %s "
			    "driver cannot use it (use {bridge: NAME} or user)", vm->driver);
	v = ymap_get(n, "proxy");
	if (v && !ynode_is_null(v) && parse_proxy(c, v) < 0)
		return -1;
	v = ymap_get(n, "forward");
	if (v && !ynode_is_null(v) && parse_forward(c, v) < 0)
		return -1;
	v = ymap_get(n, "wait_for_cloud_init");
	if (v && get_bool(c, v, "vm.wait_for_cloud_init", &vm->wait_for_cloud_init) < 0)
		return -1;
defaults:
	if (!vm->accel)
		vm->accel = xstrdup("auto");
	if (!vm->driver)
		vm->driver = xstrdup("auto");
	return 0;
}

static int parse_cleanup(struct rctx *c, const struct ynode *root)
{
	struct recipe_cleanup *cl = &c->r->cleanup;
	bool *flags[] = { &cl->cloudinit, &cl->ssh, &cl->logs, &cl->machine_id, &cl->agent,
			  &cl->history, &cl->network };
	const struct ynode *n = ymap_get(root, "cleanup");
	bool all = true;
	size_t i;

	if (n && !ynode_is_null(n) && n->type != YNODE_MAP &&
	    get_bool(c, n, "'cleanup'", &all) < 0)
		return -1;
	for (i = 0; i < ARRAY_SIZE(flags); i++)
		*flags[i] = all;
	if (!n || n->type != YNODE_MAP)
		return 0;
	if (check_keys(c, n, "cleanup", cleanup_keys, ARRAY_SIZE(cleanup_keys)) < 0)
		return -1;
	for (i = 0; i < ARRAY_SIZE(flags); i++) {
		const struct ynode *v = ymap_get(n, cleanup_keys[i]);
		char what[64];

		snprintf(what, sizeof(what), "cleanup.%s", cleanup_keys[i]);
		if (v && get_bool(c, v, what, flags[i]) < 0)
			return -1;
	}
	return 0;
}

static int parse_output(struct rctx *c, const struct ynode *root)
{
	struct recipe_output *o = &c->r->output;
	const struct ynode *n = ymap_get(root, "output"), *f, *dn;
	const char *dir;
	size_t i, k;

	o->formats = OUTPUT_QCOW2;
	if (!n || ynode_is_null(n))
		return 0;
	if (want_map(c, n, "'output'") < 0 ||
	    check_keys(c, n, "output", output_keys, ARRAY_SIZE(output_keys)) < 0)
		return -1;
	f = ymap_get(n, "formats");
	if (f && !ynode_is_null(f)) {
		const struct ynode *const *items = f->type == YNODE_SEQ
			? (const struct ynode *const *)f->items : &f;
		size_t nitems = f->type == YNODE_SEQ ? f->nitems : 1;

		if (f->type == YNODE_MAP)
			return rerr(c, f, "output.formats must be a list, not a mapping");
		if (nitems == 0)
			return rerr(c, f, "output.formats is empty; name at least one of "
				    "qcow2, raw, vmdk, vhd, vhdx, ova");
		o->formats = 0;
		for (i = 0; i < nitems; i++) {
			const struct ynode *it = items[i];

			if (it->type != YNODE_SCALAR)
				return rerr(c, it, "output format must be a string, not %s",
					    ynode_kind(it));
			if (one_of(c, it, "output format", it->str, output_formats,
				   ARRAY_SIZE(output_formats)) < 0)
				return -1;
			for (k = 0; strcmp(output_formats[k], it->str) != 0; k++)
				;
			if (o->formats & (1u << k))
				return rerr(c, it, "output format '%s' is listed twice", it->str);
			o->formats |= 1u << k;
		}
	}
	if (get_str(c, n, "directory", "output.directory", &dn, &dir) < 0)
		return -1;
	if (dir) {
		char *exp;
		struct stat st;

		if (expand(c, dn, dir, &exp) < 0)
			return -1;
		o->directory = resolve(c, dn, exp);
		free(exp);
		if (stat(o->directory, &st) == 0 && !S_ISDIR(st.st_mode))
			return rerr(c, dn, "output.directory '%s' exists and is not a directory",
				    dir);
	}
	return 0;
}

/* publish: takes every option of `amiforge publish` that has a recipe key
 * (builder/publish/publish-opts.h, one table for both); a key naming an
 * option only the command has gets that option's note: where a recipe says it. */
static int parse_publish(struct rctx *c, const struct ynode *root)
{
	struct recipe_publish *p = &c->r->publish;
	const struct ynode *n = ymap_get(root, "publish");
	const char *keys[PUBLISH_OPT_ROWS_MAX];
	size_t nkeys = 0, i, j;

	publish_opts_init(&p->o);
	if (!n || ynode_is_null(n))
		return 0;
	if (want_map(c, n, "'publish'") < 0)
		return -1;
	for (i = 0; i < publish_opt_count; i++)
		if (publish_opt_table[i].recipe_key)
			keys[nkeys++] = publish_opt_table[i].recipe_key;
	for (i = 0; i < n->npairs; i++) {
		const struct publish_opt *o = publish_opt_find(n->pairs[i].key->str);

		if (o && !o->recipe_key)
			return rerr(c, n->pairs[i].key, "publish.%s: %s", n->pairs[i].key->str,
				    o->recipe_note);
	}
	if (check_keys(c, n, "publish", keys, nkeys) < 0)
		return -1;
	p->set = true;
	p->node = n;
	for (i = 0; i < n->npairs; i++) {
		const struct ynode *k = n->pairs[i].key, *v = n->pairs[i].value;
		const struct publish_opt *o = NULL;
		char *val = NULL;
		bool b;
		int r;

		for (j = 0; j < publish_opt_count && !o; j++)
			if (publish_opt_table[j].recipe_key &&
			    strcmp(publish_opt_table[j].recipe_key, k->str) == 0)
				o = &publish_opt_table[j];
		if (!o || ynode_is_null(v))
			continue;
		if (o->kind == POPT_TAG) {
			if (want_map(c, v, "publish.tags") < 0)
				return -1;
			if (v->npairs > AWS_TAGS_MAX)
				return rerr(c, v, "publish.tags has more than %d tags", AWS_TAGS_MAX);
			for (j = 0; j < v->npairs; j++) {
				const struct ynode *tk = v->pairs[j].key, *tv = v->pairs[j].value;

				if (tv->type != YNODE_SCALAR)
					return rerr(c, tv, "tag '%s' must be a string, not %s", tk->str,
						    ynode_kind(tv));
				if (expand(c, tv, tv->str, &val) < 0)
					return -1;
				r = publish_opt_add_tag(&p->o, tk->str, val);
				free(val);
				if (r < 0)
					return rerr(c, str_startswith(err_msg(), "key") ? tk : tv,
						    "tag %s", err_msg());
			}
			continue;
		}
		if (o->kind == POPT_BOOL) {
			if (get_bool(c, v, k->str, &b) < 0)
				return -1;
			r = publish_opt_set(&p->o, o, b ? "true" : "false");
		} else {
			if (v->type != YNODE_SCALAR)
				return rerr(c, v, "publish.%s must be a string, not %s", k->str,
					    ynode_kind(v));
			if (expand(c, v, v->str, &val) < 0)
				return -1;
			r = publish_opt_set(&p->o, o, val);
			free(val);
		}
		if (r < 0)
			return rerr(c, v, "publish.%s %s", k->str, err_msg());
	}
	if (!p->o.spec.via)
		return rerr(c, n, "publish needs 'via' (import-snapshot, import-image or ebs)");
	if (target_via_find(p->o.spec.via)->s3_staged && !p->o.spec.bucket)
		return rerr(c, n, "publish via %s needs a 'bucket'", p->o.spec.via);
	return 0;
}

static bool name_ok(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > RECIPE_NAME_MAX)
		return false;
	for (i = 0; i < n; i++) {
		char ch = s[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || (i && (ch == '.' || ch == '_' || ch == '-'))))
			return false;
	}
	return true;
}

static int dist_expand(void *ctx, const struct ynode *n, const char *s, char **out)
{
	return expand(ctx, n, s, out);
}

static int parse_root(struct rctx *c)
{
	struct recipe *r = c->r;
	const struct ynode *root = r->doc.root, *n;
	const char *s;
	struct tm tm;
	time_t t;
	char date[32];
	size_t i;

	if (!root || ynode_is_null(root))
		return rerr(c, NULL, "empty recipe (expected a mapping with name, version, "
			    "parent)");
	if (root->type != YNODE_MAP)
		return rerr(c, root, "a recipe must be a mapping, not %s", ynode_kind(root));
	if (ymap_get(root, "schemaVersion") && ymap_get(root, "phases"))
		return rerr(c, ymap_get(root, "schemaVersion"), "this is an AWSTOE component "
			    "document, not a recipe: check it with 'amiforge component validate'");
	if (check_keys(c, root, "the recipe", top_keys, ARRAY_SIZE(top_keys)) < 0)
		return -1;

	if (get_str(c, root, "name", "'name'", &n, &s) < 0)
		return -1;
	if (!s)
		return rerr(c, n ? n : root, "missing 'name'");
	if (!name_ok(s))
		return rerr(c, n, "name '%s' must be 1-%d of letters, digits, '.', '_', '-' "
			    "(starting with a letter or digit)", s, RECIPE_NAME_MAX);
	r->name = xstrdup(s);
	if (get_str(c, root, "version", "'version'", &n, &s) < 0)
		return -1;
	if (!s)
		return rerr(c, n ? n : root, "missing 'version' (semver, e.g. 1.0.0)");
	if (!semver_valid(s))
		return rerr(c, n, "version '%s' is not semver (MAJOR.MINOR.PATCH, e.g. 1.0.0)",
			    s);
	r->version = xstrdup(s);

	t = c->o && c->o->build_time ? c->o->build_time : time(NULL);
	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%Y%m%d%H%M%S", &tm);
	r->build_date = xstrdup(date);
	c->ntvars = 3 + r->nvars;
	c->tvars = xcalloc(c->ntvars, sizeof(*c->tvars));
	c->tvars[0] = (struct tvar){ "buildDate", r->build_date };
	c->tvars[1] = (struct tvar){ "version", r->version };
	c->tvars[2] = (struct tvar){ "name", r->name };
	for (i = 0; i < r->nvars; i++)
		c->tvars[3 + i] = (struct tvar){ r->vars[i].name, r->vars[i].value };

	if (get_str(c, root, "description", "'description'", &n, &s) < 0)
		return -1;
	if (s && expand(c, n, s, &r->description) < 0)
		return -1;
	if (parse_parent(c, root) < 0 ||
	    parse_docs(c, root, "components", &r->components, &r->ncomponents) < 0 ||
	    parse_docs(c, root, "tests", &r->tests, &r->ntests) < 0 ||
	    parse_vm(c, root) < 0 || parse_cleanup(c, root) < 0 || parse_output(c, root) < 0 ||
	    parse_publish(c, root) < 0)
		return -1;
	if (recipe_inspect_parse(&r->doc, ymap_get(root, "inspect"), &r->inspect) < 0)
		return -1;
	n = ymap_get(root, "distribution");
	if (n && !ynode_is_null(n)) {
		if (n->type == YNODE_SCALAR)
			return rerr(c, n, "'distribution' must be a mapping or a list, not %s",
				    ynode_kind(n));
		r->distribution = n;
		if (recipe_dist_parse(&r->doc, n, dist_expand, c, &r->dist) < 0)
			return -1;
	}
	if (c->o && c->o->check_doc) {
		for (i = 0; i < r->ncomponents; i++)
			if (c->o->check_doc(r, &r->components[i], false, c->o->opaque) < 0)
				return -1;
		for (i = 0; i < r->ntests; i++)
			if (c->o->check_doc(r, &r->tests[i], true, c->o->opaque) < 0)
				return -1;
	}
	return 0;
}

struct recipe *recipe_parse(const char *path, const struct recipe_opts *opts)
{
	struct recipe *r = xcalloc(1, sizeof(*r));
	struct rctx c = { .r = r, .o = opts };
	char *real = NULL, *slash;
	size_t i;
	int ok = -1;

	if (ydoc_load_file(&r->doc, path) < 0)
		goto cleanup;
	real = realpath(path, NULL);
	if (!real) {
		err_errno("resolve '%s'", path);
		goto cleanup;
	}
	r->path = real;
	slash = strrchr(real, '/');
	r->dir = slash == real ? xstrdup("/") : xstrndup(real, (size_t)(slash - real));
	if (apply_vars(&c) < 0 || parse_root(&c) < 0)
		goto cleanup;
	ok = 0;
cleanup:
	for (i = 0; i < c.nov; i++)
		free(c.ov[i].var);
	free(c.ov);
	free(c.tvars);
	if (ok < 0) {
		recipe_free(r);
		return NULL;
	}
	return r;
}

static void params_free(struct recipe_param *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(p[i].name);
		free(p[i].value);
	}
	free(p);
}

static void docs_free(struct recipe_doc *d, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(d[i].path);
		free(d[i].given);
		free(d[i].name);
		free(d[i].version);
		params_free(d[i].params, d[i].nparams);
	}
	free(d);
}

void recipe_release(struct recipe *r)
{
	if (!r)
		return;
	free(r->path);
	free(r->dir);
	free(r->name);
	free(r->version);
	free(r->description);
	free(r->build_date);
	free(r->parent.path);
	free(r->parent.url);
	free(r->parent.checksum);
	free(r->parent.checksum_url);
	free(r->parent.format);
	free(r->parent.member);
	free(r->parent.ami);
	free(r->parent.ssm);
	free(r->parent.region);
	free(r->parent.profile);
	docs_free(r->components, r->ncomponents);
	docs_free(r->tests, r->ntests);
	free(r->vm.accel);
	free(r->vm.driver);
	free(r->vm.connect);
	free(r->vm.network_source);
	free(r->vm.proxy.http);
	free(r->vm.proxy.https);
	free(r->vm.proxy.no_proxy);
	free(r->output.directory);
	publish_opts_release(&r->publish.o);
	params_free(r->vars, r->nvars);
	recipe_dist_release(&r->dist);
	recipe_inspect_release(&r->inspect);
	ydoc_release(&r->doc);
	memset(r, 0, sizeof(*r));
}

void recipe_free(struct recipe *r)
{
	recipe_release(r);
	free(r);
}

const char *recipe_doc_param(const struct recipe_doc *d, const char *name)
{
	size_t i;

	for (i = 0; d && i < d->nparams; i++)
		if (strcmp(d->params[i].name, name) == 0)
			return d->params[i].value;
	return NULL;
}
