/* rootfs_flat.h - a flatten's state: rootfs.c reads the layers into it,
 * rootfs_write.c writes its survivors out as one tar. Not an interface for
 * others (rootfs.h is). */
#ifndef HYPR_ROOTFS_FLAT_H
#define HYPR_ROOTFS_FLAT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <archive_entry.h>
#include "err.h"
#include "map.h"

/* upper-map flags: what layers above the current one put at a path */
enum {
	U_DIR = 1,		/* a directory */
	U_NONDIR = 2,		/* anything but a directory: hides children */
	U_WHITEOUT = 4,		/* .wh.NAME: hides the path and its children */
	U_OPAQUE = 8,		/* .wh..wh..opq inside: hides children */
};

/* What a visible entry needs to be written again: the tar header's fields
 * that a root filesystem keeps (owner names, atime/ctime, ACLs other than
 * xattrs and file flags are not kept). A full archive_entry per file cost
 * 2.7 KB; this costs ~100 bytes plus the names. */
struct meta {
	int64_t uid, gid, mtime;
	uint32_t mode;		/* with the AE_IFMT type bits */
	int32_t mtime_ns;
	unsigned mtime_set : 1;
	dev_t rdev;
	char *symlink;		/* symlink target */
	char *xattrs;		/* name NUL, u32 length, value; repeated */
	size_t xlen;
};

struct node {
	char *path;
	char *link;		/* cleaned hard-link target, or NULL */
	struct meta m;
	struct node *link_to;	/* hard link: the entry the target resolved to */
	struct node *first;	/* source of a link group: name written as file */
	size_t layer;
	uint64_t ord;		/* entry number within its layer */
	int fd;			/* where its data is: a layer file or the spill */
	off_t off;		/* and at which offset */
	int64_t size;
	unsigned visible : 1, spilled : 1, need_data : 1, sparse : 1;
	unsigned needed : 1;	/* visible, or a needed link ends here */
};

struct flat {
	int spill;
	off_t spill_end;
	struct node **nodes;
	size_t n, cap;
	struct hypr_map upper;	/* path -> U_* (as a pointer) from layers above */
	struct hypr_map cur;	/* path -> node of the current layer (borrowed keys) */
	struct hypr_map pending;	/* hard-link target path -> list head (node; borrowed) */
	char *buf;
	int64_t epoch;
	struct archive_entry *ent;	/* reused by write_node */
	struct out {			/* where the tar goes */
		int fd;
		int pipe;		/* fd is a pipe: vmsplice can fill it */
		const char *map;	/* a layer's data mapped by write_data_range */
		size_t map_len;
	} out;
};

/* ent from m (ent cleared first); the caller sets name, size, links. */
void entry_of(struct archive_entry *ent, const struct meta *m);
/* Write vis[0..nv) (visible nodes in tree order) to out_fd as one pax tar,
 * their data from the layers and the spill; f->buf and f->ent are used. */
int flat_write(struct flat *f, struct node *const *vis, size_t nv, int out_fd,
    struct hypr_err *e);

#endif
