/* vm_steps.c - a build step in the VM: RUN, a layer out (DIFF through the
 * io disk's out region), tars in (IMPORT, MOUNTDATA through its in region). */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/kvm.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include <jansson.h>

#include "clock.h"
#include "fsutil.h"
#include "squash.h"
#include "vm.h"
#include "vm_proto.h"
#include "vm_int.h"

/* ---- run ---- */

static int
tlv_bin(unsigned char **buf, size_t *len, size_t *cap, int tag, const void *s, size_t n)
{
	size_t need;

	if (hypr_size_add(*len, 5 + n, &need) < 0 || need > HYPR_PROTO_MAX)
		return -1;
	if (need > *cap) {
		size_t c = need * 2;
		unsigned char *b = realloc(*buf, c);
		if (!b)
			return -1;
		*buf = b;
		*cap = c;
	}
	(*buf)[*len] = (unsigned char)tag;
	hypr_proto_put32(*buf + *len + 1, (uint32_t)n);
	if (n)
		memcpy(*buf + *len + 5, s, n);
	*len = need;
	return 0;
}

int
vm_tlv(unsigned char **buf, size_t *len, size_t *cap, int tag, const char *s)
{
	return tlv_bin(buf, len, cap, tag, s, strlen(s));
}

/* type, target, source, flags, mode, uid, gid, size: NUL-terminated
 * fields; then the data (hypr-guest(7)) */
static int
mount_tlv(unsigned char **buf, size_t *len, size_t *cap, const struct hypr_vm_mount *m)
{
	char num[4][32], type[2] = { m->type, 0 }, src[PATH_MAX];
	const char *f[8];
	size_t n = 0, o = 0;
	unsigned char *v;
	int rc;

	if (m->mode >= 0)
		snprintf(num[0], sizeof num[0], "%lo", (unsigned long)m->mode);
	else
		num[0][0] = 0;
	snprintf(num[1], sizeof num[1], m->uid >= 0 ? "%ld" : "", m->uid);
	snprintf(num[2], sizeof num[2], m->gid >= 0 ? "%ld" : "", m->gid);
	snprintf(num[3], sizeof num[3], m->size ? "%llu" : "", (unsigned long long)m->size);
	f[0] = type;
	f[1] = m->target;
	/* guest paths: bind sources in /L/M, cache disks at /C/K */
	src[0] = 0;
	if ((m->type == 'b' || m->type == 'c') &&
	    snprintf(src, sizeof src, m->type == 'b' ? "/L/M/%s" : "/C/%s",
	    m->source ? m->source : "") >= (int)sizeof src)
		return -1;
	if (m->type == 'p' && snprintf(src, sizeof src, "%s", m->source ? m->source : "") >=
	    (int)sizeof src)
		return -1;	/* a 9p share: its mount tag */
	f[2] = src;
	f[3] = m->rw ? "rw" : m->ro ? "ro" : "";
	f[4] = num[0];
	f[5] = num[1];
	f[6] = num[2];
	f[7] = num[3];
	for (int i = 0; i < 8; i++)
		n += strlen(f[i] ? f[i] : "") + 1;
	if (!(v = malloc(n + m->dlen)))
		return -1;
	for (int i = 0; i < 8; i++) {
		size_t k = strlen(f[i] ? f[i] : "") + 1;
		memcpy(v + o, f[i] ? f[i] : "", k);
		o += k;
	}
	if (m->dlen)
		memcpy(v + o, m->data, m->dlen);
	rc = tlv_bin(buf, len, cap, HYPR_TAG_MOUNT, v, n + m->dlen);
	explicit_bzero(v, n + m->dlen);	/* a secret leaves no copy behind */
	free(v);
	return rc;
}

static void
default_output(void *arg, int fd, const char *buf, size_t len)
{
	(void)arg;
	hypr_write_all(fd == 1 ? 1 : 2, buf, len);
}

/* The TLV payload of a RUN or START request (hypr-guest(7)). */
int
vm_run_payload(const struct hypr_vm_run *r, unsigned char **bufp, size_t *lenp,
    struct hypr_err *e)
{
	unsigned char *buf = NULL;
	size_t len = 0, cap = 0;
	struct timespec ts;
	char tbuf[32];
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(tbuf, sizeof tbuf, "%lld", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
	for (char *const *a = r->argv; *a && rc == 0; a++)
		rc = vm_tlv(&buf, &len, &cap, HYPR_TAG_ARGV, *a);
	for (char *const *v = r->env; v && *v && rc == 0; v++)
		rc = vm_tlv(&buf, &len, &cap, HYPR_TAG_ENV, *v);
	if (rc == 0 && r->cwd)
		rc = vm_tlv(&buf, &len, &cap, HYPR_TAG_CWD, r->cwd);
	if (rc == 0 && r->user)
		rc = vm_tlv(&buf, &len, &cap, HYPR_TAG_USER, r->user);
	if (rc == 0)
		rc = vm_tlv(&buf, &len, &cap, HYPR_TAG_HOSTNAME, r->hostname ? r->hostname : "hypr");
	if (rc == 0)
		rc = vm_tlv(&buf, &len, &cap, HYPR_TAG_TIME, tbuf);
	if (rc == 0 && r->net)
		rc = vm_tlv(&buf, &len, &cap, HYPR_TAG_NET, "1");
	for (char *const *h = r->hosts; h && *h && rc == 0; h++)
		rc = vm_tlv(&buf, &len, &cap, HYPR_TAG_HOST, *h);
	for (size_t k = 0; k < r->nmounts && rc == 0; k++)
		rc = mount_tlv(&buf, &len, &cap, &r->mounts[k]);
	if (rc < 0) {
		free(buf);
		return hypr_err_set(e, HYPR_EXIT_INPUT, "build VM: RUN request too large");
	}
	*bufp = buf;
	*lenp = len;
	return 0;
}

int
hypr_vm_run(struct hypr_vm *vm, const struct hypr_vm_run *r, int *status, struct hypr_err *e)
{
	unsigned char *buf = NULL, *p;
	size_t len = 0;
	int rc = 0, type;
	uint32_t n;
	double timeout = r->timeout > 0 ? r->timeout : hypr_env_seconds("HYPR_STEP_TIMEOUT", 0);
	double deadline;
	hypr_vm_output_fn *out = r->output ? r->output : default_output;

	if (vm_wait_ready(vm, e) < 0)
		return -1;
	if (vm->dead)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "build VM: not running");
	if (!r->argv || !r->argv[0])
		return hypr_err_set(e, HYPR_EXIT_INPUT, "build VM: RUN: empty argv");
	if (vm_run_payload(r, &buf, &len, e) < 0)
		return -1;
	vm->step++;
	rc = vm_send_frame(vm, HYPR_MSG_RUN, buf, len, e);
	explicit_bzero(buf, len);	/* it may hold a secret */
	free(buf);
	if (rc < 0) {
		vm_reap(vm, 1);
		return -1;
	}
	deadline = timeout > 0 ? hypr_now() + timeout : 0;
	for (;;) {
		char what[64];
		snprintf(what, sizeof what, "step %u", vm->step);
		vm->cur_watch = r->watch_fd > 0 ? r->watch_fd : vm->watch_fd;
		rc = vm_recv_frame(vm, deadline, &type, &p, &n, e, what);
		vm->cur_watch = vm->watch_fd;
		if (rc < 0) {
			if (deadline > 0 && hypr_now() >= deadline)
				hypr_err_set(e, HYPR_EXIT_STEP, "build VM: step timed out after %gs (VM killed)", timeout);
			return -1;
		}
		switch (type) {
		case HYPR_MSG_STDOUT:
		case HYPR_MSG_STDERR:
			out(r->output_arg, type == HYPR_MSG_STDOUT ? 1 : 2, (const char *)p, n);
			vm_consume(vm);
			continue;
		case HYPR_MSG_EXIT:
			if (n < 4)
				return vm_unexpected(vm, -1, p, n, e, what);
			*status = (int)hypr_proto_get32(p);
			vm->disk_full = n >= 8 && (hypr_proto_get32(p + 4) & HYPR_EXIT_DISK_FULL);
			vm_consume(vm);
			if (*status && vm->qmp >= 0)
				vm_qmp_read(vm);	/* a disk error may be why */
			return 0;
		default:
			return vm_unexpected(vm, type, p, n, e, what);
		}
	}
}

/* ---- diff / import ---- */

int
hypr_vm_diff(struct hypr_vm *vm, int64_t epoch, int out_fd, uint64_t *len, struct hypr_err *e)
{
	unsigned char req[24], *p;
	uint32_t n;
	int type;
	uint64_t l;
	double timeout = hypr_env_seconds("HYPR_DIFF_TIMEOUT", 3600);

	if (vm_wait_ready(vm, e) < 0)
		return -1;
	if (vm->dead)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "build VM: not running");
	hypr_proto_put64(req, (uint64_t)epoch);
	hypr_proto_put64(req + 8, 0);
	hypr_proto_put64(req + 16, vm->out_size);
	if (vm_send_frame(vm, HYPR_MSG_DIFF, req, sizeof req, e) < 0) {
		vm_reap(vm, 1);
		return -1;
	}
	if (vm_recv_frame(vm, hypr_now() + timeout, &type, &p, &n, e, "diff") < 0)
		return -1;
	if (type != HYPR_MSG_DIFFDONE || n < 8) {
		vm_unexpected(vm, type, p, n, e, "diff");
		/* the guest refused what the step made (not a dead VM or disk) */
		if (type == HYPR_MSG_ERROR && !vm->dead && !vm->ioerr[0])
			e->code = HYPR_EXIT_STEP;
		return -1;
	}
	l = hypr_proto_get64(p);
	vm_consume(vm);
	if (l > vm->out_size)
		return vm_fail(vm, e, HYPR_EXIT_SYSTEM, "diff: bad length from the guest");
	if (vm_copy_range(vm->iofd, "the out disk", 0, l, out_fd, "the layer", NULL, e) < 0)
		return -1;
	/* give the space back; the next diff rewrites from offset 0 */
	fallocate(vm->iofd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t)((l + 4095) & ~4095ull));
	*len = l;
	return 0;
}

/* Decompress a tar (any filter libarchive reads) into the io disk's in
 * region, after the squashfs layers it holds; *total gets its length. */
static int
fill_in_disk(struct hypr_vm *vm, const char *tar_path, uint64_t *total, struct hypr_err *e)
{
	struct archive *a;
	const void *blk;
	size_t sz;
	la_int64_t off;
	struct archive_entry *ent;
	uint64_t at = vm->in_base + vm->in_used;
	int r;

	*total = 0;
	a = archive_read_new();
	archive_read_support_filter_all(a);
	archive_read_support_format_raw(a);
	if (archive_read_open_filename(a, tar_path, 1 << 20) != ARCHIVE_OK ||
	    archive_read_next_header(a, &ent) != ARCHIVE_OK) {
		hypr_err_set(e, HYPR_EXIT_INPUT, "%s: %s", tar_path, archive_error_string(a));
		archive_read_free(a);
		return -1;
	}
	while ((r = archive_read_data_block(a, &blk, &sz, &off)) == ARCHIVE_OK) {
		if ((uint64_t)off + sz > DISK_SIZE - vm->in_used) {
			archive_read_free(a);
			return hypr_err_set(e, HYPR_EXIT_INPUT, "%s: larger than the in disk", tar_path);
		}
		if (pwrite(vm->iofd, blk, sz, (off_t)(at + (uint64_t)off)) != (ssize_t)sz) {
			hypr_err_errno(e, HYPR_EXIT_SYSTEM, "build VM: writing the in disk");
			archive_read_free(a);
			return -1;
		}
		if ((uint64_t)off + sz > *total)
			*total = (uint64_t)off + sz;
	}
	if (r != ARCHIVE_EOF) {
		hypr_err_set(e, HYPR_EXIT_INPUT, "%s: %s", tar_path, archive_error_string(a));
		archive_read_free(a);
		return -1;
	}
	archive_read_free(a);
	return 0;
}

/* Give [in_base + in_used, +len) back to the host's disk. */
static void
punch_in_disk(struct hypr_vm *vm, uint64_t len)
{
	fallocate(vm->iofd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
	    (off_t)(vm->in_base + vm->in_used), (off_t)((len + 4095) & ~4095ull));
}

/* Send a request naming [in_used, +total) of the in region (IMPORT: with
 * flags); wait for IMPORTED. */
static int
in_disk_request(struct hypr_vm *vm, int type, uint64_t total, uint32_t flags,
    const char *name, const char *tar_path, const char *what, struct hypr_err *e)
{
	unsigned char req[16 + 64], *p;
	size_t nl = name ? strlen(name) : 0;
	uint32_t n;
	int t;

	if (nl > 63)
		return hypr_err_set(e, HYPR_EXIT_INPUT, "build VM: %s: name too long", what);
	vm->step++;
	hypr_proto_put64(req, vm->in_base + vm->in_used);
	hypr_proto_put64(req + 8, total);
	if (nl)
		memcpy(req + 16, name, nl);
	else if (flags) {
		hypr_proto_put32(req + 16, flags);
		nl = 4;
	}
	if (vm_send_frame(vm, type, req, 16 + nl, e) < 0) {
		vm_reap(vm, 1);
		return -1;
	}
	if (vm_recv_frame(vm, hypr_now() + hypr_env_seconds("HYPR_DIFF_TIMEOUT", 3600), &t, &p, &n, e, what) < 0)
		return -1;
	if (t != HYPR_MSG_IMPORTED) {
		vm_unexpected(vm, t, p, n, e, what);
		if (!vm->dead)
			e->code = HYPR_EXIT_INPUT;	/* the guest refused the tar */
		return hypr_err_prefix(e, "%s", tar_path);
	}
	vm_consume(vm);
	return 0;
}

#define SQFS_IMPORT_MIN (64 << 10)	/* smaller layer tars go in as tars */

/* A layer tar2sqfs can read as it is (no whiteouts: a COPY's) goes in as
 * a squashfs image the guest mounts read-only at L/<n> and keeps for the
 * VM's life: no extraction in the guest, where every byte costs TCG time.
 * 1 done, 0 not this way (the caller sends the tar, which also gives the
 * verdict on a host-side failure here: a full disk, a bad tar), -1 when
 * the VM died. */
static int
import_squashfs(struct hypr_vm *vm, const char *tar_path, struct hypr_err *e)
{
	/* lz4: the fastest to read back in the guest; stored where it
	 * does not shrink. 1 MiB blocks: each block is one request to the
	 * disk, ~1 ms under TCG; a 50 MiB file read cold 0.23 s against
	 * 0.37-0.48 s at 128 KiB. Small files do not pay for the bigger
	 * fragment blocks with the guest kernel's readahead patch
	 * (pipeline/vm/kernel-patches/): 2000 of them 0.61-0.65 s either way
	 * (without it ~4 s at 1 MiB). */
	struct hypr_squash_opts o = { .comp = "lz4", .epoch = -1, .block_size = 1u << 20 };
	const char *only_tar = getenv("HYPR_VM_IMPORT_TAR");
	char sq[HYPR_PATH_BUF];
	struct hypr_err ig = { 0 };
	struct stat st;
	loff_t at;
	int fd, rc;

	/* a tar of a few files is extracted faster than a squashfs is made
	 * and mounted (13-16 against 22-25 ms for 10 KB under TCG) */
	if ((only_tar && !strcmp(only_tar, "1")) || vm->sqfs_refused ||
	    stat(tar_path, &st) < 0 || st.st_size < SQFS_IMPORT_MIN ||
	    snprintf(sq, sizeof sq, "%s/layer.sqfs", vm->dir) >= (int)sizeof sq ||
	    (fd = open(tar_path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	rc = hypr_squash_layer(fd, sq, &o, &ig);
	close(fd);
	if (rc <= 0)
		return 0;
	fd = open(sq, O_RDONLY | O_CLOEXEC);
	unlink(sq);
	if (fd < 0)
		return 0;
	rc = fstat(fd, &st) < 0 || (uint64_t)st.st_size > DISK_SIZE - vm->in_used ? -1 : 0;
	at = (loff_t)(vm->in_base + vm->in_used);
	if (rc == 0)
		rc = vm_copy_range(fd, "a layer's squashfs", 0, (uint64_t)st.st_size, vm->iofd, "the in disk", &at, &ig);
	close(fd);
	if (rc == 0 && in_disk_request(vm, HYPR_MSG_IMPORT, (uint64_t)st.st_size,
	    HYPR_IMPORT_SQUASHFS, NULL, tar_path, "import", &ig) == 0) {
		vm->in_used += ((uint64_t)st.st_size + 4095) & ~4095ull;
		return 1;
	}
	punch_in_disk(vm, (uint64_t)at - vm->in_base - vm->in_used);
	if (vm->dead) {
		*e = ig;
		return -1;
	}
	if (rc == 0) {
		/* the guest refused it: a kernel without loop devices (a
		 * distribution's). Tars from now on, and one warning. */
		vm->sqfs_refused = 1;
		if (!vm->warning[0] || vm->warned) {
			snprintf(vm->warning, sizeof vm->warning,
			    "build VM: layers go in as tars (%.400s)", ig.msg);
			vm->warned = 0;
		}
	}
	return 0;
}

int
hypr_vm_import(struct hypr_vm *vm, const char *tar_path, struct hypr_err *e)
{
	uint64_t total;
	int rc;

	if (vm_wait_ready(vm, e) < 0)
		return -1;
	if (vm->dead)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "build VM: not running");
	if ((rc = import_squashfs(vm, tar_path, e)) != 0)
		return rc < 0 ? -1 : 0;
	if (fill_in_disk(vm, tar_path, &total, e) < 0)
		return -1;
	rc = in_disk_request(vm, HYPR_MSG_IMPORT, total, 0, NULL, tar_path, "import", e);
	punch_in_disk(vm, total);
	return rc;
}

int
hypr_vm_mount_data(struct hypr_vm *vm, const char *tar_path, const char *name,
    struct hypr_err *e)
{
	uint64_t total;
	int rc;

	if (vm_wait_ready(vm, e) < 0)
		return -1;
	if (vm->dead)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "build VM: not running");
	if (!name || !*name || strchr(name, '/') || name[0] == '.')
		return hypr_err_set(e, HYPR_EXIT_INPUT, "build VM: mount data: bad name");
	if (fill_in_disk(vm, tar_path, &total, e) < 0)
		return -1;
	rc = in_disk_request(vm, HYPR_MSG_MOUNTDATA, total, 0, name, tar_path, "mount data", e);
	punch_in_disk(vm, total);
	return rc;
}
