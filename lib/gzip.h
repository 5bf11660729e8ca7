/* gzip.h - a stored layer tar gzip'd for a registry, on every core, to the
 * same bytes on every run and every machine with the same zlib: pigz's
 * scheme. The file is cut in 1 MiB slices; each is deflated on its own
 * thread (level 6, the previous 32 KiB as its dictionary) and ended by a
 * sync flush, so the slices in order are one deflate stream in one gzip
 * member (mtime 0, no name: as gzip -n). A slice where none of 4 samples
 * of 16 KiB shrinks at level 1 (random or compressed data) is stored:
 * deflating it would cost 25 ns a byte and save nothing. The cut and that
 * choice depend only on the bytes, never on the number of threads. */
#ifndef HYPR_GZIP_H
#define HYPR_GZIP_H

#include "err.h"

struct hypr_gzip;

/* Start gzip'ing the file path on worker threads; *fd reads the stream
 * (a socket, O_CLOEXEC: the caller closes it). Closing it early stops the
 * workers; close it before hypr_gzip_finish unless it was read to the end. */
int hypr_gzip_start(const char *path, struct hypr_gzip **gz, int *fd, struct hypr_err *e);
/* Wait for the workers and free gz: 0 if the whole stream was written,
 * else -1 with e. */
int hypr_gzip_finish(struct hypr_gzip *gz, struct hypr_err *e);
/* gzip path into the new file out (0600; removed again on failure) on
 * threads workers (0: one per core; the bytes are the same for any). */
int hypr_gzip_file(const char *path, const char *out, int threads, struct hypr_err *e);

#endif
