/* cron.c: Image Builder's cron(...) schedule expressions (cron.h). */
#include <time.h>

#include "cron.h"
#include "buf.h"
#include "error.h"
#include "util.h"

/* Search horizon of cron_prev/cron_next, in days. */
#define CRON_SEARCH_DAYS (5 * 366)

static const char *const month_names[] = { "JAN", "FEB", "MAR", "APR", "MAY", "JUN",
					   "JUL", "AUG", "SEP", "OCT", "NOV", "DEC" };
static const char *const dow_names[] = { "SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT" };

struct field {
	const char *name;
	int lo, hi;
	const char *const *names;   /* names[i] means lo + i */
	size_t nnames;
};

static const struct field fields[6] = {
	{ "minutes", 0, 59, NULL, 0 },
	{ "hours", 0, 23, NULL, 0 },
	{ "day-of-month", 1, 31, NULL, 0 },
	{ "month", 1, 12, month_names, 12 },
	{ "day-of-week", 1, 7, dow_names, 7 },
	{ "year", CRON_YEAR_MIN, CRON_YEAR_MAX, NULL, 0 },
};

static int value(const struct field *f, const char *s, size_t n, int *out)
{
	char tmp[16];
	int64_t v;
	size_t i;

	if (n == 0 || n >= sizeof(tmp))
		return err_set("cron expression: bad value '%.*s' in %s", (int)n, s, f->name);
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	for (i = 0; i < f->nnames; i++)
		if (strcasecmp(tmp, f->names[i]) == 0) {
			*out = f->lo + (int)i;
			return 0;
		}
	if (strpbrk(tmp, "LW#"))
		return err_set("cron expression: '%s' in %s: L, W and # are not supported by "
			       "amiforge", tmp, f->name);
	if (parse_i64(tmp, f->lo, f->hi, &v) < 0)
		return err_set("cron expression: %s must be %d-%d%s, not '%s'", f->name, f->lo,
			       f->hi, f->nnames ? " or a name" : "", tmp);
	*out = (int)v;
	return 0;
}

/* One field's text into bits (bit v - lo for value v). */
static int parse_field(const struct field *f, const char *s, bool *any, bool *question,
		       uint8_t *bits)
{
	const char *item = s;

	*any = *question = false;
	if (strcmp(s, "?") == 0) {
		*any = *question = true;
		return 0;
	}
	if (strcmp(s, "*") == 0) {
		*any = true;
		return 0;
	}
	while (*item) {
		size_t n = strcspn(item, ",");
		const char *slash = memchr(item, '/', n), *dash;
		size_t rn = slash ? (size_t)(slash - item) : n;
		int a, b, step = 1, v;

		if (n == 0)
			return err_set("cron expression: empty list item in %s", f->name);
		if (slash) {
			int64_t st;
			char tmp[8];
			size_t sn = n - rn - 1;

			if (sn == 0 || sn >= sizeof(tmp))
				return err_set("cron expression: bad step in %s", f->name);
			memcpy(tmp, slash + 1, sn);
			tmp[sn] = '\0';
			if (parse_i64(tmp, 1, f->hi - f->lo + 1, &st) < 0)
				return err_set("cron expression: step '%s' in %s must be 1-%d", tmp,
					       f->name, f->hi - f->lo + 1);
			step = (int)st;
		}
		dash = memchr(item, '-', rn);
		if (rn == 1 && item[0] == '*') {
			a = f->lo;
			b = f->hi;
		} else if (dash) {
			if (value(f, item, (size_t)(dash - item), &a) < 0 ||
			    value(f, dash + 1, rn - (size_t)(dash - item) - 1, &b) < 0)
				return -1;
			if (b < a)
				return err_set("cron expression: range %.*s in %s goes backwards",
					       (int)rn, item, f->name);
		} else {
			if (value(f, item, rn, &a) < 0)
				return -1;
			b = slash ? f->hi : a;
		}
		for (v = a; v <= b; v += step)
			bits[(v - f->lo) / 8] |= (uint8_t)(1u << ((v - f->lo) % 8));
		item += n;
		if (*item == ',') {
			item++;
			if (!*item)
				return err_set("cron expression: list in %s ends with ','", f->name);
		}
	}
	return 0;
}

static bool bit(const uint8_t *bits, int i)
{
	return bits[i / 8] & (1u << (i % 8));
}

static bool tz_valid(const char *tz)
{
	char *path;
	bool ok;

	if (strcmp(tz, "UTC") == 0)
		return true;
	if (!*tz || tz[0] == '/' || strstr(tz, "..") || strlen(tz) >= sizeof(((struct cron *)0)->tz))
		return false;
	for (const char *p = tz; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= '0' && *p <= '9') || strchr("/_+-", *p)))
			return false;
	path = xasprintf("/usr/share/zoneinfo/%s", tz);
	ok = access(path, R_OK) == 0;
	free(path);
	return ok;
}

int cron_parse(const char *expr, const char *tz, struct cron *c)
{
	char *text = NULL, *tok[7] = { 0 }, *p, *save = NULL;
	uint8_t bits[6][(CRON_YEAR_MAX - CRON_YEAR_MIN + 1 + 7) / 8];
	bool any[6], q[6];
	size_t len, n = 0;
	int i, r = -1;

	memset(c, 0, sizeof(*c));
	memset(bits, 0, sizeof(bits));
	len = strlen(expr);
	if (len > CRON_EXPR_MAX)
		return err_set("cron expression: longer than %d characters", CRON_EXPR_MAX);
	if (!str_startswith(expr, "cron(") || len < 6 || expr[len - 1] != ')')
		return err_set("schedule expression '%s' must be cron(MIN HOUR DAY MONTH "
			       "WEEKDAY YEAR)", expr);
	text = xstrndup(expr + 5, len - 6);
	for (p = strtok_r(text, " \t", &save); p; p = strtok_r(NULL, " \t", &save)) {
		if (n == 6) {
			n++;
			break;
		}
		tok[n++] = p;
	}
	if (n != 6) {
		err_set("cron expression '%s' must have 6 fields (minutes hours day-of-month "
			"month day-of-week year), not %zu%s", expr, n > 6 ? (size_t)7 : n,
			n > 6 ? " or more" : "");
		goto cleanup;
	}
	for (i = 0; i < 6; i++) {
		if (parse_field(&fields[i], tok[i], &any[i], &q[i], bits[i]) < 0)
			goto cleanup;
		if (q[i] && i != 2 && i != 4) {
			err_set("cron expression: '?' is only allowed in day-of-month and "
				"day-of-week, not in %s", fields[i].name);
			goto cleanup;
		}
	}
	if (q[2] == q[4]) {
		err_set("cron expression '%s': exactly one of day-of-month and day-of-week "
			"must be '?'", expr);
		goto cleanup;
	}
	for (i = 0; i < 60; i++)
		if (any[0] || bit(bits[0], i))
			c->minute |= 1ull << i;
	for (i = 0; i < 24; i++)
		if (any[1] || bit(bits[1], i))
			c->hour |= 1u << i;
	for (i = 1; i <= 31; i++)
		if (any[2] || bit(bits[2], i - 1))
			c->dom |= 1u << i;
	for (i = 1; i <= 12; i++)
		if (any[3] || bit(bits[3], i - 1))
			c->month |= (uint16_t)(1u << i);
	for (i = 0; i < 7; i++)
		if (any[4] || bit(bits[4], i))
			c->dow |= (uint8_t)(1u << i);
	c->dom_any = any[2];
	c->dow_any = any[4];
	c->year_any = any[5];
	memcpy(c->years, bits[5], sizeof(c->years));
	if (!tz || !*tz)
		tz = "UTC";
	if (!tz_valid(tz)) {
		err_set("timezone '%s' is not an IANA timezone known to this system "
			"(/usr/share/zoneinfo)", tz);
		goto cleanup;
	}
	snprintf(c->tz, sizeof(c->tz), "%s", tz);
	r = 0;
cleanup:
	free(text);
	return r;
}

/* ---- evaluation --------------------------------------------------------- */

struct tzsave {
	char *old;
	bool had;
};

static void tz_enter(const struct cron *c, struct tzsave *s)
{
	const char *o = getenv("TZ");

	s->had = o != NULL;
	s->old = o ? xstrdup(o) : NULL;
	setenv("TZ", c->tz, 1);
	tzset();
}

static void tz_leave(struct tzsave *s)
{
	if (s->had)
		setenv("TZ", s->old, 1);
	else
		unsetenv("TZ");
	tzset();
	free(s->old);
}

static bool day_matches(const struct cron *c, int year, int mon, int mday, int wday)
{
	if (year < CRON_YEAR_MIN || year > CRON_YEAR_MAX)
		return false;
	if (!c->year_any && !bit(c->years, year - CRON_YEAR_MIN))
		return false;
	if (!(c->month & (1u << mon)))
		return false;
	if (!c->dom_any && !(c->dom & (1u << mday)))
		return false;
	if (!c->dow_any && !(c->dow & (1u << wday)))
		return false;
	return true;
}

/* The local calendar day `off` days after the local day of t (pure calendar
 * arithmetic through timegm). */
static void day_at(const struct tm *base, int off, struct tm *out)
{
	struct tm d = *base;
	time_t x;

	d.tm_hour = 12;
	d.tm_min = d.tm_sec = 0;
	d.tm_isdst = 0;
	d.tm_mday += off;
	x = timegm(&d);
	gmtime_r(&x, out);
}

/* Epoch of local y-m-d h:m, or -1 when that local time does not exist. */
static int64_t local_epoch(const struct tm *day, int h, int m)
{
	struct tm t = { 0 }, back;
	time_t x;

	t.tm_year = day->tm_year;
	t.tm_mon = day->tm_mon;
	t.tm_mday = day->tm_mday;
	t.tm_hour = h;
	t.tm_min = m;
	t.tm_isdst = -1;
	x = mktime(&t);
	if (x == (time_t)-1 || !localtime_r(&x, &back) || back.tm_hour != h || back.tm_min != m ||
	    back.tm_mday != day->tm_mday)
		return -1;
	return (int64_t)x;
}

static int64_t search(const struct cron *c, int64_t t, int dir)
{
	struct tzsave s;
	struct tm base, day;
	time_t tt = (time_t)t;
	int64_t found = -1;
	int off;

	tz_enter(c, &s);
	localtime_r(&tt, &base);
	for (off = 0; off <= CRON_SEARCH_DAYS && found < 0; off++) {
		int h, m;

		day_at(&base, dir * off, &day);
		if (!day_matches(c, day.tm_year + 1900, day.tm_mon + 1, day.tm_mday, day.tm_wday))
			continue;
		for (h = dir > 0 ? 0 : 23; h >= 0 && h < 24 && found < 0; h += dir) {
			if (!(c->hour & (1u << h)))
				continue;
			for (m = dir > 0 ? 0 : 59; m >= 0 && m < 60; m += dir) {
				int64_t e;

				if (!(c->minute & (1ull << m)))
					continue;
				e = local_epoch(&day, h, m);
				if (e < 0)
					continue;
				if ((dir > 0 && e > t) || (dir < 0 && e <= t)) {
					found = e;
					break;
				}
			}
		}
	}
	tz_leave(&s);
	return found;
}

int64_t cron_prev(const struct cron *c, int64_t t)
{
	return search(c, t, -1);
}

int64_t cron_next(const struct cron *c, int64_t t)
{
	return search(c, t, 1);
}

/* ---- systemd ------------------------------------------------------------ */

/* Values lo..hi whose bit (value - shift) is set in mask, as "a,b,c..d". */
static void render(struct buf *b, uint64_t mask, int lo, int hi, int shift, int width,
		   const char *const *names)
{
	bool first = true;
	int v = lo;

	while (v <= hi) {
		int e = v;

		if (!(mask & (1ull << (v - shift)))) {
			v++;
			continue;
		}
		while (e + 1 <= hi && (mask & (1ull << (e + 1 - shift))))
			e++;
		if (!first)
			buf_addc(b, ',');
		first = false;
		if (names)
			buf_printf(b, "%s", names[v - lo]);
		else
			buf_printf(b, "%0*d", width, v);
		if (e > v + 1) {
			if (names)
				buf_printf(b, "..%s", names[e - lo]);
			else
				buf_printf(b, "..%0*d", width, e);
		} else if (e == v + 1) {
			if (names)
				buf_printf(b, ",%s", names[e - lo]);
			else
				buf_printf(b, ",%0*d", width, e);
		}
		v = e + 1;
	}
}

char *cron_to_oncalendar(const struct cron *c)
{
	struct buf b = BUF_INIT(64 * 1024);
	int y;

	if (!c->dow_any) {
		/* systemd weeks start on Monday: Mon..Sat then Sun. */
		uint64_t m = (uint64_t)(c->dow >> 1) | ((uint64_t)(c->dow & 1) << 6);
		static const char *const mon_first[] = { "Mon", "Tue", "Wed", "Thu", "Fri", "Sat",
							 "Sun" };

		render(&b, m, 0, 6, 0, 0, mon_first);
		buf_addc(&b, ' ');
	}
	if (c->year_any) {
		buf_adds(&b, "*");
	} else {
		bool first = true;

		for (y = CRON_YEAR_MIN; y <= CRON_YEAR_MAX; y++) {
			int e = y;

			if (!bit(c->years, y - CRON_YEAR_MIN))
				continue;
			while (e + 1 <= CRON_YEAR_MAX && bit(c->years, e + 1 - CRON_YEAR_MIN))
				e++;
			buf_printf(&b, first ? "%d" : ",%d", y);
			if (e > y)
				buf_printf(&b, "..%d", e);
			first = false;
			y = e;
		}
	}
	buf_addc(&b, '-');
	if (c->month == 0x1ffe)
		buf_adds(&b, "*");
	else
		render(&b, c->month, 1, 12, 0, 2, NULL);
	buf_addc(&b, '-');
	if (c->dom_any || c->dom == 0xfffffffeu)
		buf_adds(&b, "*");
	else
		render(&b, c->dom, 1, 31, 0, 2, NULL);
	buf_addc(&b, ' ');
	if (c->hour == 0xffffffu)
		buf_adds(&b, "*");
	else
		render(&b, c->hour, 0, 23, 0, 2, NULL);
	buf_addc(&b, ':');
	if (c->minute == (1ull << 60) - 1)
		buf_adds(&b, "*");
	else
		render(&b, c->minute, 0, 59, 0, 2, NULL);
	buf_printf(&b, ":00 %s", c->tz);
	return buf_detach(&b, NULL);
}
