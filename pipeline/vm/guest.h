/* guest.h - pieces of hypr-init, the build VM's PID 1 (guest side only). */
#ifndef HYPR_GUEST_H
#define HYPR_GUEST_H

#include <stddef.h>
#include <stdint.h>

#define GUEST_BUF (1u << 20)	/* O_DIRECT transfer unit, 4 KiB aligned */

/* Write layerdir as an OCI layer tar at byte off of the raw disk outfd
 * (opened O_DIRECT): whiteouts as .wh.NAME, opaque dirs as .wh..wh..opq,
 * trusted.overlay.* dropped, other xattrs as PAX SCHILY.xattr, hard links,
 * names sorted, mtimes clamped to epoch when epoch >= 0. */
int guest_diff(const char *layerdir, int outfd, uint64_t off, int64_t epoch,
    uint64_t *len, char *err, size_t errlen);
/* Extract the tar at [off, off+len) of the raw disk infd (O_DIRECT) into
 * layerdir, turning .wh.NAME into overlay whiteouts (char 0:0) and
 * .wh..wh..opq into trusted.overlay.opaque. Runs chrooted in a child. */
int guest_import(int infd, uint64_t off, uint64_t len, const char *layerdir,
    char *err, size_t errlen);

/* rm -rf path, not following symlinks. */
void guest_rm_rf(const char *path);

#endif
