/* hypr-layer - steps stream -> cache entries + image stream; or, alone,
 * flatten layer tars into one rootfs tar. See hypr-layer(1), hypr-image(5). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "cas.h"
#include "fsutil.h"
#include "image.h"
#include "rootfs.h"
#include "stream.h"
#include "tool.h"

struct opts {
	const char *root;
	int flatten;
	const char *cat;
};

static void
usage(FILE *f, int code)
{
	fprintf(f,
	    "usage: hypr-layer [--root DIR] < steps > image\n"
	    "       hypr-layer --flatten LAYER.tar... > rootfs.tar\n"
	    "       hypr-layer [--root DIR] --cat PATH DIGEST...\n"
	    "Record the build cache and write the image stream (hypr-image(5)),\n"
	    "or apply a chain of layer tars (lowest first, whiteouts honoured).\n"
	    "  -r, --root DIR   the hypr store (default $HYPR_ROOT)\n"
	    "      --flatten    flatten the named layer tars to standard output\n"
	    "      --cat PATH   print a file of the chain of store layers DIGEST...\n"
	    "  -h, --help       this help\n");
	exit(code);
}

static void
parse_args(int argc, char *argv[], struct opts *o)
{
	static const struct option lo[] = {
		{ "root", required_argument, NULL, 'r' },
		{ "flatten", no_argument, NULL, 'F' },
		{ "cat", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "r:h", lo, NULL)) != -1) {
		switch (c) {
		case 'r': o->root = optarg; break;
		case 'F': o->flatten = 1; break;
		case 'C': o->cat = optarg; break;
		case 'h': usage(stdout, 0); break;
		default: usage(stderr, HYPR_EXIT_USAGE);
		}
	}
}

static int
flatten_main(int n, char *paths[])
{
	struct hypr_err e = { 0 };
	int64_t epoch = hypr_image_epoch(&e);
	const char *tmp = getenv("TMPDIR");
	int *fds;

	if (epoch < -1)
		hypr_die_err(&e);
	if (n == 0)
		hypr_die(HYPR_EXIT_USAGE, "--flatten needs at least one layer tar");
	if (isatty(STDOUT_FILENO))
		hypr_die(HYPR_EXIT_USAGE, "refusing to write a tar to a terminal");
	if ((fds = calloc((size_t)n, sizeof(int))) == NULL)
		hypr_die_errno("flatten");
	for (int i = 0; i < n; i++) {
		const char *p = strcmp(paths[i], "-") == 0 ? "/dev/stdin" : paths[i];

		if ((fds[i] = open(p, O_RDONLY | O_CLOEXEC)) < 0) {
			if (errno == ENOENT)
				hypr_die(HYPR_EXIT_INPUT, "%s: %s", paths[i], strerror(errno));
			hypr_die_errno("%s", paths[i]);
		}
	}
	fflush(stdout);
	if (hypr_rootfs_flatten_fds(fds, (const char *const *)paths, (size_t)n,
	    STDOUT_FILENO, epoch, tmp && *tmp ? tmp : "/tmp", &e) < 0)
		hypr_die_err(&e);
	for (int i = 0; i < n; i++)
		close(fds[i]);
	free(fds);
	return hypr_close_stdout();
}

/* --cat: what hypr-exec reads for USER and COPY --chown (/etc/passwd). */
static int
cat_main(const struct opts *o, int n, char *digests[])
{
	struct hypr_err e = { 0 };
	struct hypr_root r;
	char *data;
	size_t len;
	int rc;

	if (n == 0)
		hypr_die(HYPR_EXIT_USAGE, "--cat needs at least one layer digest");
	for (int i = 0; i < n; i++)
		if (!hypr_digest_valid(digests[i]))
			hypr_die(HYPR_EXIT_USAGE, "'%s' is not a digest", digests[i]);
	if (hypr_root_open(&r, o->root, &e) < 0)
		hypr_die_err(&e);
	rc = hypr_rootfs_read_file(&r, (const char *const *)digests, (size_t)n, o->cat,
	    64u << 20, &data, &len, &e);
	if (rc < 0)
		hypr_die_err(&e);
	if (rc == 1)
		hypr_die(HYPR_EXIT_INPUT, "%s: no such file in the layers", o->cat);
	fflush(stdout);
	if (hypr_write_all(STDOUT_FILENO, data, len) < 0)
		hypr_die_errno("writing standard output");
	free(data);
	return hypr_close_stdout();
}

static const char *
host_arch(void)
{
	static struct utsname u;

	if (uname(&u) < 0)
		return "amd64";
	if (strcmp(u.machine, "x86_64") == 0)
		return "amd64";
	if (strcmp(u.machine, "aarch64") == 0)
		return "arm64";
	return u.machine;
}

/* {"digest","diff_id","size","media_type"} from a step's or base's layer. */
static json_t *
layer_obj(json_t *l, const char *where, struct hypr_err *e)
{
	const char *d = hypr_json_str(l, "digest"), *di = hypr_json_str(l, "diff_id");
	const char *mt = hypr_json_str(l, "media_type");

	if (!d || !hypr_digest_valid(d) || (di && !hypr_digest_valid(di))) {
		hypr_err_set(e, HYPR_EXIT_INPUT, "%s: layer without a valid digest", where);
		return NULL;
	}
	return json_pack("{s:s, s:s, s:I, s:s}", "digest", d, "diff_id", di ? di : d,
	    "size", hypr_json_int(l, "size", 0), "media_type",
	    mt ? mt : "application/vnd.oci.image.layer.v1.tar");
}

static int
write_cache_entry(const struct hypr_root *r, json_t *step, const char *created,
    const char *where, struct hypr_err *e)
{
	const char *key = hypr_json_str(step, "key");
	json_t *layer = json_object_get(step, "layer"), *lo = NULL;
	int rc;

	if (!key || !hypr_digest_valid(key))
		return hypr_err_set(e, HYPR_EXIT_INPUT, "%s: step without a valid key", where);
	if (json_is_object(layer) && (lo = layer_obj(layer, where, e)) == NULL)
		return -1;
	rc = hypr_cache_put(r, key, hypr_json_str(step, "op"), hypr_json_str(step, "created_by"),
	    lo, created, e);
	json_decref(lo);
	return rc;
}

static json_t *
or_null(json_t *v)
{
	return v ? json_incref(v) : json_null();
}

static void
split_platform(const char *p, const char **os, const char **arch, char *buf, size_t n)
{
	char *s;

	if (!p || !*p)
		return;
	snprintf(buf, n, "%s", p);
	if ((s = strchr(buf, '/')) == NULL)
		return;
	*s++ = '\0';
	*os = buf;
	*arch = s;
	if ((s = strchr(s, '/')) != NULL)
		*s = '\0';
}

int
main(int argc, char *argv[])
{
	static const char *const known[] = { NULL };
	struct opts o = { 0 };
	struct hypr_err e = { 0 };
	struct hypr_root r;
	struct hypr_stream_in in;
	struct hypr_stream_out out;
	json_t *rec, *stages, *final = NULL, *fsteps;
	json_t *layers, *history, *img, *cfg = NULL, *l;
	const char *os = "linux", *arch = host_arch();
	char created[40], chain[HYPR_DIGEST_LEN + 1], pbuf[128], where[64];
	int64_t epoch;
	long final_idx = -1;
	size_t i;
	int rv;

	hypr_prog = "hypr-layer";
	hypr_tool_events();	/* HYPR_EVENTS_FD: warnings and errors as records */
	hypr_remove_tmp_on_signals();
	parse_args(argc, argv, &o);
	if (o.flatten)
		return flatten_main(argc - optind, argv + optind);
	if (o.cat)
		return cat_main(&o, argc - optind, argv + optind);
	if (optind != argc)
		usage(stderr, HYPR_EXIT_USAGE);
	hypr_refuse_tty_stdin("a steps stream");
	stages = json_object();
	fsteps = json_array();
	if ((epoch = hypr_image_epoch(&e)) < -1)
		hypr_die_err(&e);
	hypr_image_time(epoch >= 0 ? epoch : (int64_t)time(NULL), created, sizeof(created));
	if (hypr_root_open(&r, o.root, &e) < 0)
		hypr_die_err(&e);
	if (hypr_stream_open(&in, stdin, "steps", "steps", 2, known, &e) < 0)
		hypr_die_err(&e);
	split_platform(hypr_json_str(in.header, "platform"), &os, &arch, pbuf, sizeof(pbuf));
	while ((rv = hypr_stream_next(&in, &rec, &e)) == 1) {
		const char *type = hypr_json_str(rec, "type");

		snprintf(where, sizeof(where), "steps:%ld", in.line);
		if (type && strcmp(type, "stage") == 0) {
			char k[32];

			snprintf(k, sizeof(k), "%lld",
			    (long long)hypr_json_int(rec, "index", -1));
			json_object_set(stages, k, rec);
			if (json_is_true(json_object_get(rec, "final"))) {
				json_decref(final);
				final = json_incref(rec);
				final_idx = (long)hypr_json_int(rec, "index", -1);
				json_array_clear(fsteps);
			}
		} else if (type && strcmp(type, "step") == 0) {
			json_t *layer = json_object_get(rec, "layer");
			const char *d = hypr_json_str(layer, "digest");

			/* hypr_die() while rec is alive: the messages point into it */
			if (json_is_object(layer) && (!d || !hypr_digest_valid(d)))
				hypr_die(HYPR_EXIT_INPUT, "%s: step layer without a valid digest", where);
			if (d && !hypr_blob_has(&r, d))
				hypr_die(HYPR_EXIT_INPUT, "%s: layer %s of step %lld is not in the store",
				    where, d, (long long)hypr_json_int(rec, "n", 0));
			if (!json_is_true(json_object_get(rec, "cached")) &&
			    write_cache_entry(&r, rec, created, where, &e) < 0)
				hypr_die_err(&e);
			if (final && hypr_json_int(rec, "stage", -2) == final_idx)
				json_array_append(fsteps, rec);
		}
		json_decref(rec);
	}
	if (rv < 0)
		hypr_die_err(&e);
	if (final == NULL)
		hypr_die(HYPR_EXIT_INPUT, "steps: no final stage in the stream");
	split_platform(hypr_json_str(final, "platform"), &os, &arch, pbuf, sizeof(pbuf));

	layers = json_array();
	history = json_array();
	json_array_foreach(json_object_get(final, "base_layers"), i, l) {
		json_t *lo = layer_obj(l, "base_layers", &e);

		if (lo == NULL)
			hypr_die_err(&e);
		if (!hypr_blob_has(&r, hypr_json_str(lo, "digest")))
			hypr_die(HYPR_EXIT_INPUT, "base layer %s is not in the store",
			    hypr_json_str(lo, "digest"));
		json_array_append_new(layers, lo);
	}
	cfg = json_object_get(final, "config");
	json_array_foreach(fsteps, i, l) {
		json_t *layer = json_object_get(l, "layer"), *h;
		int empty = !json_is_object(layer);

		if (!empty) {
			json_t *lo = layer_obj(layer, "step", &e);

			if (lo == NULL)
				hypr_die_err(&e);
			json_array_append_new(layers, lo);
		}
		if (json_is_object(json_object_get(l, "config")))
			cfg = json_object_get(l, "config");
		h = json_pack("{s:s, s:s}", "created", created, "created_by",
		    hypr_json_str(l, "created_by") ? hypr_json_str(l, "created_by") : "");
		if (empty)
			json_object_set_new(h, "empty_layer", json_true());
		json_array_append_new(history, h);
	}
	if (hypr_image_chain_id(layers, chain, &e) < 0)
		hypr_die_err(&e);
	img = json_pack("{s:s, s:o, s:s, s:s, s:s, s:o, s:o, s:o, s:s, s:o, s:o}",
	    "type", "image",
	    "stage", or_null(json_object_get(final, "name")),
	    "architecture", arch, "os", os, "created", created,
	    "base", or_null(json_object_get(final, "base")),
	    "build_args", json_is_object(json_object_get(in.header, "build_args")) ?
	    json_incref(json_object_get(in.header, "build_args")) : json_object(),
	    "layers", layers, "chain", chain,
	    "config", json_is_object(cfg) ? json_incref(cfg) : json_object(),
	    "history", history);
	if (img == NULL)
		hypr_die(HYPR_EXIT_SYSTEM, "building the image record");
	/* one sync for every cache entry of the build, not one each */
	if (hypr_cache_sync(&r, &e) < 0)
		hypr_die_err(&e);
	if (hypr_stream_begin(&out, stdout, "image", 1, NULL, &e) < 0 ||
	    hypr_stream_put(&out, img, &e) < 0 || hypr_stream_end(&out, &e) < 0)
		hypr_die_err(&e);
	json_decref(img);
	json_decref(final);
	json_decref(fsteps);
	json_decref(stages);
	hypr_stream_close(&in);
	return hypr_close_stdout();
}
