/* Unit tests for the hypervisor side: generated libvirt domain XML and QEMU
 * argv against golden files (tests/unit/golden/hv-*), spec validation, the
 * KVM probe on fake sysfs trees, qemu-img info parsing, the overlay's
 * qemu-img argv (run.h dry-run) and the seed's contents.
 *
 * AMIFORGE_UPDATE_GOLDEN=1 rewrites the golden files from the output: a tool,
 * not a test. In that mode no golden check passes: each prints a SKIP line
 * saying whether its file changed, and every changed file must be reviewed by
 * hand (git diff tests/unit/golden/) before it is committed: a regenerated
 * golden file agrees with the code by construction, so only the reading
 * catches a wrong domain XML or QEMU command line. */
#include <archive.h>
#include <archive_entry.h>

#include "test.h"
#include "buf.h"
#include "error.h"
#include "run.h"
#include "util.h"
#include "builder/disk/archprobe.h"
#include "builder/disk/overlay.h"
#include "builder/guest/guest.h"
#include "builder/guest/inject.h"
#include "builder/guest/seed.h"
#include "drivers/hypervisor/accel.h"
#include "drivers/hypervisor/hypervisor.h"

#define GOLDEN_DIR "tests/unit/golden/"
#define DRY_RUN_DIR "/tmp/amiforge-test-hv"

static void check_golden(const char *name, const char *got)
{
	char *path = xasprintf(GOLDEN_DIR "%s", name);
	struct buf want = BUF_INIT(1 << 20);
	const char *upd = getenv("AMIFORGE_UPDATE_GOLDEN");

	if (upd && strcmp(upd, "1") == 0) {
		bool same = buf_read_file(&want, path) == 0 && want.data && strcmp(want.data, got) == 0;

		err_clear();
		if (same)
			printf("SKIP: golden %s: AMIFORGE_UPDATE_GOLDEN=1: unchanged\n", name);
		else if (write_file_atomic(path, got, strlen(got), 0644) < 0)
			CHECK(0, "golden %s: rewrite: %s", name, err_msg());
		else
			printf("SKIP: golden %s: AMIFORGE_UPDATE_GOLDEN=1: CHANGED, review "
			       "'git diff " GOLDEN_DIR "%s' by hand before committing\n", name, name);
		fflush(stdout);
		buf_release(&want);
		free(path);
		return;
	}
	if (buf_read_file(&want, path) < 0)
		CHECK(0, "golden %s: %s", name, err_msg());
	else
		CHECK_STR(got, want.data, "golden %s", name);
	buf_release(&want);
	free(path);
}

static struct vm_spec base_spec(void)
{
	struct vm_spec s = {
		.name = "amiforge-test",
		.disks = { { .path = "/var/tmp/amiforge-run-X/disk.qcow2", .format = "qcow2",
			     .backing = "/var/cache/images/debian-12.qcow2",
			     .backing_format = "qcow2", .backing_shared = true } },
		.n_disks = 1,
		.seed_iso = "/var/tmp/amiforge-run-X/seed.iso",
		.cpus = 2,
		.memory_mib = 2048,
		.accel = ACCEL_TCG,
		.console_log = "/var/tmp/amiforge-run-X/console.log",
		.agent_socket = "/var/tmp/amiforge-run-X/sock/agent.sock",
		.run_dir = "/var/tmp/amiforge-run-X/sock",
	};
	return s;
}

static void test_domain_xml(void)
{
	struct vm_spec s = base_spec();
	char *xml;

	xml = hv_libvirt_domain_xml(&s);
	check_golden("hv-tcg-seed.xml", xml ? xml : "(null)");
	free(xml);

	s.accel = ACCEL_KVM;
	s.net = VM_NET_USER;
	s.seed_iso = NULL;
	s.cpus = 4;
	s.memory_mib = 4096;
	s.disks[1] = (struct vm_disk){ .path = "/data/base.img", .format = "raw", .readonly = true };
	s.n_disks = 2;
	xml = hv_libvirt_domain_xml(&s);
	check_golden("hv-kvm-net-2disks.xml", xml ? xml : "(null)");
	free(xml);

	/* Values are escaped by libxml2, never spliced into markup. */
	s = base_spec();
	s.console_log = "/tmp/a'b<c>&\"d/console.log";
	xml = hv_libvirt_domain_xml(&s);
	CHECK(xml && strstr(xml, "path=\"/tmp/a'b&lt;c&gt;&amp;&quot;d/console.log\""),
	      "domain XML: attribute values escaped");
	free(xml);
}

struct argv_rec {
	struct strv seen;
};

static void record_argv(const char *const *argv, void *opaque)
{
	struct argv_rec *r = opaque;
	char *s = run_argv_str(argv);

	strv_push(&r->seen, s);
	free(s);
}

static void test_qemu_argv(void)
{
	struct vm_spec s = base_spec();
	struct strv a = STRV_INIT;
	struct argv_rec rec = { STRV_INIT };
	struct hv *hv;
	struct hv_vm *vm;
	char *line;

	CHECK(hv_qemu_argv(&s, "/var/tmp/amiforge-run-X/sock/qmp.sock", true, &a) == 0,
	      "qemu argv: built");
	line = run_argv_str((const char *const *)a.v);
	check_golden("hv-qemu-tcg-seed.argv", line);
	free(line);
	strv_release(&a);

	/* Through the driver with run.h's dry-run hook: what would be run. The
	 * driver writes QEMU's stderr into run_dir, so that one must exist. */
	mkdir_p(DRY_RUN_DIR, 0700);
	s.run_dir = DRY_RUN_DIR;
	run_set_dry_run(record_argv, &rec);
	hv = hv_open("qemu", NULL);
	CHECK(hv != NULL, "qemu driver: opens without a URI");
	s.accel = ACCEL_KVM;
	s.net = VM_NET_USER;
	vm = hv ? hv_start(hv, &s) : NULL;
	CHECK(vm != NULL, "qemu driver: dry-run start");
	CHECK(vm && hv_wait(vm, 0) == HV_EXITED, "qemu driver: dry-run guest counts as exited");
	hv_vm_free(vm);
	hv_close(hv);
	run_set_dry_run(NULL, NULL);
	/* [0] is the -help probe for -sandbox, which dry-run answers empty. */
	CHECK(rec.seen.n == 2, "qemu driver: ran the sandbox probe and qemu (%zu)", rec.seen.n);
	if (rec.seen.n == 2)
		check_golden("hv-qemu-kvm-net.argv", rec.seen.v[1]);
	strv_release(&rec.seen);
	remove_tree(DRY_RUN_DIR);

	hv = hv_open("qemu", "qemu+ssh://host/system");
	CHECK(hv == NULL && strstr(err_msg(), "is for libvirt"), "qemu driver: declines libvirt URIs");
}

/* The network modes (issue 25): golden files for the user network with
 * port forwards, substrings for a libvirt network and a bridge. */
static void test_network(void)
{
	struct vm_spec s = base_spec();
	struct strv a = STRV_INIT;
	struct vm_forward f;
	char *out;

	s.net = VM_NET_USER;
	s.forwards[0] = (struct vm_forward){ 34567, 8000 };
	s.forwards[1] = (struct vm_forward){ 2222, 22 };
	s.n_forwards = 2;
	out = hv_libvirt_domain_xml(&s);
	check_golden("hv-user-forwards.xml", out ? out : "(null)");
	CHECK(out && !strstr(out, "<interface"), "network xml: forwards: no <interface> (qemu:commandline)");
	free(out);
	CHECK(hv_qemu_argv(&s, "/var/tmp/amiforge-run-X/sock/qmp.sock", true, &a) == 0,
	      "network argv: forwards built");
	out = run_argv_str((const char *const *)a.v);
	check_golden("hv-qemu-user-forwards.argv", out);
	free(out);
	strv_release(&a);

	s = base_spec();
	s.net = VM_NET_NETWORK;
	s.net_source = "default";
	out = hv_libvirt_domain_xml(&s);
	CHECK(out && strstr(out, "<interface type=\"network\">\n      <source network=\"default\"/>\n"
			    "      <model type=\"virtio\"/>"),
	      "network xml: a libvirt network by name");
	free(out);
	CHECK(hv_qemu_argv(&s, "/q.sock", true, &a) < 0 && strstr(err_msg(), "needs the libvirt driver"),
	      "network argv: the qemu driver refuses a libvirt network");
	strv_release(&a);

	s.net = VM_NET_BRIDGE;
	s.net_source = "br0";
	out = hv_libvirt_domain_xml(&s);
	CHECK(out && strstr(out, "<interface type=\"bridge\">\n      <source bridge=\"br0\"/>"),
	      "network xml: a host bridge");
	free(out);
	CHECK(hv_qemu_argv(&s, "/q.sock", true, &a) == 0, "network argv: bridge built");
	out = run_argv_str((const char *const *)a.v);
	CHECK(strstr(out, "-netdev bridge,id=net0,br=br0 -device virtio-net-pci,netdev=net0") &&
	      strstr(out, "on,obsolete=deny,resourcecontrol=deny") && !strstr(out, "spawn=deny"),
	      "network argv: bridge helper allowed to spawn (%s)", out);
	free(out);
	strv_release(&a);

	s = base_spec();
	out = hv_libvirt_domain_xml(&s);
	CHECK(out && !strstr(out, "<interface"), "network xml: none means no NIC");
	free(out);
	CHECK(hv_qemu_argv(&s, "/q.sock", true, &a) == 0, "network argv: none built");
	out = run_argv_str((const char *const *)a.v);
	CHECK(!strstr(out, "-netdev"), "network argv: none means no -netdev");
	free(out);
	strv_release(&a);

	/* Checks before any driver sees a spec. */
	s = base_spec();
	s.forwards[0] = (struct vm_forward){ 8080, 80 };
	s.n_forwards = 1;
	CHECK(vm_spec_check(&s) < 0 && strstr(err_msg(), "need the user network"),
	      "spec: forwards without the user network rejected");
	s.net = VM_NET_USER;
	s.forwards[1] = (struct vm_forward){ 8080, 81 };
	s.n_forwards = 2;
	CHECK(vm_spec_check(&s) < 0 && strstr(err_msg(), "forwarded twice"),
	      "spec: a host port forwarded twice rejected");
	s.forwards[1] = (struct vm_forward){ 0, 81 };
	CHECK(vm_spec_check(&s) < 0 && strstr(err_msg(), "out of range"),
	      "spec: unresolved host port 0 rejected");
	s = base_spec();
	s.net = VM_NET_BRIDGE;
	s.net_source = "br0,helper=/bin/sh";
	CHECK(vm_spec_check(&s) < 0, "spec: ',' in a bridge name rejected (QEMU option injection)");
	s.net_source = "a-bridge-too-long";
	CHECK(vm_spec_check(&s) < 0, "spec: bridge name over 15 characters rejected");
	s.net = VM_NET_NETWORK;
	CHECK(vm_spec_check(&s) == 0, "spec: the same name is fine for a libvirt network");

	CHECK(vm_forward_parse("8080", &f) == 0 && f.host_port == 0 && f.guest_port == 8080,
	      "forward: a bare port is the guest's");
	CHECK(vm_forward_parse("2222:22", &f) == 0 && f.host_port == 2222 && f.guest_port == 22,
	      "forward: HOST:GUEST");
	CHECK(vm_forward_parse("0", &f) < 0 && vm_forward_parse("65536", &f) < 0 &&
	      vm_forward_parse("1:", &f) < 0 && vm_forward_parse(":1", &f) < 0 &&
	      vm_forward_parse("1:2:3", &f) < 0 && vm_forward_parse("-1", &f) < 0 &&
	      vm_forward_parse("12345678", &f) < 0 && vm_forward_parse("", &f) < 0,
	      "forward: bad ports rejected");
}

static void test_spec_check(void)
{
	struct vm_spec s;

	s = base_spec();
	CHECK(vm_spec_check(&s) == 0, "spec: valid spec accepted");
	s = base_spec();
	s.disks[0].format = NULL;
	CHECK(vm_spec_check(&s) < 0 && strstr(err_msg(), "format"),
	      "spec: disk without explicit format rejected");
	s = base_spec();
	s.disks[0].format = "vmdk";
	CHECK(vm_spec_check(&s) < 0, "spec: unsupported disk format rejected");
	s = base_spec();
	s.disks[0].path = "/tmp/a,file=/etc/shadow";
	CHECK(vm_spec_check(&s) < 0 && strstr(err_msg(), "','"),
	      "spec: ',' in a path rejected (QEMU option injection)");
	s = base_spec();
	s.disks[0].backing_format = NULL;
	CHECK(vm_spec_check(&s) < 0, "spec: backing file without explicit format rejected");
	s = base_spec();
	s.disks[0].path = "disk.qcow2";
	CHECK(vm_spec_check(&s) < 0, "spec: relative path rejected");
	s = base_spec();
	s.name = "../x";
	CHECK(vm_spec_check(&s) < 0, "spec: bad name rejected");
	s = base_spec();
	s.accel = ACCEL_AUTO;
	CHECK(vm_spec_check(&s) < 0, "spec: unresolved accelerator rejected");
	s = base_spec();
	s.memory_mib = 16;
	CHECK(vm_spec_check(&s) < 0, "spec: too little memory rejected");
	s = base_spec();
	s.agent_socket = "/tmp/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
			 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/agent.sock";
	CHECK(vm_spec_check(&s) < 0 && strstr(err_msg(), "too long"),
	      "spec: socket path over sun_path rejected");
	CHECK(hv_open("vbox", NULL) == NULL && strstr(err_msg(), "unknown"),
	      "hv_open: unknown driver rejected");
}

static void touch(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT, 0644);

	if (fd >= 0)
		close(fd);
}

static void test_accel(void)
{
	char tmpl[] = "/tmp/amiforge-accel-XXXXXX";
	struct accel_probe p;
	enum accel a;
	char *path;

	CHECK(accel_parse("tcg", &a) == 0 && a == ACCEL_TCG, "accel: parse tcg");
	CHECK(accel_parse("auto", &a) == 0 && a == ACCEL_AUTO, "accel: parse auto");
	CHECK(accel_parse("hvf", &a) < 0 && strstr(err_msg(), "'hvf'"), "accel: bad name rejected");

	if (!mkdtemp(tmpl)) {
		CHECK(0, "accel: mkdtemp");
		return;
	}
	/* No /dev/kvm at all. */
	accel_probe_at(tmpl, &p);
	CHECK(!p.usable && strstr(p.why, "dev/kvm"), "accel: missing /dev/kvm is unusable (%s)",
	      p.why);
	/* A /dev/kvm that is not a KVM device (ioctls fail). */
	path = xasprintf("%s/dev", tmpl);
	mkdir(path, 0755);
	free(path);
	path = xasprintf("%s/dev/kvm", tmpl);
	touch(path);
	free(path);
	accel_probe_at(tmpl, &p);
	CHECK(!p.usable && strstr(p.why, "KVM_GET_API_VERSION"),
	      "accel: /dev/kvm that fails KVM_GET_API_VERSION is unusable (%s)", p.why);
	/* PVM nested KVM: refused whatever /dev/kvm does. */
	path = xasprintf("%s/sys/module/kvm_pvm", tmpl);
	mkdir_p(path, 0755);
	free(path);
	accel_probe_at(tmpl, &p);
	CHECK(!p.usable && strstr(p.why, "kvm_pvm"), "accel: kvm_pvm loaded means unusable");
	remove_tree(tmpl);

	/* The real host: on a PVM machine the verdict must be "no". */
	if (access("/sys/module/kvm_pvm", F_OK) == 0) {
		const char *why;

		unsetenv("AMIFORGE_KVM");
		CHECK(!accel_kvm_usable(&why), "accel: this PVM host's KVM is not used (%s)", why);
		CHECK(accel_resolve(ACCEL_AUTO, &a) == 0 && a == ACCEL_TCG,
		      "accel: auto resolves to tcg on this host");
	} else {
		printf("SKIP: accel: host verdict on PVM: not a PVM host\n");
	}
	setenv("AMIFORGE_KVM", "1", 1);
	CHECK(accel_kvm_usable(NULL), "accel: AMIFORGE_KVM=1 overrides the probe");
	setenv("AMIFORGE_KVM", "0", 1);
	CHECK(!accel_kvm_usable(NULL) && accel_resolve(ACCEL_AUTO, &a) == 0 && a == ACCEL_TCG,
	      "accel: AMIFORGE_KVM=0 forces tcg under auto");
	unsetenv("AMIFORGE_KVM");
}

static void test_image_info(void)
{
	struct image_info info;
	struct argv_rec rec = { STRV_INIT };

	CHECK(image_info_parse("{\"virtual-size\": 4294967296, \"filename\": \"x\", "
			       "\"format\": \"qcow2\", \"actual-size\": 1}", "x", &info) == 0 &&
	      strcmp(info.format, "qcow2") == 0 && info.virtual_size == 4294967296ull,
	      "image info: qcow2 parsed");
	CHECK(image_info_parse("{\"virtual-size\": 10, \"format\": \"qcow2\", "
			       "\"backing-filename\": \"/etc/shadow\"}", "evil.img", &info) < 0 &&
	      strstr(err_msg(), "backing file"),
	      "image info: base with a backing file refused (CVE-2010-3851)");
	CHECK(image_info_parse("{\"virtual-size\": 10, \"format\": \"vmdk\"}", "a.vmdk", &info) < 0 &&
	      strstr(err_msg(), "'vmdk'"), "image info: unsupported format refused");
	CHECK(image_info_parse("{\"format\": \"raw\"", "t.img", &info) < 0 &&
	      strstr(err_msg(), "invalid JSON"), "image info: truncated JSON refused");
	CHECK(image_info_parse("[]", "t.img", &info) < 0, "image info: non-object refused");

	run_set_dry_run(record_argv, &rec);
	CHECK(overlay_create("/img/base.raw", "raw", "/w/disk.qcow2", 8ull << 30) == 0,
	      "overlay: dry-run create");
	CHECK(overlay_create("base.raw", "raw", "/w/disk.qcow2", 0) < 0,
	      "overlay: relative base refused");
	CHECK(overlay_create("/img/base", "vmdk", "/w/disk.qcow2", 0) < 0,
	      "overlay: unsupported base format refused");
	run_set_dry_run(NULL, NULL);
	CHECK(rec.seen.n == 1 && strcmp(rec.seen.v[0],
		"qemu-img create -q -f qcow2 -F raw -b /img/base.raw -- /w/disk.qcow2 8589934592") == 0,
	      "overlay: qemu-img argv names both formats explicitly (%s)",
	      rec.seen.n ? rec.seen.v[0] : "");
	strv_release(&rec.seen);
}

static void test_seed(void)
{
	char tmpl[] = "/tmp/amiforge-seed-XXXXXX";
	struct seed_opts o = { .agent = "\x7f" "ELF-fake-agent", .agent_len = 14 };
	struct archive *a;
	struct archive_entry *e;
	char *ud = seed_user_data(&o), *path, *id = NULL, *id2;
	int files = 0;
	bool md_ok = false, agent_ok = false, ud_ok = false;

	CHECK(str_startswith(ud, "#cloud-config\n"), "seed: user-data is a cloud-config");
	CHECK(strstr(ud, "bootcmd:") && strstr(ud, "systemd-run --no-block --unit=amiforge-agent"),
	      "seed: bootcmd starts the agent as a transient unit");
	CHECK(strstr(ud, "Restart=always") != NULL, "seed: agent restarted if it dies");
	free(ud);

	id = seed_new_instance_id();
	id2 = seed_new_instance_id();
	CHECK(strlen(id) == 18 && strcmp(id, id2) != 0, "seed: fresh instance-ids differ");
	free(id);
	free(id2);
	id = NULL;

	if (!mkdtemp(tmpl)) {
		CHECK(0, "seed: mkdtemp");
		return;
	}
	path = xasprintf("%s/seed.iso", tmpl);
	CHECK(seed_write(path, &o, &id) == 0, "seed: ISO written");
	a = archive_read_new();
	archive_read_support_format_iso9660(a);
	if (archive_read_open_filename(a, path, 10240) == ARCHIVE_OK) {
		while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
			char data[8192];
			la_ssize_t n = archive_read_data(a, data, sizeof(data) - 1);
			const char *name = archive_entry_pathname(e);

			if (archive_entry_filetype(e) != AE_IFREG)
				continue;
			files++;
			data[n > 0 ? n : 0] = '\0';
			if (strcmp(name, "meta-data") == 0)
				md_ok = id && strstr(data, id) && strstr(data, "instance-id: ");
			else if (strcmp(name, "user-data") == 0)
				ud_ok = str_startswith(data, "#cloud-config");
			else if (strcmp(name, "amiforge-agent") == 0)
				agent_ok = n == 14 && memcmp(data, o.agent, 14) == 0 &&
					   (archive_entry_perm(e) & 0111);
		}
	}
	archive_read_free(a);
	CHECK(files == 3, "seed: three files in the ISO (%d)", files);
	CHECK(md_ok, "seed: meta-data carries the returned instance-id");
	CHECK(ud_ok, "seed: user-data present");
	CHECK(agent_ok, "seed: agent binary intact and executable (rockridge)");
	free(id);
	remove_tree(tmpl);
	free(path);
	o.instance_id = "bad id\ninstance-id: x";
	CHECK(seed_write("/tmp/amiforge-never.iso", &o, NULL) < 0 &&
	      access("/tmp/amiforge-never.iso", F_OK) < 0,
	      "seed: instance-id with YAML-breaking characters refused, no file left");
}

/* hv_uri_check: the one gate for vm.connect, --connect and journaled domains. */
static void test_uri_check(void)
{
	static const char *const good[] = {
		"qemu:///system", "qemu:///session", "qemu+unix:///system",
		"qemu+ssh://root@host.example/system", "qemu+tls://host:16514/system",
		"qemu+ssh://u@h/system?keyfile=/root/.ssh/id&no_verify=1&sshauth=privkey",
		"qemu+ssh://h/system?proxy=native&mode=direct",
		"qemu+ssh://root@localhost:2222/system",
	};
	static const char *const bad[] = {
		"qemu+ext:///system?command=/tmp/x", "qemu+ssh://h/system?command=/tmp/ssh",
		"qemu+ssh://h/system?netcat=/tmp/nc", "qemu:///system?socket=/tmp/sock",
		"qemu+unix:///system?name=qemu+ext:///system", "qemu+ssh://h/system?comm%61nd=x",
		"qemu+tcp://h/system", "qemu+libssh2://h/system", "xen:///system", "test:///default",
		"qemu:///embed?root=/tmp/r", "qemu://host/system", "qemu+ssh:///system",
		"qemu+ssh://h;x/system", "qemu:///system#frag", "qemu:///system\n", "qemu:/system",
		"qemu:///system/../embed", "",
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(good); i++)
		CHECK(hv_uri_check(good[i]) == 0, "uri: '%s' allowed (%s)", good[i],
		      err_isset() ? err_msg() : "");
	for (i = 0; i < ARRAY_SIZE(bad); i++)
		CHECK(hv_uri_check(bad[i]) < 0, "uri: bad %zu refused (%s)", i, err_isset() ? err_msg() : "accepted");
	CHECK(hv_open("libvirt", "qemu+ext:///system?command=/bin/true") == NULL &&
	      strstr(err_msg(), "only the qemu driver") != NULL, "uri: hv_open refuses an ext URI (%s)",
	      err_msg());
	/* Remote: a host part, whatever the transport; checkpoints are off and
	 * the disks go into the host's storage pool for these. */
	CHECK(hv_uri_remote("qemu+ssh://root@localhost:2222/system") &&
	      hv_uri_remote("qemu+tls://h/system") && !hv_uri_remote("qemu:///system") &&
	      !hv_uri_remote("qemu+unix:///system") && !hv_uri_remote(NULL),
	      "uri: a URI with a host is remote, a local one is not");
	CHECK(hv_domain_name_ours("amiforge-123-ab12") && !hv_domain_name_ours("amiforge-") &&
	      !hv_domain_name_ours("web-server") && !hv_domain_name_ours("amiforge-a/b"),
	      "uri: only amiforge-* domain names are amiforge's");
}

/* A remote host's copy of a spec spells the whole backing chain out (the
 * volumes' headers name this host's files): nested, formats explicit, an
 * empty element at the bottom. */
static void test_chain_xml(void)
{
	static const struct vm_backing chain[] = {
		{ "/pool/d-vda-b1", "qcow2", false },
		{ "/pool/amiforge-base-0123", "raw", true } };
	struct vm_spec s = base_spec();
	char *out;

	s.disks[0].path = "/pool/d-vda";
	s.disks[0].format = "qcow2";
	s.disks[0].backing = NULL;
	s.disks[0].chain = chain;
	s.disks[0].n_chain = 2;
	out = hv_libvirt_domain_xml(&s);
	CHECK(out && strstr(out, "<source file=\"/pool/d-vda\"/>\n"
			    "      <backingStore type=\"file\">\n"
			    "        <format type=\"qcow2\"/>\n"
			    "        <source file=\"/pool/d-vda-b1\"/>\n"
			    "        <backingStore type=\"file\">\n"
			    "          <format type=\"raw\"/>\n"
			    "          <source file=\"/pool/amiforge-base-0123\">\n"
			    "            <seclabel model=\"dac\" relabel=\"no\"/>\n"
			    "          </source>\n"
			    "          <backingStore/>\n"
			    "        </backingStore>\n"
			    "      </backingStore>\n"),
	      "domain xml: a remote disk's whole chain, nested, formats explicit (%s)",
	      out ? out : "(null)");
	CHECK(out && strstr(out, "seclabel") && !strstr(strstr(out, "seclabel") + 1, "seclabel"),
	      "domain xml: the guest's own volumes are labelled, the shared base is left alone");
	free(out);
}

/* No x86-only device may reach an aarch64 guest's configuration. */
static void check_no_x86(const char *what, const char *out)
{
	static const char *const x86[] = { "\"ide\"", "if=ide", "hdc", "isa-serial", "q35",
					   "-machine pc", "machine=\"pc", "<apic", "pci.0",
					   "vga", "ps2", "i8042", "qemu-system-x86_64" };

	for (size_t i = 0; i < ARRAY_SIZE(x86); i++)
		CHECK(!strstr(out, x86[i]), "aarch64 %s: no x86-only '%s'", what, x86[i]);
}

/* Issue 22: an aarch64 guest. Golden files for both drivers under TCG
 * (with the seed and port forwards: every device amiforge adds), what
 * changes under KVM, the firmware's variable store for the direct driver. */
static void test_aarch64(void)
{
	struct vm_spec s = base_spec();
	struct strv a = STRV_INIT;
	struct argv_rec rec = { STRV_INIT };
	struct hv *hv;
	struct hv_vm *vm;
	char *out, *nv;
	enum accel acc;

	s.arch = ARCH_AARCH64;
	s.nvram = "/var/tmp/amiforge-run-X/efivars.fd";
	s.net = VM_NET_USER;
	s.forwards[0] = (struct vm_forward){ 2222, 22 };
	s.n_forwards = 1;
	out = hv_libvirt_domain_xml(&s);
	check_golden("hv-aarch64-tcg.xml", out ? out : "(null)");
	CHECK(out && strstr(out, "<type arch=\"aarch64\" machine=\"virt\">hvm</type>") &&
	      strstr(out, "<loader readonly=\"yes\" type=\"pflash\">/usr/share/AAVMF/"
		     "AAVMF_CODE.fd</loader>") &&
	      strstr(out, "<nvram template=\"/usr/share/AAVMF/AAVMF_VARS.fd\">"
		     "/var/tmp/amiforge-run-X/efivars.fd</nvram>") &&
	      strstr(out, "<cpu mode=\"maximum\"") &&
	      strstr(out, "model=\"virtio-scsi\"") && strstr(out, "bus=\"scsi\"") &&
	      strstr(out, "bus=pcie.0,addr=0x1e") && strstr(out, HV_AGENT_PORT_NAME),
	      "aarch64 xml: virt, AAVMF pflash + own variables, cpu max, seed on virtio-scsi");
	check_no_x86("xml", out ? out : "");
	free(out);
	CHECK(hv_qemu_argv(&s, "/var/tmp/amiforge-run-X/sock/qmp.sock", true, &a) == 0,
	      "aarch64 argv: built");
	out = run_argv_str((const char *const *)a.v);
	check_golden("hv-qemu-aarch64-tcg.argv", out);
	CHECK(str_startswith(out, "qemu-system-aarch64 ") && strstr(out, "-machine virt") &&
	      strstr(out, "-cpu max") &&
	      strstr(out, "if=pflash,unit=0,format=raw,readonly=on,file=/usr/share/AAVMF/"
		     "AAVMF_CODE.fd") &&
	      strstr(out, "if=pflash,unit=1,format=raw,file=/var/tmp/amiforge-run-X/efivars.fd") &&
	      strstr(out, "scsi-cd,bus=scsi0.0,drive=seed0") &&
	      strstr(out, "virtserialport,bus=vser0.0,chardev=agent0"),
	      "aarch64 argv: qemu-system-aarch64 -M virt -cpu max, pflash, scsi-cd seed, agent port");
	check_no_x86("argv", out);
	free(out);
	strv_release(&a);

	s.accel = ACCEL_KVM;
	out = hv_libvirt_domain_xml(&s);
	CHECK(out && strstr(out, "host-passthrough") && !strstr(out, "maximum"),
	      "aarch64 xml: KVM (an arm64 host): host-passthrough");
	free(out);
	hv_qemu_argv(&s, "/q.sock", true, &a);
	out = run_argv_str((const char *const *)a.v);
	CHECK(strstr(out, "-accel kvm -cpu host") && !strstr(out, "-cpu max"),
	      "aarch64 argv: KVM: -cpu host");
	free(out);
	strv_release(&a);

	/* KVM serves only the host's own architecture. */
	hv = hv_open("qemu", NULL);
	if (arch_host()->id != ARCH_AARCH64) {
		CHECK(hv && hv_resolve_accel(hv, arch_get(ARCH_AARCH64), ACCEL_AUTO, &acc) == 0 &&
		      acc == ACCEL_TCG, "aarch64 on an x86_64 host: auto is TCG");
		CHECK(hv && hv_resolve_accel(hv, arch_get(ARCH_AARCH64), ACCEL_KVM, &acc) < 0 &&
		      strstr(err_msg(), "TCG only"), "aarch64 on an x86_64 host: kvm refused (%s)",
		      err_msg());
	}
	/* The direct driver makes the guest's variable store from the template
	 * (dry run: QEMU itself is not started). */
	mkdir_p(DRY_RUN_DIR, 0700);
	s = base_spec();
	s.arch = ARCH_AARCH64;
	s.run_dir = DRY_RUN_DIR;
	nv = xasprintf("%s/efivars.fd", DRY_RUN_DIR);
	unlink(nv);
	run_set_dry_run(record_argv, &rec);
	vm = hv ? hv_start(hv, &s) : NULL;
	run_set_dry_run(NULL, NULL);
	if (access(arch_get(ARCH_AARCH64)->fw_vars, R_OK) == 0) {
		struct stat st1, st2;

		CHECK(vm != NULL, "aarch64 qemu driver: dry-run start (%s)", vm ? "ok" : err_msg());
		CHECK(stat(nv, &st1) == 0 && stat(arch_get(ARCH_AARCH64)->fw_vars, &st2) == 0 &&
		      st1.st_size == st2.st_size && (st1.st_mode & 0777) == 0600,
		      "aarch64 qemu driver: its own copy of AAVMF_VARS (0600) in the run directory");
		CHECK(rec.seen.n == 2 && str_startswith(rec.seen.v[0], "qemu-system-aarch64 -help") &&
		      strstr(rec.seen.v[1], nv), "aarch64 qemu driver: ran qemu-system-aarch64 "
		      "with it");
	} else {
		CHECK(0, "aarch64: firmware %s missing (Debian's qemu-efi-aarch64; make deps)",
		      arch_get(ARCH_AARCH64)->fw_vars);
	}
	hv_vm_free(vm);
	hv_close(hv);
	strv_release(&rec.seen);
	free(nv);
	remove_tree(DRY_RUN_DIR);

	/* The agent layer's key: the architecture is part of it, and each
	 * architecture's embedded agent is its own. */
	{
		size_t l1 = 0, l2 = 0;
		const void *b1 = arch_agent(arch_get(ARCH_X86_64), &l1);
		const void *b2 = arch_agent(arch_get(ARCH_AARCH64), &l2);
		char *d1 = inject_agent_digest(arch_get(ARCH_X86_64), "agent", 5);
		char *d2 = inject_agent_digest(arch_get(ARCH_AARCH64), "agent", 5);

		CHECK(d1 && d2 && strcmp(d1, d2) != 0,
		      "agent layer key: the same bytes under another architecture differ");
		CHECK(b1 && b2 && l1 > 4 && l2 > 4 && (l1 != l2 || memcmp(b1, b2, l1) != 0) &&
		      memcmp(b1, "\x7f" "ELF", 4) == 0 && memcmp(b2, "\x7f" "ELF", 4) == 0 &&
		      ((const unsigned char *)b1)[18] == 0x3e && ((const unsigned char *)b2)[18] == 0xb7,
		      "embedded agents: an x86-64 ELF (e_machine 0x3e) and an AArch64 one (0xb7)");
		free(d1);
		free(d2);
	}
	/* The table: names, aliases, EC2 names. */
	CHECK(arch_find("arm64") == arch_get(ARCH_AARCH64) &&
	      arch_find("aarch64") == arch_get(ARCH_AARCH64) &&
	      arch_find("amd64") == arch_get(ARCH_X86_64) && !arch_find("i386") &&
	      !arch_find("ARM64") && arch_find_ec2("arm64") == arch_get(ARCH_AARCH64) &&
	      !arch_find_ec2("aarch64") && arch_get(ARCH_AUTO) == arch_get(ARCH_X86_64),
	      "arch table: names, aliases, EC2 names, AUTO is x86_64");
}

/* A partition table with one partition of the given GPT type (16 bytes
 * as stored), or an MBR partition of mbr_type when guid is NULL. */
static void make_table(unsigned char *h, size_t n, const unsigned char *guid,
		       unsigned char mbr_type)
{
	memset(h, 0, n);
	h[510] = 0x55;
	h[511] = 0xaa;
	h[446 + 4] = guid ? 0xee : mbr_type;
	if (!guid)
		return;
	memcpy(h + 512, "EFI PART", 8);
	h[512 + 72] = 2;           /* entries from LBA 2 */
	h[512 + 80] = 128;         /* 128 entries */
	h[512 + 84] = 128;         /* of 128 bytes */
	/* An ESP first (C12A7328-F81F-11D2-BA4B-00A0C93EC93B), then guid. */
	memcpy(h + 1024, (const unsigned char[]){ 0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11,
						   0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e, 0xc9, 0x3b },
	       16);
	memcpy(h + 1024 + 128, guid, 16);
}

static void test_archprobe_table(void)
{
	static const unsigned char arm_root[16] = { 0x45, 0xb0, 0x21, 0xb9, 0xf0, 0x1d, 0xc3, 0x41,
						    0xaf, 0x44, 0x4c, 0x6f, 0x28, 0x0d, 0x3f, 0xae };
	static const unsigned char x86_root[16] = { 0xe3, 0xbc, 0x68, 0x4f, 0xcd, 0xe8, 0xb1, 0x4d,
						    0x96, 0xe7, 0xfb, 0xca, 0xf9, 0x84, 0xb7, 0x09 };
	static const unsigned char bios_boot[16] = { 0x48, 0x61, 0x68, 0x21, 0x49, 0x64, 0x6f, 0x6e,
						     0x74, 0x4e, 0x65, 0x65, 0x64, 0x45, 0x46, 0x49 };
	/* 0FC63DAF-8483-4772-8E79-3D69D8477DE4: Linux filesystem, any arch. */
	static const unsigned char linux_fs[16] = { 0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47,
						    0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47, 0x7d, 0xe4 };
	unsigned char *h = xcalloc(1, ARCHPROBE_HEAD);
	const char *why;
	const struct arch *a;

	make_table(h, ARCHPROBE_HEAD, arm_root, 0);
	a = archprobe_table(h, ARCHPROBE_HEAD, &why);
	CHECK(a == arch_get(ARCH_AARCH64) && why && strstr(why, "arm64 root"),
	      "archprobe: GPT with an arm64 root partition is aarch64");
	make_table(h, ARCHPROBE_HEAD, x86_root, 0);
	CHECK(archprobe_table(h, ARCHPROBE_HEAD, &why) == arch_get(ARCH_X86_64),
	      "archprobe: GPT with an x86-64 root partition is x86_64");
	make_table(h, ARCHPROBE_HEAD, bios_boot, 0);
	CHECK(archprobe_table(h, ARCHPROBE_HEAD, &why) == arch_get(ARCH_X86_64) &&
	      strstr(why, "BIOS boot"), "archprobe: a BIOS boot partition is x86_64");
	make_table(h, ARCHPROBE_HEAD, linux_fs, 0);
	CHECK(archprobe_table(h, ARCHPROBE_HEAD, &why) == NULL && why,
	      "archprobe: ESP + generic Linux partition: undecided (libguestfs decides)");
	make_table(h, ARCHPROBE_HEAD, NULL, 0x83);
	CHECK(archprobe_table(h, ARCHPROBE_HEAD, &why) == arch_get(ARCH_X86_64) &&
	      strstr(why, "MBR"), "archprobe: an MBR disk is x86_64");
	memset(h, 0, ARCHPROBE_HEAD);
	CHECK(archprobe_table(h, ARCHPROBE_HEAD, &why) == NULL && !why,
	      "archprobe: no partition table: nothing said, nothing to look at");
	/* Hostile headers: entries past what was read, odd sizes. */
	make_table(h, ARCHPROBE_HEAD, arm_root, 0);
	h[512 + 72] = 0xff;
	h[512 + 73] = 0xff;
	CHECK(archprobe_table(h, ARCHPROBE_HEAD, &why) == NULL,
	      "archprobe: entries beyond the bytes read are not looked at");
	make_table(h, ARCHPROBE_HEAD, arm_root, 0);
	h[512 + 84] = 100;
	CHECK(archprobe_table(h, ARCHPROBE_HEAD, &why) == NULL,
	      "archprobe: an entry size that is no power of two >= 128 is refused");
	make_table(h, ARCHPROBE_HEAD, arm_root, 0);
	CHECK(archprobe_table(h, 1024 + 200, &why) == NULL,
	      "archprobe: a short read looks at whole entries only");
	free(h);
}

/* A boot stuck in its kernel, told from the console (guest_watch_boot). */
static void test_console_stuck(void)
{
	static const char banner[] = "[    0.000000] Linux version 6.1.0-57-cloud-amd64 (gcc)\n"
				     "[    1.070000] clocksource: Switched to clocksource tsc\n";
	static const char stall[] = "[   22.100000] rcu: INFO: rcu_sched detected stalls on "
				    "CPUs/tasks:\n[   22.100100]  0-...!: (1 GPs behind)\n";
	char line[64], *t;

	t = xasprintf("%s%s", banner, stall);
	CHECK(guest_console_stuck(t, strlen(t), line, sizeof(line)) &&
	      strcmp(line, "detected stalls on CPUs/tasks:") == 0,
	      "console: a stall report after the kernel's banner is a stuck boot (%s)", line);
	free(t);
	t = xasprintf("%s[    3.2] systemd[1]: Started Journal Service.\n%s", banner, stall);
	CHECK(!guest_console_stuck(t, strlen(t), line, sizeof(line)),
	      "console: a stall after systemd started is not a stuck boot (the guest runs)");
	free(t);
	t = xasprintf("%s%s%s[    0.5] Run /init as init process\n", banner, stall, banner);
	CHECK(!guest_console_stuck(t, strlen(t), line, sizeof(line)),
	      "console: only the last boot counts (the stuck one was reset)");
	free(t);
	CHECK(!guest_console_stuck(stall, strlen(stall), line, sizeof(line)),
	      "console: no kernel banner, no verdict");
	t = xasprintf("%s[   30.0] watchdog: BUG: soft lockup - CPU#1 stuck for 23s! "
		      "[swapper/1:0] and more of the line past the buffer\n", banner);
	CHECK(guest_console_stuck(t, strlen(t), line, sizeof(line)) &&
	      strlen(line) == sizeof(line) - 1 && strncmp(line, "soft lockup - CPU#1", 19) == 0,
	      "console: a soft lockup is a stuck boot; its line is cut to the buffer");
	free(t);
	CHECK(!guest_console_stuck(banner, sizeof(banner) - 1, line, sizeof(line)),
	      "console: a boot still printing is not stuck");
}

/* Saved states: the argv that takes one, what a state needs of the guest
 * restoring it (hv_state_shape), the spec checks. */
static void test_saved_state(void)
{
	struct vm_spec s = base_spec(), t;
	struct strv a = STRV_INIT;
	struct hv *hv = hv_open("qemu", NULL);
	char *line, *shape, *other;

	CHECK(hv_qemu_argv(&s, "/q.sock", true, &a) == 0, "state: argv built");
	line = run_argv_str((const char *const *)a.v);
	CHECK(!strstr(line, "-incoming"), "state: a boot waits for no state");
	CHECK(strstr(line, "-device vmgenid") != NULL, "state: x86_64 has a generation ID");
	free(line);
	strv_release(&a);
	s.restore_state = "/var/cache/amiforge/checkpoints/layers/n-0.state";
	CHECK(hv_qemu_argv(&s, "/q.sock", true, &a) == 0, "state: restore argv built");
	line = run_argv_str((const char *const *)a.v);
	CHECK(strstr(line, " -incoming defer ") != NULL, "state: a restore waits for QMP's");
	CHECK(!strstr(line, "n-0.state"), "state: the file is not on the command line");
	free(line);
	strv_release(&a);
	s.restore_state = "n-0.state";
	CHECK(vm_spec_check(&s) < 0 && strstr(err_msg(), "saved state"),
	      "state: a relative state path is refused (%s)", err_msg());
	err_clear();
	s.restore_state = NULL;

	CHECK(hv && hv_can_save_state(hv), "state: the qemu driver saves states");
	shape = hv ? hv_state_shape(hv, &s) : NULL;
	CHECK(shape && str_startswith(shape, "qemu x86_64 pc tcg cpus=2 memory=2048 disk=qcow2 "
				      "seed=1 console=1 agent=1 net=none\nQEMU emulator"),
	      "state: shape '%s'", shape ? shape : err_msg());
	/* Paths and names are not the shape: a rebuild's guest has its own. */
	t = s;
	t.name = "amiforge-other";
	t.disks[0].path = "/elsewhere/top.qcow2";
	t.seed_iso = "/elsewhere/seed.iso";
	t.console_log = "/elsewhere/console.log";
	t.agent_socket = "/elsewhere/agent.sock";
	other = hv ? hv_state_shape(hv, &t) : NULL;
	CHECK(shape && other && strcmp(shape, other) == 0, "state: paths and name do not count");
	free(other);
	/* What the saved machine state depends on does. */
	t = s;
	t.memory_mib = 1024;
	other = hv ? hv_state_shape(hv, &t) : NULL;
	CHECK(shape && other && strcmp(shape, other) != 0, "state: memory counts");
	free(other);
	t = s;
	t.disks[1] = (struct vm_disk){ .path = "/b.raw", .format = "raw" };
	t.n_disks = 2;
	other = hv ? hv_state_shape(hv, &t) : NULL;
	CHECK(shape && other && strcmp(shape, other) != 0, "state: a disk more counts");
	free(other);
	t = s;
	t.net = VM_NET_USER;
	other = hv ? hv_state_shape(hv, &t) : NULL;
	CHECK(shape && other && strcmp(shape, other) != 0, "state: a NIC counts");
	free(other);
	t = s;
	t.accel = ACCEL_KVM;
	other = hv ? hv_state_shape(hv, &t) : NULL;
	CHECK(shape && other && strcmp(shape, other) != 0, "state: the accelerator counts");
	free(other);
	free(shape);
	/* Where a restored guest could not reseed its random numbers, or
	 * would lose its UEFI variables: no states. */
	t = s;
	t.arch = ARCH_AARCH64;
	other = hv ? hv_state_shape(hv, &t) : NULL;
	CHECK(!other && strstr(err_msg(), "no saved states for aarch64"),
	      "state: none for aarch64 guests (%s)", err_msg());
	err_clear();
	free(other);
	hv_close(hv);
}

int main(void)
{
	test_console_stuck();
	test_uri_check();
	test_domain_xml();
	test_chain_xml();
	test_qemu_argv();
	test_saved_state();
	test_spec_check();
	test_network();
	test_accel();
	test_image_info();
	test_seed();
	test_aarch64();
	test_archprobe_table();
	return TEST_DONE();
}
