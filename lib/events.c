/* events.c - the stages' progress channel (hypr-events(5)): records out,
 * records in, and the one human form of each. */
#include "events.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "err.h"
#include "fsutil.h"

static const char *const type_names[] = {
	[HYPR_EV_NONE] = NULL,
	[HYPR_EV_PLAN] = "plan",
	[HYPR_EV_STEP] = "step",
	[HYPR_EV_OUTPUT] = "output",
	[HYPR_EV_CACHED] = "cached",
	[HYPR_EV_DONE] = "done",
	[HYPR_EV_INFO] = "info",
	[HYPR_EV_WARNING] = "warning",
	[HYPR_EV_ERROR] = "error",
};
#define NTYPES (sizeof(type_names) / sizeof(type_names[0]))

static int
utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, k;

	while (i < len) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		if ((k = hypr_utf8_len(p + i, len - i, 1)) == 0)
			return 0;
		i += k;
	}
	return 1;
}

/* s as a JSON string (valid UTF-8: the caller checked). */
static void
json_str(struct hypr_strbuf *b, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, run = 0;

	hypr_strbuf_addc(b, '"');
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[7] = "\\u00";

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		hypr_strbuf_addn(b, s + run, i - run);
		run = i + 1;
		if (c == '"' || c == '\\') {
			esc[1] = (char)c;
			hypr_strbuf_addn(b, esc, 2);
		} else if (c == '\n') {
			hypr_strbuf_addn(b, "\\n", 2);
		} else if (c == '\t') {
			hypr_strbuf_addn(b, "\\t", 2);
		} else {
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			hypr_strbuf_addn(b, esc, 6);
		}
	}
	hypr_strbuf_addn(b, s + run, len - run);
	hypr_strbuf_addc(b, '"');
}

static void
json_key(struct hypr_strbuf *b, const char *key)
{
	hypr_strbuf_addc(b, ',');
	json_str(b, key, strlen(key));
	hypr_strbuf_addc(b, ':');
}

static void
json_int(struct hypr_strbuf *b, const char *key, long long v)
{
	char num[32];

	json_key(b, key);
	snprintf(num, sizeof(num), "%lld", v);
	hypr_strbuf_add(b, num);
}

/* text, or data (base64) when its bytes are not UTF-8 */
static void
json_text(struct hypr_strbuf *b, const char *s, size_t len)
{
	unsigned char *out;

	if (utf8_valid(s, len) || len > INT_MAX / 2) {
		json_key(b, "text");
		if (len > INT_MAX / 2)	/* not for this channel: cut */
			len = 0;
		json_str(b, s, len);
		return;
	}
	json_key(b, "data");
	if ((out = malloc(4 * ((len + 2) / 3) + 1)) == NULL) {
		b->oom = 1;
		return;
	}
	EVP_EncodeBlock(out, (const unsigned char *)s, (int)len);
	hypr_strbuf_addc(b, '"');
	hypr_strbuf_add(b, (char *)out);
	hypr_strbuf_addc(b, '"');
	free(out);
}

int
hypr_events_open(struct hypr_events *ev, const char *prog, FILE *human)
{
	const char *v = getenv("HYPR_EVENTS_FD");
	struct hypr_strbuf b = { 0 };
	char *end;
	long fd;
	int fl;

	memset(ev, 0, sizeof(*ev));
	ev->fd = -1;
	ev->human = human;
	snprintf(ev->prog, sizeof(ev->prog), "%s", prog);
	snprintf(ev->stage, sizeof(ev->stage), "%s",
	    strncmp(prog, "hypr-", 5) == 0 ? prog + 5 : prog);
	if (v == NULL || *v == '\0')
		return 0;
	errno = 0;
	fd = strtol(v, &end, 10);
	unsetenv("HYPR_EVENTS_FD");
	/* 0-2 are the streams and standard error, never the channel */
	if (*end || errno || fd < 3 || fd > INT_MAX ||
	    (fl = fcntl((int)fd, F_GETFL)) < 0 || (fl & O_ACCMODE) == O_RDONLY)
		return 0;
	fcntl((int)fd, F_SETFD, FD_CLOEXEC);
	ev->fd = (int)fd;
	hypr_strbuf_add(&b, "{\"hypr\":\"events\",\"version\":1,\"stage\":");
	json_str(&b, ev->stage, utf8_valid(ev->stage, strlen(ev->stage)) ?
	    strlen(ev->stage) : 0);
	hypr_strbuf_add(&b, "}\n");
	if (b.oom || hypr_write_all(ev->fd, b.s, b.n) < 0)
		ev->broken = 1;
	free(b.s);
	return 1;
}

void
hypr_event_json(const struct hypr_event *x, const char *stage, struct hypr_strbuf *b)
{
	const char *type = x->type > HYPR_EV_NONE && (size_t)x->type < NTYPES ?
	    type_names[x->type] : "none";
	char num[64];

	hypr_strbuf_add(b, "{\"event\":");
	json_str(b, type, strlen(type));
	json_key(b, "stage");
	json_str(b, stage, strlen(stage));
	if (x->n > 0)
		json_int(b, "n", x->n);
	switch (x->type) {
	case HYPR_EV_PLAN:
		json_int(b, "steps", x->steps);
		break;
	case HYPR_EV_STEP:
		/* a stage name is a Dockerfile word (hypr-parse checks it) */
		if (x->name && utf8_valid(x->name, strlen(x->name))) {
			json_key(b, "name");
			json_str(b, x->name, strlen(x->name));
		}
		json_int(b, "pos", x->pos);
		json_int(b, "count", x->count);
		if (x->line[0] > 0) {
			json_key(b, "line");
			snprintf(num, sizeof(num), "[%ld,%ld]", x->line[0],
			    x->line[1] >= x->line[0] ? x->line[1] : x->line[0]);
			hypr_strbuf_add(b, num);
		}
		json_text(b, x->text ? x->text : "", x->text ? x->len : 0);
		break;
	case HYPR_EV_OUTPUT:
		json_int(b, "fd", x->fd);
		json_text(b, x->text ? x->text : "", x->text ? x->len : 0);
		if (x->whole > x->len)
			json_int(b, "clipped", (long long)x->whole);
		break;
	case HYPR_EV_DONE:
		json_key(b, "seconds");
		snprintf(num, sizeof(num), "%.3f", x->seconds >= 0 ? x->seconds : 0.0);
		hypr_strbuf_add(b, num);
		break;
	case HYPR_EV_ERROR:
		json_int(b, "code", x->code);
		/* fall through */
	case HYPR_EV_INFO:
	case HYPR_EV_WARNING:
		json_text(b, x->text ? x->text : "", x->text ? x->len : 0);
		break;
	default:
		break;
	}
	hypr_strbuf_add(b, "}\n");
}

int
hypr_events_put(struct hypr_events *ev, const struct hypr_event *x)
{
	struct hypr_strbuf b = { 0 };
	int rc = 0;

	if (ev == NULL || ev->broken)
		return -1;
	if (ev->fd >= 0) {
		hypr_event_json(x, ev->stage, &b);
		/* one write(2): records up to PIPE_BUF never interleave with
		 * another writer's on a shared pipe */
		if (b.oom || hypr_write_all(ev->fd, b.s, b.n) < 0) {
			ev->broken = 1;
			rc = -1;
		}
	} else if (ev->human) {
		if (ev->quiet && (x->type == HYPR_EV_STEP || x->type == HYPR_EV_CACHED ||
		    x->type == HYPR_EV_DONE || x->type == HYPR_EV_INFO)) {
			free(b.s);
			return 0;
		}
		if (hypr_event_human(x, ev->prog, ev->tty, &b)) {
			hypr_strbuf_addc(&b, '\n');
			if (b.oom || fwrite(b.s, 1, b.n, ev->human) != b.n ||
			    fflush(ev->human) == EOF)
				rc = -1;
		}
	}
	free(b.s);
	return rc;
}

int
hypr_events_say(struct hypr_events *ev, enum hypr_event_type type, int n, int code,
    const char *fmt, ...)
{
	struct hypr_event x = { .type = type, .n = n, .code = code };
	char *msg = NULL;
	va_list ap;
	int len, rc;

	va_start(ap, fmt);
	len = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (len < 0)
		return -1;
	x.text = msg;
	x.len = (size_t)len;
	rc = hypr_events_put(ev, &x);
	free(msg);
	return rc;
}

/* "text", or "data" decoded (malloc'd into *buf). */
static int
parse_text(json_t *j, const char *key64, const char **s, size_t *len, char **buf)
{
	json_t *t = json_object_get(j, "text"), *d = json_object_get(j, key64);

	if (json_is_string(t)) {
		*s = json_string_value(t);
		*len = json_string_length(t);
		return 0;
	}
	if (json_is_string(d)) {
		const char *in = json_string_value(d);
		size_t n = json_string_length(d), pad = 0;
		int k;

		if (n % 4 || n > INT_MAX || (*buf = malloc(n / 4 * 3 + 1)) == NULL)
			return -1;
		if ((k = EVP_DecodeBlock((unsigned char *)*buf, (const unsigned char *)in,
		    (int)n)) < 0)
			return -1;
		/* EVP_DecodeBlock counts padding as zero bytes */
		while (pad < 2 && n > pad && in[n - 1 - pad] == '=')
			pad++;
		*s = *buf;
		*len = (size_t)k - pad;
		(*buf)[*len] = '\0';
		return 0;
	}
	*s = "";
	*len = 0;
	return 0;
}

struct parsed {
	json_t *j;
	char *buf;
};

static long long
get_int(json_t *j, const char *key)
{
	json_t *v = json_object_get(j, key);

	return json_is_integer(v) ? json_integer_value(v) : 0;
}

static int
clamp_int(long long v)
{
	return v < 0 ? 0 : v > INT_MAX ? INT_MAX : (int)v;
}

int
hypr_event_parse(const char *line, size_t len, struct hypr_event *x)
{
	struct parsed *p;
	json_t *j, *v;
	const char *type;
	size_t i;

	memset(x, 0, sizeof(*x));
	if ((j = json_loadb(line, len, JSON_ALLOW_NUL, NULL)) == NULL)
		return -1;
	if (!json_is_object(j)) {
		json_decref(j);
		return -1;
	}
	if ((type = json_string_value(json_object_get(j, "event"))) == NULL) {
		int header = json_string_value(json_object_get(j, "hypr")) != NULL;

		json_decref(j);
		return header ? 0 : -1;
	}
	for (i = 1; i < NTYPES; i++)
		if (strcmp(type, type_names[i]) == 0)
			x->type = (enum hypr_event_type)i;
	if (x->type == HYPR_EV_NONE) {
		json_decref(j);
		return 0;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		json_decref(j);
		return -1;
	}
	p->j = j;
	x->mem = p;
	x->n = clamp_int(get_int(j, "n"));
	x->steps = clamp_int(get_int(j, "steps"));
	x->pos = clamp_int(get_int(j, "pos"));
	x->count = clamp_int(get_int(j, "count"));
	x->fd = clamp_int(get_int(j, "fd"));
	x->code = clamp_int(get_int(j, "code"));
	v = json_object_get(j, "clipped");
	x->whole = json_is_integer(v) && json_integer_value(v) > 0 ?
	    (unsigned long long)json_integer_value(v) : 0;
	x->seconds = json_is_number(v = json_object_get(j, "seconds")) ?
	    json_number_value(v) : 0;
	x->name = json_string_value(json_object_get(j, "name"));
	v = json_object_get(j, "line");
	x->line[0] = (long)json_integer_value(json_array_get(v, 0));
	x->line[1] = (long)json_integer_value(json_array_get(v, 1));
	if (parse_text(j, "data", &x->text, &x->len, &p->buf) < 0) {
		hypr_event_free(x);
		return -1;
	}
	return 1;
}

void
hypr_event_free(struct hypr_event *x)
{
	struct parsed *p = x->mem;

	if (p) {
		json_decref(p->j);
		free(p->buf);
		free(p);
	}
	x->mem = NULL;
}

static void
add_escaped(struct hypr_strbuf *b, const char *s, size_t len)
{
	char buf[1024];

	while (len > 0) {
		size_t k = hypr_escape(s, len, buf, sizeof(buf));

		hypr_strbuf_add(b, buf);
		s += k;
		len -= k;
	}
}

static void
add_text(struct hypr_strbuf *b, const char *s, size_t len, int esc)
{
	if (esc)
		add_escaped(b, s, len);
	else
		hypr_strbuf_addn(b, s, len);
}

int
hypr_event_human(const struct hypr_event *x, const char *prog, int esc,
    struct hypr_strbuf *b)
{
	char head[64];
	const char *t = x->text ? x->text : "";

	snprintf(head, sizeof(head), "#%d ", x->n);
	switch (x->type) {
	case HYPR_EV_STEP:
		hypr_strbuf_add(b, head);
		hypr_strbuf_addc(b, '[');
		if (x->name) {
			add_text(b, x->name, strlen(x->name), esc);
			hypr_strbuf_addc(b, ' ');
		}
		snprintf(head, sizeof(head), "%d/%d] ", x->pos, x->count);
		hypr_strbuf_add(b, head);
		add_text(b, t, x->len, esc);
		return 1;
	case HYPR_EV_OUTPUT:
		hypr_strbuf_add(b, head);
		add_text(b, t, x->len, esc);
		if (x->whole > x->len) {
			snprintf(head, sizeof(head), " [line clipped: %llu bytes]", x->whole);
			hypr_strbuf_add(b, head);
		}
		return 1;
	case HYPR_EV_CACHED:
		hypr_strbuf_add(b, head);
		hypr_strbuf_add(b, "CACHED");
		return 1;
	case HYPR_EV_DONE:
		hypr_strbuf_add(b, head);
		snprintf(head, sizeof(head), "DONE %.1fs", x->seconds);
		hypr_strbuf_add(b, head);
		return 1;
	case HYPR_EV_INFO:
	case HYPR_EV_WARNING:
	case HYPR_EV_ERROR:
		if (x->type == HYPR_EV_INFO && x->n > 0) {
			hypr_strbuf_add(b, head);
		} else {
			hypr_strbuf_add(b, prog);
			hypr_strbuf_add(b, x->type == HYPR_EV_WARNING ? ": warning: " : ": ");
		}
		add_escaped(b, t, x->len);
		return 1;
	default:
		return 0;
	}
}
