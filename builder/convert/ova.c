/* OVA: a tar holding, in this order, the OVF descriptor (DMTF OVF 1.0,
 * written with libxml2), the streamOptimized VMDK, and the manifest (.mf)
 * of SHA256 digests (OpenSSL EVP). The descriptor must come first; DSP0243
 * allows the manifest at the end, which lets the disk's digest be computed
 * while it is copied in. The tar is ustar, with pax headers only for
 * members over ustar's 8 GiB limit (libarchive's "pax restricted"). */
#include <archive.h>
#include <archive_entry.h>
#include <libxml/xmlwriter.h>
#include <openssl/evp.h>

#include "convert.h"
#include "error.h"
#include "util.h"

#define OVF_NS "http://schemas.dmtf.org/ovf/envelope/1"
#define RASD_NS "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
#define VSSD_NS "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData"
#define XSI_NS "http://www.w3.org/2001/XMLSchema-instance"
#define VMDK_STREAM "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"
/* CIM_OperatingSystem 101: "Linux 64-Bit". */
#define OVF_OS_LINUX64 "101"
#define OVA_CPUS "2"
#define OVA_MEMORY_MIB "2048"
#define OVA_COPY_BLOCK (1u << 20)

static void item(xmlTextWriterPtr w, const char *type, const char *id, const char *name,
		 const char *const *extra)
{
	size_t i;

	xmlTextWriterStartElement(w, BAD_CAST "Item");
	for (i = 0; extra && extra[i]; i += 2)
		xmlTextWriterWriteElementNS(w, BAD_CAST "rasd", BAD_CAST extra[i], NULL,
					    BAD_CAST extra[i + 1]);
	xmlTextWriterWriteElementNS(w, BAD_CAST "rasd", BAD_CAST "ElementName", NULL, BAD_CAST name);
	xmlTextWriterWriteElementNS(w, BAD_CAST "rasd", BAD_CAST "InstanceID", NULL, BAD_CAST id);
	xmlTextWriterWriteElementNS(w, BAD_CAST "rasd", BAD_CAST "ResourceType", NULL, BAD_CAST type);
	xmlTextWriterEndElement(w);
}

/* The descriptor as text (caller frees with xmlBufferFree). */
static xmlBufferPtr ovf_descriptor(const char *name, const char *disk_file, uint64_t disk_size,
				   uint64_t capacity)
{
	xmlBufferPtr b = xmlBufferCreate();
	xmlTextWriterPtr w = xmlNewTextWriterMemory(b, 0);
	char num[32];
	static const char *const cpu[] = { "AllocationUnits", "hertz * 10^6",
					   "VirtualQuantity", OVA_CPUS, NULL };
	static const char *const mem[] = { "AllocationUnits", "byte * 2^20",
					   "VirtualQuantity", OVA_MEMORY_MIB, NULL };
	static const char *const scsi[] = { "ResourceSubType", "lsilogic", NULL };
	static const char *const disk[] = { "AddressOnParent", "0",
					    "HostResource", "ovf:/disk/vmdisk1",
					    "Parent", "3", NULL };

	if (!b || !w) {
		xmlFreeTextWriter(w);
		xmlBufferFree(b);
		return NULL;
	}
	xmlTextWriterSetIndent(w, 1);
	xmlTextWriterStartDocument(w, "1.0", "UTF-8", NULL);
	xmlTextWriterStartElement(w, BAD_CAST "Envelope");
	xmlTextWriterWriteAttribute(w, BAD_CAST "xmlns", BAD_CAST OVF_NS);
	xmlTextWriterWriteAttribute(w, BAD_CAST "xmlns:ovf", BAD_CAST OVF_NS);
	xmlTextWriterWriteAttribute(w, BAD_CAST "xmlns:rasd", BAD_CAST RASD_NS);
	xmlTextWriterWriteAttribute(w, BAD_CAST "xmlns:vssd", BAD_CAST VSSD_NS);
	xmlTextWriterWriteAttribute(w, BAD_CAST "xmlns:xsi", BAD_CAST XSI_NS);
	xmlTextWriterWriteAttribute(w, BAD_CAST "ovf:version", BAD_CAST "1.0");

	xmlTextWriterStartElement(w, BAD_CAST "References");
	xmlTextWriterStartElement(w, BAD_CAST "File");
	xmlTextWriterWriteAttribute(w, BAD_CAST "ovf:href", BAD_CAST disk_file);
	xmlTextWriterWriteAttribute(w, BAD_CAST "ovf:id", BAD_CAST "file1");
	snprintf(num, sizeof(num), "%" PRIu64, disk_size);
	xmlTextWriterWriteAttribute(w, BAD_CAST "ovf:size", BAD_CAST num);
	xmlTextWriterEndElement(w);
	xmlTextWriterEndElement(w);

	xmlTextWriterStartElement(w, BAD_CAST "DiskSection");
	xmlTextWriterWriteElement(w, BAD_CAST "Info", BAD_CAST "Virtual disk information");
	xmlTextWriterStartElement(w, BAD_CAST "Disk");
	snprintf(num, sizeof(num), "%" PRIu64, capacity);
	xmlTextWriterWriteAttribute(w, BAD_CAST "ovf:capacity", BAD_CAST num);
	xmlTextWriterWriteAttribute(w, BAD_CAST "ovf:capacityAllocationUnits", BAD_CAST "byte");
	xmlTextWriterWriteAttribute(w, BAD_CAST "ovf:diskId", BAD_CAST "vmdisk1");
	xmlTextWriterWriteAttribute(w, BAD_CAST "ovf:fileRef", BAD_CAST "file1");
	xmlTextWriterWriteAttribute(w, BAD_CAST "ovf:format", BAD_CAST VMDK_STREAM);
	xmlTextWriterEndElement(w);
	xmlTextWriterEndElement(w);

	xmlTextWriterStartElement(w, BAD_CAST "VirtualSystem");
	xmlTextWriterWriteAttribute(w, BAD_CAST "ovf:id", BAD_CAST name);
	xmlTextWriterWriteElement(w, BAD_CAST "Info", BAD_CAST "A virtual machine built by amiforge");
	xmlTextWriterWriteElement(w, BAD_CAST "Name", BAD_CAST name);

	xmlTextWriterStartElement(w, BAD_CAST "OperatingSystemSection");
	xmlTextWriterWriteAttribute(w, BAD_CAST "ovf:id", BAD_CAST OVF_OS_LINUX64);
	xmlTextWriterWriteElement(w, BAD_CAST "Info", BAD_CAST "The operating system");
	xmlTextWriterWriteElement(w, BAD_CAST "Description", BAD_CAST "Linux 64-Bit");
	xmlTextWriterEndElement(w);

	xmlTextWriterStartElement(w, BAD_CAST "VirtualHardwareSection");
	xmlTextWriterWriteElement(w, BAD_CAST "Info", BAD_CAST "Virtual hardware requirements");
	xmlTextWriterStartElement(w, BAD_CAST "System");
	xmlTextWriterWriteElementNS(w, BAD_CAST "vssd", BAD_CAST "ElementName", NULL,
				    BAD_CAST "Virtual Hardware Family");
	xmlTextWriterWriteElementNS(w, BAD_CAST "vssd", BAD_CAST "InstanceID", NULL, BAD_CAST "0");
	xmlTextWriterWriteElementNS(w, BAD_CAST "vssd", BAD_CAST "VirtualSystemIdentifier", NULL,
				    BAD_CAST name);
	xmlTextWriterWriteElementNS(w, BAD_CAST "vssd", BAD_CAST "VirtualSystemType", NULL,
				    BAD_CAST "vmx-10");
	xmlTextWriterEndElement(w);
	item(w, "3", "1", OVA_CPUS " virtual CPUs", cpu);
	item(w, "4", "2", OVA_MEMORY_MIB " MB of memory", mem);
	item(w, "6", "3", "SCSI controller 0", scsi);
	item(w, "17", "4", "Hard disk 1", disk);
	xmlTextWriterEndElement(w);	/* VirtualHardwareSection */
	xmlTextWriterEndElement(w);	/* VirtualSystem */
	xmlTextWriterEndElement(w);	/* Envelope */
	if (xmlTextWriterEndDocument(w) < 0) {
		xmlFreeTextWriter(w);
		xmlBufferFree(b);
		return NULL;
	}
	xmlFreeTextWriter(w);
	return b;
}

static void hex(const unsigned char *d, unsigned n, char *out)
{
	static const char x[] = "0123456789abcdef";
	unsigned i;

	for (i = 0; i < n; i++) {
		out[2 * i] = x[d[i] >> 4];
		out[2 * i + 1] = x[d[i] & 15];
	}
	out[2 * n] = '\0';
}

static int sha256_mem(const void *p, size_t n, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned len = 0;

	if (!EVP_Digest(p, n, md, &len, EVP_sha256(), NULL))
		return err_set("sha256 failed");
	hex(md, len, out);
	return 0;
}

static int add_member(struct archive *a, const char *name, int64_t size)
{
	struct archive_entry *e = archive_entry_new();
	int r;

	archive_entry_set_pathname(e, name);
	archive_entry_set_size(e, size);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_mtime(e, time(NULL), 0);
	r = archive_write_header(a, e);
	archive_entry_free(e);
	if (r != ARCHIVE_OK)
		return err_set("ova: member '%s': %s", name, archive_error_string(a));
	return 0;
}

static int add_bytes(struct archive *a, const char *name, const void *p, size_t n)
{
	if (add_member(a, name, (int64_t)n) < 0)
		return -1;
	if (archive_write_data(a, p, n) != (la_ssize_t)n)
		return err_set("ova: write '%s': %s", name, archive_error_string(a));
	return 0;
}

/* Copy the disk into the archive, hashing it on the way. */
static int add_file(struct archive *a, const char *name, const char *path, int64_t size,
		    char digest[65])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char *buf = xmalloc(OVA_COPY_BLOCK), d[EVP_MAX_MD_SIZE];
	unsigned dl = 0;
	int64_t left = size;
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = -1;

	if (fd < 0) {
		err_errno("open '%s'", path);
		goto cleanup;
	}
	if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
		err_set("sha256 init failed");
		goto cleanup;
	}
	if (add_member(a, name, size) < 0)
		goto cleanup;
	while (left > 0) {
		size_t want = left < OVA_COPY_BLOCK ? (size_t)left : OVA_COPY_BLOCK;
		ssize_t n = read_all(fd, buf, want);

		if (n <= 0) {
			err_set("read '%s': %s", path, n < 0 ? strerror(errno) : "shorter than expected");
			goto cleanup;
		}
		EVP_DigestUpdate(md, buf, (size_t)n);
		if (archive_write_data(a, buf, (size_t)n) != n) {
			err_set("ova: write '%s': %s", name, archive_error_string(a));
			goto cleanup;
		}
		left -= n;
	}
	EVP_DigestFinal_ex(md, d, &dl);
	hex(d, dl, digest);
	ret = 0;

cleanup:
	if (fd >= 0)
		close(fd);
	EVP_MD_CTX_free(md);
	free(buf);
	return ret;
}

int ova_write(const char *tmp_path, const char *vmdk_path, const char *name,
	      uint64_t virtual_size)
{
	struct archive *a = NULL;
	xmlBufferPtr ovf = NULL;
	struct stat st;
	char *ovf_name = xasprintf("%s.ovf", name), *mf_name = xasprintf("%s.mf", name);
	char *disk_name = xasprintf("%s-disk1.vmdk", name), *mf = NULL;
	char ovf_sum[65], disk_sum[65];
	int ret = -1;

	if (stat(vmdk_path, &st) < 0) {
		err_errno("stat '%s'", vmdk_path);
		goto cleanup;
	}
	ovf = ovf_descriptor(name, disk_name, (uint64_t)st.st_size, virtual_size);
	if (!ovf) {
		err_set("ova: cannot write the OVF descriptor");
		goto cleanup;
	}
	if (sha256_mem(xmlBufferContent(ovf), (size_t)xmlBufferLength(ovf), ovf_sum) < 0)
		goto cleanup;
	a = archive_write_new();
	if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    archive_write_open_filename(a, tmp_path) != ARCHIVE_OK) {
		err_set("ova '%s': %s", tmp_path, archive_error_string(a));
		goto cleanup;
	}
	if (add_bytes(a, ovf_name, xmlBufferContent(ovf), (size_t)xmlBufferLength(ovf)) < 0 ||
	    add_file(a, disk_name, vmdk_path, st.st_size, disk_sum) < 0)
		goto cleanup;
	mf = xasprintf("SHA256(%s)= %s\nSHA256(%s)= %s\n", ovf_name, ovf_sum, disk_name, disk_sum);
	if (add_bytes(a, mf_name, mf, strlen(mf)) < 0)
		goto cleanup;
	if (archive_write_close(a) != ARCHIVE_OK) {
		err_set("ova '%s': %s", tmp_path, archive_error_string(a));
		goto cleanup;
	}
	ret = 0;

cleanup:
	if (a)
		archive_write_free(a);
	if (ovf)
		xmlBufferFree(ovf);
	free(ovf_name);
	free(mf_name);
	free(disk_name);
	free(mf);
	return ret;
}
