/* cron.h: EC2 Image Builder's schedule expressions — the EventBridge cron
 * syntax Image Builder's scheduleExpression takes:
 *
 *	cron(MINUTES HOURS DAY-OF-MONTH MONTH DAY-OF-WEEK YEAR)
 *	cron(0 3 ? * MON-FRI *)        03:00 on weekdays
 *	cron(0/30 8-17 * * ? *)        every 30 minutes from 08:00 to 17:30
 *
 * Fields: minutes 0-59, hours 0-23, day of month 1-31, month 1-12 or
 * JAN-DEC, day of week 1-7 (1 = SUN) or SUN-SAT, year 1970-2199. Each is
 * `*`, a value, a range `a-b`, a step `a/n` or `a-b/n` or `*\/n`, or a list
 * of those; one of day-of-month and day-of-week must be `?` (and only
 * those two may be). `L`, `W` and `#` (last day, nearest weekday, nth
 * weekday) are refused with a message saying amiforge does not support them
 * yet. Times are evaluated in an IANA timezone (Image Builder's
 * schedule.timezone; default UTC), daylight saving included: a local time
 * that does not exist that day is skipped, one that happens twice fires once. */
#ifndef AMIFORGE_CRON_H
#define AMIFORGE_CRON_H

#include "compat.h"

#define CRON_EXPR_MAX 256
#define CRON_YEAR_MIN 1970
#define CRON_YEAR_MAX 2199

struct cron {
	uint64_t minute;      /* bit m */
	uint32_t hour;        /* bit h */
	uint32_t dom;         /* bit d (1..31) */
	uint16_t month;       /* bit m (1..12) */
	uint8_t dow;          /* bit d (0 = Sunday .. 6) */
	bool dom_any, dow_any;   /* '?' or '*' */
	uint8_t years[(CRON_YEAR_MAX - CRON_YEAR_MIN + 1 + 7) / 8];
	bool year_any;
	char tz[128];         /* IANA name, "UTC" by default */
};

/* Parse "cron(...)" into c. 0, or -1 with "cron expression: why" recorded
 * (the caller adds the position). tz NULL or "": UTC; otherwise it must name
 * a zone in the system's zoneinfo. */
int cron_parse(const char *expr, const char *tz, struct cron *c);

/* The latest time <= t (UTC seconds) when the schedule fires, or -1 when it
 * never did within the last 5 years. */
int64_t cron_prev(const struct cron *c, int64_t t);
/* The earliest time > t when it fires, or -1 when none within 5 years. */
int64_t cron_next(const struct cron *c, int64_t t);

/* The schedule as systemd's OnCalendar= value ("Mon,Tue *-*-* 03:00:00
 * Europe/Paris"). Caller frees. */
char *cron_to_oncalendar(const struct cron *c);

#endif
