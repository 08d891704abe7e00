/* amiforge clean [--dry-run] [BUILD_DIR ...]: release what crashed builds
 * left behind, from their journals. Without arguments: every build directory
 * under ./builds whose journal still has live resources. */
#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <sys/stat.h>

#include "builder/build/builddir.h"
#include "commands.h"
#include "error.h"
#include "builder/build/journal.h"
#include "log.h"
#include "util.h"

#define CLEAN_USAGE "clean [--dry-run] [BUILD_DIR ...]"

/* The directory a publish made for its journal (<disk>-publish-<time>;
 * publish removes it itself when it leaves nothing in AWS) goes once
 * everything in it is released, when it holds nothing but the journal:
 * the journal, its empty subdirectories, then itself. rmdir leaves
 * anything else where it is. A build's directory stays, with its journal
 * recording the releases. */
static void remove_if_publish_only(const char *dir, const char *journal)
{
	const char *slash = strrchr(journal, '/'), *jname = slash ? slash + 1 : journal;
	struct strv subs = STRV_INIT;
	struct dirent *e;
	struct stat st;
	bool only = true;
	DIR *d;

	if (!build_dir_is_publish(dir) || journal_live_count(journal) != 0 ||
	    !(d = opendir(dir)))
		return;
	while (only && (e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
		    strcmp(e->d_name, jname) == 0)
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISDIR(st.st_mode))
			strv_pushf(&subs, "%s/%s", dir, e->d_name);
		else
			only = false;
	}
	closedir(d);
	for (size_t i = 0; only && i < subs.n; i++)
		only = rmdir(subs.v[i]) == 0;
	if (only && unlink(journal) == 0 && rmdir(dir) == 0)
		log_info("%s: removed (a publish's journal, nothing left in it)", dir);
	strv_release(&subs);
}

/* 0 clean (or nothing to do), 1 failure, 2 skipped (build running). */
static int clean_one(const char *dir, bool dry_run)
{
	struct build_dir bd;
	struct journal *j = NULL;
	unsigned ok = 0, bad = 0;
	int rc = 1;

	if (build_dir_open(dir, &bd) < 0) {
		log_err_msg();
		return 1;
	}
	if (access(bd.journal, F_OK) < 0) {
		log_error("%s: no journal (not a build directory?)", bd.path);
		goto cleanup;
	}
	j = journal_open(bd.journal);
	if (!j) {
		if (strstr(err_msg(), "in use by a running build")) {
			log_warn("%s: skipped: the build is still running", bd.path);
			rc = 2;
		} else {
			log_err_msg();
		}
		goto cleanup;
	}
	if (journal_cleanup(j, dry_run, stdout, &ok, &bad) < 0) {
		log_error("%s: %s", bd.path, err_msg());
		goto cleanup;
	}
	if (!dry_run)
		printf("%s: %u resource%s released\n", bd.path, ok, ok == 1 ? "" : "s");
	rc = 0;
cleanup:
	journal_close(j);
	if (rc == 0 && !dry_run)
		remove_if_publish_only(bd.path, bd.journal);
	build_dir_release(&bd);
	return rc;
}

int cmd_clean(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dry-run", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool dry = false;
	int c, worst = 0, n = 0;

	while ((c = cmd_getopt(argc, argv, "nh", opts)) != -1) {
		switch (c) {
		case 'n':
			dry = true;
			break;
		case 'h':
			printf("usage: amiforge %s\n\nRelease, newest first, every resource a "
			       "build journaled and did not\nrelease (VMs, processes, files, "
			       "uploads...), the guest a build failed with\n--on-error=abort|ask "
			       "kept running for inspection included. Without\nBUILD_DIR: every "
			       "build under ./%s with live resources. Running builds\nare "
			       "skipped. A failed publish's own directory (<disk>-publish-<time>)"
			       "\ngoes once everything in it is released. --dry-run lists what "
			       "would be\nreleased.\n",
			       CLEAN_USAGE, BUILD_ROOT_DEFAULT);
			return EXIT_OK;
		default:
			return cmd_usage(CLEAN_USAGE);
		}
	}
	if (optind < argc) {
		for (; optind < argc; optind++) {
			int r = clean_one(argv[optind], dry);

			worst = r == 1 ? 1 : worst;
		}
		return worst ? EXIT_FAIL : EXIT_OK;
	} else {
		DIR *d = opendir(BUILD_ROOT_DEFAULT);
		struct dirent *de;

		if (!d) {
			if (errno == ENOENT) {
				printf("nothing to clean (no ./%s)\n", BUILD_ROOT_DEFAULT);
				return EXIT_OK;
			}
			log_error("open './%s': %s", BUILD_ROOT_DEFAULT, strerror(errno));
			return EXIT_FAIL;
		}
		while ((de = readdir(d))) {
			char *dir, *jp;
			int live;

			if (de->d_name[0] == '.')
				continue;
			dir = xasprintf("%s/%s", BUILD_ROOT_DEFAULT, de->d_name);
			jp = xasprintf("%s/journal", dir);
			live = access(jp, F_OK) == 0 ? journal_live_count(jp) : 0;
			if (live < 0) {
				log_err_msg();
				worst = 1;
			} else if (live > 0) {
				int r = clean_one(dir, dry);

				worst = r == 1 ? 1 : worst;
				n++;
			}
			free(jp);
			free(dir);
		}
		closedir(d);
		if (!n)
			printf("nothing to clean\n");
	}
	return worst ? EXIT_FAIL : EXIT_OK;
}
