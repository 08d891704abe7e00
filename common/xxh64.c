/* xxh64.c: XXH64, after its specification (xxh64.h). */
#include "xxh64.h"
#include "util.h"

#define P1 0x9E3779B185EBCA87ULL
#define P2 0xC2B2AE3D27D4EB4FULL
#define P3 0x165667B19E3779F9ULL
#define P4 0x85EBCA77C2B2AE63ULL
#define P5 0x27D4EB2F165667C5ULL

/* always_inline: GCC inlines nothing into a function compiled with other
 * options (stripes) otherwise. clang (the fuzz build) has no per-function
 * optimize attribute. */
#define HOT static inline __attribute__((always_inline))
#if defined(__GNUC__) && !defined(__clang__)
#define SPEED __attribute__((optimize("O2")))
#else
#define SPEED
#endif

HOT uint64_t rotl(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

/* One load, where get_le64's byte loads would be eight under -Os. */
HOT uint64_t le64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

HOT uint64_t round1(uint64_t acc, uint64_t lane)
{
	return rotl(acc + lane * P2, 31) * P1;
}

static uint64_t merge(uint64_t acc, uint64_t v)
{
	return (acc ^ round1(0, v)) * P1 + P4;
}

/* The stripes of 32 bytes in p[0..len), len a multiple of 32. The hot loop
 * of every digest (the agent hashes each bulk transfer under TCG, where
 * every memory access the compiler keeps costs): the lanes stay in locals
 * (p, read as bytes, may alias v), and it is compiled for speed even in
 * the agent's -Os build (7x there). */
SPEED
static void stripes(uint64_t v[4], const uint8_t *p, size_t len)
{
	uint64_t a = v[0], b = v[1], c = v[2], d = v[3];

	for (; len >= 32; p += 32, len -= 32) {
		a = round1(a, le64(p));
		b = round1(b, le64(p + 8));
		c = round1(c, le64(p + 16));
		d = round1(d, le64(p + 24));
	}
	v[0] = a;
	v[1] = b;
	v[2] = c;
	v[3] = d;
}

void xxh64_init(struct xxh64 *x, uint64_t seed)
{
	memset(x, 0, sizeof(*x));
	x->seed = seed;
	x->v[0] = seed + P1 + P2;
	x->v[1] = seed + P2;
	x->v[2] = seed;
	x->v[3] = seed - P1;
}

void xxh64_update(struct xxh64 *x, const void *data, size_t len)
{
	const uint8_t *p = data;

	x->total += len;
	if (x->buffered) {
		size_t n = 32 - x->buffered < len ? 32 - x->buffered : len;

		memcpy(x->buf + x->buffered, p, n);
		x->buffered += n;
		p += n;
		len -= n;
		if (x->buffered < 32)
			return;
		stripes(x->v, x->buf, 32);
		x->buffered = 0;
	}
	stripes(x->v, p, len & ~(size_t)31);
	p += len & ~(size_t)31;
	len &= 31;
	if (len) {
		memcpy(x->buf, p, len);
		x->buffered = len;
	}
}

uint64_t xxh64_final(const struct xxh64 *x)
{
	const uint8_t *p = x->buf, *end = x->buf + x->buffered;
	uint64_t h;

	if (x->total >= 32) {
		h = rotl(x->v[0], 1) + rotl(x->v[1], 7) + rotl(x->v[2], 12) + rotl(x->v[3], 18);
		h = merge(h, x->v[0]);
		h = merge(h, x->v[1]);
		h = merge(h, x->v[2]);
		h = merge(h, x->v[3]);
	} else {
		h = x->seed + P5;
	}
	h += x->total;
	for (; p + 8 <= end; p += 8)
		h = rotl(h ^ round1(0, get_le64(p)), 27) * P1 + P4;
	if (p + 4 <= end) {
		h = rotl(h ^ (uint64_t)get_le32(p) * P1, 23) * P2 + P3;
		p += 4;
	}
	for (; p < end; p++)
		h = rotl(h ^ (uint64_t)*p * P5, 11) * P1;
	h ^= h >> 33;
	h *= P2;
	h ^= h >> 29;
	h *= P3;
	h ^= h >> 32;
	return h;
}

void xxh64_bytes(uint64_t h, uint8_t out[8])
{
	int i;

	for (i = 0; i < 8; i++)
		out[i] = (uint8_t)(h >> (56 - 8 * i));
}
