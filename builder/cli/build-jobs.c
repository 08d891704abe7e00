/* build-jobs.c: several builds at once, one process each (build-jobs.h). */
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "build-jobs.h"
#include "builder/recipe/recipe.h"
#include "commands.h"
#include "buf.h"
#include "error.h"
#include "proc.h"
#include "log.h"
#include "run.h"
#include "util.h"

/* How often the parent looks at its children. */
#define BUILD_JOBS_POLL_MS 200
/* A child's result file (--result-file): a few paths. */
#define BUILD_JOB_RESULT_MAX (64u * 1024)

enum job_state { JOB_QUEUED = 0, JOB_RUNNING, JOB_DONE, JOB_NOT_RUN };

struct job {
	const char *recipe;
	char *label;          /* the recipe's file name, for progress lines */
	char *log;            /* its output */
	char *result;         /* its --result-file */
	unsigned cpus;
	uint64_t mem_mib;     /* guest + overhead */
	enum job_state state;
	bool said_waiting;
	struct run run;       /* the child, while it runs (run_release kills) */
	pid_t pid;
	int status;           /* exit status, 128+signal */
	int64_t t_start, t_end;
	char *build_dir, *disk;
};

static volatile sig_atomic_t stop_sig;

static void on_stop(int sig)
{
	stop_sig = sig;
}

static uint64_t mem_available_mib(void)
{
	struct buf b = BUF_INIT(1024 * 1024);
	uint64_t kib = 0;
	const char *p;

	if (buf_read_file(&b, "/proc/meminfo") == 0 && b.data &&
	    (p = memmem(b.data, b.len, "MemAvailable:", 13)) != NULL) {
		for (p += 13; *p == ' '; p++)
			;
		while (*p >= '0' && *p <= '9')
			kib = kib * 10 + (uint64_t)(*p++ - '0');
	}
	err_clear();
	buf_release(&b);
	return kib / 1024;
}

/* The guest size a recipe asks for (its defaults when it does not parse:
 * the child then fails on its own, saying why). */
static void job_size(struct job *j, const char *const *vars)
{
	struct recipe_opts ro = { .vars = vars };
	struct recipe *r = recipe_parse(j->recipe, &ro);

	j->cpus = r && r->vm.cpus ? r->vm.cpus : 2;
	j->mem_mib = (r && r->vm.memory_mib ? r->vm.memory_mib : 1024) +
		     BUILD_JOB_MEM_OVERHEAD_MIB;
	recipe_free(r);
	err_clear();
}

/* The path of this executable (readlink /proc/self/exe), or /proc/self/exe
 * itself when that cannot be read or the file was replaced. */
static const char *self_path(void)
{
	static char path[PATH_MAX];

	/* Replaced on disk meanwhile (" (deleted)"): only /proc/self/exe still
	 * runs this one. */
	if (!path[0] && (proc_exe(getpid(), path, sizeof(path)) < 0 || path[0] != '/' ||
			 str_endswith(path, " (deleted)")))
		snprintf(path, sizeof(path), "/proc/self/exe");
	return path;
}

static int job_start(struct job *j, const struct build_jobs_opts *o, int idx, int total)
{
	struct strv argv = STRV_INIT;
	struct run *r = &j->run;
	int fd, ret = -1;

	fd = open(j->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return err_errno("create '%s'", j->log);
	/* This binary by its path (ps and pgrep then name it amiforge, not exe). */
	strv_push(&argv, self_path());
	strv_push(&argv, "build");
	for (size_t i = 0; o->child_args && o->child_args[i]; i++)
		strv_push(&argv, o->child_args[i]);
	strv_push(&argv, "--result-file");
	strv_push(&argv, j->result);
	strv_push(&argv, "--");
	strv_push(&argv, j->recipe);
	*r = (struct run)RUN_INIT;
	r->argv = (const char *const *)argv.v;
	r->in = RUN_NULL;
	r->out = RUN_FD;
	r->out_fd = fd;
	r->err = RUN_FD;
	r->err_fd = fd;
	if (run_start(r) == 0) {
		j->pid = r->pid;
		j->state = JOB_RUNNING;
		j->t_start = now_ms();
		fprintf(stderr, "amiforge: [%d/%d] %s: started (log: %s)\n", idx, total, j->label,
			j->log);
		ret = 0;
	} else {
		run_release(r);
	}
	r->argv = NULL;
	strv_release(&argv);
	close(fd);
	return ret;
}

/* What the child wrote to its --result-file (nothing: it failed early). */
static void job_result(struct job *j)
{
	struct buf b = BUF_INIT(BUILD_JOB_RESULT_MAX);
	json_t *root = NULL;
	const char *bd = NULL, *disk = NULL;

	if (buf_read_file(&b, j->result) == 0 && b.data &&
	    (root = json_loadb(b.data, b.len, 0, NULL)) != NULL &&
	    json_unpack(root, "{s?s, s?s}", "build_dir", &bd, "disk", &disk) == 0) {
		j->build_dir = bd ? xstrdup(bd) : NULL;
		j->disk = disk ? xstrdup(disk) : NULL;
	}
	json_decref(root);
	buf_release(&b);
	err_clear();
}

static const char *state_word(const struct job *j)
{
	if (j->state == JOB_NOT_RUN)
		return "not run";
	if (j->state != JOB_DONE)
		return "running";
	return j->status == 0 ? "ok" : j->status > 128 ? "interrupted" : "failed";
}

static void summary(const struct job *jobs, size_t n, int64_t t0, bool json)
{
	json_t *arr = json ? json_array() : NULL;
	size_t i;

	if (!json)
		fprintf(stderr, "amiforge: %zu builds in %.1f s:\n", n,
			(double)(now_ms() - t0) / 1000.0);
	for (i = 0; i < n; i++) {
		const struct job *j = &jobs[i];
		double secs = j->t_end > j->t_start ? (double)(j->t_end - j->t_start) / 1000.0 : 0;

		if (json) {
			json_array_append_new(arr, json_pack("{s:s, s:s, s:i, s:f, s:s?, s:s?, s:s}",
				"recipe", j->recipe, "status", state_word(j), "exit", j->status,
				"seconds", secs, "build_dir", j->build_dir, "disk", j->disk,
				"log", j->log));
			continue;
		}
		fprintf(stderr, "  %-11s %7.1f s  %s\n", state_word(j), secs, j->recipe);
		if (j->build_dir)
			fprintf(stderr, "              build directory: %s\n", j->build_dir);
		if (j->disk)
			fprintf(stderr, "              disk: %s\n", j->disk);
		if (j->status != 0 || j->state != JOB_DONE)
			fprintf(stderr, "              log: %s\n", j->log);
	}
	if (json) {
		json_t *root = json_pack("{s:o, s:f}", "builds", arr, "seconds",
					 (double)(now_ms() - t0) / 1000.0);
		char *text = root ? json_dumps(root, JSON_INDENT(2)) : NULL;

		if (text)
			printf("%s\n", text);
		free(text);
		json_decref(root);
	}
}

int build_jobs_run(const struct build_jobs_opts *o)
{
	struct job *jobs = xcalloc(o->n, sizeof(*jobs));
	struct sigaction sa = { .sa_handler = on_stop }, old[3];
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	uint64_t mem = mem_available_mib(), mem_used = 0;
	unsigned vcpu_cap, vcpu_used = 0, running = 0, forwarded = 0;
	char *root = NULL, *dir = NULL;
	int64_t t0 = now_ms();
	size_t i, done = 0;
	int ret = EXIT_FAIL;

	if (ncpu < 1)
		ncpu = 1;
	vcpu_cap = (unsigned)ncpu * BUILD_JOB_VCPU_PER_CPU;
	root = xstrdup(o->output_root ? o->output_root : "builds");
	if (mkdir_p(root, 0755) < 0) {
		log_err_msg();
		goto cleanup;
	}
	dir = xasprintf("%s/jobs-XXXXXX", root);
	if (!mkdtemp(dir)) {
		err_errno("create '%s'", dir);
		log_err_msg();
		goto cleanup;
	}
	for (i = 0; i < o->n; i++) {
		const char *base = strrchr(o->recipes[i], '/');

		jobs[i].recipe = o->recipes[i];
		jobs[i].label = xstrdup(base ? base + 1 : o->recipes[i]);
		jobs[i].log = xasprintf("%s/%zu-%s.log", dir, i + 1, jobs[i].label);
		jobs[i].result = xasprintf("%s/%zu-%s.result.json", dir, i + 1, jobs[i].label);
		job_size(&jobs[i], o->vars);
	}
	log_info("builds: %zu, at most %u at once (host: %ld CPUs, %" PRIu64
		 " MiB available); logs in %s", o->n, o->jobs, ncpu, mem, dir);
	for (i = 0; i < ARRAY_SIZE(sigs); i++)
		sigaction(sigs[i], &sa, &old[i]);

	while (done < o->n) {
		/* Start what fits, in order: a big build is not overtaken. */
		for (i = 0; i < o->n && !stop_sig; i++) {
			struct job *j = &jobs[i];
			bool fits;

			if (j->state != JOB_QUEUED)
				continue;
			fits = running == 0 ||
			       (running < o->jobs && vcpu_used + j->cpus <= vcpu_cap &&
				mem_used + j->mem_mib <= mem);
			if (!fits) {
				if (!j->said_waiting)
					fprintf(stderr, "amiforge: [%zu/%zu] %s: waiting (%u running; "
						"limit: --jobs %u, %u vCPUs, %" PRIu64 " MiB)\n", i + 1,
						o->n, j->label, running, o->jobs, vcpu_cap, mem);
				j->said_waiting = true;
				break;
			}
			if (job_start(j, o, (int)i + 1, (int)o->n) < 0) {
				log_err_msg();
				j->state = JOB_DONE;
				j->status = EXIT_FAIL;
				done++;
				continue;
			}
			running++;
			vcpu_used += j->cpus;
			mem_used += j->mem_mib;
		}
		if (stop_sig) {
			/* Queued builds never start; running ones get the signal
			 * (a terminal's Ctrl-C reached them already). */
			for (i = 0; i < o->n; i++) {
				if (jobs[i].state == JOB_QUEUED) {
					jobs[i].state = JOB_NOT_RUN;
					done++;
				} else if (jobs[i].state == JOB_RUNNING && !forwarded) {
					kill(jobs[i].pid, stop_sig);
				}
			}
			forwarded = 1;
		}
		for (i = 0; i < o->n; i++) {
			struct job *j = &jobs[i];
			int st;

			if (j->state != JOB_RUNNING || waitpid(j->pid, &st, WNOHANG) != j->pid)
				continue;
			j->run.pid = -1;   /* reaped here */
			run_release(&j->run);
			j->t_end = now_ms();
			j->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
			j->state = JOB_DONE;
			job_result(j);
			done++;
			running--;
			vcpu_used -= j->cpus;
			mem_used -= j->mem_mib;
			fprintf(stderr, "amiforge: [%zu/%zu] %s: %s after %.1f s%s%s\n", i + 1, o->n,
				j->label, state_word(j), (double)(j->t_end - j->t_start) / 1000.0,
				j->disk ? ": " : "", j->disk ? j->disk : "");
		}
		if (done < o->n)
			usleep(BUILD_JOBS_POLL_MS * 1000);
	}
	for (i = 0; i < ARRAY_SIZE(sigs); i++)
		sigaction(sigs[i], &old[i], NULL);
	summary(jobs, o->n, t0, o->json);
	ret = EXIT_OK;
	for (i = 0; i < o->n; i++)
		if (jobs[i].state != JOB_DONE || jobs[i].status != 0)
			ret = stop_sig ? 128 + stop_sig : EXIT_FAIL;
cleanup:
	for (i = 0; i < o->n; i++) {
		free(jobs[i].label);
		free(jobs[i].log);
		free(jobs[i].result);
		free(jobs[i].build_dir);
		free(jobs[i].disk);
	}
	free(jobs);
	free(root);
	free(dir);
	return ret;
}
