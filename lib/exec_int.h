/* exec_int.h - the exec engine's rooms (lib/exec*.c) and what they share;
 * hypr-exec internals: stages, config updates, host-built layers,
 * cache keys and RUN through the build VM. */
#ifndef HYPR_EXEC_INT_H
#define HYPR_EXEC_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>

#include "cas.h"
#include "digest.h"
#include "err.h"
#include "events.h"
#include "expand.h"
#include "ignore.h"
#include "map.h"
#include "net.h"
#include "plan.h"
#include "record.h"
#include "stream.h"

struct hypr_vm;
struct hypr_vm_mount;

/* A cache mount's disk attached to a stage's VM (mount.c). */
struct cachedisk {
	char *id, *image;
	int fd;			/* holds the image's lock while the VM may use it */
	int fresh;		/* made for this build: mode and owner to set */
};

/* A --secret of the build: a file or an environment variable. */
struct secret {
	char *id, *src, *env;
};

enum { SHARING_SHARED, SHARING_PRIVATE, SHARING_LOCKED };

/* One RUN --mount (mount.c). */
struct rmount {
	char type;		/* 'b' bind, 'c' cache, 't' tmpfs, 's' secret */
	char *target;		/* absolute, cleaned; NULL for an env-only secret */
	char *source, *from, *id, *env;
	int ro, required, sharing, sharing_set;
	long mode, uid, gid;
	uint64_t size;
	/* prepared */
	char digest[HYPR_DIGEST_LEN + 1];	/* bind: its tar blob */
	char vmsource[300];	/* bind: the guest name[/file] */
	char vmsource_buf[16];
	int disk, fresh;	/* cache: disk index, new this build */
	char *data;		/* secret bytes (zeroed when freed) */
	size_t dlen;
	int absent;		/* a secret not given (and not required) */
};


/* Metadata of one path in a filesystem tree (a layer chain, an archive). */
struct tnode {
	mode_t mode;		/* with S_IFMT type bits */
	uid_t uid;
	gid_t gid;
	int64_t mtime;
	char *link;		/* symlink target, or hard link target path */
	int hardlink;
};
void tnode_free(void *p);

/* The visible tree of a layer chain (paths without leading "/"). */
struct tree {
	struct hypr_map m;
};

struct stage {
	struct hypr_plan_stage rec;	/* stage record */
	int index;
	const char *name;
	int final;
	struct hypr_plan_instr *instrs;	/* instr records of this stage */
	size_t ninstrs, cap;
	int done;
	const struct hypr_plan_image *image;	/* rec.image (base image) or NULL */
	json_t *config;		/* OCI config "config" object, current */
	struct hypr_layers layers;	/* whole chain: base layers then step layers */
	size_t nbase;		/* layers[0..nbase) are the base */
	char key[HYPR_DIGEST_LEN + 1];	/* last cache key (parent of next) */
	char base_key[HYPR_DIGEST_LEN + 1];
	char *author;
	struct hypr_vars args;	/* ARG values in scope */
	struct hypr_vars vars;	/* args with Env on top (stage_vars) */
	struct hypr_map envpos;	/* Env key -> index + 1 of its entry */
	size_t cfgsize;		/* bytes of Env and Labels */
	int vars_ok;		/* vars, envpos, cfgsize are current */
	struct hypr_map declared;	/* ARG names declared in the stage (even unset) */
	int cmd_set;
	char *rootfs;		/* flattened final fs for COPY --from (lazy) */
	struct hypr_map rootmeta;	/* owner/mode of rootfs entries */
	/* while running */
	struct hypr_vm *vm;
	int vm_net;		/* the VM has a network device */
	const struct hypr_plan_instr *all;	/* this stage's steps (ONBUILD triggers first) */
	size_t nall;
	size_t pos;		/* the running step's index in all */
	struct cachedisk caches[32];	/* HYPR_VM_MAX_CACHES */
	size_t ncaches, vm_caches;	/* attached; attached when the VM booted */
	struct hypr_map sent;	/* bind sources already in the VM: name -> 1 */
	size_t imported;	/* layers[nbase..imported) already in the VM */
	char vmdir[HYPR_PATH_BUF];
};

struct ctx {
	struct hypr_root root;
	char context[4096];	/* absolute */
	struct hypr_plan_header hdr;	/* the resolved plan's header */
	const char *dockerfile;	/* hdr's, or NULL */
	int escape;
	json_t *build_args;	/* hdr's: object of strings */
	const char *platform;	/* hdr's, or NULL */
	struct hypr_vars global_args;
	struct stage *stages;
	size_t nstages;
	int no_cache;
	json_t *imported;	/* --cache-from: cache key -> index entry + "source" */
	json_t *remote;		/* layer digest -> imported entry, blob not here yet */
	int cache_fetched;	/* layer blobs fetched from --cache-from */
	int64_t epoch;		/* SOURCE_DATE_EPOCH or -1 */
	double step_timeout;
	uint64_t disk;		/* --disk: build disk limit, 0 = default */
	int network;		/* --network=default: RUN steps get a network */
	char **hosts;		/* --add-host as "IP NAME" lines, NULL-terminated */
	size_t nhosts;
	struct secret secrets[64];	/* --secret */
	size_t nsecrets;
	struct hypr_net net;	/* ADD <url>: HYPR_NET_* limits */
	uint64_t add_max;	/* ADD <url>: HYPR_ADD_MAX_SIZE */
	struct hypr_ignore *ignore;
	struct hypr_stream_out out;
	int vm_boots;
	int stepno;		/* #N: the step's number in the build */
	int nsteps;		/* steps known so far (the plan's, ONBUILD's) */
	struct hypr_events *ev;	/* progress, RUN output, warnings */
	struct hypr_map listings;	/* layer digest -> struct listing */
};

/* What a step produced, before it is written. */
struct step {
	struct stage *st;
	const struct hypr_plan_instr *instr;
	const char *op;
	char key[HYPR_DIGEST_LEN + 1];
	int cached;
	int has_layer;		/* layer is set (else the step made none) */
	struct hypr_layer layer;
	char *created_by;
	int in_vm;		/* made by the stage's VM: already one of its lowers */
};

/* exec.c */
struct stage *stage_by_index(struct ctx *c, int index);
int stage_layer_digests(struct stage *st, const char ***v, size_t *n,
    struct hypr_err *e);
int instr_err(struct hypr_err *e, struct ctx *c, const struct hypr_plan_instr *instr, int code,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* The same about a stage's FROM line. */
int stage_err(struct hypr_err *e, struct ctx *c, const struct stage *st, int code,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* A warning event (hypr-events(5)). */
void exec_warn(struct ctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* exec_config.c: instructions that only change the config */
const struct hypr_vars *stage_vars(struct stage *st, struct hypr_err *e);
int config_apply(struct ctx *c, struct stage *st, const struct hypr_plan_instr *instr, json_t **expanded,
    char **created_by, struct hypr_err *e);
int config_is_op(const char *op);
int parse_duration(const char *s, int64_t *ns);
char *join_words(json_t *arr, const char *sep);
/* The same for a vector of n strings. */
char *join_strv(const char *const *v, size_t n, const char *sep);
/* A JSON array of n strings. */
json_t *strv_json(const char *const *v, size_t n);
json_t *shell_of(struct stage *st);
int expand_args(struct ctx *c, struct stage *st, const struct hypr_plan_instr *instr, char ***words,
    size_t *n, struct hypr_err *e);
int arg_is_proxy(const char *name);

/* exec_tree.c */
int tree_build(struct ctx *c, const struct hypr_layer *layers, size_t n, struct tree *t,
    struct hypr_err *e);
void tree_free(struct tree *t);
/* The layer listings tree_build read (hypr_exec_close). */
void tree_listings_free(struct ctx *c);
/* Resolve symlinks of a path inside the tree (rooted); out is malloc'd,
 * without leading "/" ("" is the root). follow_last: resolve the last too. */
int tree_resolve(const struct tree *t, const char *path, int follow_last,
    char **out, struct hypr_err *e);
/* The same over any namespace: getlink returns a malloc'd symlink target
 * for a path (no leading "/") or NULL when it is not a symlink. ".." stops
 * at the root and absolute targets restart at the root: nothing escapes. */
int resolve_path(const char *path, int follow_last,
    char *(*getlink)(void *, const char *), void *arg, char **out,
    struct hypr_err *e);
const struct tnode *tree_get(const struct tree *t, const char *path);
/* Index a tar's entries into a map of tnodes (for archives, flattened fs). */
int tar_listing_map(const char *path, struct hypr_map *m, struct hypr_err *e);

/* exec_layer.c: build a layer tar on the host */
struct lentry {
	char *path;		/* no leading "/" */
	struct tnode n;
	char *src;		/* host file with the data (regular files) */
	uint64_t size;
};
struct lset {
	struct lentry *v;
	size_t n, cap;
	struct hypr_map idx;
};
int lset_add(struct lset *s, const char *path, const struct tnode *n,
    const char *src, uint64_t size, struct hypr_err *e);
void lset_free(struct lset *s);
/* Write the set as a sorted pax tar blob; *layer gets its layer. */
int lset_write(struct ctx *c, struct lset *s, struct hypr_layer *layer, struct hypr_err *e);
/* Store a tar file as a layer blob (renamed into the store). */
int layer_from_file(struct ctx *c, const char *tmp, struct hypr_layer *layer,
    struct hypr_err *e);

/* exec_copy.c */
int copy_step(struct ctx *c, struct stage *st, const struct hypr_plan_instr *instr, struct step *s,
    struct hypr_err *e);
int resolve_owner(struct ctx *c, struct stage *st, const char *spec, uid_t *uid,
    gid_t *gid, struct hypr_err *e);
/* WORKDIR's layer: *has 0 when the directory is there already. */
int workdir_layer(struct ctx *c, struct stage *st, const char *dir,
    struct hypr_layer *layer, int *has, struct hypr_err *e);

/* exec_cache.c */
int cache_key(struct ctx *c, struct stage *st, const struct hypr_plan_instr *instr, json_t *expanded,
    const char *sources, char out[HYPR_DIGEST_LEN + 1], struct hypr_err *e);
/* Look s->key up, in $HYPR_ROOT/cache then in the --cache-from indexes:
 * 1 on a hit (s->cached set, s->has_layer 0 for an empty layer; an
 * imported layer's blob may not be here yet: see layers_fetch), 0 on a miss. */
int cache_lookup(struct ctx *c, struct step *s);
/* Load the indexes the resolved header names (--cache-from). */
int cache_import_open(struct ctx *c, struct hypr_err *e);
/* Make sure the blobs of layers are in the store: an imported layer not
 * fetched yet is fetched now from its cache (digest verified), and its
 * entry written to $HYPR_ROOT/cache. */
int layers_fetch(struct ctx *c, const struct hypr_layer *layers, size_t n,
    struct hypr_err *e);

/* One thing to copy, as found in the source. */
struct item {
	char *host;		/* host path with the data */
	char *rel;		/* path under the destination ("" = dest itself) */
	struct tnode n;
	uint64_t size;
	int top_file;		/* a file named by a source: lands at dest/rel or dest */
	int archive;		/* ADD: a local archive to unpack into dest */
	int owned;		/* n.uid/gid come from the source (stage, image, archive) */
};

struct items {
	struct item *v;
	size_t n, cap;
};

/* A source namespace: a host directory, with owners from a map when it is
 * an unpacked tar (stage, image, archive), else 0:0 (the context). */
struct sroot {
	const char *dir;
	const struct hypr_map *meta;
	const struct hypr_ignore *ig;
};

/* exec_sources.c: source namespaces (context, stage, image, archive) */
/* A directory in this process's temp dir, removed with it. */
/* Remove every directory make_tmpdir made (at exit, or hypr_exec_close). */
void tmpdirs_remove(void);
char *make_tmpdir(struct ctx *c, const char *what, struct hypr_err *e);
/* a/b, malloc'd. */
char *path_join(const char *a, const char *b);
/* Append an item (host copied; n.link copied). */
int items_add(struct items *it, const char *host, const char *rel,
    const struct tnode *n, uint64_t size, struct hypr_err *e);
/* Collect one source argument (a path or glob in the namespace); add: ADD's
 * archives; parents: a match keeps its path (--parents; "a/./b" keeps b). */
int collect(struct items *it, const struct sroot *r, const char *src, int add,
    int parents, const char *what, struct hypr_err *e);
/* Drop the items an --exclude pattern matches (relative to their source). */
int items_exclude(struct items *it, json_t *patterns, struct hypr_err *e);
/* Digest of what the items hold (names, types, modes, sizes, owners, contents; never times). */
int sources_digest(struct items *it, char out[HYPR_DIGEST_LEN + 1], struct hypr_err *e);
/* The final filesystem of a layer chain, unpacked once per build. */
int chain_root(struct ctx *c, const struct hypr_layer *layers, size_t n, char **dirp,
    struct hypr_map *meta, struct hypr_err *e);
/* Unpack a tar (any compression) into dir, owners in meta; nothing escapes dir. */
int unpack(const char *tar, const char *dir, struct hypr_map *meta, const char *what,
    struct hypr_err *e);
/* The contents of a directory of the namespace, recursively, sorted. */
int walk(struct items *it, const struct sroot *r, const char *real, const char *out_rel,
    struct hypr_err *e);
/* Free the items. */
void items_free(struct items *it);

/* exec_mount.c: RUN --mount and --network */
int mounts_parse(struct ctx *c, struct stage *st, const struct hypr_plan_instr *instr, struct rmount **m,
    size_t *n, struct hypr_err *e);
void mounts_free(struct rmount *m, size_t n);
/* What of the mounts enters the cache key (never a cache's or a secret's bytes). */
json_t *mounts_key(const struct rmount *m, size_t n);
/* Before the step: phase 0 (for the key) bind sources as tar blobs;
 * phase 1 (a miss) cache disks attached and locked, secrets read. */
/* Attach m's cache mounts to the stage (again after a restart: m->disk
 * is set from the stage's disks). */
int mounts_attach_caches(struct ctx *c, struct stage *st, struct rmount *m, size_t n,
    struct hypr_err *e);
int mounts_prepare(struct ctx *c, struct stage *st, const struct hypr_plan_instr *instr, struct rmount *m,
    size_t n, int phase, struct hypr_err *e);
/* The mounts of the VM request; env-only secrets appended to env. */
int mounts_for_vm(struct rmount *m, size_t n, struct hypr_vm_mount **out, size_t *nout,
    json_t *env, struct hypr_err *e);
void caches_release(struct stage *st);
/* --secret id=ID,src=FILE | id=ID,env=VAR */
int secret_add(struct ctx *c, const char *spec, struct hypr_err *e);
/* exec_sources.c: a bind mount's source (context, stage or image) as a tar blob:
 * m->digest and m->vmsource set. */
int mount_source(struct ctx *c, struct stage *st, const struct hypr_plan_instr *instr, struct rmount *m,
    struct hypr_err *e);

/* exec_run.c */
int run_step(struct ctx *c, struct stage *st, const struct hypr_plan_instr *instr, struct step *s,
    struct hypr_err *e);
int run_import_pending(struct ctx *c, struct stage *st, struct hypr_err *e);
/* On a cache miss: launch the stage's VM when a RUN is still to come, so
 * that its boot overlaps the work before it (HYPR_NO_PRESTART=1: not). */
void run_prestart(struct ctx *c, struct stage *st);
/* Stop the stage's VM (also to boot another with other disks or a
 * network: the layers are imported again) and release its cache disks. */
void run_stop(struct ctx *c, struct stage *st);
void run_kill_all(struct ctx *c);
int64_t clamp_time(const struct ctx *c, int64_t t);

#endif
