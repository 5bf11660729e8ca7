/* exec_cache.c - instruction cache keys, and lookups in $HYPR_ROOT/cache/
 * (entries in lib/cache.c, written by hypr-layer; their format: hypr(7)). */
#include "exec_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "cacheio.h"
#include "image.h"
#include "plan.h"

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
cache_import_open(struct ctx *c, struct hypr_err *e)
{
	json_t *list = hypr_plan_cache_from(&c->hdr), *x;
	size_t i;

	if (list == NULL || c->no_cache)
		return 0;
	if ((c->imported = json_object()) == NULL || (c->remote = json_object()) == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	json_array_foreach(list, i, x) {
		const char *src = hypr_json_str(x, "source"), *ix = hypr_json_str(x, "index");
		json_t *entries, *v;
		const char *k;

		if (src == NULL || ix == NULL)
			return hypr_err_set(e, HYPR_EXIT_INPUT,
			    "resolved: header: cache_from[%zu]: want source and index", i);
		if ((entries = hypr_cacheio_load(&c->root, ix, e)) == NULL)
			return hypr_err_prefix(e, "--cache-from %s", src);
		/* the first cache that has a key wins, as buildx's order */
		json_object_foreach(entries, k, v)
			if (json_object_get(c->imported, k) == NULL) {
				json_object_set_new(v, "source", json_string(src));
				json_object_set(c->imported, k, v);
			}
		json_decref(entries);
	}
	return 0;
}

/* Record an imported entry in $HYPR_ROOT/cache, now that its layer (if
 * any) is here: the next build needs no --cache-from for it. */
static void
import_put(struct ctx *c, json_t *en, const struct hypr_layer *l)
{
	struct hypr_err ignore = { 0 };
	char now[40];

	hypr_image_time((int64_t)time(NULL), now, sizeof(now));
	hypr_cache_put(&c->root, hypr_json_str(en, "key"), hypr_json_str(en, "op"),
	    hypr_json_str(en, "created_by"), l, now, &ignore);
}

/* A hit in an imported index. Only plain tar layers (digest = diff_id):
 * what a step of hypr-exec makes. */
static int
import_get(struct ctx *c, struct step *s)
{
	struct hypr_rec_at at = { .stream = "cache", .what = "cache" };
	struct hypr_err ignore = { 0 };
	json_t *en = json_object_get(c->imported, s->key), *l;

	if (en == NULL)
		return 0;
	l = json_object_get(en, "layer");
	s->has_layer = 0;
	if (l == NULL || json_is_null(l)) {
		import_put(c, en, NULL);
		return 1;
	}
	if (hypr_layer_decode(&at, l, &s->layer, &ignore) < 0 ||
	    (s->layer.media_type[0] && strcmp(s->layer.media_type, HYPR_MEDIA_LAYER_TAR)) ||
	    (s->layer.diff_id[0] && strcmp(s->layer.diff_id, s->layer.digest)) ||
	    s->layer.size < 0)
		return 0;
	memcpy(s->layer.diff_id, s->layer.digest, sizeof(s->layer.diff_id));
	snprintf(s->layer.media_type, sizeof(s->layer.media_type), "%s", HYPR_MEDIA_LAYER_TAR);
	s->has_layer = 1;
	if (hypr_blob_has(&c->root, s->layer.digest))
		import_put(c, en, &s->layer);
	else
		json_object_set(c->remote, s->layer.digest, en);
	return 1;
}

int
layers_fetch(struct ctx *c, const struct hypr_layer *layers, size_t n, struct hypr_err *e)
{
	for (size_t i = 0; c->remote && i < n; i++) {
		json_t *en = json_object_get(c->remote, layers[i].digest);
		const char *src = hypr_json_str(en, "source");

		if (en == NULL)
			continue;
		if (!hypr_blob_has(&c->root, layers[i].digest)) {
			hypr_events_say(c->ev, HYPR_EV_INFO, 0, 0,
			    "fetching layer %s from the cache %s", layers[i].digest, src);
			if (hypr_cacheio_blob(&c->root, src, layers[i].digest, layers[i].size,
			    e) < 0)
				return -1;
			c->cache_fetched++;
		}
		import_put(c, en, &layers[i]);
		json_object_del(c->remote, layers[i].digest);
	}
	return 0;
}

int
cache_lookup(struct ctx *c, struct step *s)
{
	if (!c->no_cache && hypr_digest_valid(s->key) &&
	    ((s->cached = hypr_cache_get(&c->root, s->key, &s->layer, &s->has_layer)) ||
	    (c->imported && (s->cached = import_get(c, s)))))
		return 1;
	/* a miss: every later step of the stage misses too, so a RUN to come
	 * will need the VM; its boot overlaps this step's work */
	run_prestart(c, s->st);
	return s->cached = 0;
}
