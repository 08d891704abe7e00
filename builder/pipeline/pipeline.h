/* pipeline.h: an image pipeline (issue 18), EC2 Image Builder's pipeline run
 * on this host: a recipe, a schedule, a condition, notifications,
 * distribution extras and a lifecycle policy, read from YAML:
 *
 *	pipeline: web-nightly              # the name; marks the file as a pipeline
 *	recipe: web.yaml                   # relative to this file
 *	vars: {Port: "8080"}               # --var values for the build
 *	schedule:
 *	  expression: cron(0 3 ? * MON-FRI *)   # cron.h
 *	  timezone: Europe/Paris           # IANA; default UTC
 *	  condition: onlyIfUpdated         # or always (the default)
 *	state: .amiforge-pipeline/web-nightly   # default: .amiforge-pipeline/NAME
 *	builds: builds                     # build directories; default: builds
 *	profile: prod                      # AWS profile for everything below
 *	notifications:                     # on success and on failure
 *	  sns: [arn:aws:sns:eu-west-1:123456789012:builds]
 *	  webhooks:
 *	    - https://hooks.example.com/x  # or {url, retries: 3, timeout: 10}
 *	  commands:
 *	    - [/usr/bin/logger, -t, amiforge]   # argv; the JSON on stdin
 *	distribution:
 *	  launch_templates:
 *	    - {region: eu-west-1, id: lt-0123456789abcdef0, default: true}
 *	  ssm_parameters:
 *	    - {region: eu-west-1, name: /images/web/latest}
 *	  license_configurations:
 *	    - {region: eu-west-1, arns: [arn:aws:license-manager:...]}
 *	lifecycle:
 *	  regions: [eu-west-1, us-east-1]
 *	  exclude_tags: {keep: "true"}     # AMIs carrying any of these are left alone
 *	  rules:
 *	    - {action: deprecate, older_than: 30d, retain_at_least: 1}
 *	    - {action: delete, keep_last: 5}
 *
 * Unknown keys are errors with a "did you mean"; every error is
 * file:line:col. */
#ifndef AMIFORGE_PIPELINE_H
#define AMIFORGE_PIPELINE_H

#include "compat.h"
#include "cron.h"
#include "builder/recipe/yaml.h"

#define PIPELINE_NAME_MAX 64
#define PIPELINE_LIST_MAX 32          /* notifications, templates, parameters each */
#define PIPELINE_WEBHOOK_RETRIES_MAX 10
#define PIPELINE_LC_RULES_MAX 16
#define PIPELINE_ARGV_MAX 64

/* The AMI tags amiforge puts on what a pipeline made; the lifecycle selects
 * by them. */
#define PIPELINE_TAG "amiforge:pipeline"
#define PIPELINE_RECIPE_TAG "amiforge:recipe"
#define PIPELINE_BUILD_TAG "amiforge:build"

enum pipeline_condition { PIPELINE_ALWAYS, PIPELINE_ONLY_IF_UPDATED };

struct pipeline_webhook {
	char *url;
	int retries;                  /* after the first attempt; default 3 */
	int64_t timeout_ms;           /* per attempt; default 10 s */
};

struct pipeline_lt {
	char *region, *id, *name;     /* id or name */
	bool set_default;
};

struct pipeline_ssm {
	char *region, *name;
};

struct pipeline_license {
	char *region;
	char **arns;                  /* NULL-terminated */
};

enum lc_action { LC_NONE = 0, LC_DEPRECATE, LC_DISABLE, LC_DELETE };

struct pipeline_lc_rule {
	enum lc_action action;
	int keep_last;                /* > 0: a count rule */
	int64_t older_than_s;         /* > 0: an age rule */
	int retain_at_least;          /* age rules: the newest N stay anyway */
	int line, col;
};

struct pipeline_kv {
	char *key, *value;
};

struct pipeline {
	char *path, *dir;             /* absolute */
	char *name;
	char *recipe;                 /* absolute */
	char **vars;                  /* "k=v", NULL-terminated */
	bool scheduled;
	char *expression;
	struct cron cron;
	enum pipeline_condition condition;
	char *state_dir, *builds_dir; /* absolute */
	char *profile;
	char **sns;                   /* topic ARNs, NULL-terminated */
	struct pipeline_webhook *webhooks;
	size_t nwebhooks;
	char ***commands;             /* argv vectors */
	size_t ncommands;
	struct pipeline_lt *lts;
	size_t nlts;
	struct pipeline_ssm *ssms;
	size_t nssms;
	struct pipeline_license *licenses;
	size_t nlicenses;
	char **lc_regions;            /* NULL-terminated, NULL when no lifecycle */
	struct pipeline_kv *lc_exclude;
	size_t nlc_exclude;
	struct pipeline_lc_rule lc_rules[PIPELINE_LC_RULES_MAX];
	size_t nlc_rules;
	struct ydoc doc;
};

/* True when the parsed YAML document is a pipeline file (its top level has
 * a "pipeline" key), so `amiforge validate` knows which parser to use. */
bool pipeline_doc_is_pipeline(const struct ydoc *doc);

/* Read and check a pipeline file (not the recipe it names: see
 * pipeline_check_recipe). NULL with "file:line:col: message" recorded. */
struct pipeline *pipeline_load(const char *path);
void pipeline_free(struct pipeline *p);

/* Parse and validate the pipeline's recipe (and its documents) as
 * `amiforge validate` does. 0 or -1. */
int pipeline_check_recipe(const struct pipeline *p);

/* "deprecate", "disable", "delete". */
const char *lc_action_name(enum lc_action a);

/* The region of an ARN ("arn:aws:sns:REGION:..."), or NULL. Caller frees. */
char *arn_region(const char *arn);

#endif
