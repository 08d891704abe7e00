/* Unit tests for builder/build/onerror.c: --on-error modes, the answers to the
 * ask prompt, and the prompt itself on memory streams (bad answers asked
 * again, end of input aborts). */
#include "test.h"
#include "error.h"
#include "util.h"
#include "builder/build/onerror.h"

static void test_modes(void)
{
	enum build_on_error m = BUILD_ON_ERROR_CLEANUP;

	CHECK(onerror_parse_mode("abort", &m) == 0 && m == BUILD_ON_ERROR_ABORT, "mode: abort");
	CHECK(onerror_parse_mode("ask", &m) == 0 && m == BUILD_ON_ERROR_ASK, "mode: ask");
	CHECK(onerror_parse_mode("cleanup", &m) == 0 && m == BUILD_ON_ERROR_CLEANUP,
	      "mode: cleanup");
	CHECK(onerror_parse_mode("Abort", &m) < 0 && strstr(err_msg(), "expected cleanup, abort or ask"),
	      "mode: case matters, clear error");
	CHECK(onerror_parse_mode("", &m) < 0, "mode: empty refused");
}

static void test_answers(void)
{
	static const struct { const char *in; int want; } cases[] = {
		{ "r", COMPONENT_RETRY }, { "retry", COMPONENT_RETRY }, { "RETRY", COMPONENT_RETRY },
		{ "  R \n", COMPONENT_RETRY }, { "c", COMPONENT_CONTINUE },
		{ "Continue\r\n", COMPONENT_CONTINUE }, { "\tc\t", COMPONENT_CONTINUE },
		{ "a", COMPONENT_ABORT }, { "abort", COMPONENT_ABORT }, { "ABORT ", COMPONENT_ABORT },
		{ "", -1 }, { "   ", -1 }, { "x", -1 }, { "re", -1 }, { "retryy", -1 },
		{ "r c", -1 }, { "yes", -1 }, { "abor", -1 }, { "continue!", -1 },
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		enum component_on_fail d = COMPONENT_FAIL;
		int r = onerror_parse_answer(cases[i].in, &d);

		CHECK(cases[i].want < 0 ? r < 0 : (r == 0 && (int)d == cases[i].want),
		      "answer: '%.*s' (case %zu)", (int)strcspn(cases[i].in, "\r\n"), cases[i].in, i);
	}
	CHECK_STR(onerror_decision_name(COMPONENT_RETRY), "retry", "answer: name retry");
	CHECK_STR(onerror_decision_name(COMPONENT_CONTINUE), "continue", "answer: name continue");
	CHECK_STR(onerror_decision_name(COMPONENT_ABORT), "abort", "answer: name abort");
}

/* Run the prompt with input text; *shown gets what it printed. */
static enum component_on_fail prompt_with(const char *input, char **shown)
{
	FILE *in = fmemopen((void *)input, strlen(input), "r");
	size_t len = 0;
	FILE *out = open_memstream(shown, &len);
	enum component_on_fail d = onerror_prompt(in, out, "doc/build/Step", "exit 3",
						  "HINT LINE\n");

	fclose(in);
	fclose(out);
	return d;
}

static void test_prompt(void)
{
	char *shown = NULL, *big;
	size_t i;

	CHECK(prompt_with("c\n", &shown) == COMPONENT_CONTINUE, "prompt: continue");
	CHECK(shown && strstr(shown, "step doc/build/Step failed: exit 3") &&
	      strstr(shown, "HINT LINE") && strstr(shown, "[r]etry"),
	      "prompt: names the step, the failure, the hint and the choices");
	free(shown);
	CHECK(prompt_with("what\n\nr\n", &shown) == COMPONENT_RETRY,
	      "prompt: bad answers are asked again");
	CHECK(shown && strstr(shown, "please answer r, c or a"), "prompt: says what it expects");
	free(shown);
	CHECK(prompt_with("", &shown) == COMPONENT_ABORT, "prompt: end of input aborts");
	free(shown);
	CHECK(prompt_with("maybe", &shown) == COMPONENT_ABORT,
	      "prompt: a bad last line then end of input aborts");
	free(shown);
	CHECK(prompt_with("a", &shown) == COMPONENT_ABORT, "prompt: answer without newline");
	free(shown);
	/* A line longer than the buffer is cut, not split into answers. */
	big = xmalloc(ONERROR_LINE_MAX * 4 + 3);
	for (i = 0; i < ONERROR_LINE_MAX * 4; i++)
		big[i] = i + 1 == ONERROR_LINE_MAX * 4 ? 'c' : ' ';
	memcpy(big + ONERROR_LINE_MAX * 4, "\nr", 3);
	CHECK(prompt_with(big, &shown) == COMPONENT_RETRY,
	      "prompt: an over-long line is one bad answer");
	free(shown);
	free(big);
	big = xmalloc(ONERROR_TRIES_MAX * 2 + 3);
	for (i = 0; i < ONERROR_TRIES_MAX; i++)
		memcpy(big + 2 * i, "x\n", 2);
	memcpy(big + 2 * ONERROR_TRIES_MAX, "c\n", 3);
	CHECK(prompt_with(big, &shown) == COMPONENT_ABORT,
	      "prompt: gives up after %d bad answers", ONERROR_TRIES_MAX);
	free(shown);
	free(big);
}

int main(void)
{
	test_modes();
	test_answers();
	test_prompt();
	return TEST_DONE();
}
