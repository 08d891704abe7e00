/* seed.c: NoCloud seed ISO written with libarchive's ISO9660 writer. */
#include <archive.h>
#include <archive_entry.h>
#include <sys/random.h>

#include "seed.h"
#include "buf.h"
#include "error.h"
#include "util.h"

char *seed_new_instance_id(void)
{
	unsigned char r[8];
	char hex[17];
	size_t i;

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
		/* getrandom cannot fail for 8 bytes once the pool is ready;
		 * fall back to time and pid rather than aborting. */
		uint64_t t = (uint64_t)now_ms() ^ ((uint64_t)getpid() << 32);
		memcpy(r, &t, sizeof(r));
	}
	for (i = 0; i < sizeof(r); i++)
		snprintf(hex + 2 * i, 3, "%02x", r[i]);
	return xasprintf("i-%s", hex);
}

/* The bootcmd script (POSIX sh). Kept free of YAML-special surprises: it is
 * emitted as a YAML literal block, indented. */
static const char bootcmd_script[] =
	"set -u\n"
	"d=" SEED_AGENT_DIR "\n"
	"a=$d/" SEED_AGENT_NAME "\n"
	"mkdir -p -m 0700 \"$d\"\n"
	"# /run is noexec (initramfs-tools): the agent gets a tmpfs of its own\n"
	"mountpoint -q \"$d\" || mount -t tmpfs -o mode=0700,size=32m,nosuid,nodev amiforge \"$d\"\n"
	"if [ ! -x \"$a\" ]; then\n"
	"  dev=$(blkid -t LABEL=cidata -o device 2>/dev/null | head -n 1)\n"
	"  [ -n \"$dev\" ] || dev=$(blkid -t LABEL=CIDATA -o device 2>/dev/null | head -n 1)\n"
	"  mkdir -p \"$d/seed\"\n"
	"  if mount -o ro -t iso9660 \"$dev\" \"$d/seed\"; then\n"
	"    cp \"$d/seed/" SEED_AGENT_NAME "\" \"$a.tmp\" && chmod 0755 \"$a.tmp\" && mv \"$a.tmp\" \"$a\"\n"
	"    umount \"$d/seed\"\n"
	"  fi\n"
	"  rmdir \"$d/seed\" 2>/dev/null\n"
	"fi\n"
	"if [ -x \"$a\" ]; then\n"
	"  if [ -d /run/systemd/system ] && command -v systemd-run >/dev/null; then\n"
	"    systemctl reset-failed " SEED_AGENT_NAME ".service 2>/dev/null\n"
	"    systemd-run --no-block --unit=" SEED_AGENT_NAME " --property=Restart=always \\\n"
	"      --property=RestartSec=1 --property=StandardOutput=journal+console \\\n"
	"      --property=StandardError=journal+console --description='amiforge guest agent' \"$a\"\n"
	"  else\n"
	"    setsid \"$a\" </dev/null >/dev/null 2>&1 &\n"
	"  fi\n"
	"fi\n"
	"echo \"" SEED_CONSOLE_MARK "$(cat /var/lib/cloud/data/instance-id 2>/dev/null)\"\n"
	"echo \"amiforge-seed: agent $([ -x \"$a\" ] && echo installed || echo missing)," \
	" virtio ports: $(cat /sys/class/virtio-ports/*/name 2>/dev/null | tr '\\n' ' ')\"\n";

char *seed_user_data(const struct seed_opts *o)
{
	struct buf b = BUF_INIT(64 * 1024);
	const char *p = bootcmd_script;

	if (o->agent_in_disk)
		return xstrdup("");   /* an empty cloud-config is warned about */
	buf_adds(&b, "#cloud-config\n"
		     "# amiforge: start the guest agent early, on every boot (bootcmd)\n"
		     "bootcmd:\n"
		     "  - |\n");
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);

		buf_adds(&b, "    ");
		buf_add(&b, p, len);
		buf_addc(&b, '\n');
		p += len + (nl ? 1 : 0);
	}
	return buf_detach(&b, NULL);
}

char *seed_meta_data(const struct seed_opts *o, const char *instance_id)
{
	return xasprintf("instance-id: %s\nlocal-hostname: %s\n", instance_id,
			 o->hostname ? o->hostname : "amiforge");
}

static int add_file(struct archive *a, const char *name, const void *data, size_t len,
		    mode_t mode)
{
	struct archive_entry *e = archive_entry_new();
	int ret = -1;

	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, mode);
	archive_entry_set_size(e, (la_int64_t)len);
	archive_entry_set_mtime(e, time(NULL), 0);
	if (archive_write_header(a, e) != ARCHIVE_OK)
		goto cleanup;
	if (len && archive_write_data(a, data, len) != (la_ssize_t)len)
		goto cleanup;
	ret = 0;
cleanup:
	if (ret < 0)
		err_set("seed: add '%s': %s", name, archive_error_string(a));
	archive_entry_free(e);
	return ret;
}

static bool valid_id(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= 128 &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == n;
}

int seed_write(const char *path, const struct seed_opts *o, char **instance_id_out)
{
	struct archive *a = archive_write_new();
	char *id = o->instance_id ? xstrdup(o->instance_id) : seed_new_instance_id();
	char *ud = NULL, *md = NULL;
	int ret = -1;

	if (!valid_id(id) || (o->hostname && !valid_id(o->hostname))) {
		err_set("seed: invalid instance-id or hostname '%s'", id);
		goto cleanup;
	}
	ud = seed_user_data(o);
	md = seed_meta_data(o, id);
	if (archive_write_set_format_iso9660(a) != ARCHIVE_OK ||
	    archive_write_set_format_option(a, "iso9660", "volume-id", "cidata") != ARCHIVE_OK ||
	    archive_write_set_format_option(a, "iso9660", "rockridge", "1") != ARCHIVE_OK ||
	    archive_write_set_format_option(a, "iso9660", "joliet", "1") != ARCHIVE_OK ||
	    archive_write_set_format_option(a, "iso9660", "pad", "1") != ARCHIVE_OK) {
		err_set("seed: ISO9660 writer: %s", archive_error_string(a));
		goto cleanup;
	}
	if (archive_write_open_filename(a, path) != ARCHIVE_OK) {
		err_set("seed: open '%s': %s", path, archive_error_string(a));
		goto cleanup;
	}
	if (add_file(a, "meta-data", md, strlen(md), 0644) < 0 ||
	    add_file(a, "user-data", ud, strlen(ud), 0644) < 0)
		goto cleanup;
	if (o->agent && add_file(a, SEED_AGENT_NAME, o->agent, o->agent_len, 0755) < 0)
		goto cleanup;
	if (archive_write_close(a) != ARCHIVE_OK) {
		err_set("seed: write '%s': %s", path, archive_error_string(a));
		goto cleanup;
	}
	if (chmod(path, 0644) < 0) {
		err_errno("seed: chmod '%s'", path);
		goto cleanup;
	}
	ret = 0;
cleanup:
	archive_write_free(a);
	if (ret < 0)
		unlink(path);
	if (ret == 0 && instance_id_out)
		*instance_id_out = id;
	else
		free(id);
	free(ud);
	free(md);
	return ret;
}
