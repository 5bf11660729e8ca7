/* digest.h - SHA-256 digests ("sha256:<64 hex>") through libcrypto. */
#ifndef HYPR_DIGEST_H
#define HYPR_DIGEST_H

#include <stddef.h>
#include <stdint.h>
#include "err.h"

#define HYPR_DIGEST_LEN 71	/* "sha256:" + 64 hex, without NUL */

struct hypr_sha256 {
	void *ctx;		/* EVP_MD_CTX */
	uint64_t bytes;		/* bytes fed so far */
};

/* Start a streaming digest. */
int hypr_sha256_init(struct hypr_sha256 *s, struct hypr_err *e);
/* Feed len bytes. */
void hypr_sha256_update(struct hypr_sha256 *s, const void *buf, size_t len);
/* Finish into out ("sha256:..." NUL-terminated, HYPR_DIGEST_LEN+1 bytes) and free. */
void hypr_sha256_final(struct hypr_sha256 *s, char out[HYPR_DIGEST_LEN + 1]);
/* Free without finishing (error paths). */
void hypr_sha256_abort(struct hypr_sha256 *s);
/* Digest of a buffer. */
int hypr_digest_buf(const void *buf, size_t len, char out[HYPR_DIGEST_LEN + 1],
    struct hypr_err *e);
/* Digest of a file's contents; size gets its length when not NULL. */
int hypr_digest_file(const char *path, char out[HYPR_DIGEST_LEN + 1],
    uint64_t *size, struct hypr_err *e);
/* 1 if s is a well-formed "sha256:<64 lowercase hex>", else 0. */
int hypr_digest_valid(const char *s);
/* The hex part of a "sha256:<hex>" digest (a file name in the store). */
static inline const char *
hypr_digest_hex(const char *d)
{
	return d + 7;	/* after "sha256:" */
}

#endif
