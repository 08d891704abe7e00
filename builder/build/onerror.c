/* onerror.c: --on-error modes and the ask prompt (see onerror.h). */
#include <ctype.h>

#include "onerror.h"
#include "error.h"
#include "util.h"

int onerror_parse_mode(const char *s, enum build_on_error *out)
{
	if (strcmp(s, "cleanup") == 0)
		*out = BUILD_ON_ERROR_CLEANUP;
	else if (strcmp(s, "abort") == 0)
		*out = BUILD_ON_ERROR_ABORT;
	else if (strcmp(s, "ask") == 0)
		*out = BUILD_ON_ERROR_ASK;
	else
		return err_set("--on-error '%s': expected cleanup, abort or ask", s);
	return 0;
}

int onerror_parse_answer(const char *line, enum component_on_fail *out)
{
	static const struct { const char *word; enum component_on_fail d; } answers[] = {
		{ "r", COMPONENT_RETRY }, { "retry", COMPONENT_RETRY },
		{ "c", COMPONENT_CONTINUE }, { "continue", COMPONENT_CONTINUE },
		{ "a", COMPONENT_ABORT }, { "abort", COMPONENT_ABORT },
	};
	size_t n, i;

	while (*line == ' ' || *line == '\t')
		line++;
	n = strlen(line);
	while (n && isspace((unsigned char)line[n - 1]))
		n--;
	for (i = 0; i < ARRAY_SIZE(answers); i++) {
		if (strlen(answers[i].word) == n && strncasecmp(line, answers[i].word, n) == 0) {
			*out = answers[i].d;
			return 0;
		}
	}
	return -1;
}

const char *onerror_decision_name(enum component_on_fail d)
{
	switch (d) {
	case COMPONENT_RETRY:
		return "retry";
	case COMPONENT_CONTINUE:
		return "continue";
	case COMPONENT_ABORT:
		return "abort";
	case COMPONENT_FAIL:
		break;
	}
	return "fail";
}

/* Read one line into line (at most ONERROR_LINE_MAX - 1 bytes kept; the rest
 * of a longer line is read and dropped). false at end of input. */
static bool read_line(FILE *in, char line[ONERROR_LINE_MAX])
{
	size_t n = 0;
	int c;

	while ((c = getc(in)) != EOF && c != '\n')
		if (n + 1 < ONERROR_LINE_MAX)
			line[n++] = (char)c;
	line[n] = '\0';
	return c != EOF || n > 0;
}

enum component_on_fail onerror_prompt(FILE *in, FILE *out, const char *step,
				      const char *failure, const char *hint)
{
	char line[ONERROR_LINE_MAX];
	enum component_on_fail d;
	int tries;

	char *safe = failure ? str_escape_ctl(failure, strlen(failure), true) : NULL;

	fprintf(out, "\namiforge: step %s failed%s%s\n", step, failure ? ": " : "",
		safe ? safe : "");
	free(safe);
	if (hint)
		fprintf(out, "%s", hint);
	for (tries = 0; tries < ONERROR_TRIES_MAX; tries++) {
		fprintf(out, "amiforge: [r]etry the step, [c]ontinue as if it passed, "
			     "[a]bort and keep the guest? ");
		fflush(out);
		if (!read_line(in, line)) {
			fprintf(out, "\namiforge: end of input: abort\n");
			return COMPONENT_ABORT;
		}
		if (onerror_parse_answer(line, &d) == 0)
			return d;
		fprintf(out, "amiforge: please answer r, c or a\n");
	}
	fprintf(out, "amiforge: no answer: abort\n");
	return COMPONENT_ABORT;
}
