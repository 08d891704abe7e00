/* Unit tests for builder/disk/admit.c: the header check over the first
 * 4 KiB (and last sector) of images qemu-img made, some crafted, and the
 * qemu-img info check over its recorded JSON (tests/unit/golden/admit-*:
 * made by qemu-img 7.2 in /tmp/amiforge-admit, whose paths they name). */
#include "test.h"
#include "buf.h"
#include "error.h"
#include "log.h"
#include "util.h"
#include "builder/disk/admit.h"

#define GOLDEN_DIR "tests/unit/golden/"

struct sample {
	unsigned char head[DISK_ADMIT_HEAD];
	size_t n;
	unsigned char tail[DISK_ADMIT_TAIL];
	size_t tn;
};

static size_t load(const char *name, unsigned char *to, size_t max)
{
	char *path = xasprintf(GOLDEN_DIR "%s", name);
	struct buf b = BUF_INIT(1 << 20);
	size_t n = 0;

	if (buf_read_file(&b, path) < 0) {
		CHECK(0, "read %s: %s", path, err_msg());
	} else {
		n = b.len < max ? b.len : max;
		memcpy(to, b.data, n);
	}
	buf_release(&b);
	free(path);
	return n;
}

static void sample(const char *file, bool tail, struct sample *s)
{
	char *name = xasprintf("admit-head-%s.bin", file);

	memset(s, 0, sizeof(*s));
	s->n = load(name, s->head, sizeof(s->head));
	free(name);
	if (tail) {
		name = xasprintf("admit-tail-%s.bin", file);
		s->tn = load(name, s->tail, sizeof(s->tail));
		free(name);
	}
}

/* disk_admit_header on s as stated: the format chosen, or NULL when
 * refused (the message left in err_msg()). */
static const char *header(const struct sample *s, const char *stated)
{
	const char *fmt = NULL;

	err_clear();
	if (disk_admit_header("x.img", stated, s->head, s->n, s->tn ? s->tail : NULL, s->tn,
			      &fmt) < 0)
		return NULL;
	return fmt;
}

static bool refused_with(const struct sample *s, const char *stated, const char *why)
{
	return header(s, stated) == NULL && strstr(err_msg(), "disk 'x.img' refused: ") &&
	       strstr(err_msg(), why);
}

static void be32_put(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static void vhd_checksum(unsigned char *f)
{
	uint32_t sum = 0;
	size_t i;

	be32_put(f + 64, 0);
	for (i = 0; i < 512; i++)
		sum += f[i];
	be32_put(f + 64, ~sum);
}

static void test_header(void)
{
	struct sample s;

	sample("plain.qcow2", false, &s);
	CHECK_STR(disk_sniff(s.head, s.n, NULL, 0), "qcow2", "sniff: qcow2");
	CHECK_STR(header(&s, NULL), "qcow2", "header: qcow2 detected");
	CHECK_STR(header(&s, "qcow2"), "qcow2", "header: qcow2 stated");
	CHECK_STR(header(&s, "raw"), "raw", "header: qcow2 stated raw is read as raw (warned)");
	CHECK(refused_with(&s, "vmdk", "stated vmdk, but its content is a qcow2 image"),
	      "header: qcow2 stated vmdk refused (%s)", err_msg());

	sample("data-file.qcow2", false, &s);
	CHECK(refused_with(&s, NULL, "a qcow2 with an external data file"),
	      "header: qcow2 with data file refused (%s)", err_msg());
	CHECK(refused_with(&s, "qcow2", "a qcow2 with an external data file"),
	      "header: qcow2 with data file refused when stated qcow2");
	CHECK_STR(header(&s, "raw"), "raw", "header: qcow2 with data file stated raw: read as raw");

	sample("backing.qcow2", false, &s);
	CHECK(refused_with(&s, NULL, "a qcow2 with a backing file"),
	      "header: qcow2 with backing file refused (%s)", err_msg());
	CHECK(refused_with(&s, "qcow2", "a qcow2 with a backing file"),
	      "header: qcow2 with backing file refused when stated");

	sample("sparse.vmdk", false, &s);
	CHECK_STR(header(&s, NULL), "vmdk", "header: monolithicSparse VMDK detected");
	sample("stream.vmdk", false, &s);
	CHECK_STR(header(&s, "vmdk"), "vmdk", "header: streamOptimized VMDK stated");

	sample("descriptor.vmdk", false, &s);
	CHECK_STR(disk_sniff(s.head, s.n, NULL, 0), "vmdk-descriptor", "sniff: VMDK descriptor");
	CHECK(refused_with(&s, NULL, "a VMDK descriptor"),
	      "header: VMDK descriptor refused (%s)", err_msg());
	CHECK(refused_with(&s, "vmdk", "a VMDK descriptor"),
	      "header: VMDK descriptor refused when stated vmdk");
	CHECK_STR(header(&s, "raw"), "raw", "header: VMDK descriptor stated raw: read as raw");

	sample("capacity0.vmdk", false, &s);
	CHECK(refused_with(&s, NULL, "defers to a descriptor"),
	      "header: sparse VMDK of capacity 0 refused (%s)", err_msg());

	sample("dynamic.vhd", true, &s);
	CHECK_STR(header(&s, NULL), "vpc", "header: dynamic VHD detected");
	CHECK_STR(header(&s, "vhd"), "vpc", "header: dynamic VHD stated vhd");
	/* The same footer marked differencing (type 4), checksum fixed. */
	be32_put(s.head + 60, 4);
	vhd_checksum(s.head);
	CHECK(refused_with(&s, NULL, "a differencing VHD"),
	      "header: differencing VHD refused (%s)", err_msg());

	sample("fixed.vhd", true, &s);
	s.n = load("admit-head-plain.raw.bin", s.head, sizeof(s.head));
	CHECK_STR(disk_sniff(s.head, s.n, s.tail, s.tn), "vpc", "sniff: fixed VHD by its footer");
	CHECK_STR(header(&s, NULL), "vpc", "header: fixed VHD detected");
	CHECK_STR(header(&s, "raw"), "raw", "header: fixed VHD stated raw: read as raw");
	/* A footer with a wrong checksum is not one. */
	s.tail[100] ^= 1;
	CHECK_STR(disk_sniff(s.head, s.n, s.tail, s.tn), "raw",
		  "sniff: a bad VHD footer checksum is raw");

	/* Head and tail naming different formats: ambiguous, refused. */
	sample("fixed.vhd", true, &s);
	s.n = load("admit-head-plain.qcow2.bin", s.head, sizeof(s.head));
	CHECK(refused_with(&s, NULL, "its start reads as a qcow2 image and its end as a VHD"),
	      "header: qcow2 head with VHD footer refused as ambiguous (%s)", err_msg());
	CHECK_STR(header(&s, "qcow2"), "qcow2", "header: ... unless the format is stated");

	sample("plain.vhdx", false, &s);
	CHECK_STR(header(&s, NULL), "vhdx", "header: VHDX detected");

	sample("plain.raw", false, &s);
	CHECK_STR(header(&s, NULL), "raw", "header: raw detected");
	CHECK(refused_with(&s, "qcow2", "stated qcow2, but its content is raw"),
	      "header: raw stated qcow2 refused (%s)", err_msg());
	CHECK(refused_with(&s, "vhdx", "stated vhdx, but its content is raw"),
	      "header: raw stated vhdx refused");

	/* Formats amiforge does not read: refused unless stated raw. */
	memset(&s, 0, sizeof(s));
	memcpy(s.head, "QED", 4);
	s.n = 512;
	CHECK(refused_with(&s, NULL, "a QED image, which amiforge does not read"),
	      "header: QED refused (%s)", err_msg());
	CHECK_STR(header(&s, "raw"), "raw", "header: QED stated raw: read as raw");
	memcpy(s.head, "QFI\xfb\0\0\0\1", 8);
	CHECK(refused_with(&s, NULL, "a qcow (version 1) image"),
	      "header: qcow version 1 refused (%s)", err_msg());
	CHECK(header(&s, "nonsense") == NULL && strstr(err_msg(), "unknown format 'nonsense'"),
	      "header: unknown stated format refused (%s)", err_msg());
	/* A comment and blank lines before version=: still a descriptor. */
	memset(&s, 0, sizeof(s));
	memcpy(s.head, "# x\n\n  \nversion=1\nRW 8 FLAT \"/etc/shadow\" 0\n", 44);
	s.n = 44;
	CHECK(refused_with(&s, NULL, "a VMDK descriptor"),
	      "header: descriptor after comments refused (%s)", err_msg());
	/* An empty file is a raw disk of nothing. */
	s.n = 0;
	CHECK_STR(header(&s, NULL), "raw", "header: empty file is raw");

	CHECK_STR(disk_admit_format("vhd"), "vpc", "format: vhd is qemu's vpc");
	CHECK(disk_admit_format("vdi") == NULL && disk_admit_format("qed") == NULL &&
	      disk_admit_format(NULL) == NULL, "format: vdi, qed are not read");
}

/* disk_admit_info on a recorded JSON, read as format. */
static int info(const char *file, const char *format, struct disk_info *di)
{
	char *path = xasprintf(GOLDEN_DIR "admit-info-%s.json", file);
	struct buf b = BUF_INIT(1 << 20);
	int r = -1;

	err_clear();
	if (buf_read_file(&b, path) < 0)
		err_set("read %s: %s", path, err_msg());
	else
		r = disk_admit_info(b.data, b.len, "x.img", format, di);
	buf_release(&b);
	free(path);
	return r;
}

static bool info_refused(const char *file, const char *format, const char *why)
{
	struct disk_info di;
	bool r = info(file, format, &di) < 0 && strstr(err_msg(), "disk 'x.img' refused: ") &&
		 strstr(err_msg(), why);

	disk_info_release(&di);
	return r;
}

static void test_info(void)
{
	struct disk_info di;

	CHECK(info("plain.qcow2", "qcow2", &di) == 0 && strcmp(di.format, "qcow2") == 0 &&
	      di.virtual_size == 1048576 && !di.backing, "info: plain qcow2 admitted (%s)",
	      err_msg());
	disk_info_release(&di);
	CHECK(info_refused("data-file.qcow2", "qcow2", "a qcow2 with an external data file"),
	      "info: qcow2 with data file refused (%s)", err_msg());
	CHECK(info_refused("backing.qcow2", "qcow2", "a qcow2 image with a backing file"),
	      "info: qcow2 with backing file refused (%s)", err_msg());
	CHECK(info_refused("child.vmdk", "vmdk", "a VMDK image with a backing file"),
	      "info: VMDK with a parent refused (%s)", err_msg());
	CHECK(info_refused("descriptor.vmdk", "vmdk", "only a single self-contained VMDK"),
	      "info: VMDK descriptor's extents refused (%s)", err_msg());
	CHECK(info_refused("two-extents.vmdk", "vmdk", "extents (only a single self-contained VMDK"),
	      "info: VMDK of two extents refused (%s)", err_msg());
	CHECK(info_refused("plain.qcow2", "raw", "qemu-img reads it as qcow2, not raw"),
	      "info: a format other than the one asked refused (%s)", err_msg());
	CHECK(info("sparse.vmdk", "vmdk", &di) == 0 && di.create_type &&
	      strcmp(di.create_type, "monolithicSparse") == 0, "info: sparse VMDK admitted (%s)",
	      err_msg());
	disk_info_release(&di);
	CHECK(info("stream.vmdk", "vmdk", &di) == 0 && di.create_type &&
	      strcmp(di.create_type, "streamOptimized") == 0,
	      "info: streamOptimized VMDK admitted (%s)", err_msg());
	disk_info_release(&di);
	CHECK(info("dynamic.vhd", "vpc", &di) == 0, "info: VHD admitted (%s)", err_msg());
	disk_info_release(&di);
	CHECK(info("plain.vhdx", "vhdx", &di) == 0, "info: VHDX admitted (%s)", err_msg());
	disk_info_release(&di);
	CHECK(info("plain.raw", "raw", &di) == 0 && di.virtual_size == 1048576,
	      "info: raw admitted (%s)", err_msg());
	disk_info_release(&di);
	err_clear();
	CHECK(disk_admit_info("[]", 2, "x.img", "raw", &di) < 0 &&
	      strstr(err_msg(), "invalid JSON"), "info: not an object refused");
}

/* The whole door on files: a FIFO, a missing file. */
static void test_admit_files(void)
{
	char dir[] = "/tmp/amiforge-test-admit.XXXXXX";
	struct disk_info di;
	char *fifo;

	if (!mkdtemp(dir)) {
		CHECK(0, "mkdtemp");
		return;
	}
	fifo = xasprintf("%s/fifo.img", dir);
	CHECK(mkfifo(fifo, 0600) == 0 && disk_admit(fifo, NULL, &di) < 0 &&
	      strstr(err_msg(), "refused: not a regular file or block device"),
	      "admit: a FIFO is refused without blocking (%s)", err_msg());
	unlink(fifo);
	CHECK(disk_admit(fifo, "raw", &di) < 0 && strstr(err_msg(), "No such file"),
	      "admit: a missing disk fails (%s)", err_msg());
	CHECK(disk_admit(fifo, "vdi", &di) < 0 && strstr(err_msg(), "unknown format 'vdi'"),
	      "admit: an unknown stated format fails first (%s)", err_msg());
	/* amiforge's own files are read as their known format, never probed. */
	CHECK(disk_info_get(fifo, NULL, &di) < 0 && strstr(err_msg(), "no format stated"),
	      "info: a disk of known format must have it stated (%s)", err_msg());
	rmdir(dir);
	free(fifo);
}

int main(void)
{
	log_set_level(LOG_ERROR);
	test_header();
	test_info();
	test_admit_files();
	return TEST_DONE();
}
