/* hypr-vmctl - drive one build VM by hand: boot, RUN steps, diff, import.
 * A host tool: a debug and test harness for lib/vm.c (tests/vm.bats,
 * bench/vm.sh), see hypr-guest(7).
 *
 *   hypr-vmctl [-b BASE.sqfs] [-a kvm|tcg] [-N] [-c CACHE.ext4]... [-k] [-T] OP [; OP]...
 *   OP: run [-u USER] [-w DIR] [-e K=V]... [-H HOST] [-t SECS] [-n] [-A 'IP NAME']...
 *           [-m MOUNT]... [--] ARGV...
 *       sh  [same options] 'shell command'      (run /bin/sh -c ...)
 *       diff FILE [EPOCH]                       (last layer as a tar)
 *       import FILE                             (stack a tar as a layer)
 *       mountdata FILE NAME                     (a bind source, or cacheK's seed)
 *   -N gives the VM a network device, -n a step the network; MOUNT is
 *   type=bind|cache|tmpfs|secret,target=P[,source=S][,rw][,ro][,mode=M]
 *   [,uid=U][,gid=G][,size=BYTES][,data=TEXT] (hypr-guest(7)).
 *
 * A step that exits non-zero stops the sequence and becomes the exit status
 * (with -k the sequence goes on and the last status wins). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "err.h"
#include "tool.h"
#include "vm.h"


static void
output(void *arg, int fd, const char *buf, size_t len)
{
	(void)arg;
	while (len > 0) {
		ssize_t w = write(fd, buf, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		buf += w;
		len -= (size_t)w;
	}
}

static __attribute__((noreturn)) void
usage(FILE *f, int code)
{
	fprintf(f, "usage: hypr-vmctl [-b BASE.sqfs] [-a kvm|tcg] [-N] [-c CACHE.ext4]... [-k] [-T]"
	    " OP [\\; OP]...\n"
	    "  run [-u USER] [-w DIR] [-e K=V]... [-H HOST] [-t SECS] [-n] [-A 'IP NAME']...\n"
	    "      [-m type=T,target=P[,source=S][,rw][,ro][,mode=M][,uid=U][,gid=G][,size=N]"
	    "[,data=X]]... [--] ARGV...\n"
	    "  sh [run options] 'COMMAND'\n"
	    "  diff FILE [EPOCH]\n"
	    "  import FILE\n"
	    "  mountdata FILE NAME\n");
	exit(code);
}

static struct hypr_vm *vm;

/* -m type=...,target=...: a mount for hypr_vm_run (strings point into spec) */
static int
parse_mount(char *spec, struct hypr_vm_mount *m)
{
	memset(m, 0, sizeof *m);
	m->mode = m->uid = m->gid = -1;
	for (char *kv = strtok(spec, ","); kv; kv = strtok(NULL, ",")) {
		char *v = strchr(kv, '=');
		if (v)
			*v++ = 0;
		if (!strcmp(kv, "type") && v)
			m->type = !strcmp(v, "bind") ? 'b' : !strcmp(v, "cache") ? 'c' :
			    !strcmp(v, "tmpfs") ? 't' : !strcmp(v, "secret") ? 's' : 0;
		else if (!strcmp(kv, "target") && v)
			m->target = v;
		else if (!strcmp(kv, "source") && v)
			m->source = v;
		else if (!strcmp(kv, "rw"))
			m->rw = 1;
		else if (!strcmp(kv, "ro"))
			m->ro = 1;
		else if (!strcmp(kv, "mode") && v)
			m->mode = strtol(v, NULL, 8);
		else if (!strcmp(kv, "uid") && v)
			m->uid = atol(v);
		else if (!strcmp(kv, "gid") && v)
			m->gid = atol(v);
		else if (!strcmp(kv, "size") && v)
			m->size = strtoull(v, NULL, 10);
		else if (!strcmp(kv, "data") && v) {
			m->data = v;
			m->dlen = strlen(v);
		} else
			return -1;
	}
	return m->type && m->target ? 0 : -1;
}

static __attribute__((noreturn)) void
fail(const struct hypr_err *e)
{
	if (vm)
		hypr_vm_kill(vm);
	hypr_die_err(e);
}

int
main(int argc, char *argv[])
{
	struct hypr_vm_opts o = { 0 };
	struct hypr_err e = { 0 };
	int keep = 0, timing = 0, c, last = 0;
	const char *warning;
	double t;

	hypr_prog = "hypr-vmctl";
	struct hypr_vm_cache caches[HYPR_VM_MAX_CACHES];

	while ((c = getopt(argc, argv, "+b:a:c:NkTh")) != -1) {
		switch (c) {
		case 'N': o.net = 1; break;
		case 'c':
			if (o.ncaches == HYPR_VM_MAX_CACHES)
				usage(stderr, 2);
			caches[o.ncaches++].image = optarg;
			o.caches = caches;
			break;
		case 'b': o.base = optarg; break;
		case 'a': o.accel = optarg; break;
		case 'k': keep = 1; break;
		case 'T': timing = 1; break;
		case 'h': usage(stdout, 0);
		default: usage(stderr, 2);
		}
	}
	if (optind >= argc)
		usage(stderr, 2);
	/* as hypr-exec should: a gone stdout reader kills the VM at once */
	if (fcntl(STDOUT_FILENO, F_GETFD) >= 0)
		o.watch_fd = STDOUT_FILENO;
	t = hypr_now();
	if (hypr_vm_start(&vm, &o, &e) < 0)
		fail(&e);
	if ((warning = hypr_vm_warning(vm)))
		fprintf(stderr, "hypr-vmctl: warning: %s\n", warning);
	if (timing)
		fprintf(stderr, "hypr-vmctl: boot %.3f s (ready %.3f s) accel %s, kvm canary %s, "
		    "snapshot %s\n", hypr_now() - t, hypr_vm_boot_seconds(vm), hypr_vm_accel(vm),
		    (const char *[]){ "failed", "none", "passed" }[hypr_vm_canary(vm) + 1],
		    hypr_vm_snapshot(vm));

	for (int i = optind; i < argc;) {
		const char *op = argv[i++];
		int end = i;

		while (end < argc && strcmp(argv[end], ";"))
			end++;
		t = hypr_now();
		if (!strcmp(op, "run") || !strcmp(op, "sh")) {
			struct hypr_vm_run r = { .epoch = -1, .output = output };
			char **env = calloc((size_t)(end - i + 1), sizeof *env), **args;
			char **hosts = calloc((size_t)(end - i + 1), sizeof *hosts);
			struct hypr_vm_mount *mounts = calloc((size_t)(end - i + 1), sizeof *mounts);
			int nh = 0;
			char *shargv[4] = { "/bin/sh", "-c", NULL, NULL };
			int ne = 0, status;

			if (!env || !hosts || !mounts)
				hypr_die(HYPR_EXIT_SYSTEM, "out of memory");
			while (i < end && argv[i][0] == '-') {
				const char *f = argv[i];
				if (!strcmp(f, "--")) {
					i++;
					break;
				}
				if (!strcmp(f, "-n")) {
					r.net = 1;
					i++;
					continue;
				}
				if (i + 1 >= end)
					usage(stderr, 2);
				if (!strcmp(f, "-u"))
					r.user = argv[i + 1];
				else if (!strcmp(f, "-w"))
					r.cwd = argv[i + 1];
				else if (!strcmp(f, "-e"))
					env[ne++] = argv[i + 1];
				else if (!strcmp(f, "-H"))
					r.hostname = argv[i + 1];
				else if (!strcmp(f, "-t"))
					r.timeout = atof(argv[i + 1]);
				else if (!strcmp(f, "-A"))
					hosts[nh++] = argv[i + 1];
				else if (!strcmp(f, "-m")) {
					if (parse_mount(argv[i + 1], (struct hypr_vm_mount *)&mounts[r.nmounts]) < 0)
						usage(stderr, 2);
					r.nmounts++;
				}
				else
					usage(stderr, 2);
				i += 2;
			}
			if (i >= end)
				usage(stderr, 2);
			r.env = env;
			r.hosts = hosts;
			r.mounts = mounts;
			if (!strcmp(op, "sh")) {
				if (end - i != 1)
					usage(stderr, 2);
				shargv[2] = argv[i];
				r.argv = shargv;
			} else {
				args = calloc((size_t)(end - i + 1), sizeof *args);
				if (!args)
					hypr_die(HYPR_EXIT_SYSTEM, "out of memory");
				for (int k = i; k < end; k++)
					args[k - i] = argv[k];
				r.argv = args;
			}
			if (hypr_vm_run(vm, &r, &status, &e) < 0)
				fail(&e);
			if (timing)
				fprintf(stderr, "hypr-vmctl: run %.3f s status %d\n", hypr_now() - t, status);
			if (r.argv != shargv)
				free((void *)r.argv);
			free(env);
			free(hosts);
			free(mounts);
			last = status;
			if (status != 0 && !keep) {
				if (hypr_vm_stop(vm, &e) < 0)
					hypr_die_err(&e);
				return status;
			}
		} else if (!strcmp(op, "diff")) {
			uint64_t len;
			int fd;
			if (end - i < 1 || end - i > 2)
				usage(stderr, 2);
			fd = open(argv[i], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
			if (fd < 0)
				hypr_die_errno("%s", argv[i]);
			if (hypr_vm_diff(vm, end - i == 2 ? atoll(argv[i + 1]) : -1, fd, &len, &e) < 0)
				fail(&e);
			if (close(fd) < 0)
				hypr_die_errno("%s", argv[i]);
			if (timing)
				fprintf(stderr, "hypr-vmctl: diff %.3f s %llu bytes\n", hypr_now() - t,
				    (unsigned long long)len);
		} else if (!strcmp(op, "mountdata")) {
			if (end - i != 2)
				usage(stderr, 2);
			if (hypr_vm_mount_data(vm, argv[i], argv[i + 1], &e) < 0)
				fail(&e);
		} else if (!strcmp(op, "import")) {
			if (end - i != 1)
				usage(stderr, 2);
			if (hypr_vm_import(vm, argv[i], &e) < 0)
				fail(&e);
			if (timing)
				fprintf(stderr, "hypr-vmctl: import %.3f s\n", hypr_now() - t);
		} else {
			usage(stderr, 2);
		}
		i = end + 1;
	}
	t = hypr_now();
	if (hypr_vm_stop(vm, &e) < 0)
		hypr_die_err(&e);
	if (timing)
		fprintf(stderr, "hypr-vmctl: stop %.3f s\n", hypr_now() - t);
	return last;
}
