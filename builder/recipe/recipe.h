/* recipe.h: a build recipe, read from YAML, validated and resolved.
 *
 *	name: web                        # [A-Za-z0-9][A-Za-z0-9._-]*, <= 64
 *	version: 1.0.0                   # semver 2.0.0
 *	description: "web {{ buildDate }}"
 *	parent: ../images/debian-12.qcow2
 *	  # or {url: https://..., sha256: HEX} | {url, sha512: HEX}
 *	  # or {url, checksum_url: https://.../SHA256SUMS}
 *	  # or {path: local.qcow2, sha256: HEX}; plus format: qcow2|raw|vmdk and,
 *	  # for archives (.tar .tar.gz .tgz .tar.xz .tar.zst .zip), member: PATH.
 *	  # format: what the image is, stated (builder/disk/admit.h): content
 *	  # that is not that format is refused (raw: read as raw, warned); without
 *	  # it, the content decides once and anything unclear is refused. Either
 *	  # way a base that would read other host files (backing file, qcow2
 *	  # data file, VMDK extents) is refused; the format is recorded in the
 *	  # cache and passed explicitly from then on. A guest boots qcow2 or raw
 *	  # only: a vmdk base is refused when fetched (amiforge convert it).
 *	components:
 *	  - path: components/nginx.yaml  # relative to the recipe (or "- file.yaml")
 *	    parameters: {Port: "8080"}
 *	    pin: true                    # reuse checkpoints after its downloads/UpdateOS
 *	tests:
 *	  - path: components/nginx-test.yaml
 *	vm: {cpus: 2, memory: 1024, disk_size: 8G, accel: auto, driver: auto,
 *	     connect: qemu:///system,
 *	     network: user,              # default: QEMU's user-mode network (NAT,
 *	                                 # DHCP, DNS; no privileges, both drivers);
 *	                                 # none: no NIC (hermetic: a failing step
 *	                                 # says the guest is offline and why);
 *	                                 # {network: NAME}: a libvirt network;
 *	                                 # {bridge: br0}: a host bridge
 *	     proxy: {http: http://p:3128, https: http://p:3128, no_proxy: "a,b"},
 *	                                 # or "proxy: inherit" (this shell's
 *	                                 # http_proxy/https_proxy/no_proxy); every
 *	                                 # step's environment, never the image;
 *	                                 # redacted from logs; not in checkpoint keys
 *	     forward: [8080, "2222:22"], # user network only: [HOST:]GUEST TCP ports,
 *	                                 # host side on 127.0.0.1; a bare GUEST port
 *	                                 # gets a free host port. Commands see
 *	                                 # AMIFORGE_HOST_PORT_<GUEST>=<HOST> and
 *	                                 # AMIFORGE_HOST_ADDR (the host, as the
 *	                                 # guest reaches it)
 *	     wait_for_cloud_init: false} # true: the first step waits until
 *	                                 # cloud-init has run all its stages (the
 *	                                 # agent starts before them; the network
 *	                                 # is waited for either way)
 *	cleanup: {cloudinit: true, ssh: true, logs: true, machine-id: true,
 *	          agent: true, history: true,
 *	          network: true}   # or "cleanup: false". network: DHCP leases,
 *	                           # a build-written resolv.conf, MAC-pinned
 *	                           # rules, cloud-init's per-instance
 *	                           # netplan/networkd/ENI files
 *	output: {formats: [qcow2, raw, vmdk], directory: out}
 *	publish: {via: import-snapshot, bucket: b, region: eu-west-1, name: ...}
 *	                 # every key: `amiforge help publish` (publish-opts.h)
 *	distribution: {allow_public, regions: [...]}   # recipe-dist.h
 *
 * Unknown keys are errors (with a "did you mean" hint). Every relative path
 * is resolved against the recipe's directory and made absolute.
 *
 * Variables: --var k=v. When k's first dotted component is a top-level
 * recipe key (name, vm.cpus, parent.url, publish.region, components.0.path
 * ...), the value replaces that node before validation. Any other k is a
 * parameter: it overrides the parameter of that name in every component and
 * test that sets it, and stays in recipe.vars so the component engine can
 * apply it to document defaults too. Templates {{ buildDate }},
 * {{ version }}, {{ name }} (and parameter vars) expand in description,
 * output.directory, component and test parameters, every publish value. */
#ifndef AMIFORGE_RECIPE_H
#define AMIFORGE_RECIPE_H

#include "compat.h"
#include "yaml.h"
#include "recipe-dist.h"
#include "drivers/hypervisor/hypervisor.h"
#include "recipe-inspect.h"
#include "builder/publish/publish-opts.h"

/* Limits: far above real recipes, small enough to refuse nonsense. */
#define RECIPE_NAME_MAX 64
#define RECIPE_DOCS_MAX 256          /* components, tests each */
#define RECIPE_PARAMS_MAX 256        /* parameters per document */
#define RECIPE_CPUS_MAX 256
#define RECIPE_MEMORY_MIN_MIB 128
#define RECIPE_MEMORY_MAX_MIB (1024u * 1024)  /* 1 TiB */
#define RECIPE_DISK_MAX (64ull << 40)         /* 64 TiB: EBS's largest volume */

enum checksum_algo { CHECKSUM_NONE = 0, CHECKSUM_SHA256, CHECKSUM_SHA512 };

/* "sha256" / "sha512" / "none", and the hex length of a digest (0 for none). */
const char *checksum_algo_name(enum checksum_algo a);
size_t checksum_hex_len(enum checksum_algo a);

enum archive_kind {
	ARCHIVE_NONE = 0, ARCHIVE_TAR, ARCHIVE_TAR_GZ, ARCHIVE_TAR_XZ, ARCHIVE_TAR_ZST,
	ARCHIVE_ZIP,
};
/* The archive kind a file name's suffix names (ARCHIVE_NONE otherwise). */
enum archive_kind archive_kind_of(const char *name);

struct recipe_parent {
	char *path;                /* absolute local path, or NULL for a URL */
	char *url;                 /* http(s) URL, or NULL */
	enum checksum_algo algo;   /* with checksum: expected digest of the file */
	char *checksum;            /* lowercase hex, or NULL */
	char *checksum_url;        /* SHA256SUMS-style file to look the digest up in */
	char *format;              /* as stated: "qcow2" | "raw" | "vmdk" (a vmdk
				    * base is refused when fetched), or NULL:
				    * detected once, when it is admitted */
	enum archive_kind archive; /* from the path/URL suffix */
	char *member;              /* the disk's path inside the archive, or NULL */
	char *ami;                 /* {ami: ami-...}: an AMI's root snapshot, or NULL */
	char *ssm;                 /* {ssm: /param}: the AMI an SSM parameter names, or NULL */
	char *region;              /* the AMI's region (NULL: the usual resolution) */
	char *profile;             /* AWS profile to read it with, or NULL */
	int line, col;             /* of the parent value, for later messages */
};

struct recipe_param {
	char *name;
	char *value;               /* templates expanded, --var applied */
	bool from_var;             /* set (or overridden) by --var */
	int line, col;             /* of its name in the recipe (0: --var) */
};

/* A component or test document. */
struct recipe_doc {
	char *path;                /* absolute */
	char *given;               /* as written in the recipe ("name@pattern" for
				    * a catalog component) */
	char *name, *version;      /* a catalog component: its name and the version
				    * resolved (builder/component/catalog.h); NULL
				    * for a document given by path */
	struct recipe_param *params;
	size_t nparams;
	bool pin;                  /* pin: true — its steps with external effects
				    * (downloads without checksums, UpdateOS) are
				    * taken as reproducible: checkpoints after
				    * them are reused by later builds */
	int line, col;
};

/* vm.proxy: every step's environment (http_proxy, https_proxy, no_proxy and
 * upper-case twins), never the image's. The URLs may hold credentials: they
 * are registered with the log redactor (log_add_secret) when parsed and are
 * never part of a message. */
#define RECIPE_PROXY_MAX 2048
struct recipe_proxy {
	char *http, *https, *no_proxy;   /* NULL: not set */
	bool inherit;                    /* vm.proxy: inherit (values from this
					  * process's environment at parse time) */
};

struct recipe_vm {
	unsigned cpus;             /* default 2 */
	uint64_t memory_mib;       /* default 1024; integer = MiB, or a size ("2G") */
	uint64_t disk_size;        /* bytes; 0 = the base image's size */
	char *accel;               /* "auto" | "kvm" | "tcg" */
	char *driver;              /* "auto" | "libvirt" | "qemu" */
	enum arch_id arch;         /* vm.arch (a name or alias of arch.h's table);
				    * ARCH_AUTO: the base image's */
	char *connect;             /* libvirt URI, or NULL for the driver's default */
	enum vm_net network;       /* default VM_NET_USER */
	char *network_source;      /* {network: NAME} / {bridge: NAME}, else NULL */
	struct recipe_proxy proxy;
	struct vm_forward forwards[VM_FORWARDS_MAX];   /* host_port 0: chosen at boot */
	size_t nforwards;
	bool wait_for_cloud_init;  /* the first step waits until cloud-init has
				    * finished (the agent starts before it) */
};

/* Generalisation steps, all on by default (Image Builder's skip flags). */
struct recipe_cleanup {
	bool cloudinit, ssh, logs, machine_id, agent, history, network;
};

enum output_format {
	OUTPUT_QCOW2 = 1 << 0, OUTPUT_RAW = 1 << 1, OUTPUT_VMDK = 1 << 2,
	OUTPUT_VHD = 1 << 3, OUTPUT_VHDX = 1 << 4, OUTPUT_OVA = 1 << 5,
};
/* Name of one format bit ("qcow2", ...), or NULL. */
const char *output_format_name(unsigned bit);

struct recipe_output {
	unsigned formats;          /* OUTPUT_* bits; default OUTPUT_QCOW2 */
	char *directory;           /* absolute, or NULL: the build directory's output/ */
};

/* Where the finished disk goes in AWS (issue 6/7): every option of
 * `amiforge publish` that has a recipe key (builder/publish/publish-opts.h,
 * one table for both), checked as the command checks its flags; templates
 * are expanded in every value. */
struct recipe_publish {
	bool set;                  /* a publish: mapping was given */
	struct publish_opts o;     /* o.spec.name: expanded, or NULL (the recipe's name) */
	const struct ynode *node;  /* the raw mapping (owned by recipe.doc) */
};

struct recipe {
	char *path;                /* absolute path of the recipe file */
	char *dir;                 /* its directory */
	char *name;
	char *version;
	char *description;         /* or NULL */
	char *build_date;          /* the {{ buildDate }} value, UTC, YYYYMMDDhhmmss */
	struct recipe_parent parent;
	struct recipe_doc *components;
	size_t ncomponents;
	struct recipe_doc *tests;
	size_t ntests;
	struct recipe_vm vm;
	struct recipe_cleanup cleanup;
	struct recipe_output output;
	struct recipe_publish publish;
	const struct ynode *distribution;  /* the raw node; NULL when absent */
	struct recipe_distribution dist;   /* parsed (recipe-dist.h) */
	struct recipe_inspect inspect;     /* the inspect: section (recipe-inspect.h) */
	struct recipe_param *vars; /* the --var values that are parameters */
	size_t nvars;
	struct ydoc doc;           /* the parsed YAML (nodes above point into it) */
};

/* Called for each component (is_test false) and test document after the
 * recipe itself is valid, for the component engine's deep validation.
 * Return 0, or -1 with an error recorded (file:line:col of the document). */
typedef int (*recipe_doc_check)(const struct recipe *r, const struct recipe_doc *d,
				bool is_test, void *opaque);

struct recipe_opts {
	const char *const *vars;   /* "k=v" strings, NULL-terminated, or NULL */
	time_t build_time;         /* for {{ buildDate }}; 0: now */
	recipe_doc_check check_doc;/* or NULL: only check the files are readable */
	bool parent_unchecked;     /* a parent path's form only: it need not exist
				      yet (validate without --check-parent) */
	void *opaque;
};

/* Read, validate and resolve the recipe at path. opts may be NULL.
 * Returns a recipe the caller frees with recipe_free(), or NULL with one
 * error recorded ("file:line:col: message" when it has a position). */
struct recipe *recipe_parse(const char *path, const struct recipe_opts *opts);

/* Free everything a recipe owns; recipe_free() also frees r. Both accept NULL. */
void recipe_release(struct recipe *r);
void recipe_free(struct recipe *r);

/* Value of a document's parameter, or NULL. */
const char *recipe_doc_param(const struct recipe_doc *d, const char *name);

/* True when s is a SemVer 2.0.0 version. */
bool semver_valid(const char *s);

#endif
