/* libFuzzer target: pipeline files (pipeline_load: schedule, cron
 * expression and timezone, notifications, distribution, lifecycle). The
 * input is written to a file beside a recipe.yaml it may name; the first
 * line of the input is also parsed as a cron expression, and a parsed
 * schedule is evaluated (next/prev) and rendered for systemd. */
#include "fuzz.h"
#include "builder/pipeline/cron.h"
#include "builder/pipeline/pipeline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;
	struct pipeline *p;
	struct cron c;
	char *line;

	if (!init) {
		fuzz_file("recipe.yaml", "name: r\n", 8);
		init = true;
	}
	p = pipeline_load(fuzz_file("pipeline.yaml", data, size));
	if (p && p->scheduled) {
		free(cron_to_oncalendar(&p->cron));
		cron_next(&p->cron, 1700000000);
	}
	pipeline_free(p);
	err_clear();
	line = xstrndup((const char *)data, size < 300 ? size : 300);
	line[strcspn(line, "\n")] = '\0';
	if (cron_parse(line, "UTC", &c) == 0) {
		cron_prev(&c, 1700000000);
		free(cron_to_oncalendar(&c));
	}
	free(line);
	err_clear();
	return 0;
}
