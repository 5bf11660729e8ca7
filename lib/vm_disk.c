/* vm_disk.c - the build VM's disks on the host: the sparse io disk, the
 * ext4 scratch disk of a build (its free space the build's limit) and the
 * kept writable layer of a container (hypr_vm_opts.rwdisk). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fsutil.h"
#include "sparse.h"
#include "vm.h"
#include "vm_int.h"

int
vm_make_disk(struct hypr_vm *vm, const char *name, uint64_t size, int *fd, struct hypr_err *e)
{
	char p[PATH_MAX];

	snprintf(p, sizeof p, "%s/%s.raw", vm->dir, name);
	*fd = open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (*fd < 0 || ftruncate(*fd, (off_t)size) < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "build VM: %s", p);
	return 0;
}

/* The scratch disk's size, as the guest sees it: 64 GiB, or the build
 * disk limit if one was given above that. */
uint64_t
vm_dev_size(const struct hypr_vm *vm)
{
	return vm->disk > DISK_SIZE ? vm->disk : DISK_SIZE;
}

int
hypr_vm_mkfs(const char *p, uint64_t dev, uint64_t fs, int journal, long uid, long gid,
    struct hypr_err *e)
{
	char fs_size[32], opts[128];
	int fd, st;
	pid_t pid;

	snprintf(fs_size, sizeof fs_size, "%lluk", (unsigned long long)(fs >> 10));
	snprintf(opts, sizeof opts, "lazy_itable_init=1,lazy_journal_init=1,root_owner=%ld:%ld",
	    uid >= 0 ? uid : 0, gid >= 0 ? gid : 0);
	fd = open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)dev) < 0) {
		if (fd >= 0)
			close(fd);
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", p);
	}
	close(fd);
	pid = fork();
	if (pid < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "fork");
	if (pid == 0) {
		int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (nul >= 0) {
			dup2(nul, 0);
			dup2(nul, 1);
		}
		execlp("mke2fs", "mke2fs", "-t", "ext4", "-q", "-F", "-O",
		    journal ? "has_journal" : "^has_journal", "-E", opts, "-m", "0",
		    p, fs ? fs_size : (char *)NULL, (char *)NULL);
		dprintf(2, "mke2fs: %s\n", strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "mke2fs %s failed (e2fsprogs installed?)", p);
	return 0;
}

/* A build's scratch disk for the layers: tmpfs in 6.1 has no user.*
 * xattrs and is bounded by guest RAM. No journal: nothing survives the VM.
 * The disk is the same size for every build (a snapshot's guest saw it
 * so). A VM that may come from a snapshot (vm->snap_args) has a file
 * system over the whole disk, which the saved guest has mounted: a
 * restored one gets a copy of the snapshot's (from), and the build's limit
 * is space the guest sets aside at GO (vm_snap_go). Any other has a file
 * system the size of the limit. */
int
vm_make_scratch(struct hypr_vm *vm, const char *from, struct hypr_err *e)
{
	char p[PATH_MAX];

	snprintf(p, sizeof p, "%s/scratch.ext4", vm->dir);
	if (from ? vm_copy_sparse(from, p, e) < 0 :
	    hypr_vm_mkfs(p, vm_dev_size(vm), vm->snap_args ? 0 : vm->disk, 0, -1, -1, e) < 0)
		return hypr_err_prefix(e, "build VM");
	return 0;
}

/* Copy [off, +len) of from to to: at *at (advanced) when at is given, else
 * at to's offset (a pipe too); fname and tname name them in errors. */
int
vm_copy_range(int from, const char *fname, off_t off, uint64_t len, int to, const char *tname,
    loff_t *at, struct hypr_err *e)
{
	static char buf[1 << 20];
	uint64_t left = len;
	loff_t in = off;

	/* copy_file_range first (reflink/fast path for regular files) */
	while (left > 0) {
		ssize_t c = copy_file_range(from, &in, to, at, left > (1u << 30) ? (1u << 30) : left, 0);
		if (c <= 0)
			break;
		left -= (uint64_t)c;
	}
	while (left > 0) {
		size_t want = left > sizeof buf ? sizeof buf : (size_t)left;
		ssize_t r = pread(from, buf, want, in);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "build VM: reading %s", fname);
		if (at ? pwrite(to, buf, (size_t)r, *at) != r : hypr_write_all(to, buf, (size_t)r) < 0)
			return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "build VM: writing %s", tname);
		if (at)
			*at += r;
		in += r;
		left -= (uint64_t)r;
	}
	return 0;
}

/* to (made or truncated) as a copy of from, holes kept. */
int
vm_copy_sparse(const char *from, const char *to, struct hypr_err *e)
{
	struct hypr_extent *v = NULL;
	struct stat st;
	ssize_t n = -1;
	int in, out, rc = -1;

	if ((in = open(from, O_RDONLY | O_CLOEXEC)) < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", from);
	if ((out = open(to, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
		hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", to);
		goto out;
	}
	if (fstat(in, &st) < 0 || ftruncate(out, st.st_size) < 0 ||
	    (n = hypr_sparse_map(in, 0, st.st_size, &v)) < 0) {
		hypr_err_errno(e, HYPR_EXIT_SYSTEM, "copying %s", from);
		goto out;
	}
	/* a filesystem without SEEK_DATA shows a disk image as all data:
	 * not 64 GiB of zeros copied */
	if (n == 1 && v[0].len == st.st_size && st.st_size > (1 << 30)) {
		hypr_err_set(e, HYPR_EXIT_SYSTEM, "copying %s: its holes cannot be seen here", from);
		goto out;
	}
	for (ssize_t i = 0; i < n; i++) {
		loff_t at = v[i].off;

		if (vm_copy_range(in, from, v[i].off, (uint64_t)v[i].len, out, to, &at, e) < 0)
			goto out;
	}
	rc = 0;
out:
	free(v);
	if (out >= 0)
		close(out);
	close(in);
	return rc;
}

/* A runtime VM's writable layer kept across its boots: the disk is made
 * once (under a temp name, so a half made one is never used) and linked
 * into vm->dir as the scratch disk. */
int
vm_use_rwdisk(struct hypr_vm *vm, const char *path, struct hypr_err *e)
{
	char tmp[PATH_MAX], lp[PATH_MAX];

	if (access(path, F_OK) != 0) {
		if (snprintf(tmp, sizeof tmp, "%s.new", path) >= (int)sizeof tmp)
			return hypr_err_set(e, HYPR_EXIT_SYSTEM, "VM: %s: path too long", path);
		if (hypr_vm_mkfs(tmp, DISK_SIZE, DISK_SIZE, 1, -1, -1, e) < 0) {
			unlink(tmp);
			return hypr_err_prefix(e, "VM");
		}
		if (rename(tmp, path) < 0) {
			unlink(tmp);
			return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "VM: %s", path);
		}
	}
	snprintf(lp, sizeof lp, "%s/scratch.ext4", vm->dir);
	if (symlink(path, lp) < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "VM: %s", lp);
	vm->scratch = 2;
	return 0;
}

static void
human(uint64_t b, char *buf, size_t n)
{
	if (b >= 1ull << 30)
		snprintf(buf, n, "%.1f GiB", (double)b / (double)(1ull << 30));
	else
		snprintf(buf, n, "%.1f MiB", (double)b / (double)(1ull << 20));
}

/* The build disk limit: given (checked against the free space, so a build
 * fails up front, not half way) or the default. The scratch and out disks
 * are sparse: only what the build writes takes space. */
int
vm_disk_limit(struct hypr_vm *vm, const struct hypr_vm_opts *o, struct hypr_err *e)
{
	const char *env = getenv("HYPR_BUILD_DISK");
	uint64_t want = o->disk, avail;
	struct statvfs sv;
	char h1[32], h2[32];

	if (!want && env && *env && hypr_size_parse(env, &want) < 0)
		return hypr_err_set(e, HYPR_EXIT_USAGE,
		    "HYPR_BUILD_DISK=%s: not a size (e.g. 20g)", env);
	if (statvfs(vm->dir, &sv) < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "build VM: %s", vm->dir);
	avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	human(avail, h2, sizeof h2);
	if (want) {
		human(want, h1, sizeof h1);
		if (want < DISK_MIN)
			return hypr_err_set(e, HYPR_EXIT_USAGE,
			    "build disk limit %s: at least 64 MiB", h1);
		if (want > avail)
			return hypr_err_set(e, HYPR_EXIT_SYSTEM,
			    "build disk limit %s: only %s free in %s", h1, h2, vm->dir);
		vm->disk = want;
	} else {
		vm->disk = avail / 10 * 9 < DISK_SIZE ? avail / 10 * 9 : DISK_SIZE;
		if (vm->disk < DISK_MIN)
			return hypr_err_set(e, HYPR_EXIT_SYSTEM,
			    "build VM: only %s free in %s (a build needs 64 MiB at least)", h2, vm->dir);
	}
	vm->disk &= ~(uint64_t)0xfffff;	/* whole MiB */
	/* a tar of a full build disk: data plus headers */
	vm->out_size = vm->disk + vm->disk / 8 + (64ull << 20);
	return 0;
}
