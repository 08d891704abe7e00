/* appliance-pvh.c: a libguestfs fixed appliance with an uncompressed kernel
 * (see appliance-pvh.h). */
#include <dirent.h>
#include <elf.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "appliance-pvh.h"
#include "error.h"
#include "log.h"
#include "run.h"
#include "util.h"

/* A bzImage's setup header (Documentation/arch/x86/boot.rst). */
#define BZ_SETUP_SECTS 0x1f1
#define BZ_HDRS 0x202             /* "HdrS" */
#define BZ_VERSION 0x206
#define BZ_PAYLOAD_OFFSET 0x248
#define BZ_PAYLOAD_LENGTH 0x24c
#define BZ_HEADER_LEN 0x250
/* Largest kernel read: a distribution's bzImage is 5-15 MiB. */
#define BZ_MAX (256u << 20)
/* XEN_ELFNOTE_PHYS32_ENTRY: the 32-bit PVH entry point QEMU starts at. */
#define PVH_NOTE_TYPE 18
#if defined(__x86_64__)
#define HOST_X86_64 1
#else
#define HOST_X86_64 0
#endif
/* supermin and a decompressor: seconds when they work. */
#define PVH_TOOL_MS 600000

static bool note_in(const unsigned char *p, size_t len)
{
	size_t off = 0;

	while (len - off >= sizeof(Elf64_Nhdr)) {
		const Elf64_Nhdr *n = (const Elf64_Nhdr *)(const void *)(p + off);
		size_t name = ((size_t)n->n_namesz + 3) & ~(size_t)3;
		size_t desc = ((size_t)n->n_descsz + 3) & ~(size_t)3;

		off += sizeof(*n);
		if (name > len - off || desc > len - off - name)
			return false;
		if (n->n_type == PVH_NOTE_TYPE && n->n_namesz == 4 &&
		    memcmp(p + off, "Xen", 4) == 0)
			return true;
		off += name + desc;
	}
	return false;
}

bool appliance_pvh_has_note(const void *elf, size_t len)
{
	const unsigned char *b = elf;
	const Elf64_Ehdr *eh = elf;

	if (len < sizeof(*eh) || memcmp(b, ELFMAG, SELFMAG) != 0 ||
	    b[EI_CLASS] != ELFCLASS64 || b[EI_DATA] != ELFDATA2LSB ||
	    eh->e_machine != EM_X86_64 || eh->e_phentsize != sizeof(Elf64_Phdr) ||
	    eh->e_phoff > len || eh->e_phnum > (len - eh->e_phoff) / sizeof(Elf64_Phdr))
		return false;
	for (size_t i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr *ph = (const Elf64_Phdr *)(const void *)
			(b + eh->e_phoff + i * sizeof(Elf64_Phdr));

		if (ph->p_type != PT_NOTE || ph->p_offset > len || ph->p_filesz > len - ph->p_offset)
			continue;
		if (note_in(b + ph->p_offset, ph->p_filesz))
			return true;
	}
	return false;
}

/* The program that decompresses a payload starting with these bytes: the
 * kernel's build appends the uncompressed size after an xz stream (one
 * stream, then 4 bytes xz must not take for another). */
static const char *const *decompressor(const unsigned char *p, size_t len)
{
	static const char *const xz[] = { "xz", "-dc", "--single-stream", NULL };
	static const char *const gz[] = { "gzip", "-dc", NULL };
	static const struct {
		const char *magic;
		size_t len;
		const char *const *argv;
	} fmts[] = {
		{ "\xfd" "7zXZ\0", 6, xz },
		{ "\x1f\x8b", 2, gz },
	};

	for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++)
		if (len >= fmts[i].len && memcmp(p, fmts[i].magic, fmts[i].len) == 0)
			return fmts[i].argv;
	return NULL;
}

static int check_result(const char *out)
{
	struct stat st;
	void *m = MAP_FAILED;
	int fd = open(out, O_RDONLY | O_CLOEXEC), ret = -1;

	if (fd < 0 || fstat(fd, &st) < 0) {
		err_errno("'%s'", out);
		goto cleanup;
	}
	if (st.st_size > 0)
		m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (m == MAP_FAILED || !appliance_pvh_has_note(m, (size_t)st.st_size)) {
		err_set("'%s': not an x86_64 ELF kernel with a PVH entry note", out);
		goto cleanup;
	}
	ret = 0;
cleanup:
	if (m != MAP_FAILED)
		munmap(m, (size_t)st.st_size);
	if (fd >= 0)
		close(fd);
	return ret;
}

int appliance_pvh_extract(const char *bzimage, const char *out)
{
	struct run r = RUN_INIT;
	unsigned char *k = NULL;
	struct stat st;
	const char *const *argv;
	size_t start, plen;
	unsigned sects;
	int fd = open(bzimage, O_RDONLY | O_CLOEXEC), ofd = -1, ret = -1;

	if (fd < 0 || fstat(fd, &st) < 0) {
		err_errno("kernel '%s'", bzimage);
		goto cleanup;
	}
	if (!S_ISREG(st.st_mode) || st.st_size < BZ_HEADER_LEN || (uint64_t)st.st_size > BZ_MAX) {
		err_set("kernel '%s': not a bzImage (size %lld)", bzimage, (long long)st.st_size);
		goto cleanup;
	}
	k = xmalloc((size_t)st.st_size);
	if (read_all(fd, k, (size_t)st.st_size) != st.st_size) {
		err_errno("read '%s'", bzimage);
		goto cleanup;
	}
	sects = k[BZ_SETUP_SECTS] ? k[BZ_SETUP_SECTS] : 4;
	start = ((size_t)sects + 1) * 512 + get_le32(k + BZ_PAYLOAD_OFFSET);
	plen = get_le32(k + BZ_PAYLOAD_LENGTH);
	if (memcmp(k + BZ_HDRS, "HdrS", 4) != 0 || (k[BZ_VERSION] | k[BZ_VERSION + 1] << 8) < 0x208 ||
	    start > (size_t)st.st_size || plen > (size_t)st.st_size - start || plen < 16) {
		err_set("kernel '%s': not a bzImage with a payload (boot protocol 2.08)", bzimage);
		goto cleanup;
	}
	if (!(argv = decompressor(k + start, plen))) {
		err_set("kernel '%s': its payload is neither xz nor gzip", bzimage);
		goto cleanup;
	}
	ofd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (ofd < 0) {
		err_errno("create '%s'", out);
		goto cleanup;
	}
	/* The payload on stdin, exactly (gzip would warn about what follows
	 * it): the kernel's own decompressor sees the same bytes. */
	r.argv = argv;
	r.in = RUN_CAPTURE;
	r.in_data = k + start;
	r.in_len = plen;
	r.out = RUN_FD;
	r.out_fd = ofd;
	r.err = RUN_CAPTURE;
	r.capture_max = 4096;
	r.timeout_ms = PVH_TOOL_MS;
	if (run_sync(&r) < 0 || run_check(&r) < 0) {
		err_prefix("decompress '%s'", bzimage);
		goto cleanup;
	}
	if (close(ofd) < 0) {
		ofd = -1;
		err_errno("write '%s'", out);
		goto cleanup;
	}
	ofd = -1;
	ret = check_result(out);
cleanup:
	run_release(&r);
	free(k);
	if (ofd >= 0)
		close(ofd);
	if (ret < 0)
		unlink(out);
	if (fd >= 0)
		close(fd);
	return ret;
}

/* The libguestfs path element holding supermin.d (NULL: a fixed appliance
 * of the distribution's, or none found). Caller frees. */
static char *supermin_dir(guestfs_h *g)
{
	const char *p = guestfs_get_path(g);
	char *path, *save = NULL, *found = NULL;
	struct stat st;

	if (!p)
		return NULL;
	path = xstrdup(p);
	for (char *e = strtok_r(path, ":", &save); e; e = strtok_r(NULL, ":", &save)) {
		char *fixed = xasprintf("%s/README.fixed", e);
		char *sm = xasprintf("%s/supermin.d", e);
		bool is_fixed = stat(fixed, &st) == 0, is_sm = stat(sm, &st) == 0 && S_ISDIR(st.st_mode);

		free(fixed);
		if (is_fixed || is_sm) {
			if (is_sm && !is_fixed)
				found = sm;
			else
				free(sm);
			break;
		}
		free(sm);
	}
	free(path);
	return found;
}

void appliance_pvh_forget(const char *dir)
{
	const char *slash = strrchr(dir, '/');

	if (!slash || !str_startswith(slash + 1, "fixed-"))
		return;
	if (remove_tree(dir) < 0) {
		log_debug("appliance: %s", err_msg());
		err_clear();
	}
}

/* Remove fixed-* directories other than keep (an earlier appliance's):
 * their files only. An appliance booting from one keeps its open files. */
static void remove_old(const char *base, const char *keep)
{
	DIR *d = opendir(base);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		if (!str_startswith(de->d_name, "fixed-") || strcmp(de->d_name, keep) == 0)
			continue;
		char *p = xasprintf("%s/%s", base, de->d_name);

		appliance_pvh_forget(p);
		free(p);
	}
	closedir(d);
}

/* Make base/name from base/appliance.d: under a temporary name, renamed
 * into place (another amiforge making the same one at once: the first
 * rename wins, the other's copy is removed). */
static int make_fixed(const char *base, const char *name, const char *fixed)
{
	char *tmp = xasprintf("%s/%s.tmp.%ld", base, name, (long)getpid());
	static const char *const links[] = { "initrd", "root" };
	static const char readme[] = "amiforge: libguestfs fixed appliance, uncompressed kernel\n";
	char *src = NULL, *dst = NULL;
	int ret = -1;

	remove_tree(tmp);
	err_clear();
	if (mkdir(tmp, 0700) < 0) {
		err_errno("mkdir '%s'", tmp);
		goto cleanup;
	}
	src = xasprintf("%s/appliance.d/kernel", base);
	dst = xasprintf("%s/kernel", tmp);
	if (appliance_pvh_extract(src, dst) < 0)
		goto cleanup;
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
		free(src);
		free(dst);
		src = xasprintf("%s/appliance.d/%s", base, links[i]);
		dst = xasprintf("%s/%s", tmp, links[i]);
		if (link(src, dst) < 0) {
			err_errno("link '%s'", src);
			goto cleanup;
		}
	}
	free(dst);
	dst = xasprintf("%s/README.fixed", tmp);
	if (write_file_atomic(dst, readme, sizeof(readme) - 1, 0644) < 0)
		goto cleanup;
	if (rename(tmp, fixed) == 0) {
		ret = 0;
		goto cleanup;
	}
	if (errno != EEXIST && errno != ENOTEMPTY) {
		err_errno("rename '%s'", tmp);
		goto cleanup;
	}
	ret = 0;   /* made meanwhile: ours goes */
	remove_tree(tmp);
	err_clear();
cleanup:
	if (ret < 0) {
		char *keep = xstrdup(err_msg());

		remove_tree(tmp);
		err_set("%s", keep);
		free(keep);
	}
	free(tmp);
	free(src);
	free(dst);
	return ret;
}

char *appliance_pvh_dir(guestfs_h *g)
{
	const char *env = getenv("AMIFORGE_APPLIANCE_PVH");
	char *sm = NULL, *cache = NULL, *base = NULL, *lock = NULL, *out = NULL;
	char *fixed = NULL, *name = NULL, *result = NULL, *readme = NULL;
	struct stat si, sr;
	struct run r = RUN_INIT;
	int lfd = -1;

	if (!HOST_X86_64) {
		log_debug("appliance: libguestfs's own (PVH boot is for x86_64 hosts)");
		return NULL;
	}
	if (env && strcmp(env, "0") == 0) {
		log_debug("appliance: libguestfs's own (AMIFORGE_APPLIANCE_PVH=0)");
		return NULL;
	}
	/* QEMU run by libvirt (as its own user, confined) would have to read
	 * our private directory: only where libguestfs runs QEMU itself. */
	char *backend = guestfs_get_backend(g);
	bool direct = backend && strcmp(backend, "direct") == 0;

	free(backend);
	if (!direct) {
		log_debug("appliance: libguestfs's own (its backend is not \"direct\")");
		return NULL;
	}
	if (!(sm = supermin_dir(g))) {
		log_debug("appliance: libguestfs's own (no supermin appliance in its path)");
		return NULL;
	}
	if (!(cache = guestfs_get_cachedir(g))) {
		err_set("no libguestfs cache directory");
		goto cleanup;
	}
	base = xasprintf("%s/.amiforge-appliance-%ld", cache, (long)geteuid());
	if (mkdir(base, 0700) < 0 && errno != EEXIST) {
		err_errno("mkdir '%s'", base);
		goto cleanup;
	}
	/* In a shared cache directory (/var/tmp): ours, or not used. */
	if (path_check_private(base, "appliance directory") < 0)
		goto cleanup;
	lock = xasprintf("%s/lock", base);
	out = xasprintf("%s/appliance.d", base);
	/* As libguestfs builds its own (lib/appliance.c), in our directory. */
	const char *argv[] = { "supermin", "--build", "--if-newer", "--lock", lock,
			       "-f", "ext2", "--host-cpu", "x86_64", sm, "-o", out, NULL };
	r.argv = argv;
	r.err = RUN_CAPTURE;
	r.capture_max = 4096;
	r.timeout_ms = PVH_TOOL_MS;
	if (run_sync(&r) < 0 || run_check(&r) < 0)
		goto cleanup;
	/* One process at a time makes or replaces a fixed directory; supermin
	 * may not rebuild appliance.d under it meanwhile (its lock). */
	lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lfd < 0 || lockf(lfd, F_LOCK, 0) < 0) {
		err_errno("lock '%s'", lock);
		goto cleanup;
	}
	char *initrd = xasprintf("%s/initrd", out), *root = xasprintf("%s/root", out);
	int si_ok = stat(initrd, &si), sr_ok = stat(root, &sr);

	free(initrd);
	free(root);
	if (si_ok < 0 || sr_ok < 0) {
		err_errno("'%s': no initrd or root", out);
		goto cleanup;
	}
	name = xasprintf("fixed-%llx-%llx", (unsigned long long)si.st_ino,
			 (unsigned long long)sr.st_ino);
	fixed = xasprintf("%s/%s", base, name);
	readme = xasprintf("%s/README.fixed", fixed);
	if (access(readme, F_OK) < 0) {
		int64_t t0 = now_ms();

		if (make_fixed(base, name, fixed) < 0)
			goto cleanup;
		remove_old(base, name);
		log_debug("appliance: made %s in %" PRId64 " ms", fixed, now_ms() - t0);
	}
	result = fixed;
	fixed = NULL;
cleanup:
	if (!result) {
		log_debug("appliance: libguestfs's own: %s", err_msg());
		err_clear();
	}
	if (lfd >= 0)
		close(lfd);
	run_release(&r);
	free(sm);
	free(cache);
	free(base);
	free(lock);
	free(out);
	free(fixed);
	free(name);
	free(readme);
	return result;
}
