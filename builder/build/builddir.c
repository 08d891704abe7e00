#include <ctype.h>

#include "builddir.h"
#include "error.h"
#include "util.h"

/* Most "-N" suffixes tried for builds started in the same second. */
#define BUILD_DIR_TRIES 1000

static void fill(struct build_dir *bd, char *path)
{
	bd->path = path;
	bd->journal = xasprintf("%s/journal", path);
	bd->console_log = xasprintf("%s/console.log", path);
	bd->toe = xasprintf("%s/toe", path);
	bd->checkpoints = xasprintf("%s/checkpoints", path);
	bd->output = xasprintf("%s/output", path);
	bd->manifest = xasprintf("%s/manifest.json", path);
}

static char *absolute(const char *p)
{
	char cwd[PATH_MAX];

	if (p[0] == '/')
		return xstrdup(p);
	if (!getcwd(cwd, sizeof(cwd))) {
		err_errno("getcwd");
		return NULL;
	}
	return xasprintf("%s/%s", cwd, p);
}

bool build_dir_is_publish(const char *path)
{
	static const char mark[] = "-" BUILD_DIR_PUBLISH "-";
	const char *b = strrchr(path, '/'), *m, *p;
	size_t i;

	b = b ? b + 1 : path;
	/* the last "-publish-" with a stamp after it */
	for (m = NULL, p = b; (p = strstr(p, mark)); p++)
		m = p;
	if (!m || m == b)
		return false;
	p = m + sizeof(mark) - 1;
	for (i = 0; i < 15; i++)   /* YYYYMMDD-HHMMSS */
		if (i == 8 ? p[i] != '-' : !isdigit((unsigned char)p[i]))
			return false;
	p += 15;
	if (*p == '-') {	/* -N: a later one in the same second */
		if (!isdigit((unsigned char)*++p))
			return false;
		while (isdigit((unsigned char)*p))
			p++;
	}
	return *p == '\0';
}

int build_dir_create(const char *root, const char *name, const char *version, time_t t,
		     struct build_dir *bd)
{
	char stamp[32], *aroot, *path = NULL;
	struct tm tm;
	int i;

	memset(bd, 0, sizeof(*bd));
	if (!t)
		t = time(NULL);
	gmtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
	aroot = absolute(root ? root : BUILD_ROOT_DEFAULT);
	if (!aroot)
		return -1;
	if (mkdir_p(aroot, 0755) < 0) {
		free(aroot);
		return -1;
	}
	for (i = 1; i <= BUILD_DIR_TRIES; i++) {
		path = i == 1 ? xasprintf("%s/%s-%s-%s", aroot, name, version, stamp)
			      : xasprintf("%s/%s-%s-%s-%d", aroot, name, version, stamp, i);
		if (mkdir(path, 0700) == 0)
			break;
		if (errno != EEXIST) {
			err_errno("create build directory '%s'", path);
			free(path);
			free(aroot);
			return -1;
		}
		free(path);
		path = NULL;
	}
	free(aroot);
	if (!path)
		return err_set("too many builds of %s-%s in one second", name, version);
	fill(bd, path);
	if (mkdir(bd->toe, 0700) < 0 || mkdir(bd->checkpoints, 0700) < 0 ||
	    mkdir(bd->output, 0700) < 0) {
		err_errno("create build directory '%s'", bd->path);
		build_dir_release(bd);
		return -1;
	}
	return 0;
}

int build_dir_open(const char *path, struct build_dir *bd)
{
	struct stat st;
	char *p;

	memset(bd, 0, sizeof(*bd));
	if (stat(path, &st) < 0)
		return err_errno("build directory '%s'", path);
	if (!S_ISDIR(st.st_mode))
		return err_set("build directory '%s': not a directory", path);
	p = realpath(path, NULL);
	if (!p)
		return err_errno("build directory '%s'", path);
	/* clean, --resume and attach act on what it holds: only a directory
	 * this user owns and nobody else can write (journal.h). */
	if (path_check_private(p, "build directory") < 0) {
		free(p);
		return -1;
	}
	fill(bd, p);
	return 0;
}

void build_dir_release(struct build_dir *bd)
{
	if (!bd)
		return;
	free(bd->path);
	free(bd->journal);
	free(bd->console_log);
	free(bd->toe);
	free(bd->checkpoints);
	free(bd->output);
	free(bd->manifest);
	memset(bd, 0, sizeof(*bd));
}
