/* test-pipeline.c: Image Builder cron expressions (parse, next/prev in a
 * timezone across daylight saving, systemd OnCalendar), the scheduler
 * texts. Expected times computed with Python's zoneinfo. */
#include "builder/pipeline/cron.h"
#include "builder/pipeline/install.h"
#include "builder/pipeline/lifecycle.h"
#include "error.h"
#include "test.h"
#include "util.h"

static int64_t next_of(const char *expr, const char *tz, int64_t t)
{
	struct cron c;

	if (cron_parse(expr, tz, &c) < 0)
		return -2;
	return cron_next(&c, t);
}

static int64_t prev_of(const char *expr, const char *tz, int64_t t)
{
	struct cron c;

	if (cron_parse(expr, tz, &c) < 0)
		return -2;
	return cron_prev(&c, t);
}

static char *cal(const char *expr, const char *tz)
{
	struct cron c;

	if (cron_parse(expr, tz, &c) < 0)
		return xstrdup(err_msg());
	return cron_to_oncalendar(&c);
}

static void refused(const char *expr, const char *tz, const char *want)
{
	struct cron c;

	err_clear();
	CHECK(cron_parse(expr, tz, &c) < 0 && strstr(err_msg(), want),
	      "cron: '%s' refused: %s", expr, want);
}

int main(void)
{
	char *s;

	/* 03:00 on weekdays in Paris: Friday 10:00 UTC -> Monday 03:00 CET. */
	CHECK(next_of("cron(0 3 ? * MON-FRI *)", "Europe/Paris", 1735898400) == 1736128800,
	      "cron: next weekday 03:00 Paris after a Friday morning is Monday");
	CHECK(prev_of("cron(0 3 ? * MON-FRI *)", "Europe/Paris", 1735898400) == 1735869600,
	      "cron: previous is the same Friday 03:00 Paris");
	CHECK(next_of("cron(0 3 ? * 2-6 *)", "Europe/Paris", 1735898400) == 1736128800,
	      "cron: day-of-week numbers: 1 is Sunday (2-6 = MON-FRI)");
	/* 02:30 does not exist in Paris on 2025-03-30: skipped to the 31st. */
	CHECK(next_of("cron(30 2 * * ? *)", "Europe/Paris", 1743249600) == 1743381000,
	      "cron: a local time that does not exist (DST start) is skipped");
	/* 02:30 happens twice on 2025-10-26: it fires once. */
	{
		struct cron c;
		int64_t a, b;

		cron_parse("cron(30 2 * * ? *)", "Europe/Paris", &c);
		a = cron_next(&c, 1761393600);
		b = cron_next(&c, a);
		CHECK((a == 1761438600 || a == 1761442200) && b > 1761442200 + 3600,
		      "cron: a local time that happens twice (DST end) fires once");
	}
	CHECK(next_of("cron(0/15 9-10 * * ? *)", NULL, 1748775000) == 1748854800,
	      "cron: steps and ranges, UTC by default: after 10:50 comes 09:00 next day");
	CHECK(prev_of("cron(0/15 9-10 * * ? *)", NULL, 1748775000) == 1748774700,
	      "cron: ... and before it 10:45");
	CHECK(next_of("cron(0 0 1 JAN ? 2026)", "UTC", 1748775000) == 1767225600,
	      "cron: a year and a month name");
	CHECK(next_of("cron(0 0 1 JAN ? 2020)", "UTC", 1748775000) == -1,
	      "cron: a year gone never fires again");

	s = cal("cron(0 3 ? * MON-FRI *)", "Europe/Paris");
	CHECK_STR(s, "Mon..Fri *-*-* 03:00:00 Europe/Paris", "OnCalendar: weekdays");
	free(s);
	s = cal("cron(0/15 9-10 1,15 * ? 2025-2027)", NULL);
	CHECK_STR(s, "2025..2027-*-01,15 09,10:00,15,30,45:00 UTC", "OnCalendar: lists, ranges, years");
	free(s);
	s = cal("cron(5 4 ? * SUN,SAT *)", NULL);
	CHECK_STR(s, "Sat,Sun *-*-* 04:05:00 UTC", "OnCalendar: Sunday is last in systemd's week");
	free(s);

	refused("0 3 * * ? *", NULL, "must be cron(");
	refused("cron(0 3 * * * *)", NULL, "exactly one of day-of-month and day-of-week");
	refused("cron(0 3 ? * ? *)", NULL, "exactly one of day-of-month and day-of-week");
	refused("cron(? 3 * * ? *)", NULL, "only allowed in day-of-month and day-of-week");
	refused("cron(60 3 * * ? *)", NULL, "minutes must be 0-59");
	refused("cron(0 3 ? * 8 *)", NULL, "day-of-week must be 1-7");
	refused("cron(0 3 ? * MON#2 *)", NULL, "not supported by amiforge");
	refused("cron(0 3 5-1 * ? *)", NULL, "goes backwards");
	refused("cron(0 3 * * ? 1969)", NULL, "year must be 1970-2199");
	refused("cron(0 3 * * ? *)", "../../etc/passwd", "not an IANA timezone");
	refused("cron(0 3 * * ? *)", "Europe/Nowhere", "not an IANA timezone");
	refused("cron(0/0 3 * * ? *)", NULL, "step '0'");
	refused("cron(1,,2 3 * * ? *)", NULL, "empty list item");

	/* Scheduler texts: quoting of odd paths. */
	{
		struct pipeline p = { 0 };
		char *line, *svc;

		p.name = (char *)"n";
		p.path = (char *)"/srv/it's 100%/p.yaml";
		p.dir = (char *)"/srv/it's 100%";
		p.state_dir = (char *)"/srv/st";
		cron_parse("cron(0 3 * * ? *)", NULL, &p.cron);
		line = install_cron_line(&p, "/usr/bin/amiforge");
		CHECK_STR(line, "* * * * * '/usr/bin/amiforge' pipeline run '/srv/it'\\''s 100\\%/p.yaml' "
			  ">>'/srv/st/cron.log' 2>&1 # amiforge-pipeline /srv/it's 100%/p.yaml",
			  "crontab line: single quotes, cron's %% escaped");
		svc = install_service_text(&p, "/usr/bin/amiforge");
		CHECK(svc && strstr(svc, "\nExecStart=\"/usr/bin/amiforge\" pipeline run "
				    "\"/srv/it's 100%%/p.yaml\"\n") &&
		      strstr(svc, "\nWorkingDirectory=/srv/it's 100%%\n"),
		      "service: specifiers escaped (%%%%), ExecStart words quoted");
		free(line);
		free(svc);
	}
	/* Lifecycle rules: age with retain_at_least, count, the most severe wins,
	 * excluded AMIs neither counted nor acted on. */
	{
		struct pipeline p = { 0 };
		const int64_t now = 1750000000, day = 86400;
		static const int64_t age[] = { 1, 10, 40, 50, 100, 120, 200, -1 };
		struct lc_decision d[8];
		char got[128] = "";
		size_t i;

		p.lc_rules[0] = (struct pipeline_lc_rule){ .action = LC_DEPRECATE,
			.older_than_s = 30 * day, .retain_at_least = 2 };
		p.lc_rules[1] = (struct pipeline_lc_rule){ .action = LC_DELETE, .keep_last = 4 };
		p.lc_rules[2] = (struct pipeline_lc_rule){ .action = LC_DISABLE,
			.older_than_s = 90 * day };
		p.nlc_rules = 3;
		for (i = 0; i < 8; i++) {
			d[i] = (struct lc_decision){ .created = age[i] < 0 ? -1 : now - age[i] * day };
			d[i].excluded = i == 4;
		}
		/* sorted newest first, the unknown date last */
		lifecycle_decide(&p, d, 8, now);
		for (i = 0; i < 8; i++)
			snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s/%zu",
				 i ? " " : "", d[i].action ? lc_action_name(d[i].action) : "keep",
				 d[i].rule);
		CHECK_STR(got, "keep/0 keep/0 deprecate/1 deprecate/1 keep/0 delete/2 delete/2 "
			  "delete/2", "lifecycle: age + retain_at_least, count, most severe wins, "
			  "excluded skipped");
		p.nlc_rules = 1;
		lifecycle_decide(&p, d, 8, now);
		CHECK(d[7].action == LC_NONE && d[6].action == LC_DEPRECATE,
		      "lifecycle: an AMI of unknown age is not matched by an age rule");
	}
	return TEST_DONE();
}
