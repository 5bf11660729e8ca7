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
#include "imagestream.h"
#include "rootfs.h"
#include "steps.h"
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

/* A layer as the image record and the cache carry it: every field set. */
static void
layer_norm(struct hypr_layer *l)
{
	if (!l->diff_id[0])
		memcpy(l->diff_id, l->digest, sizeof(l->diff_id));
	if (!l->media_type[0])
		snprintf(l->media_type, sizeof(l->media_type), "%s", HYPR_MEDIA_LAYER_TAR);
}

static int
write_cache_entry(const struct hypr_root *r, const struct hypr_steps_step *step,
    const char *created, struct hypr_err *e)
{
	struct hypr_layer l = step->layer;

	layer_norm(&l);
	return hypr_cache_put(r, step->key, step->op, step->created_by,
	    step->has_layer ? &l : NULL, created, e);
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

/* The final stage's steps: what the image record is made of. */
struct final {
	struct hypr_steps_rec stage;
	struct hypr_steps_rec *steps;
	size_t n, cap;
};

static void
final_clear(struct final *f)
{
	for (size_t i = 0; i < f->n; i++)
		hypr_steps_rec_free(&f->steps[i]);
	f->n = 0;
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
	struct hypr_steps_header hdr;
	struct hypr_steps_rec rec;
	struct final fin = { 0 };
	struct hypr_layers layers = { 0 };
	struct hypr_image_rec img = { 0 };
	json_t *cfg = NULL, *imgj;
	const char *os = "linux", *arch = host_arch();
	char created[40], chain[HYPR_DIGEST_LEN + 1], pbuf[128];
	int64_t epoch;
	int rv, have_final = 0;

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
	if ((epoch = hypr_image_epoch(&e)) < -1)
		hypr_die_err(&e);
	hypr_image_time(epoch >= 0 ? epoch : (int64_t)time(NULL), created, sizeof(created));
	if (hypr_root_open(&r, o.root, &e) < 0)
		hypr_die_err(&e);
	if (hypr_stream_open(&in, stdin, "steps", "steps", HYPR_STEPS_VERSION, known, &e) < 0 ||
	    hypr_steps_header(&in, &hdr, &e) < 0)
		hypr_die_err(&e);
	split_platform(hdr.platform, &os, &arch, pbuf, sizeof(pbuf));
	while ((rv = hypr_steps_next(&in, &rec, &e)) == 1) {
		if (rec.kind == HYPR_STEPS_STAGE && rec.u.stage.final) {
			hypr_steps_rec_free(&fin.stage);
			final_clear(&fin);
			fin.stage = rec;
			have_final = 1;
			continue;
		}
		if (rec.kind == HYPR_STEPS_STEP) {
			const struct hypr_steps_step *s = &rec.u.step;

			/* hypr_die() while rec is alive: the messages point into it */
			/* a cached step of another stage may name a layer a
			 * --cache-from index has and this build never needed */
			if (s->has_layer && (!s->cached || (have_final &&
			    s->stage == fin.stage.u.stage.index)) &&
			    !hypr_blob_has(&r, s->layer.digest))
				hypr_die(HYPR_EXIT_INPUT, "steps:%ld: layer %s of step %d is not in the store",
				    in.line, s->layer.digest, s->n);
			if (!s->cached && write_cache_entry(&r, s, created, &e) < 0)
				hypr_die_err(&e);
			if (have_final && s->stage == fin.stage.u.stage.index) {
				if (fin.n == fin.cap) {
					size_t cap = fin.cap ? fin.cap * 2 : 16;
					struct hypr_steps_rec *v = realloc(fin.steps, cap * sizeof(*v));

					if (v == NULL)
						hypr_die_errno("hypr-layer");
					fin.steps = v;
					fin.cap = cap;
				}
				fin.steps[fin.n++] = rec;
				continue;
			}
		}
		hypr_steps_rec_free(&rec);
	}
	if (rv < 0)
		hypr_die_err(&e);
	if (!have_final)
		hypr_die(HYPR_EXIT_INPUT, "steps: no final stage in the stream");
	split_platform(fin.stage.u.stage.platform, &os, &arch, pbuf, sizeof(pbuf));

	for (size_t i = 0; i < fin.stage.u.stage.nbase_layers; i++) {
		struct hypr_layer l = fin.stage.u.stage.base_layers[i];

		layer_norm(&l);
		if (!hypr_blob_has(&r, l.digest))
			hypr_die(HYPR_EXIT_INPUT, "base layer %s is not in the store", l.digest);
		if (hypr_layers_add(&layers, &l, &e) < 0)
			hypr_die_err(&e);
	}
	cfg = fin.stage.u.stage.config;
	if ((img.history = calloc(fin.n + 1, sizeof(*img.history))) == NULL)
		hypr_die_errno("hypr-layer");
	for (size_t i = 0; i < fin.n; i++) {
		const struct hypr_steps_step *s = &fin.steps[i].u.step;
		struct hypr_image_history *h = &img.history[img.nhistory++];

		if (s->has_layer) {
			struct hypr_layer l = s->layer;

			layer_norm(&l);
			if (hypr_layers_add(&layers, &l, &e) < 0)
				hypr_die_err(&e);
		}
		if (s->config)
			cfg = s->config;
		h->created = created;
		h->created_by = s->created_by ? s->created_by : "";
		h->empty_layer = !s->has_layer;
	}
	if (hypr_image_chain_id(layers.v, layers.n, chain, &e) < 0)
		hypr_die_err(&e);
	img.stage = fin.stage.u.stage.name;
	img.architecture = arch;
	img.os = os;
	img.created = created;
	img.has_base = fin.stage.u.stage.has_base;
	img.base_ref = fin.stage.u.stage.base.ref;
	img.base_digest = fin.stage.u.stage.base.digest;
	img.build_args = hdr.build_args;
	img.layers = layers.v;
	img.nlayers = layers.n;
	img.chain = chain;
	img.config = cfg;
	if ((imgj = hypr_image_rec_json(&img)) == NULL)
		hypr_die(HYPR_EXIT_SYSTEM, "building the image record");
	if (hypr_stream_begin(&out, stdout, "image", HYPR_IMAGE_VERSION, NULL, &e) < 0 ||
	    hypr_stream_put(&out, imgj, &e) < 0 || hypr_stream_end(&out, &e) < 0)
		hypr_die_err(&e);
	/* the cache entries on disk (hypr_cache_sync); after the image
	 * stream, while hypr-squash works: nothing downstream needs them
	 * (a lost entry is a cache miss) */
	hypr_close_stdout();
	if (hypr_cache_sync(&r, &e) < 0)
		hypr_die_err(&e);
	json_decref(imgj);
	free(img.history);
	hypr_layers_free(&layers);
	final_clear(&fin);
	free(fin.steps);
	hypr_steps_rec_free(&fin.stage);
	hypr_steps_header_free(&hdr);
	hypr_stream_close(&in);
	return 0;
}
