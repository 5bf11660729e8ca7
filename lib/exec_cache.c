/* exec_cache.c - instruction cache keys, and lookups in $HYPR_ROOT/cache/
 * (entries in lib/cache.c, written by hypr-layer; their format: hypr(7)). */
#include "exec_int.h"

#include <stdlib.h>
#include <string.h>

#include "cache.h"

/* The key: sha256 over a canonical JSON (sorted keys, compact) of the
 * parent key, the instruction as written, its expansion, the build-arg
 * values in scope, and a digest of COPY/ADD sources. The config a step
 * sees is a function of its parent key, so it is not hashed again. */
int
cache_key(struct ctx *c, struct stage *st, const struct hypr_plan_instr *instr,
    json_t *expanded, const char *sources, char out[HYPR_DIGEST_LEN + 1],
    struct hypr_err *e)
{
	json_t *k = json_object(), *in = hypr_plan_instr_key(instr), *args = json_object();
	char *s;
	int rc;

	if (k == NULL || in == NULL || args == NULL) {
		json_decref(k);
		json_decref(in);
		json_decref(args);
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	}
	for (size_t i = 0; i < st->args.n; i++) {
		const char *kv = st->args.kv[i], *eq = strchr(kv, '=');
		char name[256];

		if (eq == NULL || (size_t)(eq - kv) >= sizeof(name))
			continue;
		memcpy(name, kv, (size_t)(eq - kv));
		name[eq - kv] = '\0';
		if (!arg_is_proxy(name))
			json_object_set_new(args, name, json_string(eq + 1));
	}
	json_object_set_new(k, "v", json_integer(1));
	json_object_set_new(k, "parent", json_string(st->key));
	json_object_set_new(k, "platform", json_string(c->platform ? c->platform : ""));
	json_object_set_new(k, "instr", in);
	json_object_set_new(k, "args", args);
	if (expanded)
		json_object_set(k, "expanded", expanded);
	if (sources)
		json_object_set_new(k, "sources", json_string(sources));
	s = json_dumps(k, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(k);
	if (s == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	rc = hypr_digest_buf(s, strlen(s), out, e);
	free(s);
	return rc;
}

int
cache_lookup(struct ctx *c, struct step *s)
{
	if (!c->no_cache && hypr_digest_valid(s->key) &&
	    (s->cached = hypr_cache_get(&c->root, s->key, &s->layer, &s->has_layer)))
		return 1;
	/* a miss: every later step of the stage misses too, so a RUN to come
	 * will need the VM; its boot overlaps this step's work */
	run_prestart(c, s->st);
	return s->cached = 0;
}
