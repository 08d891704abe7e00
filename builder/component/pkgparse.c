/* pkgparse.c: UpdateOS's readers of package manager output (see pkgparse.h). */
#include <jansson.h>

#include "pkgparse.h"
#include "error.h"
#include "util.h"

/* ---- lines, tokens, quoting ---- */

struct lines {
	const char *p, *end;
	size_t no;             /* number of the line last returned, from 1 */
};

static void lines_init(struct lines *l, const char *text, size_t len)
{
	l->p = text ? text : "";
	l->end = l->p + (text ? len : 0);
	l->no = 0;
}

static bool next_line(struct lines *l, const char **s, size_t *n)
{
	const char *nl;

	if (l->p >= l->end)
		return false;
	nl = memchr(l->p, '\n', (size_t)(l->end - l->p));
	*s = l->p;
	*n = (size_t)((nl ? nl : l->end) - l->p);
	if (*n && (*s)[*n - 1] == '\r')
		(*n)--;
	l->p = nl ? nl + 1 : l->end;
	l->no++;
	return true;
}

/* A printable, bounded copy of s[0..n) for messages. */
static char *quote(const char *s, size_t n)
{
	char *q = xmalloc(PKG_QUOTE_MAX + 1);
	size_t i, k = 0;

	while (n && (*s == ' ' || *s == '\t'))
		s++, n--;
	for (i = 0; i < n && k < PKG_QUOTE_MAX; i++) {
		unsigned char ch = (unsigned char)s[i];
		q[k++] = ch == '\t' ? ' ' : (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
	}
	while (k && q[k - 1] == ' ')
		k--;
	q[k] = '\0';
	return q;
}

static int bad_line(const char *what, size_t no, const char *s, size_t n, const char *why)
{
	char *q = quote(s, n);

	err_set("%s: line %zu: %s: '%s'", what, no, why, q);
	free(q);
	return -1;
}

static int check_text(const char *what, const char *text, size_t len)
{
	if (len > PKG_OUTPUT_MAX)
		return err_set("%s: output too large (%zu bytes, at most %u)", what, len,
			       PKG_OUTPUT_MAX);
	if (len && memchr(text, '\0', len))
		return err_set("%s: output contains NUL bytes", what);
	return 0;
}

#define ALNUM "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
static const char name_chars[] = ALNUM "+-._:";
static const char version_chars[] = ALNUM "+-._:~^";
static const char arch_chars[] = ALNUM "_-";

static bool valid_field(const char *s, size_t n, const char *chars)
{
	size_t i;

	if (n == 0 || n > PKG_FIELD_MAX || !strchr(ALNUM, s[0]))
		return false;
	for (i = 0; i < n; i++)
		if (!s[i] || !strchr(chars, s[i]))
			return false;
	return true;
}

/* Split s[0..n) on blanks into at most max tokens; returns the count, or
 * max + 1 when there are more. */
static size_t tokens(const char *s, size_t n, const char **tok, size_t *tlen, size_t max)
{
	size_t i = 0, k = 0;

	for (;;) {
		size_t b;
		while (i < n && (s[i] == ' ' || s[i] == '\t'))
			i++;
		if (i >= n)
			return k;
		if (k == max)
			return max + 1;
		b = i;
		while (i < n && s[i] != ' ' && s[i] != '\t')
			i++;
		tok[k] = s + b;
		tlen[k++] = i - b;
	}
}

static int add_pkg(json_t *list, const char *name, size_t nl, const char *arch, size_t al,
		   const char *old, size_t ol, const char *nv, size_t nvl)
{
	json_t *o;

	if (json_array_size(list) >= PKG_LIST_MAX)
		return err_set("more than %d packages to upgrade", PKG_LIST_MAX);
	o = json_object();
	json_object_set_new(o, "package", json_stringn(name, nl));
	if (arch)
		json_object_set_new(o, "arch", json_stringn(arch, al));
	json_object_set_new(o, "oldVersion", json_stringn(old ? old : "", old ? ol : 0));
	json_object_set_new(o, "newVersion", json_stringn(nv, nvl));
	json_array_append_new(list, o);
	return 0;
}

/* Are all of s[0..n) in set? (bounded: lines are not NUL-terminated) */
static bool only(const char *s, size_t n, const char *set)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!s[i] || !strchr(set, s[i]))
			return false;
	return true;
}

static bool line_is(const char *s, size_t n, const char *prefix)
{
	size_t pl = strlen(prefix);

	return n >= pl && memcmp(s, prefix, pl) == 0;
}

static bool line_has(const char *s, size_t n, const char *needle)
{
	size_t nl = strlen(needle), i;

	for (i = 0; i + nl <= n; i++)
		if (memcmp(s + i, needle, nl) == 0)
			return true;
	return false;
}

/* ---- apt ---- */

#define APT_WHAT "UpdateOS: 'apt-get -s' output"

/* "Inst name [old] (new origin... [arch])" with optional trailing " []". */
static int apt_inst(const char *s, size_t n, size_t no, json_t *list)
{
	const char *p = s + 5, *e = s + n, *name, *old = NULL, *nv, *close, *arch = NULL, *q;
	size_t namel, oldl = 0, nvl, archl = 0;

	name = p;
	while (p < e && *p != ' ')
		p++;
	namel = (size_t)(p - name);
	if (!valid_field(name, namel, name_chars))
		return bad_line(APT_WHAT, no, s, n, "invalid package name");
	if (p < e)
		p++;
	if (p < e && *p == '[') {
		old = ++p;
		while (p < e && *p != ']')
			p++;
		oldl = (size_t)(p - old);
		if (p >= e || !valid_field(old, oldl, version_chars))
			return bad_line(APT_WHAT, no, s, n, "invalid installed version");
		p++;
		if (p < e && *p == ' ')
			p++;
	}
	if (p >= e || *p != '(')
		return bad_line(APT_WHAT, no, s, n, "no '(new version ...)'");
	nv = ++p;
	while (p < e && *p != ' ' && *p != ')')
		p++;
	nvl = (size_t)(p - nv);
	if (!valid_field(nv, nvl, version_chars))
		return bad_line(APT_WHAT, no, s, n, "invalid new version");
	if (!(close = memchr(p, ')', (size_t)(e - p))))
		return bad_line(APT_WHAT, no, s, n, "no closing ')'");
	for (q = close; q > p; q--)
		if (q[-1] == '[') {
			const char *rb = memchr(q, ']', (size_t)(close - q));
			if (rb) {
				arch = q;
				archl = (size_t)(rb - q);
			}
			break;
		}
	if (arch && !valid_field(arch, archl, arch_chars))
		return bad_line(APT_WHAT, no, s, n, "invalid architecture");
	return add_pkg(list, name, namel, arch, archl, old, oldl, nv, nvl);
}

/* "N upgraded, M newly installed, [R reinstalled, ][D downgraded, ]K to
 * remove and J not upgraded." → N + M + R + D. -1 when s is not that line. */
static int64_t apt_summary(const char *s, size_t n)
{
	int64_t total = 0;
	size_t i = 0;

	if (!line_has(s, n, " upgraded, ") || !line_has(s, n, " not upgraded."))
		return -1;
	while (i < n) {
		char num[21];
		size_t b = i, k = 0;
		uint64_t v;
		while (i < n && s[i] >= '0' && s[i] <= '9' && k < sizeof(num) - 1)
			num[k++] = s[i++];
		num[k] = '\0';
		if (!k || i >= n || s[i] != ' ' || parse_u64(num, (uint64_t)PKG_LIST_MAX * 10, &v) < 0)
			return -1;
		i++;
		if (line_is(s + i, n - i, "to remove "))
			return total;
		if (line_is(s + i, n - i, "upgraded, ") || line_is(s + i, n - i, "newly installed, ") ||
		    line_is(s + i, n - i, "reinstalled, ") || line_is(s + i, n - i, "downgraded, "))
			total += (int64_t)v;
		else
			return -1;
		while (i < n && s[i] != ',')
			i++;
		i += 2;          /* ", " */
		if (i <= b)
			return -1;
	}
	return -1;
}

int pkg_parse_apt(const char *text, size_t len, json_t *list)
{
	struct lines l;
	const char *s;
	size_t n, start = json_array_size(list);
	int64_t want = -1;

	if (check_text(APT_WHAT, text, len) < 0)
		return -1;
	lines_init(&l, text, len);
	while (next_line(&l, &s, &n)) {
		if (line_is(s, n, "Inst ")) {
			if (apt_inst(s, n, l.no, list) < 0)
				return -1;
		} else {
			int64_t v = apt_summary(s, n);
			if (v >= 0)
				want = v;
		}
	}
	if (want < 0)
		return err_set("%s: no summary line ('N upgraded, M newly installed, ...'): "
			       "not the output of apt-get", APT_WHAT);
	if ((int64_t)(json_array_size(list) - start) != want)
		return err_set("%s: %zu 'Inst' lines, but the summary says %" PRId64, APT_WHAT,
			       json_array_size(list) - start, want);
	return 0;
}

bool pkg_apt_refresh_failed(const char *out, size_t olen, const char *err, size_t elen)
{
	static const char *const marks[] = {
		"W: Failed to fetch", "E: Failed to fetch", "W: Some index files failed",
		"E: Some index files failed", "W: GPG error", "E: GPG error", "Err:", "Err ",
	};
	const char *texts[2] = { out, err };
	size_t lens[2] = { olen, elen }, t, m;

	for (t = 0; t < 2; t++) {
		struct lines l;
		const char *s;
		size_t n;
		lines_init(&l, texts[t], lens[t]);
		while (next_line(&l, &s, &n))
			for (m = 0; m < ARRAY_SIZE(marks); m++)
				if (line_is(s, n, marks[m]))
					return true;
	}
	return false;
}

/* ---- dnf, yum ---- */

#define DNF_WHAT "UpdateOS: 'check-update' output"

static const char *const rpm_arches[] = {
	"x86_64", "noarch", "i686", "i586", "i386", "aarch64", "ppc64le", "ppc64", "s390x",
	"armv7hl", "armv7l", "armv6hl", "riscv64", "loongarch64", "x86_64_v2", "src",
};

/* "name.arch" with a known arch: the split, or false. */
static bool name_arch(const char *s, size_t n, size_t *dot)
{
	size_t i, k;

	if (!valid_field(s, n, name_chars))
		return false;
	for (i = n; i > 0 && s[i - 1] != '.'; i--)
		;
	if (i < 2)
		return false;
	for (k = 0; k < ARRAY_SIZE(rpm_arches); k++)
		if (strlen(rpm_arches[k]) == n - i && memcmp(s + i, rpm_arches[k], n - i) == 0) {
			*dot = i - 1;
			return true;
		}
	return false;
}

/* rpm -qa lines "name.arch\tversion" → map "name.arch" → "v1 v2". */
static int rpm_installed(const char *text, size_t len, json_t *map)
{
	struct lines l;
	const char *s, *tok[3];
	size_t n, tl[3];

	if (check_text("UpdateOS: 'rpm -qa' output", text, len) < 0)
		return -1;
	lines_init(&l, text, len);
	while (next_line(&l, &s, &n)) {
		size_t k = tokens(s, n, tok, tl, 2);
		char *key;
		json_t *old;
		if (k == 0)
			continue;
		/* gpg-pubkey.(none): keys, not packages */
		if (k == 2 && line_is(tok[0], tl[0], "gpg-pubkey."))
			continue;
		if (k != 2 || !valid_field(tok[0], tl[0], name_chars) ||
		    !valid_field(tok[1], tl[1], version_chars))
			return bad_line("UpdateOS: 'rpm -qa' output", l.no, s, n,
					"not 'name.arch version'");
		key = xstrndup(tok[0], tl[0]);
		old = json_object_get(map, key);
		if (old)
			json_object_set_new(map, key, json_sprintf("%s %.*s", json_string_value(old),
								   (int)tl[1], tok[1]));
		else
			json_object_set_new(map, key, json_stringn(tok[1], tl[1]));
		free(key);
	}
	return 0;
}

int pkg_parse_dnf(const char *check, size_t clen, bool has_updates, const char *rpmqa,
		  size_t qlen, json_t *list)
{
	json_t *inst = json_object();
	struct lines l;
	const char *s, *tok[4], *pend = NULL;
	size_t n, tl[4], pendl = 0, start = json_array_size(list), dot;
	bool obsoletes = false;
	int r = -1;

	if (check_text(DNF_WHAT, check, clen) < 0 || rpm_installed(rpmqa, qlen, inst) < 0)
		goto cleanup;
	lines_init(&l, check, clen);
	while (next_line(&l, &s, &n)) {
		size_t k = tokens(s, n, tok, tl, 3);
		const char *na, *ver;
		size_t nal, verl;
		char *key;
		json_t *old;

		if (line_is(s, n, "Obsoleting")) {
			obsoletes = true;
			break;
		}
		if (k == 1 && s[0] != ' ' && name_arch(tok[0], tl[0], &dot)) {
			pend = tok[0];       /* a long name: the rest is on the next line */
			pendl = tl[0];
			continue;
		}
		if (pend && k == 2 && (s[0] == ' ' || s[0] == '\t')) {
			na = pend;
			nal = pendl;
			ver = tok[0];
			verl = tl[0];
		} else if (k == 3 && name_arch(tok[0], tl[0], &dot)) {
			na = tok[0];
			nal = tl[0];
			ver = tok[1];
			verl = tl[1];
		} else {
			pend = NULL;
			continue;    /* headers: "Last metadata expiration check", plugins */
		}
		pend = NULL;
		if (!name_arch(na, nal, &dot) || !valid_field(ver, verl, version_chars) ||
		    !memchr(ver, '-', verl)) {
			bad_line(DNF_WHAT, l.no, s, n, "not 'name.arch version-release repository'");
			goto cleanup;
		}
		key = xstrndup(na, nal);
		old = json_object_get(inst, key);
		free(key);
		if (add_pkg(list, na, dot, na + dot + 1, nal - dot - 1,
			    old ? json_string_value(old) : NULL,
			    old ? strlen(json_string_value(old)) : 0, ver, verl) < 0)
			goto cleanup;
	}
	if (has_updates && json_array_size(list) == start && !obsoletes) {
		err_set("%s: the exit status says there are updates, but no package line was "
			"found", DNF_WHAT);
		goto cleanup;
	}
	if (!has_updates && json_array_size(list) != start) {
		err_set("%s: package lines, but the exit status says there are no updates",
			DNF_WHAT);
		goto cleanup;
	}
	r = 0;
cleanup:
	json_decref(inst);
	return r;
}

/* ---- zypper ---- */

#define ZYP_WHAT "UpdateOS: 'zypper list-updates' output"
#define ZYP_COLS 12

/* Split a table row on '|' (or U+2502 '│' of zypper's Unicode tables) into
 * trimmed cells. The number of cells, or ZYP_COLS + 1 when more. */
static size_t cells(const char *s, size_t n, const char **c, size_t *cl)
{
	size_t i = 0, k = 0, b = 0;

	for (;;) {
		size_t w = 0;
		if (i < n && s[i] == '|')
			w = 1;
		else if (i + 2 < n + 0 && (unsigned char)s[i] == 0xe2 &&
			 (unsigned char)s[i + 1] == 0x94 && (unsigned char)s[i + 2] == 0x82)
			w = 3;
		if (i >= n || w) {
			size_t e = i;
			while (b < e && (s[b] == ' ' || s[b] == '\t'))
				b++;
			while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t'))
				e--;
			if (k == ZYP_COLS)
				return ZYP_COLS + 1;
			c[k] = s + b;
			cl[k++] = e - b;
			if (i >= n)
				return k;
			i += w;
			b = i;
			continue;
		}
		i++;
	}
}

static bool cell_is(const char *c, size_t cl, const char *s)
{
	return cl == strlen(s) && memcmp(c, s, cl) == 0;
}

static bool has_sep(const char *s, size_t n)
{
	return memchr(s, '|', n) || line_has(s, n, "\xe2\x94\x82");
}

static bool in_list(json_t *names, const char *s, size_t n)
{
	json_t *v;
	size_t i;

	json_array_foreach(names, i, v) {
		const char *x = json_string_value(v);
		if (x && strlen(x) == n && memcmp(x, s, n) == 0)
			return true;
	}
	return false;
}

int pkg_parse_zypper(const char *text, size_t len, json_t *include, json_t *list)
{
	struct lines l;
	const char *s, *c[ZYP_COLS + 1];
	size_t n, cl[ZYP_COLS + 1], ncols = 0, k, i;
	int name = -1, cur = -1, avail = -1, arch = -1;

	if (check_text(ZYP_WHAT, text, len) < 0)
		return -1;
	lines_init(&l, text, len);
	while (next_line(&l, &s, &n)) {
		if (!has_sep(s, n))
			continue;
		k = cells(s, n, c, cl);
		if (ncols == 0) {
			if (k > ZYP_COLS)
				return bad_line(ZYP_WHAT, l.no, s, n, "too many columns");
			for (i = 0; i < k; i++) {
				if (cell_is(c[i], cl[i], "Name"))
					name = (int)i;
				else if (cell_is(c[i], cl[i], "Current Version"))
					cur = (int)i;
				else if (cell_is(c[i], cl[i], "Available Version"))
					avail = (int)i;
				else if (cell_is(c[i], cl[i], "Arch"))
					arch = (int)i;
			}
			if (name < 0 || avail < 0)
				return bad_line(ZYP_WHAT, l.no, s, n,
						"a table without 'Name' and 'Available Version' "
						"columns");
			ncols = k;
			continue;
		}
		/* the rule under the header: -, +, = or box drawing only */
		if (only(s, n, "-+=| \t") || (unsigned char)s[0] == 0xe2)
			continue;
		if (k != ncols)
			return bad_line(ZYP_WHAT, l.no, s, n, "a row with the wrong number of cells");
		if (!valid_field(c[name], cl[name], name_chars) ||
		    !valid_field(c[avail], cl[avail], version_chars) ||
		    (cur >= 0 && !valid_field(c[cur], cl[cur], version_chars)) ||
		    (arch >= 0 && !valid_field(c[arch], cl[arch], arch_chars)))
			return bad_line(ZYP_WHAT, l.no, s, n, "invalid name, version or arch");
		if (json_array_size(include) && !in_list(include, c[name], cl[name]))
			continue;
		if (add_pkg(list, c[name], cl[name], arch >= 0 ? c[arch] : NULL,
			    arch >= 0 ? cl[arch] : 0, cur >= 0 ? c[cur] : NULL,
			    cur >= 0 ? cl[cur] : 0, c[avail], cl[avail]) < 0)
			return -1;
	}
	return 0;
}

/* ---- failure messages ---- */

char *pkg_failure_line(const char *out, size_t olen, const char *err, size_t elen)
{
	/* most telling first */
	static const char *const marks[] = {
		"Failed to fetch", "Failed to download metadata", "Cannot download",
		"Download (curl) error", "Problem retrieving", "Could not resolve",
		"Temporary failure resolving", "Error:", "E: ", "ERROR", "W: ", "Err",
	};
	const char *texts[2] = { err, out };
	size_t lens[2] = { elen, olen }, t, m;
	struct lines l;
	const char *s, *last = NULL;
	size_t n, lastn = 0;

	for (m = 0; m < ARRAY_SIZE(marks); m++)
		for (t = 0; t < 2; t++) {
			lines_init(&l, texts[t], lens[t]);
			while (next_line(&l, &s, &n))
				if (line_has(s, n, marks[m]))
					return quote(s, n);
		}
	for (t = 0; t < 2 && !last; t++) {
		lines_init(&l, texts[t], lens[t]);
		while (next_line(&l, &s, &n))
			if (!only(s, n, " \t")) {
				last = s;
				lastn = n;
			}
	}
	return last ? quote(last, lastn) : xstrdup("");
}

/* ---- network ---- */

static bool all_zero(const char *s, size_t n)
{
	return n && only(s, n, "0");
}

static int hexval(const char *s, size_t n, uint64_t *v)
{
	size_t i;

	*v = 0;
	if (!n || n > 8)
		return -1;
	for (i = 0; i < n; i++) {
		int d = s[i] >= '0' && s[i] <= '9' ? s[i] - '0'
			: s[i] >= 'a' && s[i] <= 'f' ? s[i] - 'a' + 10
			: s[i] >= 'A' && s[i] <= 'F' ? s[i] - 'A' + 10 : -1;
		if (d < 0)
			return -1;
		*v = *v * 16 + (uint64_t)d;
	}
	return 0;
}

bool pkg_net_has_default_route(const char *route, size_t rlen, const char *route6,
			       size_t r6len)
{
	struct lines l;
	const char *s, *tok[11];
	size_t n, tl[11];
	uint64_t flags;

	/* Iface Destination Gateway Flags RefCnt Use Metric Mask MTU Window IRTT */
	lines_init(&l, route, rlen);
	while (next_line(&l, &s, &n))
		if (tokens(s, n, tok, tl, 11) == 11 && !cell_is(tok[0], tl[0], "lo") &&
		    all_zero(tok[1], tl[1]) && all_zero(tok[7], tl[7]) &&
		    hexval(tok[3], tl[3], &flags) == 0 && (flags & 0x1))
			return true;
	/* dst dst_len src src_len next_hop metric refcnt use flags iface */
	lines_init(&l, route6, r6len);
	while (next_line(&l, &s, &n))
		if (tokens(s, n, tok, tl, 10) == 10 && !cell_is(tok[9], tl[9], "lo") &&
		    all_zero(tok[0], tl[0]) && all_zero(tok[1], tl[1]) &&
		    hexval(tok[8], tl[8], &flags) == 0 && (flags & 0x1) && !(flags & 0x200))
			return true;
	return false;
}
