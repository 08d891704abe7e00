/* hash.c: MD5, SHA-1, SHA-256, SHA-512 for the agent.
 *
 * Why static libcrypto and not the kernel's AF_ALG sockets: AF_ALG needs
 * CONFIG_CRYPTO_USER_API_HASH, which hardened and container kernels leave
 * out (the test host's own kernel returns EAFNOSUPPORT), so the agent could
 * not verify transfers there. OpenSSL's low-level digest functions
 * (SHA256_Init & co., deprecated in 3.0 but still the plain block functions,
 * no provider machinery) link statically with --gc-sections for about 74 KiB:
 * measured with `make` on Debian 12, glibc-static baseline 674 536 bytes,
 * these four digests add 73 696. EVP would pull in the provider framework
 * (megabytes). */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/md5.h>
#include <openssl/sha.h>

#include "agent.h"
#include "error.h"

enum { H_MD5 = 1, H_SHA1, H_SHA256, H_SHA512 };

_Static_assert(sizeof(SHA512_CTX) <= 256 && sizeof(SHA256_CTX) <= 256 &&
	       sizeof(SHA_CTX) <= 256 && sizeof(MD5_CTX) <= 256,
	       "agent_hash is large enough for every context");

int hash_init(struct agent_hash *h, const char *algo)
{
	void *c = h->u.opaque;

	if (strcmp(algo, "md5") == 0) {
		h->algo = H_MD5;
		MD5_Init(c);
	} else if (strcmp(algo, "sha1") == 0) {
		h->algo = H_SHA1;
		SHA1_Init(c);
	} else if (strcmp(algo, "sha256") == 0) {
		h->algo = H_SHA256;
		SHA256_Init(c);
	} else if (strcmp(algo, "sha512") == 0) {
		h->algo = H_SHA512;
		SHA512_Init(c);
	} else {
		return err_set("unknown hash algorithm '%s' (md5, sha1, sha256, sha512)", algo);
	}
	return 0;
}

void hash_update(struct agent_hash *h, const void *p, size_t n)
{
	void *c = h->u.opaque;

	switch (h->algo) {
	case H_MD5: MD5_Update(c, p, n); break;
	case H_SHA1: SHA1_Update(c, p, n); break;
	case H_SHA256: SHA256_Update(c, p, n); break;
	case H_SHA512: SHA512_Update(c, p, n); break;
	}
}

size_t hash_final(struct agent_hash *h, uint8_t *out)
{
	void *c = h->u.opaque;

	switch (h->algo) {
	case H_MD5: MD5_Final(out, c); return MD5_DIGEST_LENGTH;
	case H_SHA1: SHA1_Final(out, c); return SHA_DIGEST_LENGTH;
	case H_SHA256: SHA256_Final(out, c); return SHA256_DIGEST_LENGTH;
	case H_SHA512: SHA512_Final(out, c); return SHA512_DIGEST_LENGTH;
	}
	return 0;
}

void hex_encode(const uint8_t *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}
