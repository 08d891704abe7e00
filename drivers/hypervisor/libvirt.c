/* libvirt.c: the default hypervisor driver — a transient libvirt domain from
 * generated XML. The URI is passed to libvirt unchanged; when it names
 * another host, the spec's files are placed there as storage volumes and the
 * agent channel and console reach this host through the connection
 * (libvirt-remote.h): nothing assumes a shared filesystem. */
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/uri.h>
#include <libxml/xmlwriter.h>

#include "hypervisor.h"
#include "libvirt-remote.h"
#include "builder/disk/qemu-img.h"
#include "error.h"
#include "log.h"
#include "util.h"

/* How often wait() looks at the domain state. */
#define LV_POLL_MS 200

struct lv_conn {
	virConnectPtr conn;
	char *uri;     /* as libvirt reports it */
	bool local;    /* no server part: guests run on this host */
};

struct lv_vm {
	virDomainPtr dom;
	size_t n_disks;   /* vda.. as in the spec */
	const char *seed_dev;   /* the seed cdrom's target (hdc, sda) or NULL */
	/* A remote host's guest: its volumes and bridges, and the local files
	 * its writable disks come back to (collect). */
	struct lvr *remote;
	struct strv collect_roles, collect_paths;
	struct vm_backing chains[VM_DISKS_MAX][LVR_CHAIN_MAX];
	/* A remote guest's boot disk (vda) as both hosts name it, bottom (the
	 * base) first and its top last: the local file, the volume's path
	 * there, the format. Snapshots push a top, streams cut the layers they
	 * merged (checkpoints on a remote host). */
	struct strv here, there, fmts;
	size_t vda_collect;   /* its index in collect_* (its role and path there are
			       * the first top's: see top_role() and here) */
	unsigned tops;        /* snapshots taken: the top's volume is top_role()'s */
	bool lost;            /* a frozen layer could not come back here */
	char *name;       /* the domain's, for a new connection's lookup */
	bool detached;
};

static void lv_silent(void *opaque UNUSED, virErrorPtr e UNUSED)
{
	/* Errors are fetched with virGetLastErrorMessage() where they matter. */
}

static int lv_err(const char *fmt, const char *subject)
{
	return err_set("%s '%s': %s", fmt, subject, virGetLastErrorMessage());
}

static bool uri_is_local(const char *uri)
{
	xmlURIPtr u = xmlParseURI(uri);
	bool local;

	if (!u)
		return false;
	local = !u->server || !u->server[0];
	xmlFreeURI(u);
	return local;
}

static enum hv_open_result lv_open(void *priv, const char *uri)
{
	struct lv_conn *c = priv;
	const char *want = uri;
	char *got;

	virSetErrorFunc(NULL, lv_silent);
	/* Streams through a remote connection need libvirt's event loop,
	 * registered before the connection opens. */
	if (uri && !uri_is_local(uri) && lvr_event_loop() < 0)
		return HV_OPEN_ERROR;
	if (!want)
		want = geteuid() == 0 ? "qemu:///system" : "qemu:///session";
	c->conn = uri && !uri_is_local(uri) ? lvr_connect(want) : virConnectOpen(want);
	if (!c->conn) {
		err_set("connect to libvirt '%s': %s", want, virGetLastErrorMessage());
		/* Without an explicit URI a missing daemon means "not for me". */
		return uri ? HV_OPEN_ERROR : HV_OPEN_DECLINED;
	}
	got = virConnectGetURI(c->conn);
	c->uri = xstrdup(got ? got : want);
	free(got);
	c->local = uri_is_local(c->uri);
	log_debug("libvirt: connected to %s (%s)", c->uri, c->local ? "local" : "remote");
	return HV_OPEN_OK;
}

static int lv_resolve_accel(void *priv, const struct arch *a, enum accel req, enum accel *out)
{
	struct lv_conn *c = priv;
	char *caps;

	if (c->local || req != ACCEL_AUTO)
		return accel_resolve(req, out);
	/* Remote: our probe says nothing about that host; ask its libvirt
	 * (KVM for this architecture there). */
	caps = virConnectGetDomainCapabilities(c->conn, NULL, a->name, NULL, "kvm", 0);
	*out = caps ? ACCEL_KVM : ACCEL_TCG;
	free(caps);
	log_debug("libvirt: remote accelerator auto: %s", accel_name(*out));
	return 0;
}

/* xmlTextWriter helpers: every value is escaped by libxml2. */
#define W(call) do { if ((call) < 0) goto fail; } while (0)

static int elem_text(xmlTextWriterPtr w, const char *name, const char *text)
{
	return xmlTextWriterWriteElement(w, BAD_CAST name, BAD_CAST text);
}

static int attr(xmlTextWriterPtr w, const char *name, const char *val)
{
	return xmlTextWriterWriteAttribute(w, BAD_CAST name, BAD_CAST val);
}

static int start(xmlTextWriterPtr w, const char *name)
{
	return xmlTextWriterStartElement(w, BAD_CAST name);
}

static int end(xmlTextWriterPtr w)
{
	return xmlTextWriterEndElement(w);
}

/* The overlay's backing image, spelled out with its format so that libvirt
 * never probes it; relabel='no' keeps a shared base's ownership. With
 * d->chain, every image of the chain, nested. */
static int write_backing(xmlTextWriterPtr w, const struct vm_disk *d)
{
	size_t i, n = d->n_chain ? d->n_chain : 1;

	for (i = 0; i < n; i++) {
		W(start(w, "backingStore"));
		W(attr(w, "type", "file"));
		W(start(w, "format"));
		W(attr(w, "type", d->n_chain ? d->chain[i].format : d->backing_format));
		W(end(w));
		W(start(w, "source"));
		W(attr(w, "file", d->n_chain ? d->chain[i].path : d->backing));
		if (d->n_chain ? d->chain[i].shared : d->backing_shared) {
			W(start(w, "seclabel"));
			W(attr(w, "model", "dac"));
			W(attr(w, "relabel", "no"));
			W(end(w));
		}
		W(end(w));
	}
	/* An empty element says "no further backing"; a checkpoint chain is
	 * left for libvirt to read from the headers (formats recorded). */
	if (d->n_chain || !d->backing_chain) {
		W(start(w, "backingStore"));
		W(end(w));
	}
	for (i = 0; i < n; i++)
		W(end(w));
	return 0;
fail:
	return -1;
}

static int write_disk(xmlTextWriterPtr w, const char *device, const char *path,
		      const char *format, const char *dev, const char *bus, bool readonly,
		      const struct vm_disk *d)
{
	W(start(w, "disk"));
	W(attr(w, "type", "file"));
	W(attr(w, "device", device));
	W(start(w, "driver"));
	W(attr(w, "name", "qemu"));
	W(attr(w, "type", format));
	if (!readonly)
		W(attr(w, "discard", "unmap"));
	W(end(w));
	W(start(w, "source"));
	W(attr(w, "file", path));
	W(end(w));
	if (d && (d->backing || d->n_chain))
		W(write_backing(w, d));
	W(start(w, "target"));
	W(attr(w, "dev", dev));
	W(attr(w, "bus", bus));
	W(end(w));
	if (readonly) {
		W(start(w, "readonly"));
		W(end(w));
	}
	W(end(w));
	return 0;
fail:
	return -1;
}

#define QEMU_NS "http://libvirt.org/schemas/domain/qemu/1.0"

/* What a restore keeps of the domain that saved the state: libvirt checks
 * the new XML's name, UUID, generation ID and MAC address against the
 * saved ones (and gives the restored guest a new generation ID itself). */
struct saved_ids {
	char uuid[37];
	char genid[37];
	char mac[18];    /* its NIC's, or "" */
};

/* <interface> for the user network (no forwards), a libvirt network or a
 * host bridge; virtio either way. */
static int write_interface(xmlTextWriterPtr w, const struct vm_spec *s,
			   const struct saved_ids *ids)
{
	W(start(w, "interface"));
	W(attr(w, "type", s->net == VM_NET_USER ? "user" : vm_net_name(s->net)));
	if (ids && ids->mac[0]) {
		W(start(w, "mac"));
		W(attr(w, "address", ids->mac));
		W(end(w));
	}
	if (s->net != VM_NET_USER) {
		W(start(w, "source"));
		W(attr(w, s->net == VM_NET_BRIDGE ? "bridge" : "network", s->net_source));
		W(end(w));
	}
	W(start(w, "model"));
	W(attr(w, "type", "virtio"));
	W(end(w));
	W(end(w));
	return 0;
fail:
	return -1;
}

/* The user network with hostfwd rules, each bound to 127.0.0.1, as QEMU
 * arguments (libvirt's qemu:commandline; the ports are checked numbers). */
static int write_user_net_forwards(xmlTextWriterPtr w, const struct vm_spec *s)
{
	struct strv a = STRV_INIT;
	char *netdev = xstrdup("user,id=amiforge-net0"), *t;
	size_t i;
	int ret = -1;

	for (i = 0; i < s->n_forwards; i++) {
		t = xasprintf("%s,hostfwd=tcp:127.0.0.1:%u-:%u", netdev, s->forwards[i].host_port,
			      s->forwards[i].guest_port);
		free(netdev);
		netdev = t;
	}
	strv_push(&a, "-netdev");
	strv_push(&a, netdev);
	strv_push(&a, "-device");
	/* An explicit slot: QEMU realises this device before libvirt's own,
	 * which take slots from 0x2 up (a handful here); 0x1e is never theirs. */
	strv_pushf(&a, "virtio-net-pci,netdev=amiforge-net0,bus=%s,addr=0x1e",
		   arch_get(s->arch)->pci_root);
	W(xmlTextWriterStartElementNS(w, BAD_CAST "qemu", BAD_CAST "commandline", NULL));
	for (i = 0; i < a.n; i++) {
		W(xmlTextWriterStartElementNS(w, BAD_CAST "qemu", BAD_CAST "arg", NULL));
		W(attr(w, "value", a.v[i]));
		W(end(w));
	}
	W(end(w));
	ret = 0;
fail:
	strv_release(&a);
	free(netdev);
	return ret;
}

/* <name>text</name> of the saved domain XML (libvirt's own formatting):
 * a UUID's 36 characters into out, or false. */
static bool saved_id(const char *xml, const char *name, char out[37])
{
	char open[16], close[16];
	const char *p;
	size_t n;

	snprintf(open, sizeof(open), "<%s>", name);
	snprintf(close, sizeof(close), "</%s>", name);
	if (!(p = strstr(xml, open)))
		return false;
	p += strlen(open);
	n = strspn(p, "0123456789abcdefABCDEF-");
	if (n != 36 || strncmp(p + n, close, strlen(close)) != 0)
		return false;
	memcpy(out, p, 36);
	out[36] = '\0';
	return true;
}

static int saved_ids_read(struct lv_conn *c, const char *state, const struct vm_spec *spec,
			  struct saved_ids *ids)
{
	char *xml = virDomainSaveImageGetXMLDesc(c->conn, state, 0);
	const char *p;
	bool ok;

	if (!xml)
		return lv_err("read the saved state", state);
	ok = saved_id(xml, "uuid", ids->uuid) &&
	     (arch_get(spec->arch)->id != ARCH_X86_64 || saved_id(xml, "genid", ids->genid));
	ids->mac[0] = '\0';
	if (ok && (p = strstr(xml, "<mac address='"))) {
		p += strlen("<mac address='");
		if (strspn(p, "0123456789abcdefABCDEF:") == 17 && p[17] == '\'') {
			memcpy(ids->mac, p, 17);
			ids->mac[17] = '\0';
		}
	}
	free(xml);
	return ok ? 0 : err_set("saved state '%s': no domain UUID or generation ID in its XML",
				state);
}

/* remote: the console is a pty and the agent channel a socket libvirt
 * places itself, both opened through the connection (libvirt-remote.h).
 * ids: a restore's (saved_ids_read), or NULL. */
static char *domain_xml(const struct vm_spec *s, bool remote, const struct saved_ids *ids)
{
	xmlBufferPtr xb = NULL;
	xmlTextWriterPtr w = NULL;
	const struct arch *a = arch_get(s->arch);
	char num[32], dev[8];
	char *out = NULL;
	size_t i;

	if (vm_spec_check(s) < 0)
		return NULL;
	xb = xmlBufferCreate();
	if (!xb || !(w = xmlNewTextWriterMemory(xb, 0)))
		goto fail;
	W(xmlTextWriterSetIndent(w, 1));
	W(xmlTextWriterSetIndentString(w, BAD_CAST "  "));
	W(start(w, "domain"));
	W(attr(w, "type", s->accel == ACCEL_KVM ? "kvm" : "qemu"));
	if (s->net == VM_NET_USER && s->n_forwards)
		W(attr(w, "xmlns:qemu", QEMU_NS));
	W(elem_text(w, "name", s->name));
	if (ids)
		W(elem_text(w, "uuid", ids->uuid));
	/* A VM generation ID: libvirt gives a guest restored from a saved
	 * state a new one, on which a kernel with the vmgenid driver reseeds
	 * its random number generator (two guests from one state must not
	 * share it). */
	if (a->id == ARCH_X86_64 && ids)
		W(elem_text(w, "genid", ids->genid));
	else if (a->id == ARCH_X86_64) {
		W(start(w, "genid"));
		W(end(w));
	}
	W(start(w, "memory"));
	W(attr(w, "unit", "MiB"));
	snprintf(num, sizeof(num), "%u", s->memory_mib);
	W(xmlTextWriterWriteString(w, BAD_CAST num));
	W(end(w));
	snprintf(num, sizeof(num), "%u", s->cpus);
	W(elem_text(w, "vcpu", num));
	W(start(w, "os"));
	W(start(w, "type"));
	W(attr(w, "arch", a->name));
	if (a->libvirt_machine)
		W(attr(w, "machine", a->libvirt_machine));
	W(xmlTextWriterWriteString(w, BAD_CAST "hvm"));
	W(end(w));
	if (a->fw_code) {
		/* UEFI: the firmware read-only, the variables a copy of the
		 * template (libvirt makes it when the file is missing). */
		W(start(w, "loader"));
		W(attr(w, "readonly", "yes"));
		W(attr(w, "type", "pflash"));
		W(xmlTextWriterWriteString(w, BAD_CAST a->fw_code));
		W(end(w));
		W(start(w, "nvram"));
		W(attr(w, "template", a->fw_vars));
		if (s->nvram && !remote)
			W(xmlTextWriterWriteString(w, BAD_CAST s->nvram));
		W(end(w));
	}
	W(start(w, "boot"));
	W(attr(w, "dev", "hd"));
	W(end(w));
	W(end(w));
	W(start(w, "features"));
	W(start(w, "acpi"));
	W(end(w));
	if (a->apic) {
		W(start(w, "apic"));
		W(end(w));
	}
	W(end(w));
	if (s->accel == ACCEL_KVM) {
		W(start(w, "cpu"));
		W(attr(w, "mode", "host-passthrough"));
		W(end(w));
	} else if (a->tcg_cpu) {
		/* QEMU's -cpu max: everything TCG emulates. */
		W(start(w, "cpu"));
		W(attr(w, "mode", "maximum"));
		W(attr(w, "check", "none"));
		W(end(w));
	}
	W(start(w, "clock"));
	W(attr(w, "offset", "utc"));
	W(end(w));
	W(elem_text(w, "on_poweroff", "destroy"));
	W(elem_text(w, "on_reboot", "restart"));
	W(elem_text(w, "on_crash", "destroy"));

	W(start(w, "devices"));
	for (i = 0; i < s->n_disks; i++) {
		snprintf(dev, sizeof(dev), "vd%c", (char)('a' + i));
		W(write_disk(w, "disk", s->disks[i].path, s->disks[i].format, dev, "virtio",
			     s->disks[i].readonly, &s->disks[i]));
	}
	if (s->seed_iso && a->seed_scsi) {
		/* No IDE on this machine: the cdrom on virtio-scsi. */
		W(start(w, "controller"));
		W(attr(w, "type", "scsi"));
		W(attr(w, "index", "0"));
		W(attr(w, "model", "virtio-scsi"));
		W(end(w));
		W(write_disk(w, "cdrom", s->seed_iso, "raw", "sda", "scsi", true, NULL));
	} else if (s->seed_iso) {
		W(write_disk(w, "cdrom", s->seed_iso, "raw", "hdc", "ide", true, NULL));
	}
	if (s->console_log) {
		W(start(w, "serial"));
		W(attr(w, "type", remote ? "pty" : "file"));
		if (!remote) {
			W(start(w, "source"));
			W(attr(w, "path", s->console_log));
			W(attr(w, "append", "on"));
			W(end(w));
		}
		W(start(w, "target"));
		W(attr(w, "port", "0"));
		W(end(w));
		W(end(w));
	}
	if (s->agent_socket) {
		W(start(w, "channel"));
		W(attr(w, "type", "unix"));
		W(start(w, "source"));
		W(attr(w, "mode", "bind"));
		if (!remote)
			W(attr(w, "path", s->agent_socket));
		W(end(w));
		W(start(w, "target"));
		W(attr(w, "type", "virtio"));
		W(attr(w, "name", HV_AGENT_PORT_NAME));
		W(end(w));
		W(end(w));
	}
	/* The user network with port forwards goes on QEMU's command line
	 * (below): libvirt 9's <portForward> needs the passt backend. */
	if (s->net != VM_NET_NONE && !(s->net == VM_NET_USER && s->n_forwards))
		W(write_interface(w, s, ids));
	W(start(w, "rng"));
	W(attr(w, "model", "virtio"));
	W(start(w, "backend"));
	W(attr(w, "model", "random"));
	W(xmlTextWriterWriteString(w, BAD_CAST "/dev/urandom"));
	W(end(w));
	W(end(w));
	W(start(w, "memballoon"));
	W(attr(w, "model", "none"));
	W(end(w));
	W(end(w)); /* devices */
	if (s->net == VM_NET_USER && s->n_forwards)
		W(write_user_net_forwards(w, s));
	W(end(w)); /* domain */
	W(xmlTextWriterEndDocument(w));
	xmlFreeTextWriter(w);
	w = NULL;
	out = xstrdup((const char *)xmlBufferContent(xb));
	xmlBufferFree(xb);
	return out;
fail:
	err_set("generate domain XML for '%s': libxml2 writer failed", s->name);
	if (w)
		xmlFreeTextWriter(w);
	if (xb)
		xmlBufferFree(xb);
	return NULL;
}

char *hv_libvirt_domain_xml(const struct vm_spec *s)
{
	return domain_xml(s, false, NULL);
}

/* The remote host's copy of spec: every file uploaded as a volume, each
 * disk with its whole backing chain (checkpoint layers, the agent layer,
 * the base), the paths in *rs those volumes' (owned by v->remote). */
static int place_remote(struct lv_conn *c, struct lv_vm *v, const struct vm_spec *spec,
			struct vm_spec *rs)
{
	struct strv files = STRV_INIT, formats = STRV_INIT;
	char role[24];
	size_t i, k;
	int ret = -1;

	*rs = *spec;
	v->remote = lvr_new(c->conn, spec->name);
	for (i = 0; i < spec->n_disks; i++) {
		const struct vm_disk *d = &spec->disks[i];
		struct vm_disk *rd = &rs->disks[i];

		snprintf(role, sizeof(role), "vd%c", (char)('a' + i));
		if (!(rd->path = lvr_upload(v->remote, role, d->path)))
			goto cleanup;
		if (!d->readonly) {
			if (i == 0)
				v->vda_collect = v->collect_roles.n;
			strv_push(&v->collect_roles, role);
			strv_push(&v->collect_paths, d->path);
		}
		if (!d->backing) {
			if (i == 0 && !d->readonly) {
				strv_push(&v->here, d->path);
				strv_push(&v->there, rd->path);
				strv_push(&v->fmts, d->format);
			}
			continue;
		}
		/* The chain as the headers say (the top is d->path itself). */
		if (lvr_chain(d->path, &files, &formats) < 0)
			goto cleanup;
		if (files.n < 2 || strcmp(files.v[1], d->backing) != 0) {
			err_set("domain '%s': the backing file of '%s' is not '%s'", spec->name,
				d->path, d->backing);
			goto cleanup;
		}
		for (k = 1; k < files.n; k++) {
			struct vm_backing *b = &v->chains[i][k - 1];

			snprintf(role, sizeof(role), "vd%c-b%zu", (char)('a' + i), k);
			*b = (struct vm_backing){ 0 };
			/* Each image below the overlay (the base, the agent layer,
			 * checkpoints') once per content, shared. */
			b->path = lvr_upload_shared(v->remote, files.v[k], k < files.n - 1);
			b->shared = b->path != NULL;
			if (!b->path)
				log_warn("%s: uploading it for this guest alone", err_msg());
			if (!b->path && !(b->path = lvr_upload(v->remote, role, files.v[k])))
				goto cleanup;
			b->format = strcmp(formats.v[k], "raw") == 0 ? "raw" : "qcow2";
		}
		for (k = files.n; i == 0 && !d->readonly && k-- > 0;) {
			strv_push(&v->here, files.v[k]);
			strv_push(&v->there, k ? v->chains[0][k - 1].path : rd->path);
			strv_push(&v->fmts, k ? v->chains[0][k - 1].format : d->format);
		}
		rd->chain = v->chains[i];
		rd->n_chain = files.n - 1;
		rd->backing = NULL;
		rd->backing_chain = false;
		rd->backing_shared = false;   /* the volumes are this guest's own */
		strv_release(&files);
		strv_release(&formats);
	}
	if (spec->seed_iso && !(rs->seed_iso = lvr_upload(v->remote, "seed", spec->seed_iso)))
		goto cleanup;
	ret = 0;
cleanup:
	strv_release(&files);
	strv_release(&formats);
	return ret;
}

/* A remote connection that died (the host, ssh, a keepalive timeout):
 * open a new one so that the guest and its volumes can still be released,
 * and look the domain up again on it (NULL: gone with the old one, as an
 * AUTODESTROY domain does). 0, or -1 (no connection: `clean` releases them
 * from the journal). */
static int lv_reconnect(struct lv_conn *c, struct lv_vm *v)
{
	virConnectPtr conn;

	if (c->local || virConnectIsAlive(c->conn) == 1)
		return 0;
	log_warn("libvirt: the connection to %s is closed; connecting again to release "
		 "domain '%s'", c->uri, v->name ? v->name : "?");
	conn = lvr_connect(c->uri);
	if (!conn)
		return -1;
	virConnectClose(c->conn);
	c->conn = conn;
	lvr_set_conn(v->remote, conn);
	if (v->dom)
		virDomainFree(v->dom);
	v->dom = v->name ? virDomainLookupByName(conn, v->name) : NULL;
	return 0;
}

static int lv_vm_release(void *priv, void *vpriv);

static int lv_start(void *priv, void *vpriv, const struct vm_spec *spec)
{
	struct lv_conn *c = priv;
	struct lv_vm *v = vpriv;
	struct vm_spec rs;
	char *xml = NULL;

	v->name = xstrdup(spec->name);
	if (!c->local) {
		if (place_remote(c, v, spec, &rs) < 0)
			goto fail;
		xml = domain_xml(&rs, true, NULL);
	} else if (spec->restore_state) {
		struct saved_ids ids;

		if (saved_ids_read(c, spec->restore_state, spec, &ids) < 0)
			goto fail;
		xml = domain_xml(spec, false, &ids);
	} else {
		xml = domain_xml(spec, false, NULL);
	}
	if (!xml)
		goto fail;
	log_debug("libvirt: domain XML:\n%s", xml);
	/* AUTODESTROY: the domain dies with our connection, even on SIGKILL.
	 * A persistent one (kept for inspection) is journaled instead, and so
	 * is a restored one (a restore has no AUTODESTROY): `clean` destroys
	 * it after a SIGKILL. */
	if (!spec->restore_state)
		v->dom = virDomainCreateXML(c->conn, xml,
					    spec->persistent ? 0 : VIR_DOMAIN_START_AUTODESTROY);
	else if (virDomainRestoreFlags(c->conn, spec->restore_state, xml,
				       VIR_DOMAIN_SAVE_RUNNING) == 0)
		v->dom = virDomainLookupByName(c->conn, spec->name);
	free(xml);
	if (!v->dom) {
		lv_err(spec->restore_state ? "restore libvirt domain" : "start libvirt domain",
		       spec->name);
		goto fail;
	}
	v->n_disks = spec->n_disks;
	v->seed_dev = !spec->seed_iso ? NULL : arch_get(spec->arch)->seed_scsi ? "sda" : "hdc";
	if (v->remote && lvr_bridge(v->remote, v->dom, spec->agent_socket, spec->console_log,
				    spec->console_log_max ? spec->console_log_max :
				    HV_CONSOLE_LOG_MAX) < 0) {
		virDomainDestroy(v->dom);
		goto fail;
	}
	return 0;
fail:
	/* Not started: the core owes no vm_release; the volumes go now. */
	lv_vm_release(c, v);
	return -1;
}

/* The role of a remote guest's boot disk's volume after `tops` snapshots:
 * the uploaded overlay's, then each snapshot's new top (lvr_overlay). */
static const char *top_role(unsigned tops, char *buf, size_t n)
{
	if (tops)
		snprintf(buf, n, "vda.t%u", tops);
	else
		snprintf(buf, n, "vda");
	return buf;
}

/* Volume role of a remote guest's boot disk back over the local file of
 * v->here.v[idx], its header then naming the local image below it (the
 * volume's names the remote one, or a stale one). 0 or -1. */
static int fetch_layer(struct lv_vm *v, const char *role, size_t idx)
{
	if (lvr_download(v->remote, role, v->here.v[idx]) < 0)
		return -1;
	if (idx && qemu_img_rebase_unsafe(v->here.v[idx], v->here.v[idx - 1], v->fmts.v[idx - 1],
					  NULL) < 0)
		return err_prefix("layer '%s'", v->here.v[idx]);
	return 0;
}

/* The guest has stopped: its writable disks' volumes come back over their
 * local files. */
static int lv_collect(void *priv UNUSED, void *vpriv)
{
	struct lv_vm *v = vpriv;
	size_t i;

	if (!v->remote)
		return 0;
	lvr_unbridge(v->remote);   /* the console log is complete */
	if (v->lost)
		return err_set("domain '%s': a layer of its disk did not come back from the "
			       "remote host, so its disk cannot either", v->name);
	for (i = 0; i < v->collect_roles.n; i++) {
		char role[24];
		int r = i == v->vda_collect && v->here.n ?
			fetch_layer(v, top_role(v->tops, role, sizeof(role)), v->here.n - 1) :
			lvr_download(v->remote, v->collect_roles.v[i], v->collect_paths.v[i]);

		if (r < 0)
			return -1;
	}
	return 0;
}

/* <domainsnapshot> freezing vda into an external new_top; the other disks
 * are left out of the snapshot. Caller frees. */
static char *snapshot_xml(const struct lv_vm *v, const char *new_top, const char *state)
{
	xmlBufferPtr xb = xmlBufferCreate();
	xmlTextWriterPtr w = xb ? xmlNewTextWriterMemory(xb, 0) : NULL;
	char dev[8];
	char *out = NULL;
	size_t i;

	if (!w)
		goto fail;
	W(start(w, "domainsnapshot"));
	if (state) {
		W(start(w, "memory"));
		W(attr(w, "snapshot", "external"));
		W(attr(w, "file", state));
		W(end(w));
	}
	W(start(w, "disks"));
	for (i = 0; i < v->n_disks + (v->seed_dev ? 1 : 0); i++) {
		if (i < v->n_disks)
			snprintf(dev, sizeof(dev), "vd%c", (char)('a' + i));
		else
			snprintf(dev, sizeof(dev), "%s", v->seed_dev);
		W(start(w, "disk"));
		W(attr(w, "name", dev));
		W(attr(w, "snapshot", i == 0 ? "external" : "no"));
		if (i == 0) {
			W(start(w, "driver"));
			W(attr(w, "type", "qcow2"));
			W(end(w));
			W(start(w, "source"));
			W(attr(w, "file", new_top));
			W(end(w));
		}
		W(end(w));
	}
	W(end(w));
	W(end(w));
	W(xmlTextWriterEndDocument(w));
	xmlFreeTextWriter(w);
	w = NULL;
	out = xstrdup((const char *)xmlBufferContent(xb));
fail:
	if (!out)
		err_set("generate snapshot XML for '%s': libxml2 writer failed", new_top);
	if (w)
		xmlFreeTextWriter(w);
	if (xb)
		xmlBufferFree(xb);
	return out;
}

/* The snapshot itself: vda's top frozen, the guest writing to top (a path
 * where the hypervisor runs) from now on. reuse: top exists already. */
static int freeze_top(struct lv_vm *v, const char *top, bool reuse)
{
	virDomainSnapshotPtr snap;
	char *xml = snapshot_xml(v, top, NULL);

	if (!xml)
		return -1;
	/* No metadata: the domain is transient and the layers are ours. */
	snap = virDomainSnapshotCreateXML(v->dom, xml, VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY |
					  VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA |
					  VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC |
					  (reuse ? VIR_DOMAIN_SNAPSHOT_CREATE_REUSE_EXT : 0));
	free(xml);
	if (!snap)
		return lv_err("snapshot the disk of domain", virDomainGetName(v->dom));
	virDomainSnapshotFree(snap);
	return 0;
}

/* On a remote host the new top is a volume of the guest's (vda.tN, backed
 * by the old top's volume), and the frozen layer comes back over its local
 * file, which the caller (a checkpoint) keeps; new_top here is where the
 * top will come back to when the guest stops (collect). */
static int snapshot_remote(struct lv_vm *v, const char *new_top)
{
	virDomainBlockInfo bi;
	char role[24], frozen[24];
	const char *top;
	size_t n = v->here.n;

	if (!n || v->lost)
		return err_set("snapshot to '%s': domain '%s' has no writable boot disk here",
			       new_top, v->name);
	if (virDomainGetBlockInfo(v->dom, "vda", &bi, 0) < 0)
		return lv_err("size of the disk of domain", v->name);
	top_role(v->tops, frozen, sizeof(frozen));
	if (!(top = lvr_overlay(v->remote, top_role(v->tops + 1, role, sizeof(role)),
				v->there.v[n - 1], v->fmts.v[n - 1], bi.capacity)))
		return -1;
	if (freeze_top(v, top, true) < 0) {
		if (lvr_drop(v->remote, top) < 0)
			log_warn("%s", err_msg());
		return -1;
	}
	v->tops++;
	strv_push(&v->here, new_top);
	strv_push(&v->there, top);
	strv_push(&v->fmts, "qcow2");
	if (fetch_layer(v, frozen, n - 1) < 0) {
		v->lost = true;   /* the build cannot get its disk back whole */
		return -1;
	}
	return 0;
}

static int lv_snapshot_disk(void *priv UNUSED, void *vpriv, const char *new_top)
{
	struct lv_vm *v = vpriv;

	return v->remote ? snapshot_remote(v, new_top) : freeze_top(v, new_top, false);
}

/* A state restores under the libvirt and QEMU versions that saved it. */
static int lv_state_identity(void *priv, const struct vm_spec *spec UNUSED, struct buf *out)
{
	struct lv_conn *c = priv;
	unsigned long hv = 0, lib = 0;

	if (virConnectGetVersion(c->conn, &hv) < 0 || virConnectGetLibVersion(c->conn, &lib) < 0)
		return lv_err("versions of", "libvirt");
	return buf_printf(out, "libvirt %lu qemu %lu\n", lib, hv);
}

/* One external snapshot of memory and vda: libvirt pauses the guest,
 * writes its state to the file (its save-image format, which
 * virDomainRestoreFlags reads), freezes the disk, resumes. Atomic: when it
 * fails, nothing changed and the disk alone is frozen. */
static int lv_save_state(void *priv UNUSED, void *vpriv, const char *new_top, const char *state)
{
	struct lv_vm *v = vpriv;
	virDomainSnapshotPtr snap;
	char *xml;

	if (v->remote)
		return err_set("domain '%s': no saved state on a remote host", v->name);
	if (!(xml = snapshot_xml(v, new_top, state)))
		return -1;
	snap = virDomainSnapshotCreateXML(v->dom, xml, VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA |
					  VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC);
	free(xml);
	if (snap) {
		virDomainSnapshotFree(snap);
		if (chmod(state, 0600) < 0)
			log_debug("libvirt: chmod '%s': %s", state, strerror(errno));
		return 0;
	}
	lv_err("save the state of domain", v->name);
	unlink(state);
	if (freeze_top(v, new_top, false) < 0)
		return -1;
	return 1;
}

/* A remote guest's layers between base (index b of v->here) and the top
 * are out of its chain: their volumes go, and the top backs onto base. */
static void cut_merged(struct lv_vm *v, size_t b)
{
	size_t top = v->here.n - 1, i;

	for (i = b + 1; i < top; i++) {
		if (lvr_drop(v->remote, v->there.v[i]) < 0)
			log_warn("%s", err_msg());
		free(v->here.v[i]);
		free(v->there.v[i]);
		free(v->fmts.v[i]);
	}
	v->here.v[b + 1] = v->here.v[top];
	v->there.v[b + 1] = v->there.v[top];
	v->fmts.v[b + 1] = v->fmts.v[top];
	for (i = b + 2; i <= top; i++)
		v->here.v[i] = v->there.v[i] = v->fmts.v[i] = NULL;
	v->here.n = v->there.n = v->fmts.n = b + 2;
}

/* virDomainBlockRebase without COPY: a block pull down to base; libvirt
 * ends the job itself and updates the domain's view of the chain. */
static int lv_stream_disk(void *priv UNUSED, void *vpriv, const char *base, int64_t timeout_ms)
{
	struct lv_vm *v = vpriv;
	int64_t deadline = now_ms() + timeout_ms;
	const char *target = base;
	useconds_t poll = 2000;   /* a checkpoint's merge is tens of ms: look often, then less */
	size_t b = 0;

	if (v->remote) {   /* base is a local file: its volume there */
		while (b + 1 < v->here.n && strcmp(v->here.v[b], base) != 0)
			b++;
		if (b + 1 >= v->here.n)
			return err_set("stream the disk of domain '%s': '%s' is not below its top",
				       v->name, base);
		target = v->there.v[b];
	}
	if (virDomainBlockRebase(v->dom, "vda", target, 0, 0) < 0)
		return lv_err("stream the disk of domain", virDomainGetName(v->dom));
	for (;;) {
		virDomainBlockJobInfo info;
		int r = virDomainGetBlockJobInfo(v->dom, "vda", &info, 0);

		if (r < 0)
			return lv_err("block job of domain", virDomainGetName(v->dom));
		if (r == 0) {
			if (v->remote)
				cut_merged(v, b);
			return 0;
		}
		if (now_ms() >= deadline) {
			virDomainBlockJobAbort(v->dom, "vda", 0);
			return err_set("stream the disk of domain '%s' onto '%s': not done "
				       "within %" PRId64 " s", virDomainGetName(v->dom), base,
				       timeout_ms / 1000);
		}
		usleep(poll);
		if (poll < 50 * 1000)
			poll *= 2;
	}
}

static bool no_domain(void)
{
	virErrorPtr e = virGetLastError();

	return e && e->code == VIR_ERR_NO_DOMAIN;
}

static int lv_wait(void *priv, void *vpriv, int64_t timeout_ms)
{
	struct lv_conn *c = priv;
	struct lv_vm *v = vpriv;
	int64_t deadline = now_ms() + timeout_ms;

	for (;;) {
		int state, reason;

		if (virDomainGetState(v->dom, &state, &reason, 0) < 0) {
			if (no_domain())
				return HV_EXITED;   /* transient domains vanish when they stop */
			/* libvirt's own message is then often "no error". */
			if (virConnectIsAlive(c->conn) != 1)
				return err_set("domain '%s': the connection to %s closed",
					       virDomainGetName(v->dom), c->uri);
			return lv_err("get state of domain", virDomainGetName(v->dom));
		}
		if (state == VIR_DOMAIN_SHUTOFF || state == VIR_DOMAIN_CRASHED)
			return HV_EXITED;
		if (now_ms() >= deadline)
			return HV_RUNNING;
		usleep(LV_POLL_MS * 1000);
	}
}

static int lv_shutdown(void *priv UNUSED, void *vpriv)
{
	struct lv_vm *v = vpriv;

	if (virDomainShutdownFlags(v->dom, VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN) < 0 &&
	    !no_domain())
		return lv_err("shut down domain", virDomainGetName(v->dom));
	return 0;
}

static int lv_destroy(void *priv, void *vpriv)
{
	struct lv_vm *v = vpriv;

	if (lv_reconnect(priv, v) < 0)
		return -1;
	if (!v->dom)
		return 0;   /* it went with the closed connection */
	if (virDomainDestroy(v->dom) < 0 && !no_domain())
		return lv_err("destroy domain", virDomainGetName(v->dom));
	return 0;
}

static int lv_reset(void *priv UNUSED, void *vpriv)
{
	struct lv_vm *v = vpriv;

	if (virDomainReset(v->dom, 0) < 0)
		return lv_err("reset domain", virDomainGetName(v->dom));
	return 0;
}

/* Nothing to undo: a domain started without AUTODESTROY outlives the
 * connection; virDomainFree only drops our handle. */
static int lv_detach(void *priv UNUSED, void *vpriv)
{
	struct lv_vm *v = vpriv;

	v->detached = true;   /* its volumes stay, for `clean` */
	return 0;
}

/* "domain NAME URI", journaled before the domain exists. */
static int lv_journal_record(void *priv, const struct vm_spec *spec, struct strv *out)
{
	struct lv_conn *c = priv;

	strv_push(out, "domain");
	strv_push(out, spec->name);
	strv_push(out, c->uri);
	return 0;
}

static int lv_vm_release(void *priv, void *vpriv)
{
	struct lv_vm *v = vpriv;
	int r = 0;

	if (v->remote && !v->detached && lv_reconnect(priv, v) < 0) {
		log_warn("%s (amiforge clean releases them)", err_msg());
		r = -1;
	}
	if (lvr_free(v->remote, v->detached) < 0)
		r = -1;
	v->remote = NULL;
	strv_release(&v->collect_roles);
	strv_release(&v->collect_paths);
	strv_release(&v->here);
	strv_release(&v->there);
	strv_release(&v->fmts);
	if (v->dom)
		virDomainFree(v->dom);
	v->dom = NULL;
	free(v->name);
	v->name = NULL;
	return r;
}

static void lv_close(void *priv)
{
	struct lv_conn *c = priv;

	if (c->conn)
		virConnectClose(c->conn);
	free(c->uri);
}

/* `amiforge clean` of a "domain NAME URI [UUID]" record (lv_journal_record):
 * only an amiforge-* domain behind an allowed URI, found by UUID when the
 * record has one and then checked by name; destroyed and undefined, and on a
 * remote host its volumes deleted. */
static int lv_release_domain(const char *const *fields, size_t nfields)
{
	virConnectPtr conn;
	virDomainPtr dom;
	int r = -1;

	if (nfields < 2)
		return err_set("journal: a 'domain' record needs 2 fields, has %zu", nfields);
	if (!hv_domain_name_ours(fields[0]))
		return err_set("journal: domain '%s' is not one of amiforge's (%s*): refused",
			       fields[0], HV_DOMAIN_PREFIX);
	if (hv_uri_check(fields[1]) < 0)
		return err_prefix("journal: domain '%s'", fields[0]);
	virSetErrorFunc(NULL, lv_silent);
	conn = virConnectOpen(fields[1]);
	if (!conn) {
		virErrorPtr ve = virGetLastError();

		return err_set("connect '%s': %s", fields[1],
			       ve && ve->message ? ve->message : "failed");
	}
	dom = nfields > 2 ? virDomainLookupByUUIDString(conn, fields[2])
			     : virDomainLookupByName(conn, fields[0]);
	if (!dom) {
		virErrorPtr ve = virGetLastError();

		if (ve && ve->code == VIR_ERR_NO_DOMAIN)
			r = 0;
		else
			err_set("look up domain '%s': %s", fields[0],
				ve && ve->message ? ve->message : "failed");
		goto cleanup;
	}
	if (!virDomainGetName(dom) || strcmp(virDomainGetName(dom), fields[0]) != 0) {
		err_set("journal: domain with UUID %s is not named '%s': refused",
			nfields > 2 ? fields[2] : "", fields[0]);
		goto cleanup;
	}
	if (virDomainIsActive(dom) == 1 && virDomainDestroy(dom) < 0 &&
	    virDomainIsActive(dom) == 1) {
		virErrorPtr ve = virGetLastError();

		err_set("destroy domain '%s': %s", fields[0],
			ve && ve->message ? ve->message : "failed");
		goto cleanup;
	}
	if (virDomainIsPersistent(dom) == 1 &&
	    virDomainUndefineFlags(dom, VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |
				   VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
				   VIR_DOMAIN_UNDEFINE_NVRAM |
				   VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA) < 0) {
		virErrorPtr ve = virGetLastError();

		err_set("undefine domain '%s': %s", fields[0],
			ve && ve->message ? ve->message : "failed");
		goto cleanup;
	}
	r = 0;
cleanup:
	/* A remote host's guest had its disks there as volumes named after it. */
	if (r == 0 && hv_uri_remote(fields[1]) &&
	    lvr_remove_volumes(conn, fields[0]) < 0)
		r = -1;
	if (dom)
		virDomainFree(dom);
	virConnectClose(conn);
	return r;
}


const struct hv_driver hv_libvirt_driver = {
	.name = "libvirt",
	.takes_uri = true,
	.named_networks = true,
	.conn_size = sizeof(struct lv_conn),
	.vm_size = sizeof(struct lv_vm),
	.open = lv_open,
	.resolve_accel = lv_resolve_accel,
	.start = lv_start,
	.wait = lv_wait,
	.shutdown = lv_shutdown,
	.destroy = lv_destroy,
	.snapshot_disk = lv_snapshot_disk,
	.save_state = lv_save_state,
	.state_identity = lv_state_identity,
	.reset = lv_reset,
	.collect = lv_collect,
	.stream_disk = lv_stream_disk,
	.detach = lv_detach,
	.journal_record = lv_journal_record,
	.release_kind = "domain",
	.release = lv_release_domain,
	.vm_release = lv_vm_release,
	.close = lv_close,
};
