/* vm_snap.c - the build VM from a snapshot (hypr-guest(7), "Snapshots").
 *
 * Most of a cold boot under TCG (~0.6 s) is the kernel starting; it is the
 * same for every VM of one shape (QEMU, kernel, initramfs, devices, RAM).
 * The guest goes that far with hypr.snap=1, says PAUSED and waits; the
 * first VM of a shape is saved there, its RAM in a file (a
 * memory-backend-file shared while saving, so the migration stream is only
 * the devices' state), and every later one is restored from it with the
 * RAM file mapped copy-on-write: no VM ever writes the snapshot, and
 * concurrent builds share nothing but its unchanging pages. The host then
 * sends GO with fresh entropy and the build's disk limit, and the guest
 * mounts this build's base. A build VM's saved guest has its scratch fs
 * mounted: each restored one gets a copy of that disk.
 *
 * A base seen again (a snap-base-KEY.seen mark left by the last VM with
 * it) gets a snapshot of its own, snap-base-KEY: hypr.snapbase=1 moves
 * the guest's snapshot point after the base is mounted, the init layer
 * made and the warm-up step run; the base file's identity joins the key.
 * A VM with a base looks for that first, then for the shared one.
 *
 * $HYPR_ROOT/vm/snap-KEY/ (or HYPR_SNAPSHOT_DIR/snap-KEY/) holds ram, state,
 * scratch.ext4 and meta. KEY digests all that
 * the saved guest depends on: QEMU's, the kernel's and the initramfs's
 * identity (device, inode, size, mtime, ctime), the whole QEMU command line
 * (with the kernel command line and its TSC rate), the disks' sizes and the
 * protocol version. The base disk is a 1 TiB placeholder when saving, so any
 * base up to that size fits the size the guest saw. A snapshot whose files
 * changed since it was saved (meta keeps their identity and the state's
 * digest), or that does not come back within HYPR_SNAPSHOT_TIMEOUT, is
 * removed with one warning; that VM boots cold. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include <jansson.h>

#include "clock.h"
#include "digest.h"
#include "fsutil.h"
#include "vm_int.h"

#define SNAP_FORMAT 2
#define PLACEHOLDER (1ull << 40)	/* the base disk the saved guest saw */
#define KEEP 6				/* snapshots of each kind kept (most
					 * recently used): HYPR_SNAPSHOT_KEEP */
#define SEEN_DAYS 7			/* a base's .seen marker kept */
#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif

/* dir/name into out; -1 if it does not fit (not inlined: it checks what
 * -Wformat-truncation would guess at) */
static __attribute__((noinline)) int
join(char *out, size_t cap, const char *dir, const char *name)
{
	int n = snprintf(out, cap, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* HYPR_SNAPSHOT_DIR, else $HYPR_ROOT/vm */
static int
snap_root(char *out, size_t cap)
{
	const char *env = getenv("HYPR_SNAPSHOT_DIR");
	char buf[PATH_MAX];

	if (env && *env)
		return snprintf(out, cap, "%s", env) < (int)cap ? 0 : -1;
	return snprintf(out, cap, "%s/vm", vm_hypr_root(buf, sizeof buf)) < (int)cap ? 0 : -1;
}

int
vm_snap_eligible(struct hypr_vm *vm, const struct hypr_vm_opts *o, const char *accel)
{
	const char *env = getenv("HYPR_VM_SNAPSHOT");
	char root[PATH_MAX];
	struct statfs sf;
	struct stat st;
	struct hypr_err ig = { 0 };

	vm->snap_shared = env && !strcmp(env, "shared");
	if (env && !strcmp(env, "0"))
		return 0;
	/* KVM boots in a fraction of TCG's time: only on request there */
	if (strcmp(accel, "tcg") && !(env && !strcmp(env, "1")))
		return 0;
	/* what differs between VMs of one shape must not be in the saved
	 * guest: caches, shares and the network are each build's own */
	if (o->ncaches || o->nshares || o->nfwds || (o->guestfwds && o->guestfwds[0]))
		return 0;
	if (o->base && (stat(o->base, &st) < 0 || (uint64_t)st.st_size > PLACEHOLDER))
		return 0;
	/* the RAM file is mapped copy-on-write: on tmpfs it would take RAM */
	if (snap_root(root, sizeof root) < 0 || hypr_mkdir_p(root, 0755, &ig) < 0 ||
	    statfs(root, &sf) < 0 || sf.f_type == TMPFS_MAGIC)
		return 0;
	return 1;
}

/* ---- the key ---- */

static void
feed_identity(struct hypr_sha256 *h, const char *what, const char *path)
{
	struct stat st;
	char buf[PATH_MAX + 256];
	int n;

	if (stat(path, &st) < 0)
		n = snprintf(buf, sizeof buf, "%s %s missing\n", what, path);
	else
		n = snprintf(buf, sizeof buf, "%s %s %llu %llu %lld %lld.%09ld %lld.%09ld\n", what, path,
		    (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
		    (long long)st.st_size, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
		    (long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
	hypr_sha256_update(h, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* QEMU as execvp finds it. */
static void
which(const char *name, char *out, size_t cap)
{
	const char *path = getenv("PATH");

	snprintf(out, cap, "%s", name);
	if (strchr(name, '/') || !path)
		return;
	for (const char *p = path; *p;) {
		size_t n = strcspn(p, ":");
		if (n && snprintf(out, cap, "%.*s/%s", (int)n, p, name) < (int)cap &&
		    access(out, X_OK) == 0)
			return;
		p += n + (p[n] == ':');
	}
	snprintf(out, cap, "%s", name);
}

/* base: a snapshot of this base (its args have hypr.snapbase=1): the
 * base file's identity is in the key too (no ctime: a cached squashfs
 * gains links, never changes) */
static int
snap_key(struct hypr_vm *vm, const struct hypr_vm_opts *o, int base, char key[HYPR_DIGEST_LEN + 1],
    struct hypr_err *e)
{
	struct hypr_sha256 h;
	char buf[PATH_MAX + 64];
	struct stat st;

	if (hypr_sha256_init(&h, e) < 0)
		return -1;
	snprintf(buf, sizeof buf, "hypr-vm-snapshot %d proto %d placeholder %llu\n", SNAP_FORMAT,
	    HYPR_PROTO_VERSION, (unsigned long long)PLACEHOLDER);
	hypr_sha256_update(&h, buf, strlen(buf));
	which(vm->args[0], buf, sizeof buf);
	feed_identity(&h, "qemu", buf);
	for (int k = 0; k + 1 < vm->nargs; k++) {
		if (!strcmp(vm->args[k], "-kernel"))
			feed_identity(&h, "kernel", vm->args[k + 1]);
		else if (!strcmp(vm->args[k], "-initrd"))
			feed_identity(&h, "initrd", vm->args[k + 1]);
	}
	for (int k = 0; k < vm->nargs; k++)
		hypr_sha256_update(&h, vm->args[k], strlen(vm->args[k]) + 1);
	if (base) {
		if (stat(o->base, &st) < 0)
			return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "build VM: base %s", o->base);
		snprintf(buf, sizeof buf, "base %llu %llu %lld %lld.%09ld\n",
		    (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
		    (long long)st.st_size, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
		hypr_sha256_update(&h, buf, strlen(buf));
	}
	/* the sizes of the VM's own disks, as the guest saw them (a build's
	 * scratch disk is made when QEMU starts) */
	if (vm->scratch == 1) {
		snprintf(buf, sizeof buf, "scratch.ext4 %llu\n", (unsigned long long)vm_dev_size(vm));
		hypr_sha256_update(&h, buf, strlen(buf));
	}
	for (const char *const *d = (const char *const[]){ "scratch.ext4", "io.raw", NULL }; *d; d++) {
		snprintf(buf, sizeof buf, "%s/%s", vm->dir, *d);
		if ((vm->scratch != 1 || strcmp(*d, "scratch.ext4")) && stat(buf, &st) == 0) {
			snprintf(buf, sizeof buf, "%s %lld\n", *d, (long long)st.st_size);
			hypr_sha256_update(&h, buf, strlen(buf));
		}
	}
	hypr_sha256_final(&h, key);
	return 0;
}

/* ---- QMP, synchronously (saving only) ---- */

/* Send a command with "id":"hypr" (and fd, if >= 0, as SCM_RIGHTS) and
 * wait for its reply: 0 with the reply in vm->qreply, -1 on "error", a
 * dead QEMU or the deadline. */
static int
qmp_call(struct hypr_vm *vm, const char *cmd, int fd, double deadline, struct hypr_err *e)
{
	struct iovec iov = { .iov_base = (void *)cmd, .iov_len = strlen(cmd) };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	json_t *j, *err;

	free(vm->qreply);
	vm->qreply = NULL;
	if (fd >= 0) {
		struct cmsghdr *c;
		memset(&u, 0, sizeof u);
		mh.msg_control = u.buf;
		mh.msg_controllen = sizeof u.buf;
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof fd);
	}
	{
		/* QMP's socket is non-blocking: a short command fits the
		 * buffer, a full one is a dead monitor */
		ssize_t w = sendmsg(vm->qmp, &mh, MSG_NOSIGNAL);
		if (w != (ssize_t)iov.iov_len)
			return hypr_err_set(e, HYPR_EXIT_SYSTEM, "VM snapshot: QMP: %s",
			    w < 0 ? strerror(errno) : "short write");
	}
	while (!vm->qreply) {
		struct pollfd pf[2] = {
			{ .fd = vm->qmp, .events = POLLIN },
			{ .fd = vm->pidfd, .events = POLLIN },
		};
		double left = deadline - hypr_now();
		if (left <= 0)
			return hypr_err_set(e, HYPR_EXIT_SYSTEM, "VM snapshot: QMP: timed out");
		if (poll(pf, 2, (int)(left * 1000) + 1) < 0 && errno != EINTR)
			return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "VM snapshot: poll");
		if (pf[1].revents)
			return hypr_err_set(e, HYPR_EXIT_SYSTEM, "VM snapshot: QEMU exited while saving");
		if (pf[0].revents)
			vm_qmp_read(vm);
		if (vm->qmp < 0)
			return hypr_err_set(e, HYPR_EXIT_SYSTEM, "VM snapshot: QMP closed");
	}
	j = json_loads(vm->qreply, 0, NULL);
	err = json_object_get(j, "error");
	if (err) {
		hypr_err_set(e, HYPR_EXIT_SYSTEM, "VM snapshot: QEMU: %s",
		    json_string_value(json_object_get(err, "desc")) ?
		    json_string_value(json_object_get(err, "desc")) : "error");
		json_decref(j);
		return -1;
	}
	json_decref(j);
	return 0;
}

/* ---- meta: what the snapshot's files were when saved ---- */

static json_t *
file_id(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return NULL;
	return json_pack("{s:I,s:I,s:I,s:I}", "size", (json_int_t)st.st_size,
	    "ino", (json_int_t)st.st_ino,
	    "mtime", (json_int_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec,
	    "ctime", (json_int_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec);
}

/* NULL if the snapshot in dir is whole and unchanged, else what is wrong
 * (static text). */
static const char *
snap_check(const char *dir, const char *key, int scratch)
{
	char p[PATH_MAX], d[HYPR_DIGEST_LEN + 1];
	json_t *m, *now;
	const char *bad = NULL;
	struct hypr_err ig = { 0 };

	join(p, sizeof p, dir, "meta");
	if (!(m = json_load_file(p, 0, NULL)))
		return "its meta file is missing or not JSON";
	if (!json_is_string(json_object_get(m, "key")) ||
	    strcmp(json_string_value(json_object_get(m, "key")), key))
		bad = "its key is not its directory's";
	for (const char *const *f = (const char *const[]){ "ram", "state", "scratch.ext4", NULL };
	    !bad && *f; f++) {
		if (!scratch && !strcmp(*f, "scratch.ext4"))
			continue;
		join(p, sizeof p, dir, *f);
		now = file_id(p);
		if (!now || !json_equal(now, json_object_get(m, *f)))
			bad = !strcmp(*f, "ram") ? "its RAM file changed since it was saved" :
			    !strcmp(*f, "state") ? "its state file changed since it was saved" :
			    "its scratch disk changed since it was saved";
		json_decref(now);
	}
	if (!bad) {
		join(p, sizeof p, dir, "state");
		if (hypr_digest_file(p, d, NULL, &ig) < 0 || !json_is_string(json_object_get(m, "state_digest")) ||
		    strcmp(d, json_string_value(json_object_get(m, "state_digest"))))
			bad = "its state file does not match its digest";
	}
	json_decref(m);
	return bad;
}

/* Keep the HYPR_SNAPSHOT_KEEP (KEEP) most recently used snapshots of each
 * kind, shared and base (meta's mtime: touched at each restore); the
 * others go, and the marks of bases not seen again for SEEN_DAYS. Best
 * effort. */
static void
snap_prune(const char *root)
{
	DIR *d = opendir(root);
	struct dirent *de;
	struct {
		char name[NAME_MAX + 1];
		int64_t t;
		int base;
	} s[64];
	size_t n = 0;
	struct hypr_err ig = { 0 };
	long keep = (long)hypr_env_seconds("HYPR_SNAPSHOT_KEEP", KEEP);

	while (d && (de = readdir(d)) && n < 64) {
		char p[PATH_MAX], mp[PATH_MAX];
		struct stat st;
		size_t len = strlen(de->d_name);

		if (strncmp(de->d_name, "snap-", 5) || len > NAME_MAX ||
		    join(p, sizeof p, root, de->d_name) < 0)
			continue;
		if (len > 5 && !strcmp(de->d_name + len - 5, ".seen")) {
			if (lstat(p, &st) == 0 && st.st_mtime < time(NULL) - SEEN_DAYS * 86400)
				unlink(p);
			continue;
		}
		if (join(mp, sizeof mp, p, "meta") < 0 || stat(mp, &st) < 0)
			continue;
		memcpy(s[n].name, de->d_name, len + 1);
		s[n].t = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
		s[n++].base = !strncmp(de->d_name, "snap-base-", 10);
	}
	if (d)
		closedir(d);
	for (int kind = 0; kind < 2; kind++)
		for (;;) {
			size_t old = n, have = 0;
			char p[PATH_MAX];

			for (size_t i = 0; i < n; i++)
				if (s[i].base == kind && (have++, old == n || s[i].t < s[old].t))
					old = i;
			if (have <= (size_t)(keep > 0 ? keep : 1))
				break;
			if (join(p, sizeof p, root, s[old].name) == 0)
				hypr_rm_rf(p, &ig);
			s[old] = s[--n];
		}
}

/* ---- save, restore ---- */

int
vm_snap_go(struct hypr_vm *vm, struct hypr_err *e)
{
	unsigned char go[40];

	if (getrandom(go, 32, 0) != 32)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "VM: getrandom");
	/* the saved guest has the scratch fs mounted, over the whole disk:
	 * it leaves this build's limit free and sets the rest aside */
	hypr_proto_put64(go + 32, vm->scratch == 1 ? vm->disk : 0);
	return vm_send_frame(vm, HYPR_MSG_GO, go, vm->scratch == 1 ? 40 : 32, e);
}

static int
relink_base(struct hypr_vm *vm, const char *target, struct hypr_err *e)
{
	char lp[PATH_MAX];

	join(lp, sizeof lp, vm->dir, "base");
	if ((unlink(lp) < 0 && errno != ENOENT) || symlink(target, lp) < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "VM snapshot: %s", lp);
	return 0;
}

static int
fsync_path(const char *p)
{
	int fd = open(p, O_RDONLY | O_CLOEXEC), rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/* Boot this VM's shape to its snapshot point and save it in tmp. */
static int
save(struct hypr_vm *vm, const struct hypr_vm_opts *o, int base, const char *tmp, const char *key,
    struct hypr_err *e)
{
	char p[PATH_MAX], d[HYPR_DIGEST_LEN + 1];
	unsigned char *pl;
	uint32_t n;
	int type, fd, rc = -1;
	double deadline;
	json_t *m;

	if (o->base && !base) {
		join(p, sizeof p, tmp, "base.img");
		if ((fd = open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0 ||
		    ftruncate(fd, (off_t)PLACEHOLDER) < 0) {
			if (fd >= 0)
				close(fd);
			return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "VM snapshot: %s", p);
		}
		close(fd);
		if (relink_base(vm, p, e) < 0)
			return -1;
	}
	join(p, sizeof p, tmp, "state");
	if ((fd = open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "VM snapshot: %s", p);
	if (vm_exec(vm, VM_SAVE, tmp, e) < 0)
		goto out;
	vm->booting = 0;
	if (vm_recv_frame(vm, vm->boot_deadline, &type, &pl, &n, e, "booting to save a snapshot") < 0)
		goto out;
	if (type != HYPR_MSG_PAUSED) {
		vm_unexpected(vm, type, pl, n, e, "booting to save a snapshot");
		goto out;
	}
	vm_consume(vm);
	deadline = hypr_now() + 30;
	if (qmp_call(vm, "{\"execute\":\"migrate-set-capabilities\",\"id\":\"hypr\",\"arguments\":"
	    "{\"capabilities\":[{\"capability\":\"x-ignore-shared\",\"state\":true}]}}\n", -1, deadline, e) < 0 ||
	    qmp_call(vm, "{\"execute\":\"stop\",\"id\":\"hypr\"}\n", -1, deadline, e) < 0 ||
	    qmp_call(vm, "{\"execute\":\"getfd\",\"id\":\"hypr\",\"arguments\":{\"fdname\":\"st\"}}\n",
	    fd, deadline, e) < 0 ||
	    qmp_call(vm, "{\"execute\":\"migrate\",\"id\":\"hypr\",\"arguments\":{\"uri\":\"fd:st\"}}\n",
	    -1, deadline, e) < 0)
		goto out;
	for (;;) {
		json_t *r;
		const char *st;
		int done;
		if (qmp_call(vm, "{\"execute\":\"query-migrate\",\"id\":\"hypr\"}\n", -1, deadline, e) < 0)
			goto out;
		r = json_loads(vm->qreply, 0, NULL);
		st = json_string_value(json_object_get(json_object_get(r, "return"), "status"));
		done = st && !strcmp(st, "completed");
		if (st && (!strcmp(st, "failed") || !strcmp(st, "cancelled"))) {
			hypr_err_set(e, HYPR_EXIT_SYSTEM, "VM snapshot: QEMU's migration %s", st);
			json_decref(r);
			goto out;
		}
		json_decref(r);
		if (done)
			break;
		usleep(2000);
	}
	vm_reap(vm, 1);
	/* the scratch fs as the saved guest left it (synced, mounted) */
	if (vm->scratch == 1) {
		char sp[PATH_MAX], tp[PATH_MAX];

		join(sp, sizeof sp, vm->dir, "scratch.ext4");
		join(tp, sizeof tp, tmp, "scratch.ext4");
		if (vm_copy_sparse(sp, tp, e) < 0) {
			hypr_err_prefix(e, "VM snapshot");
			goto out;
		}
		if (fsync_path(tp) < 0) {
			hypr_err_errno(e, HYPR_EXIT_SYSTEM, "VM snapshot: %s", tp);
			goto out;
		}
	}
	join(p, sizeof p, tmp, "ram");
	if (fsync(fd) < 0 || fsync_path(p) < 0) {
		hypr_err_errno(e, HYPR_EXIT_SYSTEM, "VM snapshot: %s", tmp);
		goto out;
	}
	join(p, sizeof p, tmp, "base.img");
	unlink(p);
	join(p, sizeof p, tmp, "state");
	if (hypr_digest_file(p, d, NULL, e) < 0)
		goto out;
	{
		char rp[PATH_MAX], mp[PATH_MAX];
		char *text;
		join(rp, sizeof rp, tmp, "ram");
		m = json_pack("{s:s,s:o*,s:o*,s:s,s:i}", "key", key, "ram", file_id(rp),
		    "state", file_id(p), "state_digest", d, "format", SNAP_FORMAT);
		join(rp, sizeof rp, tmp, "scratch.ext4");
		if (m && vm->scratch == 1)
			json_object_set_new(m, "scratch.ext4", file_id(rp));
		text = m ? json_dumps(m, JSON_SORT_KEYS) : NULL;
		json_decref(m);
		join(mp, sizeof mp, tmp, "meta");
		if (!text) {
			hypr_err_set(e, HYPR_EXIT_SYSTEM, "VM snapshot: out of memory");
			goto out;
		}
		rc = hypr_write_atomic(mp, text, strlen(text), 0644, e);
		free(text);
	}
out:
	close(fd);
	if (rc < 0)
		vm_reap(vm, 1);
	return rc;
}

static int
restore(struct hypr_vm *vm, const char *dir, struct hypr_err *e)
{
	char mp[PATH_MAX];
	double limit = hypr_env_seconds("HYPR_SNAPSHOT_TIMEOUT", 10);

	if (vm_exec(vm, VM_RESTORE, dir, e) < 0)
		return -1;
	vm_qmp_send(vm, "{\"execute\":\"migrate-set-capabilities\",\"arguments\":"
	    "{\"capabilities\":[{\"capability\":\"x-ignore-shared\",\"state\":true}]}}\n");
	vm_qmp_send(vm, "{\"execute\":\"migrate-incoming\",\"arguments\":{\"uri\":\"fd:" VM_FD_STATE "\"}}\n");
	if (vm->boot_deadline > vm->t0 + limit)
		vm->boot_deadline = vm->t0 + limit;
	free(vm->snapdir);
	if (!(vm->snapdir = strdup(dir)))
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "VM: out of memory");
	vm->snap = VM_SNAP_RESTORING;
	join(mp, sizeof mp, dir, "meta");
	utimensat(AT_FDCWD, mp, NULL, 0);	/* most recently used */
	return 0;
}

static int snapbase_args(struct hypr_vm *vm, int on);

void
vm_snap_discard(struct hypr_vm *vm, const char *why)
{
	struct hypr_err ig = { 0 };

	snprintf(vm->warning, sizeof vm->warning,
	    "build VM: the snapshot %.200s did not restore (%.200s): removed, booting cold",
	    vm->snapdir ? vm->snapdir : "?", why && *why ? why : "?");
	if (vm->snapdir)
		hypr_rm_rf(vm->snapdir, &ig);
	vm->snap = VM_SNAP_NONE;
	snapbase_args(vm, 0);
}

/* The kernel command line (vm->args) with " hypr.snapbase=1" at its end
 * (on) or without it; -1 only out of memory. */
static int
snapbase_args(struct hypr_vm *vm, int on)
{
	static const char flag[] = " hypr.snapbase=1";
	const size_t f = sizeof flag - 1;

	vm->snap_base = 0;
	for (int k = 0; k + 1 < vm->nargs; k++) {
		char *a = vm->args[k + 1], *t;
		size_t n;
		int has;

		if (strcmp(vm->args[k], "-append"))
			continue;
		n = strlen(a);
		has = n >= f && !strcmp(a + n - f, flag);
		if (!on && has)
			a[n - f] = '\0';
		if (!on || has)
			break;
		if (!(t = realloc(a, n + f + 1)))
			return -1;
		memcpy(t + n, flag, f + 1);
		vm->args[k + 1] = t;
		break;
	}
	vm->snap_base = on;
	return 0;
}

/* No snapshot of the base this time: the shared shape's args (1) */
static int
shared_next(struct hypr_vm *vm)
{
	snapbase_args(vm, 0);
	return 1;
}

/* The snapshot of vm->args' shape (and of o->base with base): 0 when the
 * VM is restoring from it (saved first if there was none), 1 when there
 * is none to use for the base (vm->args back to the shared shape), -1 when
 * this VM boots cold (vm->warning may say why). */
static int
snap_use(struct hypr_vm *vm, const struct hypr_vm_opts *o, const char *root, int base,
    struct hypr_err *e)
{
	char key[HYPR_DIGEST_LEN + 1], dir[PATH_MAX], tmp[PATH_MAX];
	const char *bad, *what = base ? " of this base" : "";
	struct hypr_err se = { 0 }, ig = { 0 };

	if (snap_key(vm, o, base, key, e) < 0 ||
	    snprintf(dir, sizeof dir, "%s/snap-%s%.32s", root, base ? "base-" : "",
	    hypr_digest_hex(key)) >= (int)sizeof dir ||
	    snprintf(tmp, sizeof tmp, "%s.failed", dir) >= (int)sizeof tmp)
		return base ? shared_next(vm) : -1;
	if (access(tmp, F_OK) == 0)	/* this shape cannot be saved here */
		return base ? shared_next(vm) : -1;
	if (access(dir, F_OK) == 0) {
		if (!(bad = snap_check(dir, key, vm->scratch == 1)))
			return restore(vm, dir, e);
		snprintf(vm->warning, sizeof vm->warning,
		    "build VM: the snapshot %.300s is not usable (%s): saved again", dir, bad);
		hypr_rm_rf(dir, &ig);
	} else if (base) {
		/* a base's snapshot costs a save (a cold boot, ~2 s under
		 * TCG): only for a base seen before (a stage built FROM
		 * another stage may have a new one each build) */
		if (snprintf(tmp, sizeof tmp, "%s.seen", dir) >= (int)sizeof tmp)
			return shared_next(vm);
		if (access(tmp, F_OK) < 0) {
			hypr_write_atomic(tmp, "", 0, 0644, &ig);
			return shared_next(vm);
		}
		unlink(tmp);
	}
	/* none yet: this VM saves it (in a private directory, renamed into
	 * place whole), then is restored from it like every later one */
	if (snprintf(tmp, sizeof tmp, "%s/snap-tmp.XXXXXX", root) >= (int)sizeof tmp || !mkdtemp(tmp))
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "VM snapshot: mkdtemp in %s", root);
	if (save(vm, o, base, tmp, key, &se) < 0) {
		if (o->base && !base)
			relink_base(vm, o->base, &ig);
		hypr_rm_rf(tmp, &ig);
		snprintf(vm->warning, sizeof vm->warning, "build VM: no snapshot%s (%.400s)%s",
		    what, se.msg, base ? "" : ": booting cold");
		/* not again for this shape (a later build goes on quietly) */
		if (snprintf(tmp, sizeof tmp, "%s.failed", dir) < (int)sizeof tmp)
			hypr_write_atomic(tmp, se.msg, strlen(se.msg), 0644, &ig);
		return base ? shared_next(vm) : -1;
	}
	if (rename(tmp, dir) < 0)
		hypr_rm_rf(tmp, &ig);	/* another build saved the same first */
	else
		vm->snap_saved = 1;
	if (o->base && !base && relink_base(vm, o->base, e) < 0)
		return -1;
	snap_prune(root);
	return restore(vm, dir, e);
}

int
vm_snap_start(struct hypr_vm *vm, const struct hypr_vm_opts *o, struct hypr_err *e)
{
	char root[PATH_MAX];
	int r;

	if (snap_root(root, sizeof root) < 0)
		return -1;
	/* a build VM's base: its own snapshot first, then the one every base
	 * shares (a runtime VM's disks are its container's, mounted after
	 * the snapshot point) */
	if (o->base && !o->runtime && !vm->snap_shared) {
		if (snapbase_args(vm, 1) < 0)
			return hypr_err_set(e, HYPR_EXIT_SYSTEM, "VM: out of memory");
		if ((r = snap_use(vm, o, root, 1, e)) <= 0)
			return r;
	}
	return snap_use(vm, o, root, 0, e);
}

int
hypr_vm_snapshots(const char *root, int remove, size_t *n, uint64_t *bytes, struct hypr_err *e)
{
	const char *env = getenv("HYPR_SNAPSHOT_DIR");
	char dir[PATH_MAX];
	struct dirent *de;
	DIR *d;

	*n = 0;
	*bytes = 0;
	if (snprintf(dir, sizeof dir, "%s", env && *env ? env : root) >= (int)sizeof dir ||
	    (!(env && *env) && join(dir, sizeof dir, root, "vm") < 0))
		return hypr_err_set(e, HYPR_EXIT_USAGE, "VM snapshots: %s: path too long", root);
	if (!(d = opendir(dir)))
		return errno == ENOENT ? 0 : hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", dir);
	while ((de = readdir(d))) {
		char p[PATH_MAX], f[PATH_MAX];
		struct stat st;
		DIR *sd;
		struct dirent *fe;
		struct hypr_err ig = { 0 };

		if (strncmp(de->d_name, "snap-", 5) || join(p, sizeof p, dir, de->d_name) < 0)
			continue;
		if (lstat(p, &st) == 0 && !S_ISDIR(st.st_mode)) {
			*bytes += (uint64_t)st.st_blocks * 512;	/* a .failed marker */
		} else if ((sd = opendir(p))) {
			while ((fe = readdir(sd)))
				if (join(f, sizeof f, p, fe->d_name) == 0 && lstat(f, &st) == 0 &&
				    S_ISREG(st.st_mode))
					*bytes += (uint64_t)st.st_blocks * 512;
			closedir(sd);
			if (strncmp(de->d_name, "snap-tmp.", 9))
				(*n)++;
		}
		if (remove)
			hypr_rm_rf(p, &ig);
	}
	closedir(d);
	return 0;
}
