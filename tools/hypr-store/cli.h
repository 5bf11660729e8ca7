/* cli.h - hypr-store's subcommands (one file each group). */
#ifndef HYPR_STORE_CLI_H
#define HYPR_STORE_CLI_H

#include <stdint.h>
#include <stdio.h>
#include "store.h"

extern const char *opt_root;	/* --root before the subcommand */

int cmd_store(int argc, char *argv[]);
int cmd_tag(int argc, char *argv[]);
int cmd_history(int argc, char *argv[]);
int cmd_images(int argc, char *argv[]);
int cmd_inspect(int argc, char *argv[]);
int cmd_rmi(int argc, char *argv[]);
int cmd_image_prune(int argc, char *argv[]);
int cmd_system_prune(int argc, char *argv[]);
int cmd_builder_prune(int argc, char *argv[]);
int cmd_system_df(int argc, char *argv[]);

/* The containers of hypr run (containers.c). */
struct hypr_table;
struct ctr_usage {
	size_t n, running;
	uint64_t bytes, reclaim;	/* their directories; those not running */
};
/* Count them; with rows, a line each for system df -v
 * (CONTAINER ID, IMAGE, SIZE, STATUS, NAMES). */
void ctr_usage(struct hypr_root *r, struct ctr_usage *u, struct hypr_table *rows);
/* Remove every container not running, printing docker's "Deleted
 * Containers:" section; adds what they used to *freed. */
void ctr_prune(struct hypr_root *r, uint64_t *freed);
/* Whether a container, running or not, was made from image_id
 * ("sha256:..."); who gets its short ID. */
int ctr_using(struct hypr_root *r, const char *image_id, char *who, size_t n);
/* The named volumes (lib/volume.h), counted as containers are: active
 * means a container names it; with rows, VOLUME NAME, LINKS, SIZE. */
void vol_usage(struct hypr_root *r, struct ctr_usage *u, struct hypr_table *rows);
/* system prune --volumes: the anonymous volumes no container names. */
void vol_prune(struct hypr_root *r, uint64_t *freed);

/* y/N prompt on stdin; returns 1 for yes. */
int confirm(const char *warning);

#endif
