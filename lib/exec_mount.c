/* exec_mount.c - RUN --mount and --network on the host side: the options as
 * BuildKit parses them, bind sources as tar blobs, cache mounts as ext4
 * images under $HYPR_ROOT/cachemounts with their locks, secrets from
 * --secret, and what of each enters the cache key. See hypr-exec(1). */
#include "exec_int.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cache.h"
#include "fsutil.h"
#include "path.h"
#include "vm.h"

#define SECRET_MAX (500u << 10)	/* BuildKit's limit for one secret */

void
mounts_free(struct rmount *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].target);
		free(v[i].source);
		free(v[i].from);
		free(v[i].id);
		free(v[i].env);
		if (v[i].data) {
			explicit_bzero(v[i].data, v[i].dlen);
			free(v[i].data);
		}
	}
	free(v);
}

static int
parse_bool(const char *v, int *out)
{
	if (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "t"))
		return *out = 1, 0;
	if (!strcmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "f"))
		return *out = 0, 0;
	return -1;
}

/* One --mount value, as BuildKit's parseMount: comma-separated key=value
 * (and bare ro/rw/required), values expanded with the step's variables
 * (but from=, which names a stage or an image). */
static int
parse_one(struct ctx *c, const char *spec, const struct hypr_vars *v, const char *wd,
    struct rmount *m, struct hypr_err *e)
{
	char *s = strdup(spec), *save = NULL, *f;
	int ro_auto = 1, rc = -1;

	memset(m, 0, sizeof *m);
	m->type = 'b';
	m->mode = m->uid = m->gid = -1;
	if (s == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	for (f = strtok_r(s, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
		char *val = strchr(f, '='), *x = NULL;
		int b;

		if (val)
			*val++ = '\0';
		for (char *k = f; *k; k++)
			*k = (char)tolower((unsigned char)*k);
		if (!val) {
			if (!strcmp(f, "ro") || !strcmp(f, "readonly"))
				m->ro = 1, ro_auto = 0;
			else if (!strcmp(f, "rw") || !strcmp(f, "readwrite"))
				m->ro = 0, ro_auto = 0;
			else if (!strcmp(f, "required") && (m->type == 's'))
				m->required = 1;
			else {
				hypr_err_set(e, HYPR_EXIT_INPUT,
				    "--mount: invalid field '%s' must be a key=value pair", f);
				goto out;
			}
			continue;
		}
		if (strcmp(f, "from") != 0) {
			if (hypr_expand_word(val, v, c->escape, &x, e) < 0)
				goto out;
			val = x;
		} else if (strchr(val, '$')) {
			hypr_err_set(e, HYPR_EXIT_INPUT,
			    "--mount: 'from' doesn't support variable expansion, define alias stage instead");
			goto out;
		}
		if (!strcmp(f, "type")) {
			if (!strcasecmp(val, "bind"))
				m->type = 'b';
			else if (!strcasecmp(val, "cache"))
				m->type = 'c';
			else if (!strcasecmp(val, "tmpfs"))
				m->type = 't';
			else if (!strcasecmp(val, "secret"))
				m->type = 's';
			else if (!strcasecmp(val, "ssh"))
				m->type = 'h';
			else {
				hypr_err_set(e, HYPR_EXIT_INPUT, "--mount: unsupported mount type \"%s\"", val);
				free(x);
				goto out;
			}
		} else if (!strcmp(f, "from")) {
			free(m->from);
			m->from = strdup(val);
		} else if (!strcmp(f, "source") || !strcmp(f, "src")) {
			free(m->source);
			m->source = strdup(val);
		} else if (!strcmp(f, "target") || !strcmp(f, "dst") || !strcmp(f, "destination")) {
			free(m->target);
			m->target = strdup(val);
		} else if (!strcmp(f, "readonly") || !strcmp(f, "ro") ||
		    !strcmp(f, "readwrite") || !strcmp(f, "rw")) {
			if (parse_bool(val, &b) < 0) {
				hypr_err_set(e, HYPR_EXIT_INPUT, "--mount: invalid value for %s: %s", f, val);
				free(x);
				goto out;
			}
			m->ro = !strcmp(f, "rw") || !strcmp(f, "readwrite") ? !b : b;
			ro_auto = 0;
		} else if (!strcmp(f, "required") && m->type == 's') {
			if (parse_bool(val, &m->required) < 0) {
				hypr_err_set(e, HYPR_EXIT_INPUT, "--mount: invalid value for %s: %s", f, val);
				free(x);
				goto out;
			}
		} else if (!strcmp(f, "size") && m->type == 't') {
			if (hypr_size_parse(val, &m->size) < 0) {
				hypr_err_set(e, HYPR_EXIT_INPUT, "--mount: invalid value for size: %s", val);
				free(x);
				goto out;
			}
		} else if (!strcmp(f, "id")) {
			free(m->id);
			m->id = strdup(val);
		} else if (!strcmp(f, "sharing")) {
			if (!strcasecmp(val, "shared"))
				m->sharing = SHARING_SHARED;
			else if (!strcasecmp(val, "private"))
				m->sharing = SHARING_PRIVATE;
			else if (!strcasecmp(val, "locked"))
				m->sharing = SHARING_LOCKED;
			else {
				hypr_err_set(e, HYPR_EXIT_INPUT, "--mount: unsupported sharing value \"%s\"", val);
				free(x);
				goto out;
			}
			m->sharing_set = 1;
		} else if (!strcmp(f, "mode") || !strcmp(f, "uid") || !strcmp(f, "gid")) {
			char *end;
			unsigned long n = strtoul(val, &end, f[0] == 'm' ? 8 : 10);

			if (!*val || *end || n > 0xffffffffUL) {
				hypr_err_set(e, HYPR_EXIT_INPUT, "--mount: invalid value %s for %s", val, f);
				free(x);
				goto out;
			}
			*(f[0] == 'm' ? &m->mode : f[0] == 'u' ? &m->uid : &m->gid) = (long)n;
		} else if (!strcmp(f, "env") && m->type == 's') {
			free(m->env);
			m->env = strdup(val);
		} else {
			hypr_err_set(e, HYPR_EXIT_INPUT, "--mount: unexpected key '%s' for mount type '%s'",
			    f, m->type == 'b' ? "bind" : m->type == 'c' ? "cache" :
			    m->type == 't' ? "tmpfs" : m->type == 's' ? "secret" : "ssh");
			free(x);
			goto out;
		}
		free(x);
	}
	if (m->type == 'h') {
		hypr_err_set(e, HYPR_EXIT_INPUT, "--mount=type=ssh is not supported by hypr "
		    "(no SSH agent reaches the build VM; fetch with HTTPS and a secret instead)");
		goto out;
	}
	if (m->type != 'c' && m->type != 's' && (m->mode >= 0 || m->uid >= 0 || m->gid >= 0)) {
		hypr_err_set(e, HYPR_EXIT_INPUT, "--mount: %s not allowed for \"%s\" type mounts",
		    m->mode >= 0 ? "mode" : m->uid >= 0 ? "uid" : "gid", m->type == 'b' ? "bind" : "tmpfs");
		goto out;
	}
	if (m->sharing_set && m->type != 'c') {
		hypr_err_set(e, HYPR_EXIT_INPUT, "--mount: invalid cache sharing set for a non-cache mount");
		goto out;
	}
	if (ro_auto)
		m->ro = m->type == 'b' || m->type == 's';
	if (m->type == 's') {
		if (m->from) {
			hypr_err_set(e, HYPR_EXIT_INPUT, "--mount: secret mount should not have a from");
			goto out;
		}
		if (m->source && m->id) {
			hypr_err_set(e, HYPR_EXIT_INPUT, "--mount: both source and id can't be set");
			goto out;
		}
		if (!m->id && m->source) {
			m->id = m->source;
			m->source = NULL;
		}
		if (!m->id && m->target) {
			const char *b = strrchr(m->target, '/');
			m->id = strdup(b ? b + 1 : m->target);
		}
		if (!m->id || !*m->id) {
			hypr_err_set(e, HYPR_EXIT_INPUT, "--mount: invalid secret mount. one of source, target required");
			goto out;
		}
		if (!m->target && !m->env && asprintf(&m->target, "/run/secrets/%s", m->id) < 0)
			m->target = NULL;
	}
	if (!m->target && !(m->type == 's' && m->env)) {
		hypr_err_set(e, HYPR_EXIT_INPUT, "--mount: a target is required");
		goto out;
	}
	if (m->target && m->target[0] != '/') {
		/* relative to the working directory, as BuildKit */
		char *t;
		if (asprintf(&t, "%s/%s", wd && *wd ? wd : "/", m->target) < 0) {
			hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
			goto out;
		}
		free(m->target);
		m->target = t;
	}
	if (m->target) {
		/* cleaned as if rooted, then absolute again */
		char *t = hypr_path_clean(m->target), *abs = NULL;

		if (t == NULL || asprintf(&abs, "/%s", t) < 0) {
			free(t);
			hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
			goto out;
		}
		free(m->target);
		m->target = abs;
		if (!*t) {
			free(t);
			hypr_err_set(e, HYPR_EXIT_INPUT, "--mount: cannot mount over /");
			goto out;
		}
		free(t);
	}
	if (m->type == 'c' && !m->id)
		m->id = m->target ? strdup(m->target) : NULL;
	rc = 0;
out:
	free(s);
	return rc;
}

int
mounts_parse(struct ctx *c, struct stage *st, const struct hypr_plan_instr *instr,
    struct rmount **out, size_t *nout, struct hypr_err *e)
{
	const char *wd = hypr_json_str(st->config, "WorkingDir");
	const char **specs;
	const struct hypr_vars *v;
	struct rmount *m;
	size_t n;

	*out = NULL;
	*nout = 0;
	if (hypr_plan_flag_all(instr, "mount", &specs, &n, e) < 0)
		return -1;
	if (n == 0) {
		free(specs);
		return 0;
	}
	if ((m = calloc(n, sizeof *m)) == NULL) {
		free(specs);
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	}
	if ((v = stage_vars(st, e)) == NULL) {
		free(specs);
		free(m);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (parse_one(c, specs[i], v, wd, &m[i], e) < 0) {
			free(specs);
			mounts_free(m, i + 1);
			return -1;
		}
		for (size_t k = 0; k < i; k++)
			if (m[k].target && m[i].target && !strcmp(m[k].target, m[i].target)) {
				hypr_err_set(e, HYPR_EXIT_INPUT, "--mount: two mounts on %s", m[i].target);
				free(specs);
				mounts_free(m, i + 1);
				return -1;
			}
	}
	free(specs);
	*out = m;
	*nout = n;
	return 0;
}

/* ---- what enters the cache key ---- */

json_t *
mounts_key(const struct rmount *m, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++) {
		json_t *o;

		switch (m[i].type) {
		case 'b':	/* the content is an input: its tar's digest */
			o = json_pack("{s:s,s:s,s:s,s:b}", "type", "bind", "target", m[i].target,
			    "content", m[i].digest, "rw", !m[i].ro);
			break;
		case 'c':	/* the id, never the content */
			o = json_pack("{s:s,s:s,s:s,s:b,s:I,s:I,s:I}", "type", "cache", "target",
			    m[i].target, "id", m[i].id, "ro", m[i].ro, "mode", (json_int_t)m[i].mode,
			    "uid", (json_int_t)m[i].uid, "gid", (json_int_t)m[i].gid);
			break;
		case 't':
			o = json_pack("{s:s,s:s,s:I}", "type", "tmpfs", "target", m[i].target,
			    "size", (json_int_t)m[i].size);
			break;
		default:	/* a secret: where it goes, never its bytes */
			o = json_pack("{s:s,s:s,s:s?,s:s?}", "type", "secret", "id", m[i].id,
			    "target", m[i].target, "env", m[i].env);
			break;
		}
		json_array_append_new(a, o);
	}
	return a;
}

/* ---- secrets ---- */

static void
secret_free(struct secret *s)
{
	free(s->id);
	free(s->src);
	free(s->env);
}

int
secret_add(struct ctx *c, const char *spec, struct hypr_err *e)
{
	char *s = strdup(spec), *save = NULL, *f;
	struct secret sec = { 0 };

	if (s == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	for (f = strtok_r(s, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
		char *v = strchr(f, '=');

		if (!v) {
			free(s);
			secret_free(&sec);
			return hypr_err_set(e, HYPR_EXIT_USAGE, "--secret %s: want id=ID,src=FILE or id=ID,env=VAR", spec);
		}
		*v++ = '\0';
		if (!strcmp(f, "id"))
			sec.id = strdup(v);
		else if (!strcmp(f, "src") || !strcmp(f, "source"))
			sec.src = strdup(v);
		else if (!strcmp(f, "env"))
			sec.env = strdup(v);
		else if (strcmp(f, "type") || (strcmp(v, "file") && strcmp(v, "env"))) {
			hypr_err_set(e, HYPR_EXIT_USAGE, "--secret %s: unknown key '%s'", spec, f);
			free(s);
			secret_free(&sec);
			return -1;
		}
	}
	free(s);
	if (!sec.id && (sec.src || sec.env)) {
		const char *b = sec.src ? strrchr(sec.src, '/') : NULL;
		sec.id = strdup(sec.src ? (b ? b + 1 : sec.src) : sec.env);
	}
	if (!sec.id || (!sec.src && !sec.env)) {
		/* docker's shorthand: id=X alone reads the env var X */
		if (sec.id && !sec.src && !sec.env) {
			sec.env = strdup(sec.id);
		} else {
			secret_free(&sec);
			return hypr_err_set(e, HYPR_EXIT_USAGE, "--secret %s: want id=ID,src=FILE or id=ID,env=VAR", spec);
		}
	}
	if (c->nsecrets == sizeof c->secrets / sizeof *c->secrets) {
		secret_free(&sec);
		return hypr_err_set(e, HYPR_EXIT_USAGE, "--secret: too many secrets");
	}
	c->secrets[c->nsecrets++] = sec;
	return 0;
}

/* A secret's bytes, read now (never kept on a disk by hypr). 1 found, 0
 * not given. */
static int
secret_read(struct ctx *c, const char *id, char **data, size_t *len, struct hypr_err *e)
{
	for (size_t i = 0; i < c->nsecrets; i++) {
		const struct secret *s = &c->secrets[i];
		const char *v;

		if (strcmp(s->id, id))
			continue;
		if (s->env) {
			if (!(v = getenv(s->env)))
				return 0;
			*len = strlen(v);
			if (*len > SECRET_MAX)
				return hypr_err_set(e, HYPR_EXIT_INPUT, "secret %s: larger than 500 KiB", id);
			if (!(*data = malloc(*len + 1)))
				return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
			memcpy(*data, v, *len + 1);
			return 1;
		}
		if (hypr_read_file(s->src, SECRET_MAX, data, len, e) < 0)
			return hypr_err_prefix(e, "secret %s", id);
		return 1;
	}
	return 0;
}

/* ---- cache mounts: ext4 images, one per id, locked while a VM uses one ---- */

static int
mkfs(const char *path, uint64_t size, long uid, long gid, struct hypr_err *e)
{
	if (hypr_vm_mkfs(path, size, 0, 0, uid, gid, e) < 0)
		return hypr_err_prefix(e, "cache mount");
	return 0;
}

/* Attach (and lock) a cache id for this stage's VM; the index is its disk. */
static int
cache_attach(struct ctx *c, struct stage *st, struct rmount *m, struct hypr_err *e)
{
	char path[HYPR_PATH_BUF];
	struct cachedisk *cd;
	int fd, fresh = 0;

	for (size_t i = 0; i < st->ncaches; i++)
		if (!strcmp(st->caches[i].id, m->id)) {
			m->disk = (int)i;
			m->fresh = st->caches[i].fresh;
			return 0;
		}
	if (st->ncaches == HYPR_VM_MAX_CACHES)
		return hypr_err_set(e, HYPR_EXIT_INPUT, "more than %d cache mounts in one stage",
		    HYPR_VM_MAX_CACHES);
	if (hypr_cachemount_path(&c->root, m->id, path, sizeof path, e) < 0)
		return -1;
	{
		char dir[HYPR_PATH_BUF];
		if (hypr_root_path(&c->root, dir, sizeof dir, "cachemounts") < 0 ||
		    hypr_mkdir_p(dir, 0755, e) < 0)
			return -1;
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "cache mount %s", m->id);
	/* a filesystem image mounts in one VM at a time: "shared" and
	 * "locked" wait for it, "private" takes a fresh one when it is busy */
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (m->sharing == SHARING_PRIVATE) {
			close(fd);
			if (hypr_root_tmp(&c->root, path, sizeof path, e, "cache-%zu.ext4", st->ncaches) < 0)
				return -1;
			if ((fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
				return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "cache mount %s", m->id);
			fresh = 1;
		} else {
			hypr_events_say(c->ev, HYPR_EV_INFO, c->stepno, 0,
			    "waiting for cache mount %s (in use by another build)", m->id);
			if (flock(fd, LOCK_EX) < 0) {
				close(fd);
				return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "cache mount %s: lock", m->id);
			}
		}
	}
	{
		struct stat sb;
		if (fstat(fd, &sb) == 0 && sb.st_size == 0)
			fresh = 1;
	}
	if (fresh && mkfs(path, c->disk ? c->disk : (64ull << 30), m->uid, m->gid, e) < 0) {
		close(fd);
		return -1;
	}
	cd = &st->caches[st->ncaches];
	cd->id = strdup(m->id);
	cd->image = strdup(path);
	cd->fd = fd;
	cd->fresh = fresh;
	m->disk = (int)st->ncaches++;
	m->fresh = fresh;
	return 0;
}

int
mounts_attach_caches(struct ctx *c, struct stage *st, struct rmount *m, size_t n,
    struct hypr_err *e)
{
	for (size_t i = 0; i < n; i++)
		if (m[i].type == 'c' && cache_attach(c, st, &m[i], e) < 0)
			return -1;
	return 0;
}

void
caches_release(struct stage *st)
{
	for (size_t i = 0; i < st->ncaches; i++) {
		if (st->caches[i].fd >= 0)
			close(st->caches[i].fd);	/* and its lock */
		free(st->caches[i].id);
		free(st->caches[i].image);
	}
	st->ncaches = 0;
}

/* ---- before the step: sources, caches, secrets ---- */

int
mounts_prepare(struct ctx *c, struct stage *st, const struct hypr_plan_instr *instr,
    struct rmount *m, size_t n,
    int phase, struct hypr_err *e)
{
	for (size_t i = 0; i < n; i++) {
		if ((phase == 0) != (m[i].type == 'b'))
			continue;
		switch (m[i].type) {
		case 'b':
			if (mount_source(c, st, instr, &m[i], e) < 0)
				return -1;
			break;
		case 'c':
			if (cache_attach(c, st, &m[i], e) < 0)
				return -1;
			break;
		case 's': {
			int got = secret_read(c, m[i].id, &m[i].data, &m[i].dlen, e);
			if (got < 0)
				return -1;
			if (!got && m[i].required)
				return hypr_err_set(e, HYPR_EXIT_INPUT,
				    "secret %s: required, not given (hypr build --secret id=%s,src=FILE)",
				    m[i].id, m[i].id);
			m[i].absent = !got;
			break;
		}
		default:
			break;
		}
	}
	return 0;
}

/* The request's mounts; env secrets go into env (name=value). */
int
mounts_for_vm(struct rmount *m, size_t n, struct hypr_vm_mount **out, size_t *nout,
    json_t *env, struct hypr_err *e)
{
	struct hypr_vm_mount *v = calloc(n ? n : 1, sizeof *v);
	size_t k = 0;

	if (v == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		struct hypr_vm_mount *x = &v[k];

		if (m[i].type == 's' && m[i].absent)
			continue;
		if (m[i].type == 's' && m[i].env) {
			char *kv;
			if (asprintf(&kv, "%s=%.*s", m[i].env, (int)m[i].dlen, m[i].data) < 0) {
				free(v);
				return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
			}
			json_array_append_new(env, json_string(kv));
			explicit_bzero(kv, strlen(kv));
			free(kv);
			if (!m[i].target)
				continue;
		}
		x->type = m[i].type;
		x->target = m[i].target;
		x->mode = m[i].mode;
		x->uid = m[i].uid;
		x->gid = m[i].gid;
		x->size = m[i].size;
		switch (m[i].type) {
		case 'b':
			x->source = m[i].vmsource;
			x->rw = !m[i].ro;
			break;
		case 'c':
			snprintf(m[i].vmsource_buf, sizeof m[i].vmsource_buf, "%d", m[i].disk);
			x->source = m[i].vmsource_buf;
			x->ro = m[i].ro;
			if (!m[i].fresh)	/* mode and owner are a new cache's */
				x->mode = x->uid = x->gid = -1;
			else if (x->mode < 0)
				x->mode = 0755;
			break;
		case 's':
			x->data = m[i].data;
			x->dlen = m[i].dlen;
			break;
		}
		k++;
	}
	*out = v;
	*nout = k;
	return 0;
}
