/* run.c - RUN in the build VM: one VM per stage, booted on the stage's first
 * cache miss, layers made before the boot imported in order. */
#include "exec.h"

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
#include "strbuf.h"
#include "tool.h"
#include "vm.h"

int64_t
clamp_time(const struct ctx *c, int64_t t)
{
	return c->epoch >= 0 && t > c->epoch ? c->epoch : t;
}

/* The step's output as "#N line" on stderr, line by line. */
struct outbuf {
	int n;			/* the #N of the step */
	struct hypr_strbuf line[3];	/* [1] stdout, [2] stderr: unfinished */
};

static void
emit(struct outbuf *o, struct hypr_strbuf *b)
{
	fprintf(stderr, "#%d %.*s\n", o->n, (int)b->n, hypr_strbuf_str(b));
	hypr_strbuf_reset(b);
	b->oom = 0;
}

static void
on_output(void *arg, int fd, const char *buf, size_t len)
{
	struct outbuf *o = arg;
	struct hypr_strbuf *b = &o->line[fd == 1 ? 1 : 2];

	while (len > 0) {
		const char *nl = memchr(buf, '\n', len);
		size_t k = nl ? (size_t)(nl - buf) : len;

		hypr_strbuf_addn(b, buf, k);
		if (nl) {
			emit(o, b);
			k++;
		}
		buf += k;
		len -= k;
	}
	fflush(stderr);
}

static void
flush_out(struct outbuf *o)
{
	for (int i = 1; i < 3; i++) {
		if (o->line[i].n)
			emit(o, &o->line[i]);
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
run_argv(struct stage *st, json_t *instr)
{
	json_t *args = json_object_get(instr, "args");
	json_t *hd = json_object_get(instr, "heredocs");
	const char *form = hypr_json_str(instr, "form");
	json_t *argv;
	char *text;

	if (form && strcmp(form, "exec") == 0)
		return json_deep_copy(args);
	argv = shell_of(st);
	text = join_words(args, " ");
	if (json_array_size(hd) > 0 && text) {
		json_t *h0 = json_array_get(hd, 0);
		const char *name = hypr_json_str(h0, "name");
		const char *content = hypr_json_str(h0, "content");

		if (json_array_size(hd) == 1 && name && only_heredoc(text, name)) {
			json_array_append_new(argv, json_string(content ? content : ""));
			free(text);
			return argv;
		}
		/* The shell reads the here-documents itself. */
		{
			size_t i;
			json_t *h;
			char *full = strdup(text);

			json_array_foreach(hd, i, h) {
				char *nf;
				const char *c = hypr_json_str(h, "content");
				size_t cl = c ? strlen(c) : 0;

				if (full == NULL)
					break;
				if (asprintf(&nf, "%s\n%s%s%s", full, c ? c : "",
				    cl && c[cl - 1] != '\n' ? "\n" : "",
				    hypr_json_str(h, "name") ? hypr_json_str(h, "name") : "") < 0)
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
	while (st->imported < json_array_size(st->layers)) {
		const char *d = hypr_json_str(json_array_get(st->layers, st->imported),
		    "digest");
		char path[4300];

		if (hypr_blob_path(&c->root, d, path, sizeof(path), e) < 0 ||
		    hypr_vm_import(st->vm, path, e) < 0)
			return -1;
		st->imported++;
	}
	return 0;
}

static int
boot(struct ctx *c, struct stage *st, struct hypr_err *e)
{
	struct hypr_vm_opts o = { 0 };
	struct hypr_squash_opts so = { .epoch = c->epoch };
	char sq[4300];
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
	if (hypr_root_path(&c->root, st->vmdir, sizeof(st->vmdir), "tmp/vm.XXXXXX") < 0 ||
	    mkdtemp(st->vmdir) == NULL)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "creating VM directory");
	o.base = st->nbase > 0 ? sq : NULL;
	o.tmpdir = st->vmdir;
	/* A gone reader of the steps stream (the driver or the next stage
	 * killed) stops the step and kills the VM at once (POLLERR/POLLHUP). */
	if (fcntl(STDOUT_FILENO, F_GETFD) >= 0)
		o.watch_fd = STDOUT_FILENO;
	if (hypr_vm_start(&st->vm, &o, e) < 0) {
		rmdir(st->vmdir);
		st->vmdir[0] = '\0';
		return hypr_err_prefix(e, "starting the build VM");
	}
	c->vm_boots++;
	st->imported = st->nbase;
	return 0;
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
run_step(struct ctx *c, struct stage *st, json_t *instr, struct step *s,
    struct hypr_err *e)
{
	json_t *argv = run_argv(st, instr), *env = run_env(c, st), *exp;
	struct hypr_vm_run r = { 0 };
	struct outbuf ob = { .n = c->stepno };
	char **av = NULL, **ev = NULL, tmp[4300];
	const char *user = hypr_json_str(st->config, "User");
	const char *wd = hypr_json_str(st->config, "WorkingDir");
	int status = 0, fd = -1, rc = -1;
	struct timespec t0;
	uint64_t len = 0;

	s->created_by = created_by_run(st, argv);
	{
		json_t *fl = json_object_get(instr, "flags");
		const char *net = hypr_json_str(fl, "network");
		long line = (long)json_integer_value(json_array_get(
		    json_object_get(instr, "line"), 0));

		if (json_object_get(fl, "mount") != NULL)
			warn("%s:%ld: RUN --mount is not supported: running without the mount",
			    c->dockerfile ? c->dockerfile : "Dockerfile", line);
		if (json_object_get(fl, "device") != NULL)
			warn("%s:%ld: RUN --device is not supported: running without the device",
			    c->dockerfile ? c->dockerfile : "Dockerfile", line);
		if (net != NULL && strcmp(net, "none") != 0)
			warn("%s:%ld: RUN --network=%s: the build VM has no network",
			    c->dockerfile ? c->dockerfile : "Dockerfile", line, net);
	}
	exp = json_pack("{s:O}", "argv", argv);
	if (cache_key(c, st, instr, exp, NULL, s->key, e) < 0)
		goto out;
	if (cache_lookup(c, s)) {
		rc = 0;
		goto out;
	}
	if (st->vm == NULL && boot(c, st, e) < 0)
		goto out;
	if (run_import_pending(c, st, e) < 0)
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
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (hypr_vm_run(st->vm, &r, &status, e) < 0) {
		flush_out(&ob);
		goto out;
	}
	flush_out(&ob);
	if (status != 0) {
		hypr_err_set(e, HYPR_EXIT_STEP, "exit code %d", status);
		goto out;
	}
	if (hypr_root_path(&c->root, tmp, sizeof(tmp), "tmp/diff.XXXXXX") < 0 ||
	    (fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
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
		s->layer = NULL;	/* nothing changed: no layer */
	} else if (fchmod(fd, 0644) < 0 || fsync(fd) < 0 || close(fd) < 0) {
		hypr_err_errno(e, HYPR_EXIT_SYSTEM, "writing %s", tmp);
		unlink(tmp);
		goto out;
	} else if (layer_from_file(c, tmp, &s->layer, e) < 0) {
		unlink(tmp);
		goto out;
	}
	s->in_vm = 1;
	if (getenv("HYPR_EXEC_DEBUG") != NULL) {
		struct timespec t1;

		clock_gettime(CLOCK_MONOTONIC, &t1);
		fprintf(stderr, "#%d run+diff+store %.1f ms (diff %llu bytes)\n", c->stepno,
		    (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
		    (double)(t1.tv_nsec - t0.tv_nsec) / 1e6, (unsigned long long)len);
	}
	rc = 0;
out:
	strv_free(av);
	strv_free(ev);
	json_decref(exp);
	json_decref(argv);
	json_decref(env);
	return rc;
}

void
run_stop(struct stage *st)
{
	struct hypr_err e = { 0 };

	if (st->vm != NULL) {
		if (hypr_vm_stop(st->vm, &e) < 0)
			warn("stopping the build VM: %s", e.msg);
		st->vm = NULL;
	}
	if (st->vmdir[0]) {
		hypr_rm_rf(st->vmdir, NULL);
		st->vmdir[0] = '\0';
	}
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
