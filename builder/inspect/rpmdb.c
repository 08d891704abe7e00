/* rpmdb.c: an RPM database's installed packages, offline (see rpmdb.h). */
#include <jansson.h>
#include <sqlite3.h>

#include "rpmdb.h"
#include "sbom.h"
#include "error.h"
#include "util.h"

const char *const rpmdb_sqlite_paths[] = {
	"/usr/lib/sysimage/rpm/rpmdb.sqlite", "/var/lib/rpm/rpmdb.sqlite", NULL
};
const char *const rpmdb_other_paths[] = {
	"/var/lib/rpm/Packages", "/usr/lib/sysimage/rpm/Packages",
	"/usr/lib/sysimage/rpm/Packages.db", "/var/lib/rpm/Packages.db", NULL
};

/* ---- header blobs ---- */

enum { RPM_INT32 = 4, RPM_STRING = 6 };
enum { TAG_NAME = 1000, TAG_VERSION = 1001, TAG_RELEASE = 1002, TAG_EPOCH = 1003,
       TAG_ARCH = 1022, TAG_SOURCERPM = 1044 };
/* Longest name, version, release, arch or source read. */
#define RPM_FIELD_MAX 4096

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The fields read, by tag (one table: the tag, its type, where it goes). */
struct hdr {
	const char *str[6];
	uint32_t epoch;
	bool has_epoch;
};
static const struct {
	uint32_t tag, type;
	int slot;	/* index into str, or -1: the epoch */
} fields[] = {
	{ TAG_NAME, RPM_STRING, 0 },    { TAG_VERSION, RPM_STRING, 1 },
	{ TAG_RELEASE, RPM_STRING, 2 }, { TAG_ARCH, RPM_STRING, 3 },
	{ TAG_SOURCERPM, RPM_STRING, 4 }, { TAG_EPOCH, RPM_INT32, -1 },
};

json_t *rpmdb_parse_header(const void *blob, size_t len)
{
	static const unsigned char magic[8] = { 0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0 };
	const unsigned char *p = blob, *data;
	struct hdr h = { 0 };
	bool seen[sizeof(fields) / sizeof(fields[0])] = { false };
	uint32_t il, dl, i;
	char *version = NULL;
	json_t *pkg = NULL;
	size_t k;

	if (len >= 8 && memcmp(p, magic, 8) == 0) {
		p += 8;
		len -= 8;
	}
	if (len > RPMDB_HEADER_MAX) {
		err_set("rpm header: %zu bytes, more than %u", len, RPMDB_HEADER_MAX);
		return NULL;
	}
	if (len < 8) {
		err_set("rpm header: %zu bytes, too short", len);
		return NULL;
	}
	il = be32(p);
	dl = be32(p + 4);
	if (il == 0 || il > RPMDB_TAGS_MAX) {
		err_set("rpm header: %" PRIu32 " index entries (1..%d)", il, RPMDB_TAGS_MAX);
		return NULL;
	}
	if (8 + (uint64_t)il * 16 + dl > len) {
		err_set("rpm header: %" PRIu32 " entries and %" PRIu32 " bytes of data run past "
			"its %zu bytes", il, dl, len);
		return NULL;
	}
	data = p + 8 + (size_t)il * 16;
	for (i = 0; i < il; i++) {
		const unsigned char *e = p + 8 + (size_t)i * 16;
		uint32_t tag = be32(e), type = be32(e + 4), off = be32(e + 8), count = be32(e + 12);

		for (k = 0; k < sizeof(fields) / sizeof(fields[0]) && fields[k].tag != tag; k++)
			;
		if (k == sizeof(fields) / sizeof(fields[0]))
			continue;
		if (seen[k]) {
			err_set("rpm header: tag %" PRIu32 " twice", tag);
			return NULL;
		}
		seen[k] = true;
		if (type != fields[k].type || count != 1 || off >= dl ||
		    (type == RPM_INT32 && dl - off < 4)) {
			err_set("rpm header: tag %" PRIu32 ": type %" PRIu32 ", count %" PRIu32
				", offset %" PRIu32 " do not fit its %" PRIu32 " bytes of data",
				tag, type, count, off, dl);
			return NULL;
		}
		if (type == RPM_INT32) {
			h.epoch = be32(data + off);
			h.has_epoch = true;
		} else {
			const unsigned char *nul = memchr(data + off, 0, dl - off);

			if (!nul || nul - (data + off) > RPM_FIELD_MAX) {
				err_set("rpm header: tag %" PRIu32 ": string %s", tag,
					nul ? "too long" : "not terminated within the data");
				return NULL;
			}
			h.str[fields[k].slot] = (const char *)data + off;
		}
	}
	if (!h.str[0] || !*h.str[0] || !h.str[1] || !*h.str[1] || !h.str[2] || !*h.str[2]) {
		err_set("rpm header: no name, version or release");
		return NULL;
	}
	version = h.has_epoch ? xasprintf("%" PRIu32 ":%s-%s", h.epoch, h.str[1], h.str[2])
			      : xasprintf("%s-%s", h.str[1], h.str[2]);
	pkg = json_pack("{s:s, s:s, s:s}", "name", h.str[0], "version", version, "arch",
			h.str[3] ? h.str[3] : "");
	if (pkg && h.str[4] && json_object_set_new(pkg, "source", json_string(h.str[4])) < 0) {
		json_decref(pkg);
		pkg = NULL;
	}
	if (!pkg)
		err_set("rpm header: a name, version, arch or source that is not UTF-8 text");
	free(version);
	return pkg;
}

/* ---- rpmdb.sqlite ---- */

static int budget(void *opaque)
{
	long *ops = opaque;

	return ++*ops > RPMDB_SQL_OPS_MAX;
}

json_t *rpmdb_parse_sqlite(const void *db, size_t len)
{
	sqlite3 *s = NULL;
	sqlite3_stmt *st = NULL;
	unsigned char *copy;
	json_t *out = json_array(), *pkg;
	const char *type;
	long ops = 0, row = 0;
	int rc, ok = 0;

	if (len < 100 || len > RPMDB_SQLITE_MAX || memcmp(db, "SQLite format 3", 16) != 0) {
		err_set("rpmdb.sqlite: not an sqlite database of at most %u bytes",
			RPMDB_SQLITE_MAX);
		goto cleanup;
	}
	copy = sqlite3_malloc64(len);
	if (!copy)
		abort();
	memcpy(copy, db, len);
	/* rpm writes in WAL mode: read the file as a rollback-journal database
	 * (the -wal file, if any, is not part of it). */
	copy[18] = copy[19] = 1;
	if (sqlite3_open_v2(":memory:", &s, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		sqlite3_free(copy);
		err_set("rpmdb.sqlite: cannot open an sqlite handle");
		goto cleanup;
	}
	sqlite3_db_config(s, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(s, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	sqlite3_db_config(s, SQLITE_DBCONFIG_ENABLE_TRIGGER, 0, NULL);
	sqlite3_db_config(s, SQLITE_DBCONFIG_ENABLE_VIEW, 0, NULL);
	sqlite3_limit(s, SQLITE_LIMIT_LENGTH, RPMDB_HEADER_MAX);
	sqlite3_limit(s, SQLITE_LIMIT_SQL_LENGTH, 4096);
	sqlite3_progress_handler(s, 1000, budget, &ops);
	if (sqlite3_deserialize(s, "main", copy, (sqlite3_int64)len, (sqlite3_int64)len,
				SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_READONLY) !=
	    SQLITE_OK) {
		err_set("rpmdb.sqlite: %s", sqlite3_errmsg(s));
		goto cleanup;
	}
	if (sqlite3_prepare_v2(s, "SELECT type FROM sqlite_master WHERE name = 'Packages'", -1,
			       &st, NULL) != SQLITE_OK) {
		err_set("rpmdb.sqlite: %s", sqlite3_errmsg(s));
		goto cleanup;
	}
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		err_set("rpmdb.sqlite: %s", sqlite3_errmsg(s));
		goto cleanup;
	}
	type = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
	if (!type || strcmp(type, "table") != 0) {
		err_set("rpmdb.sqlite: no Packages table%s", type ? " (a view or index of that "
							     "name)" : "");
		goto cleanup;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(s, "SELECT blob FROM Packages", -1, &st, NULL) != SQLITE_OK) {
		err_set("rpmdb.sqlite: %s", sqlite3_errmsg(s));
		goto cleanup;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const void *blob = sqlite3_column_blob(st, 0);
		int n = sqlite3_column_bytes(st, 0);

		row++;
		if (!blob || n <= 0) {
			err_set("rpmdb.sqlite: package %ld has no header", row);
			goto cleanup;
		}
		pkg = rpmdb_parse_header(blob, (size_t)n);
		if (!pkg) {
			err_prefix("rpmdb.sqlite: package %ld", row);
			goto cleanup;
		}
		/* Imported signing keys are entries too; they are not packages. */
		if (strcmp(json_string_value(json_object_get(pkg, "name")), "gpg-pubkey") == 0) {
			json_decref(pkg);
			continue;
		}
		if (json_array_size(out) >= SBOM_PACKAGES_MAX) {
			json_decref(pkg);
			err_set("rpmdb.sqlite: more than %d packages", SBOM_PACKAGES_MAX);
			goto cleanup;
		}
		json_array_append_new(out, pkg);
	}
	if (rc != SQLITE_DONE) {
		err_set("rpmdb.sqlite: %s", rc == SQLITE_INTERRUPT ? "the query took too long"
								   : sqlite3_errmsg(s));
		goto cleanup;
	}
	sbom_sort_packages(out);
	ok = 1;
cleanup:
	sqlite3_finalize(st);
	sqlite3_close(s);
	if (!ok) {
		json_decref(out);
		out = NULL;
	}
	return out;
}
