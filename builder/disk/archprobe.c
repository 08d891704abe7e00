/* archprobe.c: a disk's architecture from its partition table, else from
 * its binaries (archprobe.h). */
#include "archprobe.h"
#include "appliance.h"
#include "blockread.h"
#include "error.h"
#include "log.h"
#include "util.h"

#define SECTOR 512u
/* GPT entries examined (the usual array holds 128). */
#define GPT_ENTRIES_MAX 128u
/* What a GPT without an architecture's partition type leaves open. */
#define GPT_UNDECIDED "a GPT without an architecture's partition type"


/* A partition type GUID as it is stored (the first three fields little-endian). */
struct gpt_type {
	unsigned char guid[16];
	enum arch_id arch;
	const char *what;
};

static const struct gpt_type gpt_types[] = {
	/* 21686148-6449-6E6F-744E-656564454649 */
	{ { 0x48, 0x61, 0x68, 0x21, 0x49, 0x64, 0x6f, 0x6e, 0x74, 0x4e, 0x65, 0x65, 0x64, 0x45,
	    0x46, 0x49 }, ARCH_X86_64, "a BIOS boot partition" },
	/* 4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709 */
	{ { 0xe3, 0xbc, 0x68, 0x4f, 0xcd, 0xe8, 0xb1, 0x4d, 0x96, 0xe7, 0xfb, 0xca, 0xf9, 0x84,
	    0xb7, 0x09 }, ARCH_X86_64, "an x86-64 root partition" },
	/* 8484680C-9521-48C6-9C11-B0720656F69E */
	{ { 0x0c, 0x68, 0x84, 0x84, 0x21, 0x95, 0xc6, 0x48, 0x9c, 0x11, 0xb0, 0x72, 0x06, 0x56,
	    0xf6, 0x9e }, ARCH_X86_64, "an x86-64 /usr partition" },
	/* B921B045-1DF0-41C3-AF44-4C6F280D3FAE */
	{ { 0x45, 0xb0, 0x21, 0xb9, 0xf0, 0x1d, 0xc3, 0x41, 0xaf, 0x44, 0x4c, 0x6f, 0x28, 0x0d,
	    0x3f, 0xae }, ARCH_AARCH64, "an arm64 root partition" },
	/* B0E01050-EE5F-4390-949A-9101B17104E9 */
	{ { 0x50, 0x10, 0xe0, 0xb0, 0x5f, 0xee, 0x90, 0x43, 0x94, 0x9a, 0x91, 0x01, 0xb1, 0x71,
	    0x04, 0xe9 }, ARCH_AARCH64, "an arm64 /usr partition" },
};

const struct arch *archprobe_table(const unsigned char *head, size_t n, const char **why)
{
	bool mbr = n >= SECTOR && head[510] == 0x55 && head[511] == 0xaa;
	bool protective = false, parts = false;
	uint64_t lba;
	uint32_t count, size, i;
	size_t k;

	*why = NULL;
	if (!mbr)
		return NULL;
	for (i = 0; i < 4; i++) {
		unsigned char type = head[446 + 16 * i + 4];

		protective |= type == 0xee;
		parts |= type != 0;
	}
	if (!protective) {
		if (!parts)
			return NULL;
		*why = "an MBR disk (BIOS boot)";
		return arch_get(ARCH_X86_64);
	}
	if (n < 2 * SECTOR || memcmp(head + SECTOR, "EFI PART", 8) != 0)
		return NULL;
	lba = get_le64(head + SECTOR + 72);
	count = get_le32(head + SECTOR + 80);
	size = get_le32(head + SECTOR + 84);
	if (size < 128 || size > 4096 || (size & (size - 1)) || lba < 2)
		return NULL;
	if (count > GPT_ENTRIES_MAX)
		count = GPT_ENTRIES_MAX;
	*why = GPT_UNDECIDED;
	for (i = 0; i < count; i++) {
		uint64_t off = lba * SECTOR + (uint64_t)i * size;

		if (off > n || n - off < size)
			break;
		for (k = 0; k < ARRAY_SIZE(gpt_types); k++)
			if (memcmp(head + off, gpt_types[k].guid, 16) == 0) {
				*why = gpt_types[k].what;
				return arch_get(gpt_types[k].arch);
			}
	}
	return NULL;
}

/* The libguestfs half: the architecture of the system's binaries. */
static const struct arch *probe_binaries(const char *path, const char *format)
{
	guestfs_h *g = appliance_open(path, format, true, NULL);
	struct appliance_os os = { 0 };
	const struct arch *a = NULL;

	if (!g)
		return NULL;
	if (appliance_find_os(g, &os) == 0 && os.nroots &&
	    appliance_mount_os(g, &os, true, NULL, NULL) == 0) {
		a = arch_find(os.arch);
		if (!a)
			log_warn("disk '%s': its binaries are for '%s', which amiforge does not "
				 "run", path, os.arch);
	}
	appliance_os_release(&os);
	appliance_close(g, path);
	err_clear();
	return a;
}

int archprobe_disk(const char *path, const char *format, const struct arch **out,
		   const char **how)
{
	struct blockread *br = blockread_open(path, format);
	unsigned char *head;
	const char *why = NULL;
	const struct arch *a;
	int64_t t0 = now_ms();

	if (!br)
		return -1;
	head = xcalloc(1, ARCHPROBE_HEAD);
	if (blockread_read(br, 0, head, ARCHPROBE_HEAD) < 0) {
		free(head);
		blockread_close(br);
		return err_prefix("read the partition table of '%s'", path);
	}
	blockread_close(br);
	a = archprobe_table(head, ARCHPROBE_HEAD, &why);
	free(head);
	if (a) {
		log_debug("disk '%s': %s: %s", path, why, a->name);
		if (how)
			*how = why;
	} else if (why && (a = probe_binaries(path, format))) {
		log_info("disk '%s': its binaries are %s (read by libguestfs in %.0f s; vm.arch "
			 "or --arch saves this)", path, a->name, (double)(now_ms() - t0) / 1000);
		if (how)
			*how = "its binaries";
	} else {
		a = arch_get(ARCH_X86_64);
		log_debug("disk '%s': no architecture found (%s): x86_64", path,
			  why ? why : "no partition table");
		if (how)
			*how = "nothing found (the default)";
	}
	*out = a;
	return 0;
}
