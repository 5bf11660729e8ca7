/* record.c - typed fields of stream records and the layer object. See record.h. */
#include "record.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
verr(const struct hypr_rec_at *at, const char *key, struct hypr_err *e,
    const char *fmt, va_list ap)
{
	char why[256], where[160];

	vsnprintf(why, sizeof(why), fmt, ap);
	if (at->line > 0)
		snprintf(where, sizeof(where), "%s:%ld", at->stream, at->line);
	else
		snprintf(where, sizeof(where), "%s", at->stream);
	return hypr_err_set(e, HYPR_EXIT_INPUT, "%s: %s record: %s%s%s: %s", where,
	    at->what, at->prefix ? at->prefix : "", at->prefix && *key ? "." : "", key, why);
}

int
hypr_rec_err(const struct hypr_rec_at *at, const char *key, struct hypr_err *e,
    const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = verr(at, key, e, fmt, ap);
	va_end(ap);
	return r;
}

/* The field, NULL when absent (or null and allowed); -1 when it must be there. */
static int
field(const struct hypr_rec_at *at, json_t *o, const char *key, int flags, json_t **v,
    struct hypr_err *e)
{
	if ((*v = json_object_get(o, key)) == NULL)
		return flags & HYPR_F_REQ ? hypr_rec_err(at, key, e, "missing") : 0;
	if (json_is_null(*v) && (flags & HYPR_F_NULL))
		*v = NULL;
	return 0;
}

int
hypr_rec_str(const struct hypr_rec_at *at, json_t *o, const char *key, int flags,
    const char **out, struct hypr_err *e)
{
	json_t *v;

	*out = NULL;
	if (field(at, o, key, flags, &v, e) < 0)
		return -1;
	if (v == NULL)
		return 0;
	if (!json_is_string(v))
		return hypr_rec_err(at, key, e, "not a string");
	*out = json_string_value(v);
	return 0;
}

int
hypr_rec_digest(const struct hypr_rec_at *at, json_t *o, const char *key, int flags,
    const char **out, struct hypr_err *e)
{
	if (hypr_rec_str(at, o, key, flags, out, e) < 0)
		return -1;
	if (*out && !hypr_digest_valid(*out))
		return hypr_rec_err(at, key, e, "not a digest");
	return 0;
}

int
hypr_rec_int(const struct hypr_rec_at *at, json_t *o, const char *key, int flags,
    json_int_t min, json_int_t max, json_int_t *out, struct hypr_err *e)
{
	json_t *v;

	if (field(at, o, key, flags, &v, e) < 0)
		return -1;
	if (v == NULL)
		return 0;
	if (!json_is_integer(v))
		return hypr_rec_err(at, key, e, "not an integer");
	if (json_integer_value(v) < min || json_integer_value(v) > max)
		return hypr_rec_err(at, key, e, "out of range");
	*out = json_integer_value(v);
	return 0;
}

int
hypr_rec_bool(const struct hypr_rec_at *at, json_t *o, const char *key, int flags,
    int *out, struct hypr_err *e)
{
	json_t *v;

	if (field(at, o, key, flags, &v, e) < 0)
		return -1;
	if (v == NULL)
		return 0;
	if (!json_is_boolean(v))
		return hypr_rec_err(at, key, e, "not true or false");
	*out = json_is_true(v);
	return 0;
}

int
hypr_rec_obj(const struct hypr_rec_at *at, json_t *o, const char *key, int flags,
    json_t **out, struct hypr_err *e)
{
	json_t *v;

	*out = NULL;
	if (field(at, o, key, flags, &v, e) < 0)
		return -1;
	if (v != NULL && !json_is_object(v))
		return hypr_rec_err(at, key, e, "not an object");
	*out = v;
	return 0;
}

int
hypr_rec_arr(const struct hypr_rec_at *at, json_t *o, const char *key, int flags,
    json_t **out, struct hypr_err *e)
{
	json_t *v;

	*out = NULL;
	if (field(at, o, key, flags, &v, e) < 0)
		return -1;
	if (v != NULL && !json_is_array(v))
		return hypr_rec_err(at, key, e, "not an array");
	*out = v;
	return 0;
}

int
hypr_rec_strv(const struct hypr_rec_at *at, json_t *o, const char *key, int flags,
    const char ***out, size_t *n, struct hypr_err *e)
{
	json_t *a, *x;
	size_t i;

	*out = NULL;
	*n = 0;
	if (hypr_rec_arr(at, o, key, flags, &a, e) < 0)
		return -1;
	if (a == NULL)
		return 0;
	if ((*out = calloc(json_array_size(a) + 1, sizeof(**out))) == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	json_array_foreach(a, i, x) {
		if (!json_is_string(x)) {
			free(*out);
			*out = NULL;
			return hypr_rec_err(at, key, e, "item %zu is not a string", i);
		}
		(*out)[i] = json_string_value(x);
	}
	*n = json_array_size(a);
	return 0;
}

int
hypr_rec_strmap(const struct hypr_rec_at *at, json_t *o, const char *key, int flags,
    json_t **out, struct hypr_err *e)
{
	const char *k;
	json_t *v;

	if (hypr_rec_obj(at, o, key, flags, out, e) < 0)
		return -1;
	json_object_foreach(*out, k, v)
		if (!json_is_string(v))
			return hypr_rec_err(at, key, e, "%.100s is not a string", k);
	return 0;
}

int
hypr_rec_lines(const struct hypr_rec_at *at, json_t *o, const char *key, int flags,
    long line[2], struct hypr_err *e)
{
	json_t *a;

	if (hypr_rec_arr(at, o, key, flags, &a, e) < 0)
		return -1;
	if (a == NULL)
		return 0;
	if (json_array_size(a) != 2 || !json_is_integer(json_array_get(a, 0)) ||
	    !json_is_integer(json_array_get(a, 1)) ||
	    json_integer_value(json_array_get(a, 0)) < 0 ||
	    json_integer_value(json_array_get(a, 0)) > json_integer_value(json_array_get(a, 1)) ||
	    json_integer_value(json_array_get(a, 1)) > 0x7fffffff)
		return hypr_rec_err(at, key, e, "not a [first, last] line range");
	line[0] = (long)json_integer_value(json_array_get(a, 0));
	line[1] = (long)json_integer_value(json_array_get(a, 1));
	return 0;
}

const char *
hypr_rec_type(json_t *rec)
{
	return json_string_value(json_object_get(rec, "type"));
}

json_t *
hypr_rec_new(const char *type)
{
	return json_pack("{s:s}", "type", type);
}

/* ---- layers ---- */

static const char *const F_DIGEST = "digest", *const F_DIFF_ID = "diff_id",
    *const F_SIZE = "size", *const F_MEDIA_TYPE = "media_type";

int
hypr_layer_decode(const struct hypr_rec_at *at, json_t *o, struct hypr_layer *l,
    struct hypr_err *e)
{
	const char *d, *di, *mt;
	json_int_t size = 0;

	memset(l, 0, sizeof(*l));
	if (!json_is_object(o))
		return hypr_rec_err(at, "", e, "not a layer object");
	if (hypr_rec_digest(at, o, F_DIGEST, HYPR_F_REQ, &d, e) < 0 ||
	    hypr_rec_digest(at, o, F_DIFF_ID, HYPR_F_NULL, &di, e) < 0 ||
	    hypr_rec_int(at, o, F_SIZE, HYPR_F_NULL, 0, INT64_MAX, &size, e) < 0 ||
	    hypr_rec_str(at, o, F_MEDIA_TYPE, HYPR_F_NULL, &mt, e) < 0)
		return -1;
	if (mt && strlen(mt) >= sizeof(l->media_type))
		return hypr_rec_err(at, F_MEDIA_TYPE, e, "too long");
	memcpy(l->digest, d, HYPR_DIGEST_LEN + 1);
	if (di)
		memcpy(l->diff_id, di, HYPR_DIGEST_LEN + 1);
	l->size = size;
	if (mt)
		memcpy(l->media_type, mt, strlen(mt) + 1);
	return 0;
}

void
hypr_layer_set(struct hypr_layer *l, const char *digest, int64_t size,
    const char *media_type)
{
	memset(l, 0, sizeof(*l));
	snprintf(l->digest, sizeof(l->digest), "%s", digest);
	snprintf(l->diff_id, sizeof(l->diff_id), "%s", digest);
	l->size = size;
	snprintf(l->media_type, sizeof(l->media_type), "%s", media_type);
}

json_t *
hypr_layer_json(const struct hypr_layer *l, const char *dflt_mt)
{
	return json_pack("{s:s,s:s,s:I,s:s}", F_DIGEST, l->digest, F_DIFF_ID,
	    l->diff_id[0] ? l->diff_id : l->digest, F_SIZE, (json_int_t)l->size,
	    F_MEDIA_TYPE, l->media_type[0] ? l->media_type : dflt_mt);
}

int
hypr_layers_add(struct hypr_layers *ls, const struct hypr_layer *l, struct hypr_err *e)
{
	if (ls->n == ls->cap) {
		size_t cap = ls->cap ? ls->cap * 2 : 8;
		struct hypr_layer *v = realloc(ls->v, cap * sizeof(*v));

		if (v == NULL)
			return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
		ls->v = v;
		ls->cap = cap;
	}
	ls->v[ls->n++] = *l;
	return 0;
}

int
hypr_layers_copy(struct hypr_layers *dst, const struct hypr_layers *src,
    struct hypr_err *e)
{
	memset(dst, 0, sizeof(*dst));
	for (size_t i = 0; i < src->n; i++)
		if (hypr_layers_add(dst, &src->v[i], e) < 0) {
			hypr_layers_free(dst);
			return -1;
		}
	return 0;
}

void
hypr_layers_free(struct hypr_layers *ls)
{
	free(ls->v);
	memset(ls, 0, sizeof(*ls));
}

const char **
hypr_layers_digests(const struct hypr_layer *v, size_t n)
{
	const char **d = calloc(n + 1, sizeof(*d));

	for (size_t i = 0; d && i < n; i++)
		d[i] = v[i].digest;
	return d;
}

json_t *
hypr_layers_json(const struct hypr_layer *v, size_t n, const char *dflt_mt)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++)
		if (json_array_append_new(a, hypr_layer_json(&v[i], dflt_mt)) < 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

int
hypr_rec_layers(const struct hypr_rec_at *at, json_t *o, const char *key, int flags,
    struct hypr_layer **v, size_t *n, struct hypr_err *e)
{
	struct hypr_rec_at in = *at;
	char prefix[200];
	json_t *a, *x;
	size_t i;

	*v = NULL;
	*n = 0;
	if (hypr_rec_arr(at, o, key, flags, &a, e) < 0)
		return -1;
	if (a == NULL)
		return 0;
	if ((*v = calloc(json_array_size(a) + 1, sizeof(**v))) == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	in.prefix = prefix;
	json_array_foreach(a, i, x) {
		snprintf(prefix, sizeof(prefix), "%s%s%s[%zu]", at->prefix ? at->prefix : "",
		    at->prefix ? "." : "", key, i);
		if (hypr_layer_decode(&in, x, &(*v)[i], e) < 0) {
			free(*v);
			*v = NULL;
			return -1;
		}
	}
	*n = json_array_size(a);
	return 0;
}
