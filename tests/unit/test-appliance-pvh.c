/* Unit tests for builder/disk/appliance-pvh.c: the PVH note check over
 * crafted ELF images (and appliance.c's architecture of an ELF header),
 * and the kernel extraction over bzImages made here (a
 * setup header, an xz or gzip payload made by the real xz/gzip, the size the
 * kernel's build appends after it). */
#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"
#include "buf.h"
#include "error.h"
#include "run.h"
#include "util.h"
#include "builder/disk/appliance.h"
#include "builder/disk/appliance-pvh.h"

/* An x86_64 ELF with one PT_NOTE segment holding one note. */
static size_t elf(unsigned char *b, size_t cap, const char *name, uint32_t type,
		  uint16_t machine)
{
	Elf64_Ehdr *eh = (Elf64_Ehdr *)(void *)b;
	Elf64_Phdr *ph = (Elf64_Phdr *)(void *)(b + sizeof(*eh));
	Elf64_Nhdr *nh = (Elf64_Nhdr *)(void *)(b + sizeof(*eh) + sizeof(*ph));
	size_t namesz = strlen(name) + 1, off = sizeof(*eh) + sizeof(*ph) + sizeof(*nh);

	memset(b, 0, cap);
	memcpy(b, ELFMAG, SELFMAG);
	b[EI_CLASS] = ELFCLASS64;
	b[EI_DATA] = ELFDATA2LSB;
	b[EI_VERSION] = EV_CURRENT;
	eh->e_machine = machine;
	eh->e_phoff = sizeof(*eh);
	eh->e_phentsize = sizeof(*ph);
	eh->e_phnum = 1;
	nh->n_namesz = (uint32_t)namesz;
	nh->n_descsz = 4;
	nh->n_type = type;
	memcpy(b + off, name, namesz);
	off += (namesz + 3) & ~(size_t)3;
	memcpy(b + off, "\0\0\0\x01", 4);
	off += 4;
	ph->p_type = PT_NOTE;
	ph->p_offset = sizeof(*eh) + sizeof(*ph);
	ph->p_filesz = off - ph->p_offset;
	/* Some text after, as a kernel has. */
	for (size_t i = off; i < cap; i++)
		b[i] = (unsigned char)(i * 7);
	return cap;
}

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

/* data compressed by prog (xz, gzip; NULL: as it is) into a bzImage at
 * path: two setup sectors, the payload at payload_offset 0x40. */
static void bzimage(const char *path, const char *prog, const void *data, size_t n,
		    bool hdrs, int32_t extra_len)
{
	const char *argv[] = { prog, "-c", NULL };
	struct run r = RUN_INIT;
	const void *pay = data;
	size_t plen = n, hdr = 3 * 512 + 0x40;
	unsigned char *f;
	int fd;

	if (prog) {
		r.argv = argv;
		r.in = RUN_CAPTURE;
		r.in_data = data;
		r.in_len = n;
		r.out = RUN_CAPTURE;
		if (run_sync(&r) < 0 || run_check(&r) < 0)
			CHECK(0, "%s: %s", prog, err_msg());
		pay = r.out_buf.data;
		plen = r.out_buf.len;
	}
	f = xcalloc(1, hdr + plen + 4);
	f[0x1f1] = 2;
	if (hdrs)
		memcpy(f + 0x202, "HdrS", 4);
	f[0x206] = 0x0f;
	f[0x207] = 0x02;
	put32(f + 0x248, 0x40);
	put32(f + 0x24c, (uint32_t)((int64_t)plen + extra_len));
	memcpy(f + hdr, pay, plen);
	put32(f + hdr + plen, (uint32_t)n);   /* the size the kernel's build appends */
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0 && write_all(fd, f, hdr + plen + 4) == 0 && close(fd) == 0,
	      "bzImage %s written", path);
	free(f);
	run_release(&r);
}

static bool same_file(const char *path, const void *data, size_t n)
{
	struct buf b = BUF_INIT(1 << 24);
	bool same = buf_read_file(&b, path) == 0 && b.len == n && memcmp(b.data, data, n) == 0;

	buf_release(&b);
	return same;
}

static void extract(const char *dir, const char *what, const char *prog, const void *data,
		    size_t n, bool hdrs, int32_t extra, const char *want_err)
{
	char *in = xasprintf("%s/bz", dir), *out = xasprintf("%s/vmlinux", dir);
	int r;

	unlink(out);
	bzimage(in, prog, data, n, hdrs, extra);
	err_clear();
	r = appliance_pvh_extract(in, out);
	if (!want_err) {
		CHECK(r == 0 && same_file(out, data, n), "extract %s: the ELF comes out whole (%s)",
		      what, r < 0 ? err_msg() : "ok");
	} else {
		CHECK(r < 0 && strstr(err_msg(), want_err) && access(out, F_OK) < 0,
		      "extract %s: refused, nothing left (%s)", what, err_msg());
	}
	err_clear();
	free(in);
	free(out);
}

int main(void)
{
	static unsigned char k[64 * 1024];
	unsigned char *b = k;
	size_t n = elf(k, sizeof(k), "Xen", 18, EM_X86_64);
	char *dir = make_temp_dir("amiforge-pvh-", "/tmp");

	/* --- the note --------------------------------------------------- */
	CHECK(appliance_pvh_has_note(k, n), "note: Xen type 18 found");
	CHECK(!appliance_pvh_has_note(k, 100), "note: truncated before the note: none");
	CHECK(!appliance_pvh_has_note(k, 10), "note: truncated header: none");
	elf(k, sizeof(k), "Xen", 17, EM_X86_64);
	CHECK(!appliance_pvh_has_note(k, n), "note: another Xen note type: none");
	elf(k, sizeof(k), "Xe", 18, EM_X86_64);
	CHECK(!appliance_pvh_has_note(k, n), "note: another owner: none");
	elf(k, sizeof(k), "Xen", 18, EM_AARCH64);
	CHECK(!appliance_pvh_has_note(k, n), "note: not x86_64: refused");
	elf(k, sizeof(k), "Xen", 18, EM_X86_64);
	((Elf64_Ehdr *)(void *)b)->e_phnum = 0xffff;
	CHECK(!appliance_pvh_has_note(k, n), "note: program headers past the end: refused");
	elf(k, sizeof(k), "Xen", 18, EM_X86_64);
	((Elf64_Nhdr *)(void *)(b + sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr)))->n_descsz = 0xfffffff0u;
	CHECK(!appliance_pvh_has_note(k, n), "note: descriptor size past the segment: refused");
	elf(k, sizeof(k), "Xen", 18, EM_X86_64);
	((Elf64_Phdr *)(void *)(b + sizeof(Elf64_Ehdr)))->p_offset = n + 1;
	CHECK(!appliance_pvh_has_note(k, n), "note: segment past the end: refused");

	/* --- an executable's architecture (appliance_elf_arch) ----------- */
	{
		static const struct { uint16_t machine; unsigned char cls, data; size_t n;
				      const char *want; } t[] = {
			{ EM_X86_64, ELFCLASS64, ELFDATA2LSB, 20, "x86_64" },
			{ EM_AARCH64, ELFCLASS64, ELFDATA2LSB, 20, "aarch64" },
			{ EM_386, ELFCLASS32, ELFDATA2LSB, 20, "i386" },
			{ EM_S390, ELFCLASS64, ELFDATA2LSB, 20, "s390x" },
			{ EM_X86_64, ELFCLASS32, ELFDATA2LSB, 20, NULL },  /* x32: file(1)'s */
			{ EM_PPC64, ELFCLASS64, ELFDATA2LSB, 20, NULL },   /* not in the table */
			{ EM_X86_64, ELFCLASS64, ELFDATA2MSB, 20, NULL },  /* big-endian */
			{ EM_X86_64, ELFCLASS64, ELFDATA2LSB, 19, NULL },  /* cut short */
			{ EM_X86_64, 3, ELFDATA2LSB, 20, NULL },           /* no such class */
		};

		for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
			char *a;

			elf(k, sizeof(k), "Xen", 18, t[i].machine);
			k[EI_CLASS] = t[i].cls;
			k[EI_DATA] = t[i].data;
			a = appliance_elf_arch(k, t[i].n);
			CHECK(t[i].want ? a && strcmp(a, t[i].want) == 0 : !a,
			      "elf arch: machine %u class %u data %u, %zu bytes: %s (want %s)",
			      t[i].machine, t[i].cls, t[i].data, t[i].n, a ? a : "none",
			      t[i].want ? t[i].want : "none");
			free(a);
		}
		k[0] = 'X';
		CHECK(!appliance_elf_arch(k, 20), "elf arch: not an ELF: none");
	}

	/* --- extraction ------------------------------------------------- */
	elf(k, sizeof(k), "Xen", 18, EM_X86_64);
	extract(dir, "xz", "xz", k, n, true, 0, NULL);
	extract(dir, "gzip", "gzip", k, n, true, 0, NULL);
	extract(dir, "xz, length past the file", "xz", k, n, true, 1 << 20, "not a bzImage");
	extract(dir, "no HdrS", "xz", k, n, false, 0, "not a bzImage");
	extract(dir, "uncompressed payload", NULL, k, n, true, 0, "neither xz nor gzip");
	extract(dir, "xz, cut short", "xz", k, n, true, -64, "decompress");
	elf(k, sizeof(k), "Xen", 17, EM_X86_64);
	extract(dir, "no PVH note", "xz", k, n, true, 0, "PVH entry note");
	{
		char *missing = xasprintf("%s/none", dir), *out = xasprintf("%s/o", dir);

		CHECK(appliance_pvh_extract(missing, out) < 0 && strstr(err_msg(), "none"),
		      "extract: a missing kernel is an error (%s)", err_msg());
		err_clear();
		free(missing);
		free(out);
	}
	remove_tree(dir);
	free(dir);
	return TEST_DONE();
}
