/* pkgparse.h: UpdateOS's readers of what the target's package manager and
 * kernel print. They run on the host over output captured from the guest,
 * which is untrusted: sizes are bounded, every field is checked against a
 * narrow character set, and anything that does not look like the tool's
 * output is refused with a message naming the line.
 *
 * The upgrade list is a JSON array of objects, in the package manager's
 * order:
 *   {"package": "openssl", "arch": "amd64", "oldVersion": "3.0.11-1~deb12u2",
 *    "newVersion": "3.0.13-1~deb12u1"}
 * "arch" is left out when the tool does not say; "oldVersion" is "" for a
 * package newly installed by the upgrade, and lists every installed version
 * (space-separated) for rpm packages installed more than once (kernels). */
#ifndef AMIFORGE_COMPONENT_PKGPARSE_H
#define AMIFORGE_COMPONENT_PKGPARSE_H

#include <jansson.h>

#include "compat.h"

/* Largest package manager output parsed (a listing of every package of a
 * big installation is well under 1 MiB). */
#define PKG_OUTPUT_MAX (8u * 1024 * 1024)
/* Most packages in one upgrade list. */
#define PKG_LIST_MAX 20000
/* Longest package name, version or architecture. */
#define PKG_FIELD_MAX 256
/* Longest line quoted in a message. */
#define PKG_QUOTE_MAX 300

/* `LC_ALL=C apt-get -s upgrade` (or `-s install --only-upgrade ...`): its
 * "Inst name [old] (new origin [arch])" lines, checked against the summary
 * line ("N upgraded, M newly installed, ..."), which must be there. */
int pkg_parse_apt(const char *text, size_t len, json_t *list);

/* `dnf -q check-update` / `yum -q check-update` (exit status 100: updates;
 * 0: none) and `rpm -qa --qf '%{NAME}.%{ARCH}\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\n'`
 * for the installed versions. has_updates: the exit status was 100, so at
 * least one package line (or an "Obsoleting Packages" section) must be
 * found. Obsoletes are not listed. */
int pkg_parse_dnf(const char *check, size_t clen, bool has_updates, const char *rpmqa,
		  size_t qlen, json_t *list);

/* `LC_ALL=C zypper -q list-updates`: the table, columns found by their
 * headers. include: names to keep (NULL or empty: all). */
int pkg_parse_zypper(const char *text, size_t len, json_t *include, json_t *list);

/* Did `apt-get update` leave an index unrefreshed? For apt before 2.1.16,
 * which exits 0 after "W: Failed to fetch ..." (newer apt is made strict
 * with APT::Update::Error-Mode=any). */
bool pkg_apt_refresh_failed(const char *out, size_t olen, const char *err, size_t elen);

/* The package manager's own words for a failure: the most telling line of
 * err, then out (a fetch failure, an error line, else the last line),
 * printable and at most PKG_QUOTE_MAX bytes. Caller frees; "" when both are
 * empty. */
char *pkg_failure_line(const char *out, size_t olen, const char *err, size_t elen);

/* /proc/net/route and /proc/net/ipv6_route: is there a usable default route
 * through an interface other than lo? Either text may be empty. */
bool pkg_net_has_default_route(const char *route, size_t rlen, const char *route6,
			       size_t r6len);

#endif
