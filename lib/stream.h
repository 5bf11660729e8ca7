/* stream.h - hypr's JSON Lines streams: header, records, end record.
 *
 * Every stream is UTF-8 JSON Lines. The first record names the format and
 * version: {"hypr":"plan","version":1}; it may list "needs":[...] features
 * the reader must know. The last is {"end":true,"records":N} where N counts
 * the records between header and end. A stream without it is truncated. */
#ifndef HYPR_STREAM_H
#define HYPR_STREAM_H

#include <stdio.h>
#include <jansson.h>
#include "err.h"

struct hypr_stream_in {
	FILE *f;
	const char *name;	/* for messages, e.g. "plan" or a file name */
	json_t *header;		/* the header record (owned) */
	long line;		/* current line number */
	size_t records;		/* records read so far */
	int ended;
	char *buf;		/* getline buffer */
	size_t cap;
};

struct hypr_stream_out {
	FILE *f;
	size_t records;
};

/* Read and check the header: format must equal `format`, version <= max_version,
 * and every "needs" entry must appear in `known` (NULL-terminated, may be NULL). */
int hypr_stream_open(struct hypr_stream_in *s, FILE *f, const char *name,
    const char *format, int max_version, const char *const *known,
    struct hypr_err *e);
/* Next record into *rec (caller json_decref's it). Returns 1 for a record,
 * 0 at a correct end record, -1 on error (truncation or bad JSON: exit 3). */
int hypr_stream_next(struct hypr_stream_in *s, json_t **rec, struct hypr_err *e);
/* Free the reader's buffers and header. */
void hypr_stream_close(struct hypr_stream_in *s);

/* Write the header {"hypr":format,"version":version, ...extra}; extra may be NULL
 * and is not stolen. */
int hypr_stream_begin(struct hypr_stream_out *o, FILE *f, const char *format,
    int version, json_t *extra, struct hypr_err *e);
/* Write one record as a compact line (keys in insertion order). */
int hypr_stream_put(struct hypr_stream_out *o, json_t *rec, struct hypr_err *e);
/* Write the end record and flush. */
int hypr_stream_end(struct hypr_stream_out *o, struct hypr_err *e);
/* The same with more fields after "records" (extra is not stolen). */
int hypr_stream_end_extra(struct hypr_stream_out *o, json_t *extra, struct hypr_err *e);
/* A copy of the header without "hypr" and "version": what a stage that
 * passes a stream on keeps (new reference, NULL when out of memory). */
json_t *hypr_stream_header_rest(const struct hypr_stream_in *s);

/* Typed getters for a record field; NULL/0 when missing or of another type. */
const char *hypr_json_str(json_t *o, const char *key);
json_int_t hypr_json_int(json_t *o, const char *key, json_int_t dflt);

#endif
