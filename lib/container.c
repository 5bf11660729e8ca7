/* container.c - the containers of hypr run: directories, names, state,
 * locks, the log and the control socket (see container.h). */
#include "container.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "vm_proto.h"

#define MAX_JSON (16u << 20)
#define FRAME_MAX (16u << 20)

int64_t
hypr_ctr_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void
hypr_ctr_short(const char *id, char *buf)
{
	snprintf(buf, 13, "%.12s", id);
}

static int
is_id(const char *s)
{
	if (strlen(s) != HYPR_CTR_ID_LEN)
		return 0;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return 0;
	return 1;
}

static json_t *
load_json(const char *dir, const char *name, struct hypr_err *e)
{
	char p[4400], *buf;
	size_t len;
	json_t *j;
	json_error_t je;

	snprintf(p, sizeof p, "%s/%s", dir, name);
	if (hypr_read_file(p, MAX_JSON, &buf, &len, e) < 0)
		return NULL;
	j = json_loadb(buf, len, 0, &je);
	free(buf);
	if (!json_is_object(j)) {
		json_decref(j);
		hypr_err_set(e, HYPR_EXIT_INPUT, "%s: not a JSON object", p);
		return NULL;
	}
	return j;
}

static int
save_json(const char *dir, const char *name, json_t *j, struct hypr_err *e)
{
	char p[4400], *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
	int rc;

	if (!s)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	snprintf(p, sizeof p, "%s/%s", dir, name);
	rc = hypr_write_atomic(p, s, strlen(s), 0644, e);
	free(s);
	return rc;
}

/* Whether some process holds the supervisor's lock. */
static int
probe_alive(const char *dir)
{
	char p[4400];
	int fd, busy;

	snprintf(p, sizeof p, "%s/lock", dir);
	if ((fd = open(p, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	busy = flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
	close(fd);
	return busy;
}

int
hypr_ctr_reload(struct hypr_ctr *c, struct hypr_err *e)
{
	struct hypr_err ign = { 0 };

	(void)e;
	json_decref(c->state);
	c->alive = probe_alive(c->dir);
	/* a state being replaced is read whole, old or new: rename is atomic */
	if (!(c->state = load_json(c->dir, "state.json", &ign)))
		c->state = json_object();
	return 0;
}

int
hypr_ctr_load(const struct hypr_root *r, const char *id, struct hypr_ctr *c,
    struct hypr_err *e)
{
	memset(c, 0, sizeof *c);
	snprintf(c->id, sizeof c->id, "%s", id);
	if (hypr_root_path(r, c->dir, sizeof c->dir, "containers/%s", id) < 0)
		return hypr_err_set(e, HYPR_EXIT_USAGE, "HYPR_ROOT too long");
	if (!(c->config = load_json(c->dir, "config.json", e)))
		return -1;
	return hypr_ctr_reload(c, e);
}

void
hypr_ctr_free(struct hypr_ctr *c)
{
	json_decref(c->config);
	json_decref(c->state);
	c->config = c->state = NULL;
}

static int
cmp_created(const void *a, const void *b)
{
	const struct hypr_ctr *x = a, *y = b;
	json_int_t cx = json_integer_value(json_object_get(x->config, "created"));
	json_int_t cy = json_integer_value(json_object_get(y->config, "created"));

	if (cx != cy)
		return cx < cy ? 1 : -1;
	return strcmp(x->id, y->id);
}

int
hypr_ctr_list(const struct hypr_root *r, struct hypr_ctr **v, size_t *n,
    struct hypr_err *e)
{
	char dir[4300];
	DIR *d;
	struct dirent *de;
	size_t cap = 0;

	*v = NULL;
	*n = 0;
	if (hypr_root_path(r, dir, sizeof dir, "containers") < 0)
		return hypr_err_set(e, HYPR_EXIT_USAGE, "HYPR_ROOT too long");
	if (!(d = opendir(dir)))
		return errno == ENOENT ? 0 : hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", dir);
	while ((de = readdir(d))) {
		struct hypr_ctr c;
		struct hypr_err ign = { 0 };

		if (!is_id(de->d_name) || hypr_ctr_load(r, de->d_name, &c, &ign) < 0)
			continue;	/* half made or half removed: not a container */
		if (*n == cap) {
			struct hypr_ctr *nv = realloc(*v, (cap = cap ? cap * 2 : 16) * sizeof *nv);
			if (!nv) {
				hypr_ctr_free(&c);
				closedir(d);
				return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
			}
			*v = nv;
		}
		(*v)[(*n)++] = c;
	}
	closedir(d);
	if (*n)
		qsort(*v, *n, sizeof **v, cmp_created);
	return 0;
}

void
hypr_ctr_list_free(struct hypr_ctr *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		hypr_ctr_free(&v[i]);
	free(v);
}

int
hypr_ctr_find(const struct hypr_root *r, const char *what, struct hypr_ctr *c,
    struct hypr_err *e)
{
	struct hypr_ctr *v;
	size_t n, hit = (size_t)-1, nhits = 0, k = strlen(what);

	memset(c, 0, sizeof *c);	/* a failure leaves nothing to free */
	if (!*what)
		return hypr_err_set(e, HYPR_EXIT_USAGE, "a container name or ID is needed");
	if (hypr_ctr_list(r, &v, &n, e) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const char *name = json_string_value(json_object_get(v[i].config, "name"));
		if (!strcmp(v[i].id, what) || (name && !strcmp(name, what))) {
			hit = i;
			nhits = 1;
			break;
		}
		if (!strncmp(v[i].id, what, k)) {
			hit = i;
			nhits++;
		}
	}
	if (nhits != 1) {
		hypr_ctr_list_free(v, n);
		return hypr_err_set(e, HYPR_EXIT_INPUT, nhits ?
		    "multiple containers match ID prefix %s" : "No such container: %s", what);
	}
	*c = v[hit];
	memset(&v[hit], 0, sizeof v[hit]);
	hypr_ctr_list_free(v, n);
	return 0;
}

/* Docker's way: an adjective and a name, with a digit on a clash. */
static void
make_name(char *buf, size_t n, unsigned rnd, int tries)
{
	static const char *const adj[] = { "agile", "bold", "brave", "calm", "clever",
		"eager", "fair", "gentle", "happy", "jolly", "keen", "lucid", "merry",
		"nimble", "quiet", "swift", "tender", "vivid", "wise", "zealous" };
	static const char *const who[] = { "babbage", "curie", "dijkstra", "euler",
		"fermat", "gauss", "hopper", "hypatia", "knuth", "lamport", "lovelace",
		"mccarthy", "noether", "pascal", "ritchie", "shannon", "thompson",
		"torvalds", "turing", "wirth" };

	snprintf(buf, n, "%s_%s", adj[rnd % 20], who[(rnd / 20) % 20]);
	if (tries)
		snprintf(buf + strlen(buf), n - strlen(buf), "%d", tries);
}

int
hypr_ctr_create(const struct hypr_root *r, json_t *config, struct hypr_ctr *c,
    struct hypr_err *e)
{
	char lockp[4300], name[128];
	unsigned char rnd[36];
	struct hypr_ctr *v = NULL;
	size_t n = 0;
	const char *want = json_string_value(json_object_get(config, "name"));
	int lfd, rc = -1;
	unsigned pick;

	memset(c, 0, sizeof *c);
	if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "getrandom");
	for (int i = 0; i < 32; i++)
		snprintf(c->id + 2 * i, 3, "%02x", rnd[i]);
	pick = (unsigned)rnd[32] | (unsigned)rnd[33] << 8;
	if (hypr_root_path(r, lockp, sizeof lockp, "containers") < 0 ||
	    hypr_root_path(r, c->dir, sizeof c->dir, "containers/%s", c->id) < 0)
		return hypr_err_set(e, HYPR_EXIT_USAGE, "HYPR_ROOT too long");
	if (hypr_mkdir_p(lockp, 0755, e) < 0)
		return -1;
	strcat(lockp, "/.lock");
	if ((lfd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", lockp);
	while (flock(lfd, LOCK_EX) < 0)
		if (errno != EINTR) {
			close(lfd);
			return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", lockp);
		}
	if (hypr_ctr_list(r, &v, &n, e) < 0)
		goto out;
	for (int tries = 0;; tries++) {
		int clash = 0;
		if (want)
			snprintf(name, sizeof name, "%s", want);
		else
			make_name(name, sizeof name, pick, tries);
		for (size_t i = 0; i < n && !clash; i++) {
			const char *o = json_string_value(json_object_get(v[i].config, "name"));
			if (o && !strcmp(o, name)) {
				clash = 1;
				if (want) {
					hypr_err_set(e, HYPR_EXIT_INPUT, "Conflict. The container name "
					    "\"/%s\" is already in use by container \"%s\". You have to "
					    "remove (or rename) that container to be able to reuse that name.",
					    name, v[i].id);
					goto out;
				}
			}
		}
		if (!clash)
			break;
	}
	json_object_set_new(config, "id", json_string(c->id));
	json_object_set_new(config, "name", json_string(name));
	json_object_set_new(config, "created", json_integer(hypr_ctr_now_ns()));
	if (mkdir(c->dir, 0700) < 0) {
		hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", c->dir);
		goto out;
	}
	c->config = json_incref(config);
	c->state = json_pack("{s:s}", "status", "created");
	if (save_json(c->dir, "state.json", c->state, e) < 0 ||
	    save_json(c->dir, "config.json", c->config, e) < 0) {
		struct hypr_err ign = { 0 };
		hypr_rm_rf(c->dir, &ign);
		hypr_ctr_free(c);
		goto out;
	}
	rc = 0;
out:
	hypr_ctr_list_free(v, n);
	close(lfd);
	return rc;
}

int
hypr_ctr_save_state(struct hypr_ctr *c, struct hypr_err *e)
{
	return save_json(c->dir, "state.json", c->state, e);
}

int
hypr_ctr_lock(struct hypr_ctr *c, int *fd, struct hypr_err *e)
{
	char p[4400];

	snprintf(p, sizeof p, "%s/lock", c->dir);
	if ((*fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", p);
	if (flock(*fd, LOCK_EX | LOCK_NB) < 0) {
		close(*fd);
		*fd = -1;
		return hypr_err_set(e, HYPR_EXIT_INPUT, "container %.12s is already running", c->id);
	}
	return 0;
}

int
hypr_ctr_remove(struct hypr_ctr *c, struct hypr_err *e)
{
	char p[4400];

	/* config.json first: a half-removed directory is no container */
	snprintf(p, sizeof p, "%s/config.json", c->dir);
	if (unlink(p) < 0 && errno != ENOENT)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", p);
	return hypr_rm_rf(c->dir, e);
}

/* sun_path holds 108 bytes; a store path may be longer: the socket is
 * named through /proc/self/fd/N of its directory. */
static int
sock_addr(struct hypr_ctr *c, struct sockaddr_un *sa, int *dfd, struct hypr_err *e)
{
	memset(sa, 0, sizeof *sa);
	sa->sun_family = AF_UNIX;
	if ((*dfd = open(c->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", c->dir);
	snprintf(sa->sun_path, sizeof sa->sun_path, "/proc/self/fd/%d/ctl.sock", *dfd);
	return 0;
}

int
hypr_ctr_listen(struct hypr_ctr *c, int *fd, struct hypr_err *e)
{
	struct sockaddr_un sa;
	int dfd;

	if (sock_addr(c, &sa, &dfd, e) < 0)
		return -1;
	unlinkat(dfd, "ctl.sock", 0);
	if ((*fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0 ||
	    bind(*fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(*fd, 16) < 0) {
		hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s/ctl.sock", c->dir);
		if (*fd >= 0)
			close(*fd);
		close(dfd);
		return -1;
	}
	close(dfd);
	return 0;
}

int
hypr_ctr_connect(struct hypr_ctr *c, int *fd, struct hypr_err *e)
{
	struct sockaddr_un sa;
	int dfd;

	if (sock_addr(c, &sa, &dfd, e) < 0)
		return -1;
	if ((*fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(*fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		hypr_err_errno(e, HYPR_EXIT_SYSTEM, "container %.12s: control socket", c->id);
		if (*fd >= 0)
			close(*fd);
		close(dfd);
		return -1;
	}
	close(dfd);
	return 0;
}

/* ---- the log ---- */

int
hypr_ctr_log_append(int fd, int stream, int64_t ns, const void *buf, size_t len)
{
	char hdr[64];
	int k = snprintf(hdr, sizeof hdr, "%d %lld %zu\n", stream, (long long)ns, len);
	struct iovec iov[2] = { { hdr, (size_t)k }, { (void *)buf, len } };
	ssize_t w = writev(fd, iov, 2);

	if (w == (ssize_t)(k + (int)len))
		return 0;
	if (w < 0)
		return -1;
	/* short (a full disk): the rest, so the next record still parses */
	{
		size_t done = (size_t)w;
		if (done < (size_t)k) {
			if (hypr_write_all(fd, hdr + done, (size_t)k - done) < 0)
				return -1;
			done = (size_t)k;
		}
		return hypr_write_all(fd, (const char *)buf + (done - (size_t)k), len - (done - (size_t)k));
	}
}

static int
log_open_file(struct hypr_ctr_log *l, const char *suffix)
{
	char p[4400];
	struct stat st;

	snprintf(p, sizeof p, "%s%s", l->path, suffix);
	if (l->fd >= 0)
		close(l->fd);
	l->len = l->pos = 0;
	if ((l->fd = open(p, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	if (fstat(l->fd, &st) == 0)
		l->ino = st.st_ino;
	return 0;
}

int
hypr_ctr_log_open(struct hypr_ctr_log *l, const struct hypr_ctr *c, struct hypr_err *e)
{
	memset(l, 0, sizeof *l);
	l->fd = -1;
	(void)e;
	snprintf(l->path, sizeof l->path, "%s/log", c->dir);
	l->old = log_open_file(l, ".1") == 0;
	if (!l->old)
		log_open_file(l, "");	/* none yet is an empty log */
	return 0;
}

int
hypr_ctr_log_next(struct hypr_ctr_log *l, int *stream, int64_t *ns, const char **data,
    size_t *len, struct hypr_err *e)
{
	for (;;) {
		char *nl;
		unsigned long long sz;
		long long t;
		int s, used;

		if (l->pos < l->len && (nl = memchr(l->buf + l->pos, '\n', l->len - l->pos))) {
			*nl = 0;
			if (sscanf(l->buf + l->pos, "%d %lld %llu%n", &s, &t, &sz, &used) != 3 ||
			    (s != 1 && s != 2) || sz > FRAME_MAX)
				return hypr_err_set(e, HYPR_EXIT_INPUT, "%s: a damaged record", l->path);
			if ((size_t)(nl + 1 - l->buf) + sz <= l->len) {
				*stream = s;
				*ns = t;
				*data = nl + 1;
				*len = (size_t)sz;
				l->pos = (size_t)(nl + 1 - l->buf) + (size_t)sz;
				return 1;
			}
			*nl = '\n';
		}
		/* more from the file */
		if (l->pos) {
			memmove(l->buf, l->buf + l->pos, l->len - l->pos);
			l->len -= l->pos;
			l->pos = 0;
		}
		if (l->len + 65536 > l->cap) {
			size_t cap = l->cap ? l->cap * 2 : 1 << 17;
			char *b = realloc(l->buf, cap + 1);
			if (!b)
				return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
			l->buf = b;
			l->cap = cap;
		}
		ssize_t n = l->fd >= 0 ? read(l->fd, l->buf + l->len, l->cap - l->len) : 0;
		if (n > 0) {
			l->len += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		/* at the end of this file: the next one, if it has moved on */
		if (l->old) {
			l->old = 0;
			if (log_open_file(l, "") < 0)
				return 0;
			continue;
		}
		{
			struct stat st;
			char p[4400];
			snprintf(p, sizeof p, "%s", l->path);
			if (stat(p, &st) == 0 && (l->fd < 0 || st.st_ino != l->ino)) {
				if (log_open_file(l, "") == 0)
					continue;
			}
		}
		return 0;
	}
}

void
hypr_ctr_log_close(struct hypr_ctr_log *l)
{
	if (l->fd >= 0)
		close(l->fd);
	free(l->buf);
	memset(l, 0, sizeof *l);
	l->fd = -1;
}

/* ---- control frames ---- */

int
hypr_ctr_send(int fd, int type, uint32_t id, const void *p, size_t n)
{
	unsigned char h[HYPR_PROTO_HDR];

	hypr_proto_put32(h, (uint32_t)n);
	h[4] = (unsigned char)type;
	hypr_proto_put32(h + 5, id);
	if (hypr_write_all(fd, h, sizeof h) < 0 || (n && hypr_write_all(fd, p, n) < 0))
		return -1;
	return 0;
}

int
hypr_ctr_read(struct hypr_ctr_reader *r, int fd)
{
	if (r->held) {
		size_t n = HYPR_PROTO_HDR + hypr_proto_get32(r->buf);
		memmove(r->buf, r->buf + n, r->len - n);
		r->len -= n;
		r->held = 0;
	}
	for (;;) {
		ssize_t n;
		if (r->cap - r->len < 65536) {
			size_t cap = r->cap ? r->cap * 2 : 1 << 17;
			unsigned char *b;
			if (cap > FRAME_MAX * 2 + (1 << 17) || !(b = realloc(r->buf, cap)))
				return -1;
			r->buf = b;
			r->cap = cap;
		}
		n = recv(fd, r->buf + r->len, r->cap - r->len, MSG_DONTWAIT);
		if (n > 0) {
			r->len += (size_t)n;
			return 0;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		return -1;
	}
}

int
hypr_ctr_frame(struct hypr_ctr_reader *r, int *type, uint32_t *id,
    const unsigned char **p, uint32_t *n)
{
	uint32_t k;

	if (r->held) {
		size_t m = HYPR_PROTO_HDR + hypr_proto_get32(r->buf);
		memmove(r->buf, r->buf + m, r->len - m);
		r->len -= m;
		r->held = 0;
	}
	if (r->len < HYPR_PROTO_HDR)
		return 0;
	k = hypr_proto_get32(r->buf);
	if (k > FRAME_MAX)
		return -1;
	if (r->len < HYPR_PROTO_HDR + (size_t)k)
		return 0;
	*type = r->buf[4];
	*id = hypr_proto_get32(r->buf + 5);
	*p = r->buf + HYPR_PROTO_HDR;
	*n = k;
	r->held = 1;
	return 1;
}

void
hypr_ctr_reader_free(struct hypr_ctr_reader *r)
{
	free(r->buf);
	memset(r, 0, sizeof *r);
}
