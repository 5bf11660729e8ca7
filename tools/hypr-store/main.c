/* hypr-store - store an image stream as images/<id>.{squashfs,json} and tag
 * it; and the image commands (images, rmi, inspect, tag, prune, df).
 * See hypr-store(1), hypr-manifest(5). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "fsutil.h"
#include "imagestream.h"
#include "oci.h"
#include "ref.h"
#include "stream.h"
#include "tool.h"

const char *opt_root;

static void
usage(FILE *f, int code)
{
	fprintf(f,
	    "usage: hypr-store [--root DIR] [-t NAME[:TAG]]... [-q] < image\n"
	    "       hypr-store [--root DIR] COMMAND [OPTIONS] [ARGS]\n"
	    "Store a built image (squashfs + manifest) and tag it; print its ID.\n"
	    "  -t, --tag NAME[:TAG]  tag the image (repeatable)\n"
	    "      --label K=V       add a label to the image's config (repeatable)\n"
	    "      --iidfile FILE    also write the image ID to FILE\n"
	    "  -q, --quiet           print nothing\n"
	    "  -r, --root DIR        the hypr store (default $HYPR_ROOT)\n"
	    "Commands:\n"
	    "  images [-a] [-q] [--digests] [--no-trunc] [--format F] [--filter K=V] [REPO[:TAG]]\n"
	    "  rmi [-f] IMAGE...\n"
	    "  inspect [-f FORMAT] IMAGE...\n"
	    "  tag SOURCE TARGET\n"
	    "  history [-q] [--no-trunc] IMAGE\n"
	    "  image-prune [-a] [-f]\n"
	    "  system-df [-v]\n"
	    "  system-prune [-a] [-f]\n");
	exit(code);
}

int
cmd_store(int argc, char *argv[])
{
	static const struct option lo[] = {
		{ "tag", required_argument, NULL, 't' },
		{ "root", required_argument, NULL, 'r' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "iidfile", required_argument, NULL, 'I' },
		{ "label", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const known[] = { NULL };
	struct hypr_err e = { 0 };
	struct hypr_stream_in in;
	struct hypr_store s;
	char **tags = NULL;
	const char *iidfile = NULL;
	size_t nt = 0;
	struct hypr_image_rec img = { 0 };
	json_t *rec, *m, *cfg = NULL, *labels = json_object();
	int c, rv, quiet = 0, found = 0;
	char id[HYPR_DIGEST_LEN + 1];

	if ((tags = calloc((size_t)argc + 1, sizeof(char *))) == NULL)
		hypr_die_errno("hypr-store");
	optind = 1;
	while ((c = getopt_long(argc, argv, "t:r:qh", lo, NULL)) != -1) {
		switch (c) {
		case 't': {
			char canon[600];

			if (hypr_store_canon_tag(optarg, canon, sizeof(canon), &e) < 0)
				hypr_die(HYPR_EXIT_USAGE, "%s", e.msg);
			tags[nt++] = strdup(canon);
			break;
		}
		case 'r': opt_root = optarg; break;
		case 'q': quiet = 1; break;
		case 'I': iidfile = optarg; break;
		case 'l': {
			/* docker build --label: K=V, or a bare K for an empty value */
			const char *eq = strchr(optarg, '=');
			size_t kl = eq ? (size_t)(eq - optarg) : strlen(optarg);

			if (kl == 0)
				hypr_die(HYPR_EXIT_USAGE, "--label '%s': empty key", optarg);
			json_object_setn_new(labels, optarg, kl,
			    json_string(eq ? eq + 1 : ""));
			break;
		}
		case 'h': usage(stdout, 0); break;
		default: usage(stderr, HYPR_EXIT_USAGE);
		}
	}
	if (optind != argc)
		usage(stderr, HYPR_EXIT_USAGE);
	hypr_refuse_tty_stdin("an image stream");
	if (hypr_stream_open(&in, stdin, "image", "image", HYPR_IMAGE_VERSION, known, &e) < 0)
		hypr_die_err(&e);
	while ((rv = hypr_stream_next(&in, &rec, &e)) == 1) {
		if (hypr_image_rec_is(rec)) {
			hypr_image_rec_free(&img);
			if (hypr_image_rec_decode(rec, in.name, in.line, &img, &e) < 0)
				hypr_die_err(&e);
			found = 1;
		}
		json_decref(rec);
	}
	if (rv < 0)
		hypr_die_err(&e);
	hypr_stream_close(&in);
	if (!found)
		hypr_die(HYPR_EXIT_INPUT, "image: no image record in the stream");
	if (json_object_size(labels) > 0) {
		/* Into the config, so the labels are part of the image ID. */
		json_t *l;

		cfg = img.config ? json_deep_copy(img.config) : json_object();
		if (!json_is_object(l = json_object_get(cfg, "Labels")))
			json_object_set_new(cfg, "Labels", l = json_object());
		json_object_update(l, labels);
		img.config = cfg;
	}
	json_decref(labels);
	if ((m = hypr_store_manifest(&img, &e)) == NULL)
		hypr_die_err(&e);
	hypr_image_rec_free(&img);
	json_decref(cfg);
	snprintf(id, sizeof(id), "%s", hypr_json_str(m, "id"));
	if (hypr_store_open_put(&s, opt_root, id, &e) < 0 ||
	    hypr_store_put(&s, m, (const char *const *)tags, nt, &e) < 0)
		hypr_die_err(&e);
	hypr_store_close(&s);
	json_decref(m);
	for (size_t i = 0; i < nt; i++)
		free(tags[i]);
	free(tags);
	if (iidfile && hypr_write_atomic(iidfile, id, strlen(id), 0644, &e) < 0)
		hypr_die_err(&e);
	if (!quiet)
		printf("%s\n", id);
	return hypr_close_stdout();
}

int
cmd_tag(int argc, char *argv[])
{
	struct hypr_err e = { 0 };
	struct hypr_store s;
	struct hypr_image *im;
	char canon[600];

	if (argc != 3)
		hypr_die(HYPR_EXIT_USAGE, "usage: hypr-store tag SOURCE TARGET");
	if (hypr_store_canon_tag(argv[2], canon, sizeof(canon), &e) < 0)
		hypr_die(HYPR_EXIT_USAGE, "%s", e.msg);
	if (hypr_store_open_bases(&s, opt_root, 1, &e) < 0 ||
	    hypr_store_find(&s, argv[1], &im, NULL, 0, &e) < 0)
		hypr_die_err(&e);
	if (im == NULL)
		hypr_die(HYPR_EXIT_INPUT, "No such image: %s", argv[1]);
	if (im->base) {
		/* a base stays a base: another refs/ record of the same digest,
		 * so FROM target uses it as FROM source does */
		struct hypr_ref r;
		json_t *v = NULL;
		const char *k;

		if (hypr_ref_parse(canon, &r, &e) < 0)
			hypr_die(HYPR_EXIT_USAGE, "%s", e.msg);
		json_object_foreach(im->refs, k, v)
			break;
		if (v == NULL || hypr_tagref_set(&s.root, &r, json_string_value(v), NULL, &e) < 0)
			hypr_die_err(&e);
	} else if (hypr_store_tag(&s, canon, im->id, &e) < 0)
		hypr_die_err(&e);
	hypr_store_close(&s);
	return hypr_close_stdout();
}

int
main(int argc, char *argv[])
{
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} cmds[] = {
		{ "images", cmd_images }, { "ls", cmd_images },
		{ "rmi", cmd_rmi }, { "rm", cmd_rmi },
		{ "inspect", cmd_inspect }, { "tag", cmd_tag },
		{ "history", cmd_history },
		{ "image-prune", cmd_image_prune },
		{ "system-df", cmd_system_df },
		{ "system-prune", cmd_system_prune },
		{ "builder-prune", cmd_builder_prune },
	};
	int i = 1;

	hypr_prog = "hypr-store";
	hypr_tool_events();	/* HYPR_EVENTS_FD: warnings and errors as records */
	hypr_remove_tmp_on_signals();
	/* --root may come before the command */
	while (i < argc && (strcmp(argv[i], "--root") == 0 || strcmp(argv[i], "-r") == 0 ||
	    strncmp(argv[i], "--root=", 7) == 0)) {
		if (argv[i][6] == '=') {
			opt_root = argv[i] + 7;
			i++;
		} else if (i + 1 < argc) {
			opt_root = argv[i + 1];
			i += 2;
		} else {
			usage(stderr, HYPR_EXIT_USAGE);
		}
	}
	if (i < argc && (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0))
		usage(stdout, 0);
	for (size_t k = 0; i < argc && k < sizeof(cmds) / sizeof(cmds[0]); k++)
		if (strcmp(argv[i], cmds[k].name) == 0) {
			argv[i] = argv[0];
			return cmds[k].fn(argc - i, argv + i);
		}
	if (i < argc && argv[i][0] != '-')
		hypr_die(HYPR_EXIT_USAGE, "unknown command '%s' (see --help)", argv[i]);
	return cmd_store(argc, argv);
}
