/* sha256-mb.c: SHA-256 of up to 16 messages of one length at once, one
 * message per 32-bit lane of AVX-512 registers (sha256-mb.h). */
#include <pthread.h>

#include "sha256-mb.h"
#include "sigv4.h"
#include "util.h"

/* Messages left at which the 16 lanes beat OpenSSL's SHA extensions
 * (3.0 against 1.75 GB/s on the EPYC this was measured on: 16 lanes cost
 * about 9 messages' time). The loops below are unrolled by pragma so that
 * the rows, words and state stay in registers at -O2 (2.7 -> 3.0 GB/s). */
#define SHA256_MB_MIN 10

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

static const uint32_t K[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static const uint32_t H0[8] = {
	0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};


#define AVX512 __attribute__((target("avx512f,avx512bw")))

/* 16 rows of 16 dwords (one 64-byte block per lane) into 16 columns: w[t]
 * holds word t of every lane, byte-swapped to big-endian words. */
AVX512 static inline __attribute__((always_inline)) void load_transpose(const unsigned char *const p[16], size_t off,
					 __m512i w[16])
{
	const __m512i bswap = _mm512_set4_epi32(0x0c0d0e0f, 0x08090a0b, 0x04050607, 0x00010203);
	__m512i r[16], t[16];
	int i;

#pragma GCC unroll 16
	for (i = 0; i < 16; i++)
		r[i] = _mm512_loadu_si512((const void *)(p[i] + off));
	/* 32-bit interleave, then 64-bit, then 128-bit lanes twice. */
#pragma GCC unroll 16
	for (i = 0; i < 16; i += 2) {
		t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
		t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
	}
#pragma GCC unroll 16
	for (i = 0; i < 16; i += 4) {
		r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
		r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
		r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
		r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
	}
	/* r[4k + j] now holds, in each 128-bit lane L, the dwords j of rows
	 * 4k..4k+3 of the 128-bit lane L: word 4L + j of those rows. */
#pragma GCC unroll 16
	for (i = 0; i < 4; i++) {
		__m512i a = r[i], b = r[4 + i], c = r[8 + i], d = r[12 + i];
		__m512i ab_lo = _mm512_shuffle_i32x4(a, b, 0x44);   /* a0 a1 b0 b1 */
		__m512i ab_hi = _mm512_shuffle_i32x4(a, b, 0xee);   /* a2 a3 b2 b3 */
		__m512i cd_lo = _mm512_shuffle_i32x4(c, d, 0x44);
		__m512i cd_hi = _mm512_shuffle_i32x4(c, d, 0xee);

		t[i] = _mm512_shuffle_i32x4(ab_lo, cd_lo, 0x88);       /* a0 b0 c0 d0 */
		t[4 + i] = _mm512_shuffle_i32x4(ab_lo, cd_lo, 0xdd);   /* a1 b1 c1 d1 */
		t[8 + i] = _mm512_shuffle_i32x4(ab_hi, cd_hi, 0x88);   /* a2 b2 c2 d2 */
		t[12 + i] = _mm512_shuffle_i32x4(ab_hi, cd_hi, 0xdd);  /* a3 b3 c3 d3 */
	}
#pragma GCC unroll 16
	for (i = 0; i < 16; i++)
		w[i] = _mm512_shuffle_epi8(t[i], bswap);
}

#define ROR(x, n) _mm512_ror_epi32((x), (n))
#define XOR3(a, b, c) _mm512_ternarylogic_epi32((a), (b), (c), 0x96)
#define CH(e, f, g) _mm512_ternarylogic_epi32((e), (f), (g), 0xca)
#define MAJ(a, b, c) _mm512_ternarylogic_epi32((a), (b), (c), 0xe8)
#define BSIG0(x) XOR3(ROR(x, 2), ROR(x, 13), ROR(x, 22))
#define BSIG1(x) XOR3(ROR(x, 6), ROR(x, 11), ROR(x, 25))
#define SSIG0(x) XOR3(ROR(x, 7), ROR(x, 18), _mm512_srli_epi32((x), 3))
#define SSIG1(x) XOR3(ROR(x, 17), ROR(x, 19), _mm512_srli_epi32((x), 10))
#define ADD(a, b) _mm512_add_epi32((a), (b))

/* One 64-byte block per lane into the state s[8]. */
AVX512 static inline __attribute__((always_inline)) void compress(__m512i s[8], __m512i w[16])
{
	__m512i a = s[0], b = s[1], c = s[2], d = s[3], e = s[4], f = s[5], g = s[6], h = s[7];
	int t;

#pragma GCC unroll 64
	for (t = 0; t < 64; t++) {
		__m512i wt, t1, t2;

		if (t < 16) {
			wt = w[t];
		} else {
			wt = ADD(ADD(SSIG1(w[(t - 2) & 15]), w[(t - 7) & 15]),
				 ADD(SSIG0(w[(t - 15) & 15]), w[t & 15]));
			w[t & 15] = wt;
		}
		t1 = ADD(ADD(h, BSIG1(e)), ADD(CH(e, f, g), ADD(wt, _mm512_set1_epi32((int)K[t]))));
		t2 = ADD(BSIG0(a), MAJ(a, b, c));
		h = g;
		g = f;
		f = e;
		e = ADD(d, t1);
		d = c;
		c = b;
		b = a;
		a = ADD(t1, t2);
	}
	s[0] = ADD(s[0], a);
	s[1] = ADD(s[1], b);
	s[2] = ADD(s[2], c);
	s[3] = ADD(s[3], d);
	s[4] = ADD(s[4], e);
	s[5] = ADD(s[5], f);
	s[6] = ADD(s[6], g);
	s[7] = ADD(s[7], h);
}

AVX512 static void sha256_x16(const unsigned char *const p[16], size_t len,
			      unsigned char md[16][32])
{
	uint32_t out[8][16];
	__m512i s[8], w[16];
	size_t off;
	uint64_t bits = (uint64_t)len * 8;
	int i, j;

#pragma GCC unroll 8
	for (i = 0; i < 8; i++)
		s[i] = _mm512_set1_epi32((int)H0[i]);
	for (off = 0; off + 64 <= len; off += 64) {
		load_transpose(p, off, w);
		compress(s, w);
	}
	/* The padding block (len is a multiple of 64): 0x80, zeros, the length. */
	w[0] = _mm512_set1_epi32((int)0x80000000u);
#pragma GCC unroll 16
	for (i = 1; i < 14; i++)
		w[i] = _mm512_setzero_si512();
	w[14] = _mm512_set1_epi32((int)(uint32_t)(bits >> 32));
	w[15] = _mm512_set1_epi32((int)(uint32_t)bits);
	compress(s, w);
#pragma GCC unroll 8
	for (i = 0; i < 8; i++)
		_mm512_storeu_si512((void *)out[i], s[i]);
	for (j = 0; j < 16; j++) {
#pragma GCC unroll 8
		for (i = 0; i < 8; i++) {
			md[j][4 * i] = (unsigned char)(out[i][j] >> 24);
			md[j][4 * i + 1] = (unsigned char)(out[i][j] >> 16);
			md[j][4 * i + 2] = (unsigned char)(out[i][j] >> 8);
			md[j][4 * i + 3] = (unsigned char)out[i][j];
		}
	}
}

static bool have_mb;
static pthread_once_t have_once = PTHREAD_ONCE_INIT;

static void have_init(void)
{
	__builtin_cpu_init();
	have_mb = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
		  !getenv("AMIFORGE_NO_SHA256_MB");
}
#else	/* not x86-64: OpenSSL only */
static bool have_mb;
static pthread_once_t have_once = PTHREAD_ONCE_INIT;

static void have_init(void)
{
}

static void sha256_x16(const unsigned char *const p[16], size_t len, unsigned char md[16][32])
{
	(void)p;
	(void)len;
	(void)md;
}
#endif

bool sha256_mb_fast(void)
{
	pthread_once(&have_once, have_init);
	return have_mb;
}

void sha256_mb(const unsigned char *const *data, size_t n, size_t len, unsigned char (*md)[32])
{
	size_t i;

	i = 0;
	if (sha256_mb_fast() && len % 64 == 0) {
		/* 16 lanes cost ~10 messages through OpenSSL: fewer go there. */
		while (n - i >= SHA256_MB_MIN) {
			const unsigned char *p[16];
			unsigned char out[16][32];
			size_t k, m = n - i < 16 ? n - i : 16;

			for (k = 0; k < 16; k++)
				p[k] = data[i + (k < m ? k : 0)];
			sha256_x16(p, len, out);
			for (k = 0; k < m; k++)
				memcpy(md[i + k], out[k], 32);
			i += m;
		}
	}
	for (; i < n; i++)
		sigv4_sha256(data[i], len, md[i]);
}
