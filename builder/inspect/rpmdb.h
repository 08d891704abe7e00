/* rpmdb.h: installed packages from an image's RPM database, read offline
 * (sbom.h calls it when the image has no dpkg database).
 *
 * Read: the sqlite database of rpm 4.16+ (Fedora 33+, RHEL 9+, Amazon
 * Linux 2023), rpmdb.sqlite under /usr/lib/sysimage/rpm or /var/lib/rpm.
 * Not read: Berkeley DB (Packages, RHEL 8 and older, Amazon Linux 2) and
 * ndb (Packages.db, SUSE): the SBOM then says it is incomplete.
 *
 * Everything here is untrusted input. The database is opened from memory
 * (sqlite3_deserialize, read-only, defensive, no trusted schema), its
 * Packages must be a table, the query runs under an operation budget
 * (RPMDB_SQL_OPS_MAX), and each package's header blob is parsed by
 * rpmdb_parse_header() with every offset, count and length checked against
 * the blob before it is used. */
#ifndef AMIFORGE_RPMDB_H
#define AMIFORGE_RPMDB_H

#include <jansson.h>

#include "compat.h"

/* Largest header blob (rpm's own limit on a header's data is 256 MiB; real
 * ones are a few hundred KiB) and most index entries in one (rpm: 65535). */
#define RPMDB_HEADER_MAX (16u << 20)
#define RPMDB_TAGS_MAX 65535
/* Largest rpmdb.sqlite read (a Fedora workstation's: ~100 MiB). */
#define RPMDB_SQLITE_MAX (256u << 20)
/* sqlite virtual machine steps (in units of 1000) the query may take. */
#define RPMDB_SQL_OPS_MAX 2000000

/* Where images keep the sqlite database, in the order tried. */
extern const char *const rpmdb_sqlite_paths[];
/* Where older images keep a Berkeley DB or ndb one (recognised, not read). */
extern const char *const rpmdb_other_paths[];

/* One header blob (as the database stores it: index count, data length,
 * index, data; a leading header magic is accepted) → {name, version, arch,
 * source?} with version "[EPOCH:]VERSION-RELEASE". NULL with an error
 * recorded when it is malformed or lacks a name, version or release. */
json_t *rpmdb_parse_header(const void *blob, size_t len);

/* The packages of an rpmdb.sqlite held in memory (len bytes; not modified),
 * sorted by name and arch, gpg-pubkey entries (keys, not packages) left
 * out. NULL with an error recorded. */
json_t *rpmdb_parse_sqlite(const void *db, size_t len);

#endif
