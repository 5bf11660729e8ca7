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

/* y/N prompt on stdin; returns 1 for yes. */
int confirm(const char *warning);

#endif
