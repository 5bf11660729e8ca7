/* Unit tests for lib/events: records out and back in, their human lines,
 * bytes that are not UTF-8, the channel from HYPR_EVENTS_FD. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "events.h"

/* x through its record and back; the human line of the parsed event. */
static char *
round_trip(const struct hypr_event *x, int esc, struct hypr_event *back)
{
	struct hypr_strbuf j = { 0 }, h = { 0 };
	int r;

	hypr_event_json(x, "exec", &j);
	CHECK(j.n > 0 && j.s[j.n - 1] == '\n' && memchr(j.s, '\n', j.n) == j.s + j.n - 1);
	r = hypr_event_parse(j.s, j.n - 1, back);
	CHECK(r == 1);
	free(j.s);
	if (r != 1)
		return strdup("");
	hypr_event_human(back, "hypr-exec", esc, &h);
	return hypr_strbuf_take(&h);
}

int
main(void)
{
	struct hypr_event b;
	struct hypr_strbuf s = { 0 };
	char *h;

	h = round_trip(&(struct hypr_event){ .type = HYPR_EV_STEP, .n = 3, .name = "builder",
	    .pos = 2, .count = 4, .line = { 5, 6 }, .text = "RUN make \"all\"", .len = 14 }, 0, &b);
	CHECK(strcmp(h, "#3 [builder 2/4] RUN make \"all\"") == 0);
	CHECK(b.line[0] == 5 && b.line[1] == 6 && b.n == 3);
	hypr_event_free(&b);
	free(h);
	h = round_trip(&(struct hypr_event){ .type = HYPR_EV_STEP, .n = 1, .pos = 1, .count = 1,
	    .text = "COPY a /a", .len = 9 }, 0, &b);
	CHECK(strcmp(h, "#1 [1/1] COPY a /a") == 0 && b.name == NULL);
	hypr_event_free(&b);
	free(h);

	/* output: NULs and control bytes as they are, or escaped */
	h = round_trip(&(struct hypr_event){ .type = HYPR_EV_OUTPUT, .n = 2, .fd = 2,
	    .text = "a\0b\033]0;t\a\tc", .len = 11 }, 0, &b);
	CHECK(b.fd == 2 && b.len == 11 && memcmp(b.text, "a\0b\033]0;t\a\tc", 11) == 0);
	CHECK(memcmp(h, "#2 a", 4) == 0);
	hypr_event_free(&b);
	free(h);
	h = round_trip(&(struct hypr_event){ .type = HYPR_EV_OUTPUT, .n = 2, .fd = 1,
	    .text = "a\0b\033]0;t\a\tc", .len = 11 }, 1, &b);
	CHECK(strcmp(h, "#2 a\\x00b\\x1b]0;t\\x07\tc") == 0);
	hypr_event_free(&b);
	free(h);
	/* not UTF-8: base64, byte for byte; clipped */
	hypr_event_json(&(struct hypr_event){ .type = HYPR_EV_OUTPUT, .n = 7, .fd = 1,
	    .text = "bad\377name", .len = 8, .whole = 100 }, "exec", &s);
	CHECK(strstr(s.s, "\"data\":\"YmFk/25hbWU=\"") && !strstr(s.s, "\"text\""));
	CHECK(strstr(s.s, "\"clipped\":100"));
	CHECK(hypr_event_parse(s.s, s.n - 1, &b) == 1);
	CHECK(b.len == 8 && memcmp(b.text, "bad\377name", 8) == 0 && b.whole == 100);
	hypr_strbuf_reset(&s);
	hypr_event_human(&b, "hypr-exec", 0, &s);
	CHECK(s.n == 37 && memcmp(s.s, "#7 bad\377name [line clipped: 100 bytes]", 37) == 0);
	hypr_event_free(&b);
	hypr_strbuf_reset(&s);
	for (size_t len = 0; len < 6; len++) {	/* every padding */
		hypr_event_json(&(struct hypr_event){ .type = HYPR_EV_OUTPUT, .n = 1,
		    .text = "\377\376\375\374\373\372", .len = len }, "exec", &s);
		CHECK(hypr_event_parse(s.s, s.n - 1, &b) == 1);
		CHECK(b.len == len && memcmp(b.text, "\377\376\375\374\373\372", len) == 0);
		hypr_event_free(&b);
		hypr_strbuf_reset(&s);
	}

	h = round_trip(&(struct hypr_event){ .type = HYPR_EV_CACHED, .n = 4 }, 0, &b);
	CHECK(strcmp(h, "#4 CACHED") == 0);
	hypr_event_free(&b);
	free(h);
	h = round_trip(&(struct hypr_event){ .type = HYPR_EV_DONE, .n = 4, .seconds = 1.26 }, 0, &b);
	CHECK(strcmp(h, "#4 DONE 1.3s") == 0);
	hypr_event_free(&b);
	free(h);
	h = round_trip(&(struct hypr_event){ .type = HYPR_EV_PLAN, .steps = 9 }, 0, &b);
	CHECK(b.steps == 9 && strcmp(h, "") == 0);
	hypr_event_free(&b);
	free(h);
	/* messages are one line whatever they hold */
	h = round_trip(&(struct hypr_event){ .type = HYPR_EV_WARNING, .text = "x\ny", .len = 3 },
	    0, &b);
	CHECK(strcmp(h, "hypr-exec: warning: x\\x0ay") == 0);
	hypr_event_free(&b);
	free(h);
	h = round_trip(&(struct hypr_event){ .type = HYPR_EV_ERROR, .code = 3,
	    .text = "Dockerfile:2: bad", .len = 17 }, 0, &b);
	CHECK(b.code == 3 && strcmp(h, "hypr-exec: Dockerfile:2: bad") == 0);
	hypr_event_free(&b);
	free(h);
	h = round_trip(&(struct hypr_event){ .type = HYPR_EV_INFO, .n = 5, .text = "waiting",
	    .len = 7 }, 0, &b);
	CHECK(strcmp(h, "#5 waiting") == 0);
	hypr_event_free(&b);
	free(h);

	/* the header and unknown types are skipped; other lines are not records */
	{
		static const char *const skip[] = { "{\"hypr\":\"events\",\"version\":1}",
		    "{\"event\":\"later\",\"n\":1}" };
		static const char *const bad[] = { "#1 CACHED", "[1]", "{\"n\":1}",
		    "{\"event\":\"output\",\"data\":\"abc\"}", "{\"event\":\"info\"} x" };

		for (size_t i = 0; i < 2; i++)
			CHECK(hypr_event_parse(skip[i], strlen(skip[i]), &b) == 0);
		for (size_t i = 0; i < 5; i++)
			CHECK(hypr_event_parse(bad[i], strlen(bad[i]), &b) == -1);
	}

	/* the channel: header first, one record a line, the variable gone */
	{
		struct hypr_events ev;
		int p[2];
		char buf[4096], var[16];
		ssize_t n;

		CHECK(pipe(p) == 0);
		snprintf(var, sizeof(var), "%d", p[1]);
		setenv("HYPR_EVENTS_FD", var, 1);
		CHECK(hypr_events_open(&ev, "hypr-exec", stderr) == 1);
		CHECK(getenv("HYPR_EVENTS_FD") == NULL);
		CHECK(fcntl(p[1], F_GETFD) & FD_CLOEXEC);
		CHECK(hypr_events_say(&ev, HYPR_EV_WARNING, 0, 0, "w %d", 1) == 0);
		close(p[1]);
		n = read(p[0], buf, sizeof(buf) - 1);
		buf[n > 0 ? n : 0] = '\0';
		CHECK(strcmp(buf, "{\"hypr\":\"events\",\"version\":1,\"stage\":\"exec\"}\n"
		    "{\"event\":\"warning\",\"stage\":\"exec\",\"text\":\"w 1\"}\n") == 0);
		close(p[0]);
		/* the reader gone: -1, then nothing more is tried */
		CHECK(pipe(p) == 0);
		snprintf(var, sizeof(var), "%d", p[1]);
		setenv("HYPR_EVENTS_FD", var, 1);
		signal(SIGPIPE, SIG_IGN);
		close(p[0]);
		CHECK(hypr_events_open(&ev, "hypr-exec", stderr) == 1 && ev.broken);
		CHECK(hypr_events_put(&ev, &(struct hypr_event){ .type = HYPR_EV_CACHED, .n = 1 }) < 0);
		close(p[1]);
		/* no variable, a bad one, a closed fd: human lines */
		setenv("HYPR_EVENTS_FD", "x", 1);
		CHECK(hypr_events_open(&ev, "hypr-exec", NULL) == 0 && ev.fd == -1);
		setenv("HYPR_EVENTS_FD", "1", 1);
		CHECK(hypr_events_open(&ev, "hypr-exec", NULL) == 0);
		setenv("HYPR_EVENTS_FD", "999", 1);
		CHECK(hypr_events_open(&ev, "hypr-exec", NULL) == 0);
	}
	free(s.s);
	CHECK_DONE();
}
