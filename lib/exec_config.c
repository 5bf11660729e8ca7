/* exec_config.c - instructions that change only the image config, as Docker
 * (BuildKit's dockerfile frontend) applies them. */
#include "exec_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "path.h"

static const char *const proxy_args[] = {
	"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY",
	"ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", NULL
};

int
arg_is_proxy(const char *name)
{
	for (const char *const *p = proxy_args; *p; p++)
		if (strcmp(*p, name) == 0)
			return 1;
	return 0;
}

int
config_is_op(const char *op)
{
	static const char *const ops[] = { "ENV", "ARG", "LABEL", "EXPOSE",
		"VOLUME", "ENTRYPOINT", "CMD", "HEALTHCHECK", "SHELL",
		"STOPSIGNAL", "USER", "WORKDIR", "ONBUILD", "MAINTAINER", NULL };

	for (const char *const *p = ops; *p; p++)
		if (strcmp(*p, op) == 0)
			return 1;
	return 0;
}

/* The image config's Env and Labels may hold this many bytes: with
 * HYPR_EXPAND_MAX per value, a long chain of ENV L2=${L1}${L1}... stops here
 * instead of filling memory. */
#define MAX_ENV_LABELS (16u << 20)

static size_t
env_labels_size(json_t *config)
{
	json_t *x;
	const char *k;
	size_t i, n = 0;

	json_array_foreach(json_object_get(config, "Env"), i, x)
		n += json_string_length(x);
	json_object_foreach(json_object_get(config, "Labels"), k, x)
		n += strlen(k) + json_string_length(x);
	return n;
}

/* The variables an instruction is expanded against: ARGs in scope with the
 * config's Env on top (ENV always overrides ARG). Built once per stage and
 * kept current by set_env and stage_set_arg, so that a stage of 10 000 ENV
 * lines costs linear time, not quadratic. NULL when out of memory. */
const struct hypr_vars *
stage_vars(struct stage *st, struct hypr_err *e)
{
	json_t *x;
	size_t i;

	if (st->vars_ok)
		return &st->vars;
	hypr_vars_free(&st->vars);
	hypr_map_free(&st->envpos, NULL);
	memset(&st->vars, 0, sizeof(st->vars));
	memset(&st->envpos, 0, sizeof(st->envpos));
	st->cfgsize = env_labels_size(st->config);
	if (hypr_vars_copy(&st->vars, &st->args) < 0)
		goto oom;
	json_array_foreach(json_object_get(st->config, "Env"), i, x) {
		const char *kv = json_string_value(x), *eq = kv ? strchr(kv, '=') : NULL;
		char *k;
		void **slot;
		int added;

		if (eq == NULL)
			continue;
		if (hypr_vars_setkv(&st->vars, kv) < 0 || (k = strndup(kv, (size_t)(eq - kv))) == NULL)
			goto oom;
		slot = hypr_map_slot(&st->envpos, k, &added);
		free(k);
		if (slot == NULL)
			goto oom;
		if (added)	/* set_env replaces the first */
			*slot = (void *)(uintptr_t)(i + 1);
	}
	st->vars_ok = 1;
	return &st->vars;
oom:
	hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	return NULL;
}

/* ARG: set in scope, and visible unless ENV set the same name. */
static int
stage_set_arg(struct stage *st, const char *key, const char *val, struct hypr_err *e)
{
	if (hypr_vars_set(&st->args, key, val) < 0 ||
	    (st->vars_ok && hypr_map_get(&st->envpos, key) == NULL &&
	    hypr_vars_set(&st->vars, key, val) < 0))
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	return 0;
}

char *
join_words(json_t *arr, const char *sep)
{
	size_t i, len = 1;
	json_t *x;
	char *s;

	json_array_foreach(arr, i, x)
		len += strlen(json_string_value(x) ? json_string_value(x) : "") +
		    strlen(sep);
	if ((s = malloc(len)) == NULL)
		return NULL;
	s[0] = '\0';
	json_array_foreach(arr, i, x) {
		if (i)
			strcat(s, sep);
		strcat(s, json_string_value(x) ? json_string_value(x) : "");
	}
	return s;
}

char *
join_strv(const char *const *v, size_t n, const char *sep)
{
	size_t len = 1, sl = strlen(sep);
	char *s, *p;

	for (size_t i = 0; i < n; i++)
		len += strlen(v[i]) + sl;
	if ((s = p = malloc(len)) == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(v[i]);

		if (i) {
			memcpy(p, sep, sl);
			p += sl;
		}
		memcpy(p, v[i], l);
		p += l;
	}
	*p = '\0';
	return s;
}

json_t *
strv_json(const char *const *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++)
		if (json_array_append_new(a, json_string(v[i])) < 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

json_t *
shell_of(struct stage *st)
{
	json_t *sh = json_object_get(st->config, "Shell");

	if (json_is_array(sh) && json_array_size(sh) > 0)
		return json_deep_copy(sh);
	return json_pack("[s,s]", "/bin/sh", "-c");
}

/* Expand an instruction's arguments into words: shell-form text is split
 * after expansion; exec-form (JSON) strings are expanded one by one. */
int
expand_args(struct ctx *c, struct stage *st, const struct hypr_plan_instr *instr,
    char ***words, size_t *n, struct hypr_err *e)
{
	const struct hypr_vars *v;
	const char *form = instr->form;
	char **out = NULL;
	size_t cnt = 0;

	*words = NULL;
	*n = 0;
	if ((v = stage_vars(st, e)) == NULL)
		return -1;
	for (size_t i = 0; i < instr->nargs; i++) {
		char **w = NULL;
		size_t k = 0;
		const char *s = instr->args[i];

		if (form && strcmp(form, "exec") == 0) {
			char *one;

			if (hypr_expand_word(s, v, c->escape, &one, e) < 0)
				goto fail;
			if ((w = calloc(2, sizeof(*w))) == NULL) {
				free(one);
				goto oom;
			}
			w[0] = one;
			k = 1;
		} else if (hypr_expand_words(s, v, c->escape, &w, &k, e) < 0) {
			goto fail;
		}
		{
			char **nw = realloc(out, (cnt + k + 1) * sizeof(*nw));

			if (nw == NULL) {
				hypr_words_free(w);
				goto oom;
			}
			out = nw;
			memcpy(out + cnt, w, k * sizeof(*w));
			cnt += k;
			out[cnt] = NULL;
			free(w);
		}
	}
	if (out == NULL && (out = calloc(1, sizeof(*out))) == NULL)
		goto oom;
	*words = out;
	*n = cnt;
	return 0;
oom:
	hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
fail:
	hypr_words_free(out);
	return -1;
}

/* Go's time.ParseDuration, for HEALTHCHECK options. */
int
parse_duration(const char *s, int64_t *ns)
{
	static const struct { const char *u; double mul; } units[] = {
		{ "ns", 1 }, { "us", 1e3 }, { "\xc2\xb5s", 1e3 }, { "ms", 1e6 },
		{ "s", 1e9 }, { "m", 60e9 }, { "h", 3600e9 }, { NULL, 0 } };
	double total = 0;

	if (*s == '\0')
		return -1;
	if (strcmp(s, "0") == 0) {
		*ns = 0;
		return 0;
	}
	while (*s) {
		char *end;
		double v;
		int found = 0;

		if (!isdigit((unsigned char)*s) && *s != '.')
			return -1;
		errno = 0;
		v = strtod(s, &end);
		if (end == s || errno)
			return -1;
		s = end;
		for (int i = 0; units[i].u; i++) {
			size_t l = strlen(units[i].u);

			/* "m" must not eat the "m" of "ms" */
			if (strncmp(s, units[i].u, l) == 0 &&
			    !(l == 1 && s[0] == 'm' && s[1] == 's')) {
				total += v * units[i].mul;
				s += l;
				found = 1;
				break;
			}
		}
		if (!found)
			return -1;
	}
	if (total > 9.2e18)
		return -1;
	*ns = (int64_t)(total + 0.5);
	return 0;
}


/* ENV key=val: replace the first key= of the config's Env or append, in
 * constant time through st->envpos; the stage's variables follow. */
static int
set_env(struct stage *st, const char *key, const char *val, struct hypr_err *e)
{
	json_t *env = json_object_get(st->config, "Env");
	void **slot;
	int added;
	char *kv;

	if (stage_vars(st, e) == NULL)
		return -1;
	if (!json_is_array(env)) {
		env = json_array();
		json_object_set_new(st->config, "Env", env);
	}
	if (asprintf(&kv, "%s=%s", key, val) < 0 ||
	    (slot = hypr_map_slot(&st->envpos, key, &added)) == NULL)
		goto oom;
	if (added) {
		*slot = (void *)(uintptr_t)(json_array_size(env) + 1);
		json_array_append_new(env, json_string(kv));
	} else {
		size_t i = (size_t)(uintptr_t)*slot - 1;

		st->cfgsize -= json_string_length(json_array_get(env, i));
		json_array_set_new(env, i, json_string(kv));
	}
	st->cfgsize += strlen(kv);
	if (hypr_vars_setkv(&st->vars, kv) < 0)
		goto oom;
	free(kv);
	return 0;
oom:
	free(kv);
	return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
}

/* A port number as BuildKit's parsePortNumber: strconv.ParseInt (a sign
 * allowed) within 0-65535. */
static int
port_number(const char *s, size_t n, long *out)
{
	size_t i = s[0] == '+' || s[0] == '-' ? 1 : 0;
	long v = 0;

	if (n == 0 || i == n)
		return -1;
	for (; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
		if (v > 65535)
			return -1;
	}
	if (s[0] == '-' && v != 0)
		return -1;
	*out = v;
	return 0;
}

/* BuildKit's parsePortRange: "N" or "N-M" with M >= N. */
static int
port_range(const char *s, size_t n, long *lo, long *hi)
{
	const char *dash = memchr(s, '-', n);
	size_t sl = dash ? (size_t)(dash - s) : n;

	if (n == 0 || port_number(s, sl, lo) < 0)
		return -1;
	if (dash == NULL || (n - sl - 1 == sl && memcmp(s, dash + 1, sl) == 0)) {
		*hi = *lo;
		return 0;
	}
	if (port_number(dash + 1, n - sl - 1, hi) < 0 || *hi < *lo)
		return -1;
	return 0;
}

/* One EXPOSE word as BuildKit's parsePort: [[ip:]hostPort:]port[-port][/proto].
 * Only the container ports are kept; an IP and host ports are checked and
 * dropped (BuildKit warns about them). */
static int
add_port(json_t *ports, const char *spec, struct hypr_err *e)
{
	const char *last = strrchr(spec, ':'), *cport = last ? last + 1 : spec;
	const char *hport = NULL, *sl;
	size_t hl = 0, cl;
	char proto[16] = "tcp";
	long lo, hi, hlo, hhi;

	if (last != NULL) {
		const char *prev = last;

		while (prev > spec && prev[-1] != ':')
			prev--;
		hport = prev;
		hl = (size_t)(last - prev);
		if (prev > spec) {	/* an IP: everything before the host port */
			char ip[64];
			size_t il = (size_t)(prev - 1 - spec);
			const char *ib = spec;
			struct in6_addr a;

			if (il > 0 && spec[0] == '[') {
				if (il < 2 || spec[il - 1] != ']')
					return hypr_err_set(e, HYPR_EXIT_INPUT,
					    "invalid IP address %.*s", (int)il, spec);
				ib++;
				il -= 2;
			}
			if (il >= sizeof(ip))
				return hypr_err_set(e, HYPR_EXIT_INPUT, "invalid IP address: %.*s",
				    (int)il, ib);
			memcpy(ip, ib, il);
			ip[il] = '\0';
			if (il > 0 && inet_pton(AF_INET, ip, &a) != 1 &&
			    inet_pton(AF_INET6, ip, &a) != 1)
				return hypr_err_set(e, HYPR_EXIT_INPUT, "invalid IP address: %s", ip);
		}
	}
	sl = strchr(cport, '/');
	cl = sl ? (size_t)(sl - cport) : strlen(cport);
	if (sl && sl[1] != '\0') {
		size_t pl = strlen(sl + 1);

		if (pl >= sizeof(proto))
			return hypr_err_set(e, HYPR_EXIT_INPUT, "invalid proto '%s'", sl + 1);
		for (size_t i = 0; i <= pl; i++)
			proto[i] = (char)tolower((unsigned char)sl[1 + i]);
		if (strcmp(proto, "tcp") && strcmp(proto, "udp") && strcmp(proto, "sctp"))
			return hypr_err_set(e, HYPR_EXIT_INPUT, "invalid proto '%s'", sl + 1);
	}
	if (port_range(cport, cl, &lo, &hi) < 0)
		return hypr_err_set(e, HYPR_EXIT_INPUT, "invalid port '%s'", spec);
	if (hport != NULL && hl > 0) {
		if (port_range(hport, hl, &hlo, &hhi) < 0)
			return hypr_err_set(e, HYPR_EXIT_INPUT, "invalid hostPort: %.*s",
			    (int)hl, hport);
		if (hi - lo != hhi - hlo && hi != lo)
			return hypr_err_set(e, HYPR_EXIT_INPUT,
			    "invalid ranges specified for container and host Ports: %.*s and %.*s",
			    (int)cl, cport, (int)hl, hport);
	}
	for (long p = lo; p <= hi; p++) {
		char k[64];

		snprintf(k, sizeof(k), "%ld/%s", p, proto);
		json_object_set_new(ports, k, json_object());
	}
	return 0;
}

static json_t *
obj_field(json_t *config, const char *key)
{
	json_t *o = json_object_get(config, key);

	if (!json_is_object(o)) {
		o = json_object();
		json_object_set_new(config, key, o);
	}
	return o;
}

static json_t *
words_json(char **w)
{
	json_t *a = json_array();

	for (; w && *w; w++)
		json_array_append_new(a, json_string(*w));
	return a;
}

static json_t *
raw_args(const struct hypr_plan_instr *instr)
{
	return strv_json(instr->args, instr->nargs);
}

static int
is_exec(const struct hypr_plan_instr *instr)
{
	return instr->form && strcmp(instr->form, "exec") == 0;
}

/* Shell form becomes SHELL + [text]; exec form stays as written. */
static json_t *
command_of(struct stage *st, const struct hypr_plan_instr *instr)
{
	json_t *cmd;
	char *text;

	if (is_exec(instr))
		return raw_args(instr);
	cmd = shell_of(st);
	text = join_strv(instr->args, instr->nargs, " ");
	json_array_append_new(cmd, json_string(text ? text : ""));
	free(text);
	return cmd;
}

static char *
dump_compact(json_t *j)
{
	return json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
}

static const char *
arg_value(struct ctx *c, struct stage *st, const char *name)
{
	json_t *v = json_object_get(c->build_args, name);
	static char buf[128];
	const char *p = c->platform ? c->platform : "linux/amd64";
	const char *sl = strchr(p, '/');

	(void)st;
	if (json_is_string(v))
		return json_string_value(v);
	if (strcmp(name, "TARGETPLATFORM") == 0 || strcmp(name, "BUILDPLATFORM") == 0)
		return p;
	if (strcmp(name, "TARGETOS") == 0 || strcmp(name, "BUILDOS") == 0) {
		snprintf(buf, sizeof(buf), "%.*s", sl ? (int)(sl - p) : (int)strlen(p), p);
		return buf;
	}
	if (strcmp(name, "TARGETARCH") == 0 || strcmp(name, "BUILDARCH") == 0) {
		const char *a = sl ? sl + 1 : "amd64", *s2 = strchr(a, '/');

		snprintf(buf, sizeof(buf), "%.*s", s2 ? (int)(s2 - a) : (int)strlen(a), a);
		return buf;
	}
	if (strcmp(name, "TARGETVARIANT") == 0 || strcmp(name, "BUILDVARIANT") == 0) {
		const char *s2 = sl ? strchr(sl + 1, '/') : NULL;

		return s2 ? s2 + 1 : "";
	}
	return NULL;
}

static int
do_arg(struct ctx *c, struct stage *st, const struct hypr_plan_instr *instr, json_t *exp,
    struct hypr_err *e)
{
	for (size_t i = 0; i < instr->npairs; i++) {
		const char *k = instr->pairs[i].key, *dv = instr->pairs[i].value;
		const char *val = NULL;
		char *ex = NULL;
		static int one = 1;

		if ((val = arg_value(c, st, k)) != NULL &&
		    json_is_string(json_object_get(c->build_args, k))) {
			/* --build-arg wins over the default */
		} else if (dv != NULL) {
			const struct hypr_vars *v;

			if ((v = stage_vars(st, e)) == NULL)
				return -1;
			if (hypr_expand_word(dv, v, c->escape, &ex, e) < 0) {
				return -1;
			}
			val = ex;
		} else if (hypr_vars_get(&c->global_args, k) != NULL) {
			val = hypr_vars_get(&c->global_args, k);
		}
		hypr_map_set(&st->declared, k, &one, NULL);
		if (val != NULL) {
			if (stage_set_arg(st, k, val, e) < 0) {
				free(ex);
				return -1;
			}
			json_object_set_new(exp, k, json_string(val));
		} else {
			json_object_set_new(exp, k, json_null());
		}
		free(ex);
	}
	return 0;
}

static int
healthcheck(struct stage *st, const struct hypr_plan_instr *instr, json_t **hc, struct hypr_err *e)
{
	static const struct { const char *flag, *key; } durs[] = {
		{ "interval", "Interval" }, { "timeout", "Timeout" },
		{ "start-period", "StartPeriod" }, { "start-interval", "StartInterval" },
		{ NULL, NULL } };
	const char *a0 = instr->nargs ? instr->args[0] : NULL;
	json_t *test;

	(void)st;
	*hc = json_object();
	if (a0 && strncasecmp(a0, "NONE", 4) == 0 &&
	    (a0[4] == '\0' || isspace((unsigned char)a0[4])) && instr->nargs <= 1) {
		json_object_set_new(*hc, "Test", json_pack("[s]", "NONE"));
		return 0;
	}
	/* The command: "args" starting with CMD. */
	{
		json_t *rest = json_array();
		char *text;

		for (size_t i = 0; i < instr->nargs; i++) {
			const char *s = instr->args[i];

			if (i == 0 && strcasecmp(s, "CMD") == 0)
				continue;
			if (i == 0 && strncasecmp(s, "CMD ", 4) == 0) {
				while (*s && !isspace((unsigned char)*s))
					s++;
				while (isspace((unsigned char)*s))
					s++;
			}
			json_array_append_new(rest, json_string(s));
		}
		if (json_array_size(rest) == 0) {
			json_decref(rest);
			json_decref(*hc);
			return hypr_err_set(e, HYPR_EXIT_INPUT, "HEALTHCHECK: missing command");
		}
		if (is_exec(instr)) {
			test = json_pack("[s]", "CMD");
			json_array_extend(test, rest);
		} else {
			text = join_words(rest, " ");
			test = json_pack("[s,s]", "CMD-SHELL", text ? text : "");
			free(text);
		}
		json_decref(rest);
	}
	json_object_set_new(*hc, "Test", test);
	for (int i = 0; durs[i].flag; i++) {
		const char *v = hypr_plan_flag(instr, durs[i].flag);
		int64_t ns;

		if (v == NULL)
			continue;
		if (parse_duration(v, &ns) < 0 || ns < 0) {
			json_decref(*hc);
			return hypr_err_set(e, HYPR_EXIT_INPUT,
			    "HEALTHCHECK: --%s: invalid duration '%s'", durs[i].flag, v);
		}
		if (ns != 0 && ns < 1000000) {
			json_decref(*hc);
			return hypr_err_set(e, HYPR_EXIT_INPUT,
			    "HEALTHCHECK: --%s cannot be less than 1ms", durs[i].flag);
		}
		if (ns)
			json_object_set_new(*hc, durs[i].key, json_integer(ns));
	}
	if (hypr_plan_flag(instr, "retries")) {
		char *end;
		long r = strtol(hypr_plan_flag(instr, "retries"), &end, 10);

		if (*end || r < 0) {
			json_decref(*hc);
			return hypr_err_set(e, HYPR_EXIT_INPUT,
			    "HEALTHCHECK: --retries: invalid number");
		}
		if (r)
			json_object_set_new(*hc, "Retries", json_integer(r));
	}
	return 0;
}

/* As BuildKit's signal.ParseSignal on Linux: a number 1..64, or a name with
 * or without SIG in any case (RTMIN+n, RTMAX-n included). */
static int
signal_valid(const char *v)
{
	static const char *const names[] = { "ABRT", "ALRM", "BUS", "CHLD", "CLD",
		"CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL", "PIPE", "POLL",
		"PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP",
		"TSTP", "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU",
		"XFSZ", "RTMIN", "RTMAX", NULL };
	char *end;
	long n;

	if (isdigit((unsigned char)v[0])) {
		n = strtol(v, &end, 10);
		return *end == '\0' && n >= 1 && n <= 64;
	}
	if (strncasecmp(v, "SIG", 3) == 0)
		v += 3;
	for (size_t i = 0; names[i]; i++)
		if (strcasecmp(v, names[i]) == 0)
			return 1;
	/* RTMIN+1..RTMIN+15, RTMAX-14..RTMAX-1 */
	if ((strncasecmp(v, "RTMIN+", 6) == 0 || strncasecmp(v, "RTMAX-", 6) == 0) &&
	    isdigit((unsigned char)v[6]) && v[6] != '0') {
		n = strtol(v + 6, &end, 10);
		return *end == '\0' && n >= 1 && n <= (toupper((unsigned char)v[4]) == 'N' ? 15 : 14);
	}
	return 0;
}

int
config_apply(struct ctx *c, struct stage *st, const struct hypr_plan_instr *instr, json_t **expanded,
    char **created_by, struct hypr_err *e)
{
	const char *op = instr->op;
	json_t *cfg = st->config, *exp = NULL;
	char **w = NULL, *text = NULL;
	size_t n = 0, i;
	int r = -1;

	*expanded = NULL;
	*created_by = NULL;
	if (strcmp(op, "ENV") == 0 || strcmp(op, "LABEL") == 0) {
		const struct hypr_vars *v;
		json_t *kv = json_array(), *p;
		char *parts = NULL;
		size_t size;

		if ((v = stage_vars(st, e)) == NULL)
			goto out;
		size = st->cfgsize;
		for (i = 0; i < instr->npairs; i++) {
			const char *k = instr->pairs[i].key, *val = instr->pairs[i].value;
			char *ek = NULL, *ev = NULL;

			if (hypr_expand_word(k, v, c->escape, &ek, e) < 0 ||
			    hypr_expand_word(val ? val : "", v, c->escape, &ev, e) < 0) {
				free(ek);
				json_decref(kv);
				goto out;
			}
			/* counted as if every pair were new: an upper bound */
			size += strlen(ek) + strlen(ev) + 1;
			if (size > MAX_ENV_LABELS) {
				free(ek);
				free(ev);
				json_decref(kv);
				hypr_err_set(e, HYPR_EXIT_INPUT, "%s would make the image config's Env "
				    "and Labels larger than %u bytes (hypr's limit)", op, MAX_ENV_LABELS);
				goto out;
			}
			json_array_append_new(kv, json_pack("[s,s]", ek, ev));
			free(ek);
			free(ev);
		}
		json_array_foreach(kv, i, p) {
			const char *k = json_string_value(json_array_get(p, 0));
			const char *val = json_string_value(json_array_get(p, 1));
			char *np;

			if (op[0] == 'E') {
				if (set_env(st, k, val, e) < 0) {
					json_decref(kv);
					free(parts);
					goto out;
				}
			} else {
				json_t *labels = obj_field(cfg, "Labels"), *old;

				if ((old = json_object_get(labels, k)) != NULL)
					st->cfgsize -= strlen(k) + json_string_length(old);
				st->cfgsize += strlen(k) + strlen(val);
				json_object_set_new(labels, k, json_string(val));
			}
			if (asprintf(&np, "%s%s%s=%s", parts ? parts : "",
			    parts ? " " : "", k, val) < 0)
				np = NULL;
			free(parts);
			parts = np;
		}
		exp = kv;
		if (asprintf(created_by, "%s %s", op, parts ? parts : "") < 0)
			*created_by = NULL;
		free(parts);
	} else if (strcmp(op, "ARG") == 0) {
		char *s;

		exp = json_object();
		if (do_arg(c, st, instr, exp, e) < 0)
			goto out;
		s = join_strv(instr->args, instr->nargs, " ");
		if (s == NULL || s[0] == '\0') {
			char *acc = NULL, *na;

			for (i = 0; i < instr->npairs; i++) {
				const char *k = instr->pairs[i].key, *pv = instr->pairs[i].value;

				if (asprintf(&na, "%s%s%s%s%s", acc ? acc : "",
				    acc ? " " : "", k, pv ? "=" : "", pv ? pv : "") < 0)
					na = NULL;
				free(acc);
				acc = na;
			}
			free(s);
			s = acc;
		}
		if (asprintf(created_by, "ARG %s", s ? s : "") < 0)
			*created_by = NULL;
		free(s);
	} else if (strcmp(op, "EXPOSE") == 0) {
		json_t *ports = obj_field(cfg, "ExposedPorts");

		if (expand_args(c, st, instr, &w, &n, e) < 0)
			goto out;
		for (i = 0; i < n; i++)
			if (add_port(ports, w[i], e) < 0)
				goto out;
		exp = words_json(w);
		text = join_words(exp, " ");
		if (asprintf(created_by, "EXPOSE %s", text ? text : "") < 0)
			*created_by = NULL;
	} else if (strcmp(op, "VOLUME") == 0) {
		json_t *vols = obj_field(cfg, "Volumes");

		if (expand_args(c, st, instr, &w, &n, e) < 0)
			goto out;
		if (n == 0) {
			hypr_err_set(e, HYPR_EXIT_INPUT, "VOLUME: no path given");
			goto out;
		}
		for (i = 0; i < n; i++) {
			if (w[i][0] == '\0') {
				hypr_err_set(e, HYPR_EXIT_INPUT,
				    "VOLUME specified can not be an empty string");
				goto out;
			}
			json_object_set_new(vols, w[i], json_object());
		}
		exp = words_json(w);
		text = dump_compact(exp);
		if (asprintf(created_by, "VOLUME %s", text ? text : "") < 0)
			*created_by = NULL;
	} else if (strcmp(op, "CMD") == 0 || strcmp(op, "ENTRYPOINT") == 0) {
		json_t *cmd = command_of(st, instr);

		if (op[0] == 'C') {
			json_object_set(cfg, "Cmd", cmd);
			st->cmd_set = 1;
		} else {
			json_object_set(cfg, "Entrypoint", cmd);
			if (!st->cmd_set)
				json_object_del(cfg, "Cmd");
		}
		exp = cmd;
		text = dump_compact(cmd);
		if (asprintf(created_by, "%s %s", op, text ? text : "") < 0)
			*created_by = NULL;
	} else if (strcmp(op, "HEALTHCHECK") == 0) {
		json_t *hc;

		if (healthcheck(st, instr, &hc, e) < 0)
			goto out;
		json_object_set_new(cfg, "Healthcheck", hc);
		exp = json_incref(hc);
		text = dump_compact(hc);
		if (asprintf(created_by, "HEALTHCHECK %s", text ? text : "") < 0)
			*created_by = NULL;
	} else if (strcmp(op, "SHELL") == 0) {
		if (!is_exec(instr) || instr->nargs == 0) {
			hypr_err_set(e, HYPR_EXIT_INPUT, "SHELL requires the arguments to be in JSON form");
			goto out;
		}
		exp = raw_args(instr);
		json_object_set(cfg, "Shell", exp);
		text = dump_compact(exp);
		if (asprintf(created_by, "SHELL %s", text ? text : "") < 0)
			*created_by = NULL;
	} else if (strcmp(op, "STOPSIGNAL") == 0 || strcmp(op, "USER") == 0 ||
	    strcmp(op, "WORKDIR") == 0 || strcmp(op, "MAINTAINER") == 0) {
		const struct hypr_vars *v;
		char *raw = join_strv(instr->args, instr->nargs, " "), *val;
		int literal;

		if (raw == NULL || (v = stage_vars(st, e)) == NULL) {
			free(raw);
			goto out;
		}
		if (strcmp(op, "MAINTAINER") == 0) {
			val = strdup(raw);
		} else if (hypr_expand_word(raw, v, c->escape, &val, e) < 0) {
			free(raw);
			goto out;
		}
		literal = val != NULL && strcmp(raw, val) == 0;
		free(raw);
		if (val == NULL)
			goto out;
		if (strcmp(op, "STOPSIGNAL") == 0) {
			if (!signal_valid(val)) {
				if (literal)
					hypr_err_set(e, HYPR_EXIT_INPUT, "invalid signal");
				else
					hypr_err_set(e, HYPR_EXIT_INPUT, "invalid signal '%s'", val);
				free(val);
				goto out;
			}
			json_object_set_new(cfg, "StopSignal", json_string(val));
		} else if (strcmp(op, "USER") == 0) {
			json_object_set_new(cfg, "User", json_string(val));
		} else if (strcmp(op, "MAINTAINER") == 0) {
			free(st->author);
			st->author = strdup(val);
		} else {
			const char *prev = hypr_json_str(cfg, "WorkingDir");
			char *joined, *rel, *clean;

			if (val[0] == '\0') {
				free(val);
				hypr_err_set(e, HYPR_EXIT_INPUT, "WORKDIR: empty path");
				goto out;
			}
			if (val[0] == '/')
				joined = strdup(val);
			else if (asprintf(&joined, "%s/%s", prev && *prev ? prev : "/",
			    val) < 0)
				joined = NULL;
			rel = joined ? hypr_path_clean(joined) : NULL;
			if (rel == NULL || asprintf(&clean, "/%s", rel) < 0)
				clean = NULL;
			free(rel);
			free(joined);
			free(val);
			if ((val = clean) == NULL)
				goto out;
			json_object_set_new(cfg, "WorkingDir", json_string(val));
		}
		exp = json_string(val);
		if (asprintf(created_by, "%s %s", op, val) < 0)
			*created_by = NULL;
		free(val);
	} else if (strcmp(op, "ONBUILD") == 0) {
		const char *orig = instr->original;
		const char *t = orig ? orig : "";
		json_t *ob;

		while (isspace((unsigned char)*t))
			t++;
		if (strncasecmp(t, "ONBUILD", 7) == 0)
			t += 7;
		while (isspace((unsigned char)*t))
			t++;
		ob = json_object_get(cfg, "OnBuild");
		if (!json_is_array(ob)) {
			ob = json_array();
			json_object_set_new(cfg, "OnBuild", ob);
		}
		json_array_append_new(ob, json_string(t));
		exp = json_string(t);
		if (asprintf(created_by, "ONBUILD %s", t) < 0)
			*created_by = NULL;
	} else {
		hypr_err_set(e, HYPR_EXIT_INPUT, "unknown instruction '%s'", op);
		goto out;
	}
	if (*created_by == NULL) {
		hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
		goto out;
	}
	*expanded = exp;
	exp = NULL;
	r = 0;
out:
	json_decref(exp);
	hypr_words_free(w);
	free(text);
	return r;
}
