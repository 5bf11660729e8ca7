#include "digest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/evp.h>

int
hypr_sha256_init(struct hypr_sha256 *s, struct hypr_err *e)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	s->bytes = 0;
	s->ctx = c;
	if (c == NULL || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(c);
		s->ctx = NULL;
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "sha256: libcrypto init failed");
	}
	return 0;
}

void
hypr_sha256_update(struct hypr_sha256 *s, const void *buf, size_t len)
{
	EVP_DigestUpdate(s->ctx, buf, len);
	s->bytes += len;
}

void
hypr_sha256_final(struct hypr_sha256 *s, char out[HYPR_DIGEST_LEN + 1])
{
	unsigned char md[32];
	unsigned int n = 0;

	EVP_DigestFinal_ex(s->ctx, md, &n);
	EVP_MD_CTX_free(s->ctx);
	s->ctx = NULL;
	memcpy(out, "sha256:", 7);
	for (unsigned i = 0; i < 32; i++)
		snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
}

void
hypr_sha256_abort(struct hypr_sha256 *s)
{
	EVP_MD_CTX_free(s->ctx);
	s->ctx = NULL;
}

int
hypr_digest_buf(const void *buf, size_t len, char out[HYPR_DIGEST_LEN + 1],
    struct hypr_err *e)
{
	struct hypr_sha256 s;

	if (hypr_sha256_init(&s, e) < 0)
		return -1;
	hypr_sha256_update(&s, buf, len);
	hypr_sha256_final(&s, out);
	return 0;
}

int
hypr_digest_file(const char *path, char out[HYPR_DIGEST_LEN + 1],
    uint64_t *size, struct hypr_err *e)
{
	/* on the heap: push and pull hash files in several threads at once */
	const size_t bufsz = 1 << 20;
	char *buf;
	struct hypr_sha256 s;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", path);
	if ((buf = malloc(bufsz)) == NULL) {
		close(fd);
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	}
	if (hypr_sha256_init(&s, e) < 0) {
		free(buf);
		close(fd);
		return -1;
	}
	while ((n = read(fd, buf, bufsz)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			hypr_sha256_abort(&s);
			hypr_err_errno(e, HYPR_EXIT_SYSTEM, "reading %s", path);
			free(buf);
			close(fd);
			return -1;
		}
		hypr_sha256_update(&s, buf, (size_t)n);
	}
	free(buf);
	close(fd);
	if (size)
		*size = s.bytes;
	hypr_sha256_final(&s, out);
	return 0;
}

int
hypr_digest_valid(const char *s)
{
	if (s == NULL || strncmp(s, "sha256:", 7) != 0 || strlen(s) != HYPR_DIGEST_LEN)
		return 0;
	for (s += 7; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return 0;
	return 1;
}
