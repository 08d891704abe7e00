/* The kernel release read from kernel images (builder/inspect/kver.c), over
 * crafted bytes: x86 setup headers good, truncated and with bogus offsets;
 * banners plain, compressed, in an EFI zboot stub, cut and absent. */
#include <archive.h>
#include <archive_entry.h>

#include "builder/inspect/kver.h"
#include "test.h"

#define REL "6.1.0-28-cloud-amd64"

/* A bzImage-like header: boot flag, "HdrS", protocol 2.15, the version
 * pointer (string at ptr + 0x200). */
static unsigned char *bzimage(size_t len, unsigned ptr, const char *str)
{
	unsigned char *d = calloc(1, len);

	d[0x1FE] = 0x55;
	d[0x1FF] = 0xAA;
	memcpy(d + 0x202, "HdrS", 4);
	d[0x206] = 0x0F;
	d[0x207] = 0x02;
	d[0x20E] = (unsigned char)(ptr & 0xff);
	d[0x20F] = (unsigned char)(ptr >> 8);
	if (str && ptr + 0x200 + strlen(str) <= len)
		memcpy(d + ptr + 0x200, str, strlen(str));
	return d;
}

/* The bytes compressed with one libarchive filter (raw format). */
static unsigned char *compress(const unsigned char *in, size_t n, int filter, size_t *out_len)
{
	struct archive *a = archive_write_new();
	struct archive_entry *e = archive_entry_new();
	size_t cap = n + 65536, used = 0;
	unsigned char *out = malloc(cap);

	archive_write_add_filter(a, filter);
	archive_write_set_format_raw(a);
	archive_write_set_bytes_in_last_block(a, 1);
	archive_write_open_memory(a, out, cap, &used);
	archive_entry_set_pathname(e, "image");
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_size(e, (la_int64_t)n);
	archive_write_header(a, e);
	archive_write_data(a, in, n);
	archive_write_close(a);
	archive_write_free(a);
	archive_entry_free(e);
	*out_len = used;
	return out;
}

/* An image of n bytes of noise-like text with the banner at off. */
static unsigned char *image_with_banner(size_t n, size_t off, const char *banner)
{
	unsigned char *d = malloc(n);

	for (size_t i = 0; i < n; i++)
		d[i] = (unsigned char)("abcdefgh\n "[i % 10]);
	if (banner)
		memcpy(d + off, banner, strlen(banner));
	return d;
}

static bool want_second(void *opaque, const char *rel)
{
	(void)opaque;
	return strcmp(rel, "6.12.9-arm64") == 0;
}

int main(void)
{
	char v[KVER_MAX];
	const char *src = NULL;
	unsigned char *d, *z;
	size_t zn;

	/* --- x86 setup header ------------------------------------------- */
	d = bzimage(0x4000, 0x3000 - 0x200, REL " (debian-kernel@lists.debian.org) #1 SMP");
	CHECK(kver_from_bzimage(d, 0x4000, v, sizeof(v)) == 0, "bzImage: header version read");
	CHECK_STR(v, REL, "bzImage: the release is the first word");
	CHECK(kver_from_image(d, 0x4000, NULL, NULL, v, sizeof(v), &src) == 0 &&
	      strcmp(src, "bzImage header") == 0, "bzImage: kver_from_image says where");
	CHECK(kver_from_bzimage(d, 0x20F, v, sizeof(v)) < 0, "bzImage: truncated before the pointer");
	CHECK(kver_from_bzimage(d, 0x3000 + 5, v, sizeof(v)) < 0,
	      "bzImage: string cut by the end of the bytes");
	CHECK(kver_from_bzimage(d, 0x4000, v, 8) < 0, "bzImage: release longer than the buffer");
	free(d);
	d = bzimage(0x4000, 0xFFFF, NULL);
	CHECK(kver_from_bzimage(d, 0x4000, v, sizeof(v)) < 0, "bzImage: pointer past the end");
	free(d);
	d = bzimage(0x4000, 0, NULL);
	CHECK(kver_from_bzimage(d, 0x4000, v, sizeof(v)) < 0, "bzImage: null pointer");
	free(d);
	d = bzimage(0x4000, 0x100, "\x1b[31mevil (x)");
	CHECK(kver_from_bzimage(d, 0x4000, v, sizeof(v)) < 0, "bzImage: non-release bytes refused");
	free(d);
	d = bzimage(0x4000, 0x100, "6.1.0-1-amd64");	/* NUL-terminated, no blank */
	CHECK(kver_from_bzimage(d, 0x4000, v, sizeof(v)) == 0 && strcmp(v, "6.1.0-1-amd64") == 0,
	      "bzImage: release ended by its NUL");
	free(d);
	d = calloc(1, 0x400);
	memset(d + 0x100, '6', 0x300);
	d[0x1FE] = 0x55;
	d[0x1FF] = 0xAA;
	memcpy(d + 0x202, "HdrX", 4);
	CHECK(kver_from_bzimage(d, 0x400, v, sizeof(v)) < 0, "bzImage: no HdrS magic");
	free(d);
	d = bzimage(0x4000, 0x100, "1234567890123456789012345678901234567890123456789012345678901234567890 x");
	CHECK(kver_from_bzimage(d, 0x4000, v, sizeof(v)) < 0, "bzImage: release over 64 bytes refused");
	free(d);

	/* --- banners ---------------------------------------------------- */
	d = image_with_banner(200000, 123457, "Linux version 6.12.9-arm64 (debian-kernel@x) #1");
	CHECK(kver_from_banner(d, 200000, NULL, NULL, v, sizeof(v)) == 0 &&
	      strcmp(v, "6.12.9-arm64") == 0, "banner: plain arm64 Image");
	CHECK(kver_from_image(d, 200000, NULL, NULL, v, sizeof(v), &src) == 0 &&
	      strcmp(src, "banner") == 0, "banner: kver_from_image over a plain Image");
	CHECK(kver_from_banner(d, 123457 + 20, NULL, NULL, v, sizeof(v)) < 0,
	      "banner: release cut by the end of the bytes");
	free(d);
	d = image_with_banner(4096, 100, "Linux version %s (format string)");
	CHECK(kver_from_banner(d, 4096, NULL, NULL, v, sizeof(v)) < 0, "banner: format string is no release");
	free(d);
	d = image_with_banner(4096, 100, "Linux version 5.10.0-1-arm64 Linux version 6.12.9-arm64 (x)");
	CHECK(kver_from_banner(d, 4096, want_second, NULL, v, sizeof(v)) == 0 &&
	      strcmp(v, "6.12.9-arm64") == 0, "banner: the candidate with modules wins");
	CHECK(kver_from_banner(d, 4096, NULL, NULL, v, sizeof(v)) == 0 &&
	      strcmp(v, "5.10.0-1-arm64") == 0, "banner: else the first");
	free(d);

	/* compressed: the whole file (gzip, xz), the banner past the first
	 * 64 KiB chunk and across a chunk boundary. */
	d = image_with_banner(3u << 20, (2u << 20) - 7, "Linux version 6.12.9-arm64 (gcc) #1");
	z = compress(d, 3u << 20, ARCHIVE_FILTER_GZIP, &zn);
	CHECK(zn > 0 && zn < (3u << 20), "banner: gzip image made (%zu bytes)", zn);
	src = NULL;
	CHECK(kver_from_image(z, zn, NULL, NULL, v, sizeof(v), &src) == 0 &&
	      strcmp(v, "6.12.9-arm64") == 0 && strcmp(src, "compressed banner") == 0,
	      "banner: inside a gzip arm64 vmlinuz, across a chunk boundary");
	CHECK(kver_from_image(z, zn / 2, NULL, NULL, v, sizeof(v), &src) < 0,
	      "banner: truncated gzip before the banner");
	{
		/* EFI zboot: "MZ", "zimg", payload offset and size. */
		size_t off = 4096, n = off + zn;
		unsigned char *pe = calloc(1, n);

		pe[0] = 'M';
		pe[1] = 'Z';
		memcpy(pe + 4, "zimg", 4);
		pe[8] = (unsigned char)(off & 0xff);
		pe[9] = (unsigned char)(off >> 8);
		pe[12] = (unsigned char)(zn & 0xff);
		pe[13] = (unsigned char)(zn >> 8);
		pe[14] = (unsigned char)(zn >> 16);
		pe[15] = (unsigned char)(zn >> 24);
		memcpy(pe + off, z, zn);
		CHECK(kver_from_image(pe, n, NULL, NULL, v, sizeof(v), &src) == 0 &&
		      strcmp(v, "6.12.9-arm64") == 0 && strcmp(src, "EFI zboot banner") == 0,
		      "banner: EFI zboot payload");
		pe[15] = 0x7f;	/* size past the end */
		CHECK(kver_from_image(pe, n, NULL, NULL, v, sizeof(v), &src) < 0,
		      "banner: EFI zboot with a bogus payload size");
		pe[15] = (unsigned char)(zn >> 24);
		pe[9] = 0xff;
		pe[10] = 0xff;
		pe[11] = 0xff;	/* offset past the end */
		CHECK(kver_from_image(pe, n, NULL, NULL, v, sizeof(v), &src) < 0,
		      "banner: EFI zboot with a bogus payload offset");
		free(pe);
	}
	free(z);
	z = compress(d, 3u << 20, ARCHIVE_FILTER_XZ, &zn);
	CHECK(kver_from_image(z, zn, NULL, NULL, v, sizeof(v), &src) == 0 &&
	      strcmp(v, "6.12.9-arm64") == 0, "banner: inside an xz image");
	free(z);
	free(d);
	d = image_with_banner(1u << 20, 0, NULL);
	z = compress(d, 1u << 20, ARCHIVE_FILTER_GZIP, &zn);
	CHECK(kver_from_image(z, zn, NULL, NULL, v, sizeof(v), &src) < 0,
	      "banner: compressed image without one");
	CHECK(kver_from_image(d, 1u << 20, NULL, NULL, v, sizeof(v), &src) < 0,
	      "banner: plain bytes without one");
	free(z);
	free(d);
	CHECK(kver_from_image((const unsigned char *)"", 0, NULL, NULL, v, sizeof(v), &src) < 0,
	      "empty image");
	return TEST_DONE();
}
