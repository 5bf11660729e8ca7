/* volume.h - the named volumes of hypr run -v NAME:PATH.
 *
 * A volume is a directory $HYPR_ROOT/volumes/NAME/ holding _data/ (what
 * the guest sees, over 9p) and meta.json ({"name","created","labels",
 * "anonymous"}). It is made whole under a temporary name, then renamed.
 * Whoever makes or removes a volume, or makes a container that uses one,
 * holds volumes/.lock exclusive meanwhile, so a volume a container names
 * is never removed under it. A container names its volumes in its
 * config.json ("volumes": [{"volume": NAME, ...}]); a volume is in use
 * while a container, running or not, names it (docker's rule).
 * See hypr-volume(1). */
#ifndef HYPR_VOLUME_H
#define HYPR_VOLUME_H

#include <stddef.h>
#include <jansson.h>
#include "cas.h"
#include "err.h"

/* Docker's volume names: [a-zA-Z0-9][a-zA-Z0-9_.-]+ (two characters at
 * least), at most 255. */
int hypr_vol_name_ok(const char *name);
/* volumes/.lock, exclusive, held while *fd stays open. */
int hypr_vol_lock(const struct hypr_root *r, int *fd, struct hypr_err *e);
/* NAME's _data directory into data; with create a missing volume is made
 * (labels may be NULL; anonymous marks one hypr run made for a bare -v
 * PATH) and *made set. A missing one without create: HYPR_EXIT_INPUT
 * "no such volume: NAME". Call it with the lock held. */
int hypr_vol_get(const struct hypr_root *r, const char *name, int create, json_t *labels,
    int anonymous, char *data, size_t n, int *made, struct hypr_err *e);
/* NAME's meta.json (with "mountpoint" added), or NULL with e. */
json_t *hypr_vol_meta(const struct hypr_root *r, const char *name, struct hypr_err *e);
/* Every volume's name, sorted (a JSON array). */
int hypr_vol_list(const struct hypr_root *r, json_t **names, struct hypr_err *e);
/* The IDs of the containers that name NAME (a JSON array). */
int hypr_vol_users(const struct hypr_root *r, const char *name, json_t **ids,
    struct hypr_err *e);
/* Remove NAME (the caller holds the lock and found no user); *freed, if
 * given, gets the space it took. */
int hypr_vol_remove(const struct hypr_root *r, const char *name, uint64_t *freed,
    struct hypr_err *e);
/* After a container is removed: remove the anonymous volumes its config
 * names that no other container names (hypr rm -v, --rm). Takes the lock. */
int hypr_vol_drop_anonymous(const struct hypr_root *r, json_t *config, struct hypr_err *e);

#endif
