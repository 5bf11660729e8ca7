/* exec.h - the engine of hypr-exec: run every instruction of a resolved
 * plan (hypr-resolved(5)) and write the steps stream (hypr-steps(5)).
 * Config instructions change the image config, COPY and ADD build layers
 * on the host, RUN runs in the build VM (vm.h); hits of the instruction
 * cache do no work. Progress, RUN output and warnings are events
 * (events.h: records on the stage's event channel, or human lines), the
 * steps stream goes to the caller's FILE. See hypr-exec(1). */
#ifndef HYPR_EXEC_H
#define HYPR_EXEC_H

#include <stdint.h>
#include <stdio.h>
#include "err.h"
#include "events.h"

struct hypr_exec_opts {
	const char *context;	/* the build context directory */
	const char *root;	/* the store, or NULL ($HYPR_ROOT) */
	int no_cache;		/* run every step again */
	int network;		/* every RUN has the network (--network=default) */
	uint64_t disk;		/* build disk limit, 0 = default */
	char *const *add_hosts;	/* "NAME:IP", NULL-terminated */
	char *const *secrets;	/* "id=ID,src=FILE" or "id=ID,env=VAR", NULL-terminated */
	struct hypr_events *events;	/* progress, RUN output and warnings; NULL: none */
};

struct hypr_exec;

/* Check the options (with HYPR_STEP_TIMEOUT, SOURCE_DATE_EPOCH, the
 * HYPR_NET_* limits from the environment), open the store and read the
 * whole plan from in. */
int hypr_exec_open(struct hypr_exec **x, const struct hypr_exec_opts *o, FILE *in,
    struct hypr_err *e);
/* Run every stage, writing the steps stream (header to end record) on out.
 * A failure leaves no end record (the stream is truncated: readers fail). */
int hypr_exec_run(struct hypr_exec *x, FILE *out, struct hypr_err *e);
/* Kill every build VM at once (error and signal paths: QEMU dies, its
 * private files stay for the temp directory's owner to remove). */
void hypr_exec_kill(struct hypr_exec *x);
/* Stop the last stage's VM (kept running until now so that the next stages
 * of the pipeline need not wait for its shutdown) and free everything. */
void hypr_exec_close(struct hypr_exec *x);

#endif
