/* progress.c - the build's progress: live view (tty), BuildKit plain lines,
 * the full log, and the error footer with the Dockerfile snippet. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "progress.h"
#include "stream.h"
#include "tool.h"

#define TAIL 6		/* output lines of the running step shown live */
#define KEEP 12		/* lines kept for an error footer */

struct instr {
	int stage;
	long l0, l1;
	char *text;
	int k;			/* position in its stage (FROM is 1) */
	int num;		/* #N once announced, else 0 */
	int done, cached;
	double t0, t1;
	char *tail[KEEP];	/* last output lines */
	int ntail;
};

struct pstage {
	int index;
	char *name;
	int ninstr;
};

static struct {
	int mode;		/* PROGRESS_PLAIN, _TTY or _QUIET */
	int color;
	FILE *log;
	const struct build_opts *o;
	double t0;
	struct instr *in;
	int nin;
	struct pstage *st;
	int nst;
	int cur_stage;		/* index of the stage hypr-exec is in, or -1 */
	double step_t0;		/* when the running step started */
	int counter;		/* #N */
	int ndone;
	int live_lines;		/* lines of the live area on screen */
	double last_draw;
	const char *running;	/* running stage program, for the live header */
	char *errtail[NSTAGES][KEEP];	/* last stderr lines of each stage */
	int nerr[NSTAGES];
	int failed_instr;	/* index into in[], or -1 */
} P = { .cur_stage = -1, .failed_instr = -1 };

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
ring_add(char **ring, int *n, const char *line)
{
	if (*n == KEEP) {
		free(ring[0]);
		memmove(ring, ring + 1, (KEEP - 1) * sizeof *ring);
		(*n)--;
	}
	ring[(*n)++] = strdup(line);
}

static const char *
col(const char *c)
{
	return P.color ? c : "";
}

static int
term_width(void)
{
	struct winsize ws;

	if (ioctl(2, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20)
		return ws.ws_col;
	return 80;
}

static void
clear_live(void)
{
	if (P.mode == PROGRESS_TTY && P.live_lines) {
		fprintf(stderr, "\033[%dA\033[J", P.live_lines);
		P.live_lines = 0;
	}
}

/* A line for the log, and for stderr in plain mode or above the live area. */
static void
emit(int to_screen, const char *color, const char *fmt, ...)
{
	va_list ap;

	if (P.log) {
		va_start(ap, fmt);
		vfprintf(P.log, fmt, ap);
		va_end(ap);
		fputc('\n', P.log);
	}
	if (!to_screen || P.mode == PROGRESS_QUIET)
		return;
	clear_live();
	fputs(col(color), stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(col("\033[0m"), stderr);
	fputc('\n', stderr);
}

static const char *
stage_label(int index)
{
	static char buf[64];
	int i;

	for (i = 0; i < P.nst; i++)
		if (P.st[i].index == index && P.st[i].name)
			return P.st[i].name;
	snprintf(buf, sizeof buf, "stage-%d", index);
	return buf;
}

static int
stage_total(int index)
{
	int i;

	for (i = 0; i < P.nst; i++)
		if (P.st[i].index == index)
			return P.st[i].ninstr + 1;
	return 1;
}

static struct pstage *
get_stage(int index)
{
	int i;

	for (i = 0; i < P.nst; i++)
		if (P.st[i].index == index)
			return &P.st[i];
	P.st = realloc(P.st, (size_t)(P.nst + 1) * sizeof *P.st);
	if (!P.st)
		die(HYPR_EXIT_SYSTEM, "out of memory");
	memset(&P.st[P.nst], 0, sizeof *P.st);
	P.st[P.nst].index = index;
	return &P.st[P.nst++];
}

static struct instr *
running(void)
{
	int i;

	if (P.cur_stage < 0)
		return NULL;
	for (i = 0; i < P.nin; i++)
		if (P.in[i].stage == P.cur_stage && !P.in[i].done)
			return &P.in[i];
	return NULL;
}

static void
announce(struct instr *s)
{
	if (s->num)
		return;
	s->num = ++P.counter;
	emit(P.mode == PROGRESS_PLAIN, "", "#%d [%s %d/%d] %s", s->num,
	    stage_label(s->stage), s->k, stage_total(s->stage), s->text);
}

void
progress_begin(const struct build_opts *o, FILE *log)
{
	const char *nc = getenv("NO_COLOR");

	P.o = o;
	P.log = log;
	P.mode = o->progress;
	if (P.mode == PROGRESS_AUTO)
		P.mode = isatty(2) ? PROGRESS_TTY : PROGRESS_PLAIN;
	P.color = P.mode == PROGRESS_TTY && isatty(2) && !(nc && *nc);
	P.t0 = P.last_draw = now();
	P.running = stage_progs[o->from];
	emit(0, "", "# hypr build %s (started at %ld)", o->context, (long)time(NULL));
}

int
progress_interval(void)
{
	return P.mode == PROGRESS_TTY ? 100 : -1;
}

static void
draw_live(void)
{
	struct instr *r = running();
	int w = term_width() - 1, i;
	double t = now();

	clear_live();
	fprintf(stderr, "%s[+] Building %.1fs (%d/%d)%s %s\n", col("\033[34m"),
	    t - P.t0, P.ndone, P.nin, col("\033[0m"), r ? "" : P.running);
	P.live_lines = 1;
	if (r) {
		fprintf(stderr, " => [%s %d/%d] %.*s %s%.1fs%s\n", stage_label(r->stage),
		    r->k, stage_total(r->stage), w > 40 ? w - 30 : 10, r->text,
		    col("\033[33m"), t - P.step_t0, col("\033[0m"));
		P.live_lines++;
		for (i = r->ntail > TAIL ? r->ntail - TAIL : 0; i < r->ntail; i++) {
			fprintf(stderr, "%s => => # %.*s%s\n", col("\033[2m"), w - 10,
			    r->tail[i], col("\033[0m"));
			P.live_lines++;
		}
	}
	fflush(stderr);
	P.last_draw = t;
}

void
progress_tick(void)
{
	if (P.mode == PROGRESS_TTY && now() - P.last_draw >= 0.1)
		draw_live();
}

void
progress_stderr(int stage, const char *line)
{
	struct instr *r = stage == ST_EXEC ? running() : NULL;

	ring_add(P.errtail[stage], &P.nerr[stage], line);
	if (r) {
		ring_add(r->tail, &r->ntail, line);
		if (P.mode == PROGRESS_PLAIN || P.log) {
			if (P.mode == PROGRESS_PLAIN)
				announce(r);
			else if (!r->num)
				r->num = ++P.counter;
			emit(P.mode == PROGRESS_PLAIN, "", "#%d %.3f %s", r->num,
			    now() - P.step_t0, line);
		}
		if (P.mode == PROGRESS_TTY)
			draw_live();
		return;
	}
	emit(1, "", "%s", line);
	if (P.mode == PROGRESS_TTY)
		draw_live();
}

/* Collapse a multi-line instruction to one display line. */
static char *
one_line(const char *s)
{
	char *d = strdup(s ? s : "?"), *p, *q;

	if (!d)
		die(HYPR_EXIT_SYSTEM, "out of memory");
	for (p = q = d; *p; p++) {
		if (*p == '\\' && p[1] == '\n') {
			p++;
			continue;
		}
		if (*p == '\n' || *p == '\t')
			*p = ' ';
		if (*p == ' ' && q > d && q[-1] == ' ')
			continue;
		*q++ = *p;
	}
	*q = 0;
	return d;
}

static void
on_plan_record(json_t *rec)
{
	const char *type = hypr_json_str(rec, "type");
	json_t *line = json_object_get(rec, "line");

	if (!type)
		return;
	if (!strcmp(type, "stage")) {
		struct pstage *s = get_stage((int)hypr_json_int(rec, "index", 0));
		const char *name = hypr_json_str(rec, "name");

		if (name && !s->name)
			s->name = strdup(name);
	} else if (!strcmp(type, "instr")) {
		struct instr *n;
		struct pstage *s = get_stage((int)hypr_json_int(rec, "stage", 0));

		P.in = realloc(P.in, (size_t)(P.nin + 1) * sizeof *P.in);
		if (!P.in)
			die(HYPR_EXIT_SYSTEM, "out of memory");
		n = &P.in[P.nin++];
		memset(n, 0, sizeof *n);
		n->stage = s->index;
		n->k = ++s->ninstr + 1;
		n->l0 = (long)json_integer_value(json_array_get(line, 0));
		n->l1 = (long)json_integer_value(json_array_get(line, 1));
		n->text = one_line(hypr_json_str(rec, "original"));
	}
}

static void
on_steps_record(json_t *rec)
{
	const char *type = hypr_json_str(rec, "type");
	double t = now();
	int i;

	if (!type)
		return;
	if (!strcmp(type, "stage")) {
		json_t *base = json_object_get(rec, "base");
		const char *ref = hypr_json_str(base, "ref");
		const char *dig = hypr_json_str(base, "digest");
		int num = ++P.counter;

		P.cur_stage = (int)hypr_json_int(rec, "index", 0);
		P.step_t0 = t;
		P.running = "hypr-exec";
		if (P.mode == PROGRESS_TTY)
			emit(1, "\033[34m", " => [%s 1/%d] FROM %s%s%s", stage_label(P.cur_stage),
			    stage_total(P.cur_stage), ref ? ref : "scratch", dig ? "@" : "",
			    dig ? dig : "");
		else
			emit(1, "", "#%d [%s 1/%d] FROM %s%s%s\n#%d DONE 0.0s", num,
			    stage_label(P.cur_stage), stage_total(P.cur_stage),
			    ref ? ref : "scratch", dig ? "@" : "", dig ? dig : "", num);
	} else if (!strcmp(type, "step")) {
		int stage = (int)hypr_json_int(rec, "stage", P.cur_stage);
		json_t *line = json_object_get(rec, "line");
		long l0 = (long)json_integer_value(json_array_get(line, 0));
		struct instr *s = NULL;
		int cached = json_is_true(json_object_get(rec, "cached"));

		for (i = 0; i < P.nin; i++)
			if (P.in[i].stage == stage && !P.in[i].done &&
			    (P.in[i].l0 == l0 || !line)) {
				s = &P.in[i];
				break;
			}
		if (!s) {	/* a step the plan did not show us (ONBUILD...) */
			const char *cb = hypr_json_str(rec, "created_by");

			emit(1, "", " => %s%s", cached ? "CACHED " : "", cb ? cb : "step");
			P.step_t0 = t;
			return;
		}
		s->done = 1;
		s->cached = cached;
		s->t1 = t;
		P.ndone++;
		if (P.mode == PROGRESS_TTY) {
			if (!s->num)
				s->num = ++P.counter;
			emit(1, "\033[34m", " => %s[%s %d/%d] %s  %.1fs", cached ? "CACHED " : "",
			    stage_label(s->stage), s->k, stage_total(s->stage), s->text,
			    cached ? 0.0 : t - P.step_t0);
		} else {
			if (P.mode == PROGRESS_PLAIN)
				announce(s);
			else if (!s->num) {
				s->num = ++P.counter;
				emit(0, "", "#%d [%s %d/%d] %s", s->num, stage_label(s->stage),
				    s->k, stage_total(s->stage), s->text);
			}
			if (cached)
				emit(1, "", "#%d CACHED", s->num);
			else
				emit(1, "", "#%d DONE %.1fs", s->num, t - P.step_t0);
		}
		P.step_t0 = t;
	}
}

void
progress_record(int which, const char *line)
{
	json_t *rec;

	if (!(rec = json_loads(line, JSON_DISABLE_EOF_CHECK, NULL)))
		return;
	if (which == 1)
		on_plan_record(rec);
	else
		on_steps_record(rec);
	json_decref(rec);
	if (P.mode == PROGRESS_TTY)
		draw_live();
}

void
progress_stage_done(int stage, int code)
{
	if (stage + 1 < NSTAGES)
		P.running = stage_progs[stage + 1];
	emit(0, "", "# %s exited %d after %.2fs", stage_progs[stage], code, now() - P.t0);
}

/* The Dockerfile lines around [l0,l1], the failing ones marked ">>>". */
static void
snippet(const char *name, long l0, long l1)
{
	const struct build_opts *o = P.o;
	char path[4096], *buf = NULL;
	size_t cap = 0;
	FILE *f;
	long n = 0;
	ssize_t len;

	if (o->file && !strcmp(o->file, "-"))
		return;
	if (o->file)
		snprintf(path, sizeof path, "%s", o->file);
	else
		snprintf(path, sizeof path, "%s/Dockerfile", o->context);
	if (!(f = fopen(path, "re")))
		return;
	emit(1, "", "%s:%ld", name, l0);
	emit(1, "", "--------------------");
	while ((len = getline(&buf, &cap, f)) >= 0) {
		n++;
		if (len && buf[len - 1] == '\n')
			buf[len - 1] = 0;
		if (n < l0 - 2 || n > l1 + 2)
			continue;
		if (n >= l0 && n <= l1)
			emit(1, "\033[31m", " %3ld | >>> %s", n, buf);
		else
			emit(1, "", " %3ld |     %s", n, buf);
	}
	emit(1, "", "--------------------");
	free(buf);
	fclose(f);
}

/* "hypr-parse: Dockerfile:12: ..." -> 12 for that Dockerfile name. */
static long
line_in_msg(const char *msg, const char *name)
{
	const char *p = msg;
	size_t n = strlen(name);

	while (msg && (p = strstr(p, name))) {
		p += n;
		if (*p == ':' && p[1] >= '0' && p[1] <= '9')
			return strtol(p + 1, NULL, 10);
	}
	return 0;
}

void
progress_fail(const char *progname, int code, const char *msg, const char *logpath,
    int interrupted)
{
	const struct build_opts *o = P.o;
	struct instr *r = NULL;
	const char *name;
	int stage = ST_STORE, i;
	long line;

	for (i = 0; i < NSTAGES; i++)
		if (!strcmp(progname, stage_progs[i]))
			stage = i;
	if (stage == ST_EXEC)
		r = running();
	clear_live();
	if (P.mode == PROGRESS_QUIET || (P.mode == PROGRESS_TTY && !r)) {
		/* The stage's own words were not on screen: show them. */
		int saved = P.mode;

		P.mode = PROGRESS_PLAIN;
		for (i = 0; i < P.nerr[stage]; i++)
			if (saved == PROGRESS_QUIET)
				emit(1, "", "%s", P.errtail[stage][i]);
		P.mode = saved;
	}
	name = o->file && strcmp(o->file, "-") ? strrchr(o->file, '/') : NULL;
	name = name ? name + 1 : (o->file && strcmp(o->file, "-") ? o->file : "Dockerfile");
	if (interrupted) {
		fprintf(stderr, "hypr: build interrupted\n");
		return;
	}
	{
		int saved = P.mode;

		if (saved == PROGRESS_QUIET || saved == PROGRESS_TTY)
			P.mode = PROGRESS_PLAIN;	/* the footer always shows */
		if (r) {
			emit(1, "", "------");
			emit(1, "", " > [%s %d/%d] %s:", stage_label(r->stage), r->k,
			    stage_total(r->stage), r->text);
			for (i = 0; i < r->ntail; i++)
				emit(1, "", "%s", r->tail[i]);
			emit(1, "", "------");
		}
		line = line_in_msg(msg, name);
		if (line > 0)
			snippet(name, line, line);
		else if (r)
			snippet(name, r->l0, r->l1);
		emit(1, "\033[31m", "ERROR: %s failed (exit %d): %s", progname, code,
		    msg ? msg : "no message");
		if (logpath)
			emit(1, "", "full log: %s", logpath);
		P.mode = saved;
	}
}

void
progress_done(const char *id, const struct argv *tags)
{
	size_t i;
	int num = ++P.counter;

	if (P.mode == PROGRESS_TTY) {
		emit(1, "\033[34m", " => writing image %s", id);
		for (i = 0; i < tags->n; i++)
			emit(1, "\033[34m", " => naming to %s", tags->v[i]);
		clear_live();
		fprintf(stderr, "%s[+] Building %.1fs (%d/%d) FINISHED%s\n", col("\033[34m"),
		    now() - P.t0, P.ndone, P.nin, col("\033[0m"));
	} else {
		emit(1, "", "#%d writing image %s done", num, id);
		for (i = 0; i < tags->n; i++)
			emit(1, "", "#%d naming to %s done", num, tags->v[i]);
		emit(1, "", "#%d DONE %.1fs", num, now() - P.t0);
	}
}

void
progress_end(void)
{
	int i, j;

	if (P.mode == PROGRESS_TTY)
		P.live_lines = 0;
	fflush(stderr);
	for (i = 0; i < P.nin; i++) {
		free(P.in[i].text);
		for (j = 0; j < P.in[i].ntail; j++)
			free(P.in[i].tail[j]);
	}
	free(P.in);
	for (i = 0; i < P.nst; i++)
		free(P.st[i].name);
	free(P.st);
	for (i = 0; i < NSTAGES; i++)
		for (j = 0; j < P.nerr[i]; j++)
			free(P.errtail[i][j]);
}
