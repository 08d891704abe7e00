/* Placeholder entry point until the agent lands (issue 3). */
#include "compat.h"

int main(void)
{
	fputs("amiforge-agent: not implemented yet\n", stderr);
	return 1;
}
