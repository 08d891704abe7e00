/* admit.c: an untrusted disk's first look (see admit.h). */
#include <jansson.h>

#include "admit.h"
#include "error.h"
#include "log.h"
#include "util.h"

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const unsigned char *p)
{
	return (uint64_t)be32(p) << 32 | be32(p + 4);
}

const char *disk_admit_format(const char *f)
{
	return disk_format_name(f, true);
}

/* A VHD footer (512 bytes): "conectix" and a valid checksum (one's
 * complement of the byte sum, the checksum field counted as zero). */
static bool vhd_footer(const unsigned char *f, size_t n)
{
	uint32_t sum = 0;
	size_t i;

	if (n < 512 || memcmp(f, "conectix", 8) != 0)
		return false;
	for (i = 0; i < 512; i++)
		if (i < 64 || i >= 68)
			sum += f[i];
	return ~sum == be32(f + 64);
}

/* qemu's VMDK probe for a text descriptor: the first line that is not
 * blank or a comment is "version=N"; or it says what it is. */
static bool vmdk_descriptor(const unsigned char *h, size_t n)
{
	const char *p = (const char *)h, *end = p + n;

	if (n >= 21 && memcmp(h, "# Disk DescriptorFile", 21) == 0)
		return true;
	while (p < end) {
		if (*p == '#') {
			while (p < end && *p != '\n')
				p++;
			p++;
			continue;
		}
		if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
			p++;
			continue;
		}
		return end - p >= 9 && memcmp(p, "version=", 8) == 0 && p[8] >= '1' && p[8] <= '3';
	}
	return false;
}

/* What the head names, or NULL when it names nothing (raw, unless the tail
 * does). */
static const char *sniff_head(const unsigned char *h, size_t n)
{
	if (n >= 8 && memcmp(h, "QFI\xfb", 4) == 0)
		return be32(h + 4) == 1 ? "qcow" : "qcow2";
	if (n >= 4 && (memcmp(h, "KDMV", 4) == 0 || memcmp(h, "COWD", 4) == 0))
		return "vmdk";
	if (n >= 512 && memcmp(h, "conectix", 8) == 0)
		return "vpc";
	if (n >= 8 && memcmp(h, "vhdxfile", 8) == 0)
		return "vhdx";
	if (n >= 4 && memcmp(h, "QED", 4) == 0)
		return "qed";
	if (n >= 0x44 && get_le32(h + 0x40) == 0xbeda107f)
		return "vdi";
	if (n >= 6 && memcmp(h, "LUKS\xba\xbe", 6) == 0)
		return "luks";
	if (n >= 16 && (memcmp(h, "WithoutFreeSpace", 16) == 0 ||
			memcmp(h, "WithouFreSpacExt", 16) == 0))
		return "parallels";
	if (n >= 22 && memcmp(h, "Bochs Virtual HD Image", 22) == 0)
		return "bochs";
	if (n >= 21 && memcmp(h, "#!/bin/sh\n#V2.0 Format", 21) == 0)
		return "cloop";
	if (vmdk_descriptor(h, n))
		return "vmdk-descriptor";
	return NULL;
}

/* What the last sector names: a fixed VHD's footer, a DMG's trailer. */
static const char *sniff_tail(const unsigned char *t, size_t tn)
{
	if (vhd_footer(t, tn))
		return "vpc";
	if (tn >= 512 && memcmp(t, "koly", 4) == 0)
		return "dmg";
	return NULL;
}

const char *disk_sniff(const unsigned char *head, size_t n, const unsigned char *tail,
		       size_t tn)
{
	const char *h = sniff_head(head, n), *t = tail ? sniff_tail(tail, tn) : NULL;

	return h ? h : t ? t : "raw";
}

static const char *describe(const char *f)
{
	static const struct { const char *f, *what; } names[] = {
		{ "raw", "raw (no image header)" },
		{ "qcow2", "a qcow2 image" }, { "qcow", "a qcow (version 1) image" },
		{ "vmdk", "a VMDK image" }, { "vpc", "a VHD image" }, { "vhdx", "a VHDX image" },
		{ "qed", "a QED image" }, { "vdi", "a VDI image" },
		{ "luks", "a LUKS encrypted volume" }, { "parallels", "a Parallels image" },
		{ "bochs", "a Bochs image" }, { "cloop", "a cloop image" },
		{ "dmg", "a DMG image" }, { "vmdk-descriptor", "a VMDK descriptor (text)" },
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(names); i++)
		if (strcmp(f, names[i].f) == 0)
			return names[i].what;
	return f;
}

#define REFUSE(...) err_set("disk '%s' refused: " __VA_ARGS__)

#define DESCRIPTOR_WHY "a VMDK descriptor: its data is in the files it names, which " \
	"amiforge never follows (only a single self-contained VMDK is read)"

/* The header of a file that is fmt (qemu's name): nothing in it may make
 * qemu open another file. */
static int check_header(const char *path, const char *fmt, const unsigned char *h, size_t n,
			const unsigned char *t, size_t tn)
{
	if (strcmp(fmt, "qcow2") == 0) {
		uint32_t version = n >= 8 ? be32(h + 4) : 0;

		if (n < 72 || (version != 2 && version != 3) || (version == 3 && n < 104))
			return REFUSE("a qcow2 header amiforge does not read (version %u)", path,
				      (unsigned)version);
		if (be64(h + 8) != 0)
			return REFUSE("a qcow2 with a backing file (reading it would read "
				      "another file of this host)", path);
		if (version == 3 && (be64(h + 72) & (1u << 2)))
			return REFUSE("a qcow2 with an external data file (its data is another "
				      "file of this host)", path);
		if (be32(h + 32) != 0)
			return REFUSE("an encrypted qcow2", path);
	} else if (strcmp(fmt, "vmdk") == 0) {
		/* qemu reads a sparse VMDK of capacity 0 through the descriptor
		 * its header points at, extents and all. */
		if (n >= 36 && memcmp(h, "KDMV", 4) == 0 && get_le64(h + 12) == 0)
			return REFUSE("a VMDK whose header defers to a descriptor naming other "
				      "files (capacity 0)", path);
	} else if (strcmp(fmt, "vpc") == 0) {
		const unsigned char *f = n >= 512 && memcmp(h, "conectix", 8) == 0 ? h : t;

		if (f && (f == h || tn >= 512) && be32(f + 60) == 4)
			return REFUSE("a differencing VHD (its data is partly in a parent "
				      "disk)", path);
	}
	return 0;
}

int disk_admit_header(const char *path, const char *stated, const unsigned char *head,
		      size_t n, const unsigned char *tail, size_t tn, const char **format)
{
	const char *h = sniff_head(head, n), *t = tail ? sniff_tail(tail, tn) : NULL;
	const char *content = h ? h : t ? t : "raw", *fmt;

	*format = NULL;
	if (stated && strcmp(stated, "raw") == 0) {
		/* Read as raw, qemu reads this file and nothing else. */
		if (strcmp(content, "raw") != 0)
			log_warn("disk '%s': stated raw, but its content is %s: reading the file "
				 "itself as the disk, as stated", path, describe(content));
		*format = "raw";
		return 0;
	}
	if (strcmp(content, "vmdk-descriptor") == 0)
		return REFUSE(DESCRIPTOR_WHY, path);
	if (stated) {
		fmt = disk_admit_format(stated);
		if (!fmt)
			return err_set("disk '%s': unknown format '%s' (raw, qcow2, vmdk, vhd, "
				       "vhdx)", path, stated);
		if (strcmp(content, fmt) != 0)
			return REFUSE("stated %s, but its content is %s", path, stated,
				      describe(content));
	} else {
		fmt = disk_admit_format(content);
		if (!fmt)
			return REFUSE("its content is %s, which amiforge does not read (state "
				      "the format raw to read the file itself as a disk)", path,
				      describe(content));
		/* Head and tail naming different formats: which one is meant? */
		if (h && t && strcmp(h, t) != 0)
			return REFUSE("its start reads as %s and its end as %s: state its "
				      "format", path, describe(h), describe(t));
	}
	if (check_header(path, fmt, head, n, tail, tn) < 0)
		return -1;
	*format = fmt;
	return 0;
}

int disk_admit_info(const char *json, size_t len, const char *path, const char *format,
		    struct disk_info *di)
{
	json_t *root, *data, *v;
	int ret = -1;

	memset(di, 0, sizeof(*di));
	root = disk_info_load(json, len, path);
	if (!root)
		goto cleanup;
	v = json_object_get(root, "format");
	if (!json_is_string(v) || strcmp(json_string_value(v), format) != 0) {
		REFUSE("qemu-img reads it as %s, not %s", path,
		       json_is_string(v) ? json_string_value(v) : "nothing", format);
		goto cleanup;
	}
	if (json_object_get(root, "backing-filename") ||
	    json_object_get(root, "full-backing-filename")) {
		REFUSE("%s with a backing file (reading it would read another file of "
		       "this host)", path, describe(format));
		goto cleanup;
	}
	if (json_is_true(json_object_get(root, "encrypted"))) {
		REFUSE("%s, encrypted", path, describe(format));
		goto cleanup;
	}
	data = json_object_get(json_object_get(root, "format-specific"), "data");
	if (strcmp(format, "qcow2") == 0 && json_object_get(data, "data-file")) {
		REFUSE("a qcow2 with an external data file (its data is another file of this "
		       "host)", path);
		goto cleanup;
	}
	if (strcmp(format, "vmdk") == 0) {
		json_t *ext = json_object_get(data, "extents"), *e;
		const char *self = json_string_value(json_object_get(root, "filename"));
		size_t i;

		if (!json_is_array(ext) || json_array_size(ext) != 1) {
			REFUSE("a VMDK of %zu extents (only a single self-contained VMDK is read)",
			       path, json_is_array(ext) ? json_array_size(ext) : (size_t)0);
			goto cleanup;
		}
		json_array_foreach(ext, i, e) {
			const char *fn = json_string_value(json_object_get(e, "filename"));

			if (!fn || !self || strcmp(fn, self) != 0) {
				REFUSE("a VMDK whose data is in another file (only a single "
				       "self-contained VMDK is read)", path);
				goto cleanup;
			}
		}
	}
	if (disk_info_from_json(root, path, format, di) < 0)
		goto cleanup;
	ret = 0;
cleanup:
	json_decref(root);
	return ret;
}

int disk_admit(const char *path, const char *format, struct disk_info *di)
{
	unsigned char head[DISK_ADMIT_HEAD], tail[DISK_ADMIT_TAIL];
	size_t n = 0, tn = 0;
	const char *fmt;
	char *abs = NULL, *json = NULL;
	struct stat st;
	off_t size;
	ssize_t got;
	size_t jlen;
	int fd = -1, ret = -1;

	memset(di, 0, sizeof(*di));
	if (format && !disk_admit_format(format))
		return err_set("disk '%s': unknown format '%s' (raw, qcow2, vmdk, vhd, vhdx)",
			       path, format);
	abs = realpath(path, NULL);
	if (!abs)
		return err_errno("disk '%s'", path);
	/* O_NONBLOCK: a FIFO must not hang us; it is refused below. */
	fd = open(abs, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0 || fstat(fd, &st) < 0) {
		err_errno("disk '%s'", path);
		goto cleanup;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		REFUSE("not a regular file or block device", path);
		goto cleanup;
	}
	size = lseek(fd, 0, SEEK_END);
	if (size < 0) {
		err_errno("disk '%s'", path);
		goto cleanup;
	}
	got = pread(fd, head, sizeof(head), 0);
	if (got < 0) {
		err_errno("read disk '%s'", path);
		goto cleanup;
	}
	n = (size_t)got;
	if (size >= 2 * DISK_ADMIT_TAIL) {
		got = pread(fd, tail, sizeof(tail), size - DISK_ADMIT_TAIL);
		if (got < 0) {
			err_errno("read disk '%s'", path);
			goto cleanup;
		}
		tn = (size_t)got;
	}
	close(fd);
	fd = -1;
	if (disk_admit_header(path, format, head, n, tn ? tail : NULL, tn, &fmt) < 0)
		goto cleanup;
	/* The header is safe to hand to qemu: qemu-img info reads it as fmt
	 * and opens no backing file; what it reports is checked again. The
	 * absolute path: qemu never takes it for a protocol ("nbd:...", "json:"). */
	if (disk_info_json(abs, fmt, &json, &jlen) < 0)
		goto cleanup;
	if (disk_admit_info(json, jlen, path, fmt, di) < 0)
		goto cleanup;
	di->probed = !format;
	di->path = abs;
	abs = NULL;
	log_debug("disk '%s': admitted as %s%s", path, di->format, format ? " (stated)" : "");
	ret = 0;
cleanup:
	if (fd >= 0)
		close(fd);
	free(abs);
	free(json);
	return ret;
}
