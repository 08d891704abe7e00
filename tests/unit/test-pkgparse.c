/* Unit tests for builder/component/pkgparse.c, UpdateOS's readers of
 * package manager output, over sample outputs in tests/unit/data/updateos/:
 * the apt ones (apt-get -s, apt-get update with and without
 * APT::Update::Error-Mode=any) and /proc/net files were captured on a
 * Debian 12 machine; the dnf, yum, rpm and zypper ones are written in those
 * tools' formats. Also: garbage, oversized and hostile output is refused
 * with a message naming the line. */
#include <jansson.h>

#include "test.h"
#include "buf.h"
#include "error.h"
#include "util.h"
#include "builder/component/pkgparse.h"

#define DATA "tests/unit/data/updateos/"

static char *load(const char *name, size_t *len)
{
	struct buf b = BUF_INIT(1024 * 1024);
	char *path = xasprintf(DATA "%s", name), *s;

	if (buf_read_file(&b, path) < 0) {
		printf("FAIL: load %s: %s\n", path, err_msg());
		free(path);
		buf_release(&b);
		*len = 0;
		return xstrdup("");
	}
	free(path);
	s = buf_detach(&b, len);
	return s ? s : xstrdup("");
}

/* The entry of list for package name (first), or NULL. */
static json_t *entry(json_t *list, const char *name)
{
	json_t *v;
	size_t i;

	json_array_foreach(list, i, v)
		if (strcmp(json_string_value(json_object_get(v, "package")), name) == 0)
			return v;
	return NULL;
}

static bool is_pkg(json_t *list, const char *name, const char *arch, const char *old,
		   const char *nv)
{
	json_t *e = entry(list, name);
	json_t *a;

	if (!e)
		return false;
	a = json_object_get(e, "arch");
	if (arch ? !a || strcmp(json_string_value(a), arch) != 0 : a != NULL)
		return false;
	return strcmp(json_string_value(json_object_get(e, "oldVersion")), old) == 0 &&
	       strcmp(json_string_value(json_object_get(e, "newVersion")), nv) == 0;
}

static int apt_str(const char *s, json_t *list)
{
	return pkg_parse_apt(s, strlen(s), list);
}

static void test_apt(void)
{
	json_t *l = json_array();
	size_t len;
	char *s = load("apt-upgrade-sim.txt", &len), *cut, *p;

	CHECK(pkg_parse_apt(s, len, l) == 0, "apt: 'apt-get -s upgrade' parses (%s)", err_msg());
	CHECK(json_array_size(l) == 126, "apt: 126 upgrades, as the summary says (%zu)",
	      json_array_size(l));
	CHECK(is_pkg(l, "base-files", "amd64", "12.4+deb12u11", "12.4+deb12u15"),
	      "apt: name, arch, old and new version");
	CHECK(is_pkg(l, "libgcrypt20-dev", "amd64", "1.10.1-3", "1.10.1-3+deb12u1"),
	      "apt: two origins and a trailing '[]'");
	CHECK(is_pkg(l, "openssl", "amd64", "3.0.19-1~deb12u2", "3.0.22-1~deb12u2"),
	      "apt: '~' in versions");
	CHECK(strcmp(json_string_value(json_object_get(json_array_get(l, 0), "package")),
		     "base-files") == 0, "apt: apt's order kept");
	json_array_clear(l);

	/* one Inst line less than the summary says */
	cut = xstrdup(s);
	p = strstr(cut, "Inst bash ");
	if (p)
		memcpy(p, "Xnst", 4);
	CHECK(pkg_parse_apt(cut, strlen(cut), l) < 0 &&
	      strstr(err_msg(), "125 'Inst' lines, but the summary says 126"),
	      "apt: a count that disagrees with the summary is refused (%s)", err_msg());
	free(cut);
	free(s);
	json_array_clear(l);

	s = load("apt-only-upgrade-sim.txt", &len);
	CHECK(pkg_parse_apt(s, len, l) == 0 && json_array_size(l) == 3 &&
	      is_pkg(l, "libssl3", "amd64", "3.0.19-1~deb12u2", "3.0.22-1~deb12u2"),
	      "apt: 'install --only-upgrade openssl' pulls its libraries (%s)", err_msg());
	free(s);
	json_array_clear(l);

	s = load("apt-install-new-sim.txt", &len);
	CHECK(pkg_parse_apt(s, len, l) == 0 && json_array_size(l) == 1 &&
	      is_pkg(l, "hello", "amd64", "", "2.10-3"),
	      "apt: a newly installed package has oldVersion \"\" (%s)", err_msg());
	free(s);
	json_array_clear(l);

	CHECK(apt_str("Reading package lists...\n0 upgraded, 0 newly installed, 0 to remove and "
		      "0 not upgraded.\n", l) == 0 && json_array_size(l) == 0,
	      "apt: nothing to upgrade is an empty list");
	CHECK(apt_str("0 upgraded, 0 newly installed, 1 reinstalled, 0 to remove and 0 not "
		      "upgraded.\nInst x [1] (1 o [all])\n", l) == 0 && json_array_size(l) == 1,
	      "apt: reinstalls counted by the summary");
	json_array_clear(l);
	CHECK(apt_str("", l) < 0 && strstr(err_msg(), "no summary line"),
	      "apt: empty output refused (%s)", err_msg());
	CHECK(apt_str("Inst foo [1.0 (2.0 x [amd64])\n1 upgraded, 0 newly installed, 0 to remove "
		      "and 0 not upgraded.\n", l) < 0 &&
	      strstr(err_msg(), "line 1: invalid installed version"),
	      "apt: a malformed Inst line is refused with its number (%s)", err_msg());
	CHECK(apt_str("x\nInst fo\x1b[31mo [1] (2 x [amd64])\n", l) < 0 &&
	      strstr(err_msg(), "line 2: invalid package name: 'Inst fo?[31mo"),
	      "apt: control characters refused and not echoed (%s)", err_msg());
	CHECK(apt_str("Inst foo [1] (2 x [am$d64])\n1 upgraded, 0 newly installed, 0 to remove "
		      "and 0 not upgraded.\n", l) < 0 && strstr(err_msg(), "invalid architecture"),
	      "apt: an invalid architecture refused");
	CHECK(pkg_parse_apt("Inst a [1] (2 x)\0\n", 18, l) < 0 && strstr(err_msg(), "NUL"),
	      "apt: NUL bytes refused");
	s = xmalloc(PKG_OUTPUT_MAX + 1);
	memset(s, 'a', PKG_OUTPUT_MAX + 1);
	CHECK(pkg_parse_apt(s, PKG_OUTPUT_MAX + 1, l) < 0 && strstr(err_msg(), "too large"),
	      "apt: output over %u bytes refused", PKG_OUTPUT_MAX);
	free(s);
	json_decref(l);
}

static void test_apt_refresh(void)
{
	size_t ol, el;
	char *o, *e, *line;

	o = load("apt-update-old-failed.out", &ol);
	e = load("apt-update-old-failed.err", &el);
	CHECK(pkg_apt_refresh_failed(o, ol, e, el),
	      "apt refresh: 'W: Failed to fetch' after exit status 0 (apt < 2.1.16) is a failure");
	line = pkg_failure_line(o, ol, e, el);
	CHECK_STR(line, "W: Failed to fetch http://nonexistent.invalid/debian/dists/bookworm/"
		  "InRelease  Could not resolve 'nonexistent.invalid'",
		  "apt refresh: the message is apt's fetch failure line");
	free(line);
	free(o);
	free(e);
	o = load("apt-update-strict-failed.out", &ol);
	e = load("apt-update-strict-failed.err", &el);
	CHECK(pkg_apt_refresh_failed(o, ol, e, el), "apt refresh: strict mode's 'E:' lines");
	line = pkg_failure_line(o, ol, e, el);
	CHECK(str_startswith(line, "E: Failed to fetch http://nonexistent.invalid/"),
	      "apt refresh: strict mode's message (%s)", line);
	free(line);
	free(o);
	free(e);
	o = load("apt-update-ok.out", &ol);
	CHECK(!pkg_apt_refresh_failed(o, ol, "", 0), "apt refresh: a good refresh is not failed");
	free(o);
	CHECK(!pkg_apt_refresh_failed("Ign:1 http://x bookworm InRelease\nHit:2 http://x bookworm "
				      "Release\n", 60, NULL, 0),
	      "apt refresh: 'Ign:' lines are not failures");
	CHECK(pkg_apt_refresh_failed("Hit:1 http://x\n", 15, "W: GPG error: http://x bookworm "
				     "InRelease: NO_PUBKEY 0123\n", 53),
	      "apt refresh: a GPG error leaves the index stale: failure");
}

static void test_failure_line(void)
{
	static const char dnf_err[] =
		"Fedora 40 - x86_64                              0.0  B/s |   0  B     00:00\n"
		"Errors during downloading metadata for repository 'fedora':\n"
		"  - Curl error (6): Couldn't resolve host name for https://mirrors.fedoraproject.org/"
		"metalink?repo=fedora-40&arch=x86_64 [Could not resolve host: mirrors.fedoraproject.org]\n"
		"Error: Failed to download metadata for repo 'fedora': Cannot prepare internal "
		"mirrorlist: Curl error (6): Couldn't resolve host name\n";
	static const char zyp_err[] =
		"Retrieving repository 'Main Repository' metadata [...error]\n"
		"Repository 'Main Repository' is invalid.\n"
		"[repo-oss|http://download.opensuse.org/distribution/leap/15.6/repo/oss/] Valid "
		"metadata not found at specified URL\n"
		"History:\n"
		" - Download (curl) error for 'http://download.opensuse.org/distribution/leap/15.6/"
		"repo/oss/repodata/repomd.xml':\n"
		"Error code: Connection failed\n"
		"Error message: Could not resolve host: download.opensuse.org\n";
	char *l, *big;

	l = pkg_failure_line(NULL, 0, dnf_err, sizeof(dnf_err) - 1);
	CHECK(str_startswith(l, "Error: Failed to download metadata for repo 'fedora'"),
	      "failure line: dnf's error (%s)", l);
	free(l);
	l = pkg_failure_line("", 0, zyp_err, sizeof(zyp_err) - 1);
	CHECK(str_startswith(l, "- Download (curl) error for 'http://download.opensuse.org/"),
	      "failure line: zypper's download error (%s)", l);
	free(l);
	l = pkg_failure_line("something\nlast words\n\n", 22, "", 0);
	CHECK_STR(l, "last words", "failure line: else the last non-empty line");
	free(l);
	l = pkg_failure_line(NULL, 0, NULL, 0);
	CHECK_STR(l, "", "failure line: nothing said");
	free(l);
	big = xmalloc(10000);
	memset(big, 'E', 10000);
	memcpy(big, "E: \x01\x02", 5);
	l = pkg_failure_line(big, 10000, NULL, 0);
	CHECK(strlen(l) == PKG_QUOTE_MAX && str_startswith(l, "E: ??"),
	      "failure line: bounded and printable");
	free(l);
	free(big);
}

static void test_dnf(void)
{
	json_t *l = json_array();
	size_t cl, ql;
	char *c = load("dnf-check-update.txt", &cl), *q = load("dnf-rpm-qa.txt", &ql);

	CHECK(pkg_parse_dnf(c, cl, true, q, ql, l) == 0, "dnf: check-update parses (%s)",
	      err_msg());
	CHECK(json_array_size(l) == 7, "dnf: 7 updates, obsoletes left out (%zu)",
	      json_array_size(l));
	CHECK(is_pkg(l, "NetworkManager", "x86_64", "1:1.46.0-2.fc40", "1:1.46.2-1.fc40"),
	      "dnf: epoch kept, installed version from rpm -qa");
	CHECK(is_pkg(l, "kernel", "x86_64", "6.8.5-301.fc40 6.10.12-200.fc40", "6.11.5-200.fc40"),
	      "dnf: every installed kernel listed as old");
	CHECK(is_pkg(l, "python3-libdnf5-plugin-actions-extra-long-name", "noarch",
		     "5.2.5.0-1.fc40", "5.2.6.0-1.fc40"),
	      "dnf: a long name wrapped onto two lines");
	CHECK(!entry(l, "grub2-tools-efi"), "dnf: 'Obsoleting Packages' ends the list");
	json_array_clear(l);
	CHECK(pkg_parse_dnf(c, cl, false, q, ql, l) < 0 &&
	      strstr(err_msg(), "exit status says there are no updates"),
	      "dnf: package lines with exit status 0 refused");
	free(c);
	free(q);
	json_array_clear(l);

	c = load("yum-check-update.txt", &cl);
	q = load("yum-rpm-qa.txt", &ql);
	CHECK(pkg_parse_dnf(c, cl, true, q, ql, l) == 0 && json_array_size(l) == 2 &&
	      is_pkg(l, "bind-export-libs", "x86_64", "32:9.11.4-26.P2.el7_9.15",
		     "32:9.11.4-26.P2.el7_9.16"),
	      "yum: plugin and mirror lines skipped (%s)", err_msg());
	free(c);
	json_array_clear(l);
	CHECK(pkg_parse_dnf("", 0, false, q, ql, l) == 0 && json_array_size(l) == 0,
	      "dnf: no updates (exit status 0) is an empty list");
	CHECK(pkg_parse_dnf("Last metadata expiration check: 0:01:02 ago\n", 44, true, q, ql,
			    l) < 0 && strstr(err_msg(), "no package line"),
	      "dnf: exit status 100 without a package line refused");
	CHECK(pkg_parse_dnf("curl.x86_64  8$6.0-10  updates\n", 31, true, q, ql, l) < 0 &&
	      strstr(err_msg(), "line 1: not 'name.arch"),
	      "dnf: an invalid version refused (%s)", err_msg());
	CHECK(pkg_parse_dnf("Obsoleting Packages\ngrub2-tools-efi.x86_64  1:2.12-4.fc40  updates\n"
			    "    grub2-tools-efi.x86_64  1:2.06-121.fc40  @anaconda\n", 122, true, q,
			    ql, l) == 0 && json_array_size(l) == 0,
	      "dnf: only obsoletes (exit status 100): an empty list (%s)", err_msg());
	free(q);
	CHECK(pkg_parse_dnf("", 0, false, "curl.x86_64 8.6.0 extra\n", 24, l) < 0 &&
	      strstr(err_msg(), "'rpm -qa' output: line 1"),
	      "dnf: an rpm -qa line that is not 'name.arch version' refused");
	json_decref(l);
}

static void test_zypper(void)
{
	json_t *l = json_array(), *inc;
	size_t len;
	char *s = load("zypper-list-updates.txt", &len);

	CHECK(pkg_parse_zypper(s, len, NULL, l) == 0 && json_array_size(l) == 4,
	      "zypper: list-updates table parses (%s)", err_msg());
	CHECK(is_pkg(l, "timezone", "x86_64", "2024a-150000.75.28.1", "2024b-150000.75.31.1"),
	      "zypper: columns found by header (repository names with spaces)");
	json_array_clear(l);
	inc = json_pack("[s]", "openssl-3");
	CHECK(pkg_parse_zypper(s, len, inc, l) == 0 && json_array_size(l) == 1 &&
	      entry(l, "openssl-3"), "zypper: include keeps only the named packages");
	json_decref(inc);
	free(s);
	json_array_clear(l);
	s = load("zypper-list-updates-unicode.txt", &len);
	CHECK(pkg_parse_zypper(s, len, NULL, l) == 0 && json_array_size(l) == 1 &&
	      is_pkg(l, "libopenssl3", "x86_64", "3.1.4-150600.5.7.1", "3.1.4-150600.5.15.1"),
	      "zypper: a Unicode table without the Repository column (%s)", err_msg());
	free(s);
	json_array_clear(l);
	s = load("zypper-list-updates-none.txt", &len);
	CHECK(pkg_parse_zypper(s, len, NULL, l) == 0 && json_array_size(l) == 0,
	      "zypper: 'No updates found.' is an empty list");
	free(s);
	CHECK(pkg_parse_zypper("S | Name | Available Version\n--+--\nv | a | 1 | extra\n", 49, NULL,
			       l) < 0 && strstr(err_msg(), "line 3: a row with the wrong number"),
	      "zypper: a row with the wrong number of cells refused (%s)", err_msg());
	CHECK(pkg_parse_zypper("a | b | c\n", 10, NULL, l) < 0 &&
	      strstr(err_msg(), "without 'Name' and 'Available Version'"),
	      "zypper: a table without the expected header refused");
	json_decref(l);
}

static void test_net(void)
{
	size_t a, b, c, d;
	char *r4 = load("route-online", &a), *r6 = load("ipv6_route-online", &b);
	char *o4 = load("route-offline", &c), *o6 = load("ipv6_route-offline", &d);

	CHECK(pkg_net_has_default_route(r4, a, r6, b), "net: default route via eth0");
	CHECK(!pkg_net_has_default_route(o4, c, o6, d),
	      "net: only lo and its reject route: offline");
	CHECK(pkg_net_has_default_route(o4, c, r6, b), "net: an IPv6 default route is enough");
	CHECK(!pkg_net_has_default_route(NULL, 0, NULL, 0), "net: nothing read: no route");
	free(r4);
	free(r6);
	free(o4);
	free(o6);
}

int main(void)
{
	test_apt();
	test_apt_refresh();
	test_failure_line();
	test_dnf();
	test_zypper();
	test_net();
	return TEST_DONE();
}
