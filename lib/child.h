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
/* The same with fd3 (>= 0) as the child's descriptor 3. */
int hypr_child_spawn3(const char *file, char *const argv[], pid_t *pid, int *to,
    int *from, int fd3, struct hypr_err *e);

/* Start argv[0] (searched in PATH) with the file src as its stdin and a
 * new pipe as its stdout: *from reads it (O_CLOEXEC; the caller closes it
 * and reaps *pid). */
int hypr_child_reader(char *const argv[], const char *src, pid_t *pid, int *from,
    struct hypr_err *e);

/* Run argv[0] (searched in PATH) with the file src as its stdin and the
 * new file out (mode 0600, removed again on any failure) as its stdout,
 * and wait: 0 if it exited 0; else -1, e naming what (what: "gzip of layer
 * X") and "(not installed?)" when it could not be run. */
int hypr_child_filter(char *const argv[], const char *src, const char *out,
    const char *what, struct hypr_err *e);

#endif
