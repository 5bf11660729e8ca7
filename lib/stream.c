#include "stream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LINE (256u << 20)

static int
read_line(struct hypr_stream_in *s, json_t **out, struct hypr_err *e)
{
	json_error_t je;
	ssize_t n;

	errno = 0;
	n = getline(&s->buf, &s->cap, s->f);
	if (n < 0) {
		if (ferror(s->f))
			return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "reading %s", s->name);
		return 0;
	}
	s->line++;
	if ((size_t)n > MAX_LINE)
		return hypr_err_set(e, HYPR_EXIT_INPUT, "%s:%ld: line too long",
		    s->name, s->line);
	*out = json_loadb(s->buf, (size_t)n, JSON_REJECT_DUPLICATES, &je);
	if (*out == NULL)
		return hypr_err_set(e, HYPR_EXIT_INPUT, "%s:%ld: bad JSON: %s",
		    s->name, s->line, je.text);
	if (!json_is_object(*out)) {
		json_decref(*out);
		return hypr_err_set(e, HYPR_EXIT_INPUT, "%s:%ld: record is not an object",
		    s->name, s->line);
	}
	return 1;
}

/* "a" or "an" before a format name */
static const char *
article(const char *word)
{
	return strchr("aeiou", word[0]) && word[0] ? "an" : "a";
}

int
hypr_stream_open(struct hypr_stream_in *s, FILE *f, const char *name,
    const char *format, int max_version, const char *const *known,
    struct hypr_err *e)
{
	json_t *h = NULL, *needs, *v;
	const char *fmt;
	size_t i;
	int r;

	memset(s, 0, sizeof(*s));
	s->f = f;
	s->name = name;
	if ((r = read_line(s, &h, e)) <= 0) {
		if (r == 0)
			hypr_err_set(e, HYPR_EXIT_INPUT,
			    "%s: empty stream (expected %s %s stream)", name,
			    article(format), format);
		goto fail;
	}
	/* Strings below point into h: set messages before freeing it. */
	fmt = hypr_json_str(h, "hypr");
	if (fmt == NULL || strcmp(fmt, format) != 0) {
		hypr_err_set(e, HYPR_EXIT_INPUT,
		    "%s:1: not %s %s stream (header says %s)", name,
		    article(format), format, fmt ? fmt : "nothing");
		goto fail;
	}
	if (hypr_json_int(h, "version", 0) < 1 ||
	    hypr_json_int(h, "version", 0) > max_version) {
		hypr_err_set(e, HYPR_EXIT_INPUT,
		    "%s:1: unsupported %s version (this reader knows up to %d)",
		    name, format, max_version);
		goto fail;
	}
	needs = json_object_get(h, "needs");
	json_array_foreach(needs, i, v) {
		const char *want = json_string_value(v);
		int ok = 0;

		for (const char *const *k = known; want && k && *k; k++)
			ok |= strcmp(*k, want) == 0;
		if (!ok) {
			hypr_err_set(e, HYPR_EXIT_INPUT,
			    "%s:1: stream needs unknown feature '%s'", name,
			    want ? want : "?");
			goto fail;
		}
	}
	s->header = h;
	return 0;
fail:
	json_decref(h);
	free(s->buf);
	s->buf = NULL;
	return -1;
}

int
hypr_stream_next(struct hypr_stream_in *s, json_t **rec, struct hypr_err *e)
{
	json_t *r = NULL;
	int n;

	if (s->ended)
		return 0;
	if ((n = read_line(s, &r, e)) < 0)
		return -1;
	if (n == 0)
		return hypr_err_set(e, HYPR_EXIT_INPUT,
		    "%s: truncated stream: no end record after %zu records",
		    s->name, s->records);
	if (json_is_true(json_object_get(r, "end"))) {
		json_int_t want = hypr_json_int(r, "records", -1);

		json_decref(r);
		if (want != (json_int_t)s->records)
			return hypr_err_set(e, HYPR_EXIT_INPUT,
			    "%s:%ld: end record says %lld records, read %zu",
			    s->name, s->line, (long long)want, s->records);
		s->ended = 1;
		return 0;
	}
	s->records++;
	*rec = r;
	return 1;
}

void
hypr_stream_close(struct hypr_stream_in *s)
{
	json_decref(s->header);
	free(s->buf);
	s->header = NULL;
	s->buf = NULL;
}

static int
put_line(FILE *f, json_t *rec, struct hypr_err *e)
{
	if (json_dumpf(rec, f, JSON_COMPACT | JSON_PRESERVE_ORDER) < 0 ||
	    fputc('\n', f) == EOF)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "writing stream");
	return 0;
}

int
hypr_stream_begin(struct hypr_stream_out *o, FILE *f, const char *format,
    int version, json_t *extra, struct hypr_err *e)
{
	json_t *h = json_pack("{s:s,s:i}", "hypr", format, "version", version);
	int r;

	o->f = f;
	o->records = 0;
	if (h == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	if (extra)
		json_object_update(h, extra);
	r = put_line(f, h, e);
	json_decref(h);
	return r;
}

int
hypr_stream_put(struct hypr_stream_out *o, json_t *rec, struct hypr_err *e)
{
	if (put_line(o->f, rec, e) < 0)
		return -1;
	o->records++;
	return 0;
}

int
hypr_stream_end(struct hypr_stream_out *o, struct hypr_err *e)
{
	return hypr_stream_end_extra(o, NULL, e);
}

int
hypr_stream_end_extra(struct hypr_stream_out *o, json_t *extra, struct hypr_err *e)
{
	json_t *end = json_pack("{s:b,s:I}", "end", 1, "records",
	    (json_int_t)o->records);
	int r;

	if (end == NULL || (extra && json_object_update(end, extra) < 0)) {
		json_decref(end);
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	}
	r = put_line(o->f, end, e);
	json_decref(end);
	if (r == 0 && fflush(o->f) == EOF)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "writing stream");
	return r;
}

json_t *
hypr_stream_header_rest(const struct hypr_stream_in *s)
{
	json_t *h = json_deep_copy(s->header);

	json_object_del(h, "hypr");
	json_object_del(h, "version");
	return h;
}

const char *
hypr_json_str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

json_int_t
hypr_json_int(json_t *o, const char *key, json_int_t dflt)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? json_integer_value(v) : dflt;
}
