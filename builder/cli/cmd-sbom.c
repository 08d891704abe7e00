/* amiforge sbom DISK [...] and amiforge diff A B [...]: what an image
 * contains, read offline (builder/inspect/sbom.h). */
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>

#include "builder/disk/admit.h"
#include "builder/disk/diskinfo.h"
#include "builder/guest/guest.h"
#include "builder/inspect/sbom.h"
#include "builder/inspect/files.h"
#include "buf.h"
#include "commands.h"
#include "error.h"
#include "log.h"
#include "util.h"

#define SBOM_USAGE "sbom DISK [--input-format raw|qcow2|vmdk|vpc|vhdx] [-o|--output FILE]"
#define DIFF_USAGE "diff A B [--input-format FORMAT] [--paths DIR,...] [--json]"

/* A CycloneDX file, or NULL (no error) when path is not one. */
static json_t *load_bom(const char *path)
{
	struct buf b = BUF_INIT(SBOM_DB_MAX);
	json_t *j = NULL;
	int fd = open_regular(path);
	struct stat st;

	if (fd < 0 || fstat(fd, &st) < 0 || st.st_size < 2)
		goto cleanup;
	{
		char c = 0;

		if (pread(fd, &c, 1, 0) != 1 || (c != '{' && c != ' ' && c != '\n'))
			goto cleanup;
	}
	if (buf_read_fd(&b, fd) < 0)
		goto cleanup;
	j = json_loadb(b.data, b.len, 0, NULL);
	if (j && !json_is_string(json_object_get(j, "bomFormat"))) {
		json_decref(j);
		j = NULL;
	}
cleanup:
	if (fd >= 0)
		close(fd);
	buf_release(&b);
	return j;
}

/* The disk of what: a build directory's qcow2 output (*own: its format is
 * known), else what itself, admitted (builder/disk/admit.h) as fmt says.
 * With bom non-NULL, a build directory's SBOM is loaded instead when it has
 * one (*bom set, di untouched). 0 or -1. */
static int disk_of(const char *what, const char *fmt, json_t **bom, struct disk_info *di)
{
	struct stat st;
	char *disk = NULL;
	bool own = false;
	int ret = -1;

	if (stat(what, &st) == 0 && S_ISDIR(st.st_mode)) {
		char *m = xasprintf("%s/manifest.json", what);
		json_t *man = json_load_file(m, JSON_REJECT_DUPLICATES, NULL), *o;
		size_t i;

		free(m);
		json_array_foreach(json_object_get(man, "outputs"), i, o) {
			const char *f = json_string_value(json_object_get(o, "format"));
			const char *p = json_string_value(json_object_get(o, "path"));

			if (bom && f && p && strcmp(f, "sbom") == 0 && (*bom = load_bom(p))) {
				json_decref(man);
				return 0;
			}
			if (f && p && strcmp(f, "qcow2") == 0 && !disk)
				disk = xstrdup(p);
		}
		json_decref(man);
		if (!disk)
			return err_set("'%s': no manifest.json with a qcow2 output or an SBOM", what);
		fmt = "qcow2";
		own = true;	/* a build's own output: its format is known */
	} else {
		disk = xstrdup(what);
	}
	/* A disk from outside comes in through the one door (builder/disk/admit.h). */
	if ((own ? disk_info_get(disk, fmt, di) : disk_admit(disk, fmt, di)) < 0)
		goto cleanup;
	if (!di->path)
		di->path = xstrdup(disk);
	ret = 0;
cleanup:
	free(disk);
	return ret;
}

/* What an input says: its SBOM (an SBOM file, a build directory's SBOM,
 * or read from a disk) and, with paths, its files there (files.h) — then
 * it must be a disk or a build directory, read in one appliance. */
static int image_of(const char *what, const char *fmt, const char *const *paths, size_t n,
		    json_t **bom, json_t **files)
{
	struct disk_info di = { 0 };
	int ret = -1;

	*files = NULL;
	*bom = load_bom(what);
	if (*bom) {
		if (!n)
			return 0;
		return err_set("'%s' is an SBOM: --paths compares files, of disks or build "
			       "directories", what);
	}
	if (disk_of(what, fmt, n ? NULL : bom, &di) < 0)
		goto cleanup;
	ret = *bom ? 0 : sbom_of_disk(di.path, di.format, what, bom, paths, n,
				      n ? files : NULL);
cleanup:
	disk_info_release(&di);
	return ret;
}

int cmd_sbom(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "input-format", required_argument, NULL, 'f' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *fmt = NULL, *out = NULL;
	json_t *bom = NULL, *files = NULL;
	char *text = NULL;
	int c, rc = EXIT_FAIL;

	while ((c = cmd_getopt(argc, argv, "f:o:h", opts)) != -1) {
		switch (c) {
		case 'f':
			fmt = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		case 'h':
			printf("usage: amiforge %s\n\n"
			       "Write the image's SBOM (CycloneDX 1.5 JSON): the OS, its kernels and\n"
			       "every installed package, read offline and read-only from the disk's\n"
			       "own package database (dpkg; RPM databases are not read yet), with\n"
			       "package URLs. To stdout, or FILE with -o.\n", SBOM_USAGE);
			return EXIT_OK;
		default:
			return cmd_usage(SBOM_USAGE);
		}
	}
	if (optind != argc - 1)
		return cmd_usage(SBOM_USAGE);
	guest_on_signal(NULL, NULL);	/* interrupted: the appliance goes (guest.c) */
	if (image_of(argv[optind], fmt, NULL, 0, &bom, &files) < 0) {
		log_err_msg();
		return EXIT_FAIL;
	}
	text = json_dumps(bom, JSON_INDENT(2));
	if (!text) {
		log_error("encode the SBOM");
		goto cleanup;
	}
	if (out) {
		if (write_file_atomic(out, text, strlen(text), 0644) < 0) {
			log_err_msg();
			goto cleanup;
		}
	} else {
		printf("%s\n", text);
	}
	rc = EXIT_OK;
cleanup:
	free(text);
	json_decref(bom);
	return rc;
}

static void print_list(const json_t *arr, const char *sign, bool changed)
{
	const json_t *e;
	size_t i;

	json_array_foreach(arr, i, e) {
		if (changed)
			printf("%s %s %s -> %s\n", sign,
			       json_string_value(json_object_get(e, "name")),
			       json_string_value(json_object_get(e, "from")),
			       json_string_value(json_object_get(e, "to")));
		else
			printf("%s %s %s\n", sign, json_string_value(json_object_get(e, "name")),
			       json_string_value(json_object_get(e, "version")));
	}
}

int cmd_diff(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "input-format", required_argument, NULL, 'f' },
		{ "json", no_argument, NULL, 'j' },
		{ "paths", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *fmt = NULL;
	json_t *a = NULL, *b = NULL, *d = NULL, *fa = NULL, *fb = NULL, *fd = NULL;
	struct strv paths = STRV_INIT;
	bool json = false;
	int c, rc = EXIT_FAIL;
	size_t i;

	while ((c = cmd_getopt(argc, argv, "f:jh", opts)) != -1) {
		switch (c) {
		case 'f':
			fmt = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'p': {
			char *list = xstrdup(optarg), *save = NULL, *t;

			for (t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
				if (!files_path_ok(t) || paths.n == FILES_PATHS_MAX) {
					log_error("diff: --paths '%s': %s", t, paths.n ==
						  FILES_PATHS_MAX ? "too many paths (16 at most)"
						  : "each path must be absolute, without '.' or '..'");
					free(list);
					strv_release(&paths);
					return EXIT_USAGE;
				}
				strv_push(&paths, t);
			}
			free(list);
			break;
		}
		case 'h':
			printf("usage: amiforge %s\n\n"
			       "What changed between two images, offline: packages added, removed\n"
			       "and changed in version. A and B are each an SBOM (amiforge sbom), a\n"
			       "build directory (its SBOM, or its output disk) or a disk (read-only,\n"
			       "format from --input-format). Lines '+ name version', '- name version',\n"
			       "'~ name old -> new'; --json for the same as data. --paths /etc,/opt\n"
			       "also compares the regular files under those directories by SHA-256\n"
			       "(A and B then disks or build directories; one appliance each):\n"
			       "'A path', 'D path', 'M path'.\n"
			       "The exit status is 0 whatever the difference.\n", DIFF_USAGE);
			return EXIT_OK;
		default:
			return cmd_usage(DIFF_USAGE);
		}
	}
	if (optind != argc - 2) {
		strv_release(&paths);
		return cmd_usage(DIFF_USAGE);
	}
	guest_on_signal(NULL, NULL);
	if (image_of(argv[optind], fmt, (const char *const *)paths.v, paths.n, &a, &fa) < 0 ||
	    image_of(argv[optind + 1], fmt, (const char *const *)paths.v, paths.n, &b, &fb) < 0) {
		log_err_msg();
		goto cleanup;
	}
	d = sbom_diff(a, b);
	if (paths.n) {
		fd = files_diff(fa, fb);
		json_object_set(d, "files", fd);
	}
	if (json) {
		rc = cmd_print_json(d, JSON_INDENT(2));
		goto cleanup;
	}
	print_list(json_object_get(d, "added"), "+", false);
	print_list(json_object_get(d, "removed"), "-", false);
	print_list(json_object_get(d, "changed"), "~", true);
	for (c = 0; fd && c < 3; c++) {
		static const char *const kinds[] = { "added", "removed", "changed" };
		static const char marks[] = "ADM";
		json_t *p;

		json_array_foreach(json_object_get(fd, kinds[c]), i, p) {
			const char *sv = json_string_value(p);
			char *e = str_escape_ctl(sv, strlen(sv), false);

			printf("%c %s\n", marks[c], e);
			free(e);
		}
	}
	rc = EXIT_OK;
cleanup:
	json_decref(fa);
	json_decref(fb);
	json_decref(fd);
	strv_release(&paths);
	json_decref(a);
	json_decref(b);
	json_decref(d);
	return rc;
}
