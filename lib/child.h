/* child.h - running a helper program with pipes to it. */
#ifndef HYPR_CHILD_H
#define HYPR_CHILD_H

#include <sys/types.h>
#include "err.h"

/* Start file (searched in PATH) with argv, its stdin and stdout on new
 * pipes: *to writes its stdin, *from reads its stdout (both O_CLOEXEC,
 * the caller closes them and reaps *pid). */
int hypr_child_spawn(const char *file, char *const argv[], pid_t *pid, int *to,
    int *from, struct hypr_err *e);

#endif
