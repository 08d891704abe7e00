/* Guest configuration that decides whether an instance comes up: fstab
 * device names, MAC addresses pinned in network configuration, and an agent
 * (cloud-init) that reads EC2's metadata for keys and user data. */
#include <guestfs.h>
#include <jansson.h>

#include "internal.h"
#include "error.h"
#include "util.h"
#include "builder/recipe/yaml.h"

#define LINE_MAX_LEN 4096

/* Device names that change between hypervisors and instance types. */
static bool unstable_device(const char *dev)
{
	static const char *const prefixes[] = { "/dev/sd", "/dev/xvd", "/dev/nvme", "/dev/vd",
						"/dev/hd" };
	size_t i;

	for (i = 0; i < ARRAY_SIZE(prefixes); i++)
		if (str_startswith(dev, prefixes[i]))
			return true;
	return false;
}

void inspect_fstab_text(struct inspect_ctx *c, const char *text)
{
	char line[LINE_MAX_LEN];
	char bad[1024] = "", ev[64] = "";
	const char *p;
	int ln = 0, nbad = 0, nent = 0;

	if (!text) {
		report_add(c, CHECK_WARN, "fstab.device-names", "/etc/fstab",
			   "no /etc/fstab (systemd mounts / from the kernel command line only)");
		return;
	}
	p = text;
	while (next_line(&p, line, sizeof(line))) {
		char *t = str_trim(line);
		size_t k;

		ln++;
		if (!*t || *t == '#')
			continue;
		nent++;
		k = strcspn(t, " \t");
		t[k] = '\0';
		if (unstable_device(t)) {
			size_t used = strlen(bad);

			if (!nbad++)
				snprintf(ev, sizeof(ev), "/etc/fstab:%d", ln);
			snprintf(bad + used, sizeof(bad) - used, "%s%s (line %d)", used ? ", " : "",
				 t, ln);
		}
	}
	if (nbad)
		report_add(c, CHECK_FAIL, "fstab.device-names", ev,
			   "mounts by device name, which changes on EC2 (NVMe/Xen): %s; use UUID= or LABEL=",
			   bad);
	else
		report_add(c, CHECK_PASS, "fstab.device-names", "/etc/fstab",
			   "%d entr%s, none by /dev/sdX, /dev/xvdX or /dev/nvmeX name", nent,
			   nent == 1 ? "y" : "ies");
}

static void check_fstab(struct inspect_ctx *c)
{
	char *text = guest_read(c, "/etc/fstab", NULL, NULL);

	inspect_fstab_text(c, text);
	free(text);
}

/* Count lines of the files matching pattern that start (after blanks) with
 * key, case-insensitively; the first hit's "file:line" goes to ev unless ev
 * is NULL. */
static int grep_key(struct inspect_ctx *c, const char *pattern, const char *key,
		    char *ev, size_t evcap)
{
	char **files = guest_glob(c, pattern), line[LINE_MAX_LEN];
	size_t i, klen = strlen(key);
	int hits = 0;

	for (i = 0; files[i]; i++) {
		char *text = guest_read(c, files[i], NULL, NULL);
		const char *p = text;
		int ln = 0;

		while (text && next_line(&p, line, sizeof(line))) {
			char *t = str_trim(line);

			ln++;
			if (strncasecmp(t, key, klen) == 0 && !hits++ && ev)
				snprintf(ev, evcap, "%s:%d", files[i], ln);
		}
		free(text);
	}
	strv_free(files);
	return hits;
}

/* A "macaddress" key anywhere in a netplan document. */
static const struct ynode *yaml_find_key(const struct ynode *n, const char *key, int depth)
{
	size_t i;
	const struct ynode *r;

	if (!n || depth > YAML_DEPTH_MAX)
		return NULL;
	if (n->type == YNODE_MAP) {
		for (i = 0; i < n->npairs; i++) {
			if (n->pairs[i].key->str && strcmp(n->pairs[i].key->str, key) == 0)
				return n->pairs[i].key;
			if ((r = yaml_find_key(n->pairs[i].value, key, depth + 1)))
				return r;
		}
	} else if (n->type == YNODE_SEQ) {
		for (i = 0; i < n->nitems; i++)
			if ((r = yaml_find_key(n->items[i], key, depth + 1)))
				return r;
	}
	return NULL;
}

static void check_mac(struct inspect_ctx *c)
{
	static const struct { const char *glob, *key; } keyed[] = {
		{ "/etc/network/interfaces", "hwaddress" },
		{ "/etc/network/interfaces.d/*", "hwaddress" },
		{ "/etc/sysconfig/network-scripts/ifcfg-*", "HWADDR=" },
		{ "/etc/sysconfig/network-scripts/ifcfg-*", "MACADDR=" },
		{ "/etc/sysconfig/network/ifcfg-*", "LLADDR=" },
		{ "/etc/systemd/network/*.network", "MACAddress=" },
		{ "/etc/systemd/network/*.link", "MACAddress=" },
		{ "/etc/NetworkManager/system-connections/*", "mac-address=" },
		{ "/etc/udev/rules.d/70-persistent-net.rules", "SUBSYSTEM==\"net\"" },
	};
	char ev[1024] = "";
	char **np;
	size_t i;
	int hits = 0;

	for (i = 0; i < ARRAY_SIZE(keyed); i++)
		hits += grep_key(c, keyed[i].glob, keyed[i].key, hits ? NULL : ev, sizeof(ev));
	np = guest_glob(c, "/etc/netplan/*.yaml");
	for (i = 0; np[i]; i++) {
		size_t len = 0;
		char *text = guest_read(c, np[i], &len, NULL);
		struct ydoc doc;
		const struct ynode *k;

		if (!text)
			continue;
		memset(&doc, 0, sizeof(doc));
		if (ydoc_load_string(&doc, np[i], text, len) < 0) {
			report_add(c, CHECK_WARN, "network.mac", np[i], "unparsable netplan: %s",
				   err_msg());
			err_clear();
		} else if ((k = yaml_find_key(doc.root, "macaddress", 0))) {
			if (!hits++)
				snprintf(ev, sizeof(ev), "%s:%d", np[i], k->line);
		}
		ydoc_release(&doc);
		free(text);
	}
	strv_free(np);
	if (hits)
		report_add(c, CHECK_FAIL, "network.mac", ev,
			   "%d hard-coded MAC address%s in network configuration: every instance "
			   "has a new MAC, so that interface will not come up", hits,
			   hits == 1 ? "" : "es");
	else
		report_add(c, CHECK_PASS, "network.mac", NULL,
			   "no MAC address pinned in network configuration");
}

/* cloud-init merges /etc/cloud/cloud.cfg then cloud.cfg.d/NAME.cfg in name
 * order; the last datasource_list wins. No list means every datasource,
 * Ec2 included. */
static void check_cloud_init(struct inspect_ctx *c)
{
	static const char *const bins[] = { "/usr/bin/cloud-init", "/usr/local/bin/cloud-init" };
	static const char *const others[] = { "/usr/bin/afterburn", "/sbin/tiny-cloud",
					      "/usr/sbin/tiny-cloud", "/usr/bin/coreos-metadata" };
	char **files, *list_file = NULL;
	char list[512] = "";
	bool installed = false, ec2 = false, have_list = false;
	int list_line = 0;
	size_t i, j;

	for (i = 0; i < ARRAY_SIZE(bins); i++)
		installed |= guest_exists(c, bins[i]);
	if (!installed) {
		for (i = 0; i < ARRAY_SIZE(others); i++)
			if (guest_exists(c, others[i])) {
				report_add(c, CHECK_PASS, "cloud-init.ec2", others[i],
					   "no cloud-init, but %s reads EC2 metadata", others[i]);
				return;
			}
		report_add(c, CHECK_FAIL, "cloud-init.ec2", NULL,
			   "no cloud-init (or other agent) to install SSH keys and run user data");
		return;
	}
	if (guest_exists(c, "/etc/cloud/cloud-init.disabled")) {
		report_add(c, CHECK_FAIL, "cloud-init.ec2", "/etc/cloud/cloud-init.disabled",
			   "cloud-init is installed but disabled");
		return;
	}
	files = guest_glob(c, "/etc/cloud/cloud.cfg.d/*.cfg");
	for (i = 0; i == 0 || files[i - 1]; i++) {
		const char *f = i == 0 ? "/etc/cloud/cloud.cfg" : files[i - 1];
		size_t len = 0;
		char *text = guest_read(c, f, &len, NULL);
		struct ydoc doc;
		const struct ypair *pr;

		if (!text)
			continue;
		memset(&doc, 0, sizeof(doc));
		if (!strstr(text, "datasource_list")) {
			/* Cannot set the list (cloud-init's own files use
			 * anchors, which our parser refuses). */
		} else if (ydoc_load_string(&doc, f, text, len) < 0) {
			report_add(c, CHECK_WARN, "cloud-init.config", f, "unparsable: %s", err_msg());
			err_clear();
		} else if ((pr = ymap_pair(doc.root, "datasource_list")) != NULL) {
			have_list = true;
			ec2 = false;
			list[0] = '\0';
			free(list_file);
			list_file = xstrdup(f);
			list_line = pr->key->line;
			if (pr->value->type == YNODE_SEQ) {
				for (j = 0; j < pr->value->nitems; j++) {
					const char *s = yscalar(pr->value->items[j]);
					size_t used = strlen(list);

					if (!s)
						continue;
					ec2 |= strcmp(s, "Ec2") == 0;
					snprintf(list + used, sizeof(list) - used, "%s%s",
						 used ? ", " : "", s);
				}
			} else if (yscalar(pr->value)) {
				/* A string is accepted by cloud-init as a one-item list. */
				ec2 = strstr(yscalar(pr->value), "Ec2") != NULL;
				snprintf(list, sizeof(list), "%s", yscalar(pr->value));
			}
		}
		ydoc_release(&doc);
		free(text);
	}
	strv_free(files);
	if (!have_list) {
		report_add(c, CHECK_PASS, "cloud-init.ec2", "/etc/cloud/cloud.cfg",
			   "cloud-init installed, no datasource_list: every datasource, Ec2 included");
	} else {
		char ev[1024];

		snprintf(ev, sizeof(ev), "%s:%d", list_file, list_line);
		if (ec2)
			report_add(c, CHECK_PASS, "cloud-init.ec2", ev,
				   "cloud-init installed, datasource_list [%s] allows Ec2", list);
		else
			report_add(c, CHECK_FAIL, "cloud-init.ec2", ev,
				   "datasource_list [%s] does not allow Ec2: no SSH keys or user data "
				   "on EC2", list);
	}
	free(list_file);
}

int inspect_config(struct inspect_ctx *c)
{
	check_fstab(c);
	check_mac(c);
	check_cloud_init(c);
	return 0;
}
