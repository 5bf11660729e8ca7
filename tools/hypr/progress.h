/* progress.h - what the user sees while `hypr build` runs: a live view on a
 * terminal, BuildKit-style plain lines elsewhere, and the full log always. */
#ifndef HYPR_PROGRESS_H
#define HYPR_PROGRESS_H

#include <stdio.h>
#include "hypr.h"

/* Choose the mode (auto: tty when stderr is a terminal); log gets every line. */
void progress_begin(const struct build_opts *o, FILE *log);
/* poll() timeout in ms: the live view redraws its clock. */
int progress_interval(void);
void progress_tick(void);
/* One line a stage wrote to stderr (len bytes, NULs kept); show 0: the
 * log only (a symptom). */
void progress_stderr(int stage, const char *line, size_t len, int show);
/* One stream record seen between stages: which 1 = hypr-exec's input (plan
 * records), 2 = hypr-exec's output (steps). */
void progress_record(int which, const char *line, size_t len);
/* A stage closed its stderr (it is exiting): for the log's timings. */
void progress_stage_closed(int stage);
void progress_stage_done(int stage, int code);
/* The error footer; msg (msglen bytes) is escaped: one line of text. */
void progress_fail(const char *progname, int code, const char *msg, size_t msglen,
    const char *logpath, int interrupted);
void progress_done(const char *id, const struct argv *tags);
void progress_end(void);

#endif
