/* sparse.c - files with holes in tar streams. See sparse.h. */
#include "sparse.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

ssize_t
hypr_sparse_map(int fd, int64_t base, int64_t size, struct hypr_extent **v)
{
	struct hypr_extent *ext = NULL;
	size_t n = 0, cap = 0;
	int64_t end = base + size, pos = base;

	*v = NULL;
	while (pos < end) {
		off_t d = lseek(fd, (off_t)pos, SEEK_DATA), h;

		if (d < 0 && errno == ENXIO)
			break;	/* only hole up to the end of the file */
		if (d < 0 && (errno == EINVAL || errno == EOPNOTSUPP)) {
			d = (off_t)pos;	/* no SEEK_DATA here: all data */
			h = (off_t)end;
		} else if (d < 0 || (h = lseek(fd, d, SEEK_HOLE)) < 0) {
			free(ext);
			return -1;
		}
		if (d >= end)
			break;
		if (h > end)
			h = (off_t)end;
		if (n == cap) {
			struct hypr_extent *ne;
			cap = cap ? cap * 2 : 8;
			if (!(ne = realloc(ext, cap * sizeof *ne))) {
				free(ext);
				return -1;
			}
			ext = ne;
		}
		ext[n].off = (int64_t)d - base;
		ext[n].len = (int64_t)(h - d);
		n++;
		pos = (int64_t)h;
	}
	*v = ext;
	return (ssize_t)n;
}

int
hypr_sparse_has_hole(const struct hypr_extent *v, size_t n, int64_t size)
{
	int64_t at = 0;

	for (size_t i = 0; i < n; i++) {
		if (v[i].off != at)
			return 1;
		at = v[i].off + v[i].len;
	}
	return at != size;
}

void
hypr_sparse_entry(struct archive_entry *ent, const struct hypr_extent *v, size_t n,
    int64_t size)
{
	archive_entry_sparse_clear(ent);
	for (size_t i = 0; i < n; i++)
		archive_entry_sparse_add_entry(ent, v[i].off, v[i].len);
	/* a file that ends in a hole: the map says where it ends */
	if (n == 0 || v[n - 1].off + v[n - 1].len < size)
		archive_entry_sparse_add_entry(ent, size, 0);
}

int
hypr_sparse_write_hole(struct archive *w, int64_t len)
{
	static const void *zeros;
	const int64_t chunk = 1 << 30;

	/* a read-only mapping of zero pages: never touched, never resident */
	if (zeros == NULL) {
		void *m = mmap(NULL, (size_t)chunk, PROT_READ,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (m == MAP_FAILED)
			return -1;
		zeros = m;
	}
	while (len > 0) {
		size_t k = (size_t)(len > chunk ? chunk : len);
		if (archive_write_data(w, zeros, k) != (la_ssize_t)k)
			return -1;
		len -= (int64_t)k;
	}
	return 0;
}
