/* libFuzzer target: the records amiforge reads back from disk, which a
 * crash, a full disk, another version or another user may have left torn or
 * altered: the resource journal (journal_load), a cache record
 * (cache_record_load), a build's checkpoints/state.json (ckpt_state_load)
 * and a checkpoint record read by prune (ckpt_prune, dry run). The first
 * byte selects which; the rest is the file. Nothing may crash, hang or leak. */
#include "fuzz.h"
#include "builder/base/cache.h"
#include "builder/build/checkpoint.h"
#include "builder/build/journal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;
	const char *p;

	if (!init) {
		char *d = xasprintf("%s/build", fuzz_dir()), *c = xasprintf("%s/checkpoints", d);

		mkdir(d, 0700);
		mkdir(c, 0700);
		free(c);
		free(d);
		init = true;
	}
	if (size == 0)
		return 0;
	switch (data[0] % 4) {
	case 0: {
		struct journal_entry *e;
		size_t n;

		p = fuzz_file("journal", data + 1, size - 1);
		if (journal_load(p, &e, &n) == 0)
			journal_entries_free(e, n);
		journal_live_count(p);
		break;
	}
	case 1: {
		struct cache_record rec;

		memset(&rec, 0, sizeof(rec));
		p = fuzz_file("record.json", data + 1, size - 1);
		if (cache_record_load(p, &rec) > 0)
			cache_record_release(&rec);
		break;
	}
	case 2: {
		char *recipe = NULL, *b = xasprintf("%s/build", fuzz_dir());
		struct strv vars = STRV_INIT;

		fuzz_file("build/checkpoints/state.json", data + 1, size - 1);
		ckpt_state_load(b, &recipe, &vars);
		free(recipe);
		strv_release(&vars);
		free(b);
		break;
	}
	default: {
		char *cache = xasprintf("%s/build", fuzz_dir());
		size_t files = 0;
		uint64_t bytes = 0;
		FILE *f = fopen("/dev/null", "w");

		fuzz_file("build/checkpoints/k.json", data + 1, size - 1);
		ckpt_prune(cache, 0, true, f, &files, &bytes);
		if (f)
			fclose(f);
		free(cache);
		break;
	}
	}
	err_clear();
	return 0;
}
