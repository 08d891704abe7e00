/* install.h: hand a pipeline's schedule to the host's own scheduler — no
 * daemon of amiforge's.
 *
 * systemd (where it runs: /run/systemd/system exists): a service
 * amiforge-pipeline-NAME.service (Type=oneshot, ExecStart=amiforge pipeline
 * run FILE) and a timer amiforge-pipeline-NAME.timer whose OnCalendar= is the
 * cron expression in its timezone (cron_to_oncalendar), Persistent=true (a
 * run missed while the machine was off happens at boot), written to
 * /etc/systemd/system (root) or ~/.config/systemd/user, then
 * `systemctl [--user] daemon-reload` and `enable --now` the timer. With
 * --unit-dir the files are written there and systemctl is not run.
 *
 * cron otherwise: one line in the user's crontab (crontab -l / crontab -),
 * marked with "# amiforge-pipeline FILE" so uninstall finds it. cron has no
 * per-entry timezone, so the line runs `amiforge pipeline run` every minute
 * and amiforge decides, in the schedule's timezone, whether it is due (an
 * evaluation that is not due reads the pipeline file and the state, nothing
 * else). Output goes to STATE/cron.log. */
#ifndef AMIFORGE_PIPELINE_INSTALL_H
#define AMIFORGE_PIPELINE_INSTALL_H

#include "compat.h"
#include "pipeline.h"

enum scheduler { SCHED_AUTO, SCHED_SYSTEMD, SCHED_CRON };

struct install_opts {
	enum scheduler scheduler;
	const char *unit_dir;    /* systemd: write here, do not run systemctl */
	bool print;              /* print what would be installed, change nothing */
	const char *self;        /* the amiforge binary (absolute); NULL: /proc/self/exe */
};

int pipeline_install(const struct pipeline *p, const struct install_opts *o);
int pipeline_uninstall(const struct pipeline *p, const struct install_opts *o);

/* Exposed for tests: the unit texts and the crontab line. Caller frees. */
char *install_service_text(const struct pipeline *p, const char *self);
char *install_timer_text(const struct pipeline *p);
char *install_cron_line(const struct pipeline *p, const char *self);

#endif
