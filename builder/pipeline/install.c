/* install.c: systemd timer or crontab entry for a pipeline (install.h). */
#include <sys/stat.h>

#include "install.h"
#include "buf.h"
#include "error.h"
#include "log.h"
#include "run.h"
#include "util.h"

/* A crontab read back is small; refuse anything absurd. */
#define CRONTAB_MAX (1024u * 1024)
#define CRON_MARK "# amiforge-pipeline "

/* One word of a systemd command line: quoted, with systemd's specifiers and
 * variables escaped ("%" -> "%%", "$" -> "$$"). */
static void sd_word(struct buf *b, const char *s)
{
	buf_addc(b, '"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			buf_addc(b, '\\');
		if (*s == '%' || *s == '$')
			buf_addc(b, *s);
		buf_addc(b, *s);
	}
	buf_addc(b, '"');
}

/* One word for /bin/sh inside a crontab line: single-quoted; cron turns an
 * unescaped "%" into a newline, so "%" is escaped as "\%". */
static void sh_word(struct buf *b, const char *s)
{
	buf_addc(b, '\'');
	for (; *s; s++) {
		if (*s == '\'')
			buf_adds(b, "'\\''");
		else if (*s == '%')
			buf_adds(b, "\\%");
		else
			buf_addc(b, *s);
	}
	buf_addc(b, '\'');
}

static int check_text(const char *what, const char *s)
{
	if (str_has_ctl(s, strlen(s), false))
		return err_set("%s '%s' holds control characters: cannot be scheduled", what, s);
	return 0;
}

static char *unit_base(const struct pipeline *p)
{
	return xasprintf("amiforge-pipeline-%s", p->name);
}

char *install_service_text(const struct pipeline *p, const char *self)
{
	struct buf b = BUF_INIT(64 * 1024);

	buf_printf(&b, "# Written by amiforge pipeline install %s\n[Unit]\n", p->path);
	buf_printf(&b, "Description=amiforge image pipeline %s\n", p->name);
	buf_adds(&b, "Wants=network-online.target\nAfter=network-online.target\n\n[Service]\n"
		 "Type=oneshot\nWorkingDirectory=");
	/* A path setting, not a command line: no quotes; specifiers escaped. */
	for (const char *s = p->dir; *s; s++)
		buf_adds(&b, *s == '%' ? "%%" : (char[]){ *s, 0 });
	buf_adds(&b, "\nExecStart=");
	sd_word(&b, self);
	buf_adds(&b, " pipeline run ");
	sd_word(&b, p->path);
	buf_addc(&b, '\n');
	return buf_detach(&b, NULL);
}

char *install_timer_text(const struct pipeline *p)
{
	struct buf b = BUF_INIT(64 * 1024);
	char *cal = cron_to_oncalendar(&p->cron), *base = unit_base(p);

	buf_printf(&b, "# Written by amiforge pipeline install %s\n", p->path);
	buf_printf(&b, "# schedule: %s (%s)\n", p->expression, p->cron.tz);
	buf_printf(&b, "[Unit]\nDescription=schedule of amiforge image pipeline %s\n\n", p->name);
	buf_printf(&b, "[Timer]\nOnCalendar=%s\nPersistent=true\nUnit=%s.service\n\n", cal, base);
	buf_adds(&b, "[Install]\nWantedBy=timers.target\n");
	free(cal);
	free(base);
	return buf_detach(&b, NULL);
}

char *install_cron_line(const struct pipeline *p, const char *self)
{
	struct buf b = BUF_INIT(64 * 1024);
	char *log = xasprintf("%s/cron.log", p->state_dir);

	buf_adds(&b, "* * * * * ");
	sh_word(&b, self);
	buf_adds(&b, " pipeline run ");
	sh_word(&b, p->path);
	buf_adds(&b, " >>");
	sh_word(&b, log);
	buf_printf(&b, " 2>&1 " CRON_MARK "%s", p->path);
	free(log);
	return buf_detach(&b, NULL);
}

static char *self_path(const struct install_opts *o)
{
	char buf[4096];
	ssize_t n;

	if (o->self)
		return xstrdup(o->self);
	n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
	if (n <= 0) {
		err_errno("readlink /proc/self/exe");
		return NULL;
	}
	buf[n] = '\0';
	return xstrdup(buf);
}

static enum scheduler pick(const struct install_opts *o)
{
	if (o->scheduler != SCHED_AUTO)
		return o->scheduler;
	return access("/run/systemd/system", F_OK) == 0 ? SCHED_SYSTEMD : SCHED_CRON;
}

/* ---- systemd ----------------------------------------------------------------- */

static char *default_unit_dir(void)
{
	const char *home = getenv("HOME");

	if (geteuid() == 0)
		return xstrdup("/etc/systemd/system");
	if (!home || !*home) {
		err_set("HOME is not set: cannot find ~/.config/systemd/user");
		return NULL;
	}
	return xasprintf("%s/.config/systemd/user", home);
}

static int systemctl(const char *a1, const char *a2, const char *a3)
{
	const char *argv[6];
	struct run r = RUN_INIT;
	int i = 0, ret;

	argv[i++] = "systemctl";
	if (geteuid() != 0)
		argv[i++] = "--user";
	argv[i++] = a1;
	if (a2)
		argv[i++] = a2;
	if (a3)
		argv[i++] = a3;
	argv[i] = NULL;
	r.argv = argv;
	r.err = RUN_CAPTURE;
	r.timeout_ms = 60000;
	ret = run_sync(&r) < 0 || run_check(&r) < 0 ? -1 : 0;
	run_release(&r);
	return ret;
}

static int systemd_install(const struct pipeline *p, const struct install_opts *o,
			   const char *self)
{
	char *dir = o->unit_dir ? xstrdup(o->unit_dir) : default_unit_dir(), *base = unit_base(p);
	char *svc = NULL, *tmr = NULL, *svc_path = NULL, *tmr_path = NULL, *timer = NULL;
	int r = -1;

	if (!dir)
		goto cleanup;
	svc = install_service_text(p, self);
	tmr = install_timer_text(p);
	svc_path = xasprintf("%s/%s.service", dir, base);
	tmr_path = xasprintf("%s/%s.timer", dir, base);
	if (o->print) {
		printf("# %s\n%s\n# %s\n%s", svc_path, svc, tmr_path, tmr);
		r = 0;
		goto cleanup;
	}
	if (mkdir_p(dir, 0755) < 0 ||
	    write_file_atomic(svc_path, svc, strlen(svc), 0644) < 0 ||
	    write_file_atomic(tmr_path, tmr, strlen(tmr), 0644) < 0)
		goto cleanup;
	printf("wrote %s\nwrote %s\n", svc_path, tmr_path);
	timer = xasprintf("%s.timer", base);
	if (o->unit_dir) {
		printf("not enabled (--unit-dir): systemctl daemon-reload && systemctl enable "
		       "--now %s\n", timer);
	} else if (systemctl("daemon-reload", NULL, NULL) < 0 ||
		   systemctl("enable", "--now", timer) < 0) {
		goto cleanup;
	} else {
		printf("enabled %s\n", timer);
	}
	r = 0;
cleanup:
	free(dir);
	free(base);
	free(svc);
	free(tmr);
	free(svc_path);
	free(tmr_path);
	free(timer);
	return r;
}

static int systemd_uninstall(const struct pipeline *p, const struct install_opts *o)
{
	char *dir = o->unit_dir ? xstrdup(o->unit_dir) : default_unit_dir(), *base = unit_base(p);
	char *timer = xasprintf("%s.timer", base), *paths[2] = { NULL, NULL };
	int r = -1, i;

	if (!dir)
		goto cleanup;
	paths[0] = xasprintf("%s/%s.timer", dir, base);
	paths[1] = xasprintf("%s/%s.service", dir, base);
	if (o->print) {
		printf("would remove %s\nwould remove %s\n", paths[0], paths[1]);
		r = 0;
		goto cleanup;
	}
	if (!o->unit_dir && access(paths[0], F_OK) == 0 && systemctl("disable", "--now", timer) < 0)
		goto cleanup;
	for (i = 0; i < 2; i++) {
		if (unlink(paths[i]) == 0)
			printf("removed %s\n", paths[i]);
		else if (errno != ENOENT) {
			err_errno("remove '%s'", paths[i]);
			goto cleanup;
		}
	}
	if (!o->unit_dir && systemctl("daemon-reload", NULL, NULL) < 0)
		goto cleanup;
	r = 0;
cleanup:
	free(dir);
	free(base);
	free(timer);
	free(paths[0]);
	free(paths[1]);
	return r;
}

/* ---- cron -------------------------------------------------------------------- */

static int crontab_read(struct buf *out)
{
	const char *argv[] = { "crontab", "-l", NULL };
	struct run r = RUN_INIT;
	int ret = -1;

	r.argv = argv;
	r.out = RUN_CAPTURE;
	r.err = RUN_CAPTURE;
	r.capture_max = CRONTAB_MAX;
	r.timeout_ms = 30000;
	if (run_sync(&r) < 0)
		goto cleanup;
	if (r.status != 0) {
		/* "no crontab for USER": an empty crontab. */
		if (r.err_buf.data && strstr(r.err_buf.data, "no crontab")) {
			ret = 0;
			goto cleanup;
		}
		run_check(&r);
		goto cleanup;
	}
	if (r.truncated) {
		err_set("crontab -l: larger than %u bytes", CRONTAB_MAX);
		goto cleanup;
	}
	if (r.out_buf.len && buf_add(out, r.out_buf.data, r.out_buf.len) < 0)
		goto cleanup;
	ret = 0;
cleanup:
	run_release(&r);
	return ret;
}

static int crontab_write(const struct buf *text)
{
	const char *argv[] = { "crontab", "-", NULL };
	struct run r = RUN_INIT;
	int ret;

	r.argv = argv;
	r.in = RUN_CAPTURE;
	r.in_data = text->data ? text->data : "";
	r.in_len = text->len;
	r.err = RUN_CAPTURE;
	r.timeout_ms = 30000;
	ret = run_sync(&r) < 0 || run_check(&r) < 0 ? -1 : 0;
	run_release(&r);
	return ret;
}

/* The crontab without this pipeline's line(s); *found counts them. */
static void without(const struct pipeline *p, const struct buf *in, struct buf *out, int *found)
{
	char *mark = xasprintf(CRON_MARK "%s", p->path);
	const char *s = in->data ? in->data : "", *e;

	*found = 0;
	for (; *s; s = *e ? e + 1 : e) {
		size_t n;

		e = strchr(s, '\n');
		if (!e)
			e = s + strlen(s);
		n = (size_t)(e - s);
		if (n >= strlen(mark) && memcmp(e - strlen(mark), mark, strlen(mark)) == 0) {
			(*found)++;
			continue;
		}
		buf_add(out, s, n);
		buf_addc(out, '\n');
	}
	free(mark);
}

static int cron_change(const struct pipeline *p, const struct install_opts *o, const char *self)
{
	struct buf cur = BUF_INIT(CRONTAB_MAX), next = BUF_INIT(CRONTAB_MAX + 65536);
	char *line = self ? install_cron_line(p, self) : NULL;
	int found, r = -1;

	if (line && o->print) {
		printf("%s\n", line);
		r = 0;
		goto cleanup;
	}
	if (crontab_read(&cur) < 0)
		goto cleanup;
	without(p, &cur, &next, &found);
	if (!line && o->print) {
		printf(found ? "would remove the crontab entry of %s\n" :
		       "no crontab entry for %s\n", p->path);
		r = 0;
		goto cleanup;
	}
	if (line)
		buf_printf(&next, "%s\n", line);
	if (!line && !found) {
		printf("no crontab entry for %s\n", p->path);
		r = 0;
		goto cleanup;
	}
	if (crontab_write(&next) < 0)
		goto cleanup;
	if (line)
		printf("%s crontab entry: %s\n", found ? "replaced the" : "added a", line);
	else
		printf("removed the crontab entry of %s\n", p->path);
	r = 0;
cleanup:
	free(line);
	buf_release(&cur);
	buf_release(&next);
	return r;
}

int pipeline_install(const struct pipeline *p, const struct install_opts *o)
{
	char *self = NULL;
	int r = -1;

	if (!p->scheduled)
		return err_set("pipeline %s has no schedule.expression: nothing to install",
			       p->name);
	self = self_path(o);
	if (!self || check_text("path", self) < 0 || check_text("path", p->path) < 0 ||
	    check_text("path", p->state_dir) < 0)
		goto cleanup;
	if (!o->print && mkdir_p(p->state_dir, 0700) < 0)
		goto cleanup;
	r = pick(o) == SCHED_SYSTEMD ? systemd_install(p, o, self) : cron_change(p, o, self);
cleanup:
	free(self);
	return r;
}

int pipeline_uninstall(const struct pipeline *p, const struct install_opts *o)
{
	return pick(o) == SCHED_SYSTEMD ? systemd_uninstall(p, o) : cron_change(p, o, NULL);
}
