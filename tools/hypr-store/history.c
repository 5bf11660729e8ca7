/* history.c - hypr-store history: docker history of a stored image, from
 * the history of its OCI config (lib/push.h), newest first. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "clock.h"
#include "image.h"
#include "push.h"
#include "stream.h"
#include "tool.h"

/* docker's Ellipsis: at most max code points, the last one "…". */
static void
ellipsis(const char *s, size_t max, char *out, size_t n)
{
	size_t k = 0, runes = 0, total = 0;

	for (const char *p = s; *p; p++)
		total += ((unsigned char)*p & 0xC0) != 0x80;
	if (total <= max) {
		snprintf(out, n, "%s", s);
		return;
	}
	for (; s[k]; k++) {
		if (((unsigned char)s[k] & 0xC0) != 0x80 && runes++ == max - 1)
			break;
	}
	snprintf(out, n, "%.*s\xe2\x80\xa6", (int)k, s);
}

int
cmd_history(int argc, char *argv[])
{
	static const struct option lo[] = {
		{ "no-trunc", no_argument, NULL, 'T' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct hypr_err e = { 0 };
	struct hypr_store s;
	struct hypr_image *im;
	struct hypr_table t = { 0 };
	json_t *cfg, *hist, *layers, *h;
	int c, quiet = 0, no_trunc = 0;
	size_t nl, li;
	int64_t now = (int64_t)time(NULL);

	optind = 1;
	while ((c = getopt_long(argc, argv, "qh", lo, NULL)) != -1) {
		switch (c) {
		case 'T': no_trunc = 1; break;
		case 'q': quiet = 1; break;
		case 'h':
			printf("usage: hypr-store history [-q] [--no-trunc] IMAGE\n");
			exit(0);
		default:
			hypr_die(HYPR_EXIT_USAGE, "usage: hypr-store history [-q] [--no-trunc] IMAGE");
		}
	}
	if (optind + 1 != argc)
		hypr_die(HYPR_EXIT_USAGE, "usage: hypr-store history [-q] [--no-trunc] IMAGE");
	if (hypr_store_open_bases(&s, opt_root, 0, &e) < 0)
		hypr_die_err(&e);
	if (hypr_store_find(&s, argv[optind], &im, NULL, 0, &e) < 0 || im == NULL ||
	    im->m == NULL) {
		if (e.code == 0)
			hypr_err_set(&e, HYPR_EXIT_INPUT, "No such image: %s", argv[optind]);
		hypr_store_close(&s);
		hypr_die_err(&e);
	}
	/* a base: its OCI config's own history */
	if (im->base)
		cfg = json_pack("{s:O}", "history", json_object_get(im->m, "history"));
	else if ((cfg = hypr_push_config(im->m, &e)) == NULL) {
		hypr_store_close(&s);
		hypr_die_err(&e);
	}
	hist = json_object_get(cfg, "history");
	layers = json_object_get(im->m, "layers");
	nl = json_array_size(layers);
	/* the layer of each non-empty entry, counted from the top */
	li = nl;
	if (!quiet)
		hypr_table_add(&t, "IMAGE\tCREATED\tCREATED BY\tSIZE\tCOMMENT");
	for (size_t i = json_array_size(hist); i-- > 0;) {
		char id[80], age[64], size[32], by[160], *line = NULL;
		const char *cb = hypr_json_str(h = json_array_get(hist, i), "created_by");
		const char *cm = hypr_json_str(h, "comment");
		const char *cr = hypr_json_str(h, "created");
		uint64_t sz = 0;
		char *flat;

		if (i + 1 == json_array_size(hist))
			snprintf(id, sizeof(id), no_trunc ? "%s" : "%.12s",
			    no_trunc ? im->id : im->hex);
		else
			snprintf(id, sizeof(id), "<missing>");
		if (quiet) {
			hypr_table_add(&t, id);
			continue;
		}
		if (!json_is_true(json_object_get(h, "empty_layer")) && li > 0) {
			json_int_t v = json_integer_value(
			    json_object_get(json_array_get(layers, --li), "size"));

			sz = v > 0 ? (uint64_t)v : 0;
		}
		hypr_image_human_size(sz, size, sizeof(size));
		if (cr && hypr_image_parse_time(cr) >= 0)
			hypr_image_human_age(now - hypr_image_parse_time(cr), age, sizeof(age));
		else
			snprintf(age, sizeof(age), "N/A");
		/* one line per row: tabs and newlines as spaces */
		if ((flat = strdup(cb ? cb : "")) == NULL)
			hypr_die_errno("history");
		for (char *p = flat; *p; p++)
			if (*p == '\t' || *p == '\n' || *p == '\r')
				*p = ' ';
		ellipsis(flat, 45, by, sizeof(by));
		if (asprintf(&line, "%s\t%s\t%s\t%s\t%s", id, age, no_trunc ? flat : by,
		    size, cm ? cm : "") < 0)
			hypr_die_errno("history");
		free(flat);
		hypr_table_add(&t, line);
		free(line);
	}
	json_decref(cfg);
	hypr_store_close(&s);
	hypr_table_print(&t, stdout);
	return hypr_close_stdout();
}
