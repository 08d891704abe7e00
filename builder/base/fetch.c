#include <sys/file.h>
#include <curl/curl.h>
#include <jansson.h>

#include "fetch.h"
#include "ami.h"
#include "drivers/aws/extras.h"
#include "drivers/aws/names.h"
#include "builder/disk/overlay.h"
#include "cache.h"
#include "error.h"
#include "log.h"
#include "run.h"
#include "unpack.h"
#include "util.h"

/* Largest qemu-img info output parsed (a few KiB in practice). */

struct xfer {
	CURL *curl;
	const char *url;
	/* sink: a file (fd, hasher) or a buffer */
	int fd;
	struct hasher *h;
	struct buf *b;
	uint64_t offset;        /* bytes present before this attempt */
	uint64_t have;          /* bytes present now */
	bool checked;           /* response code looked at */
	int64_t range_start;    /* from Content-Range, -1 if none */
	bool fatal;             /* stop retrying (error recorded) */
	/* progress */
	bool tty;
	int64_t t0, last_draw;
	const char *label;
};

static void curl_init_once(void)
{
	static bool done;

	if (!done) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		done = true;
	}
}

static size_t on_header(char *p, size_t sz, size_t nm, void *ud)
{
	struct xfer *x = ud;
	size_t n = sz * nm;
	static const char cr[] = "content-range: bytes ";

	if (n > strlen(cr) && strncasecmp(p, cr, strlen(cr)) == 0) {
		char tmp[32];
		size_t k = n - strlen(cr) < sizeof(tmp) - 1 ? n - strlen(cr) : sizeof(tmp) - 1;
		uint64_t v;

		memcpy(tmp, p + strlen(cr), k);
		tmp[k] = '\0';
		tmp[strcspn(tmp, "-")] = '\0';
		x->range_start = parse_u64(tmp, INT64_MAX, &v) == 0 ? (int64_t)v : -2;
	} else if (n >= 5 && strncmp(p, "HTTP/", 5) == 0) {
		x->range_start = -1;    /* a new response (after a redirect) */
	}
	return n;
}

static size_t on_data(char *p, size_t sz, size_t nm, void *ud)
{
	struct xfer *x = ud;
	size_t n = sz * nm;

	if (!x->checked) {
		long code = 0;

		x->checked = true;
		curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &code);
		if (x->b) {
			buf_reset(x->b);
		} else if (x->offset > 0 && code == 206 && x->range_start != (int64_t)x->offset) {
			err_set("download '%s': server resumed at the wrong offset", x->url);
			x->fatal = true;
			return 0;
		} else if (x->offset > 0 && code != 206) {
			/* The server ignored Range: start from the beginning. */
			log_info("download: server cannot resume; starting over");
			if (ftruncate(x->fd, 0) < 0 || lseek(x->fd, 0, SEEK_SET) < 0) {
				err_errno("truncate download");
				x->fatal = true;
				return 0;
			}
			x->offset = x->have = 0;
			hasher_reset(x->h);
		}
	}
	if (x->b) {
		if (buf_add(x->b, p, n) < 0) {
			x->fatal = true;
			return 0;
		}
		x->have += n;
		return n;
	}
	if (x->have + n > BASE_IMAGE_MAX) {
		err_set("download '%s': larger than %llu bytes", x->url,
			(unsigned long long)BASE_IMAGE_MAX);
		x->fatal = true;
		return 0;
	}
	if (write_all(x->fd, p, n) < 0) {
		err_errno("write download");
		x->fatal = true;
		return 0;
	}
	hasher_update(x->h, p, n);
	x->have += n;
	return n;
}

static void fmt_bytes(double v, char *out, size_t len)
{
	static const char *const u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	size_t i = 0;

	while (v >= 1024 && i + 1 < ARRAY_SIZE(u)) {
		v /= 1024;
		i++;
	}
	snprintf(out, len, "%.1f %s", v, u[i]);
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal UNUSED,
		       curl_off_t ulnow UNUSED)
{
	struct xfer *x = ud;
	int64_t t = now_ms();
	double secs, rate, total, done;
	char sdone[32], stotal[32], srate[32], eta[32] = "--:--";
	int pct = -1;

	if (!x->tty || t - x->last_draw < 200)
		return 0;
	x->last_draw = t;
	secs = (double)(t - x->t0) / 1000.0;
	rate = secs > 0 ? (double)dlnow / secs : 0;
	done = (double)x->offset + (double)dlnow;
	total = dltotal > 0 ? (double)x->offset + (double)dltotal : 0;
	fmt_bytes(done, sdone, sizeof(sdone));
	fmt_bytes(rate, srate, sizeof(srate));
	if (total > 0) {
		pct = (int)(done * 100 / total);
		fmt_bytes(total, stotal, sizeof(stotal));
		if (rate > 0) {
			long left = (long)((total - done) / rate);

			snprintf(eta, sizeof(eta), "%ld:%02ld", left / 60, left % 60);
		}
	} else {
		snprintf(stotal, sizeof(stotal), "?");
	}
	if (pct >= 0)
		fprintf(stderr, "\r\033[K%s %3d%% %s / %s  %s/s  ETA %s", x->label, pct, sdone,
			stotal, srate, eta);
	else
		fprintf(stderr, "\r\033[K%s %s  %s/s", x->label, sdone, srate);
	fflush(stderr);
	return 0;
}

static bool retryable(CURLcode rc, long code)
{
	switch (rc) {
	case CURLE_HTTP_RETURNED_ERROR:
		return code >= 500 || code == 408 || code == 429;
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_PARTIAL_FILE:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return true;
	default:
		return false;
	}
}

static int64_t retry_delay_ms(int attempt)
{
	const char *env = getenv("AMIFORGE_FETCH_RETRY_MS");
	int64_t base = 1000, d;

	if (env && parse_i64(env, 0, 60000, &base) < 0)
		base = 1000;
	d = base << (attempt < 5 ? attempt : 5);
	return d > 30000 ? 30000 : d;
}

/* Run the transfer with retries. For a file sink, each attempt resumes. */
static int transfer(struct xfer *x)
{
	char errbuf[CURL_ERROR_SIZE];
	int attempt;

	curl_init_once();
	x->tty = x->fd >= 0 && isatty(2) && log_get_level() >= LOG_INFO;
	for (attempt = 0; attempt < FETCH_ATTEMPTS; attempt++) {
		CURLcode rc;
		long code = 0;

		x->curl = curl_easy_init();
		if (!x->curl)
			return err_set("curl_easy_init failed");
		errbuf[0] = '\0';
		x->offset = x->have;
		x->checked = false;
		x->range_start = -1;
		x->t0 = now_ms();
		curl_easy_setopt(x->curl, CURLOPT_URL, x->url);
		curl_easy_setopt(x->curl, CURLOPT_PROTOCOLS_STR, "http,https");
		curl_easy_setopt(x->curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
		curl_easy_setopt(x->curl, CURLOPT_FOLLOWLOCATION, 1L);
		curl_easy_setopt(x->curl, CURLOPT_MAXREDIRS, 10L);
		curl_easy_setopt(x->curl, CURLOPT_FAILONERROR, 1L);
		curl_easy_setopt(x->curl, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(x->curl, CURLOPT_CONNECTTIMEOUT, 30L);
		/* A stalled server: less than 1 KiB/s for a minute. */
		curl_easy_setopt(x->curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);
		curl_easy_setopt(x->curl, CURLOPT_LOW_SPEED_TIME, 60L);
		curl_easy_setopt(x->curl, CURLOPT_USERAGENT, "amiforge/0.1");
		curl_easy_setopt(x->curl, CURLOPT_ERRORBUFFER, errbuf);
		curl_easy_setopt(x->curl, CURLOPT_WRITEFUNCTION, on_data);
		curl_easy_setopt(x->curl, CURLOPT_WRITEDATA, x);
		curl_easy_setopt(x->curl, CURLOPT_HEADERFUNCTION, on_header);
		curl_easy_setopt(x->curl, CURLOPT_HEADERDATA, x);
		curl_easy_setopt(x->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(x->curl, CURLOPT_XFERINFODATA, x);
		curl_easy_setopt(x->curl, CURLOPT_NOPROGRESS, 0L);
		if (x->fd >= 0 && x->have > 0)
			curl_easy_setopt(x->curl, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)x->have);
		rc = curl_easy_perform(x->curl);
		curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &code);
		curl_easy_cleanup(x->curl);
		x->curl = NULL;
		if (x->tty && x->checked)
			fprintf(stderr, "\r\033[K");
		if (rc == CURLE_OK)
			return 0;
		if (x->fatal)
			return -1;
		/* The server cannot resume: start over from byte 0. */
		if (rc == CURLE_RANGE_ERROR && x->fd >= 0 && x->have > 0) {
			log_info("download: server cannot resume; starting over");
			if (ftruncate(x->fd, 0) < 0 || lseek(x->fd, 0, SEEK_SET) < 0)
				return err_errno("truncate download");
			x->have = 0;
			hasher_reset(x->h);
			continue;
		}
		/* Range beyond the end: what we have is the whole file. */
		if (rc == CURLE_HTTP_RETURNED_ERROR && code == 416 && x->have > 0)
			return 0;
		if (!retryable(rc, code) || attempt + 1 == FETCH_ATTEMPTS) {
			if (rc == CURLE_HTTP_RETURNED_ERROR)
				return err_set("download '%s': HTTP %ld", x->url, code);
			return err_set("download '%s': %s", x->url,
				       errbuf[0] ? errbuf : curl_easy_strerror(rc));
		}
		log_warn("download '%s': %s; retrying (%d/%d)%s", x->url,
			 rc == CURLE_HTTP_RETURNED_ERROR ? "server error"
			 : errbuf[0] ? errbuf : curl_easy_strerror(rc),
			 attempt + 1, FETCH_ATTEMPTS - 1, x->have ? " from where it stopped" : "");
		usleep((useconds_t)retry_delay_ms(attempt) * 1000);
	}
	return -1;
}

int fetch_to_buf(const char *url, struct buf *b)
{
	struct xfer x = { .url = url, .fd = -1, .b = b };

	return transfer(&x);
}

int fetch_to_file(const char *url, const char *path, enum checksum_algo extra,
		  char **sha256_hex, char **extra_hex)
{
	struct xfer x = { .url = url, .fd = -1 };
	const char *slash = strrchr(url, '/');
	int64_t t0 = now_ms();
	char sz[32];
	int r = -1;

	*sha256_hex = NULL;
	*extra_hex = NULL;
	x.label = slash && slash[1] ? slash + 1 : url;
	x.h = hasher_new(extra);
	x.fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (x.fd < 0) {
		err_errno("open '%s'", path);
		goto cleanup;
	}
	/* What a previous run left: hash it, then ask for the rest. */
	for (;;) {
		char chunk[65536];
		ssize_t n = read(x.fd, chunk, sizeof(chunk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err_errno("read '%s'", path);
			goto cleanup;
		}
		if (n == 0)
			break;
		hasher_update(x.h, chunk, (size_t)n);
		x.have += (uint64_t)n;
	}
	if (x.have)
		log_info("download %s: resuming at %llu bytes", x.label,
			 (unsigned long long)x.have);
	else
		log_info("download %s", url);
	if (transfer(&x) < 0 || fsync(x.fd) < 0) {
		if (!err_isset())
			err_errno("write '%s'", path);
		goto cleanup;
	}
	hasher_final(x.h, sha256_hex, extra_hex);
	fmt_bytes((double)x.have, sz, sizeof(sz));
	log_info("downloaded %s: %s in %.1f s", x.label, sz, (double)(now_ms() - t0) / 1000.0);
	r = 0;
cleanup:
	if (x.fd >= 0)
		close(x.fd);
	hasher_free(x.h);
	return r;
}

/* ---- checksum files ------------------------------------------------------ */

static bool all_hex(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
		      (s[i] >= 'A' && s[i] <= 'F')))
			return false;
	return true;
}

int checksum_file_lookup(const char *text, size_t len, const char *name,
			 enum checksum_algo *algo, char **hex)
{
	const char *p = text, *end = text + len;
	size_t nlen = strlen(name);

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t ll = eol ? (size_t)(eol - p) : (size_t)(end - p);
		const char *h = NULL, *f = NULL;
		size_t hl = 0, fl = 0;

		if (ll && p[ll - 1] == '\r')
			ll--;
		if (ll > 7 && (strncmp(p, "SHA256 (", 8) == 0 || strncmp(p, "SHA512 (", 8) == 0)) {
			/* BSD: "SHA256 (name) = hex" */
			const char *close = NULL, *q;

			/* q[1] and q[2] stay inside the line */
			for (q = p + ll - 3; q > p + 8; q--)
				if (q[0] == ')' && q[1] == ' ' && q[2] == '=') {
					close = q;
					break;
				}
			if (close && close + 4 <= p + ll) {
				f = p + 8;
				fl = (size_t)(close - f);
				h = close + 4;
				hl = (size_t)(p + ll - h);
			}
		} else {
			/* GNU: "hex  name" or "hex *name" */
			const char *sp = memchr(p, ' ', ll);

			if (sp && (size_t)(sp - p) + 2 <= ll) {
				h = p;
				hl = (size_t)(sp - p);
				f = sp + 1;
				if (*f == ' ' || *f == '*')
					f++;
				fl = (size_t)(p + ll - f);
			}
		}
		if (h && fl == nlen && memcmp(f, name, nlen) == 0 && (hl == 64 || hl == 128) &&
		    all_hex(h, hl)) {
			size_t i;

			*algo = hl == 64 ? CHECKSUM_SHA256 : CHECKSUM_SHA512;
			*hex = xstrndup(h, hl);
			for (i = 0; i < hl; i++)
				if ((*hex)[i] >= 'A' && (*hex)[i] <= 'F')
					(*hex)[i] = (char)((*hex)[i] - 'A' + 'a');
			return 0;
		}
		p = eol ? eol + 1 : end;
	}
	return err_set("no checksum for '%s' in the checksum file", name);
}

char *url_file_name(const char *url)
{
	CURLU *u = curl_url();
	char *path = NULL, *name = NULL;
	const char *slash;

	if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PATH, &path, CURLU_URLDECODE) == CURLUE_OK) {
		slash = strrchr(path, '/');
		name = xstrdup(slash ? slash + 1 : path);
	}
	curl_free(path);
	curl_url_cleanup(u);
	return name;
}

static int lookup_checksum(const struct recipe_parent *p, enum checksum_algo *algo, char **hex)
{
	struct buf b = BUF_INIT(FETCH_SUMS_MAX);
	char *name = url_file_name(p->url);
	int r = -1;

	if (!name || !*name) {
		err_set("parent URL '%s' has no file name to look up", p->url);
		goto cleanup;
	}
	if (fetch_to_buf(p->checksum_url, &b) < 0)
		goto cleanup;
	if (checksum_file_lookup(b.data ? b.data : "", b.len, name, algo, hex) < 0) {
		err_prefix("checksum file '%s'", p->checksum_url);
		goto cleanup;
	}
	log_debug("checksum of %s from %s: %s %s", name, p->checksum_url,
		  checksum_algo_name(*algo), *hex);
	r = 0;
cleanup:
	free(name);
	buf_release(&b);
	return r;
}

/* ---- qemu-img --------------------------------------------------------------- */

/* A base image comes in: admitted (overlay.h, admit.h) with the stated
 * format, or detected; its format and size are recorded. */
static int probe_base(const char *path, const char *format, char **format_out,
		      uint64_t *virtual_size)
{
	struct image_info info;

	*format_out = NULL;
	if (image_admit(path, format, &info) < 0)
		return -1;
	*format_out = xstrdup(info.format);
	*virtual_size = info.virtual_size;
	return 0;
}

/* ---- the base image -------------------------------------------------------- */

void base_image_release(struct base_image *img)
{
	if (!img)
		return;
	free(img->path);
	free(img->format);
	free(img->sha256);
	free(img->source);
	free(img->member);
	free(img->arch);
	free(img->boot_mode);
	memset(img, 0, sizeof(*img));
}

static void fill(struct base_image *out, const char *path, const struct cache_record *rec)
{
	struct stat st;

	out->path = xstrdup(path);
	out->format = xstrdup(rec->format);
	out->sha256 = xstrdup(rec->object);
	out->source = rec->source ? xstrdup(rec->source) : NULL;
	out->member = rec->member ? xstrdup(rec->member) : NULL;
	out->size = stat(path, &st) == 0 ? (uint64_t)st.st_size : rec->size;
	out->virtual_size = rec->virtual_size;
	/* Only values a build may pass on (a ref is ours, but checked anyway). */
	if (rec->arch && (strcmp(rec->arch, "x86_64") == 0 || strcmp(rec->arch, "arm64") == 0 ||
			  strcmp(rec->arch, "i386") == 0))
		out->arch = xstrdup(rec->arch);
	if (rec->boot_mode && (strcmp(rec->boot_mode, "legacy-bios") == 0 ||
			       strcmp(rec->boot_mode, "uefi") == 0 ||
			       strcmp(rec->boot_mode, "uefi-preferred") == 0))
		out->boot_mode = xstrdup(rec->boot_mode);
}

/* A recorded image is admitted again before each use, as the recipe states
 * it now or else as recorded (never detected again): a record written before
 * a check existed, or a format stated differently this time, is checked.
 * It costs one header read and one qemu-img info. 0 or -1. */
static int readmit(const char *path, const char *stated, struct cache_record *rec)
{
	char *format = NULL;

	if (probe_base(path, stated ? stated : rec->format, &format, &rec->virtual_size) < 0)
		return -1;
	free(rec->format);
	rec->format = format;
	return 0;
}

/* A ref whose object is present with its recorded size: use it. 1 hit, 0
 * miss, -1 refused (the error recorded). */
static int try_ref(const char *cache, const char *ref, const char *stated,
		   struct base_image *out)
{
	struct cache_record rec;
	struct stat st;
	char *obj;
	int r;

	r = cache_record_load(ref, &rec);
	if (r <= 0) {
		if (r < 0)
			log_warn("cache: ignoring '%s': %s", ref, err_msg());
		return 0;
	}
	obj = cache_object_path(cache, rec.object);
	r = stat(obj, &st) == 0 && (uint64_t)st.st_size == rec.size;
	if (r && readmit(obj, stated, &rec) < 0)
		r = -1;
	else if (r) {
		fill(out, obj, &rec);
		cache_touch(ref);
		log_info("base image: %s (cached, %s)", rec.source ? rec.source : obj, rec.format);
	}
	free(obj);
	cache_record_release(&rec);
	return r;
}

static int lock_key(const char *cache, const char *key, int *fd)
{
	char *path = xasprintf("%s/tmp/%s.lock", cache, key);

	*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (*fd < 0) {
		err_errno("open '%s'", path);
		free(path);
		return -1;
	}
	if (flock(*fd, LOCK_EX | LOCK_NB) < 0) {
		log_info("waiting for another amiforge fetching the same image");
		if (flock(*fd, LOCK_EX) < 0) {
			err_errno("lock '%s'", path);
			free(path);
			return -1;
		}
	}
	free(path);
	return 0;
}

/* Move a verified file into objects/ (read-only) and write its ref. */
static int store(const char *cache, const char *file, const char *ref,
		 struct cache_record *rec, const char *format, struct base_image *out)
{
	char *obj = cache_object_path(cache, rec->object);
	struct stat st;
	int r = -1;

	if (probe_base(file, format, &rec->format, &rec->virtual_size) < 0)
		goto cleanup;
	if (stat(file, &st) < 0) {
		err_errno("stat '%s'", file);
		goto cleanup;
	}
	rec->size = (uint64_t)st.st_size;
	if (chmod(file, 0400) < 0 || rename(file, obj) < 0) {
		err_errno("store '%s' in the cache", file);
		goto cleanup;
	}
	if (ref && cache_record_save(ref, rec) < 0)
		goto cleanup;
	fill(out, obj, rec);
	r = 0;
cleanup:
	free(obj);
	return r;
}

static int get_url(const char *cache, const struct recipe_parent *p, struct base_image *out)
{
	enum checksum_algo algo = p->algo;
	char *want = p->checksum ? xstrdup(p->checksum) : NULL, *key = NULL, *ref = NULL;
	char *partial = NULL, *disk = NULL, *s256 = NULL, *extra = NULL, *got, *member = NULL;
	struct cache_record rec = { 0 };
	int lock = -1, r = -1, tries;

	if (!want && lookup_checksum(p, &algo, &want) < 0)
		goto cleanup;
	key = xasprintf("%s-%s", checksum_algo_name(algo), want);
	ref = xasprintf("%s/refs/%s.json", cache, key);
	if (try_ref(cache, ref, p->format, out) || lock_key(cache, key, &lock) < 0 ||
	    try_ref(cache, ref, p->format, out)) {
		r = out->path ? 0 : -1;
		goto cleanup;
	}
	partial = xasprintf("%s/tmp/%s.partial", cache, key);
	/* Twice at most: a partial left by an earlier run may be of another
	 * file (the URL's content changed); then start over once. */
	for (tries = 0; tries < 2; tries++) {
		struct stat st;
		bool resumed = stat(partial, &st) == 0 && st.st_size > 0;

		free(s256);
		free(extra);
		if (fetch_to_file(p->url, partial, algo, &s256, &extra) < 0)
			goto cleanup;
		got = algo == CHECKSUM_SHA256 ? s256 : extra;
		if (strcmp(got, want) == 0)
			break;
		unlink(partial);
		if (!resumed || tries == 1) {
			err_set("download '%s': %s mismatch: expected %s, got %s (download "
				"discarded)", p->url, checksum_algo_name(algo), want, got);
			goto cleanup;
		}
		log_warn("download '%s': checksum mismatch after resuming; downloading again",
			 p->url);
	}
	out->downloaded = true;
	rec.source = xstrdup(p->url);
	if (p->archive) {
		disk = xasprintf("%s/tmp/%s.disk", cache, key);
		if (unpack_disk(partial, p->member, disk, &rec.object, &member) < 0)
			goto cleanup;
		unlink(partial);
		rec.member = member;
		member = NULL;
		if (store(cache, disk, ref, &rec, p->format, out) < 0)
			goto cleanup;
	} else {
		rec.object = s256;
		s256 = NULL;
		if (store(cache, partial, ref, &rec, p->format, out) < 0) {
			/* Verified but refused (admit.h): fetching it again
			 * would give the same file. */
			unlink(partial);
			goto cleanup;
		}
	}
	out->downloaded = true;
	log_info("base image: %s (%s, sha256 %.12s)", p->url, out->format, out->sha256);
	r = 0;
cleanup:
	if (disk)
		unlink(disk);
	if (lock >= 0)
		close(lock);
	cache_record_release(&rec);
	free(member);
	free(want);
	free(key);
	free(ref);
	free(partial);
	free(disk);
	free(s256);
	free(extra);
	return r;
}

/* An AMI's root snapshot (ami.h), kept as a qcow2 object. Refs: the AMI in
 * its region (an AMI's snapshot never changes: a second build asks AWS
 * nothing) and the snapshot itself (another AMI of the same snapshot reuses
 * it). The raw download and its bitmap stay in tmp/ until done, so an
 * interrupted fetch resumes. */
static int get_ami(const char *cache, const struct recipe_parent *p, struct base_image *out)
{
	struct aws_client_opts co = { .profile = p->profile, .region = p->region,
				      .need_region = true };
	struct aws_client *cl = NULL;
	struct ami_info ai = { 0 };
	struct cache_record rec = { 0 };
	char *key = NULL, *ref = NULL, *sref = NULL, *raw = NULL, *done = NULL, *qcow = NULL;
	const char *argv[12];
	struct run run = RUN_INIT;
	uint64_t fetched = 0;
	int lock = -1, r = -1, hit, rc;
	char *named = NULL, *dtype = NULL;
	const char *ami = NULL;
	size_t n = 0;

	cl = aws_client_new(&co);
	if (!cl)
		goto cleanup;
	/* The region names cache files: only a region's characters get there. */
	if (!aws_region_ok(aws_client_region(cl))) {
		err_set("AWS region '%.64s' is not a region name", aws_client_region(cl));
		goto cleanup;
	}
	/* An SSM parameter names the AMI (asked each time: it moves on). */
	if (p->ssm) {
		if (ssm_get_parameter(cl, p->ssm, &named, &dtype) < 0)
			goto cleanup;
		if (!ami_id_ok(named)) {
			err_set("SSM parameter %s (%s) holds '%.64s', not an AMI id", p->ssm,
				dtype ? dtype : "no data type", named);
			goto cleanup;
		}
		log_info("base image: SSM parameter %s names %s", p->ssm, named);
	}
	ami = p->ssm ? named : p->ami;
	key = xasprintf("ami-%s-%s", aws_client_region(cl), ami + 4);
	ref = xasprintf("%s/refs/%s.json", cache, key);
	if ((hit = try_ref(cache, ref, "qcow2", out)) != 0 || lock_key(cache, key, &lock) < 0 ||
	    (hit = try_ref(cache, ref, "qcow2", out)) != 0) {
		if (hit > 0)
			log_info("base image: %s in %s (cached: nothing fetched)", ami,
				 aws_client_region(cl));
		r = out->path ? 0 : -1;
		goto cleanup;
	}
	if (ami_describe(cl, ami, &ai) < 0)
		goto cleanup;
	log_info("base image: %s (%s, %s%s%s) in %s: snapshot %s, %d GiB", ami,
		 ai.name ? ai.name : "no name", ai.arch, ai.boot_mode ? ", " : "",
		 ai.boot_mode ? ai.boot_mode : "", aws_client_region(cl), ai.snapshot_id,
		 ai.size_gib);
	sref = xasprintf("%s/refs/ebs-%s-%s.json", cache, aws_client_region(cl), ai.snapshot_id);
	if ((hit = try_ref(cache, sref, "qcow2", out)) < 0)
		goto cleanup;
	if (!hit) {
		raw = xasprintf("%s/tmp/%s.raw.partial", cache, key);
		done = xasprintf("%s/tmp/%s.blocks", cache, key);
		qcow = xasprintf("%s/tmp/%s.qcow2", cache, key);
		if (ami_fetch_snapshot(cl, ai.snapshot_id, ai.size_gib, raw, done, &fetched) < 0)
			goto cleanup;
		/* Our own raw file, of our own size: qemu-img reads it as raw. */
		argv[n++] = "qemu-img";
		argv[n++] = "convert";
		argv[n++] = "-q";
		argv[n++] = "-f";
		argv[n++] = "raw";
		argv[n++] = "-O";
		argv[n++] = "qcow2";
		argv[n++] = raw;
		argv[n++] = qcow;
		argv[n] = NULL;
		run.argv = argv;
		run.err = RUN_CAPTURE;
		rc = run_sync(&run) < 0 || run_check(&run) < 0 ? -1 : 0;
		run_release(&run);
		if (rc < 0 || hash_file(qcow, CHECKSUM_NONE, &rec.object, NULL) < 0)
			goto cleanup;
		unlink(raw);
		rec.source = xasprintf("%s (%s, snapshot %s)", ami, aws_client_region(cl),
				       ai.snapshot_id);
		rec.arch = xstrdup(ai.arch);
		rec.boot_mode = ai.boot_mode ? xstrdup(ai.boot_mode) : NULL;
		if (store(cache, qcow, sref, &rec, "qcow2", out) < 0)
			goto cleanup;
		out->downloaded = true;
	} else {
		/* The snapshot's record speaks for it; the AMI's own values win. */
		if (cache_record_load(sref, &rec) < 0)
			goto cleanup;
		free(rec.arch);
		free(rec.boot_mode);
		free(rec.source);
		rec.arch = xstrdup(ai.arch);
		rec.boot_mode = ai.boot_mode ? xstrdup(ai.boot_mode) : NULL;
		rec.source = xasprintf("%s (%s, snapshot %s)", ami, aws_client_region(cl),
				       ai.snapshot_id);
		free(out->arch);
		free(out->boot_mode);
		out->arch = xstrdup(ai.arch);
		out->boot_mode = ai.boot_mode ? xstrdup(ai.boot_mode) : NULL;
	}
	if (!rec.object || cache_record_save(ref, &rec) < 0)
		goto cleanup;
	log_info("base image: %s (%" PRIu64 " blocks fetched, sha256 %.12s)", ami, fetched,
		 out->sha256);
	if (p->ssm) {
		free(out->source);
		out->source = xasprintf("ssm:%s = %s (%s)", p->ssm, ami, aws_client_region(cl));
	}
	r = 0;
cleanup:
	free(named);
	free(dtype);
	if (qcow)
		unlink(qcow);
	if (lock >= 0)
		close(lock);
	cache_record_release(&rec);
	ami_info_release(&ai);
	aws_client_free(cl);
	free(key);
	free(ref);
	free(sref);
	free(raw);
	free(done);
	free(qcow);
	return r;
}

static int get_local(const char *cache, const struct recipe_parent *p, struct base_image *out)
{
	struct cache_record rec = { 0 };
	struct stat st;
	char *recpath = NULL, *disk = NULL, *obj = NULL, *member = NULL, *key = NULL;
	bool have, need512 = p->algo == CHECKSUM_SHA512;
	int r = -1, lock = -1;

	if (stat(p->path, &st) < 0) {
		err_errno("base image '%s'", p->path);
		goto cleanup;
	}
	/* Keyed by identity and change time of the file: a file rewritten in
	 * place gets a new mtime, hence a new key and a fresh digest. */
	recpath = xasprintf("%s/local/%llu-%llu-%llu-%lld.%09ld.json", cache,
			    (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
			    (unsigned long long)st.st_size, (long long)st.st_mtim.tv_sec,
			    st.st_mtim.tv_nsec);
	have = cache_record_load(recpath, &rec) == 1 && rec.source &&
	       strcmp(rec.source, p->path) == 0 && rec.file_sha256 && (!need512 || rec.sha512);
	if (!have) {
		char *s256 = NULL, *s512 = NULL;

		cache_record_release(&rec);
		log_info("base image: hashing %s", p->path);
		if (hash_file(p->path, need512 ? CHECKSUM_SHA512 : CHECKSUM_NONE, &s256, &s512) < 0)
			goto cleanup;
		rec.file_sha256 = s256;
		rec.sha512 = s512;
		rec.source = xstrdup(p->path);
	}
	if (p->checksum) {
		const char *got = need512 ? rec.sha512 : rec.file_sha256;

		if (strcmp(got, p->checksum) != 0) {
			err_set("base image '%s': %s mismatch: expected %s, got %s", p->path,
				checksum_algo_name(p->algo), p->checksum, got);
			goto cleanup;
		}
	}
	if (!p->archive) {
		if (!have) {
			rec.object = xstrdup(rec.file_sha256);
			rec.size = (uint64_t)st.st_size;
			if (probe_base(p->path, p->format, &rec.format, &rec.virtual_size) < 0 ||
			    cache_record_save(recpath, &rec) < 0)
				goto cleanup;
		} else if (readmit(p->path, p->format, &rec) < 0) {
			goto cleanup;
		}
		cache_touch(recpath);
		fill(out, p->path, &rec);
		out->in_place = true;
		log_info("base image: %s (%s)", p->path, out->format);
		r = 0;
		goto cleanup;
	}
	/* A local archive: unpack once into the cache. */
	if (have) {
		obj = cache_object_path(cache, rec.object);
		if (access(obj, R_OK) == 0) {
			if (readmit(obj, p->format, &rec) < 0)
				goto cleanup;
			cache_touch(recpath);
			fill(out, obj, &rec);
			r = 0;
			goto cleanup;
		}
	}
	key = xasprintf("local-%s", rec.file_sha256);
	if (lock_key(cache, key, &lock) < 0)
		goto cleanup;
	disk = xasprintf("%s/tmp/%s.disk", cache, key);
	free(rec.object);
	rec.object = NULL;
	free(rec.member);
	rec.member = NULL;
	if (unpack_disk(p->path, p->member, disk, &rec.object, &member) < 0)
		goto cleanup;
	rec.member = member;
	member = NULL;
	free(rec.format);
	rec.format = NULL;
	if (store(cache, disk, recpath, &rec, p->format, out) < 0)
		goto cleanup;
	log_info("base image: %s :: %s (%s)", p->path, out->member, out->format);
	r = 0;
cleanup:
	if (disk)
		unlink(disk);
	if (lock >= 0)
		close(lock);
	cache_record_release(&rec);
	free(recpath);
	free(disk);
	free(obj);
	free(member);
	free(key);
	return r;
}

int base_image_get(const struct recipe_parent *parent, struct base_image *out)
{
	char *cache;
	int r;

	memset(out, 0, sizeof(*out));
	cache = cache_dir();
	if (!cache)
		return -1;
	r = parent->ami || parent->ssm ? get_ami(cache, parent, out)
	    : parent->url ? get_url(cache, parent, out) : get_local(cache, parent, out);
	free(cache);
	if (r < 0)
		base_image_release(out);
	return r;
}
