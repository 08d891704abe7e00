/* The kernel release read from a kernel image (see kver.h). Pure functions
 * over bytes: the caller brings the image in, bounded. */
#include <archive.h>
#include <archive_entry.h>

#include "kver.h"
#include "util.h"

#define BANNER "Linux version "
#define BANNER_LEN (sizeof(BANNER) - 1)
/* Candidates offered to the want predicate (each may cost a guest call). */
#define KVER_CANDIDATES_MAX 16
/* Decompressed bytes read at a time, and the overlap kept between reads so
 * that a banner cut in two is seen whole in the next window. */
#define KVER_CHUNK (64u * 1024)
#define KVER_OVERLAP (BANNER_LEN + KVER_MAX + 1)

static bool release_char(unsigned char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       ch == '.' || ch == '-' || ch == '_' || ch == '+' || ch == '~';
}

/* A release at p (at most avail bytes), ended by a blank (or a NUL when
 * nul_ends): its length, or 0 when p holds none or the bytes end first. */
static size_t release_len(const unsigned char *p, size_t avail, bool nul_ends)
{
	size_t n = 0;

	if (!avail || p[0] < '0' || p[0] > '9')
		return 0;
	while (n < avail && n < KVER_MAX - 1 && release_char(p[n]))
		n++;
	if (n >= avail)
		return 0;
	if (p[n] == ' ' || (nul_ends && p[n] == '\0'))
		return n;
	return 0;
}

int kver_from_bzimage(const unsigned char *data, size_t len, char *out, size_t cap)
{
	size_t ptr, n;

	/* The setup header: boot_flag 0xAA55 at 0x1FE, "HdrS" at 0x202, the
	 * protocol version at 0x206 (kernel_version exists from 2.00), the
	 * pointer at 0x20E. */
	if (len < 0x210 || data[0x1FE] != 0x55 || data[0x1FF] != 0xAA ||
	    memcmp(data + 0x202, "HdrS", 4) != 0)
		return -1;
	if ((data[0x206] | data[0x207] << 8) < 0x0200)
		return -1;
	ptr = (size_t)(data[0x20E] | data[0x20F] << 8);
	if (ptr == 0)
		return -1;
	ptr += 0x200;
	if (ptr >= len)
		return -1;
	n = release_len(data + ptr, len - ptr, true);
	if (!n || n + 1 > cap)
		return -1;
	memcpy(out, data + ptr, n);
	out[n] = '\0';
	return 0;
}

struct scan {
	bool (*want)(void *, const char *);
	void *opaque;
	char first[KVER_MAX];   /* the first candidate seen */
	char chosen[KVER_MAX];  /* the first one want accepted */
	int tried;
};

/* Look for banners in p[0..n). */
static void scan_bytes(struct scan *s, const unsigned char *p, size_t n)
{
	const unsigned char *q = p, *end = p + n;

	while (!s->chosen[0] && (q = memmem(q, (size_t)(end - q), BANNER, BANNER_LEN)) != NULL) {
		const unsigned char *r = q + BANNER_LEN;
		size_t k = release_len(r, (size_t)(end - r), false);
		char rel[KVER_MAX];

		q += BANNER_LEN;
		if (!k)
			continue;
		memcpy(rel, r, k);
		rel[k] = '\0';
		if (!s->first[0])
			snprintf(s->first, sizeof(s->first), "%s", rel);
		if (!s->want) {
			snprintf(s->chosen, sizeof(s->chosen), "%s", rel);
		} else if (s->tried < KVER_CANDIDATES_MAX) {
			s->tried++;
			if (s->want(s->opaque, rel))
				snprintf(s->chosen, sizeof(s->chosen), "%s", rel);
		}
	}
}

static int scan_result(const struct scan *s, char *out, size_t cap)
{
	const char *v = s->chosen[0] ? s->chosen : s->first;

	if (!v[0] || strlen(v) + 1 > cap)
		return -1;
	snprintf(out, cap, "%s", v);
	return 0;
}

int kver_from_banner(const unsigned char *data, size_t len,
		     bool (*want)(void *opaque, const char *release), void *opaque,
		     char *out, size_t cap)
{
	struct scan s;

	memset(&s, 0, sizeof(s));
	s.want = want;
	s.opaque = opaque;
	scan_bytes(&s, data, len);
	return scan_result(&s, out, cap);
}

/* Decompress data (any filter libarchive knows) and scan what comes out,
 * at most KVER_INFLATE_MAX bytes. -1 when the bytes are not compressed,
 * are corrupt before a banner was found, or hold none. */
static int scan_compressed(const unsigned char *data, size_t len, struct scan *s)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	unsigned char *win = xmalloc(KVER_OVERLAP + KVER_CHUNK);
	size_t keep = 0, total = 0;
	int ret = -1;

	archive_read_support_filter_all(a);
	archive_read_support_format_raw(a);
	if (archive_read_open_memory(a, data, len) != ARCHIVE_OK ||
	    archive_read_next_header(a, &e) != ARCHIVE_OK)
		goto cleanup;
	/* Only a real filter: "none" alone would scan the same bytes again. */
	if (archive_filter_count(a) < 2 || archive_filter_code(a, 0) == ARCHIVE_FILTER_NONE)
		goto cleanup;
	while (!s->chosen[0] && total < KVER_INFLATE_MAX) {
		la_ssize_t n = archive_read_data(a, win + keep, KVER_CHUNK);

		if (n <= 0)
			break;	/* end, or corrupt: what was scanned stands */
		total += (size_t)n;
		scan_bytes(s, win, keep + (size_t)n);
		keep += (size_t)n;
		if (keep > KVER_OVERLAP) {
			memmove(win, win + keep - KVER_OVERLAP, KVER_OVERLAP);
			keep = KVER_OVERLAP;
		}
	}
	ret = s->first[0] ? 0 : -1;

cleanup:
	archive_read_free(a);
	free(win);
	return ret;
}

int kver_from_image(const unsigned char *data, size_t len,
		    bool (*want)(void *opaque, const char *release), void *opaque,
		    char *out, size_t cap, const char **source)
{
	struct scan s;

	if (kver_from_bzimage(data, len, out, cap) == 0) {
		*source = "bzImage header";
		return 0;
	}
	memset(&s, 0, sizeof(s));
	s.want = want;
	s.opaque = opaque;
	scan_bytes(&s, data, len);
	if (scan_result(&s, out, cap) == 0) {
		*source = "banner";
		return 0;
	}
	/* EFI zboot (arm64, and others since 6.1): a PE stub with "zimg" at 4,
	 * the compressed payload's offset and size at 8 and 12. */
	if (len >= 16 && data[0] == 'M' && data[1] == 'Z' && memcmp(data + 4, "zimg", 4) == 0) {
		uint32_t off = get_le32(data + 8), size = get_le32(data + 12);

		if (off < len && size <= len - off && size > 0 &&
		    scan_compressed(data + off, size, &s) == 0 && scan_result(&s, out, cap) == 0) {
			*source = "EFI zboot banner";
			return 0;
		}
		return -1;
	}
	if (scan_compressed(data, len, &s) == 0 && scan_result(&s, out, cap) == 0) {
		*source = "compressed banner";
		return 0;
	}
	return -1;
}
