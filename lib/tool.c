#include "tool.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cas.h"
#include "events.h"

const char *hypr_prog = "hypr";
int hypr_die_status;

static struct hypr_events events;
static int events_opened;

struct hypr_events *
hypr_tool_events(void)
{
	if (!events_opened) {
		events_opened = 1;
		hypr_events_open(&events, hypr_prog, stderr);
		events.tty = isatty(STDERR_FILENO);
	}
	return &events;
}

/* The error a tool dies of, as a record too when the channel is on. */
static void
error_event(int code, const char *fmt, va_list ap, const char *why)
{
	char *msg = NULL;

	if (!events_opened || events.fd < 0 || vasprintf(&msg, fmt, ap) < 0)
		return;
	if (why)
		hypr_events_say(&events, HYPR_EV_ERROR, 0, code, "%s: %s", msg, why);
	else
		hypr_events_say(&events, HYPR_EV_ERROR, 0, code, "%s", msg);
	free(msg);
}

/* "prog: [what]msg[: why]\n", escaped: one line whatever msg holds. */
static void
vline(const char *what, const char *fmt, va_list ap, const char *why)
{
	char *msg = NULL;
	int n = vasprintf(&msg, fmt, ap);

	fprintf(stderr, "%s: %s", hypr_prog, what);
	if (n >= 0)
		hypr_fput_escaped(stderr, msg, (size_t)n);
	free(msg);
	if (why) {
		fputs(": ", stderr);
		hypr_fput_escaped(stderr, why, strlen(why));
	}
	fputc('\n', stderr);
}

void
hypr_die(int code, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	va_start(ap, fmt);
	vline("", fmt, ap, NULL);
	va_end(ap);
	va_start(ap, fmt);
	error_event(code, fmt, ap, NULL);
	va_end(ap);
	exit(hypr_die_status ? hypr_die_status : code);
}

void
hypr_die_errno(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	fflush(stdout);
	va_start(ap, fmt);
	vline("", fmt, ap, strerror(saved));
	va_end(ap);
	va_start(ap, fmt);
	error_event(HYPR_EXIT_SYSTEM, fmt, ap, strerror(saved));
	va_end(ap);
	exit(hypr_die_status ? hypr_die_status : HYPR_EXIT_SYSTEM);
}

void
hypr_die_err(const struct hypr_err *e)
{
	hypr_die(e->code ? e->code : HYPR_EXIT_SYSTEM, "%s",
	    e->msg[0] ? e->msg : "unknown error");
}

/* A warning or a note: a record on the channel, else a line on stderr. */
static void
vsay(enum hypr_event_type type, const char *fmt, va_list ap)
{
	char *msg = NULL;
	va_list cp;
	int n = -1;

	if (events_opened && events.fd >= 0) {
		va_copy(cp, ap);
		n = vasprintf(&msg, fmt, cp);
		va_end(cp);
	}
	if (n >= 0) {
		hypr_events_say(&events, type, 0, 0, "%s", msg);
		free(msg);
		return;
	}
	vline(type == HYPR_EV_WARNING ? "warning: " : "", fmt, ap, NULL);
}

void
hypr_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(HYPR_EV_WARNING, fmt, ap);
	va_end(ap);
}

void
hypr_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(HYPR_EV_INFO, fmt, ap);
	va_end(ap);
}

void
hypr_say_err(const struct hypr_err *e)
{
	fprintf(stderr, "%s: ", hypr_prog);
	hypr_fput_escaped(stderr, e->msg, strlen(e->msg));
	fputc('\n', stderr);
}

int
hypr_close_stdout(void)
{
	int bad = ferror(stdout);

	if (fclose(stdout) != 0 || bad) {
		if (errno == EPIPE)
			exit(HYPR_EXIT_SYSTEM);
		hypr_die_errno("writing standard output");
	}
	return 0;
}

void
hypr_refuse_tty_stdin(const char *what)
{
	if (isatty(STDIN_FILENO))
		hypr_die(HYPR_EXIT_USAGE, "refusing to read %s from a terminal (see --help)",
		    what);
}

static void
on_fatal_signal(int sig)
{
	hypr_root_tmp_remove_async();
	signal(sig, SIG_DFL);
	raise(sig);
}

void
hypr_remove_tmp_on_signals(void)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGPIPE };
	struct sigaction old;

	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_DFL)
			signal(sigs[i], on_fatal_signal);
}

void
hypr_table_add(struct hypr_table *t, const char *line)
{
	if (t->n == t->cap) {
		size_t nc = t->cap ? t->cap * 2 : 64;
		char **nl = realloc(t->lines, nc * sizeof(*nl));

		if (nl == NULL)
			hypr_die_errno("table");
		t->lines = nl;
		t->cap = nc;
	}
	if ((t->lines[t->n++] = strdup(line)) == NULL)
		hypr_die_errno("table");
}

/* Width of a cell as Go's tabwriter counts it: UTF-8 code points. */
static size_t
runes(const char *p, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++)
		n += ((unsigned char)p[i] & 0xC0) != 0x80;
	return n;
}

void
hypr_table_print(struct hypr_table *t, FILE *f)
{
	size_t w[32] = { 0 };

	for (size_t i = 0; i < t->n; i++) {
		const char *p = t->lines[i], *tab;
		size_t c = 0;

		/* a cell followed by a tab sets its column's width */
		while ((tab = strchr(p, '\t')) != NULL && c < 32) {
			size_t len = runes(p, (size_t)(tab - p));

			if (len > w[c])
				w[c] = len;
			p = tab + 1;
			c++;
		}
	}
	for (size_t i = 0; i < t->n; i++) {
		const char *p = t->lines[i], *tab;
		size_t c = 0;

		while ((tab = strchr(p, '\t')) != NULL && c < 32) {
			size_t len = (size_t)(tab - p), width = w[c] + 3;

			if (width < 10)
				width = 10;
			fprintf(f, "%.*s%*s", (int)len, p, (int)(width - runes(p, len)), "");
			p = tab + 1;
			c++;
		}
		fprintf(f, "%s\n", p);
		free(t->lines[i]);
	}
	free(t->lines);
	t->lines = NULL;
	t->n = t->cap = 0;
}
