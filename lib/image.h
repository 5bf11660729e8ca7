/* image.h - small helpers shared by hypr-layer, hypr-squash and hypr-store:
 * times, SOURCE_DATE_EPOCH, chain ids, human sizes and ages. */
#ifndef HYPR_IMAGE_H
#define HYPR_IMAGE_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "digest.h"
#include "err.h"
#include "record.h"

/* SOURCE_DATE_EPOCH as seconds, or -1 when unset; a malformed value is a
 * usage error (returns -2 and fills e). */
int64_t hypr_image_epoch(struct hypr_err *e);
/* "2006-01-02T15:04:05Z" for t (UTC) into buf (at least 32 bytes). */
void hypr_image_time(int64_t t, char *buf, size_t n);
/* Parse an RFC 3339 time ("...Z" or "+hh:mm", fractions ignored); -1 if bad. */
int64_t hypr_image_parse_time(const char *s);
/* OCI chain id of a layer list (lowest first; every diff_id set):
 * chain(L0) = diff_id(L0), chain(..n) = sha256(chain(..n-1) + " " +
 * diff_id(n)). An empty list gives the digest of "". */
int hypr_image_chain_id(const struct hypr_layer *layers, size_t n,
    char out[HYPR_DIGEST_LEN + 1], struct hypr_err *e);
/* docker's HumanSizeWithPrecision(size, 3): decimal units, "77.9MB", "1.2kB". */
void hypr_image_human_size(uint64_t size, char *buf, size_t n);
/* docker's "About an hour ago", "3 days ago", "2 weeks ago" for age seconds. */
void hypr_image_human_age(int64_t secs, char *buf, size_t n);

#endif
