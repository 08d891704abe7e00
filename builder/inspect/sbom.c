/* sbom.c: installed packages, offline, as CycloneDX (see sbom.h). */
#include <jansson.h>
#include <sys/random.h>
#include <time.h>

#include "sbom.h"
#include "files.h"
#include "rpmdb.h"
#include "builder/disk/appliance.h"
#include "drivers/hypervisor/arch.h"
#include "buf.h"
#include "error.h"
#include "log.h"
#include "util.h"

#ifndef AMIFORGE_VERSION
#define AMIFORGE_VERSION "0.1.0"
#endif

/* ---- dpkg ---- */

static int cmp_pkg(const void *a, const void *b)
{
	const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	int c = strcmp(json_string_value(json_object_get(x, "name")),
		       json_string_value(json_object_get(y, "name")));

	if (c)
		return c;
	return strcmp(json_string_value(json_object_get(x, "arch")),
		      json_string_value(json_object_get(y, "arch")));
}

void sbom_sort_packages(json_t *packages)
{
	size_t n = json_array_size(packages), i;
	json_t **v = xcalloc(n ? n : 1, sizeof(*v));

	for (i = 0; i < n; i++)
		v[i] = json_incref(json_array_get(packages, i));
	qsort(v, n, sizeof(*v), cmp_pkg);
	json_array_clear(packages);
	for (i = 0; i < n; i++)
		json_array_append_new(packages, v[i]);
	free(v);
}

/* One field's value (the rest of the line, first line only). */
static char *field_value(const char *line, const char *end)
{
	while (line < end && (*line == ' ' || *line == '\t'))
		line++;
	while (end > line && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		end--;
	return xstrndup(line, (size_t)(end - line));
}

json_t *sbom_parse_dpkg_status(const char *text, size_t len)
{
	const char *p = text, *end = text + len;
	char *name = NULL, *version = NULL, *arch = NULL, *source = NULL, *status = NULL;
	json_t *out = json_array();
	size_t fields = 0;

	for (;;) {
		const char *eol = p < end ? memchr(p, '\n', (size_t)(end - p)) : NULL;
		const char *le = eol ? eol : end;

		if (p >= end || le == p) {	/* end of a paragraph */
			if (name && status && str_endswith(status, " installed") && version) {
				json_t *pkg;

				if (json_array_size(out) >= SBOM_PACKAGES_MAX) {
					err_set("dpkg status: more than %d packages", SBOM_PACKAGES_MAX);
					goto bad;
				}
				pkg = json_pack("{s:s, s:s, s:s}", "name", name, "version", version,
						"arch", arch ? arch : "");
				if (!pkg) {	/* not UTF-8 */
					err_set("dpkg status: package '%.64s' is not UTF-8 text", name);
					goto bad;
				}
				if (source)
					json_object_set_new(pkg, "source", json_string(source));
				json_array_append_new(out, pkg);
			}
			free(name);
			free(version);
			free(arch);
			free(source);
			free(status);
			name = version = arch = source = status = NULL;
			if (p >= end)
				break;
			p = le + 1;
			continue;
		}
		if (*p != ' ' && *p != '\t') {
			const char *colon = memchr(p, ':', (size_t)(le - p));
			char **slot = NULL;

			if (!colon) {
				err_set("dpkg status: line without a field name at byte %zu",
					(size_t)(p - text));
				goto bad;
			}
			fields++;
			if ((size_t)(colon - p) == 7 && strncmp(p, "Package", 7) == 0)
				slot = &name;
			else if ((size_t)(colon - p) == 7 && strncmp(p, "Version", 7) == 0)
				slot = &version;
			else if ((size_t)(colon - p) == 12 && strncmp(p, "Architecture", 12) == 0)
				slot = &arch;
			else if ((size_t)(colon - p) == 6 && strncmp(p, "Source", 6) == 0)
				slot = &source;
			else if ((size_t)(colon - p) == 6 && strncmp(p, "Status", 6) == 0)
				slot = &status;
			if (slot) {
				free(*slot);
				*slot = field_value(colon + 1, le);
			}
		}
		p = le + (eol ? 1 : 0);
	}
	if (!fields) {
		err_set("dpkg status: no fields");
		goto bad;
	}
	sbom_sort_packages(out);
	return out;
bad:
	free(name);
	free(version);
	free(arch);
	free(source);
	free(status);
	json_decref(out);
	return NULL;
}

/* ---- CycloneDX ---- */

/* purl component: percent-encode all but unreserved characters. */
static void purl_part(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '.' || c == '-' || c == '_' || c == '~') {
			buf_addc(b, (char)c);
		} else {
			buf_addc(b, '%');
			buf_addc(b, hex[c >> 4]);
			buf_addc(b, hex[c & 15]);
		}
	}
}

/* pkg:TYPE/DISTRO/NAME@VERSION?arch=A&distro=DISTRO-VER[&epoch=E]: an rpm's
 * version is VERSION-RELEASE, its epoch a qualifier (the purl spec's rpm
 * type; a dpkg version keeps its epoch). */
static char *purl(const char *type, const char *distro, const char *os_version,
		  const json_t *pkg)
{
	struct buf b = BUF_INIT(4096);
	const char *arch = json_string_value(json_object_get(pkg, "arch"));
	const char *version = json_string_value(json_object_get(pkg, "version"));
	const char *colon = strcmp(type, "rpm") == 0 ? strchr(version, ':') : NULL;
	char *epoch = colon ? xstrndup(version, (size_t)(colon - version)) : NULL;

	buf_adds(&b, "pkg:");
	buf_adds(&b, type);
	buf_adds(&b, "/");
	purl_part(&b, distro);
	buf_adds(&b, "/");
	purl_part(&b, json_string_value(json_object_get(pkg, "name")));
	buf_adds(&b, "@");
	purl_part(&b, colon ? colon + 1 : version);
	if (arch && *arch) {
		buf_adds(&b, "?arch=");
		purl_part(&b, arch);
		buf_adds(&b, "&distro=");
	} else {
		buf_adds(&b, "?distro=");
	}
	purl_part(&b, distro);
	buf_adds(&b, "-");
	purl_part(&b, os_version);
	if (epoch) {
		buf_adds(&b, "&epoch=");
		purl_part(&b, epoch);
	}
	free(epoch);
	return buf_detach(&b, NULL);
}

static char *uuid4(void)
{
	uint8_t r[16];

	if (getrandom(r, sizeof(r), 0) != sizeof(r))
		memset(r, 0, sizeof(r));
	r[6] = (uint8_t)((r[6] & 0x0f) | 0x40);
	r[8] = (uint8_t)((r[8] & 0x3f) | 0x80);
	return xasprintf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
			 r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11],
			 r[12], r[13], r[14], r[15]);
}

json_t *sbom_cyclonedx(const json_t *packages, const char *pkg_type, const char *distro,
		       const char *os_version, const char *arch, const json_t *kernels,
		       const char *image_name, const char *incomplete)
{
	json_t *bom, *comps = json_array(), *props = json_array(), *pkg, *k;
	char *uuid = uuid4(), *serial = xasprintf("urn:uuid:%s", uuid), stamp[32], count[32];
	time_t t = time(NULL);
	struct tm tm;
	size_t i;

	gmtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_array_foreach(packages, i, pkg) {
		char *p = purl(pkg_type, distro, os_version, pkg);
		json_t *c = json_pack("{s:s, s:s, s:O, s:O, s:s}", "type", "library", "bom-ref", p,
				      "name", json_object_get(pkg, "name"),
				      "version", json_object_get(pkg, "version"), "purl", p);
		json_t *cp = json_array();

		if (json_string_length(json_object_get(pkg, "arch")))
			json_array_append_new(cp, json_pack("{s:s, s:O}", "name",
				"amiforge:package:arch", "value", json_object_get(pkg, "arch")));
		if (json_object_get(pkg, "source"))
			json_array_append_new(cp, json_pack("{s:s, s:O}", "name",
				"amiforge:package:source", "value", json_object_get(pkg, "source")));
		if (json_array_size(cp))
			json_object_set_new(c, "properties", cp);
		else
			json_decref(cp);
		json_array_append_new(comps, c);
		free(p);
	}
	json_array_foreach(kernels, i, k)
		json_array_append_new(props, json_pack("{s:s, s:O}", "name", "amiforge:kernel",
						       "value", k));
	json_array_append_new(props, json_pack("{s:s, s:s}", "name", "amiforge:architecture",
					       "value", arch ? arch : "unknown"));
	if (arch && arch_find(arch))
		json_array_append_new(props, json_pack("{s:s, s:s}", "name",
						       "amiforge:ec2-architecture",
						       "value", arch_find(arch)->ec2));
	snprintf(count, sizeof(count), "%zu", json_array_size(packages));
	json_array_append_new(props, json_pack("{s:s, s:s}", "name", "amiforge:package-count",
					       "value", count));
	if (incomplete)
		json_array_append_new(props, json_pack("{s:s, s:s}", "name",
			"amiforge:packages:incomplete", "value", incomplete));
	bom = json_pack("{s:s, s:s, s:s, s:i, s:{s:s, s:{s:[{s:s, s:s, s:s}]}, s:{s:s, s:s, "
			"s:s, s:s}, s:o}, s:o}",
			"bomFormat", "CycloneDX", "specVersion", "1.5",
			"serialNumber", serial,
			"version", 1,
			"metadata", "timestamp", stamp,
			"tools", "components", "type", "application", "name", "amiforge",
			"version", AMIFORGE_VERSION,
			"component", "type", "operating-system", "bom-ref", "os",
			"name", distro ? distro : "unknown", "version", os_version ? os_version : "",
			"properties", props,
			"components", comps);
	if (bom && image_name)
		json_object_set_new(json_object_get(json_object_get(bom, "metadata"), "component"),
				    "description", json_string(image_name));
	free(uuid);
	free(serial);
	return bom;
}

/* ---- from a disk ---- */

static json_t *kernels_of(guestfs_h *g)
{
	json_t *out = json_array();
	char **names;
	size_t i;

	if (guestfs_is_dir(g, "/lib/modules") <= 0)
		return out;
	names = guestfs_ls(g, "/lib/modules");
	for (i = 0; names && names[i] && i < 64; i++)
		if (names[i][0] != '.' && strlen(names[i]) < 128)
			json_array_append_new(out, json_string(names[i]));
	for (i = 0; names && names[i]; i++)
		free(names[i]);
	free(names);
	return out;
}

/* The image's packages: dpkg's database, else rpm's sqlite one. *type is
 * the purl type; *incomplete (caller frees) says why none could be read,
 * or why some may be missing. NULL (error recorded) for a database that
 * does not parse. */
static json_t *packages_of(guestfs_h *g, const char *disk, const char **type,
			   char **incomplete)
{
	const char *const *p, *why = NULL;
	json_t *pkgs;
	char *db, *wal;
	size_t len = 0;

	*type = "deb";
	*incomplete = NULL;
	db = appliance_read_file(g, "/var/lib/dpkg/status", SBOM_DB_MAX, &len, &why);
	if (db) {
		pkgs = sbom_parse_dpkg_status(db, len);
		if (!pkgs)
			err_prefix("'%s': /var/lib/dpkg/status", disk);
		free(db);
		return pkgs;
	}
	for (p = rpmdb_sqlite_paths; *p; p++) {
		db = appliance_read_file(g, *p, RPMDB_SQLITE_MAX, &len, &why);
		if (!db && strcmp(why, "missing") != 0) {
			err_set("'%s': %s: %s", disk, *p, why);
			return NULL;
		}
		if (!db)
			continue;
		*type = "rpm";
		pkgs = rpmdb_parse_sqlite(db, len);
		free(db);
		if (!pkgs) {
			err_prefix("'%s': %s", disk, *p);
			return NULL;
		}
		/* A transaction rpm did not checkpoint lives in the -wal file. */
		wal = xasprintf("%s-wal", *p);
		if (guestfs_is_file(g, wal) == 1 && guestfs_filesize(g, wal) > 0)
			*incomplete = xasprintf("%s is not empty: the last rpm transaction may "
						"be missing", wal);
		free(wal);
		return pkgs;
	}
	for (p = rpmdb_other_paths; *p; p++)
		if (guestfs_is_file(g, *p) == 1) {
			*type = "rpm";
			*incomplete = xasprintf("%s: a Berkeley DB or ndb rpm database (not read)",
						*p);
			return json_array();
		}
	*incomplete = xstrdup("no dpkg or rpm database on the image");
	return json_array();
}

/* A release as its distribution names it: debian-12, fedora-39, amazonlinux-2023
 * (one number), ubuntu-22.04 (two-digit minor), rhel-9.3 (the rest). */
static void release_name(const struct appliance_os *os, char *out, size_t n)
{
	static const char *const one_number[] = { "debian", "fedora", "amazonlinux" };
	size_t i;

	for (i = 0; os->distro && i < ARRAY_SIZE(one_number); i++)
		if (strcmp(os->distro, one_number[i]) == 0) {
			snprintf(out, n, "%d", os->major);
			return;
		}
	if (os->distro && strcmp(os->distro, "ubuntu") == 0)
		snprintf(out, n, "%d.%02d", os->major, os->minor > 0 ? os->minor : 0);
	else if (os->distro && os->minor >= 0)
		snprintf(out, n, "%d.%d", os->major, os->minor);
	else
		snprintf(out, n, "%d", os->major);
}


int sbom_of_mounted(guestfs_h *g, const struct appliance_os *os, const char *disk,
		    const char *image_name, json_t **bom)
{
	json_t *pkgs = NULL, *kernels = NULL;
	const char *type;
	char *incomplete = NULL, ver[32];
	int ret = -1;

	*bom = NULL;
	pkgs = packages_of(g, disk, &type, &incomplete);
	if (!pkgs)
		goto cleanup;
	kernels = kernels_of(g);
	release_name(os, ver, sizeof(ver));
	*bom = sbom_cyclonedx(pkgs, type, os->distro ? os->distro : "unknown", ver, os->arch,
			      kernels, image_name, incomplete);
	if (!*bom) {
		err_set("'%s': cannot make its SBOM (text that is not UTF-8?)", disk);
		goto cleanup;
	}
	ret = 0;
cleanup:
	free(incomplete);
	json_decref(pkgs);
	json_decref(kernels);
	return ret;
}

int sbom_of_disk(const char *disk, const char *format, const char *image_name, json_t **bom,
		 const char *const *paths, size_t npaths, json_t **files)
{
	struct appliance_os os = { 0 };
	guestfs_h *g;
	int ret = -1;

	if (bom)
		*bom = NULL;
	if (files)
		*files = NULL;
	g = appliance_open(disk, format, true, NULL);
	if (!g)
		return -1;
	if (appliance_find_os(g, &os) < 0)
		goto cleanup;
	if (!os.nroots) {
		err_set("'%s': no Linux system found on the disk", disk);
		goto cleanup;
	}
	if (appliance_mount_os(g, &os, true, NULL, NULL) < 0 ||
	    (bom && sbom_of_mounted(g, &os, disk, image_name, bom) < 0) ||
	    (files && files_of_mounted(g, disk, paths, npaths, files) < 0))
		goto cleanup;
	ret = 0;
cleanup:
	appliance_os_release(&os);
	if (appliance_close(g, disk) < 0 && ret == 0)
		log_warn("%s", err_msg());
	return ret;
}

/* ---- differences ---- */

json_t *sbom_packages_of(const json_t *bom)
{
	json_t *out = json_object(), *c;
	size_t i;

	json_array_foreach(json_object_get(bom, "components"), i, c) {
		const char *n = json_string_value(json_object_get(c, "name"));
		const char *v = json_string_value(json_object_get(c, "version"));
		const json_t *props = json_object_get(c, "properties"), *p;
		const char *arch = NULL;
		size_t k;

		json_array_foreach(props, k, p)
			if (json_is_string(json_object_get(p, "name")) &&
			    strcmp(json_string_value(json_object_get(p, "name")),
				   "amiforge:package:arch") == 0)
				arch = json_string_value(json_object_get(p, "value"));
		if (!n || !v)
			continue;
		/* multi-arch packages: name:arch for the non-native ones */
		if (arch && json_object_get(out, n) && strcmp(arch, "all") != 0) {
			char *key = xasprintf("%s:%s", n, arch);

			json_object_set_new(out, key, json_string(v));
			free(key);
		} else {
			json_object_set_new(out, n, json_string(v));
		}
	}
	return out;
}

json_t *sbom_diff(const json_t *a, const json_t *b)
{
	json_t *pa = sbom_packages_of(a), *pb = sbom_packages_of(b);
	json_t *added = json_array(), *removed = json_array(), *changed = json_array(), *v;
	const char *k;

	json_object_foreach(pb, k, v) {
		json_t *old = json_object_get(pa, k);

		if (!old)
			json_array_append_new(added, json_pack("{s:s, s:O}", "name", k, "version", v));
		else if (!json_equal(old, v))
			json_array_append_new(changed, json_pack("{s:s, s:O, s:O}", "name", k,
								 "from", old, "to", v));
	}
	json_object_foreach(pa, k, v)
		if (!json_object_get(pb, k))
			json_array_append_new(removed, json_pack("{s:s, s:O}", "name", k,
								 "version", v));
	json_decref(pa);
	json_decref(pb);
	return json_pack("{s:o, s:o, s:o}", "added", added, "removed", removed, "changed", changed);
}
