/* tool.h - the only printing code: what every tool's main uses. */
#ifndef HYPR_TOOL_H
#define HYPR_TOOL_H

#include <stdio.h>
#include "err.h"

struct hypr_events;

extern const char *hypr_prog;	/* set first thing in main() */
/* When non-zero, hypr_die() and friends exit with it whatever their code:
 * docker run's 125, hypr failed rather than the process (hypr run). */
extern int hypr_die_status;

/* Every line here is one line of text: the message goes through
 * hypr_escape (control bytes, a newline or an ESC in a user's argument
 * become \xNN). */
/* "prog: msg" on stderr (and an error record on the event channel, when
 * open) and exit(code). */
__attribute__((noreturn, format(printf, 2, 3)))
void hypr_die(int code, const char *fmt, ...);
/* Like hypr_die() with ": strerror(errno)". Exits HYPR_EXIT_SYSTEM. */
__attribute__((noreturn, format(printf, 1, 2)))
void hypr_die_errno(const char *fmt, ...);
/* Print e as "prog: msg" and exit with e->code (HYPR_EXIT_SYSTEM if unset). */
__attribute__((noreturn))
void hypr_die_err(const struct hypr_err *e);
/* "prog: warning: msg" on stderr, or a warning record on the event channel
 * (hypr-events(5)) when this program opened one. */
__attribute__((format(printf, 1, 2)))
void hypr_warn(const char *fmt, ...);
/* "prog: msg", a note on what the program is doing: on stderr, or an info
 * record on the event channel. */
__attribute__((format(printf, 1, 2)))
void hypr_info(const char *fmt, ...);
/* This program's event channel (events.h), opened on the first call from
 * HYPR_EVENTS_FD, human lines on stderr without it. A stage's main calls it
 * right after setting hypr_prog, before it starts any child (the channel is
 * close-on-exec from then on). hypr_die and friends then also send their
 * error as a record; hypr_warn and hypr_info send records instead of lines. */
struct hypr_events *hypr_tool_events(void);
/* "prog: msg" of e on stderr, without exiting (a command that goes on). */
void hypr_say_err(const struct hypr_err *e);
/* Flush and close stdout; a write error (full disk, closed pipe) dies. Returns 0. */
int hypr_close_stdout(void);
/* On SIGINT, SIGTERM, SIGHUP and SIGPIPE (where not handled already),
 * remove this process's temp dir under tmp/ before dying of the signal. */
void hypr_remove_tmp_on_signals(void);
/* Refuse to read a stream from a terminal: print usage hint and exit 2. */
void hypr_refuse_tty_stdin(const char *what);

/* A table printed like Go's tabwriter(minwidth 10, padding 3): cells are
 * separated by '\t' in each added line. */
struct hypr_table {
	char **lines;
	size_t n, cap;
};
void hypr_table_add(struct hypr_table *t, const char *line);
void hypr_table_print(struct hypr_table *t, FILE *f);

#endif
