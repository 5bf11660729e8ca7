/* stream.c - hypr-fetch's plan mode: the plan in, each FROM, COPY --from
 * and RUN --mount from= image resolved, the resolved plan out
 * (hypr-resolved(5)). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fetch.h"
#include "map.h"
#include "plan.h"
#include "stream.h"
#include "tool.h"

/* The plan's header line is read ahead to learn its "needs": hypr-fetch
 * passes records through untouched, so any feature is fine here and the
 * stages after it check their own. */
struct ahead {
	char *line;
	size_t len, off;
	FILE *rest;
};

static ssize_t
ahead_read(void *cookie, char *buf, size_t n)
{
	struct ahead *a = cookie;

	if (a->off < a->len) {
		size_t k = a->len - a->off < n ? a->len - a->off : n;

		memcpy(buf, a->line + a->off, k);
		a->off += k;
		return (ssize_t)k;
	}
	return (ssize_t)fread(buf, 1, n, a->rest);
}

static FILE *
open_plan(FILE *in, const char ***known)
{
	static struct ahead a;
	static const char *list[64];
	cookie_io_functions_t io = { .read = ahead_read };
	size_t cap = 0, i, k = 0;
	ssize_t n;
	json_t *h, *v;

	a.rest = in;
	if ((n = getline(&a.line, &cap, in)) > 0) {
		a.len = (size_t)n;
		h = json_loadb(a.line, a.len, 0, NULL);
		json_array_foreach(json_object_get(h, "needs"), i, v)
			if (json_is_string(v) && k + 1 < sizeof(list) / sizeof(list[0]))
				list[k++] = strdup(json_string_value(v));
		json_decref(h);
	}
	list[k] = NULL;
	*known = list;
	return fopencookie(&a, "r", io);
}

/* The stream mode: plan in, resolved out. */
/* RUN --mount from= values that name no stage are images: resolve each
 * once into the record's mount_from (hypr-resolved(5)). */
static int
mount_images(struct fetch *f, struct hypr_plan_instr *in, const char *platform,
    struct hypr_err *e)
{
	struct hypr_map added = { 0 };
	const char **specs;
	size_t n;

	if (hypr_plan_flag_all(in, "mount", &specs, &n, e) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const char *p;
		char from[1024];
		json_t *img;
		int r;

		for (p = specs[i]; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
			size_t l = strcspn(p, ",");

			if (l > 5 && !strncasecmp(p, "from=", 5) && l - 5 < sizeof(from)) {
				memcpy(from, p + 5, l - 5);
				from[l - 5] = '\0';
				break;
			}
		}
		/* a stage (the plan's own entry), a variable, or resolved already */
		if (!p || !*p || strchr(from, '$') || hypr_plan_mount_from(in, from) ||
		    hypr_map_get(&added, from))
			continue;
		if (fetch_resolve(f, from, platform, &img, e) < 0)
			goto fail;
		r = hypr_plan_instr_add_mount_image(in, from, img, e);
		json_decref(img);
		if (r < 0)
			goto fail;
		if (hypr_map_set(&added, from, (void *)1, NULL) < 0) {
			hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
			goto fail;
		}
	}
	free(specs);
	hypr_map_free(&added, NULL);
	return 0;
fail:
	free(specs);
	hypr_map_free(&added, NULL);
	return -1;
}

int
fetch_stream(struct fetch *f, const char *platform, struct hypr_err *e)
{
	struct hypr_stream_in in;
	struct hypr_stream_out out;
	struct hypr_plan_header h;
	struct hypr_plan_rec rec;
	json_t *hdr = NULL, *img;
	const char **known;
	const char *dflt;
	struct hypr_map plats = { 0 };	/* stage index -> its platform */
	FILE *pf = open_plan(stdin, &known);
	int k, rc = -1;

	if (pf == NULL)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "reading the plan");
	if (hypr_stream_open(&in, pf, "plan", "plan", 1, known, e) < 0)
		return -1;
	if (hypr_plan_header(&in, &h, e) < 0) {
		hypr_stream_close(&in);
		return -1;
	}
	if ((hdr = hypr_plan_resolved_header(&in, platform)) == NULL) {
		hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
		goto fail;
	}
	if (fetch_cache_from(f, hdr, e) < 0)
		goto fail;
	dflt = platform ? platform : h.platform;
	if (hypr_stream_begin(&out, stdout, "resolved", 1, hdr, e) < 0)
		goto fail;
	while ((k = hypr_plan_next(&in, &rec, e)) == 1) {
		if (rec.kind == HYPR_PLAN_STAGE) {
			struct hypr_plan_stage *st = &rec.u.stage;
			const char *p = st->platform && *st->platform ? st->platform : dflt;
			char idx[32], *old = NULL, *copy = strdup(p ? p : "");

			snprintf(idx, sizeof(idx), "%d", st->index);
			if (copy == NULL || hypr_map_set(&plats, idx, copy, (void **)&old) < 0) {
				free(copy);
				hypr_plan_rec_free(&rec);
				hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
				goto fail;
			}
			free(old);
			if (strcmp(st->base, "scratch") != 0 && st->base_stage < 0) {
				if (fetch_resolve(f, st->base, p, &img, e) < 0) {
					hypr_err_prefix(e, "line %ld", st->line[0]);
					hypr_plan_rec_free(&rec);
					goto fail;
				}
				k = hypr_plan_stage_set_image(st, img, e);
				json_decref(img);
				if (k < 0) {
					hypr_plan_rec_free(&rec);
					goto fail;
				}
			}
		} else if (rec.kind == HYPR_PLAN_INSTR) {
			struct hypr_plan_instr *ins = &rec.u.instr;
			const char *from = hypr_plan_flag(ins, "from");
			const char *p;
			char idx[32];

			snprintf(idx, sizeof(idx), "%d", ins->stage);
			p = hypr_map_get(&plats, idx);
			if (!p || !*p)
				p = dflt;
			if (from && *from && ins->from_stage < 0) {
				if (fetch_resolve(f, from, p, &img, e) < 0) {
					hypr_err_prefix(e, "line %ld: --from", ins->line[0]);
					hypr_plan_rec_free(&rec);
					goto fail;
				}
				k = hypr_plan_instr_set_from_image(ins, img, e);
				json_decref(img);
				if (k < 0) {
					hypr_plan_rec_free(&rec);
					goto fail;
				}
			}
			if (mount_images(f, ins, p, e) < 0) {
				hypr_err_prefix(e, "line %ld: --mount from", ins->line[0]);
				hypr_plan_rec_free(&rec);
				goto fail;
			}
		}
		k = hypr_stream_put(&out, rec.json, e);
		hypr_plan_rec_free(&rec);
		if (k < 0)
			goto fail;
	}
	if (k < 0 || hypr_stream_end(&out, e) < 0)
		goto fail;
	rc = 0;
fail:
	hypr_map_free(&plats, free);
	json_decref(hdr);
	hypr_plan_header_free(&h);
	hypr_stream_close(&in);
	return rc;
}

