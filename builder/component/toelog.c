/* toelog.c: the TOE log folder, as awstoe writes it:
 * TOE_<YYYY-MM-DD_HH-MM-SS>_UTC-0_<executionId>/ with document.yaml,
 * application.log, console.log, chaining.json and detailedoutput.json.
 * Everything written passes through the log redactor. */
#include <jansson.h>

#include "engine.h"
#include "error.h"
#include "log.h"
#include "util.h"

struct toelog {
	char *dir;
	FILE *app;
	FILE *console;
};

static FILE *open_in(const char *dir, const char *name)
{
	char *p = xasprintf("%s/%s", dir, name);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	FILE *f = fd < 0 ? NULL : fdopen(fd, "w");

	if (!f) {
		err_errno("create '%s'", p);
		if (fd >= 0)
			close(fd);
	}
	free(p);
	return f;
}

struct toelog *toelog_open(const char *parent, const char *exec_id, char **path)
{
	struct toelog *l = xcalloc(1, sizeof(*l));
	time_t t = time(NULL);
	struct tm tm;
	char stamp[32];

	gmtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%d_%H-%M-%S", &tm);
	l->dir = xasprintf("%s/TOE_%s_UTC-0_%s", parent, stamp, exec_id);
	/* Component output is the user's own: 0700/0600, like the build dir. */
	if (mkdir_p(l->dir, 0700) < 0 || !(l->app = open_in(l->dir, "application.log")) ||
	    !(l->console = open_in(l->dir, "console.log"))) {
		toelog_close(l);
		return NULL;
	}
	*path = xstrdup(l->dir);
	return l;
}

void toelog_app(struct toelog *l, const char *fmt, ...)
{
	char line[ERR_MAX * 2], *red, stamp[40];
	struct timespec ts;
	struct tm tm;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
	red = log_redact_str(line);
	fprintf(l->app, "%s.%03ld %s\n", stamp, ts.tv_nsec / 1000000, red);
	fflush(l->app);
	free(red);
}

void toelog_console(struct toelog *l, const char *data, size_t len)
{
	struct buf b = BUF_INIT(len + 1);

	if (buf_add(&b, data, len) < 0)
		return;
	log_redact(&b);
	fwrite(b.data, 1, b.len, l->console);
	if (b.len && b.data[b.len - 1] != '\n')
		fputc('\n', l->console);
	fflush(l->console);
	buf_release(&b);
}

int toelog_add_document(struct toelog *l, const struct comp_doc *doc, size_t index)
{
	char *name = index ? xasprintf("%s/document-%zu.yaml", l->dir, index + 1)
			   : xasprintf("%s/document.yaml", l->dir);
	int r = write_file_atomic(name, doc->y.text, doc->y.text_len, 0600);

	free(name);
	return r;
}

int toelog_write_json(struct toelog *l, const char *name, json_t *j)
{
	char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER), *red, *p;
	int r;

	if (!text)
		return err_set("serialise %s", name);
	red = log_redact_str(text);
	free(text);
	p = xasprintf("%s/%s", l->dir, name);
	r = write_file_atomic(p, red, strlen(red), 0600);
	free(p);
	free(red);
	return r;
}

void toelog_close(struct toelog *l)
{
	if (!l)
		return;
	if (l->app)
		fclose(l->app);
	if (l->console)
		fclose(l->console);
	free(l->dir);
	free(l);
}
