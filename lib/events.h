/* events.h - the stages' progress channel (hypr-events(5)): what a stage is
 * doing (the plan's step count, each step's start, CACHED or DONE), a RUN's
 * output, notes, warnings and the error it dies of. With HYPR_EVENTS_FD
 * naming an open file descriptor, each event is one JSON Lines record there,
 * written with one write(2); without it, the same event is the line a
 * person reads on standard error (hypr-exec(1)'s "#N ..." lines). The driver
 * reads the records back with hypr_event_parse and prints them with
 * hypr_event_human: a stage run by hand and `hypr build --progress=plain`
 * show one format, made in one place. Nothing here prints on its own: lines
 * go to the FILE or descriptor the caller opened. */
#ifndef HYPR_EVENTS_H
#define HYPR_EVENTS_H

#include <stddef.h>
#include <stdio.h>

#include "strbuf.h"

enum hypr_event_type {
	HYPR_EV_NONE,		/* the header, or a record of a type not known here */
	HYPR_EV_PLAN,		/* steps: how many steps the build has (so far) */
	HYPR_EV_STEP,		/* step n begins */
	HYPR_EV_OUTPUT,		/* a line of step n's output */
	HYPR_EV_CACHED,		/* step n was a cache hit */
	HYPR_EV_DONE,		/* step n ran, in seconds */
	HYPR_EV_INFO,		/* a note, about step n if n > 0 */
	HYPR_EV_WARNING,
	HYPR_EV_ERROR,		/* the error the stage exits with, code */
};

struct hypr_event {
	enum hypr_event_type type;
	int n;			/* the step (#N) it is about, 1-based; 0: none */
	int steps;		/* plan */
	const char *name;	/* step: its Dockerfile stage's name, or NULL */
	int pos, count;		/* step: pos of count in that Dockerfile stage */
	long line[2];		/* step: first and last Dockerfile line, 0: unknown */
	const char *text;	/* step: the instruction; output: the bytes (any,
				 * NULs too); info, warning, error: the message */
	size_t len;		/* bytes of text */
	unsigned long long whole;	/* output: the line's whole length when it
				 * was clipped to text (whole > len); else 0 */
	int fd;			/* output: 1 (stdout) or 2 (stderr) */
	double seconds;		/* done */
	int code;		/* error: the exit status */
	void *mem;		/* parse: what text and name point into */
};

/* Where one program's events go. */
struct hypr_events {
	int fd;			/* the channel, or -1: human lines */
	FILE *human;		/* without the channel: the human lines (NULL: none) */
	int tty;		/* human is a terminal: step text and output escaped */
	int quiet;		/* human: no step, CACHED, DONE or info lines */
	int broken;		/* a write failed (the reader is gone): no more */
	char prog[48];		/* "hypr-exec": names the program in human lines */
	char stage[40];		/* "exec": names the stage in every record */
};

/* Set ev up for prog ("hypr-exec"; its stage is the name without "hypr-").
 * When HYPR_EVENTS_FD names a descriptor open for writing, it becomes the
 * channel: close-on-exec from now on and the variable removed from the
 * environment (this program's children never write into it), and the
 * header record is written. Otherwise events are human lines on human.
 * Returns 1 with the channel, 0 without. */
int hypr_events_open(struct hypr_events *ev, const char *prog, FILE *human);
/* Send x: its record on the channel, else its human line (if any) on human.
 * Returns 0, or -1 when it could not be written (the channel is then
 * broken and later events are dropped: progress never fails a build). */
int hypr_events_put(struct hypr_events *ev, const struct hypr_event *x);
/* An info, warning or error event (type) with a printf message. */
int hypr_events_say(struct hypr_events *ev, enum hypr_event_type type, int n,
    int code, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* x as its record: one JSON object and a newline, appended to out. The
 * stage names the writer. Bytes of text that are not UTF-8 go as base64
 * in "data" instead of "text" (hypr-events(5)). */
void hypr_event_json(const struct hypr_event *x, const char *stage,
    struct hypr_strbuf *out);
/* Read one record (len bytes, no newline). Returns 1 for an event (free it
 * with hypr_event_free), 0 for the header or a record of an unknown type
 * (skip it), -1 for a line that is not a record. */
int hypr_event_parse(const char *line, size_t len, struct hypr_event *x);
void hypr_event_free(struct hypr_event *x);
/* x's human line, without a newline, appended to out; returns 0 when x has
 * none (plan, unknown types). prog names the program in info, warning and
 * error lines; their messages are always escaped (hypr_escape), the step
 * text and output only when esc is set (a terminal). */
int hypr_event_human(const struct hypr_event *x, const char *prog, int esc,
    struct hypr_strbuf *out);

#endif
