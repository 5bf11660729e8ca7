/* progress.h - what the user sees while `hypr build` runs: a live view on a
 * terminal, BuildKit-style plain lines elsewhere, and the full log always,
 * made from the stages' events (hypr-events(5)) and standard error. */
#ifndef HYPR_PROGRESS_H
#define HYPR_PROGRESS_H

#include <stdio.h>
#include "hypr.h"

/* Choose the mode (auto: tty when stderr is a terminal); log gets every line. */
void progress_begin(const struct build_opts *o, FILE *log);
/* poll() timeout in ms: the live view redraws its clock. */
int progress_interval(void);
void progress_tick(void);
/* One line a stage (or its --keep tee) wrote to stderr (len bytes, NULs
 * kept); show 0: the log only (a symptom). */
void progress_stderr(int stage, const char *line, size_t len, int show);
/* One event a stage sent; show 0: the log only (a symptom). */
struct hypr_event;
void progress_event(int stage, const struct hypr_event *x, int show);
/* A stage closed its stderr and event channel (it is exiting): for the
 * log's timings. */
void progress_stage_closed(int stage);
/* A process exited with code: the log's "# PROG exited CODE" line; stage
 * -1 for a tee. */
void progress_stage_done(int stage, const char *progname, int code);
/* The error footer for progname (of stage); msg (msglen bytes) is escaped:
 * one line of text. */
void progress_fail(int stage, const char *progname, int code, const char *msg,
    size_t msglen, const char *logpath, int interrupted);
void progress_done(const char *id, const struct argv *tags);
void progress_end(void);

#endif
