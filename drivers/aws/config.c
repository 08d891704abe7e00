/* config.c: ~/.aws/config and ~/.aws/credentials, profiles, region and
 * endpoints, resolved in the AWS CLI's order. */
#include <ctype.h>

#include "client.h"
#include "buf.h"
#include "error.h"
#include "log.h"
#include "util.h"

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

int aws_ini_load(struct aws_ini *ini, const char *path)
{
	struct buf b = BUF_INIT(AWS_INI_MAX);
	char *section = NULL, *line, *next;
	bool in_subsection = false;
	int lineno = 0, r = -1;

	memset(ini, 0, sizeof(*ini));
	if (access(path, F_OK) != 0)
		return 0;
	if (buf_read_file(&b, path) < 0)
		return -1;
	for (line = b.len ? b.data : NULL; line && *line; line = next) {
		char *eq, *s, *key, *val;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		s = trim(line);
		if (!*s || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			char *end = strchr(s, ']');
			if (!end) {
				err_set("%s:%d: section header without ']'", path, lineno);
				goto cleanup;
			}
			*end = '\0';
			free(section);
			section = xstrdup(trim(s + 1));
			in_subsection = false;
			continue;
		}
		if (line[0] == ' ' || line[0] == '\t') {
			if (in_subsection)
				continue;	/* "s3 =\n  max_concurrent_requests = 20" */
		}
		eq = strchr(s, '=');
		if (!eq || !section) {
			err_set("%s:%d: expected 'key = value' inside a [section]", path, lineno);
			goto cleanup;
		}
		*eq = '\0';
		key = trim(s);
		val = trim(eq + 1);
		if (!*val) {
			in_subsection = true;
			continue;
		}
		in_subsection = false;
		if (ini->n == ini->cap) {
			ini->cap = ini->cap ? ini->cap * 2 : 32;
			ini->kv = xrealloc(ini->kv, ini->cap * sizeof(*ini->kv));
		}
		ini->kv[ini->n].section = xstrdup(section);
		ini->kv[ini->n].key = xstrdup(key);
		ini->kv[ini->n].value = xstrdup(val);
		if (strcmp(key, "aws_secret_access_key") == 0 ||
		    strcmp(key, "aws_session_token") == 0)
			log_add_secret(val);
		ini->n++;
	}
	r = 0;
cleanup:
	free(section);
	if (b.data)
		explicit_bzero(b.data, b.len);
	buf_release(&b);
	if (r < 0)
		aws_ini_release(ini);
	return r;
}

void aws_ini_release(struct aws_ini *ini)
{
	size_t i;

	if (!ini)
		return;
	for (i = 0; i < ini->n; i++) {
		free(ini->kv[i].section);
		free(ini->kv[i].key);
		explicit_bzero(ini->kv[i].value, strlen(ini->kv[i].value));
		free(ini->kv[i].value);
	}
	free(ini->kv);
	memset(ini, 0, sizeof(*ini));
}

const char *aws_ini_get(const struct aws_ini *ini, const char *section, const char *key)
{
	size_t i;
	const char *v = NULL;

	/* The last assignment wins, as in configparser. */
	for (i = 0; i < ini->n; i++)
		if (strcmp(ini->kv[i].section, section) == 0 && strcmp(ini->kv[i].key, key) == 0)
			v = ini->kv[i].value;
	return v;
}

bool aws_ini_has_section(const struct aws_ini *ini, const char *section)
{
	size_t i;

	for (i = 0; i < ini->n; i++)
		if (strcmp(ini->kv[i].section, section) == 0)
			return true;
	return false;
}

static char *home_path(const char *env, const char *rel)
{
	const char *v = getenv(env), *home = getenv("HOME");

	if (v && *v) {
		if (v[0] == '~' && v[1] == '/' && home)
			return xasprintf("%s%s", home, v + 1);
		return xstrdup(v);
	}
	return xasprintf("%s/%s", home ? home : "/", rel);
}

int aws_config_load(struct aws_config *cfg, const char *profile)
{
	char *cpath = home_path("AWS_CONFIG_FILE", ".aws/config");
	char *kpath = home_path("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials");
	const char *envp = getenv("AWS_PROFILE");
	int r = -1;

	memset(cfg, 0, sizeof(*cfg));
	if (aws_ini_load(&cfg->config, cpath) < 0 ||
	    aws_ini_load(&cfg->credentials, kpath) < 0)
		goto cleanup;
	if (profile && *profile) {
		cfg->profile = xstrdup(profile);
		cfg->profile_explicit = true;
	} else if (envp && *envp) {
		cfg->profile = xstrdup(envp);
		cfg->profile_from_env = true;
	} else {
		cfg->profile = xstrdup("default");
	}
	if ((cfg->profile_explicit || cfg->profile_from_env) &&
	    !aws_profile_exists(cfg, cfg->profile)) {
		err_set("AWS profile '%s' not found in %s or %s", cfg->profile, cpath, kpath);
		goto cleanup;
	}
	r = 0;
cleanup:
	free(cpath);
	free(kpath);
	if (r < 0)
		aws_config_release(cfg);
	return r;
}

void aws_config_release(struct aws_config *cfg)
{
	if (!cfg)
		return;
	aws_ini_release(&cfg->config);
	aws_ini_release(&cfg->credentials);
	free(cfg->profile);
	memset(cfg, 0, sizeof(*cfg));
}

static const char *config_get(const struct aws_config *cfg, const char *profile, const char *key)
{
	char *sec;
	const char *v;

	/* config: [default] or [profile default] for the default profile,
	 * [profile x] for others. */
	sec = xasprintf("profile %s", profile);
	v = aws_ini_get(&cfg->config, sec, key);
	free(sec);
	if (!v && strcmp(profile, "default") == 0)
		v = aws_ini_get(&cfg->config, "default", key);
	return v;
}

const char *aws_profile_get(const struct aws_config *cfg, const char *profile, const char *key)
{
	const char *v = aws_ini_get(&cfg->credentials, profile, key);

	return v ? v : config_get(cfg, profile, key);
}

bool aws_profile_exists(const struct aws_config *cfg, const char *profile)
{
	char *sec = xasprintf("profile %s", profile);
	bool r = aws_ini_has_section(&cfg->credentials, profile) ||
		 aws_ini_has_section(&cfg->config, sec) ||
		 (strcmp(profile, "default") == 0 && aws_ini_has_section(&cfg->config, "default"));

	free(sec);
	return r;
}

int aws_parse_time(const char *s, int64_t *out)
{
	struct tm tm;
	const char *p;

	memset(&tm, 0, sizeof(tm));
	p = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
	if (!p)
		return err_set("invalid timestamp '%s'", s ? s : "");
	if (*p == '.')
		for (p++; isdigit((unsigned char)*p); p++)
			;
	if (strcmp(p, "Z") != 0 && strcmp(p, "+00:00") != 0 && strcmp(p, "") != 0 &&
	    strcmp(p, "UTC") != 0)
		return err_set("invalid timestamp '%s': expected UTC", s);
	*out = (int64_t)timegm(&tm);
	return 0;
}

int aws_split_command(const char *s, struct strv *out)
{
	struct buf w = BUF_INIT(64 * 1024);
	bool inword = false;
	const char *p = s;

	for (;;) {
		char c = *p;

		if (c == '\0' || c == ' ' || c == '\t' || c == '\n') {
			if (inword) {
				strv_push(out, w.data ? w.data : "");
				buf_reset(&w);
				inword = false;
			}
			if (c == '\0')
				break;
			p++;
			continue;
		}
		inword = true;
		if (c == '\\') {
			if (p[1] == '\0')
				goto bad;
			if (p[1] != '\n')
				buf_addc(&w, p[1]);
			p += 2;
		} else if (c == '\'') {
			const char *e = strchr(p + 1, '\'');
			if (!e)
				goto bad;
			if (buf_add(&w, p + 1, (size_t)(e - p - 1)) < 0)
				goto bad;
			p = e + 1;
		} else if (c == '"') {
			for (p++; *p && *p != '"'; p++) {
				if (*p == '\\' && p[1] && strchr("\\\"$`\n", p[1])) {
					p++;
					if (*p == '\n')
						continue;
				}
				if (buf_addc(&w, *p) < 0)
					goto bad;
			}
			if (*p != '"')
				goto bad;
			p++;
		} else {
			if (buf_addc(&w, c) < 0)
				goto bad;
			p++;
		}
	}
	buf_release(&w);
	if (out->n == 0)
		return err_set("credential_process is empty");
	return 0;
bad:
	buf_release(&w);
	strv_release(out);
	return err_set("credential_process: unterminated quote or trailing backslash");
}
