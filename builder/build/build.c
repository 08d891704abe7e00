/* build.c: the pipeline of `amiforge build` (see build.h). */
#include <jansson.h>
#include <pthread.h>
#include <sys/random.h>
#include <sys/resource.h>

#include "build.h"
#include "builddir.h"
#include "checkpoint.h"
#include "inspect-stage.h"
#include "builder/component/component.h"
#include "builder/convert/convert.h"
#include "builder/disk/appliance.h"
#include "builder/disk/archprobe.h"
#include "builder/disk/qemu-img.h"
#include "error.h"
#include "builder/exec/executor.h"
#include "builder/base/cache.h"
#include "builder/base/fetch.h"
#include "builder/guest/guest.h"
#include "builder/guest/inject.h"
#include "journal.h"
#include "log.h"
#include "manifest.h"
#include "builder/report/report.h"
#include "builder/recipe/recipe.h"
#include "run.h"
#include "builder/component/s3ops.h"
#include "util.h"
#include "drivers/target/target.h"
#include "builder/publish/publish-dist.h"

/* Flattening copies the whole disk: allow an hour for a large one. */
#define FLATTEN_TIMEOUT_MS (3600 * 1000)
/* The generalisation script is small and local to the guest. */
#define GENERALISE_TIMEOUT_MS (600 * 1000)
/* vm.wait_for_cloud_init: cloud-init's stages after the agent is up. */
#define CLOUD_INIT_WAIT_MS (600 * 1000)

struct build {
	const struct build_opts *o;
	struct recipe *r;
	struct build_dir bd;
	struct journal *j;
	struct manifest *m;
	struct base_image base;
	const struct arch *arch;   /* the guest's (decide_arch) */
	int64_t t0;
	const char *stage;      /* the running stage, for events and the manifest */
	const char *staging;    /* the staging directory (journaled), once made */
	struct ckpt *ck;        /* checkpoints of the build guest, or NULL */
	bool early_ok;          /* the output is inspected: its appliance may start
				   while the build guest finishes (start_early) */
	struct appliance_early *early; /* that appliance, once started */
	unsigned early_jid[3];  /* its directories' journal entries (on_early_dir:
				   two temporary ones at most, a socket one) */
	struct guest *g;        /* the guest running components */
	char *record;           /* the guest record for `amiforge attach` */
	unsigned record_jid;    /* its journal entry while it exists */
	bool kept;              /* a guest was left running for inspection */
	bool agent_in_disk;     /* the build guest's disk starts the agent (the agent
				 * layer): generalisation removes it, whatever
				 * cleanup: says */
	struct strv net_env;    /* the proxy for every step (vm.proxy) */
	char *net_key;          /* the network in checkpoint keys, or NULL */
	char *inspect_failed;   /* the inspection's failure (flatten_stage), or NULL */
	char *disk_sha;         /* the output disk's sha256, taken by flatten_stage
				 * while the inspection ran, or NULL */
	struct stat disk_st;    /* what the disk was then (manifest_add_output_hashed) */
};

/* ---- progress: a line per stage on stderr, or JSON events on stdout ------ */

static void event(struct build *b, const char *kind, const char *name, const char *status,
		  const char *detail)
{
	double elapsed = (double)(now_ms() - b->t0) / 1000.0;

	if (b->o->json) {
		json_t *e = json_pack("{s:s, s:s, s:s, s:f}", "event", kind, "name", name,
				      "status", status, "elapsed", elapsed);
		char *s;

		if (detail)
			json_object_set_new(e, "detail", json_string(detail));
		s = json_dumps(e, JSON_COMPACT);
		if (s) {
			char *red = log_redact_str(s);

			printf("%s\n", red);
			fflush(stdout);
			free(red);
			free(s);
		}
		json_decref(e);
		return;
	}
	if (strcmp(kind, "stage") == 0)
		log_info("[%7.1fs] %s%s%s%s", elapsed, name,
			 strcmp(status, "begin") == 0 ? "" : ": ",
			 strcmp(status, "begin") == 0 ? "" : status,
			 detail ? detail : "");
}

static void stage_begin(struct build *b, const char *stage)
{
	b->stage = stage;
	manifest_stage_begin(b->m, stage);
	event(b, "stage", stage, "begin", NULL);
}

static void stage_end(struct build *b, const char *stage, const char *status)
{
	manifest_stage_end(b->m, stage, status);
	if (strcmp(status, "ok") != 0)
		event(b, "stage", stage, status, NULL);
	if (manifest_write(b->m) < 0)
		log_warn("manifest: %s", err_msg());
	b->stage = NULL;
}

static void on_guest_phase(const char *phase, void *opaque)
{
	struct build *b = opaque;

	event(b, "guest", phase, "ok", NULL);
	if (!b->o->json)
		log_debug("guest: %s", phase);
}

/* A directory of the early appliance outside the staging area (its socket
 * directories), journaled for `clean`. */
static void on_early_dir(const char *dir, void *opaque)
{
	struct build *b = opaque;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(b->early_jid) && b->early_jid[i]; i++)
		;
	if (i == ARRAY_SIZE(b->early_jid) ||
	    journal_add(b->j, &b->early_jid[i], "dir", dir, NULL) < 0) {
		log_warn("journal: %s", i == ARRAY_SIZE(b->early_jid) ? "full" : err_msg());
		err_clear();
	}
}

/* The output's inspection boots its appliance (appliance.h) while the
 * build guest runs its last step, generalises and powers off: under TCG
 * that boot takes ~6 s, which were all after the power-off. Started once:
 * when at most one top-level step is left (the checkpoints' plan), or at
 * generalisation or the power-off (a build without checkpoints). */
static void start_early(struct build *b)
{
	if (!b->early_ok)
		return;
	b->early_ok = false;
	b->early = appliance_early_start(b->staging, on_early_dir, b);
	if (b->early)
		log_debug("inspection: its appliance starts now, beside the guest");
}

static void on_step_start(const struct component_step_info *info, bool changed_disk UNUSED,
			  void *opaque)
{
	struct build *b = opaque;

	if (info->depth == 0 && b->ck && ckpt_steps_left(b->ck) <= 1)
		start_early(b);
}

static void on_step_done(const struct component_step_info *info, bool changed_disk,
			 void *opaque)
{
	struct build *b = opaque;
	char *name;

	ckpt_step_done(b->ck, b->ck && b->g && guest_can_snapshot(b->g) ? b->g : NULL, info,
		       changed_disk);
	if (!b->o->json)
		return;
	name = xasprintf("%s/%s/%s", info->document, info->phase, info->step);
	event(b, "step", name, info->status, info->failure);
	free(name);
}

/* ---- --on-error=abort|ask: a failed build's guest stays for inspection ---- */

/* Write the running guest's record for `amiforge attach` (journaled the
 * first time, removed when the guest is). 0 or -1. */
static int write_guest_record(struct build *b, struct guest *g)
{
	if (!b->record)
		b->record = xasprintf("%s/" GUEST_RECORD_NAME, b->bd.path);
	if (!b->record_jid && journal_add(b->j, &b->record_jid, "file", b->record, NULL) < 0)
		return -1;
	return guest_record_write(g, b->record);
}

static void remove_guest_record(struct build *b)
{
	if (!b->record_jid)
		return;
	if (unlink(b->record) < 0 && errno != ENOENT)
		log_warn("remove '%s': %s", b->record, strerror(errno));
	else if (journal_release(b->j, b->record_jid) < 0)
		log_warn("journal: %s", err_msg());
	b->record_jid = 0;
}

/* How to reach the guest, for the prompt and the final message. */
static char *reach_hint(const struct build *b, const struct guest *g)
{
	return xasprintf("amiforge: the guest %s is running; from another terminal:\n"
			 "    amiforge attach %s -- COMMAND [ARGS...]   run a command in it\n"
			 "    console log: %s\n", g->name, b->bd.path, g->console_log);
}

/* The component engine's on_step_failed hook under --on-error=ask. */
static enum component_on_fail on_step_failed(const struct component_step_info *info,
					     void *opaque)
{
	struct build *b = opaque;
	enum component_on_fail d;
	char *name, *hint = NULL;

	if (b->o->on_error != BUILD_ON_ERROR_ASK)
		return COMPONENT_FAIL;
	name = xasprintf("%s/%s/%s", info->document, info->phase, info->step);
	if (b->g) {
		/* Let `amiforge attach` use the agent while we wait. */
		guest_disconnect(b->g);
		if (write_guest_record(b, b->g) < 0)
			log_warn("guest record: %s", err_msg());
		else
			hint = reach_hint(b, b->g);
	}
	d = onerror_prompt(stdin, stderr, name, info->failure, hint);
	log_info("step %s: %s (asked)", name, onerror_decision_name(d));
	manifest_add_decision(b->m, name, onerror_decision_name(d), info->failure);
	if (manifest_write(b->m) < 0)
		log_warn("manifest: %s", err_msg());
	event(b, "decision", name, onerror_decision_name(d), info->failure);
	free(hint);
	free(name);
	return d;
}

/* The guest_stage failed: leave g running for inspection when asked to.
 * 0 when it was kept (g is then only freed, not destroyed). */
static int keep_guest(struct build *b, struct guest *g)
{
	char *hint;

	if (b->o->on_error == BUILD_ON_ERROR_CLEANUP || !g->vm)
		return -1;
	if (guest_detach(g) < 0) {
		log_warn("cannot keep the guest for inspection: %s", err_msg());
		return -1;
	}
	if (write_guest_record(b, g) < 0)
		log_warn("guest record: %s", err_msg());
	b->kept = true;
	hint = reach_hint(b, g);
	event(b, "guest", g->name, "kept", g->console_log);
	fprintf(stderr, "%s    amiforge clean %s   destroys it and removes its files\n",
		hint, b->bd.path);
	free(hint);
	return 0;
}

/* ---- stages -------------------------------------------------------------- */

/* The document is valid, the recipe sets only parameters it declares, and
 * every parameter without a default gets a value (from the recipe's entry
 * or a --var), so that no build finds out after the guest booted. */
int build_check_doc(const struct recipe *r, const struct recipe_doc *d, bool is_test,
		    void *opaque UNUSED)
{
	struct strv names = STRV_INIT, required = STRV_INIT;
	const char *what = is_test ? "test" : "component";
	const char *doc = d->given ? d->given : d->path;
	int ret = -1;
	size_t i, k;

	if (component_doc_params(d->path, &names, &required) < 0)
		goto cleanup;
	for (i = 0; i < d->nparams; i++) {
		const char *hint;

		if (strv_has(&names, d->params[i].name))
			continue;
		hint = closest_word(d->params[i].name, (const char *const *)names.v, names.n);
		err_set("%s:%d:%d: %s '%s' has no parameter '%s'%s%s%s", r->doc.path,
			d->params[i].line, d->params[i].col, what, doc, d->params[i].name,
			hint ? "; did you mean '" : "", hint ? hint : "", hint ? "'?" : "");
		goto cleanup;
	}
	for (i = 0; i < required.n; i++) {
		bool set = recipe_doc_param(d, required.v[i]) != NULL;

		for (k = 0; !set && k < r->nvars; k++)
			set = strcmp(r->vars[k].name, required.v[i]) == 0;
		if (set)
			continue;
		err_set("%s:%d:%d: %s '%s' needs parameter '%s' (it has no default): set it "
			"under parameters: or with --var %s=VALUE", r->doc.path, d->line, d->col, what,
			doc, required.v[i], required.v[i]);
		goto cleanup;
	}
	ret = 0;
cleanup:
	strv_release(&names);
	strv_release(&required);
	return ret;
}

/* Documents of the recipe as the component engine takes them. params is
 * filled with "name=value" vectors that must outlive the run. */
static struct component_doc_spec *doc_specs(const struct recipe *r, const struct recipe_doc *docs,
					    size_t n, struct strv *params)
{
	struct component_doc_spec *specs = xcalloc(n ? n : 1, sizeof(*specs));
	size_t i, k;

	for (i = 0; i < n; i++) {
		/* --var parameters first: the recipe's own values, already
		 * overridden by --var where both name one, come after and win
		 * for the documents that set them. */
		for (k = 0; k < r->nvars; k++)
			strv_pushf(&params[i], "%s=%s", r->vars[k].name, r->vars[k].value);
		for (k = 0; k < docs[i].nparams; k++)
			strv_pushf(&params[i], "%s=%s", docs[i].params[k].name,
				   docs[i].params[k].value);
		specs[i].path = docs[i].path;
		specs[i].params = (const char *const *)params[i].v;
	}
	return specs;
}

/* Run phases of docs against ex; 0 when every document succeeded. */
static void doc_specs_opts(struct build *b, const struct recipe_doc *docs, size_t n,
			   const char *phases, struct strv *params, struct component_run_opts *co)
{
	memset(co, 0, sizeof(*co));
	co->docs = doc_specs(b->r, docs, n, params);
	co->ndocs = n;
	co->phases = phases;
	co->log_dir = b->bd.toe;
	co->host_dir = b->staging;	/* clean removes it after a SIGKILL */
	co->allow_local_sources = b->o->allow_local_sources;
	co->progress = !b->o->json && log_get_level() >= LOG_INFO;
	co->on_step_start = on_step_start;
	co->on_step_done = on_step_done;
	co->on_step_failed = on_step_failed;
	co->opaque = b;
}

static int run_components(struct build *b, struct executor *ex, const struct recipe_doc *docs,
			  size_t n, const char *phases)
{
	struct strv *params = xcalloc(n ? n : 1, sizeof(*params));
	struct component_run_opts co;
	struct component_doc_spec *specs;
	struct aws_client_opts ao = { .profile = b->r->publish.o.spec.profile,
				      .region = b->r->publish.o.spec.region };
	struct component_result res;
	size_t i;
	int ret = -1;

	doc_specs_opts(b, docs, n, phases, params, &co);
	specs = (struct component_doc_spec *)co.docs;
	co.resume = b->ck ? ckpt_resume(b->ck) : NULL;
	co.s3 = s3ops_new(&ao);	/* AWS client on first S3 step, on the host */
	if (component_run(&co, ex, &res) < 0)
		goto cleanup;
	if (!res.success) {
		err_set("%s phase failed: %s (logs: %s)", phases,
			res.failure ? res.failure : res.status,
			res.log_path ? res.log_path : b->bd.toe);
		goto cleanup;
	}
	ret = 0;
cleanup:
	component_result_release(&res);
	s3ops_free((struct s3_ops *)co.s3);
	for (i = 0; i < n; i++)
		strv_release(&params[i]);
	free(params);
	free(specs);
	return ret;
}

/* The lines of cloud-init's configuration naming cloud_dir, def_log_file or
 * output that say what cloud-init defaults to (Debian's, Ubuntu's, Amazon
 * Linux's cloud.cfg and 05_logging.cfg), as an extended regular expression
 * inside double quotes in sh. */
#define CI_DEFAULT_LINES \
	"^[[:space:]]*cloud_dir:[[:space:]]*/var/lib/cloud/?[[:space:]]*$|" \
	"^output:[[:space:]]*[{][[:space:]]*all:[[:space:]]*'[|][[:space:]]*tee -a /var/log/cloud-init-output[.]log'[[:space:]]*[}][[:space:]]*$"

/* Image Builder's Linux cleanup, as one POSIX sh script run in the guest;
 * the sections to run are its arguments. Constant text: nothing from the
 * recipe is interpolated. The seeded agent lives in a tmpfs and leaves
 * nothing on the disk; the injected one (inject.h) is removed here. */
static const char generalise_script[] =
	"set -u\n"
	"ci= ssh= logs= mid= hist= agent= net=\n"
	"for s in \"$@\"; do case $s in\n"
	"cloudinit) ci=1 ;; ssh) ssh=1 ;; logs) logs=1 ;; machine-id) mid=1 ;;\n"
	"history) hist=1 ;; agent) agent=1 ;; network) net=1 ;;\n"
	"esac; done\n"
	/* Each section adds what it removes to one list, removed by one rm
	 * at the end: under TCG every process costs the guest ~50 ms, and
	 * one rm per path made this script ~40 of them. */
	"set --\n"
	"if [ -n \"$ci\" ]; then\n"
	"  # cloud-init's last stage writes the instance's state (boot-finished, sem/):\n"
	"  # wait for it, or it recreates what is removed here. Its stages are jobs\n"
	"  # of the boot: when systemd has none left (running, degraded), they are\n"
	"  # done. Only without systemd, or past the bound, ask cloud-init (between\n"
	"  # two stages `status --wait` may answer at once). A boot from a checkpoint\n"
	"  # that held cloud-init off ran none of them.\n"
	GUEST_BOOT_DONE_SH
	"  if command -v cloud-init >/dev/null; then [ -n \"$boot_ended\" ] || [ -e " INJECT_CI_HELD_RUN " ] || timeout 300 cloud-init status --wait >/dev/null 2>&1;\n"
	"    # `cloud-init clean --logs --seed` (Python: 8.6 s under TCG) done here\n"
	"    # where the image configures only what it defaults to: no script to run\n"
	"    # in clean.d (an executable file); cloud_dir, def_log_file and output\n"
	"    # absent or the defaults (in any of its files: one grep over them all).\n"
	"    # It removes everything in cloud_dir and the logs with their rotated\n"
	"    # copies (regular files only). Anything else: cloud-init itself.\n"
	"    ci_own=\n"
	"    [ -z \"$(find -L /etc/cloud/clean.d -mindepth 1 -maxdepth 1 -type f -perm /111 2>/dev/null)\" ] || ci_own=1\n"
	"    grep -hsE '^[^#]*(cloud_dir|def_log_file|output)' /etc/cloud/cloud.cfg /etc/cloud/cloud.cfg.d/*.cfg 2>/dev/null | grep -vqE \"" CI_DEFAULT_LINES "\" && ci_own=1\n"
	"    if [ -n \"$ci_own\" ]; then cloud-init clean --logs --seed >/dev/null 2>&1 || true\n"
	"    else set -- \"$@\" /var/lib/cloud/*; find /var/log -maxdepth 1 -type f \\( -name 'cloud-init.log*' -o -name 'cloud-init-output.log*' \\) -delete; fi\n"
	"    if [ -n \"$ci_own\" ]; then echo \"cloud-init clean: cloud-init's own\"; else echo \"cloud-init clean: the default paths\"; fi; fi\n"
	"  set -- \"$@\" /var/lib/cloud/instances /var/lib/cloud/instance /var/lib/cloud/data /var/lib/cloud/sem\n"
	"  set -- \"$@\" /var/log/cloud-init.log /var/log/cloud-init-output.log\n"
	"fi\n"
	"if [ -n \"$ssh\" ]; then\n"
	"  set -- \"$@\" /etc/ssh/ssh_host_*\n"
	"  for h in /root /home/*; do set -- \"$@\" \"$h/.ssh/authorized_keys\" \"$h/.ssh/authorized_keys2\"; done\n"
	"fi\n"
	"if [ -n \"$logs\" ]; then\n"
	"  # Rotated copies deleted, every other log emptied: one find.\n"
	"  find /var/log -type f \\( \\( -name '*.gz' -o -name '*.[0-9]' -o -name '*.old' \\) -delete -o -exec truncate -s 0 {} + \\) 2>/dev/null\n"
	"  set -- \"$@\" /var/log/journal/* /var/lib/dhcp/*.leases /var/lib/dhclient/* /var/lib/NetworkManager/*.lease\n"
	"  set -- \"$@\" /tmp/amiforge-toe-* /var/tmp/amiforge-*\n"
	"fi\n"
	"if [ -n \"$mid\" ]; then : > /etc/machine-id; set -- \"$@\" /var/lib/dbus/machine-id; fi\n"
	"if [ -n \"$hist\" ]; then\n"
	"  for h in /root /home/*; do set -- \"$@\" \"$h/.bash_history\" \"$h/.zsh_history\" \"$h/.python_history\" \"$h/.lesshst\" \"$h/.viminfo\"; done\n"
	"fi\n"
	"if [ -n \"$agent\" ]; then\n"
	"  set -- \"$@\" " INJECT_UNIT_PATH " " INJECT_WANTS_PATH " " INJECT_AGENT_PATH "\n"
	"  if [ \"$(cat " INJECT_CI_HOLD_PATH " 2>/dev/null)\" = \"$(printf '" INJECT_CI_HOLD_TEXT "')\" ]; then set -- \"$@\" " INJECT_CI_HOLD_PATH "; fi\n"
	"fi\n"
	/* What the build's network left: leases of every DHCP client, rules
	 * pinning an interface name to this guest's MAC, the per-instance
	 * files cloud-init rendered (only when they carry its header: it
	 * renders them again at first boot), and /etc/resolv.conf when it is a
	 * file written since the base image was made ($AMIFORGE_SINCE, epoch
	 * seconds); a symlink (systemd-resolved's stub) stays. */
	"if [ -n \"$net\" ]; then\n"
	"  set -- \"$@\" /var/lib/dhcp/*.leases /var/lib/dhcp/*.lease /var/lib/dhclient/* /var/lib/NetworkManager/*.lease /var/lib/NetworkManager/*.leases /var/lib/dhcpcd/*.lease* /var/lib/dhcpcd5/*.lease* /var/lib/wicked/lease-* /var/lib/systemd/network/*.lease\n"
	"  set -- \"$@\" /etc/udev/rules.d/70-persistent-net.rules\n"
	"  for f in /etc/netplan/50-cloud-init.yaml /etc/systemd/network/10-cloud-init-*.network /etc/systemd/network/10-cloud-init-*.link /etc/network/interfaces.d/50-cloud-init /etc/network/interfaces.d/50-cloud-init.cfg /etc/NetworkManager/system-connections/cloud-init-*.nmconnection /etc/sysconfig/network-scripts/ifcfg-*; do\n"
	"    [ -f \"$f\" ] && grep -qE 'generated from information provided by the datasource|Created by cloud-init' \"$f\" && set -- \"$@\" \"$f\"\n"
	"  done\n"
	"  if [ -f /etc/resolv.conf ] && [ ! -L /etc/resolv.conf ] && [ \"$(stat -c %Y /etc/resolv.conf)\" -gt \"${AMIFORGE_SINCE:-0}\" ]; then set -- \"$@\" /etc/resolv.conf; fi\n"
	"fi\n"
	"[ $# -eq 0 ] || rm -rf -- \"$@\"\n"
	"sync\n";

const char *build_generalise_script(void)
{
	return generalise_script;
}

/* The script's arguments from the recipe's cleanup: section, from argv[n];
 * returns the new count. */
static size_t generalise_sections(const struct recipe_cleanup *c, bool agent_in_disk,
				  const char **argv, size_t n)
{
	if (c->cloudinit)
		argv[n++] = "cloudinit";
	if (c->ssh)
		argv[n++] = "ssh";
	if (c->logs)
		argv[n++] = "logs";
	if (c->machine_id)
		argv[n++] = "machine-id";
	if (c->history)
		argv[n++] = "history";
	if (c->agent || agent_in_disk)
		argv[n++] = "agent";
	if (c->network)
		argv[n++] = "network";
	argv[n] = NULL;
	return n;
}

/* What generalisation does, for the generalised checkpoint's key. */
static char *generalise_material(const struct recipe_cleanup *c)
{
	const char *argv[12];
	size_t i, n = generalise_sections(c, false, argv, 0);
	char *s = xstrdup(generalise_script), *t;

	for (i = 0; i < n; i++) {
		t = xasprintf("%s\n%s", s, argv[i]);
		free(s);
		s = t;
	}
	return s;
}

static int generalise(struct build *b, struct executor *ex)
{
	const char *argv[16] = { "/bin/sh", "-c", generalise_script, "amiforge-generalise" };
	struct exec_req req = { 0 };
	struct exec_result res;
	struct stat st;
	char *since = xasprintf("AMIFORGE_SINCE=%lld", stat(b->base.path, &st) == 0
				? (long long)st.st_mtime : 0LL);
	const char *env[] = { since, NULL };
	int ret = -1;

	generalise_sections(&b->r->cleanup, b->agent_in_disk, argv, 4);
	req.argv = argv;
	req.env = env;
	req.timeout_ms = GENERALISE_TIMEOUT_MS;
	req.capture_max = 64 * 1024;
	memset(&res, 0, sizeof(res));
	if (executor_exec(ex, &req, &res) < 0)
		goto cleanup;
	if (res.timed_out || res.status != 0) {
		err_set("generalisation script failed with status %d: %s", res.status,
			res.err.data ? res.err.data : "");
		goto cleanup;
	}
	/* Which way cloud-init's state went (the script says; the guest's
	 * words are not logged as they are). */
	if (res.out.len && memmem(res.out.data, res.out.len, "cloud-init clean: ", 18))
		log_debug("generalise: cloud-init's state removed by %s",
			  memmem(res.out.data, res.out.len, "cloud-init's own", 16) ?
			  "`cloud-init clean` (the image configures it)" : "the script (default paths)");
	ret = 0;
cleanup:
	exec_result_release(&res);
	free(since);
	return ret;
}

/* tmp was written (rc 0) or not: rename it to out, so that out appears only
 * complete; on any failure tmp is removed. 0 or -1. */
static int rename_written(int rc, const char *tmp, const char *out)
{
	if (rc == 0 && rename(tmp, out) < 0)
		rc = err_errno("rename '%s' to '%s'", tmp, out);
	if (rc < 0)
		unlink(tmp);
	return rc;
}

/* Move the finished disk from the staging area into the output directory:
 * rename, or a sparse copy then rename when they are on different
 * filesystems. 0 or -1. */
static int move_disk(const char *from, const char *to)
{
	char *tmp;
	int ret;

	if (rename(from, to) == 0)
		return 0;
	if (errno != EXDEV)
		return err_errno("rename '%s' to '%s'", from, to);
	tmp = xasprintf("%s.partial", to);
	{
		const char *argv[] = { "cp", "--sparse=always", "--", from, tmp, NULL };
		struct run r = RUN_INIT;

		r.argv = argv;
		r.err = RUN_CAPTURE;
		r.timeout_ms = FLATTEN_TIMEOUT_MS;
		ret = rename_written(run_sync(&r) < 0 || run_check(&r) < 0 ? -1 : 0, tmp, to);
		run_release(&r);
	}
	if (ret == 0)
		unlink(from);
	free(tmp);
	return ret;
}

/* The staging area: overlays, sockets, the flattened disk before it is
 * tested. Not in the build directory, which may sit under a 0700 home or
 * temporary directory that QEMU (another user under qemu:///system) cannot
 * traverse; $TMPDIR or /var/tmp (disks are large: not /tmp, often tmpfs). */
static char *staging_dir(const struct build *b)
{
	unsigned char rnd[4];

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		memset(rnd, 0, sizeof(rnd));
	/* The name's first 16 characters: the staging path stays short enough
	 * for the guest's sockets below it (recipe names run to 64). */
	return xasprintf("%s/amiforge-build-%.16s-%ld-%02x%02x%02x%02x",
			 tmp_dir("/var/tmp"), b->r->name, (long)getpid(),
			 rnd[0], rnd[1], rnd[2], rnd[3]);
}

/* The guest's architecture: the recipe's vm.arch, else an AMI parent's,
 * else what the base image's partitions or binaries say (archprobe.h). Its
 * agent must be in this amiforge. 0 or -1. */
static int decide_arch(struct build *b)
{
	const char *from, *how = NULL;
	size_t len;

	if (b->r->vm.arch != ARCH_AUTO) {
		b->arch = arch_get(b->r->vm.arch);
		from = "vm.arch";
	} else if (b->base.arch && arch_find_ec2(b->base.arch)) {
		b->arch = arch_find_ec2(b->base.arch);
		from = "the parent AMI";
	} else {
		if (archprobe_disk(b->base.path, b->base.format, &b->arch, &how) < 0)
			return -1;
		from = how;
	}
	log_info("guest architecture: %s (%s)", b->arch->name, from);
	manifest_set_arch(b->m, b->arch, from);
	return arch_agent(b->arch, &len) ? 0 : -1;
}

/* Guest options from the recipe's vm section. */
static void guest_opts_from(struct build *b, struct guest_opts *go, const char *image,
			    const char *image_format, const char *work_dir)
{
	const struct recipe_vm *vm = &b->r->vm;

	memset(go, 0, sizeof(*go));
	go->image = image;
	go->image_format = image_format;
	go->driver = vm->driver && strcmp(vm->driver, "auto") != 0 ? vm->driver : NULL;
	go->uri = vm->connect;
	if (vm->accel && accel_parse(vm->accel, &go->accel) < 0)
		go->accel = ACCEL_AUTO;
	go->arch = b->arch ? b->arch->id : ARCH_AUTO;
	go->cpus = vm->cpus;
	go->memory_mib = (unsigned)vm->memory_mib;
	go->net = vm->network;
	go->net_source = vm->network_source;
	go->forwards = vm->forwards;
	go->n_forwards = vm->nforwards;
	go->net_env = (const char *const *)b->net_env.v;
	go->offline_reason = "the recipe sets vm.network: none";
	go->work_dir = work_dir;
	/* abort and ask may leave the guest running; then it must outlive us,
	 * journaled for `amiforge clean`. */
	go->persistent = b->o->on_error != BUILD_ON_ERROR_CLEANUP;
	go->journal = b->j;
	go->on_phase = on_guest_phase;
	go->opaque = b;
}

/* One guest's share of the build: boot image, run phases of docs,
 * generalise when asked, power off, flatten to out when not NULL. */
struct guest_stage {
	const char *image;
	const char *image_format;  /* the base's recorded format, or qcow2 */
	const char *work;          /* the guest's work directory (journaled) */
	const char *console;       /* where its console log ends up */
	const char *boot_stage, *run_stage;
	const struct recipe_doc *docs;
	size_t ndocs;
	const char *phases;
	bool generalise;
	uint64_t disk_size;        /* 0: the image's */
	const char *out;
	const char *inspect_as;    /* with out: the output's final path; the
				      inspection runs while out is flattened */
	bool checkpoints;          /* checkpoint the component steps (checkpoint.h) */
};

static void on_ckpt_event(const char *kind, const char *name, const char *status,
			  const char *detail, void *opaque)
{
	event(opaque, kind, name, status, detail);
}

/* The build guest's checkpoints: plan the run, pick the checkpoint to boot. */
static int checkpoints_begin(struct build *b, const struct guest_stage *gs,
			     struct guest_opts *go)
{
	struct strv *params = xcalloc(gs->ndocs ? gs->ndocs : 1, sizeof(*params));
	struct component_run_opts co;
	char *material = gs->generalise ? generalise_material(&b->r->cleanup) : NULL;
	struct ckpt_opts o = {
		.recipe = b->r, .base = &b->base, .disk_size = gs->disk_size, .bd = &b->bd,
		.journal = b->j, .reuse = !b->o->no_cache, .event = on_ckpt_event, .opaque = b,
		.final_material = material, .network = b->net_key,
		.every_step = b->o->checkpoint_every_step,
	};
	size_t i;

	o.arch = b->arch ? b->arch : arch_get(ARCH_AUTO);
	o.agent = arch_agent(o.arch, &o.agent_len);
	doc_specs_opts(b, gs->docs, gs->ndocs, gs->phases, params, &co);
	b->ck = ckpt_new(&o, &co);
	free(material);
	for (i = 0; i < gs->ndocs; i++)
		strv_release(&params[i]);
	free(params);
	free((void *)co.docs);
	if (!b->ck)
		return -1;
	if (ckpt_image(b->ck)) {
		go->image = ckpt_image(b->ck);
		go->image_chain = true;
	}
	if (ckpt_agent_in_layer(b->ck))
		go->via = GUEST_AGENT_DISK;
	go->overlay = ckpt_overlay(b->ck);
	go->restore_state = ckpt_state(b->ck, &go->restore_shape, &go->restore_name);
	return 0;
}

static void on_inspect_check(void *opaque, const struct inspect_check *k)
{
	struct build *b = opaque;
	char *d = xasprintf("%s%s%s%s", k->reason, *k->evidence ? " [" : "", k->evidence,
			    *k->evidence ? "]" : "");

	if (b->o->json)
		event(b, "check", k->id, check_status_name(k->status), d);
	free(d);
}

/* The output disk, inspected offline before anything is published
 * (inspect-stage.h), read from chain (inspect_stage.own_chain); --no-inspect
 * is recorded. */
static int inspect_output(struct build *b, const char *disk, const char *chain)
{
	struct inspect_stage s = { .r = b->r, .disk = disk, .own_chain = chain,
				   .build_dir = b->bd.path, .on_check = on_inspect_check,
				   .opaque = b, .early = b->early };
	char *summary = NULL, *sbom;
	size_t n = strlen(disk);
	int r;

	/* The SBOM beside the image: output/NAME-VERSION.cdx.json. */
	if (n > 6 && strcmp(disk + n - 6, ".qcow2") == 0)
		sbom = xasprintf("%.*s.cdx.json", (int)(n - 6), disk);
	else
		sbom = xasprintf("%s.cdx.json", disk);
	s.sbom_path = sbom;

	stage_begin(b, "inspect");
	if (b->o->no_inspect) {
		manifest_set_inspect(b->m, "{\"status\": \"disabled\", \"reason\": \"--no-inspect\"}");
		stage_end(b, "inspect", "skipped");
		free(sbom);
		return 0;
	}
	r = inspect_stage_run(&s, &summary);
	if (summary && manifest_set_inspect(b->m, summary) < 0 && r == 0)
		r = -1;
	/* `amiforge diff` and `sbom` find it there. */
	if (access(sbom, F_OK) == 0 && manifest_add_output(b->m, "sbom", sbom) < 0 && r == 0)
		r = -1;
	free(summary);
	free(sbom);
	stage_end(b, "inspect", r < 0 ? "failed" : "ok");
	return r;
}

/* The flatten's convert, waited for in a thread of its own beside the
 * inspection: once it has written the output, the thread takes its sha256
 * (at nice 19, as the convert ran) while the appliance still works, so the
 * outputs stage does not read the disk again (~0.5 s for the bench's). */
struct flatten_wait {
	struct qemu_img_job *job;
	const char *path;
	int rc;
	char err[ERR_MAX];
	char *sha;		/* NULL: not taken (outputs hashes it) */
	struct stat st;
};

static void *flatten_waiter(void *arg)
{
	struct flatten_wait *w = arg;

	if (setpriority(PRIO_PROCESS, (id_t)gettid(), 19) < 0)
		log_debug("flatten: nice 19: %s", strerror(errno));
	w->rc = qemu_img_wait(w->job);
	if (w->rc < 0) {
		snprintf(w->err, sizeof(w->err), "%s", err_msg());
		return NULL;
	}
	if (hash_file(w->path, CHECKSUM_NONE, &w->sha, NULL) < 0 || stat(w->path, &w->st) < 0) {
		log_debug("flatten: sha256 of '%s' left for later: %s", w->path, err_msg());
		free(w->sha);
		w->sha = NULL;
		err_clear();
	}
	return NULL;
}

/* Flatten chain (the guest's powered-off disk, or the generalised
 * checkpoint: amiforge's own qcow2 over its backing chain) into one
 * standalone qcow2 at gs->out, the base untouched. qemu-img runs in the
 * background while the output is inspected from chain, the same content:
 * the inspection's appliance does not wait for the copy. A failed
 * inspection is left in b->inspect_failed: the build goes on to its
 * generalised checkpoint and its output disk (for the user to examine),
 * then fails. */
static int flatten_stage(struct build *b, const struct guest_stage *gs, const char *chain)
{
	/* Beside the inspection, the convert yields the CPU to the
	 * appliance: it boots under TCG and the stage waits for it, while the
	 * convert (a compressed base decoded, ~7 CPU s for the fixture's)
	 * finishes first on what the appliance leaves (issue 16). */
	struct qemu_img_how how = { .timeout_ms = FLATTEN_TIMEOUT_MS,
				    .background = gs->inspect_as != NULL };
	struct qemu_img_job job;
	char *tmp = xasprintf("%s.partial", gs->out);
	unsigned oid;
	int ret = -1, rc;

	stage_begin(b, "flatten");
	if (journal_add(b->j, &oid, "file", gs->out, NULL) < 0 ||
	    qemu_img_convert_start(chain, "qcow2", tmp, "qcow2", NULL, &how, &job) < 0)
		goto cleanup;
	if (gs->inspect_as) {
		struct flatten_wait w = { .job = &job, .path = tmp };
		pthread_t t;
		bool threaded = pthread_create(&t, NULL, flatten_waiter, &w) == 0;

		if (inspect_output(b, gs->inspect_as, chain) < 0) {
			b->inspect_failed = xstrdup(err_msg());
			err_clear();
		}
		if (threaded) {
			pthread_join(t, NULL);
			if (w.rc < 0)
				err_set("%s", w.err);
		} else {
			w.rc = qemu_img_wait(&job);
		}
		rc = w.rc;
		free(b->disk_sha);
		b->disk_sha = w.sha;
		b->disk_st = w.st;
	} else {
		rc = qemu_img_wait(&job);
	}
	if (rename_written(rc, tmp, gs->out) < 0 || journal_keep(b->j, oid) < 0)
		goto cleanup;
	ret = 0;
cleanup:
	stage_end(b, "flatten", ret < 0 ? "failed" : "ok");
	free(tmp);
	return ret;
}

/* The generalised checkpoint matches: the build guest's stages are done
 * already; flatten its layer to gs->out. */
static int reuse_final(struct build *b, const struct guest_stage *gs)
{
	const char *skipped[] = { gs->run_stage, "generalise", "poweroff" };
	size_t i;

	stage_end(b, gs->boot_stage, "reused");
	for (i = 0; i < ARRAY_SIZE(skipped); i++) {
		stage_begin(b, skipped[i]);
		stage_end(b, skipped[i], "reused");
	}
	return flatten_stage(b, gs, ckpt_final(b->ck));
}

/* vm.wait_for_cloud_init: the agent is up before cloud-init's stages; a
 * recipe whose first step needs them done waits here. Errors cloud-init
 * reports are the image's business: said, not fatal. */
static int wait_cloud_init(struct build *b, struct guest *g)
{
	static const char *const argv[] = {
		"/bin/sh", "-c", "command -v cloud-init >/dev/null || exit 3\n"
		/* booted from a checkpoint: cloud-init ran at the first boot */
		"[ -e " INJECT_CI_HELD_RUN " ] && exit 0\n"
		GUEST_BOOT_DONE_SH "exec cloud-init status --wait >/dev/null", NULL };
	struct exec_req req = { .argv = argv, .timeout_ms = CLOUD_INIT_WAIT_MS,
				.capture_max = 4096 };
	struct exec_result res;
	int64_t t0 = now_ms();
	int ret = -1;

	memset(&res, 0, sizeof(res));
	if (executor_exec(g->ex, &req, &res) < 0)
		goto cleanup;
	if (res.timed_out) {
		err_set("vm.wait_for_cloud_init: cloud-init did not finish within %d s",
			CLOUD_INIT_WAIT_MS / 1000);
		goto cleanup;
	}
	if (res.status == 3)
		log_warn("vm.wait_for_cloud_init: the image has no cloud-init");
	else if (res.status != 0)
		log_warn("vm.wait_for_cloud_init: cloud-init finished with errors (status %d)",
			 res.status);
	else if (!b->o->json)
		log_info("cloud-init finished %.1f s after the agent was ready",
			 (double)(now_ms() - t0) / 1000.0);
	ret = 0;
cleanup:
	exec_result_release(&res);
	return ret;
}

static int guest_stage(struct build *b, const struct guest_stage *gs)
{
	struct guest_opts go;
	struct guest *g = NULL;
	unsigned jid = 0;
	int ret = -1;

	/* Journaled before it exists: clean removes it after a crash. */
	if (journal_add(b->j, &jid, "dir", gs->work, NULL) < 0)
		goto cleanup;
	guest_opts_from(b, &go, gs->image, gs->image_format, gs->work);
	go.disk_size = gs->disk_size;
	stage_begin(b, gs->boot_stage);
	if (gs->checkpoints && checkpoints_begin(b, gs, &go) < 0) {
		stage_end(b, gs->boot_stage, "failed");
		goto cleanup;
	}
	if (b->ck && ckpt_final(b->ck) && gs->out) {
		ret = reuse_final(b, gs);
		goto cleanup;
	}
	g = guest_boot(&go);
	if (!g) {
		stage_end(b, gs->boot_stage, "failed");
		goto cleanup;
	}
	stage_end(b, gs->boot_stage, "ok");
	if (b->ck && !guest_can_snapshot(g)) {
		log_warn("checkpoints: the %s driver cannot snapshot a running guest", go.driver ?
			 go.driver : "hypervisor");
		b->ck = (ckpt_free(b->ck), NULL);
	}
	b->g = g;
	b->early_ok = gs->inspect_as && !b->o->no_inspect;
	if (gs->generalise)
		b->agent_in_disk = go.via == GUEST_AGENT_DISK;
	if (ckpt_booted(b->ck, g) < 0)
		goto cleanup;

	stage_begin(b, gs->run_stage);
	if ((b->r->vm.wait_for_cloud_init && wait_cloud_init(b, g) < 0) ||
	    run_components(b, g->step_ex, gs->docs, gs->ndocs, gs->phases) < 0) {
		stage_end(b, gs->run_stage, "failed");
		goto cleanup;
	}
	stage_end(b, gs->run_stage, "ok");

	start_early(b);
	if (gs->generalise) {
		stage_begin(b, "generalise");
		if (generalise(b, g->ex) < 0) {
			stage_end(b, "generalise", "failed");
			goto cleanup;
		}
		stage_end(b, "generalise", "ok");
	}

	stage_begin(b, "poweroff");
	if (guest_shutdown(g) < 0) {
		stage_end(b, "poweroff", "failed");
		goto cleanup;
	}
	stage_end(b, "poweroff", "ok");

	if (gs->out) {
		if (flatten_stage(b, gs, g->overlay) < 0)
			goto cleanup;
		if (gs->generalise)
			ckpt_save_final(b->ck, g);
	}
	ret = 0;
cleanup:
	b->early_ok = false;
	appliance_early_free(b->early);   /* its directories are gone */
	b->early = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(b->early_jid) && b->early_jid[i]; i++)
		journal_release(b->j, b->early_jid[i]);
	memset(b->early_jid, 0, sizeof(b->early_jid));
	if (g) {
		/* The console log belongs to the build directory. */
		if (g->console_log && rename(g->console_log, gs->console) == 0) {
			free(g->console_log);
			g->console_log = xstrdup(gs->console);
		}
		/* The failure's message is the build's: keep it over what the
		 * teardown may record. */
		char *e = ret < 0 ? xstrdup(err_msg()) : NULL;

		if (ret < 0)
			keep_guest(b, g);
		b->g = NULL;
		guest_free(g);   /* destroys it unless kept */
		if (!b->kept)
			remove_guest_record(b);
		if (e)
			err_set("%s", e);
		free(e);
	}
	if (b->ck) {
		ckpt_free(b->ck);
		b->ck = NULL;
	}
	if (jid && access(gs->work, F_OK) < 0)
		journal_release(b->j, jid);
	return ret;
}

/* Resources a publish creates are journaled the moment they are known,
 * released when the driver is done with them (the staging upload, object,
 * import task) and kept when they are products (snapshots, images). */
static void on_publish_resource(enum aws_res_event ev, const char *kind, const char *id,
				const char *region, void *opaque)
{
	struct build *b = opaque;
	enum journal_event je = ev == AWS_RES_CREATED ? JOURNAL_EV_CREATED
				: ev == AWS_RES_RELEASED ? JOURNAL_EV_RELEASED : JOURNAL_EV_KEPT;

	int r = journal_resource(b->j, je, kind, id, region);

	if (r < 0)
		log_warn("journal: %s", err_msg());
	/* Once per resource: when created, or when first reported as kept. */
	if (ev == AWS_RES_CREATED || (ev == AWS_RES_KEPT && r == 1))
		event(b, "resource", kind, "created", id);
}

/* The recipe's publish: section: upload the disk (EBS direct: the qcow2,
 * incremental from this recipe's previous build) and register an AMI, then
 * the distribution: section (builder/publish/publish-dist.h). */
static int publish(struct build *b, const char *vmdk, const char *qcow2)
{
	const struct publish_opts *p = &b->r->publish.o;
	struct publish_spec spec = p->spec;   /* every option of the publish: section */
	/* A VMDK the recipe asked for is uploaded as it is; else the qcow2 is
	 * sent as a VMDK made while it uploads (VM Import), or as it is (EBS). */
	struct target_disk d = { .path = vmdk ? vmdk : qcow2, .format = vmdk ? "vmdk" : "qcow2" };
	struct target_result res = { 0 };
	const struct target_driver *drv;
	struct dist_result dres = { 0 };
	struct dist_build db = { 0 };
	const struct target_via *via;
	char *dstate = NULL;
	size_t i;
	int ret = -1;

	if (!(via = target_via_find(spec.via)))
		goto cleanup;
	spec.via = via->name;
	if (!spec.name)
		spec.name = b->r->name;
	if (!spec.description)
		spec.description = b->r->description;
	/* The guest's architecture (decide_arch: the same the inspector saw)
	 * and an AMI parent's boot mode carry over unless the recipe says
	 * otherwise; an architecture that boots UEFI only registers so. */
	if (!spec.arch)
		spec.arch = b->arch ? b->arch->ec2 : NULL;
	if (!spec.boot_mode)
		spec.boot_mode = b->base.boot_mode;
	if (!spec.boot_mode && arch_find_ec2(spec.arch) && arch_find_ec2(spec.arch)->uefi_only)
		spec.boot_mode = "uefi";
	spec.encrypted = spec.encrypted || spec.kms_key_id;
	spec.progress = !b->o->json && isatty(2);
	spec.on_resource = on_publish_resource;
	spec.opaque = b;
	if (via->block_level) {
		d.path = qcow2;
		d.format = "qcow2";
		spec.block_dir = b->bd.path;
		if (!spec.parent_snapshot)
			spec.parent_snapshot = "auto";
		spec.lineage = b->r->name;
	}
	if (p->create_bucket) {
		struct aws_client_opts co = { .profile = spec.profile, .region = spec.region };
		struct aws_client *cl = aws_client_new(&co);
		int r = cl ? s3_create_bucket(cl, spec.bucket) : -1;

		aws_client_free(cl);
		if (r < 0)
			goto cleanup;
	}
	drv = target_find(&spec);
	if (!drv || (drv->check && drv->check(&spec) < 0) || drv->publish(&d, &spec, &res) < 0)
		goto cleanup;
	manifest_add_ami(b->m, res.region, res.ami_id, res.snapshot_id);
	if (!b->o->json)
		log_info("AMI %s (%s) in %s", res.ami_id, res.ami_name ? res.ami_name : "",
			 res.region);
	if (b->r->dist.set) {
		dist_build_from_recipe(&db, &b->r->dist);
		db.spec.profile = spec.profile;
		db.spec.on_resource = on_publish_resource;
		db.spec.opaque = b;
		dstate = dist_state_path(b->bd.path, res.ami_id);
		db.spec.state_file = dstate;
		if (distribute(&db.spec, res.region, res.ami_id, &dres) < 0)
			goto cleanup;
		for (i = 0; i < dres.n; i++)
			if (strcmp(dres.o[i].region, res.region) != 0)
				manifest_add_ami(b->m, dres.o[i].region, dres.o[i].ami_id,
						 dres.o[i].snapshot_ids[0]);   /* NULL if none */
	}
	ret = 0;
cleanup:
	dist_result_release(&dres);
	dist_build_release(&db);
	free(dstate);
	target_result_release(&res);
	return ret;
}

/* The temporary files a conversion makes, journaled as they appear. */
struct temps {
	struct journal *j;
	unsigned id[4];
	char *path[4];
	size_t n;
};

static int on_convert_temp(const char *kind, const char *path, void *opaque)
{
	struct temps *t = opaque;

	if (t->n == ARRAY_SIZE(t->id))
		return err_set("conversion made more temporary files than expected");
	if (journal_add(t->j, &t->id[t->n], kind, path, NULL) < 0)
		return -1;
	t->path[t->n++] = xstrdup(path);
	return 0;
}

/* After the conversion: what is gone is released from the journal. */
static void temps_release(struct temps *t)
{
	size_t i;

	for (i = 0; i < t->n; i++) {
		if (access(t->path[i], F_OK) < 0 && journal_release(t->j, t->id[i]) < 0)
			log_warn("journal: %s", err_msg());
		free(t->path[i]);
	}
	t->n = 0;
}

/* Every extra output format, converted from the flattened qcow2; *vmdk gets
 * the streamOptimized VMDK's path when one was made (caller frees). */
static int outputs(struct build *b, const char *disk, char **vmdk)
{
	static const struct { unsigned bit; enum convert_format f; const char *ext; } fmts[] = {
		{ OUTPUT_RAW, CONVERT_RAW, "raw" },
		{ OUTPUT_VMDK, CONVERT_VMDK, "vmdk" },
		{ OUTPUT_VHD, CONVERT_VHD, "vhd" },
		{ OUTPUT_VHDX, CONVERT_VHDX, "vhdx" },
		{ OUTPUT_OVA, CONVERT_OVA, "ova" },
	};
	const char *dir = b->r->output.directory ? b->r->output.directory : b->bd.output;
	unsigned want = b->r->output.formats;
	size_t i;

	/* VM Import needs no VMDK file: publish streams one (aws-import.c). */
	if (b->r->output.formats & OUTPUT_QCOW2 &&
	    manifest_add_output_hashed(b->m, "qcow2", disk, &b->disk_st, b->disk_sha) < 0)
		return -1;
	for (i = 0; i < ARRAY_SIZE(fmts); i++) {
		struct convert_opts co = { 0 };
		struct temps t = { .j = b->j };
		char *out;
		unsigned id;
		int r;

		if (!(want & fmts[i].bit))
			continue;
		out = xasprintf("%s/%s-%s.%s", dir, b->r->name, b->r->version, fmts[i].ext);
		co.input = disk;
		co.input_format = "qcow2";
		co.input_own = true;
		co.output = out;
		co.format = fmts[i].f;
		co.progress = !b->o->json && isatty(2);
		co.on_temp = on_convert_temp;
		co.opaque = &t;
		r = journal_add(b->j, &id, "file", out, NULL);
		if (r == 0) {
			r = convert_run(&co);
			temps_release(&t);
		}
		if (r == 0)
			r = journal_keep(b->j, id);
		if (r == 0)
			r = manifest_add_output(b->m, fmts[i].ext, out);
		if (r == 0 && fmts[i].bit == OUTPUT_VMDK) {
			*vmdk = out;
			out = NULL;
		}
		free(out);
		if (r < 0)
			return -1;
	}
	return 0;
}

/* The proxy environment and the network's part of checkpoint keys. */
static void net_setup(struct build *b)
{
	const struct recipe_vm *vm = &b->r->vm;
	const char *vals[] = { vm->proxy.http, vm->proxy.https, vm->proxy.no_proxy };
	static const char *const lower[] = { "http_proxy", "https_proxy", "no_proxy" };
	static const char *const upper[] = { "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY" };
	size_t i;

	for (i = 0; i < ARRAY_SIZE(vals); i++) {
		if (!vals[i])
			continue;
		strv_pushf(&b->net_env, "%s=%s", lower[i], vals[i]);
		strv_pushf(&b->net_env, "%s=%s", upper[i], vals[i]);
	}
	/* A step that reaches out may do something else offline or on another
	 * network: the mode is part of every checkpoint key. The default (user)
	 * adds nothing, so keys made before networks existed stay valid. The
	 * proxy and the forwards are not: they change the path, not what a
	 * step fetches (Docker leaves its proxy build arguments out of its
	 * cache keys too), and a proxy URL may hold a password. */
	if (vm->network != VM_NET_USER)
		b->net_key = xasprintf("network=%s %s", vm_net_name(vm->network),
				       vm->network_source ? vm->network_source : "");
}

static int pipeline(struct build *b, struct build_result *res)
{
	struct recipe_opts ro = { 0 };
	time_t now = time(NULL);
	const char *dir;
	char *disk = NULL, *work = NULL, *test_work = NULL, *test_console = NULL;
	char *vmdk = NULL, *stage = NULL, *staged = NULL;
	unsigned stage_id = 0;
	char *log_path;
	int ret = -1;

	ro.vars = b->o->vars;
	ro.build_time = now;
	ro.check_doc = build_check_doc;
	b->r = recipe_parse(b->o->recipe, &ro);
	if (!b->r)
		return -1;
	if (b->o->resume_dir ? build_dir_open(b->o->resume_dir, &b->bd) < 0 :
	    build_dir_create(b->o->output_root, b->r->name, b->r->version, now, &b->bd) < 0)
		return -1;
	if (b->o->resume_dir) {
		char *rec = xasprintf("%s/" GUEST_RECORD_NAME, b->bd.path);
		bool kept = access(rec, F_OK) == 0;

		free(rec);
		if (kept)
			return err_set("--resume '%s': a guest is still kept there for inspection "
				       "(amiforge clean %s destroys it)", b->bd.path, b->bd.path);
	}
	/* What --resume needs: the recipe, the vars, this build's nonce. */
	if (ckpt_state_save(b->bd.path, b->r->path, b->o->vars) < 0)
		return -1;
	res->build_dir = xstrdup(b->bd.path);
	b->j = journal_open(b->bd.journal);
	if (!b->j)
		return -1;
	log_path = xasprintf("%s/build.log", b->bd.path);
	if (log_open_file(log_path) < 0)
		log_warn("%s", err_msg());
	free(log_path);
	b->m = manifest_new(b->bd.manifest);
	manifest_set_status(b->m, "running", NULL);
	if (manifest_set_recipe(b->m, b->r) < 0)
		return -1;
	net_setup(b);
	if (!b->o->json)
		log_info("build %s %s → %s", b->r->name, b->r->version, b->bd.path);

	stage_begin(b, "base");
	if (base_image_get(&b->r->parent, &b->base) < 0) {
		stage_end(b, "base", "failed");
		return -1;
	}
	manifest_set_base(b->m, &b->base);
	if (decide_arch(b) < 0) {
		stage_end(b, "base", "failed");
		return -1;
	}
	stage_end(b, "base", "ok");

	dir = b->r->output.directory ? b->r->output.directory : b->bd.output;
	if (mkdir_p(dir, 0700) < 0 || journal_allow_root(b->j, dir) < 0)
		return -1;
	disk = xasprintf("%s/%s-%s.qcow2", dir, b->r->name, b->r->version);
	stage = staging_dir(b);
	/* Journaled before it exists: clean removes it after a crash. */
	if (journal_add(b->j, &stage_id, "dir", stage, NULL) < 0)
		goto cleanup;
	if (mkdir(stage, 0711) < 0 || chmod(stage, 0711) < 0) {
		err_errno("create staging directory '%s'", stage);
		goto cleanup;
	}
	b->staging = stage;
	work = xasprintf("%s/guest-build", stage);
	test_work = xasprintf("%s/guest-test", stage);
	staged = xasprintf("%s/%s-%s.qcow2", stage, b->r->name, b->r->version);
	test_console = xasprintf("%s/console-test.log", b->bd.path);
	{
		struct guest_stage gs = {
			.image = b->base.path, .image_format = b->base.format,
			.work = work, .console = b->bd.console_log,
			.boot_stage = "boot", .run_stage = "components",
			.docs = b->r->components, .ndocs = b->r->ncomponents,
			.phases = "build,validate", .generalise = true,
			.disk_size = b->r->vm.disk_size, .out = staged, .inspect_as = disk,
			.checkpoints = true,
		};
		if (guest_stage(b, &gs) < 0)
			goto cleanup;
	}
	/* The output boots on a fresh overlay with a new instance-id; not
	 * one that failed its inspection. */
	if (b->r->ntests && !b->inspect_failed) {
		struct guest_stage gs = {
			.image = staged, .image_format = "qcow2",
			.work = test_work, .console = test_console,
			.boot_stage = "boot-test", .run_stage = "tests",
			.docs = b->r->tests, .ndocs = b->r->ntests, .phases = "test",
		};
		if (guest_stage(b, &gs) < 0)
			goto cleanup;
	}
	/* Tested: the disk becomes the build's output (one that failed its
	 * inspection too, for the user to examine; nothing else is made of
	 * it). */
	{
		unsigned oid;

		if (journal_add(b->j, &oid, "file", disk, NULL) < 0 || move_disk(staged, disk) < 0 ||
		    journal_keep(b->j, oid) < 0)
			goto cleanup;
	}
	b->staging = NULL;
	if (remove_tree(stage) < 0 || journal_release(b->j, stage_id) < 0)
		log_warn("staging directory: %s", err_msg());
	if (b->inspect_failed) {
		/* Kept for the user to examine: the manifest says where. */
		if (manifest_add_output_hashed(b->m, "qcow2", disk, &b->disk_st, b->disk_sha) < 0)
			log_warn("manifest: %s", err_msg());
		err_set("%s", b->inspect_failed);
		goto cleanup;
	}

	stage_begin(b, "outputs");
	if (outputs(b, disk, &vmdk) < 0) {
		stage_end(b, "outputs", "failed");
		goto cleanup;
	}
	stage_end(b, "outputs", "ok");
	if (b->r->publish.set) {
		stage_begin(b, "publish");
		if (publish(b, vmdk, disk) < 0) {
			stage_end(b, "publish", "failed");
			goto cleanup;
		}
		stage_end(b, "publish", "ok");
	}
	res->disk = disk;
	disk = NULL;
	ret = 0;
cleanup:
	b->staging = NULL;
	free(disk);
	free(vmdk);
	free(work);
	free(test_work);
	free(test_console);
	free(stage);
	free(staged);
	return ret;
}

/* SIGINT/SIGTERM/SIGHUP (guest.c's watcher, after the guest is destroyed):
 * release what the journal holds, then the process exits 128+sig. */
static void on_signal(int sig, void *opaque)
{
	struct build *b = opaque;
	unsigned released = 0, failed = 0;

	if (!b->j)
		return;
	journal_seal(b->j);	/* the build's thread goes on meanwhile */
	journal_cleanup(b->j, false, NULL, &released, &failed);
	fprintf(stderr, "amiforge: %s: released %u resources%s (journal %s)\n", strsignal(sig),
		released, failed ? ", some failed: run amiforge clean" : "", b->bd.journal);
}

int build_run(const struct build_opts *o, struct build_result *res)
{
	struct build b = { .o = o, .t0 = now_ms() };
	int ret;

	memset(res, 0, sizeof(*res));
	guest_on_signal(on_signal, &b);
	ret = pipeline(&b, res);
	if (b.m) {
		manifest_set_status(b.m, ret == 0 ? "succeeded" : "failed",
				    ret == 0 ? NULL : err_msg());
		if (manifest_write(b.m) < 0 && ret == 0)
			ret = -1;
	}
	if (b.m && b.bd.path) {
		/* The report page: a failure to write it is said, not fatal,
		 * and never replaces the build's own error. */
		char *e = ret < 0 ? xstrdup(err_msg()) : NULL;

		if (report_write_for_build(b.bd.path) < 0)
			log_warn("report: %s", err_msg());
		if (e) {
			err_set("%s", e);
			free(e);
		}
	}
	res->success = ret == 0;
	res->guest_kept = b.kept;
	if (ret < 0 && b.j) {
		char *e = xstrdup(err_msg());

		/* What this build created and did not keep goes now; the
		 * journal stays for `amiforge clean` if anything resists. A
		 * guest kept for inspection keeps everything it needs: held. */
		if (b.kept) {
			if (journal_hold_live(b.j) < 0)
				log_warn("journal: %s", err_msg());
		} else if (journal_cleanup(b.j, false, NULL, NULL, NULL) < 0) {
			log_warn("cleanup: %s", err_msg());
		}
		err_set("%s", e);
		free(e);
	}
	event(&b, "build", b.r ? b.r->name : "?", ret == 0 ? "succeeded" : "failed",
	      ret == 0 ? NULL : err_msg());
	guest_on_signal(NULL, NULL);
	log_close_file();
	journal_close(b.j);
	manifest_free(b.m);
	base_image_release(&b.base);
	build_dir_release(&b.bd);
	recipe_free(b.r);
	free(b.record);
	strv_release(&b.net_env);
	free(b.net_key);
	free(b.inspect_failed);
	free(b.disk_sha);
	return ret;
}

void build_result_release(struct build_result *res)
{
	free(res->build_dir);
	free(res->disk);
	res->build_dir = res->disk = NULL;
}
