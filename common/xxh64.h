/* xxh64.h: XXH64 (Yann Collet's xxHash, 64-bit variant, as its
 * specification doc/xxhash_spec.md defines it), streaming. The bulk data
 * plane's transfer check (proto.h PROTO_BULK_*): under emulation (TCG) a
 * guest hashes SHA-256 at about 80-110 MB/s and XXH64 at about 3 GB/s, and
 * a transfer's check guards against a lost or misplaced block, not against
 * the guest, which could lie about either. libc only: the agent links it. */
#ifndef AMIFORGE_XXH64_H
#define AMIFORGE_XXH64_H

#include "compat.h"

struct xxh64 {
	uint64_t v[4];
	uint64_t total;
	uint8_t buf[32];
	size_t buffered;
	uint64_t seed;
};

void xxh64_init(struct xxh64 *x, uint64_t seed);
void xxh64_update(struct xxh64 *x, const void *data, size_t len);
uint64_t xxh64_final(const struct xxh64 *x);
/* The digest as it travels: 8 bytes, big-endian (the canonical form). */
void xxh64_bytes(uint64_t h, uint8_t out[8]);

#endif
