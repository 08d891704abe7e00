/* users.c: user and group lookup from the files, without NSS.
 *
 * A static glibc binary cannot load NSS modules safely (they must match the
 * glibc it was linked with, and the guest's is another one), so getpwnam()
 * is out. fgetpwent()/fgetgrent() parse /etc/passwd and /etc/group directly;
 * that covers every local account an image build creates. */
#include <grp.h>
#include <pwd.h>

#include "agent.h"
#include "error.h"
#include "util.h"

/* Most supplementary groups we collect (Linux NGROUPS_MAX is 65536; a build
 * user is in a handful). */
#define AGENT_GROUPS_MAX 1024

static bool numeric(const char *s, uint32_t *v)
{
	uint64_t u;

	if (!*s || strspn(s, "0123456789") != strlen(s))
		return false;
	if (parse_u64(s, UINT32_MAX - 1, &u) < 0)
		return false;
	*v = (uint32_t)u;
	return true;
}

static void add_group(struct agent_user *u, gid_t g)
{
	for (size_t i = 0; i < u->ngroups; i++)
		if (u->groups[i] == g)
			return;
	if (u->ngroups == AGENT_GROUPS_MAX)
		return;
	u->groups = xrealloc(u->groups, (u->ngroups + 1) * sizeof(*u->groups));
	u->groups[u->ngroups++] = g;
}

int user_lookup(const char *spec, struct agent_user *u)
{
	FILE *f;
	struct passwd *pw;
	struct group *gr;
	uint32_t id = 0;
	bool by_id = numeric(spec, &id);

	memset(u, 0, sizeof(*u));
	f = fopen("/etc/passwd", "re");
	if (!f)
		return err_errno("open '/etc/passwd'");
	while ((pw = fgetpwent(f)) != NULL) {
		if (by_id ? pw->pw_uid == id : strcmp(pw->pw_name, spec) == 0) {
			u->uid = pw->pw_uid;
			u->gid = pw->pw_gid;
			u->name = xstrdup(pw->pw_name);
			u->home = xstrdup(pw->pw_dir && *pw->pw_dir ? pw->pw_dir : "/");
			u->shell = xstrdup(pw->pw_shell && *pw->pw_shell ? pw->pw_shell : "/bin/sh");
			break;
		}
	}
	fclose(f);
	if (!u->name) {
		if (!by_id)
			return err_set("unknown user '%s'", spec);
		/* A bare uid without a passwd entry is still usable. */
		u->uid = id;
		u->gid = id;
		u->name = xstrdup(spec);
		u->home = xstrdup("/");
		u->shell = xstrdup("/bin/sh");
		add_group(u, u->gid);
		return 0;
	}
	add_group(u, u->gid);
	f = fopen("/etc/group", "re");
	if (!f)
		return 0;
	while ((gr = fgetgrent(f)) != NULL) {
		for (char **m = gr->gr_mem; m && *m; m++)
			if (strcmp(*m, u->name) == 0)
				add_group(u, gr->gr_gid);
	}
	fclose(f);
	return 0;
}

void user_release(struct agent_user *u)
{
	free(u->name);
	free(u->home);
	free(u->shell);
	free(u->groups);
	memset(u, 0, sizeof(*u));
}

int group_lookup(const char *spec, gid_t *gid)
{
	FILE *f;
	struct group *gr;
	uint32_t id;

	if (numeric(spec, &id)) {
		*gid = id;
		return 0;
	}
	f = fopen("/etc/group", "re");
	if (!f)
		return err_errno("open '/etc/group'");
	while ((gr = fgetgrent(f)) != NULL) {
		if (strcmp(gr->gr_name, spec) == 0) {
			*gid = gr->gr_gid;
			fclose(f);
			return 0;
		}
	}
	fclose(f);
	return err_set("unknown group '%s'", spec);
}
