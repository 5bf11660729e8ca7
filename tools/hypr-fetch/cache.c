/* cache.c - hypr-fetch's part of the build cache out and in (lib/cacheio.h,
 * hypr-cache(5)): --cache-from in plan mode, and cache-export. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "cacheio.h"
#include "fetch.h"
#include "plan.h"
#include "steps.h"
#include "stream.h"
#include "tool.h"

int
fetch_cache_from(struct fetch *f, json_t *hdr, struct hypr_err *e)
{
	json_t *list;
	int rc = 0;

	if (f->ncache_from == 0)
		return 0;
	if ((list = json_array()) == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	for (size_t i = 0; i < f->ncache_from; i++) {
		struct hypr_cache_spec sp;
		struct hypr_err we = { 0 };
		char index[HYPR_DIGEST_LEN + 1];

		if (hypr_cache_spec_parse(f->cache_from[i], 0, &sp, e) < 0) {
			json_decref(list);
			return -1;
		}
		/* buildx: a cache that cannot be imported is not an error */
		if (hypr_cacheio_import(&f->root, &sp, f->insecure, index, &we) < 0) {
			hypr_warn("--cache-from %s: not imported: %s", f->cache_from[i], we.msg);
			continue;
		}
		json_array_append_new(list, json_pack("{s:s,s:s}", "source", f->cache_from[i],
		    "index", index));
	}
	if (json_array_size(list) > 0 && hypr_plan_set_cache_from(hdr, list) < 0)
		rc = hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	json_decref(list);
	return rc;
}

/* A step's index entry: the local cache entry's fields (created), else the
 * step record's. NULL when its layer's bytes are not here (a layer a
 * --cache-from named and this build never needed): it cannot be sent. */
static json_t *
entry_of(struct fetch *f, const struct hypr_steps_step *s)
{
	json_t *l = s->has_layer ? hypr_layer_json(&s->layer, HYPR_MEDIA_LAYER_TAR) :
	    json_null();
	json_t *j;

	if (s->has_layer && !hypr_blob_has(&f->root, s->layer.digest)) {
		json_decref(l);
		return NULL;
	}
	j = json_pack("{s:s,s:s,s:s,s:o}", "key", s->key, "op", s->op ? s->op : "",
	    "created_by", s->created_by ? s->created_by : (s->op ? s->op : ""), "layer", l);
	return j;
}

int
fetch_cache_export(struct fetch *f, const char *to, struct hypr_err *e)
{
	struct hypr_cache_spec sp;
	struct hypr_stream_in in;
	struct hypr_steps_header h;
	struct hypr_steps_rec rec;
	json_t *all = json_array(), *final = json_object(), *out = json_array(), *x, *seen;
	char digest[HYPR_DIGEST_LEN + 1];
	int r, fin = -1;
	size_t i, skipped = 0;

	if (hypr_cache_spec_parse(to, 1, &sp, e) < 0)
		return -1;
	hypr_refuse_tty_stdin("a steps stream");
	if (hypr_stream_open(&in, stdin, "steps", "steps", HYPR_STEPS_VERSION, NULL, e) < 0 ||
	    hypr_steps_header(&in, &h, e) < 0)
		return -1;
	/* every step, with its stage; the final stage's layers for mode=min */
	while ((r = hypr_steps_next(&in, &rec, e)) == 1) {
		if (rec.kind == HYPR_STEPS_STAGE && rec.u.stage.final) {
			fin = rec.u.stage.index;
			for (size_t k = 0; k < rec.u.stage.nbase_layers; k++)
				json_object_set_new(final, rec.u.stage.base_layers[k].digest,
				    json_true());
		} else if (rec.kind == HYPR_STEPS_STEP) {
			const struct hypr_steps_step *s = &rec.u.step;
			json_t *j = entry_of(f, s);

			if (j == NULL) {
				skipped++;
			} else {
				json_object_set_new(j, "_stage", json_integer(s->stage));
				json_array_append_new(all, j);
			}
			if (s->stage == fin && s->has_layer)
				json_object_set_new(final, s->layer.digest, json_true());
		}
		hypr_steps_rec_free(&rec);
	}
	hypr_steps_header_free(&h);
	hypr_stream_close(&in);
	if (r < 0) {
		json_decref(all);
		json_decref(final);
		json_decref(out);
		return -1;
	}
	/* min: the final stage's steps, and those of other stages whose layer
	 * the final image holds; max: every step. Each key once. */
	seen = json_object();
	json_array_foreach(all, i, x) {
		const char *d = hypr_json_str(json_object_get(x, "layer"), "digest");
		const char *k = hypr_json_str(x, "key");
		int keep = sp.max || json_integer_value(json_object_get(x, "_stage")) == fin ||
		    (d && json_object_get(final, d));

		json_object_del(x, "_stage");
		if (keep && !json_object_get(seen, k)) {
			json_object_set_new(seen, k, json_true());
			json_array_append(out, x);
		}
	}
	json_decref(seen);
	json_decref(all);
	json_decref(final);
	if (skipped && !f->quiet)
		hypr_warn("cache-export: %zu step(s) left out: their layers are not in this store",
		    skipped);
	r = hypr_cacheio_export(&f->root, &sp, f->insecure, out, f->quiet ? NULL : stderr,
	    digest, e);
	if (r == 0 && !f->quiet)
		fprintf(stderr, "exported %zu cache entries to %s: %s\n", json_array_size(out),
		    sp.local ? sp.dir : sp.ref, digest);
	json_decref(out);
	return r;
}
