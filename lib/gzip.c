/* gzip.c - parallel, reproducible gzip of a file (gzip.h). Each worker
 * takes the next slice, reads it with the 32 KiB before it, deflates it
 * into its own buffer, then waits for its turn to write: the output is in
 * slice order whatever the threads do, and each worker holds one slice. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "gzip.h"

#define SLICE (1u << 20)
#define DICT (32u << 10)
#define PROBE (16u << 10)
#define PROBES 4
#define MAX_WORKERS 8

struct hypr_gzip {
	int in, out, sock;
	uint64_t size, nslices;
	pthread_t th[MAX_WORKERS];
	int nth;
	pthread_mutex_t mu;
	pthread_cond_t turn_cv;
	uint64_t next, turn;	/* next slice to take; the slice whose turn it is to write */
	uLong crc;
	int failed;
	struct hypr_err err;
};

/* What one worker keeps between slices. */
struct worker {
	z_stream z6, z1;
	unsigned char *in, *out, *probe;
	size_t outcap, probecap;
};

static void
fail(struct hypr_gzip *g, int code, int err, const char *what)
{
	pthread_mutex_lock(&g->mu);
	if (!g->failed) {
		errno = err;
		if (err)
			hypr_err_errno(&g->err, code, "gzip: %s", what);
		else
			hypr_err_set(&g->err, code, "gzip: %s", what);
	}
	g->failed = 1;
	if (g->sock)
		shutdown(g->out, SHUT_WR);	/* the reader sees the end */
	pthread_cond_broadcast(&g->turn_cv);
	pthread_mutex_unlock(&g->mu);
}

static int
put(struct hypr_gzip *g, const void *buf, size_t n)
{
	const char *p = buf;

	while (n > 0) {
		ssize_t k = g->sock ? send(g->out, p, n, MSG_NOSIGNAL) : write(g->out, p, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* 0, or -1 with errno (0 when the file ended early: it shrank) */
static int
full_pread(int fd, unsigned char *buf, size_t n, uint64_t off)
{
	while (n > 0) {
		ssize_t k = pread(fd, buf, n, (off_t)off);

		if (k < 0 && errno == EINTR)
			continue;
		if (k == 0)
			errno = 0;
		if (k <= 0)
			return -1;
		buf += k;
		n -= (size_t)k;
		off += (uint64_t)k;
	}
	return 0;
}

/* Whether deflate would save anything on data: any of PROBES samples
 * spread over it shrinks by 1/64 at level 1. */
static int
compressible(struct worker *w, const unsigned char *data, size_t n)
{
	if (n < PROBES * PROBE)
		return 1;
	for (size_t k = 0; k < PROBES; k++) {
		deflateReset(&w->z1);
		w->z1.next_in = (unsigned char *)data + k * (n / PROBES);
		w->z1.avail_in = PROBE;
		w->z1.next_out = w->probe;
		w->z1.avail_out = (uInt)w->probecap;
		deflate(&w->z1, Z_FINISH);
		if (w->z1.total_out < PROBE - PROBE / 64)
			return 1;
	}
	return 0;
}

/* data[0..n) as stored blocks (the stream is byte-aligned here); the last
 * block final if last. Returns the bytes written to out. */
static size_t
stored(const unsigned char *data, size_t n, int last, unsigned char *out)
{
	size_t o = 0;

	do {
		size_t k = n > 65535 ? 65535 : n;

		out[o++] = last && k == n ? 1 : 0;
		out[o++] = (unsigned char)(k & 0xff);
		out[o++] = (unsigned char)(k >> 8);
		out[o++] = (unsigned char)(~k & 0xff);
		out[o++] = (unsigned char)((~k >> 8) & 0xff);
		memcpy(out + o, data, k);
		o += k;
		data += k;
		n -= k;
	} while (n > 0);
	return o;
}

/* Slice i of g's file into w->out; its length (or -1 with g failed). */
static ssize_t
deflate_slice(struct hypr_gzip *g, struct worker *w, uint64_t i, uLong *crc, size_t *len)
{
	uint64_t off = i * SLICE;
	size_t n = g->size - off < SLICE ? (size_t)(g->size - off) : SLICE;
	size_t dict = off < DICT ? (size_t)off : DICT;
	int last = i + 1 == g->nslices;
	unsigned char *data = w->in + dict;

	if (full_pread(g->in, w->in, dict + n, off - dict) < 0) {
		fail(g, HYPR_EXIT_SYSTEM, errno, errno ? "read of the file" :
		    "the file shrank while it was read");
		return -1;
	}
	*crc = crc32(0, data, (uInt)n);
	*len = n;
	if (n > 0 && !compressible(w, data, n))
		return (ssize_t)stored(data, n, last, w->out);
	deflateReset(&w->z6);
	if (dict > 0 && deflateSetDictionary(&w->z6, w->in, (uInt)dict) != Z_OK) {
		fail(g, HYPR_EXIT_SYSTEM, 0, "zlib refused a dictionary");
		return -1;
	}
	/* one call with room for all of it: the bytes depend on the input only */
	w->z6.next_in = data;
	w->z6.avail_in = (uInt)n;
	w->z6.next_out = w->out;
	w->z6.avail_out = (uInt)w->outcap;
	if (deflate(&w->z6, last ? Z_FINISH : Z_SYNC_FLUSH) == Z_STREAM_ERROR ||
	    w->z6.avail_in != 0 || w->z6.avail_out == 0) {
		fail(g, HYPR_EXIT_SYSTEM, 0, "deflate failed");
		return -1;
	}
	return (ssize_t)(w->outcap - w->z6.avail_out);
}

static void
worker_free(struct worker *w)
{
	deflateEnd(&w->z6);
	deflateEnd(&w->z1);
	free(w->in);
	free(w->out);
	free(w->probe);
}

static void *
gz_worker(void *arg)
{
	struct hypr_gzip *g = arg;
	struct worker w;

	memset(&w, 0, sizeof(w));
	if (deflateInit2(&w.z6, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
		fail(g, HYPR_EXIT_SYSTEM, 0, "out of memory");
		return NULL;
	}
	if (deflateInit2(&w.z1, 1, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
		deflateEnd(&w.z6);
		fail(g, HYPR_EXIT_SYSTEM, 0, "out of memory");
		return NULL;
	}
	/* stored blocks cost 5 bytes in 65535; the deflate bound is larger */
	w.outcap = deflateBound(&w.z6, SLICE) + 64;
	w.probecap = deflateBound(&w.z1, PROBE) + 64;
	w.in = malloc(DICT + SLICE);
	w.out = malloc(w.outcap);
	w.probe = malloc(w.probecap);
	if (!w.in || !w.out || !w.probe) {
		worker_free(&w);
		fail(g, HYPR_EXIT_SYSTEM, 0, "out of memory");
		return NULL;
	}
	for (;;) {
		uint64_t i;
		uLong crc;
		size_t len;
		ssize_t n;
		int stop;

		pthread_mutex_lock(&g->mu);
		i = g->next++;
		stop = i >= g->nslices || g->failed;
		pthread_mutex_unlock(&g->mu);
		if (stop)
			break;
		if ((n = deflate_slice(g, &w, i, &crc, &len)) < 0)
			break;
		pthread_mutex_lock(&g->mu);
		while (g->turn != i && !g->failed)
			pthread_cond_wait(&g->turn_cv, &g->mu);
		if (g->failed) {
			pthread_mutex_unlock(&g->mu);
			break;
		}
		g->crc = crc32_combine(g->crc, crc, (z_off_t)len);
		crc = g->crc;
		pthread_mutex_unlock(&g->mu);
		/* the turn is ours alone: write without the lock */
		{
			static const unsigned char head[10] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3 };
			unsigned char tail[8];
			uint32_t isize = (uint32_t)g->size;

			for (int k = 0; k < 4; k++) {
				tail[k] = (unsigned char)(crc >> (8 * k));
				tail[4 + k] = (unsigned char)(isize >> (8 * k));
			}
			if ((i == 0 && put(g, head, sizeof(head)) < 0) || put(g, w.out, (size_t)n) < 0 ||
			    (i + 1 == g->nslices && put(g, tail, sizeof(tail)) < 0)) {
				fail(g, HYPR_EXIT_SYSTEM, errno, "write");
				break;
			}
		}
		if (i + 1 == g->nslices && g->sock)
			shutdown(g->out, SHUT_WR);
		pthread_mutex_lock(&g->mu);
		g->turn++;
		pthread_cond_broadcast(&g->turn_cv);
		pthread_mutex_unlock(&g->mu);
	}
	worker_free(&w);
	return NULL;
}

static int
gz_begin(const char *path, int out, int sock, long threads, struct hypr_gzip **gzp,
    struct hypr_err *e)
{
	struct hypr_gzip *g = calloc(1, sizeof(*g));
	struct stat st;

	if (g == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	if ((g->in = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(g->in, &st) != 0) {
		hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", path);
		if (g->in >= 0)
			close(g->in);
		free(g);
		return -1;
	}
	g->out = out;
	g->sock = sock;
	g->size = (uint64_t)st.st_size;
	g->nslices = g->size == 0 ? 1 : (g->size + SLICE - 1) / SLICE;
	g->crc = crc32(0, NULL, 0);
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->turn_cv, NULL);
	if (threads <= 0)
		threads = sysconf(_SC_NPROCESSORS_ONLN);
	for (long k = 0; k < (threads > 0 ? threads : 1) && k < MAX_WORKERS &&
	    (uint64_t)k < g->nslices; k++)
		if (pthread_create(&g->th[g->nth], NULL, gz_worker, g) == 0)
			g->nth++;
	if (g->nth == 0) {
		hypr_err_set(e, HYPR_EXIT_SYSTEM, "gzip: no thread could start");
		pthread_mutex_destroy(&g->mu);
		pthread_cond_destroy(&g->turn_cv);
		close(g->in);
		free(g);
		return -1;
	}
	*gzp = g;
	return 0;
}

int
hypr_gzip_finish(struct hypr_gzip *g, struct hypr_err *e)
{
	int rv = 0;

	for (int k = 0; k < g->nth; k++)
		pthread_join(g->th[k], NULL);
	if (g->failed) {
		*e = g->err;
		rv = -1;
	} else if (g->turn != g->nslices) {
		rv = hypr_err_set(e, HYPR_EXIT_SYSTEM, "gzip: stopped early");
	}
	pthread_mutex_destroy(&g->mu);
	pthread_cond_destroy(&g->turn_cv);
	close(g->in);
	if (g->sock)
		close(g->out);
	free(g);
	return rv;
}

int
hypr_gzip_start(const char *path, struct hypr_gzip **gz, int *fd, struct hypr_err *e)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "socketpair");
	shutdown(sv[0], SHUT_WR);
	shutdown(sv[1], SHUT_RD);
	if (gz_begin(path, sv[1], 1, 0, gz, e) < 0) {
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	*fd = sv[0];
	return 0;
}

int
hypr_gzip_file(const char *path, const char *out, int threads, struct hypr_err *e)
{
	struct hypr_gzip *g;
	int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	int r;

	if (fd < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", out);
	r = gz_begin(path, fd, 0, threads, &g, e);
	if (r == 0)
		r = hypr_gzip_finish(g, e);
	if (close(fd) != 0 && r == 0)
		r = hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", out);
	if (r < 0)
		unlink(out);
	return r;
}
