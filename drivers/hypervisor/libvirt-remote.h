/* libvirt-remote.h: the libvirt driver's parts for a daemon on another host
 * (issue 21). Nothing assumes that host shares a filesystem with amiforge:
 *
 * - disks: every file of a vm_spec (each overlay with its whole backing
 *   chain: checkpoint layers, the agent layer, the base; the seed) is
 *   uploaded into a volume of the LVR_POOL storage pool on that host
 *   (virStorageVolCreateXML + virStorageVolUpload through a virStream), named
 *   "<domain>-<role>" (vda, vda-b1 for its backing image, vda-b2...). The
 *   volumes keep the headers' local backing names; the domain XML spells the
 *   chain out with the volumes' paths and formats, which is what QEMU opens.
 *   The images below an overlay are shared volumes (lvr_upload_shared). A
 *   checkpoint's snapshot gives the guest a new top volume (lvr_overlay).
 *   The writable ones are downloaded back over their local file when the
 *   guest has stopped (the libvirt driver rewrites their headers to name
 *   the local chain); the guest's own are deleted with the guest, through a
 *   new connection when the first one died. `clean` deletes a journaled domain's volumes by those exact names
 *   (lvr_remove_volumes).
 * - the agent channel: a virtio-serial channel whose socket libvirt places on
 *   that host, reached with virDomainOpenChannel (on a connection of its own:
 *   libvirtd stops reading a client whose stream the guest does not take yet,
 *   then drops it for missed keepalives) and bridged to a local unix
 *   socket (the spec's agent_socket), so the agent client is unchanged; each
 *   client that connects gets a fresh channel stream (VIR_DOMAIN_CHANNEL_FORCE).
 * - the console: a pty serial port read with virDomainOpenConsole into the
 *   local console log, with the same ceiling as the direct QEMU driver's.
 *
 * Streams are non-blocking and driven by libvirt's default event loop, run
 * by one thread of this process (lvr_event_loop, before the connection),
 * whose callbacks never block nor wait for the server: that thread answers
 * the server's keepalive while the build thread talks to the agent. Each
 * channel open waits for the server, so it runs on a thread of the guest's
 * own (the accept thread). The connection has a keepalive of its own
 * (lvr_connect): a host gone silent ends the build with an error. */
#ifndef AMIFORGE_LIBVIRT_REMOTE_H
#define AMIFORGE_LIBVIRT_REMOTE_H

#include <libvirt/libvirt.h>

#include "compat.h"

/* The storage pool amiforge's volumes live in on a remote host: used when
 * it exists, else defined there as a directory pool at LVR_POOL_PATH. */
#define LVR_POOL "amiforge"
#define LVR_POOL_PATH "/var/lib/libvirt/images/amiforge"

/* Register libvirt's default event loop and start the thread that runs it,
 * once per process, before the first remote connection. 0 or -1. */
int lvr_event_loop(void);

/* Longest backing chain below one disk that is placed on a remote host. */
#define LVR_CHAIN_MAX 32

/* Connect to uri (after lvr_event_loop) with the keepalive above. NULL with
 * an error recorded. */
virConnectPtr lvr_connect(const char *uri);

struct lvr;
struct strv;

/* The qcow2 top and every image below it, top first, with their formats
 * (qemu-img info --backing-chain: absolute paths, qcow2 but the last, which
 * may be raw; at most 1 + LVR_CHAIN_MAX). 0 or -1. */
int lvr_chain(const char *top, struct strv *files, struct strv *formats);

/* The connection r uses from now on (a new one after the first died). */
void lvr_set_conn(struct lvr *r, virConnectPtr conn);

/* The remote state of the guest named domain on conn (not owned). */
struct lvr *lvr_new(virConnectPtr conn, const char *domain);

/* Upload the local file as volume "<domain>-<role>" (role: [a-z0-9.]+).
 * The volume's path on the remote host, owned by r; NULL with an error. */
const char *lvr_upload(struct lvr *r, const char *role, const char *local);

/* The images below a guest's overlay (no guest writes them) are kept in
 * the pool once per content and shared by every later guest, from any
 * client: volume LVR_BASE_PREFIX (the bottom of a chain: the base image) or
 * LVR_LAYER_PREFIX (a layer above it: the agent layer, a checkpoint's) + the
 * first 32 hex digits of the file's SHA-256. QEMU opens them read-only and
 * libvirt is told not to relabel them: a base is world-readable (0644), a
 * layer, which holds what a build's steps wrote, is root's and readable by
 * QEMU's group only (0640, the group from the DAC label in the host's
 * capabilities; a host that says none gets the layer as the guest's own
 * volume). A marker volume "<name>-ok" is made once its upload has
 * completed. A second client finding the volume without its marker waits
 * for it (LVR_BASE_WAIT_MS; an upload whose volume stops growing for a
 * minute counts as dead: the error names the volume to delete). amiforge never deletes them: a cache, pruned
 * with virsh (SCALE.md). The volume's path, owned by r; NULL with an error
 * (the caller may upload the file as one of the guest's own volumes
 * instead). */
#define LVR_BASE_PREFIX "amiforge-base-"
#define LVR_LAYER_PREFIX "amiforge-layer-"
#define LVR_BASE_WAIT_MS (10 * 60 * 1000)
const char *lvr_upload_shared(struct lvr *r, const char *local, bool layer);

/* A new qcow2 volume "<domain>-<role>" of size virtual bytes backed by the
 * volume at path backing (format backing_fmt): the top a live snapshot
 * moves the guest's writes to (checkpoints on a remote host). Its path,
 * owned by r; NULL with an error. */
const char *lvr_overlay(struct lvr *r, const char *role, const char *backing,
			const char *backing_fmt, uint64_t size);

/* Delete the guest's own volume at path now (one its disk no longer uses:
 * a layer merged away); a shared one, or none of its, is left. 0 or -1. */
int lvr_drop(struct lvr *r, const char *path);

/* Download volume "<domain>-<role>" over the local file (created 0600 or
 * truncated first). 0 or -1. */
int lvr_download(struct lvr *r, const char *role, const char *local);

/* Bridge the running domain's agent channel to a unix socket listening at
 * agent_socket (NULL: none) and its serial console to console_log (NULL:
 * none), kept within max bytes plus a note. 0 or -1. */
int lvr_bridge(struct lvr *r, virDomainPtr dom, const char *agent_socket,
	       const char *console_log, uint64_t max);

/* Stop the bridges (the console log is drained first). */
void lvr_unbridge(struct lvr *r);

/* Stop the bridges, delete the volumes (unless keep: a detached guest's,
 * left for `clean`) and free; accepts NULL. -1 (warned) when a volume may
 * be left. */
int lvr_free(struct lvr *r, bool keep);

/* `amiforge attach` to a guest kept on a remote host: the agent channel of
 * domain (on a new connection to uri) bridged to a local socketpair, whose
 * other end is *fd (the caller's). The bridge lives until this process
 * exits. 0 or -1. */
int lvr_channel_fd(const char *uri, const char *domain, int *fd);

/* Delete the volumes lvr gives the guest named domain in LVR_POOL on conn
 * (exact names: no other domain's; no pool: none to delete). `clean`'s half
 * of a remote domain record. 0 or -1. */
int lvr_remove_volumes(virConnectPtr conn, const char *domain);

#endif
