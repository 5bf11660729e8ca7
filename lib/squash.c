/* squash.c - squashfs images with squashfs-tools-ng's tar2sqfs, from a tar
 * stream and without root: straight from a clean single tar, or through
 * flattening (rootfs.c); and the squashfs of a layer chain, cached by the
 * chain (cache.c holds the index). See hypr-squash(1). */
#include "cas.h"
#include "squash.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cache.h"
#include "digest.h"
#include "fsutil.h"
#include "map.h"
#include "path.h"
#include "rootfs.h"
#include "rootfs_int.h"

extern char **environ;


static const char *
tar2sqfs_bin(void)
{
	const char *b = getenv("HYPR_TAR2SQFS");

	return b && *b ? b : "tar2sqfs";
}

int
hypr_squash_opts_check(const struct hypr_squash_opts *o, struct hypr_err *e)
{
	const char *c = o->comp ? o->comp : "zstd";
	int max = 0;

	if (strcmp(c, "zstd") == 0)
		max = 22;
	else if (strcmp(c, "gzip") == 0)
		max = 9;
	else if (strcmp(c, "xz") == 0)
		max = 9;
	else if (strcmp(c, "lz4") == 0)
		max = 1;
	else
		return hypr_err_set(e, HYPR_EXIT_USAGE,
		    "unknown compressor '%s' (zstd, gzip, xz, lz4)", c);
	if (o->level < 0 || o->level > max)
		return hypr_err_set(e, HYPR_EXIT_USAGE,
		    "compression level %d out of range for %s (1-%d)", o->level, c, max);
	if (o->block_size && (o->block_size < 4096 || o->block_size > (1u << 20) ||
	    (o->block_size & (o->block_size - 1))))
		return hypr_err_set(e, HYPR_EXIT_USAGE,
		    "block size %u: must be a power of two from 4096 to 1048576",
		    o->block_size);
	return 0;
}

/* The level tar2sqfs is given: hypr's default for zstd is its fastest
 * (1, not tar2sqfs's 15): on a Debian base 28% less time than level 3
 * (0.63 against 0.87 s, 2 jobs) for 3% more bytes, 7% on Python's
 * library. 0: the tool's own. */
static int
level_of(const struct hypr_squash_opts *o)
{
	if (o->level > 0)
		return o->level;
	return o->comp == NULL || strcmp(o->comp, "zstd") == 0 ? 1 : 0;
}

/* Start tar2sqfs reading in_fd, writing out; its stderr goes to err_fd. */
static int
spawn_tar2sqfs(int in_fd, const char *out, const struct hypr_squash_opts *o,
    int err_fd, pid_t *pid, struct hypr_err *e)
{
	const char *comp = o->comp ? o->comp : "zstd";
	char bs[32], jobs[32], backlog[32], defs[96], extra[64];
	const char *argv[24];
	int k = 0, rc;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	posix_spawn_file_actions_t fa;

	snprintf(bs, sizeof(bs), "%u", o->block_size ? o->block_size : 131072);
	snprintf(jobs, sizeof(jobs), "%ld", ncpu > 0 ? ncpu : 1);
	snprintf(backlog, sizeof(backlog), "%ld", 32 * (ncpu > 0 ? ncpu : 1));
	snprintf(defs, sizeof(defs), "uid=0,gid=0,mode=0755,mtime=%lld",
	    (long long)(o->epoch >= 0 ? o->epoch : 0));
	argv[k++] = tar2sqfs_bin();
	argv[k++] = "--quiet";
	argv[k++] = "--no-skip";
	argv[k++] = "--compressor";
	argv[k++] = comp;
	if (level_of(o) > 0) {
		if (strcmp(comp, "lz4") == 0)
			snprintf(extra, sizeof(extra), "hc");
		else
			snprintf(extra, sizeof(extra), "level=%d", level_of(o));
		argv[k++] = "--comp-extra";
		argv[k++] = extra;
	}
	argv[k++] = "--block-size";
	argv[k++] = bs;
	argv[k++] = "--num-jobs";
	argv[k++] = jobs;
	/* a deeper queue keeps the compressors busy while the reader waits */
	argv[k++] = "--queue-backlog";
	argv[k++] = backlog;
	argv[k++] = "--defaults";
	argv[k++] = defs;
	argv[k++] = out;
	argv[k] = NULL;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
	rc = posix_spawnp(pid, argv[0], &fa, NULL, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		errno = rc;
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "running %s", argv[0]);
	}
	return 0;
}

/* Wait for tar2sqfs; its stderr was collected into errbuf. */
static int
reap_tar2sqfs(pid_t pid, int err_rd, struct hypr_err *e)
{
	char buf[1024], last[512] = "";
	ssize_t r;
	int st;

	while ((r = read(err_rd, buf, sizeof(buf) - 1)) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		buf[r] = '\0';
		/* keep the last non-empty line for the message */
		for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
			snprintf(last, sizeof(last), "%s", line);
	}
	close(err_rd);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "waiting for tar2sqfs");
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	if (WIFSIGNALED(st))
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "tar2sqfs killed by signal %d",
		    WTERMSIG(st));
	return hypr_err_set(e, HYPR_EXIT_INPUT, "tar2sqfs failed (exit %d)%s%s",
	    WEXITSTATUS(st), *last ? ": " : "", last);
}

static int
tmp_name(const char *out_path, char *buf, size_t n)
{
	static unsigned seq;

	return (size_t)snprintf(buf, n, "%s.tmp.%ld.%u", out_path, (long)getpid(),
	    seq++) >= n ? -1 : 0;
}

int
hypr_squash_tar(int in_fd, const char *out_path,
    const struct hypr_squash_opts *o, struct hypr_err *e)
{
	char tmp[HYPR_PATH_BUF];
	int ep[2];
	pid_t pid;

	if (hypr_squash_opts_check(o, e) < 0)
		return -1;
	if (tmp_name(out_path, tmp, sizeof(tmp)) < 0)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "%s: path too long", out_path);
	if (pipe2(ep, O_CLOEXEC) < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "pipe");
	if (spawn_tar2sqfs(in_fd, tmp, o, ep[1], &pid, e) < 0) {
		close(ep[0]);
		close(ep[1]);
		return -1;
	}
	close(ep[1]);
	if (reap_tar2sqfs(pid, ep[0], e) < 0) {
		unlink(tmp);
		return -1;
	}
	if (rename(tmp, out_path) < 0) {
		hypr_err_errno(e, HYPR_EXIT_SYSTEM, "renaming %s", tmp);
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* Can tar2sqfs read this layer as it is? Only for one uncompressed,
 * seekable tar that flattening would not change: clean unique names, no
 * whiteouts, hard links to earlier names, no sparse files, no mtime above
 * the epoch. The scan reads headers only (data is skipped by seeking), so
 * it costs little next to a copy of every byte through the flattener. */
static int
direct_ok(int fd, int64_t epoch)
{
	struct stat st;
	struct archive *a;
	struct archive_entry *ae;
	struct hypr_map seen = { .borrow = 1 };
	char **keys = NULL;
	size_t nk = 0, ck = 0;
	off_t start;
	int r, ok = 1;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (start = lseek(fd, 0, SEEK_CUR)) < 0)
		return 0;
	if ((a = open_layer(fd, NULL)) == NULL) {
		lseek(fd, start, SEEK_SET);
		return 0;
	}
	while (ok && ((r = archive_read_next_header(a, &ae)) == ARCHIVE_OK || r == ARCHIVE_WARN)) {
		const char *raw = archive_entry_pathname(ae), *base, *hl, *p;
		char *c;
		int bad;
		size_t cl;

		if (archive_filter_code(a, 0) != ARCHIVE_FILTER_NONE || raw == NULL ||
		    archive_entry_sparse_count(ae) > 0 ||
		    (epoch >= 0 && archive_entry_mtime(ae) > epoch) ||
		    (c = hypr_path_member(raw, 0, &bad)) == NULL) {
			ok = 0;
			break;
		}
		/* the name must already be clean: "a/b", "./a/b", "a/b/" */
		p = strncmp(raw, "./", 2) == 0 ? raw + 2 : raw;
		cl = strlen(c);
		base = strrchr(c, '/');
		base = base ? base + 1 : c;
		if ((strncmp(p, c, cl) != 0 || (p[cl] && strcmp(p + cl, "/") != 0)) ||
		    strncmp(base, ".wh.", 4) == 0) {
			free(c);
			ok = 0;
			break;
		}
		if ((hl = archive_entry_hardlink(ae)) != NULL) {
			char *t = hypr_path_member(hl, 0, &bad);

			ok = t && hypr_map_get(&seen, t) != NULL;
			free(t);
		}
		if (ok && hypr_map_get(&seen, c) != NULL)
			ok = 0;	/* a duplicate */
		if (!ok || nk == ck) {
			char **nkp = ok ? realloc(keys, (ck = ck ? ck * 2 : 1024) * sizeof(*keys)) : NULL;

			if (nkp == NULL) {
				free(c);
				ok = 0;
				break;
			}
			keys = nkp;
		}
		keys[nk++] = c;
		if (hypr_map_set(&seen, c, (void *)1, NULL) < 0)
			ok = 0;
	}
	if (ok && r != ARCHIVE_EOF)
		ok = 0;
	archive_read_free(a);
	hypr_map_free(&seen, NULL);
	for (size_t i = 0; i < nk; i++)
		free(keys[i]);
	free(keys);
	if (lseek(fd, start, SEEK_SET) < 0)
		return 0;
	return ok;
}

int
hypr_squash_layer(int fd, const char *out_path, const struct hypr_squash_opts *o,
    struct hypr_err *e)
{
	if (!direct_ok(fd, -1))
		return 0;
	return hypr_squash_tar(fd, out_path, o, e) < 0 ? -1 : 1;
}

int
hypr_rootfs_squash_fds(const int *fds, const char *const *names, size_t n,
    const char *tmpdir, const char *out_path, const struct hypr_squash_opts *o,
    struct hypr_err *e)
{
	char tmp[HYPR_PATH_BUF];
	struct hypr_flusher fl = { .on = 0 };
	int pp[2], ep[2], rc, reaped;
	pid_t pid;
	struct sigaction ign = { .sa_handler = SIG_IGN }, old;
	struct hypr_err fe = { 0 };

	if (hypr_squash_opts_check(o, e) < 0)
		return -1;
	if (tmp_name(out_path, tmp, sizeof(tmp)) < 0)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "%s: path too long", out_path);
	if (pipe2(pp, O_CLOEXEC) < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "pipe");
	if (pipe2(ep, O_CLOEXEC) < 0) {
		close(pp[0]);
		close(pp[1]);
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "pipe");
	}
	fcntl(pp[1], F_SETPIPE_SZ, 1 << 20);
	if (n == 1 && getenv("HYPR_SQUASH_NO_DIRECT") == NULL && direct_ok(fds[0], o->epoch)) {
		/* tar2sqfs reads the layer itself: no copy through a pipe */
		close(pp[0]);
		close(pp[1]);
		if (spawn_tar2sqfs(fds[0], tmp, o, ep[1], &pid, e) < 0) {
			close(ep[0]);
			close(ep[1]);
			return -1;
		}
		close(ep[1]);
		if (o->flush)
			hypr_flusher_start(&fl, tmp);
		rc = reap_tar2sqfs(pid, ep[0], e);
		hypr_flusher_stop(&fl);
		if (rc < 0) {
			unlink(tmp);
			return -1;
		}
		goto done;
	}
	if (spawn_tar2sqfs(pp[0], tmp, o, ep[1], &pid, e) < 0) {
		close(pp[0]);
		close(pp[1]);
		close(ep[0]);
		close(ep[1]);
		return -1;
	}
	close(pp[0]);
	close(ep[1]);
	if (o->flush)
		hypr_flusher_start(&fl, tmp);
	/* a dying tar2sqfs must give us EPIPE, not kill us */
	sigaction(SIGPIPE, &ign, &old);
	rc = hypr_rootfs_flatten_fds(fds, names, n, pp[1], o->epoch, tmpdir, &fe);
	close(pp[1]);
	sigaction(SIGPIPE, &old, NULL);
	reaped = reap_tar2sqfs(pid, ep[0], e);
	hypr_flusher_stop(&fl);
	if (reaped < 0 || rc < 0) {
		/* bad input explains a tar2sqfs failure; a write error on the
		 * pipe is explained by tar2sqfs's own failure */
		if (rc < 0 && (fe.code == HYPR_EXIT_INPUT || !e->code))
			*e = fe;
		unlink(tmp);
		return -1;
	}
done:
	if (rename(tmp, out_path) < 0) {
		hypr_err_errno(e, HYPR_EXIT_SYSTEM, "renaming %s", tmp);
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* The cache key of a chain's squashfs: layers and every option that
 * changes the bytes. */
static int
squash_key(const char *const *layers, size_t n, const struct hypr_squash_opts *o,
    char key[HYPR_DIGEST_LEN + 1], struct hypr_err *e)
{
	struct hypr_sha256 s;
	char opt[160];

	if (hypr_sha256_init(&s, e) < 0)
		return -1;
	hypr_sha256_update(&s, "hypr-squashfs-v1\n", 17);
	for (size_t i = 0; i < n; i++) {
		hypr_sha256_update(&s, layers[i], strlen(layers[i]));
		hypr_sha256_update(&s, "\n", 1);
	}
	snprintf(opt, sizeof(opt), "comp=%s level=%d block=%u epoch=%lld\n",
	    o->comp ? o->comp : "zstd", level_of(o), o->block_size ? o->block_size : 131072,
	    (long long)o->epoch);
	hypr_sha256_update(&s, opt, strlen(opt));
	hypr_sha256_final(&s, key);
	return 0;
}

/* Cheap check of a cached squashfs blob (one stat, one 96-byte read): the
 * size recorded when it was built (if any), the magic, and a bytes_used
 * that fits the file. Catches truncation and a damaged superblock; a
 * flipped bit inside the data needs verify (the digest). 1 = looks sane. */
static int
squash_blob_sane(const char *path, json_int_t want_size)
{
	unsigned char sb[96];
	struct stat st;
	uint64_t used = 0;
	int fd, ok;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    (want_size <= 0 || (json_int_t)st.st_size == want_size) &&
	    pread(fd, sb, sizeof(sb), 0) == (ssize_t)sizeof(sb) &&
	    memcmp(sb, "hsqs", 4) == 0;
	close(fd);
	if (!ok)
		return 0;
	for (int i = 7; i >= 0; i--)	/* bytes_used: le64 at offset 40 */
		used = used << 8 | sb[40 + i];
	return used >= sizeof(sb) && used <= (uint64_t)st.st_size;
}

int
hypr_rootfs_squashfs_lookup(const struct hypr_root *r, const char *const *layers,
    size_t n, const struct hypr_squash_opts *o, char digest[HYPR_DIGEST_LEN + 1],
    struct hypr_err *e)
{
	char key[HYPR_DIGEST_LEN + 1], d[HYPR_DIGEST_LEN + 1], path[HYPR_PATH_BUF];
	char got[HYPR_DIGEST_LEN + 1];
	uint64_t size;
	struct hypr_err ve = { 0 };
	int found;

	if (squash_key(layers, n, o, key, e) < 0)
		return -1;
	if (!hypr_cache_squashfs_get(r, key, d, &size) || !hypr_blob_has(r, d))
		return 0;
	found = hypr_blob_path(r, d, path, sizeof(path), e) == 0 &&
	    squash_blob_sane(path, (json_int_t)size);
	/* a damaged blob is a miss: the caller rebuilds and replaces it */
	if (found && o->verify &&
	    (hypr_digest_file(path, got, NULL, &ve) < 0 || strcmp(got, d) != 0))
		found = 0;
	if (found)
		memcpy(digest, d, HYPR_DIGEST_LEN + 1);
	return found;
}

int
hypr_rootfs_squashfs_blob(const struct hypr_root *r, const char *const *layers,
    size_t n, const struct hypr_squash_opts *o, char digest[HYPR_DIGEST_LEN + 1],
    uint64_t *size, int *built, struct hypr_err *e)
{
	char key[HYPR_DIGEST_LEN + 1], tmpd[HYPR_PATH_BUF], out[HYPR_PATH_BUF];
	char path[HYPR_PATH_BUF];
	struct hypr_squash_opts fo = *o;
	int *fds = NULL, rc = -1, got;
	uint64_t sz = 0;
	json_t *opts = NULL;
	struct stat st;

	if (built)
		*built = 0;
	if ((got = hypr_rootfs_squashfs_lookup(r, layers, n, o, digest, e)) < 0)
		return -1;
	if (got) {
		if (size && hypr_blob_path(r, digest, path, sizeof(path), e) == 0 &&
		    stat(path, &st) == 0)
			*size = (uint64_t)st.st_size;
		return 0;
	}
	if (squash_key(layers, n, o, key, e) < 0)
		return -1;
	if (hypr_root_tmp(r, tmpd, sizeof(tmpd), e, ".") < 0 ||
	    hypr_root_tmp(r, out, sizeof(out), e, "squash-%s.sqfs", hypr_digest_hex(key)) < 0)
		return -1;
	if ((fds = calloc(n ? n : 1, sizeof(int))) == NULL)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "squashfs");
	if (open_blobs(r, layers, n, fds, e) < 0)
		goto out;
	/* out is private to this process (pid in the name): two builds of one
	 * chain each build, and the second rename just replaces equal bytes;
	 * hypr_blob_adopt fsyncs it */
	fo.flush = 1;
	if (hypr_rootfs_squash_fds(fds, layers, n, tmpd, out, &fo, e) < 0)
		goto out;
	if (hypr_blob_adopt(r, out, NULL, digest, &sz, e) < 0)
		goto out;
	if (size)
		*size = sz;
	opts = json_pack("{s:s, s:i, s:i}", "compression", o->comp ? o->comp : "zstd",
	    "level", level_of(o), "block_size", (int)(o->block_size ? o->block_size : 131072));
	if (hypr_cache_squashfs_put(r, key, layers, n, digest, sz, opts, e) < 0)
		goto out;
	if (built)
		*built = 1;
	rc = 0;
out:
	json_decref(opts);
	if (fds)
		close_files(fds, n);
	free(fds);
	return rc;
}

int
hypr_rootfs_squashfs(const struct hypr_root *r, const char *const *layers,
    size_t n, const struct hypr_squash_opts *o, char *path, size_t pathlen,
    struct hypr_err *e)
{
	char d[HYPR_DIGEST_LEN + 1];

	if (hypr_rootfs_squashfs_blob(r, layers, n, o, d, NULL, NULL, e) < 0)
		return -1;
	return hypr_blob_path(r, d, path, pathlen, e);
}

