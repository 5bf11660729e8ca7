/* compose_env.c - Compose's variables: ${VAR} interpolation (every form
 * compose-go knows) and .env files. */
#include "compose_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>


/* A variable's value: the process environment's, else the .env files'
 * (the last one given wins), else NULL. */
static const char *
env_n(const char *name, size_t len, const struct hypr_compose_kv *env, size_t nenv)
{
	char buf[256];
	const char *v;

	if (len >= sizeof buf)
		return NULL;
	memcpy(buf, name, len);
	buf[len] = 0;
	if ((v = getenv(buf)))
		return v;
	for (size_t i = nenv; i-- > 0;)
		if (!strcmp(env[i].key, buf))
			return env[i].value ? env[i].value : "";
	return NULL;
}

int
compose_sb_add(struct compose_sbuf *s, const char *p, size_t n)
{
	if (s->n + n + 1 > s->cap) {
		size_t cap = s->cap ? s->cap : 64;
		char *q;

		while (cap < s->n + n + 1)
			cap *= 2;
		if (!(q = realloc(s->p, cap)))
			return -1;
		s->p = q;
		s->cap = cap;
	}
	memcpy(s->p + s->n, p, n);
	s->n += n;
	s->p[s->n] = 0;
	return 0;
}

static int
isvar(int ch, int first)
{
	return ch == '_' || isalpha(ch) || (!first && isdigit(ch));
}

int
compose_interp(const char *in, char **out, const struct hypr_compose_kv *env, size_t nenv,
    compose_unset_fn on_unset, void *arg, struct hypr_err *e)
{
	struct compose_sbuf s = { 0 };
	const char *p = in;

	if (compose_sb_add(&s, "", 0) < 0)
		return compose_oom(e);
	while (*p) {
		const char *d = strchr(p, '$');

		if (!d) {
			if (compose_sb_add(&s, p, strlen(p)) < 0)
				goto nomem;
			break;
		}
		if (compose_sb_add(&s, p, (size_t)(d - p)) < 0)
			goto nomem;
		p = d + 1;
		if (*p == '$') {	/* $$ is a literal $ */
			if (compose_sb_add(&s, "$", 1) < 0)
				goto nomem;
			p++;
		} else if (isvar((unsigned char)*p, 1)) {
			const char *n = p, *v;

			while (isvar((unsigned char)*p, 0))
				p++;
			v = env_n(n, (size_t)(p - n), env, nenv);
			if (v && compose_sb_add(&s, v, strlen(v)) < 0)
				goto nomem;
			if (!v && on_unset && on_unset(arg, n, (size_t)(p - n)) < 0)
				goto fail;
		} else if (*p == '{') {
			const char *n = ++p, *v, *end, *op;
			size_t nlen;
			int colon = 0;

			while (isvar((unsigned char)*p, p == n))
				p++;
			nlen = (size_t)(p - n);
			if (nlen == 0 || !(end = strchr(p, '}'))) {
				free(s.p);
				return hypr_err_set(e, HYPR_EXIT_INPUT,
				    "invalid interpolation format in \"%s\"", in);
			}
			v = env_n(n, nlen, env, nenv);
			op = p;
			if (*op == ':') {
				colon = 1;
				op++;
			}
			if (op == end && !colon) {
				if (v && compose_sb_add(&s, v, strlen(v)) < 0)
					goto nomem;
				if (!v && on_unset && on_unset(arg, n, nlen) < 0)
					goto fail;
			} else if (*op == '-' || *op == '?' || *op == '+') {
				int unset = !v || (colon && !*v);
				const char *w = op + 1;

				if (*op == '-') {
					if (unset ? compose_sb_add(&s, w, (size_t)(end - w)) :
					    compose_sb_add(&s, v, strlen(v)))
						goto nomem;
				} else if (*op == '+') {
					if (!unset && compose_sb_add(&s, w, (size_t)(end - w)))
						goto nomem;
				} else if (unset) {
					int len = (int)(end - w);

					free(s.p);
					return hypr_err_set(e, HYPR_EXIT_INPUT,
					    "required variable %.*s is missing a value: %.*s",
					    (int)nlen, n, len, w);
				} else if (compose_sb_add(&s, v, strlen(v))) {
					goto nomem;
				}
			} else {
				free(s.p);
				return hypr_err_set(e, HYPR_EXIT_INPUT,
				    "invalid interpolation format in \"%s\"", in);
			}
			p = end + 1;
		} else if (compose_sb_add(&s, "$", 1) < 0) {
			goto nomem;
		}
	}
	*out = s.p;
	return 0;
nomem:
	free(s.p);
	return compose_oom(e);
fail:
	free(s.p);
	return -1;
}

int
hypr_compose_interpolate(const char *in, char **out, struct hypr_err *e)
{
	return compose_interp(in, out, NULL, 0, NULL, NULL, e);
}


/* One value of a .env line: 'single' is literal, "double" knows \n \t \\
 * \" and is interpolated, a bare one ends at " #" and is interpolated. */
static int
dotenv_value(const char *p, const char *fname, long line, const struct hypr_compose_kv *env,
    size_t nenv, char **out, struct hypr_err *e)
{
	struct compose_sbuf b = { 0 };
	int interpolate = 1;

	if (compose_sb_add(&b, "", 0) < 0)
		return compose_oom(e);
	if (*p == '\'' || *p == '"') {
		char q = *p++;

		for (; *p && *p != q; p++) {
			char ch = *p;

			if (q == '"' && *p == '\\' && p[1]) {
				p++;
				ch = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p;
			}
			if (compose_sb_add(&b, &ch, 1) < 0)
				goto nomem;
		}
		if (*p != q) {
			free(b.p);
			return hypr_err_set(e, HYPR_EXIT_INPUT, "%s:%ld: unterminated quoted value",
			    fname, line);
		}
		interpolate = q == '"';
	} else {
		const char *end = p + strlen(p);
		const char *hash = strstr(p, " #");

		if (hash)
			end = hash;
		while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
			end--;
		if (compose_sb_add(&b, p, (size_t)(end - p)) < 0)
			goto nomem;
	}
	if (interpolate) {
		char *t;

		if (compose_interp(b.p, &t, env, nenv, NULL, NULL, e) < 0) {
			free(b.p);
			return hypr_err_prefix(e, "%s:%ld", fname, line);
		}
		free(b.p);
		b.p = t;
	}
	*out = b.p;
	return 0;
nomem:
	free(b.p);
	return compose_oom(e);
}

int
hypr_compose_dotenv(const char *path, int required, struct hypr_compose_kv **v, size_t *n,
    struct hypr_err *e)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t cap = 0;
	ssize_t len;
	long line = 0;
	int r = 0;

	if (!f) {
		if (errno == ENOENT && !required)
			return 0;
		return hypr_err_errno(e, errno == ENOENT ? HYPR_EXIT_USAGE : HYPR_EXIT_SYSTEM,
		    "%s", path);
	}
	while (r == 0 && (len = getline(&buf, &cap, f)) >= 0) {
		char *p = buf, *k, *val = NULL;

		line++;
		if (len > 65536) {
			r = hypr_err_set(e, HYPR_EXIT_INPUT, "%s:%ld: line over 65536 bytes", path, line);
			break;
		}
		while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
			buf[--len] = 0;
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p || *p == '#')
			continue;
		if (!strncmp(p, "export ", 7))
			for (p += 7; *p == ' '; p++)
				;
		k = p;
		while (isalnum((unsigned char)*p) || *p == '_' || *p == '.' || *p == '-')
			p++;
		if (p == k || (*p != '=' && *p != ' ' && *p != '\t')) {
			r = hypr_err_set(e, HYPR_EXIT_INPUT, "%s:%ld: unexpected character \"%c\" in "
			    "variable name", path, line, *p ? *p : ' ');
			break;
		}
		if (*p != '=') {
			*p++ = 0;
			while (*p == ' ' || *p == '\t')
				p++;
			if (*p != '=') {
				r = hypr_err_set(e, HYPR_EXIT_INPUT, "%s:%ld: %s: no '=' after the name",
				    path, line, k);
				break;
			}
		}
		*p++ = 0;
		while (*p == ' ' || *p == '\t')
			p++;
		if (dotenv_value(p, path, line, *v, *n, &val, e) < 0) {
			r = -1;
			break;
		}
		if (!(k = strdup(k))) {
			free(val);
			r = compose_oom(e);
			break;
		}
		r = compose_kv_set(v, n, k, val, e);
	}
	if (r == 0 && ferror(f))
		r = hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", path);
	free(buf);
	fclose(f);
	return r;
}

