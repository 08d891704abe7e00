/* Unit tests for builder/inspect/rpmdb.c: header blobs made by rpm 4.18
 * (tests/unit/data/rpm/: bash with an epoch, a noarch package without one,
 * written by `rpm --justdb` into a sqlite rpmdb and taken out of it),
 * hostile headers (every truncation, offsets, counts, types, strings), and
 * sqlite databases built here (packages, keys, a view, no table, junk). */
#include <jansson.h>
#include <sqlite3.h>

#include "test.h"
#include "builder/inspect/rpmdb.h"
#include "builder/inspect/sbom.h"
#include "buf.h"
#include "error.h"
#include "util.h"

#define DATA "tests/unit/data/rpm/"

static char *slurp(const char *path, size_t *len)
{
	struct buf b = BUF_INIT(1 << 20);

	if (buf_read_regular(&b, path) < 0) {
		buf_release(&b);
		return NULL;
	}
	return buf_detach(&b, len);
}

static const char *str(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* A header of entries {tag, type, offset, count} over data. */
struct ent {
	uint32_t tag, type, off, count;
};

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static unsigned char *mkhdr(const struct ent *e, size_t n, const void *data, uint32_t dl,
			    size_t *len)
{
	unsigned char *h = xcalloc(1, 8 + n * 16 + dl);
	size_t i;

	put32(h, (uint32_t)n);
	put32(h + 4, dl);
	for (i = 0; i < n; i++) {
		put32(h + 8 + i * 16, e[i].tag);
		put32(h + 8 + i * 16 + 4, e[i].type);
		put32(h + 8 + i * 16 + 8, e[i].off);
		put32(h + 8 + i * 16 + 12, e[i].count);
	}
	memcpy(h + 8 + n * 16, data, dl);
	*len = 8 + n * 16 + dl;
	return h;
}

/* name, version, release, arch at 0, 4, 8, 14; an epoch of 7 at 28. */
static unsigned char sdata[32];

static void fill_sdata(void)
{
	memcpy(sdata, "pkg\0" "1.0\0" "2.el9\0" "x86_64", 21);
	put32(sdata + 28, 7);
}

static json_t *try(const struct ent *e, size_t n, uint32_t dl)
{
	size_t len;
	unsigned char *h = mkhdr(e, n, sdata, dl, &len);
	json_t *p = rpmdb_parse_header(h, len);

	free(h);
	return p;
}

static void test_headers(void)
{
	size_t len = 0, i;
	char *bash = slurp(DATA "bash.hdr", &len), *hello;
	json_t *p;
	int crashes = 0;
	size_t hlen = 0;

	fill_sdata();
	CHECK(bash != NULL, "rpm: bash.hdr read");
	p = bash ? rpmdb_parse_header(bash, len) : NULL;
	CHECK_STR(p ? str(p, "name") : NULL, "bash", "rpm: name");
	CHECK_STR(p ? str(p, "version") : NULL, "1:5.2.26-1.fc39", "rpm: epoch:version-release");
	CHECK_STR(p ? str(p, "arch") : NULL, "x86_64", "rpm: arch");
	CHECK_STR(p ? str(p, "source") : NULL, "bash-5.2.26-1.fc39.src.rpm", "rpm: source rpm");
	json_decref(p);
	hello = slurp(DATA "amiforge-hello.hdr", &hlen);
	p = hello ? rpmdb_parse_header(hello, hlen) : NULL;
	CHECK_STR(p ? str(p, "version") : NULL, "1.2.3-4.fc39", "rpm: no epoch, no 0:");
	CHECK_STR(p ? str(p, "arch") : NULL, "noarch", "rpm: noarch");
	json_decref(p);
	{	/* with the magic of a package file's header in front */
		unsigned char *m = xmalloc(len + 8);
		static const unsigned char magic[8] = { 0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0 };

		memcpy(m, magic, 8);
		memcpy(m + 8, bash, len);
		p = rpmdb_parse_header(m, len + 8);
		CHECK_STR(p ? str(p, "name") : NULL, "bash", "rpm: header magic accepted");
		json_decref(p);
		free(m);
	}
	/* Every truncation is refused (and none reads past the end: ASan). */
	for (i = 0; bash && i < len; i++) {
		unsigned char *c = xmalloc(i ? i : 1);

		memcpy(c, bash, i);
		p = rpmdb_parse_header(c, i);
		crashes += p != NULL;
		json_decref(p);
		free(c);
	}
	CHECK(bash && crashes == 0, "rpm: all %zu truncations of a real header refused", len);
	/* Every single byte of the index flipped: parsed or refused, never past
	 * the blob (ASan would say). */
	for (i = 0; bash && i < 8 + 16 * 8 && i < len; i++) {
		char save = bash[i];

		bash[i] = (char)(bash[i] ^ 0xff);
		json_decref(rpmdb_parse_header(bash, len));
		bash[i] = save;
	}
	CHECK(bash != NULL, "rpm: index bytes flipped one at a time: no crash");

	{
		struct ent ok[] = { { 1000, 6, 0, 1 }, { 1001, 6, 4, 1 }, { 1002, 6, 8, 1 },
				    { 1022, 6, 14, 1 }, { 1003, 4, 28, 1 } };
		uint32_t dl = 32;

		p = try(ok, 5, dl);
		CHECK_STR(p ? str(p, "version") : NULL, "7:1.0-2.el9", "rpm: built header parsed");
		json_decref(p);
		p = try(ok, 3, dl);
		CHECK_STR(p ? str(p, "arch") : NULL, "", "rpm: no arch tag: empty arch");
		json_decref(p);
		p = try(ok, 2, dl);
		CHECK(!p && strstr(err_msg(), "no name, version or release"), "rpm: no release refused (%s)", err_msg());
		json_decref(p);
		{
			struct ent e[] = { { 1000, 6, 0, 1 }, { 1001, 6, 40, 1 }, { 1002, 6, 8, 1 } };

			p = try(e, 3, dl);
			CHECK(!p && strstr(err_msg(), "do not fit"), "rpm: offset past the data (%s)", err_msg());
		}
		{
			struct ent e[] = { { 1000, 6, 0, 1 }, { 1001, 6, 4, 1 }, { 1002, 6, 8, 1 },
					   { 1003, 4, 30, 1 } };

			p = try(e, 4, dl);
			CHECK(!p && strstr(err_msg(), "do not fit"), "rpm: an epoch across the end (%s)", err_msg());
		}
		{
			struct ent e[] = { { 1000, 6, 0, 1 }, { 1001, 6, 4, 1 }, { 1002, 6, 8, 1 } };

			p = try(e, 3, 10);	/* "2.el9" cut before its NUL */
			CHECK(!p && strstr(err_msg(), "not terminated"), "rpm: unterminated string (%s)", err_msg());
		}
		{
			struct ent e[] = { { 1000, 6, 0, 1 }, { 1000, 6, 4, 1 }, { 1002, 6, 8, 1 } };

			p = try(e, 3, dl);
			CHECK(!p && strstr(err_msg(), "twice"), "rpm: a tag twice (%s)", err_msg());
		}
		{
			struct ent e[] = { { 1000, 8, 0, 1 }, { 1001, 6, 4, 1 }, { 1002, 6, 8, 1 } };

			p = try(e, 3, dl);
			CHECK(!p && strstr(err_msg(), "type 8"), "rpm: a name of the wrong type (%s)", err_msg());
		}
		{
			struct ent e[] = { { 1000, 6, 0, 2 }, { 1001, 6, 4, 1 }, { 1002, 6, 8, 1 } };

			p = try(e, 3, dl);
			CHECK(!p && strstr(err_msg(), "count 2"), "rpm: a count of 2 (%s)", err_msg());
		}
	}
	{
		unsigned char h[8];

		put32(h, 0);
		put32(h + 4, 0);
		p = rpmdb_parse_header(h, 8);
		CHECK(!p && strstr(err_msg(), "index entries"), "rpm: no entries (%s)", err_msg());
		put32(h, 70000);
		p = rpmdb_parse_header(h, 8);
		CHECK(!p && strstr(err_msg(), "index entries"), "rpm: 70000 entries (%s)", err_msg());
		put32(h, 1);
		put32(h + 4, 0xffffffffu);
		p = rpmdb_parse_header(h, 8);
		CHECK(!p && strstr(err_msg(), "run past"), "rpm: 4 GiB of data claimed (%s)", err_msg());
	}
	{	/* a name that is not UTF-8 */
		static const char bad[] = "\xff\xfe\0" "1\0" "2\0";
		struct ent e[] = { { 1000, 6, 0, 1 }, { 1001, 6, 3, 1 }, { 1002, 6, 5, 1 } };
		unsigned char *h = mkhdr(e, 3, bad, sizeof(bad), &len);

		p = rpmdb_parse_header(h, len);
		CHECK(!p && strstr(err_msg(), "UTF-8"), "rpm: a name that is not UTF-8 (%s)", err_msg());
		free(h);
	}
	free(bash);
	free(hello);
}

/* An sqlite database in memory, made by the statements given, serialized. */
static unsigned char *mkdb(const char *sql, const char *const *blobs, const size_t *lens,
			   size_t n, size_t *len)
{
	sqlite3 *s = NULL;
	sqlite3_stmt *st = NULL;
	sqlite3_int64 sz = 0;
	unsigned char *ser, *out;
	size_t i;

	sqlite3_open(":memory:", &s);
	sqlite3_exec(s, sql, NULL, NULL, NULL);
	if (n && sqlite3_prepare_v2(s, "INSERT INTO Packages (blob) VALUES (?)", -1, &st, NULL) ==
			 SQLITE_OK) {
		for (i = 0; i < n; i++) {
			sqlite3_bind_blob(st, 1, blobs[i], (int)lens[i], SQLITE_STATIC);
			sqlite3_step(st);
			sqlite3_reset(st);
		}
		sqlite3_finalize(st);
	}
	ser = sqlite3_serialize(s, "main", &sz, 0);
	out = xmalloc((size_t)sz);
	memcpy(out, ser, (size_t)sz);
	sqlite3_free(ser);
	sqlite3_close(s);
	*len = (size_t)sz;
	return out;
}

static void test_sqlite(void)
{
	static const char table[] =
		"CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)";
	size_t lb = 0, lh = 0, len, lk;
	char *bash = slurp(DATA "bash.hdr", &lb), *hello = slurp(DATA "amiforge-hello.hdr", &lh);
	struct ent ke[] = { { 1000, 6, 0, 1 }, { 1001, 6, 11, 1 }, { 1002, 6, 20, 1 } };
	static const char kd[] = "gpg-pubkey\0" "18b8e74c\0" "62f2920f";
	unsigned char *key = mkhdr(ke, 3, kd, sizeof(kd), &lk), *db;
	const char *blobs[3] = { hello, (const char *)key, bash };
	size_t lens[3] = { lh, lk, lb };
	json_t *p;

	db = mkdb(table, blobs, lens, 3, &len);
	p = rpmdb_parse_sqlite(db, len);
	CHECK(p && json_array_size(p) == 2, "sqlite: two packages, the key left out (%s)",
	      p ? "" : err_msg());
	CHECK(p && json_array_size(p) == 2 &&
	      strcmp(str(json_array_get(p, 0), "name"), "amiforge-hello") == 0 &&
	      strcmp(str(json_array_get(p, 1), "name"), "bash") == 0, "sqlite: sorted by name");
	{	/* the CycloneDX of them: rpm package URLs, the epoch a qualifier */
		json_t *k = json_array(), *bom = sbom_cyclonedx(p, "rpm", "fedora", "39", "x86_64", k,
							       "img", NULL);

		CHECK_STR(str(json_array_get(json_object_get(bom, "components"), 1), "purl"),
			  "pkg:rpm/fedora/bash@5.2.26-1.fc39?arch=x86_64&distro=fedora-39&epoch=1",
			  "sqlite: purl of an rpm with an epoch");
		CHECK_STR(str(json_array_get(json_object_get(bom, "components"), 1), "version"),
			  "1:5.2.26-1.fc39", "sqlite: the component's version keeps the epoch");
		json_decref(bom);
		json_decref(k);
	}
	json_decref(p);
	free(db);

	/* rpm's own file is in WAL mode: bytes 18 and 19 are 2. */
	db = mkdb(table, blobs, lens, 1, &len);
	db[18] = db[19] = 2;
	p = rpmdb_parse_sqlite(db, len);
	CHECK(p && json_array_size(p) == 1 && db[18] == 2, "sqlite: a WAL-mode file read, the input untouched");
	json_decref(p);
	free(db);

	db = mkdb("CREATE TABLE Real (blob BLOB); CREATE VIEW Packages AS WITH RECURSIVE "
		  "c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT zeroblob(10) AS blob "
		  "FROM c", NULL, NULL, 0, &len);
	p = rpmdb_parse_sqlite(db, len);
	CHECK(!p && strstr(err_msg(), "no Packages table"), "sqlite: Packages as an endless view refused (%s)", err_msg());
	free(db);

	db = mkdb("CREATE TABLE Other (blob BLOB)", NULL, NULL, 0, &len);
	p = rpmdb_parse_sqlite(db, len);
	CHECK(!p && strstr(err_msg(), "no Packages table"), "sqlite: no Packages table (%s)", err_msg());
	free(db);

	{
		const char *junk[1] = { "not a header at all" };
		size_t jl[1] = { 19 };

		db = mkdb(table, junk, jl, 1, &len);
		p = rpmdb_parse_sqlite(db, len);
		CHECK(!p && strstr(err_msg(), "package 1: rpm header"), "sqlite: a junk row named (%s)", err_msg());
		free(db);
	}
	p = rpmdb_parse_sqlite("SQLite format 2\0 and more bytes than a hundred ......................................................................", 120);
	CHECK(!p && strstr(err_msg(), "not an sqlite database"), "sqlite: not sqlite (%s)", err_msg());
	db = mkdb(table, blobs, lens, 3, &len);
	memset(db + 4096, 0x5a, len - 4096 > 512 ? 512 : len - 4096);	/* a page trampled */
	p = rpmdb_parse_sqlite(db, len);
	CHECK(!p, "sqlite: a trampled page refused (%s)", err_msg());
	json_decref(p);
	free(db);
	free(key);
	free(bash);
	free(hello);
}

int main(void)
{
	test_headers();
	test_sqlite();
	return TEST_DONE();
}
