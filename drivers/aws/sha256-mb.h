/* sha256-mb.h: SHA-256 of many messages of one length at once (EBS direct's
 * 512 KiB blocks). With AVX-512 (x86-64), 16 messages go through the rounds
 * together, one per 32-bit lane: 3.0 GB/s on one core of this EPYC, where
 * OpenSSL's SHA extensions give 1.75. Elsewhere, for fewer than 10 messages
 * or for lengths that are not a multiple of 64 bytes, one after the other
 * through OpenSSL. Same digests either way (tests/unit/test-aws.c compares
 * them). */
#ifndef AMIFORGE_SHA256_MB_H
#define AMIFORGE_SHA256_MB_H

#include <stdbool.h>
#include <stddef.h>

/* Is the 16-lane code used (AVX-512 present, AMIFORGE_NO_SHA256_MB unset)? */
bool sha256_mb_fast(void);
/* md[i] = SHA-256 of the len bytes at data[i], for i < n. */
void sha256_mb(const unsigned char *const *data, size_t n, size_t len, unsigned char (*md)[32]);

#endif
