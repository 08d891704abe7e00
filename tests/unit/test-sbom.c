/* Unit tests for builder/inspect/sbom.c: the dpkg status parser (hostile
 * input included), the CycloneDX document, and differences. */
#include <jansson.h>

#include "test.h"
#include "builder/inspect/sbom.h"
#include "builder/inspect/files.h"
#include "error.h"
#include "util.h"

static const char status[] =
	"Package: bash\n"
	"Status: install ok installed\n"
	"Priority: required\n"
	"Architecture: amd64\n"
	"Version: 5.2.15-2+b2\n"
	"Description: GNU Bourne Again SHell\n"
	" Bash is an sh-compatible command language interpreter\n"
	" .\n"
	" Version: 99 (a continuation line, not a field)\n"
	"\n"
	"Package: removed-one\n"
	"Status: deinstall ok config-files\n"
	"Architecture: amd64\n"
	"Version: 1.0\n"
	"\n"
	"Package: adduser\n"
	"Status: install ok installed\n"
	"Architecture: all\n"
	"Source: adduser (3.134)\n"
	"Version: 3.134\n"
	"\n"
	"Package: half-installed\n"
	"Status: install reinstreq half-installed\n"
	"Version: 2\n"
	"\n"
	"Package: libc6\n"
	"Status: install ok installed\n"
	"Architecture: i386\n"
	"Version: 2.36-9\n"
	"\n"
	"Package: libc6\n"
	"Status: install ok installed\n"
	"Architecture: amd64\n"
	"Version: 2.36-9\n";

static void test_dpkg(void)
{
	json_t *p = sbom_parse_dpkg_status(status, strlen(status));
	const char *names[5] = { NULL };
	size_t i;

	CHECK(p && json_array_size(p) == 4, "dpkg: 4 installed packages (got %zu)",
	      p ? json_array_size(p) : 0);
	for (i = 0; p && i < json_array_size(p) && i < 5; i++)
		names[i] = json_string_value(json_object_get(json_array_get(p, i), "name"));
	CHECK(p && json_array_size(p) == 4 && strcmp(names[0], "adduser") == 0 &&
	      strcmp(names[1], "bash") == 0 && strcmp(names[2], "libc6") == 0 &&
	      strcmp(names[3], "libc6") == 0, "dpkg: sorted by name, both libc6 architectures");
	CHECK(p && strcmp(json_string_value(json_object_get(json_array_get(p, 1), "version")),
			  "5.2.15-2+b2") == 0, "dpkg: a continuation line is not a field");
	CHECK(p && strcmp(json_string_value(json_object_get(json_array_get(p, 0), "source")),
			  "adduser (3.134)") == 0, "dpkg: Source kept");
	CHECK(p && strcmp(json_string_value(json_object_get(json_array_get(p, 2), "arch")),
			  "amd64") == 0, "dpkg: architectures sort within a name");
	json_decref(p);

	p = sbom_parse_dpkg_status("no colon here\n", 14);
	CHECK(!p && strstr(err_msg(), "line without a field name"), "dpkg: garbage refused");
	p = sbom_parse_dpkg_status("\n\n\n", 3);
	CHECK(!p && strstr(err_msg(), "no fields"), "dpkg: an empty file is not a database");
	{
		static const char bad[] = "Package: caf\xe9\nStatus: install ok installed\n"
					  "Version: 1\n";
		p = sbom_parse_dpkg_status(bad, sizeof(bad) - 1);
		CHECK(!p && strstr(err_msg(), "not UTF-8"), "dpkg: a name that is not UTF-8 refused");
	}
	{	/* no trailing newline, CRLF line ends */
		static const char crlf[] = "Package: a\r\nStatus: install ok installed\r\n"
					   "Version: 1\r\nArchitecture: all";
		p = sbom_parse_dpkg_status(crlf, sizeof(crlf) - 1);
		CHECK(p && json_array_size(p) == 1 &&
		      strcmp(json_string_value(json_object_get(json_array_get(p, 0), "version")),
			     "1") == 0, "dpkg: CR stripped, last paragraph without newline");
		json_decref(p);
	}
}

static void test_bom_and_diff(void)
{
	json_t *p = sbom_parse_dpkg_status(status, strlen(status));
	json_t *k = json_pack("[s]", "6.1.0-50-cloud-amd64");
	json_t *a = sbom_cyclonedx(p, "deb", "debian", "12", "x86_64", k, "img", NULL), *b, *d, *c;
	const char *purl;

	CHECK(a && strcmp(json_string_value(json_object_get(a, "specVersion")), "1.5") == 0 &&
	      json_array_size(json_object_get(a, "components")) == 4, "bom: CycloneDX 1.5, 4 components");
	c = json_array_get(json_object_get(a, "components"), 1);
	purl = json_string_value(json_object_get(c, "purl"));
	CHECK(purl && strcmp(purl, "pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64&distro=debian-12") == 0,
	      "bom: package URL, '+' encoded (%s)", purl ? purl : "null");
	CHECK(str_startswith(json_string_value(json_object_get(a, "serialNumber")), "urn:uuid:"),
	      "bom: serial number is a UUID URN");
	/* b: bash upgraded, adduser removed, a new package */
	json_object_set_new(json_array_get(p, 1), "version", json_string("5.2.21-1"));
	json_array_remove(p, 0);
	json_array_append_new(p, json_pack("{s:s, s:s, s:s}", "name", "hello", "version", "2.10-3",
					   "arch", "amd64"));
	b = sbom_cyclonedx(p, "deb", "debian", "12", "x86_64", k, "img2", NULL);
	d = sbom_diff(a, b);
	CHECK(json_array_size(json_object_get(d, "added")) == 1 &&
	      strcmp(json_string_value(json_object_get(json_array_get(json_object_get(d, "added"), 0),
						       "name")), "hello") == 0, "diff: added");
	CHECK(json_array_size(json_object_get(d, "removed")) == 1 &&
	      strcmp(json_string_value(json_object_get(json_array_get(json_object_get(d, "removed"), 0),
						       "name")), "adduser") == 0, "diff: removed");
	CHECK(json_array_size(json_object_get(d, "changed")) == 1 &&
	      strcmp(json_string_value(json_object_get(json_array_get(json_object_get(d, "changed"), 0),
						       "to")), "5.2.21-1") == 0, "diff: changed version");
	json_decref(d);
	d = sbom_diff(a, a);
	CHECK(!json_array_size(json_object_get(d, "added")) &&
	      !json_array_size(json_object_get(d, "removed")) &&
	      !json_array_size(json_object_get(d, "changed")), "diff: an image against itself: nothing");
	json_decref(d);
	json_decref(a);
	json_decref(b);
	json_decref(k);
	json_decref(p);
}

static void test_files(void)
{
	static const char ok[] =
		"501ecff8663613257ea966ec0882e022fe66e75b35bc41e30da5a53d82ebdb1e  ./networking\n"
		"\\1b55f578e17da3838913ce5ba993a3529ba0adaafb71af782f2d9620c5b59c8e  ./a\\nb\\\\c\n"
		"ea21c3f039a2e14dbb824b404452a2cc54a1a49ea42366d3348dc48ae4b91125  ./sub/dir/x";
	static const char *const bad[] = {
		"501ecff8  ./short\n",
		"501ecff8663613257ea966ec0882e022fe66e75b35bc41e30da5a53d82ebdb1e ./one-space\n",
		"501ECFF8663613257EA966EC0882E022FE66E75B35BC41E30DA5A53D82EBDB1E  ./upper\n",
		"501ecff8663613257ea966ec0882e022fe66e75b35bc41e30da5a53d82ebdb1e  /absolute\n",
		"\\501ecff8663613257ea966ec0882e022fe66e75b35bc41e30da5a53d82ebdb1e  ./bad\\q\n",
		"501ecff8663613257ea966ec0882e022fe66e75b35bc41e30da5a53d82ebdb1e  ./\n",
	};
	json_t *a = json_object(), *b, *d;
	size_t i;

	CHECK(files_parse_sums(ok, sizeof(ok) - 1, "/etc", a) == 0 && json_object_size(a) == 3,
	      "files: a listing of 3 files parses");
	CHECK(json_object_get(a, "/etc/a\nb\\c") != NULL, "files: GNU-escaped name unescaped");
	CHECK(json_object_get(a, "/etc/sub/dir/x") != NULL, "files: last line without newline");
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		json_t *t = json_object();

		CHECK(files_parse_sums(bad[i], strlen(bad[i]), "/etc", t) < 0,
		      "files: malformed line %zu refused", i);
		json_decref(t);
	}
	{
		json_t *t = json_object();
		static const char nul[] =
			"501ecff8663613257ea966ec0882e022fe66e75b35bc41e30da5a53d82ebdb1e  ./a\0b\n";

		CHECK(files_parse_sums(nul, sizeof(nul) - 1, "/", t) < 0, "files: a NUL in a name refused");
		json_decref(t);
	}
	{
		json_t *t = json_object();
		static const char empty[] =
			"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  -\n";
		static const char dash2[] =
			"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  -\n"
			"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  -\n";

		CHECK(files_parse_sums(empty, sizeof(empty) - 1, "/srv", t) == 0 &&
		      json_object_size(t) == 0,
		      "files: an empty directory's listing (sha256sum of empty stdin) is no file");
		CHECK(files_parse_sums(dash2, sizeof(dash2) - 1, "/srv", t) < 0,
		      "files: '-' lines in a longer listing still refused");
		json_decref(t);
	}
	CHECK(files_path_ok("/etc") && files_path_ok("/usr/local") && !files_path_ok("etc") &&
	      !files_path_ok("/etc/../root") && !files_path_ok("/./etc") && !files_path_ok("/a\nb"),
	      "files: path checks");
	b = json_deep_copy(a);
	json_object_del(b, "/etc/networking");
	json_object_set_new(b, "/etc/new", json_string("00"));
	json_object_set_new(b, "/etc/sub/dir/x", json_string("11"));
	d = files_diff(a, b);
	CHECK(json_array_size(json_object_get(d, "added")) == 1 &&
	      json_array_size(json_object_get(d, "removed")) == 1 &&
	      json_array_size(json_object_get(d, "changed")) == 1 &&
	      strcmp(json_string_value(json_array_get(json_object_get(d, "changed"), 0)),
		     "/etc/sub/dir/x") == 0, "files: diff added, removed, changed");
	json_decref(d);
	json_decref(a);
	json_decref(b);
}

int main(void)
{
	test_dpkg();
	test_bom_and_diff();
	test_files();
	return TEST_DONE();
}
