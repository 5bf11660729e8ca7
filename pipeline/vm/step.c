/* step.c - one RUN of the build VM: its request, its root, its namespaces
 * and mounts, its user; see hypr-guest(7).
 *
 * Step n's root is an overlay at R: upper layer n over layers n-1..1, the
 * init layer i and the base b. With RUN --mount, a layer "m" of mount
 * points sits on top of the lowers for that step only, so a mount target
 * the image lacks exists while the step runs and leaves no trace in its
 * layer (BuildKit's behaviour); m copies the metadata of the directories it
 * shadows. The child enters namespaces of its own, makes the mounts, detaches
 * every mount of the agent and moves the root onto /. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include "guest.h"
#include "vm_proto.h"

extern char **environ;

/* 9p message size: what QEMU's virtio transport grants at most; bigger
 * messages mean fewer round trips through the emulated device. */
#define NINEP_MSIZE 512000u

/* ---- the request ---- */

static int
push(char ***v, size_t *n, char *s)
{
	char **nv = realloc(*v, (*n + 2) * sizeof **v);

	if (!nv)
		return -1;
	nv[(*n)++] = s;
	nv[*n] = NULL;
	*v = nv;
	return 0;
}

/* "type\0target\0source\0flags\0mode\0uid\0gid\0size\0" then the data */
static int
parse_mount(const char *p, size_t n, struct mnt *m)
{
	const char *f[8];
	size_t at = 0;

	memset(m, 0, sizeof *m);
	for (int i = 0; i < 8; i++) {
		const char *z = memchr(p + at, 0, n - at);
		if (!z)
			return -1;
		f[i] = p + at;
		at = (size_t)(z - p) + 1;
	}
	if (!strchr("bctsp", f[0][0]) || f[0][1] || f[1][0] != '/')
		return -1;
	m->type = f[0][0];
	m->rw = strstr(f[3], "rw") != NULL;
	m->ro = strstr(f[3], "ro") != NULL;
	m->mode = *f[4] ? strtol(f[4], NULL, 8) : -1;
	m->uid = *f[5] ? strtol(f[5], NULL, 10) : -1;
	m->gid = *f[6] ? strtol(f[6], NULL, 10) : -1;
	m->size = *f[7] ? strtoull(f[7], NULL, 10) : 0;
	if (!(m->target = strdup(f[1])) || !(m->source = strdup(f[2])))
		return -1;
	m->dlen = n - at;
	if (!(m->data = malloc(m->dlen + 1)))
		return -1;
	memcpy(m->data, p + at, m->dlen);
	m->data[m->dlen] = 0;
	return 0;
}

int
run_parse(unsigned char *p, size_t n, struct run *r)
{
	size_t i = 0;

	memset(r, 0, sizeof *r);
	while (i < n) {
		uint32_t len;
		unsigned char tag;
		char *s;

		if (n - i < 5)
			return -1;
		tag = p[i];
		len = hypr_proto_get32(p + i + 1);
		i += 5;
		if (len > n - i)
			return -1;
		if (tag == HYPR_TAG_MOUNT) {
			struct mnt *nm = realloc(r->mounts, (r->nmounts + 1) * sizeof *nm);
			if (!nm)
				return -1;
			r->mounts = nm;
			if (parse_mount((const char *)p + i, len, &r->mounts[r->nmounts++]) < 0)
				return -1;
			i += len;
			continue;
		}
		if (!(s = malloc(len + 1)))
			return -1;
		memcpy(s, p + i, len);
		s[len] = 0;
		i += len;
		switch (tag) {
		case HYPR_TAG_ARGV:
			if (push(&r->argv, &r->nargv, s) < 0)
				return -1;
			break;
		case HYPR_TAG_ENV:
			if (push(&r->env, &r->nenv, s) < 0)
				return -1;
			break;
		case HYPR_TAG_HOST:
			if (push(&r->hosts, &r->nhosts, s) < 0)
				return -1;
			break;
		case HYPR_TAG_CWD: free(r->cwd); r->cwd = s; break;
		case HYPR_TAG_USER: free(r->user); r->user = s; break;
		case HYPR_TAG_HOSTNAME: free(r->hostname); r->hostname = s; break;
		case HYPR_TAG_TIME: r->time_ns = atoll(s); free(s); break;
		case HYPR_TAG_NET: r->net = s[0] == '1'; free(s); break;
		case HYPR_TAG_TTY: r->tty = s[0] == '1'; free(s); break;
		case HYPR_TAG_STDIN: r->stdin_open = s[0] == '1'; free(s); break;
		case HYPR_TAG_EXEC: r->exec = s[0] == '1'; free(s); break;
		case HYPR_TAG_WINSIZE:
			if (sscanf(s, "%u %u", &r->rows, &r->cols) != 2)
				r->rows = r->cols = 0;
			free(s);
			break;
		default: free(s); break;
		}
	}
	if (r->nargv == 0)
		return -1;
	if (!r->env)
		push(&r->env, &r->nenv, NULL), r->nenv = 0;
	return 0;
}

void
run_free(struct run *r)
{
	for (size_t i = 0; i < r->nargv; i++)
		free(r->argv[i]);
	for (size_t i = 0; i < r->nenv; i++)
		free(r->env[i]);
	for (size_t i = 0; i < r->nhosts; i++)
		free(r->hosts[i]);
	for (size_t i = 0; i < r->nmounts; i++) {
		struct mnt *m = &r->mounts[i];
		free(m->target);
		free(m->source);
		free(m->canon);
		if (m->data)
			memset(m->data, 0, m->dlen);	/* a secret: gone */
		free(m->data);
	}
	free(r->argv);
	free(r->env);
	free(r->hosts);
	free(r->mounts);
	free(r->cwd);
	free(r->user);
	free(r->hostname);
}

/* ---- the root ---- */

/* lowerdir for a new layer on top of layers 1..n-1, relative to L */
static int
lowerdir(unsigned n, int with_m, char *buf, size_t cap)
{
	size_t used = 0;

	if (with_m) {
		if (cap < 3)
			return -1;
		memcpy(buf, "m:", 2);
		used = 2;
	}
	for (unsigned k = n - 1; k >= 1; k--) {
		int w = snprintf(buf + used, cap - used, "%u:", k);
		if (w < 0 || (size_t)w >= cap - used)
			return -1;
		used += (size_t)w;
	}
	if (snprintf(buf + used, cap - used, "i:b") >= (int)(cap - used))
		return -1;
	return 0;
}

int durable_upper;

/* view: 0 the step's root, 1 the same with the mount point layer m, 2 the
 * lowers alone, read-only (to resolve mount targets: a volatile overlay's
 * workdir cannot be mounted twice) */
static int
mount_overlay(unsigned n, int view, char *err, size_t errlen)
{
	char opts[4096 + 256], lower[4096];

	if (lowerdir(n, view == 1, lower, sizeof lower) < 0) {
		snprintf(err, errlen, "too many layers for one overlay (%u)", n);
		return -1;
	}
	if (view == 2)
		snprintf(opts, sizeof opts, "lowerdir=%s,redirect_dir=off,index=off,metacopy=off",
		    lower);
	else
		snprintf(opts, sizeof opts, "lowerdir=%s,upperdir=%u,workdir=w/%u,"
		    "redirect_dir=off,index=off,metacopy=off%s", lower, n, n,
		    durable_upper ? "" : ",volatile");
	/* nodev: a block node a step makes for the build's disks stays dead */
	if (chdir(L) < 0 || mount("overlay", R, "overlay", MS_NODEV, opts) < 0) {
		snprintf(err, errlen, "overlay mount: %s", strerror(errno));
		(void)!chdir("/");
		return -1;
	}
	(void)!chdir("/");
	return 0;
}

/* A mount target as the step would reach it: the image's symbolic links
 * followed inside R (BuildKit resolves targets in the root fs as well).
 * out gets "/a/b" with no link in it; *exists whether it is there (then *st). */
static int
resolve_target(const char *path, char *out, size_t cap, int *exists, struct stat *st)
{
	char todo[PATH_MAX * 2], cur[PATH_MAX] = "", p[PATH_MAX + NAME_MAX + 8], link[PATH_MAX];
	int hops = 0;

	*exists = 0;
	if (snprintf(todo, sizeof todo, "%s", path) >= (int)sizeof todo)
		return -1;
	for (;;) {
		char *s = todo, comp[NAME_MAX + 1];
		size_t k;

		while (*s == '/')
			s++;
		if (!*s)
			break;
		k = strcspn(s, "/");
		if (k > NAME_MAX)
			return errno = ENAMETOOLONG, -1;
		memcpy(comp, s, k);
		comp[k] = 0;
		memmove(todo, s + k, strlen(s + k) + 1);
		if (!strcmp(comp, "."))
			continue;
		if (!strcmp(comp, "..")) {
			char *sl = strrchr(cur, '/');
			if (sl)
				*sl = 0;
			continue;
		}
		if (strlen(cur) + 1 + k >= sizeof cur)
			return errno = ENAMETOOLONG, -1;
		snprintf(p, sizeof p, R "%s/%s", cur, comp);
		if (lstat(p, st) < 0) {
			if (errno != ENOENT)
				return -1;
			/* missing from here on: the rest is made, literally */
			strcat(cur, "/");
			strcat(cur, comp);
			*exists = -1;
			continue;
		}
		if (*exists == 0 && S_ISLNK(st->st_mode)) {
			ssize_t l = readlink(p, link, sizeof link - 1);
			char rest[sizeof todo];

			if (l < 0 || ++hops > 40)
				return errno = ELOOP, -1;
			link[l] = 0;
			if (link[0] == '/')
				cur[0] = 0;
			if (snprintf(rest, sizeof rest, "%s/%s", link, todo) >= (int)sizeof rest)
				return errno = ENAMETOOLONG, -1;
			memcpy(todo, rest, sizeof todo);
			continue;
		}
		if (*exists == 0 && todo[strspn(todo, "/")] && !S_ISDIR(st->st_mode))
			return errno = ENOTDIR, -1;
		strcat(cur, "/");
		strcat(cur, comp);
	}
	if (!cur[0])
		strcpy(cur, "/");
	if (snprintf(out, cap, "%s", cur) >= (int)cap)
		return errno = ENAMETOOLONG, -1;
	if (*exists == 0) {
		snprintf(p, sizeof p, R "%s", cur);
		if (lstat(p, st) < 0)
			return -1;
		*exists = 1;
	} else {
		*exists = 0;
	}
	return 0;
}

/* In the mount point layer: the path's directories, with the metadata of
 * those the image has (m shadows them for this step), then the entry. */
static int
make_point(const char *canon, int isfile)
{
	char m[PATH_MAX + 8], r[PATH_MAX + 8];
	const char *s = canon;

	while (*s) {
		const char *e;
		struct stat st;
		int last;

		while (*s == '/')
			s++;
		if (!*s)
			break;
		e = s + strcspn(s, "/");
		last = !*e;
		snprintf(m, sizeof m, L "/m/%.*s", (int)(e - canon), canon);
		snprintf(r, sizeof r, R "/%.*s", (int)(e - canon), canon);
		if (last && isfile) {
			int fd = open(m, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
			if (fd < 0)
				return -1;
			close(fd);
		} else if (mkdir(m, 0755) < 0 && errno != EEXIST) {
			return -1;
		}
		if (lstat(r, &st) == 0) {
			struct timespec ts[2] = { st.st_atim, st.st_mtim };
			if (lchown(m, st.st_uid, st.st_gid) < 0 || chmod(m, st.st_mode & 07777) < 0)
				return -1;
			utimensat(AT_FDCWD, m, ts, AT_SYMLINK_NOFOLLOW);
		}
		s = e;
	}
	return 0;
}

/* Resolve every mount target (with R mounted without m), then build m. */
static int
mount_points(struct run *r, char *err, size_t errlen)
{
	guest_rm_rf(L "/m");
	if (mkdir(L "/m", 0755) < 0) {
		snprintf(err, errlen, "mount points: %s", strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < r->nmounts; i++) {
		struct mnt *mt = &r->mounts[i];
		char canon[PATH_MAX];
		struct stat st, ss;
		int exists;

		mt->isfile = mt->type == 's' ||
		    (mt->type == 'b' && stat(mt->source, &ss) == 0 && !S_ISDIR(ss.st_mode)) ||
		    (mt->type == 'p' && strchr(mt->source, '/'));
		if (resolve_target(mt->target, canon, sizeof canon, &exists, &st) < 0) {
			snprintf(err, errlen, "--mount target %s: %s", mt->target, strerror(errno));
			return -1;
		}
		if (!strcmp(canon, "/")) {
			snprintf(err, errlen, "--mount target %s: cannot mount over the root", mt->target);
			return -1;
		}
		if (exists && (!S_ISDIR(st.st_mode)) != mt->isfile) {
			snprintf(err, errlen, "--mount target %s: %s", mt->target,
			    mt->isfile ? "is a directory" : "not a directory");
			return -1;
		}
		if (!(mt->canon = strdup(canon)) || (!exists && make_point(canon, mt->isfile) < 0)) {
			snprintf(err, errlen, "--mount target %s: %s", mt->target, strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* The agent's /etc files of a step, written to /run only when they change. */
static void
bind_etc(const char *name, const char *content)
{
	static char *last[3];
	static const char *const names[3] = { "hosts", "hostname", "resolv.conf" };
	char src[128], dst[128];
	struct stat st;
	int k = 0;

	while (k < 2 && strcmp(names[k], name))
		k++;
	snprintf(src, sizeof src, "/run/%s", name);
	snprintf(dst, sizeof dst, R "/etc/%s", name);
	if (!last[k] || strcmp(last[k], content)) {
		free(last[k]);
		last[k] = strdup(content);
		write_file(src, content);
	}
	/* only onto a real file: a symlink target could lead anywhere */
	if (lstat(dst, &st) == 0 && S_ISREG(st.st_mode))
		mount(src, dst, NULL, MS_BIND, NULL);
}

/* /proc (its knobs read-only, as Docker) and /dev in the root at R */
static int
root_mounts(char *err, size_t errlen)
{
	struct stat st;

	if (lstat(R "/proc", &st) == 0 && S_ISDIR(st.st_mode) &&
	    mount("proc", R "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) == 0) {
		/* as Docker: the kernel's knobs are read-only to a step */
		static const char *const ro[] = { R "/proc/sys", R "/proc/sysrq-trigger" };
		for (size_t i = 0; i < sizeof ro / sizeof *ro; i++)
			if (mount(ro[i], ro[i], NULL, MS_BIND, NULL) == 0)
				mount(NULL, ro[i], NULL, MS_BIND | MS_REMOUNT | MS_RDONLY |
				    MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	}
	if (lstat(R "/dev", &st) == 0 && S_ISDIR(st.st_mode) &&
	    mount("/run/dev", R "/dev", NULL, MS_BIND | MS_REC, NULL) < 0) {
		snprintf(err, errlen, "/dev: %s", strerror(errno));
		return -1;
	}
	return 0;
}

int
step_root(unsigned n, struct run *r, char *err, size_t errlen)
{
	const char *hn = r->hostname && *r->hostname ? r->hostname : "hypr";
	char buf[8192];
	size_t used;

	snprintf(buf, sizeof buf, L "/%u", n);
	mkdir(buf, 0755);
	snprintf(buf, sizeof buf, L "/w/%u", n);
	mkdir(buf, 0755);
	if (r->nmounts) {
		/* targets are resolved in the lowers' view, then m joins it */
		int rc;
		if (mount_overlay(n, 2, err, errlen) < 0)
			return -1;
		rc = mount_points(r, err, errlen);
		umount2(R, MNT_DETACH);
		if (rc < 0 || mount_overlay(n, 1, err, errlen) < 0)
			return -1;
	} else if (mount_overlay(n, 0, err, errlen) < 0) {
		return -1;
	}
	if (root_mounts(err, errlen) < 0)
		return -1;
	used = (size_t)snprintf(buf, sizeof buf,
	    "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t%s\n", hn);
	for (size_t i = 0; i < r->nhosts && used < sizeof buf; i++)
		used += (size_t)snprintf(buf + used, sizeof buf - used, "%s\n", r->hosts[i]);
	bind_etc("hosts", buf);
	snprintf(buf, sizeof buf, "%s\n", hn);
	bind_etc("hostname", buf);
	bind_etc("resolv.conf", r->net ? "nameserver " GUEST_DNS "\n" : "");
	return 0;
}

void
step_unmount(void)
{
	if (umount2(R, MNT_DETACH) < 0)
		logmsg("umount %s: %s", R, strerror(errno));
}

pid_t
step_warm(void)
{
	static char *argv[] = { "/bin/sh", "-c", ":", NULL };
	struct run r = { .argv = argv, .nargv = 3 };
	struct child_io io = { .in = -1, .status = -1 };
	char err[256];
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	io.out = io.err = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (io.out < 0 || unshare(CLONE_NEWNS) < 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount_overlay(1, 2, err, sizeof err) < 0 || root_mounts(err, sizeof err) < 0)
		_exit(125);
	step_child(&r, &io);
}

/* ---- user resolution, in the child after chroot ---- */

static int
all_digits(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return 0;
	return 1;
}

/* Field k (0-based) of a colon-separated line, copied into out. */
static const char *
field(const char *line, int k, char *out, size_t cap)
{
	const char *s = line;
	size_t n;

	for (int i = 0; i < k; i++) {
		s = strchr(s, ':');
		if (!s)
			return NULL;
		s++;
	}
	n = strcspn(s, ":\n");
	if (n >= cap)
		n = cap - 1;
	memcpy(out, s, n);
	out[n] = 0;
	return out;
}

struct who {
	uid_t uid;
	gid_t gid;
	gid_t groups[64];
	int ngroups;
	char home[512];
};

static int
resolve_user(const char *spec, struct who *w, char *err, size_t errlen)
{
	char user[256], group[256] = "", line[4096], f0[256], f2[64], f3[64], f5[512];
	char uname[256] = "";
	const char *colon;
	int have_group = 0, found = 0;
	FILE *f;

	memset(w, 0, sizeof *w);
	snprintf(w->home, sizeof w->home, "/");
	if (!spec || !*spec)
		spec = "0";
	colon = strchr(spec, ':');
	snprintf(user, sizeof user, "%.*s", colon ? (int)(colon - spec) : (int)strlen(spec), spec);
	if (colon) {
		snprintf(group, sizeof group, "%s", colon + 1);
		have_group = 1;
	}
	if ((f = fopen("/etc/passwd", "re"))) {
		while (fgets(line, sizeof line, f)) {
			if (!field(line, 0, f0, sizeof f0) || !field(line, 2, f2, sizeof f2) ||
			    !field(line, 3, f3, sizeof f3))
				continue;
			if (!strcmp(f0, user) || (all_digits(user) && !strcmp(f2, user))) {
				w->uid = (uid_t)strtoul(f2, NULL, 10);
				w->gid = (gid_t)strtoul(f3, NULL, 10);
				if (field(line, 5, f5, sizeof f5) && *f5)
					snprintf(w->home, sizeof w->home, "%s", f5);
				snprintf(uname, sizeof uname, "%s", f0);
				found = 1;
				break;
			}
		}
		fclose(f);
	}
	if (!found) {
		if (!all_digits(user)) {
			snprintf(err, errlen, "unable to find user %s: no matching entries in passwd file", user);
			return -1;
		}
		w->uid = (uid_t)strtoul(user, NULL, 10);
		w->gid = 0;
	}
	if (have_group) {
		int gfound = 0;
		if ((f = fopen("/etc/group", "re"))) {
			while (fgets(line, sizeof line, f)) {
				if (!field(line, 0, f0, sizeof f0) || !field(line, 2, f2, sizeof f2))
					continue;
				if (!strcmp(f0, group) || (all_digits(group) && !strcmp(f2, group))) {
					w->gid = (gid_t)strtoul(f2, NULL, 10);
					gfound = 1;
					break;
				}
			}
			fclose(f);
		}
		if (!gfound) {
			if (!all_digits(group)) {
				snprintf(err, errlen, "unable to find group %s: no matching entries in group file", group);
				return -1;
			}
			w->gid = (gid_t)strtoul(group, NULL, 10);
		}
		w->groups[0] = w->gid;
		w->ngroups = 1;
		return 0;
	}
	/* no explicit group: primary plus every group listing the user */
	w->groups[0] = w->gid;
	w->ngroups = 1;
	if (uname[0] && (f = fopen("/etc/group", "re"))) {
		char members[4096];
		while (fgets(line, sizeof line, f) && w->ngroups < 64) {
			if (!field(line, 2, f2, sizeof f2) || !field(line, 3, members, sizeof members))
				continue;
			for (char *tok = strtok(members, ","); tok; tok = strtok(NULL, ",")) {
				if (!strcmp(tok, uname)) {
					gid_t g = (gid_t)strtoul(f2, NULL, 10);
					int dup = 0;
					for (int i = 0; i < w->ngroups; i++)
						dup |= w->groups[i] == g;
					if (!dup)
						w->groups[w->ngroups++] = g;
					break;
				}
			}
		}
		fclose(f);
	}
	return 0;
}

static int
has_env(char **env, const char *key)
{
	size_t k = strlen(key);

	for (; env && *env; env++)
		if (!strncmp(*env, key, k) && (*env)[k] == '=')
			return 1;
	return 0;
}

/* Docker's default capability set: RUN gets what it gets under Docker (no
 * mount, no reboot, no module loading, no raw disk access beyond mknod). */
#define DOCKER_CAPS ((1ull << CAP_CHOWN) | (1ull << CAP_DAC_OVERRIDE) | \
	(1ull << CAP_FOWNER) | (1ull << CAP_FSETID) | (1ull << CAP_KILL) | \
	(1ull << CAP_SETGID) | (1ull << CAP_SETUID) | (1ull << CAP_SETPCAP) | \
	(1ull << CAP_NET_BIND_SERVICE) | (1ull << CAP_NET_RAW) | \
	(1ull << CAP_SYS_CHROOT) | (1ull << CAP_MKNOD) | (1ull << CAP_AUDIT_WRITE) | \
	(1ull << CAP_SETFCAP))

static int
drop_bounding_caps(void)
{
	for (int c = 0; c < 64; c++) {
		if (DOCKER_CAPS & (1ull << c))
			continue;
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0) {
			if (errno == EINVAL)
				break;	/* past the kernel's last cap */
			return -1;
		}
	}
	return 0;
}

static int
set_root_caps(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2] = { { 0 } };

	d[0].effective = d[0].permitted = (uint32_t)DOCKER_CAPS;
	d[1].effective = d[1].permitted = (uint32_t)(DOCKER_CAPS >> 32);
	return (int)syscall(SYS_capset, &h, d);
}

/* ---- the child ---- */

static int
mount_one(const struct mnt *m, size_t i, char *err, size_t errlen)
{
	char t[PATH_MAX + 8], p[64], q[64];
	unsigned long ro = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV;

	snprintf(t, sizeof t, R "%s", m->canon);
	switch (m->type) {
	case 'b':
		if (m->rw && !m->isfile) {
			/* writes allowed, then thrown away with the tmpfs */
			char o[PATH_MAX + 128];
			snprintf(p, sizeof p, "/w/u%zu", i);
			snprintf(q, sizeof q, "/w/k%zu", i);
			if (mkdir(p, 0755) < 0 || mkdir(q, 0755) < 0)
				goto fail;
			snprintf(o, sizeof o, "lowerdir=%s,upperdir=%s,workdir=%s", m->source, p, q);
			if (mount("overlay", t, "overlay", MS_NODEV, o) < 0)
				goto fail;
			return 0;
		}
		if (mount(m->source, t, NULL, MS_BIND | MS_REC, NULL) < 0 ||
		    (!m->rw && mount(NULL, t, NULL, ro, NULL) < 0))
			goto fail;
		return 0;
	case 'c':
		if (m->mode >= 0)
			chmod(m->source, (mode_t)m->mode);
		if ((m->uid >= 0 || m->gid >= 0) &&
		    lchown(m->source, (uid_t)m->uid, (gid_t)m->gid) < 0)
			goto fail;
		if (mount(m->source, t, NULL, MS_BIND, NULL) < 0 ||
		    (m->ro && mount(NULL, t, NULL, ro, NULL) < 0))
			goto fail;
		return 0;
	case 't': {
		char o[64] = "mode=1777";
		if (m->size)
			snprintf(o, sizeof o, "mode=1777,size=%llu", (unsigned long long)m->size);
		if (mount("tmpfs", t, "tmpfs", MS_NOSUID | MS_NODEV, o) < 0)
			goto fail;
		return 0;
	}
	case 'p': {
		/* a host directory over 9p (hypr run -v): uncached, so the
		 * host and the guest see each other's writes at once */
		char o[160], tag[64], f[PATH_MAX + 80];
		const char *slash = strchr(m->source, '/');
		snprintf(o, sizeof o, "trans=virtio,version=9p2000.L,msize=%u,cache=none,access=client",
		    NINEP_MSIZE);
		if (!slash) {
			if (mount(m->source, t, "9p", MS_NODEV | (m->ro ? MS_RDONLY : 0), o) < 0)
				goto fail;
			return 0;
		}
		/* TAG/NAME: one file (hypr run -v FILE:PATH); its directory is
		 * shared, mounted in this step's /w (gone with the agent's
		 * mounts) and the file alone bound onto the target */
		snprintf(tag, sizeof tag, "%.*s", (int)(slash - m->source), m->source);
		snprintf(p, sizeof p, "/w/p%zu", i);
		snprintf(f, sizeof f, "%s%s", p, slash);
		if (mkdir(p, 0755) < 0 ||
		    mount(tag, p, "9p", MS_NODEV | (m->ro ? MS_RDONLY : 0), o) < 0 ||
		    mount(f, t, NULL, MS_BIND, NULL) < 0 || (m->ro && mount(NULL, t, NULL, ro, NULL) < 0))
			goto fail;
		return 0;
	}
	case 's': {
		/* in this step's own tmpfs: never on a disk, gone with the step */
		int fd;
		snprintf(p, sizeof p, "/w/s%zu", i);
		fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 || (m->dlen && write(fd, m->data, m->dlen) != (ssize_t)m->dlen)) {
			if (fd >= 0)
				close(fd);
			goto fail;
		}
		close(fd);
		if (chown(p, m->uid >= 0 ? (uid_t)m->uid : 0, m->gid >= 0 ? (gid_t)m->gid : 0) < 0 ||
		    chmod(p, m->mode >= 0 ? (mode_t)m->mode : 0400) < 0 ||
		    mount(p, t, NULL, MS_BIND, NULL) < 0 || mount(NULL, t, NULL, ro, NULL) < 0)
			goto fail;
		return 0;
	}
	}
	errno = EINVAL;
fail:
	snprintf(err, errlen, "--mount target %s: %s", m->target, strerror(errno));
	return -1;
}

/* The step's own namespaces: mounts (the agent's are detached, so no
 * chroot trick or leftover mount reaches /dev, the layers or the disks),
 * hostname, IPC, and unless the step has the network, a network of its own
 * with loopback only. The step root is moved onto / (pivot_root cannot
 * leave an initramfs) and becomes the process root. */
static int
enter_root(const struct run *r, char *err, size_t errlen)
{
	static const char *const agent[] = { "/dev", "/sys", "/proc", "/run", "/w", "/C", L };
	const char *hn = r->hostname && *r->hostname ? r->hostname : "hypr";
	struct stat st;

	if (unshare(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | (r->net ? 0 : CLONE_NEWNET)) < 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		goto fail;
	if (r->nmounts) {
		if (mount("tmpfs", "/w", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700") < 0)
			goto fail;
		for (size_t i = 0; i < r->nmounts; i++)
			if (mount_one(&r->mounts[i], i, err, errlen) < 0)
				return -1;
	}
	if (!r->net)
		lo_up();
	if (sethostname(hn, strlen(hn)) < 0)
		goto fail;
	/* sysfs shows the network namespace that mounts it: this one */
	if (lstat(R "/sys", &st) == 0 && S_ISDIR(st.st_mode))
		mount("sysfs", R "/sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	for (size_t i = 0; i < sizeof agent / sizeof *agent; i++)
		if (umount2(agent[i], MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
			goto fail;
	if (chdir(R) < 0 || mount(".", "/", NULL, MS_MOVE, NULL) < 0 ||
	    chroot(".") < 0 || chdir("/") < 0)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "%s", strerror(errno));
	return -1;
}

/* hypr exec: the main process's namespaces; setns into its mount
 * namespace also makes its root (the image) ours. */
static int
join_root(pid_t pid, char *err, size_t errlen)
{
	static const char *const ns[] = { "ipc", "uts", "net", "mnt" };
	char p[64];

	for (size_t i = 0; i < sizeof ns / sizeof *ns; i++) {
		int fd;
		snprintf(p, sizeof p, "/proc/%d/ns/%s", (int)pid, ns[i]);
		if ((fd = open(p, O_RDONLY | O_CLOEXEC)) < 0 || setns(fd, 0) < 0) {
			snprintf(err, errlen, "%s: %s", p, strerror(errno));
			return -1;
		}
		close(fd);
	}
	if (chdir("/") < 0) {
		snprintf(err, errlen, "/: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* Could not start: say why on stderr and on the status pipe, exit. */
static __attribute__((noreturn, format(printf, 3, 4))) void
child_fail(const struct child_io *io, int code, const char *fmt, ...)
{
	char msg[1200];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof msg)
		n = sizeof msg - 1;
	dprintf(2, "%s\n", msg);
	if (io->status >= 0)
		(void)!write(io->status, msg, (size_t)n);
	_exit(code);
}

void
step_child(struct run *r, const struct child_io *io)
{
	char err[1024];
	struct who w;
	sigset_t none;
	int fd;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	setsid();
	if (io->tty) {
		/* the terminal becomes ours: ^C reaches our process group */
		ioctl(io->out, TIOCSCTTY, 0);
		dup2(io->out, 0);
		dup2(io->out, 1);
		dup2(io->out, 2);
	} else {
		dup2(io->out, 1);
		dup2(io->err, 2);
		if (io->in >= 0)
			dup2(io->in, 0);
	}
	if (io->join > 0 ? join_root(io->join, err, sizeof err) < 0 :
	    enter_root(r, err, sizeof err) < 0)
		child_fail(io, 125, "hypr-init: %s: %s", io->join > 0 ? "exec" : "step root", err);
	if (!io->tty && io->in < 0) {
		fd = open("/dev/null", O_RDONLY);
		if (fd < 0)
			fd = open("/", O_RDONLY | O_DIRECTORY);	/* any fd 0 rather than none */
		dup2(fd, 0);
		if (fd > 2)
			close(fd);
	}
	if (resolve_user(r->user, &w, err, sizeof err) < 0)
		child_fail(io, 125, "%s", err);
	if (r->cwd && *r->cwd) {
		char p[4096];
		snprintf(p, sizeof p, "%s", r->cwd);
		for (char *s = p + 1; *s; s++)
			if (*s == '/') {
				*s = 0;
				mkdir(p, 0755);
				*s = '/';
			}
		mkdir(p, 0755);
		if (chdir(p) < 0)
			child_fail(io, 125, "hypr-init: workdir %s: %s", p, strerror(errno));
	}
	if (io->tty)
		(void)!fchown(0, w.uid, (gid_t)-1);	/* as runc: the user owns its terminal */
	if (drop_bounding_caps() < 0)
		child_fail(io, 125, "hypr-init: capabilities: %s", strerror(errno));
	if (setgroups((size_t)w.ngroups, w.groups) < 0 || setgid(w.gid) < 0 || setuid(w.uid) < 0)
		child_fail(io, 125, "hypr-init: user %s: %s", r->user ? r->user : "0", strerror(errno));
	if (w.uid == 0 && set_root_caps() < 0)
		child_fail(io, 125, "hypr-init: capabilities: %s", strerror(errno));
	if (!has_env(r->env, "PATH"))
		push(&r->env, &r->nenv, strdup("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
	if (!has_env(r->env, "HOME")) {
		char h[600];
		snprintf(h, sizeof h, "HOME=%s", w.home);
		push(&r->env, &r->nenv, strdup(h));
	}
	if (!has_env(r->env, "HOSTNAME") && r->hostname) {
		char h[600];
		snprintf(h, sizeof h, "HOSTNAME=%s", r->hostname);
		push(&r->env, &r->nenv, strdup(h));
	}
	environ = r->env;
	execvp(r->argv[0], r->argv);
	child_fail(io, errno == ENOENT ? 127 : 126, "hypr-init: exec %s: %s", r->argv[0],
	    strerror(errno));
}
