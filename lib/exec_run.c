/* exec_run.c - RUN in the build VM: one VM per stage, booted on the stage's first
 * cache miss, layers made before the boot imported in order. */
#include "exec_int.h"

#include <archive.h>
#include <archive_entry.h>
#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "rootfs.h"
#include "squash.h"
#include "strbuf.h"
#include "vm.h"

int64_t
clamp_time(const struct ctx *c, int64_t t)
{
	return c->epoch >= 0 && t > c->epoch ? c->epoch : t;
}

/* A RUN's output line longer than this is clipped: its first LINE_KEEP
 * bytes are shown, then " [line clipped: N bytes]" with N the whole line's
 * length. Host memory stays bounded whatever a RUN prints (no newline in
 * 400 MB of output was held whole). */
#define LINE_KEEP (64 * 1024)

/* The step's output, an output event a line (hypr-events(5)). */
struct outbuf {
	struct hypr_events *ev;
	int n;			/* the #N of the step */
	struct hypr_strbuf line[3];	/* [1] stdout, [2] stderr: unfinished */
	uint64_t len[3];	/* the unfinished line's whole length */
};

/* Bytes pass as they are (NULs too: the driver's log keeps them); only a
 * terminal gets them escaped (events.c). */
static void
emit(struct outbuf *o, int i)
{
	struct hypr_strbuf *b = &o->line[i];

	hypr_events_put(o->ev, &(struct hypr_event){ .type = HYPR_EV_OUTPUT, .n = o->n,
	    .fd = i, .text = b->s ? b->s : "", .len = b->n,
	    .whole = o->len[i] > b->n ? o->len[i] : 0 });
	hypr_strbuf_reset(b);
	b->oom = 0;
	o->len[i] = 0;
}

static void
on_output(void *arg, int fd, const char *buf, size_t len)
{
	struct outbuf *o = arg;
	int i = fd == 1 ? 1 : 2;
	struct hypr_strbuf *b = &o->line[i];

	while (len > 0) {
		const char *nl = memchr(buf, '\n', len);
		size_t k = nl ? (size_t)(nl - buf) : len;

		if (b->n < LINE_KEEP)
			hypr_strbuf_addn(b, buf, k < LINE_KEEP - b->n ? k : LINE_KEEP - b->n);
		o->len[i] += k;
		if (nl) {
			emit(o, i);
			k++;
		}
		buf += k;
		len -= k;
	}
}

static void
flush_out(struct outbuf *o)
{
	for (int i = 1; i < 3; i++) {
		if (o->len[i])
			emit(o, i);
		free(o->line[i].s);
		o->line[i] = (struct hypr_strbuf){ 0 };
	}
}

static int
only_heredoc(const char *cmd, const char *name)
{
	while (isspace((unsigned char)*cmd))
		cmd++;
	if (strncmp(cmd, "<<", 2) != 0)
		return 0;
	cmd += 2;
	if (*cmd == '-')
		cmd++;
	while (*cmd == ' ' || *cmd == '\t' || *cmd == '\r')
		cmd++;		/* "RUN <<  EOF" is a heredoc too (BuildKit) */
	if (*cmd == '"' || *cmd == '\'')
		cmd++;
	if (strncmp(cmd, name, strlen(name)) != 0)
		return 0;
	cmd += strlen(name);
	if (*cmd == '"' || *cmd == '\'')
		cmd++;
	while (isspace((unsigned char)*cmd))
		cmd++;
	return *cmd == '\0';
}

/* argv of the step: exec form as written; shell form SHELL + [text]; a RUN
 * that is only a heredoc runs the heredoc as the script. */
static json_t *
run_argv(struct stage *st, const struct hypr_plan_instr *instr)
{
	const struct hypr_plan_heredoc *hd = instr->heredocs;
	json_t *argv;
	char *text;

	if (instr->form && strcmp(instr->form, "exec") == 0)
		return strv_json(instr->args, instr->nargs);
	argv = shell_of(st);
	text = join_strv(instr->args, instr->nargs, " ");
	if (instr->nheredocs > 0 && text) {
		if (instr->nheredocs == 1 && only_heredoc(text, hd[0].name)) {
			json_array_append_new(argv, json_string(hd[0].content));
			free(text);
			return argv;
		}
		/* The shell reads the here-documents itself. */
		{
			char *full = strdup(text);

			for (size_t i = 0; i < instr->nheredocs; i++) {
				char *nf;
				const char *c = hd[i].content;
				size_t cl = strlen(c);

				if (full == NULL)
					break;
				if (asprintf(&nf, "%s\n%s%s%s", full, c,
				    cl && c[cl - 1] != '\n' ? "\n" : "", hd[i].name) < 0)
					nf = NULL;
				free(full);
				full = nf;
			}
			free(text);
			text = full;
		}
	}
	json_array_append_new(argv, json_string(text ? text : ""));
	free(text);
	return argv;
}

static char **
strv_of(json_t *a)
{
	size_t n = json_array_size(a), i;
	char **v = calloc(n + 1, sizeof(*v));
	json_t *x;

	if (v == NULL)
		return NULL;
	json_array_foreach(a, i, x)
		v[i] = strdup(json_string_value(x) ? json_string_value(x) : "");
	return v;
}

/* Config Env, then ARG values (and proxy build args) not set by ENV. */
static json_t *
run_env(struct ctx *c, struct stage *st)
{
	json_t *env = json_array(), *x;
	json_t *cenv = json_object_get(st->config, "Env");
	struct hypr_vars seen = { 0 };
	const char *k;
	size_t i;

	json_array_foreach(cenv, i, x) {
		if (json_is_string(x)) {
			json_array_append(env, x);
			hypr_vars_setkv(&seen, json_string_value(x));
		}
	}
	for (i = 0; i < st->args.n; i++) {
		const char *kv = st->args.kv[i], *eq = strchr(kv, '=');
		char name[256];

		if (eq == NULL || (size_t)(eq - kv) >= sizeof(name))
			continue;
		memcpy(name, kv, (size_t)(eq - kv));
		name[eq - kv] = '\0';
		if (hypr_vars_get(&seen, name) == NULL) {
			json_array_append_new(env, json_string(kv));
			hypr_vars_setkv(&seen, kv);
		}
	}
	json_object_foreach(c->build_args, k, x) {
		if (arg_is_proxy(k) && json_is_string(x) && hypr_vars_get(&seen, k) == NULL) {
			char *kv;

			if (asprintf(&kv, "%s=%s", k, json_string_value(x)) >= 0) {
				json_array_append_new(env, json_string(kv));
				free(kv);
			}
		}
	}
	hypr_vars_free(&seen);
	return env;
}

static void
strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

int
run_import_pending(struct ctx *c, struct stage *st, struct hypr_err *e)
{
	const char *w;

	if (layers_fetch(c, st->layers.v + st->imported, st->layers.n - st->imported, e) < 0)
		return -1;
	while (st->imported < st->layers.n) {
		const char *d = st->layers.v[st->imported].digest;
		char path[HYPR_PATH_BUF];

		if (hypr_blob_path(&c->root, d, path, sizeof(path), e) < 0 ||
		    hypr_vm_import(st->vm, path, e) < 0)
			return -1;
		st->imported++;
	}
	if ((w = hypr_vm_warning(st->vm)))
		exec_warn(c, "%s", w);
	return 0;
}

/* Whether a RUN has the network: its --network, else the build's. -1 for
 * a mode hypr refuses (with e set). */
static int
step_net(struct ctx *c, const struct hypr_plan_instr *instr, struct hypr_err *e)
{
	const char *net = hypr_plan_flag(instr, "network");

	if (net == NULL)
		return c->network;
	if (!strcmp(net, "none"))
		return 0;
	if (!strcmp(net, "default"))
		return 1;
	if (!strcmp(net, "host"))
		return hypr_err_set(e, HYPR_EXIT_INPUT, "RUN --network=host is not supported: "
		    "the build VM has no host network (use --network=default)");
	return hypr_err_set(e, HYPR_EXIT_INPUT, "RUN --network=%s: want default or none", net);
}

/* The cache ids of m not attached to the stage yet. */
static size_t
new_caches(const struct stage *st, const struct rmount *m, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		int seen = m[i].type != 'c';

		for (size_t j = 0; j < st->ncaches && !seen; j++)
			seen = !strcmp(st->caches[j].id, m[i].id);
		for (size_t j = 0; j < i && !seen; j++)
			seen = m[j].type == 'c' && !strcmp(m[j].id, m[i].id);
		k += !seen;
	}
	return k;
}

/* Before a boot: the stage's remaining RUNs, from the first one on, tell
 * whether its VM needs a network and which cache disks (attached and
 * locked now: disks cannot be added to a running VM). They are taken while
 * they fit in the VM's virtio devices (hypr_vm_cache_room); the first RUN
 * that does not fit restarts the VM when its turn comes. */
static int
boot_needs(struct ctx *c, struct stage *st, struct hypr_err *e)
{
	int first = 1;

	st->vm_net = 0;
	for (size_t i = st->pos; i < st->nall; i++) {
		const struct hypr_plan_instr *x = &st->all[i];
		struct rmount *m = NULL;
		size_t n = 0, want;
		struct hypr_err ig = { 0 };
		int net, room;

		if (strcmp(x->op, "RUN") != 0)
			continue;
		net = st->vm_net || step_net(c, x, &ig) == 1;
		/* a later step's bad mount is that step's error, not this one's */
		if (mounts_parse(c, st, x, &m, &n, &ig) < 0)
			continue;
		want = st->ncaches + new_caches(st, m, n);
		room = hypr_vm_cache_room(st->nbase > 0, net);
		if (want > (size_t)room) {
			mounts_free(m, n);
			if (first)
				return hypr_err_set(e, HYPR_EXIT_INPUT, "%zu cache mounts%s in one RUN: "
				    "the build VM has room for %d (QEMU's microvm has %d virtio devices)",
				    want, net ? " and a network" : "", room, HYPR_VM_TRANSPORTS);
			break;
		}
		first = 0;
		st->vm_net = net;
		for (size_t k = 0; k < n; k++)
			if (m[k].type == 'c' && mounts_prepare(c, st, x, &m[k], 1, 1, e) < 0) {
				mounts_free(m, n);
				return -1;
			}
		mounts_free(m, n);
	}
	return 0;
}

/* Start the stage's VM booting (hypr_vm_launch): what the RUNs from the
 * current step on need. */
static int
launch(struct ctx *c, struct stage *st, struct hypr_err *e)
{
	struct hypr_vm_opts o = { 0 };
	struct hypr_vm_cache vc[HYPR_VM_MAX_CACHES];
	struct hypr_squash_opts so = { .epoch = c->epoch };
	char sq[HYPR_PATH_BUF];
	const char **v;
	size_t n;

	if (stage_layer_digests(st, &v, &n, e) < 0)
		return -1;
	if (st->nbase > 0 && hypr_rootfs_squashfs(&c->root, v, st->nbase, &so, sq,
	    sizeof(sq), e) < 0) {
		free(v);
		return hypr_err_prefix(e, "base filesystem");
	}
	free(v);
	if (hypr_root_tmp(&c->root, st->vmdir, sizeof(st->vmdir), e, "vm.XXXXXX") < 0)
		return -1;
	if (mkdtemp(st->vmdir) == NULL)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "creating VM directory");
	if (boot_needs(c, st, e) < 0)
		return -1;
	for (size_t i = 0; i < st->ncaches; i++)
		vc[i].image = st->caches[i].image;
	o.caches = vc;
	o.ncaches = st->ncaches;
	o.net = st->vm_net;
	st->vm_caches = st->ncaches;
	o.base = st->nbase > 0 ? sq : NULL;
	o.tmpdir = st->vmdir;
	o.disk = c->disk;
	/* A gone reader of the steps stream (the driver or the next stage
	 * killed) stops the step and kills the VM at once (POLLERR/POLLHUP). */
	if (c->out.f && fcntl(fileno(c->out.f), F_GETFD) >= 0)
		o.watch_fd = fileno(c->out.f);
	if (hypr_vm_launch(&st->vm, &o, e) < 0) {
		rmdir(st->vmdir);
		st->vmdir[0] = '\0';
		return hypr_err_prefix(e, "starting the build VM");
	}
	c->vm_boots++;
	st->imported = st->nbase;
	if (getenv("HYPR_EXEC_DEBUG") != NULL)
		hypr_events_say(c->ev, HYPR_EV_INFO, c->stepno, 0, "build VM launched");
	return 0;
}

/* The stage's VM ready for a RUN: launched now, or earlier by
 * run_prestart, and its READY read. */
static int
boot(struct ctx *c, struct stage *st, struct hypr_err *e)
{
	const char *w;

	if (st->vm == NULL && launch(c, st, e) < 0)
		return -1;
	if (hypr_vm_ready(st->vm, e) < 0) {
		run_stop(c, st);
		return hypr_err_prefix(e, "starting the build VM");
	}
	if ((w = hypr_vm_warning(st->vm)))
		exec_warn(c, "%s", w);
	return 0;
}

void
run_prestart(struct ctx *c, struct stage *st)
{
	struct hypr_err ig = { 0 };

	if (st->vm != NULL || getenv("HYPR_NO_PRESTART"))
		return;
	for (size_t i = st->pos; i < st->nall; i++)
		if (strcmp(st->all[i].op, "RUN") == 0) {
			/* a failure here is the RUN's to report, when it boots */
			if (launch(c, st, &ig) < 0)
				run_stop(c, st);
			return;
		}
}

static int
tar_is_empty(const char *path)
{
	struct archive *a = archive_read_new();
	struct archive_entry *ent;
	int r, empty;

	archive_read_support_format_tar(a);
	/* names are bytes (OCI), not translated to this (C) locale */
	archive_read_set_options(a, "hdrcharset=BINARY");
	if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK) {
		archive_read_free(a);
		return 0;
	}
	r = archive_read_next_header(a, &ent);
	empty = r == ARCHIVE_EOF;
	archive_read_free(a);
	return empty;
}

static char *
created_by_run(struct stage *st, json_t *argv)
{
	char *cmd = join_words(argv, " "), *pre = NULL, *out;
	size_t nargs = 0;

	for (size_t i = 0; i < st->args.n; i++) {
		char *np;

		if (asprintf(&np, "%s %s", pre ? pre : "", st->args.kv[i]) < 0)
			np = NULL;
		free(pre);
		pre = np;
		nargs++;
	}
	if (nargs) {
		if (asprintf(&out, "RUN |%zu%s %s", nargs, pre ? pre : "", cmd ? cmd : "") < 0)
			out = NULL;
	} else if (asprintf(&out, "RUN %s", cmd ? cmd : "") < 0) {
		out = NULL;
	}
	free(pre);
	free(cmd);
	return out;
}

int
run_step(struct ctx *c, struct stage *st, const struct hypr_plan_instr *instr, struct step *s,
    struct hypr_err *e)
{
	json_t *argv = run_argv(st, instr), *env = run_env(c, st), *exp = NULL;
	struct hypr_vm_run r = { 0 };
	struct rmount *mts = NULL;
	struct hypr_vm_mount *vmts = NULL;
	size_t nmts = 0, nvmts = 0;
	int net;
	struct outbuf ob = { .ev = c->ev, .n = c->stepno };
	char **av = NULL, **ev = NULL, tmp[HYPR_PATH_BUF];
	const char *user = hypr_json_str(st->config, "User");
	const char *wd = hypr_json_str(st->config, "WorkingDir");
	int status = 0, fd = -1, rc = -1;
	struct timespec t0;
	uint64_t len = 0;

	s->created_by = created_by_run(st, argv);
	if ((net = step_net(c, instr, e)) < 0)
		goto out;
	/* bind sources are inputs: their content is in the key */
	if (mounts_parse(c, st, instr, &mts, &nmts, e) < 0 ||
	    mounts_prepare(c, st, instr, mts, nmts, 0, e) < 0)
		goto out;
	if (hypr_plan_flag_set(instr, "device"))
		exec_warn(c, "%s:%ld: RUN --device is not supported: running without the device",
		    c->dockerfile ? c->dockerfile : "Dockerfile", instr->line[0]);
	exp = json_pack("{s:O}", "argv", argv);
	/* absent unless used, so that keys of plain steps stay what they were */
	if (net)
		json_object_set_new(exp, "network", json_string("default"));
	if (nmts)
		json_object_set_new(exp, "mounts", mounts_key(mts, nmts));
	if (c->nhosts) {
		json_t *h = json_array();
		for (size_t i = 0; i < c->nhosts; i++)
			json_array_append_new(h, json_string(c->hosts[i]));
		json_object_set_new(exp, "hosts", h);
	}
	if (cache_key(c, st, instr, exp, NULL, s->key, e) < 0)
		goto out;
	if (cache_lookup(c, s)) {
		rc = 0;
		goto out;
	}
	if (boot(c, st, e) < 0)
		goto out;
	if (mounts_prepare(c, st, instr, mts, nmts, 1, e) < 0)
		goto out;
	/* a network or a cache disk the VM was not booted with: boot again,
	 * this step's disks first (their numbers change) */
	{
		int again = net && !st->vm_net;

		for (size_t i = 0; i < nmts; i++)
			again |= mts[i].type == 'c' && (size_t)mts[i].disk >= st->vm_caches;
		if (again) {
			run_stop(c, st);
			if (boot(c, st, e) < 0 || mounts_attach_caches(c, st, mts, nmts, e) < 0)
				goto out;
		}
	}
	if (run_import_pending(c, st, e) < 0)
		goto out;
	for (size_t i = 0; i < nmts; i++) {
		char name[64], blob[HYPR_PATH_BUF];

		if (mts[i].type != 'b')
			continue;
		snprintf(name, sizeof(name), "%.25s", mts[i].vmsource);
		if (hypr_map_get(&st->sent, name))
			continue;
		if (hypr_blob_path(&c->root, mts[i].digest, blob, sizeof(blob), e) < 0 ||
		    hypr_vm_mount_data(st->vm, blob, name, e) < 0 ||
		    hypr_map_set(&st->sent, name, (void *)1, NULL) < 0)
			goto out;
	}
	if (mounts_for_vm(mts, nmts, &vmts, &nvmts, env, e) < 0)
		goto out;
	if ((av = strv_of(argv)) == NULL || (ev = strv_of(env)) == NULL) {
		hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
		goto out;
	}
	r.argv = av;
	r.env = ev;
	r.cwd = wd && *wd ? wd : "/";
	r.user = user && *user ? user : NULL;
	r.timeout = c->step_timeout;
	r.epoch = c->epoch;
	r.output = on_output;
	r.output_arg = &ob;
	r.net = net;
	r.hosts = c->hosts;
	r.mounts = vmts;
	r.nmounts = nvmts;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (hypr_vm_run(st->vm, &r, &status, e) < 0) {
		flush_out(&ob);
		goto out;
	}
	flush_out(&ob);
	if (status != 0) {
		/* a disk error the guest saw as EIO: say what it was */
		if (hypr_vm_io_error(st->vm))
			hypr_err_set(e, HYPR_EXIT_SYSTEM, "exit code %d: %s", status,
			    hypr_vm_io_error(st->vm));
		else if (hypr_vm_disk_full(st->vm))
			hypr_err_set(e, HYPR_EXIT_STEP,
			    "exit code %d: the build disk is full (%.1f GiB; raise it with "
			    "--disk or HYPR_BUILD_DISK)", status,
			    (double)hypr_vm_disk_size(st->vm) / (double)(1ull << 30));
		else
			hypr_err_set(e, HYPR_EXIT_STEP, "exit code %d", status);
		goto out;
	}
	if (hypr_root_tmp(&c->root, tmp, sizeof(tmp), e, "diff.XXXXXX") < 0)
		goto out;
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
		hypr_err_errno(e, HYPR_EXIT_SYSTEM, "creating diff file");
		goto out;
	}
	if (hypr_vm_diff(st->vm, c->epoch, fd, &len, e) < 0) {
		close(fd);
		unlink(tmp);
		goto out;
	}
	if (len <= 10240 && tar_is_empty(tmp)) {
		close(fd);
		unlink(tmp);
		s->has_layer = 0;	/* nothing changed: no layer */
	} else if (close(fd) < 0) {
		hypr_err_errno(e, HYPR_EXIT_SYSTEM, "writing %s", tmp);
		unlink(tmp);
		goto out;
	} else if (layer_from_file(c, tmp, &s->layer, e) < 0) {	/* the commit rule */
		goto out;
	} else {
		s->has_layer = 1;
	}
	s->in_vm = 1;
	if (getenv("HYPR_EXEC_DEBUG") != NULL) {
		struct timespec t1;

		clock_gettime(CLOCK_MONOTONIC, &t1);
		hypr_events_say(c->ev, HYPR_EV_INFO, c->stepno, 0,
		    "run+diff+store %.1f ms (diff %llu bytes)", (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
		    (double)(t1.tv_nsec - t0.tv_nsec) / 1e6, (unsigned long long)len);
	}
	rc = 0;
out:
	free(vmts);
	mounts_free(mts, nmts);
	if (ev)	/* the environment may hold a secret */
		for (size_t i = 0; ev[i]; i++)
			explicit_bzero(ev[i], strlen(ev[i]));
	strv_free(av);
	strv_free(ev);
	json_decref(exp);
	json_decref(argv);
	json_decref(env);
	return rc;
}

void
run_stop(struct ctx *c, struct stage *st)
{
	struct hypr_err e = { 0 };

	if (st->vm != NULL) {
		if (hypr_vm_stop(st->vm, &e) < 0)
			exec_warn(c, "stopping the build VM: %s", e.msg);
		st->vm = NULL;
	}
	if (st->vmdir[0]) {
		hypr_rm_rf(st->vmdir, NULL);
		st->vmdir[0] = '\0';
	}
	hypr_map_free(&st->sent, NULL);
	caches_release(st);
}

void
run_kill_all(struct ctx *c)
{
	for (size_t i = 0; i < c->nstages; i++) {
		if (c->stages[i].vm != NULL) {
			hypr_vm_kill(c->stages[i].vm);
			c->stages[i].vm = NULL;
		}
		if (c->stages[i].vmdir[0]) {
			hypr_rm_rf(c->stages[i].vmdir, NULL);
			c->stages[i].vmdir[0] = '\0';
		}
	}
}
