/* images.c - hypr-store images / inspect, and the table and prompt helpers. */
#include <fnmatch.h>
#include <inttypes.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cas.h"
#include "cli.h"
#include "digest.h"
#include "image.h"
#include "store.h"
#include "stream.h"
#include "template.h"
#include "tool.h"

int
confirm(const char *warning)
{
	char *line = NULL;
	size_t cap = 0;
	int yes;

	fprintf(stdout, "%s\nAre you sure you want to continue? [y/N] ", warning);
	fflush(stdout);
	if (getline(&line, &cap, stdin) < 0) {
		free(line);
		fputc('\n', stdout);
		return 0;
	}
	yes = line[0] == 'y' || line[0] == 'Y';
	free(line);
	return yes;
}

/* One row of `images`. */
struct row {
	struct hypr_image *im;
	char repo[600];
	char tag[160];
};

struct fmt_ctx {
	const struct row *r;
	int no_trunc;
	int64_t now;
};

static const char *
row_field(const struct fmt_ctx *c, const char *name, char *buf, size_t n)
{
	const struct hypr_image *im = c->r->im;

	if (strcmp(name, "ID") == 0)
		snprintf(buf, n, c->no_trunc ? "%s" : "%.12s", c->no_trunc ? im->id : im->hex);
	else if (strcmp(name, "Repository") == 0)
		snprintf(buf, n, "%s", c->r->repo);
	else if (strcmp(name, "Tag") == 0)
		snprintf(buf, n, "%s", c->r->tag);
	else if (strcmp(name, "Digest") == 0) {
		const char *d = hypr_json_str(json_object_get(im->m, "squashfs"), "digest");
		const char *k;
		json_t *v;

		/* a base: the registry digest its tag names */
		json_object_foreach(im->refs, k, v) {
			char fam[700], row[800];

			hypr_store_familiar(k, fam, sizeof(fam));
			snprintf(row, sizeof(row), "%s:%s", c->r->repo, c->r->tag);
			if (strcmp(fam, row) == 0)
				d = json_string_value(v);
		}

		snprintf(buf, n, "%s", d ? d : "<none>");
	} else if (strcmp(name, "CreatedSince") == 0)
		hypr_image_human_age(c->now - im->created, buf, n);
	else if (strcmp(name, "CreatedAt") == 0) {
		time_t t = (time_t)im->created;
		struct tm tm;

		gmtime_r(&t, &tm);
		strftime(buf, n, "%Y-%m-%d %H:%M:%S +0000 UTC", &tm);
	} else if (strcmp(name, "Size") == 0 || strcmp(name, "VirtualSize") == 0)
		hypr_image_human_size(im->size, buf, n);
	else if (strcmp(name, "Containers") == 0 || strcmp(name, "SharedSize") == 0 ||
	    strcmp(name, "UniqueSize") == 0)
		snprintf(buf, n, "N/A");
	else
		return NULL;
	return buf;
}

/* The fields of an `images` row, sorted (docker's --format json order). */
static const char *const row_fields[] = {
	"Containers", "CreatedAt", "CreatedSince", "Digest", "ID", "Repository",
	"SharedSize", "Size", "Tag", "UniqueSize", "VirtualSize", NULL
};

static const char *
field_header(const char *name)
{
	if (strcmp(name, "ID") == 0)
		return "IMAGE ID";
	if (strcmp(name, "CreatedSince") == 0)
		return "CREATED";
	if (strcmp(name, "CreatedAt") == 0)
		return "CREATED AT";
	if (strcmp(name, "VirtualSize") == 0)
		return "VIRTUAL SIZE";
	if (strcmp(name, "Repository") == 0)
		return "REPOSITORY";
	if (strcmp(name, "Tag") == 0)
		return "TAG";
	if (strcmp(name, "Digest") == 0)
		return "DIGEST";
	if (strcmp(name, "Size") == 0)
		return "SIZE";
	return name;
}

/* A row as the template sees it; header: the column titles instead (a
 * table's first line is the template run over them, as docker does). */
static json_t *
row_json(const struct fmt_ctx *c, int header)
{
	json_t *j = json_object();
	char val[700];

	for (const char *const *k = row_fields; *k; k++)
		json_object_set_new(j, *k, json_string(header ? field_header(*k) :
		    row_field(c, *k, val, sizeof(val))));
	return j;
}

/* The template t over dot; NULL with e filled when it fails. */
static char *
format_run(const struct hypr_tmpl *t, json_t *dot, json_t **maps, size_t nmaps,
    struct hypr_err *e)
{
	struct hypr_strbuf b = { 0 };
	struct hypr_tmpl_data d = { .dot = dot, .maps = maps, .nmaps = nmaps };

	if (hypr_tmpl_exec(t, &d, &b, e) < 0) {
		free(b.s);
		hypr_err_prefix(e, "--format");
		return NULL;
	}
	if (b.oom) {
		free(b.s);
		hypr_err_set(e, HYPR_EXIT_SYSTEM, "--format: out of memory");
		return NULL;
	}
	return hypr_strbuf_take(&b);
}

/* One row (or, header, the titles) through the template; a failure frees
 * the template and the store and exits naming it. */
static char *
row_line(struct hypr_tmpl *t, const struct fmt_ctx *c, int header, struct hypr_store *s)
{
	struct hypr_err e = { 0 };
	json_t *j = row_json(c, header);
	char *line = format_run(t, j, NULL, 0, &e);

	json_decref(j);
	if (line == NULL) {
		hypr_tmpl_free(t);
		hypr_store_close(s);
		hypr_die(e.code, "%s", e.msg);
	}
	return line;
}

static int
has_label(const struct hypr_image *im, const char *want)
{
	json_t *labels = json_object_get(im->m, "labels");
	const char *eq = strchr(want, '=');
	char key[512];
	const char *v;

	snprintf(key, sizeof(key), "%.*s", eq ? (int)(eq - want) : (int)strlen(want), want);
	v = hypr_json_str(labels, key);
	return v && (!eq || strcmp(v, eq + 1) == 0);
}

static int
ref_match(const struct row *r, const char *pat)
{
	char full[800];

	if (strcmp(r->repo, "<none>") == 0)
		return 0;
	snprintf(full, sizeof(full), "%s:%s", r->repo, r->tag);
	return fnmatch(pat, r->repo, 0) == 0 || fnmatch(pat, full, 0) == 0;
}

/* inspect reads the whole squashfs once (0.13 s per 100 MB from the page
 * cache here, ~0.4 s cold): its size and digest must be the manifest's.
 * A bit flip in images/<id>.squashfs (a hard link of the blob) is reported
 * here; a verifying build (HYPR_SQUASH_VERIFY=1: hypr-squash --verify)
 * rebuilds the blob and its store relinks it. hypr build --no-cache alone
 * does not: it reruns the steps, not the squash (the chain squashfs is
 * reused after a cheap size and superblock check). 1 = damaged (message
 * printed). */
static int
squashfs_damaged(struct hypr_store *s, const struct hypr_image *im)
{
	json_t *sq = json_object_get(im->m, "squashfs");
	const char *want = hypr_json_str(sq, "digest");
	json_int_t size = json_integer_value(json_object_get(sq, "size"));
	char path[HYPR_PATH_BUF], got[HYPR_DIGEST_LEN + 1];
	struct hypr_err e = { 0 };
	uint64_t len = 0;

	if (!want || hypr_root_path(&s->root, path, sizeof(path), "images/%s.squashfs",
	    im->hex) < 0)
		return 0;
	if (hypr_digest_file(path, got, &len, &e) < 0) {
		hypr_err_prefix(&e, "image %s", im->id);
		hypr_say_err(&e);
		return 1;
	}
	if (strcmp(got, want) == 0 && (size <= 0 || (uint64_t)size == len))
		return 0;
	fprintf(stderr, "hypr-store: image %s: squashfs damaged (%" PRIu64 " bytes, %s; "
	    "the manifest says %lld bytes, %s): rebuild it with HYPR_SQUASH_VERIFY=1 hypr build\n",
	    im->id, len, got, (long long)size, want);
	return 1;
}

int
cmd_images(int argc, char *argv[])
{
	static const struct option lo[] = {
		{ "all", no_argument, NULL, 'a' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "digests", no_argument, NULL, 'D' },
		{ "no-trunc", no_argument, NULL, 'N' },
		{ "format", required_argument, NULL, 'F' },
		{ "filter", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct hypr_err e = { 0 };
	struct hypr_store s;
	struct hypr_table t = { 0 };
	const char *format = NULL, *filters[32], *want_repo = NULL;
	char want_tag[160] = "", prev[HYPR_DIGEST_LEN + 1] = "";
	size_t nf = 0;
	int c, quiet = 0, digests = 0, no_trunc = 0, header = 1;
	struct hypr_tmpl *tmpl = NULL;
	int64_t before = INT64_MAX, since = INT64_MIN;
	char wr[600];

	optind = 1;
	while ((c = getopt_long(argc, argv, "aqf:h", lo, NULL)) != -1) {
		switch (c) {
		case 'a': break;	/* no intermediate images in hypr */
		case 'q': quiet = 1; break;
		case 'D': digests = 1; break;
		case 'N': no_trunc = 1; break;
		case 'F': format = optarg; break;
		case 'f':
			if (nf == 32)
				hypr_die(HYPR_EXIT_USAGE, "too many filters");
			filters[nf++] = optarg;
			break;
		case 'h':
			printf("usage: hypr images [-a] [-q] [--digests] [--no-trunc] "
			    "[--format table|json|TEMPLATE] [--filter KEY=VALUE] [REPO[:TAG]]\n");
			exit(0);
		default:
			hypr_die(HYPR_EXIT_USAGE, "usage: hypr images [OPTIONS] [REPO[:TAG]]");
		}
	}
	if (argc - optind > 1)
		hypr_die(HYPR_EXIT_USAGE, "images: at most one REPO[:TAG]");
	if (hypr_store_open_bases(&s, opt_root, 0, &e) < 0)
		hypr_die_err(&e);
	if (optind < argc) {
		char *colon;

		snprintf(wr, sizeof(wr), "%s", argv[optind]);
		colon = strrchr(wr, ':');
		if (colon && !strchr(colon, '/')) {
			*colon = '\0';
			snprintf(want_tag, sizeof(want_tag), "%s", colon + 1);
		}
		want_repo = wr;
	}
	for (size_t i = 0; i < nf; i++) {
		const char *v = strchr(filters[i], '=');
		struct hypr_image *im;

		if (v == NULL)
			hypr_die(HYPR_EXIT_USAGE, "bad filter '%s' (KEY=VALUE)", filters[i]);
		v++;
		if (strncmp(filters[i], "dangling=", 9) == 0) {
			if (strcmp(v, "true") && strcmp(v, "false") && strcmp(v, "1") && strcmp(v, "0"))
				hypr_die(HYPR_EXIT_USAGE, "invalid filter 'dangling=%s' (true or false)", v);
		} else if (strncmp(filters[i], "before=", 7) == 0 ||
		    strncmp(filters[i], "since=", 6) == 0) {
			if (hypr_store_find(&s, v, &im, NULL, 0, &e) < 0 || !im)
				hypr_die(HYPR_EXIT_INPUT, "filter %s: %s", filters[i],
				    im ? e.msg : "No such image");
			if (filters[i][0] == 'b')
				before = im->created;
			else
				since = im->created;
		} else if (strncmp(filters[i], "reference=", 10) != 0 &&
		    strncmp(filters[i], "label=", 6) != 0) {
			hypr_die(HYPR_EXIT_USAGE, "invalid filter '%.*s' (dangling, reference, label, "
			    "before, since)", (int)(v - filters[i] - 1), filters[i]);
		}
	}
	if (format && strcmp(format, "table") == 0)
		format = NULL;
	if (format && strncmp(format, "table ", 6) == 0) {
		format += 6;
	} else if (format) {
		header = 0;
		if (strcmp(format, "json") == 0)
			format = "{{json .}}";
	}
	if (!format) {
		format = digests ? "{{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t"
		    "{{.CreatedSince}}\t{{.Size}}" :
		    "{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
	}
	if (quiet) {
		format = "{{.ID}}";
		header = 0;
	}
	if (hypr_tmpl_parse(format, &tmpl, &e) < 0) {
		hypr_store_close(&s);
		hypr_die(e.code, "--format: %s", e.msg);
	}
	{
		/* the titles have every field: an unknown one fails with no rows too */
		struct row r = { 0 };
		struct hypr_image dummy = { .hex = "" };
		struct fmt_ctx fc = { .r = &r };
		char *line;

		r.im = &dummy;
		line = row_line(tmpl, &fc, 1, &s);
		if (header)
			hypr_table_add(&t, line);
		free(line);
	}
	for (size_t i = 0; i < s.n; i++) {
		struct hypr_image *im = &s.img[i];
		size_t nt = json_array_size(im->tags);

		if (im->problem) {
			hypr_warn("image %.12s: %s (remove it with `hypr rmi %.12s` or "
			    "`hypr image prune`)", im->hex, im->problem, im->hex);
			continue;
		}
		for (size_t k = 0; k < (nt ? nt : 1); k++) {
			struct row r = { .im = im };
			struct fmt_ctx fc = { .r = &r, .no_trunc = no_trunc, .now = (int64_t)time(NULL) };
			int ok = im->created < before && im->created > since;
			char *line;

			if (nt) {
				const char *tg = json_string_value(json_array_get(im->tags, k));
				const char *colon = strrchr(tg, ':');

				snprintf(r.repo, sizeof(r.repo), "%.*s", (int)(colon - tg), tg);
				snprintf(r.tag, sizeof(r.tag), "%s", colon + 1);
			} else {
				snprintf(r.repo, sizeof(r.repo), "<none>");
				snprintf(r.tag, sizeof(r.tag), "<none>");
			}
			for (size_t f = 0; f < nf && ok; f++) {
				const char *v = strchr(filters[f], '=') + 1;

				if (strncmp(filters[f], "dangling=", 9) == 0)
					ok = (nt == 0) == (strcmp(v, "true") == 0 || strcmp(v, "1") == 0);
				else if (strncmp(filters[f], "reference=", 10) == 0)
					ok = ref_match(&r, v);
				else if (strncmp(filters[f], "label=", 6) == 0)
					ok = has_label(im, v);
			}
			if (ok && want_repo)
				ok = strcmp(r.repo, want_repo) == 0 &&
				    (!want_tag[0] || strcmp(r.tag, want_tag) == 0);
			if (!ok)
				continue;
			if (quiet && strcmp(prev, im->id) == 0)
				continue;
			snprintf(prev, sizeof(prev), "%s", im->id);
			line = row_line(tmpl, &fc, 0, &s);
			/* a table aligns its columns; any other format writes its tabs */
			if (header)
				hypr_table_add(&t, line);
			else
				printf("%s\n", line);
			free(line);
		}
	}
	hypr_tmpl_free(tmpl);
	hypr_table_print(&t, stdout);
	hypr_store_close(&s);
	return hypr_close_stdout();
}

int
cmd_inspect(int argc, char *argv[])
{
	static const struct option lo[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "type", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct hypr_err e = { 0 };
	struct hypr_store s;
	struct hypr_tmpl *tmpl = NULL;
	const char *format = NULL;
	json_t *arr = json_array();
	int c, rc = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "f:h", lo, NULL)) != -1) {
		switch (c) {
		case 'f': format = optarg; break;
		case 'T':
			if (strcmp(optarg, "image") != 0)
				hypr_die(HYPR_EXIT_USAGE, "inspect: --type %s: hypr-store knows images",
				    optarg);
			break;
		case 'h': printf("usage: hypr image inspect [-f FORMAT] IMAGE...\n"); exit(0);
		default: hypr_die(HYPR_EXIT_USAGE, "usage: hypr image inspect [-f FORMAT] IMAGE...");
		}
	}
	if (optind == argc)
		hypr_die(HYPR_EXIT_USAGE, "inspect: at least one IMAGE");
	if (format && strcmp(format, "json") == 0)
		format = "{{json .}}";
	if (format && hypr_tmpl_parse(format, &tmpl, &e) < 0)
		hypr_die(e.code, "--format: %s", e.msg);
	if (hypr_store_open_bases(&s, opt_root, 0, &e) < 0) {
		hypr_tmpl_free(tmpl);
		hypr_die_err(&e);
	}
	for (int i = optind; i < argc; i++) {
		struct hypr_image *im;
		struct hypr_err fe = { 0 };
		json_t *o, *maps[HYPR_STORE_INSPECT_MAPS];
		size_t nmaps;
		char *line;

		if (hypr_store_find(&s, argv[i], &im, NULL, 0, &fe) < 0 || im == NULL) {
			if (!fe.code)
				hypr_err_set(&fe, HYPR_EXIT_INPUT, "No such image");
			hypr_say_err(&fe);
			rc = HYPR_EXIT_INPUT;
			continue;
		}
		if (im->problem) {
			fprintf(stderr, "hypr-store: image %s: %s\n", im->id, im->problem);
			rc = HYPR_EXIT_INPUT;
			continue;
		}
		if (squashfs_damaged(&s, im)) {
			rc = HYPR_EXIT_INPUT;
			continue;
		}
		if ((o = hypr_store_inspect(&s, im, maps, &nmaps)) == NULL)
			hypr_die(HYPR_EXIT_SYSTEM, "inspect: out of memory");
		if (!tmpl) {
			json_array_append_new(arr, o);
			continue;
		}
		line = format_run(tmpl, o, maps, nmaps, &e);
		json_decref(o);
		if (line == NULL) {
			/* docker stops at the first failing template too */
			json_decref(arr);
			hypr_tmpl_free(tmpl);
			hypr_store_close(&s);
			hypr_die(e.code, "%s", e.msg);
		}
		printf("%s\n", line);
		free(line);
	}
	if (!tmpl) {
		char *txt = json_dumps(arr, JSON_INDENT(4));

		printf("%s\n", txt);
		free(txt);
	}
	json_decref(arr);
	hypr_tmpl_free(tmpl);
	hypr_store_close(&s);
	hypr_close_stdout();
	return rc;
}
