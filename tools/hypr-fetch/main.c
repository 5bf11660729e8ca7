/* hypr-fetch - resolve a plan's base images to digests, config and layers in
 * the content store, pulling from OCI registries what the store lacks. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "fetch.h"
#include "net.h"
#include "oci.h"
#include "ref.h"
#include "store.h"
#include "stream.h"
#include "tool.h"

static void
usage(FILE *out, int code)
{
	fprintf(out,
	    "usage: hypr-fetch [--pull=missing|always|never] [--platform P] < plan > resolved\n"
	    "       hypr-fetch pull [--platform P] [--pull=POLICY] [--json] REF\n"
	    "       hypr-fetch load [--name REF] PATH   (OCI layout dir or docker-save tar)\n"
	    "       hypr-fetch login [-u USER] [--password-stdin] [REGISTRY]\n"
	    "       hypr-fetch logout [REGISTRY]\n"
	    "       hypr-fetch push [-a|--all-tags] [--no-artifact] NAME[:TAG]\n"
	    "       hypr-fetch cache-export --to SPEC < steps   (hypr-cache(5))\n"
	    "       hypr-fetch save [-o FILE] [--format docker|oci] IMAGE...\n"
	    "plan mode: --cache-from SPEC (repeatable) imports a build cache index\n"
	    "options: --insecure-registry HOST (plain HTTP; repeatable), --jobs N,\n"
	    "         --root DIR (default $HYPR_ROOT), -q/--quiet\n");
	exit(code);
}

enum { OPT_PULL = 256, OPT_PLATFORM, OPT_INSECURE, OPT_JOBS, OPT_ROOT, OPT_JSON,
	OPT_NAME, OPT_PWSTDIN, OPT_CACHE_FROM, OPT_TO, OPT_FORMAT, OPT_NO_ARTIFACT };

struct opts {
	const char *platform, *root, *name, *user, *password, *to, *output, *format;
	int json, pwstdin, all_tags, no_artifact;
};

static int
parse_args(int argc, char *argv[], struct fetch *f, struct opts *o)
{
	static const struct option lo[] = {
		{ "pull", required_argument, NULL, OPT_PULL },
		{ "platform", required_argument, NULL, OPT_PLATFORM },
		{ "insecure-registry", required_argument, NULL, OPT_INSECURE },
		{ "jobs", required_argument, NULL, OPT_JOBS },
		{ "root", required_argument, NULL, OPT_ROOT },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "name", required_argument, NULL, OPT_NAME },
		{ "username", required_argument, NULL, 'u' },
		{ "password", required_argument, NULL, 'p' },
		{ "password-stdin", no_argument, NULL, OPT_PWSTDIN },
		{ "quiet", no_argument, NULL, 'q' },
		{ "all-tags", no_argument, NULL, 'a' },
		{ "no-artifact", no_argument, NULL, OPT_NO_ARTIFACT },
		{ "cache-from", required_argument, NULL, OPT_CACHE_FROM },
		{ "to", required_argument, NULL, OPT_TO },
		{ "output", required_argument, NULL, 'o' },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "ahqu:p:o:", lo, NULL)) != -1) {
		switch (c) {
		case OPT_PULL:
			if (!strcmp(optarg, "missing"))
				f->pull = PULL_MISSING;
			else if (!strcmp(optarg, "always") || !strcmp(optarg, "true"))
				f->pull = PULL_ALWAYS;
			else if (!strcmp(optarg, "false"))	/* docker: no forced pull */
				f->pull = PULL_MISSING;
			else if (!strcmp(optarg, "never"))
				f->pull = PULL_NEVER;
			else
				hypr_die(HYPR_EXIT_USAGE, "--pull: expected missing, always or never");
			break;
		case OPT_PLATFORM:
			o->platform = optarg;
			break;
		case OPT_INSECURE: {
			size_t n = strlen(f->insecure);

			if (n + strlen(optarg) + 2 > sizeof(f->insecure))
				hypr_die(HYPR_EXIT_USAGE, "too many --insecure-registry");
			snprintf(f->insecure + n, sizeof(f->insecure) - n, "%s%s",
			    n ? "," : "", optarg);
			break;
		}
		case OPT_JOBS:
			f->jobs = atoi(optarg);
			if (f->jobs < 1 || f->jobs > 16)
				hypr_die(HYPR_EXIT_USAGE, "--jobs: 1 to 16");
			break;
		case OPT_ROOT:
			o->root = optarg;
			break;
		case OPT_JSON:
			o->json = 1;
			break;
		case OPT_NAME:
			o->name = optarg;
			break;
		case 'u':
			o->user = optarg;
			break;
		case 'p':
			o->password = optarg;
			break;
		case OPT_PWSTDIN:
			o->pwstdin = 1;
			break;
		case 'q':
			f->quiet = 1;
			break;
		case 'a':
			o->all_tags = 1;
			break;
		case OPT_NO_ARTIFACT:
			o->no_artifact = 1;
			break;
		case OPT_CACHE_FROM: {
			char **v = realloc(f->cache_from, (f->ncache_from + 1) * sizeof(*v));

			if (v == NULL)
				hypr_die_errno("--cache-from");
			f->cache_from = v;
			f->cache_from[f->ncache_from++] = optarg;
			break;
		}
		case OPT_TO:
			o->to = optarg;
			break;
		case 'o':
			o->output = optarg;
			break;
		case OPT_FORMAT:
			o->format = optarg;
			break;
		case 'h':
			usage(stdout, 0);
			break;
		default:
			usage(stderr, HYPR_EXIT_USAGE);
		}
	}
	return optind;
}

int
main(int argc, char *argv[])
{
	struct fetch f;
	struct hypr_net net;
	struct opts o = { 0 };
	struct hypr_err e = { 0 };
	const char *mode = NULL;
	int i;

	hypr_prog = "hypr-fetch";
	hypr_tool_events();	/* HYPR_EVENTS_FD: warnings and errors as records */
	hypr_remove_tmp_on_signals();
	memset(&f, 0, sizeof(f));
	f.jobs = 3;
	if (argc > 1 && (!strcmp(argv[1], "pull") || !strcmp(argv[1], "load") ||
	    !strcmp(argv[1], "login") || !strcmp(argv[1], "logout") ||
	    !strcmp(argv[1], "push") || !strcmp(argv[1], "cache-export") ||
	    !strcmp(argv[1], "save"))) {
		mode = argv[1];
		argv++;
		argc--;
	}
	/* docker pull asks the registry for a tag every time: a stored tag
	 * may be stale, or no longer readable with the credentials at hand */
	if (mode && !strcmp(mode, "pull"))
		f.pull = PULL_ALWAYS;
	i = parse_args(argc, argv, &f, &o);
	/* the limits are checked up front: a bad one is a usage error */
	if (hypr_env_uint("HYPR_PULL_MAX_LAYER", (uint64_t)64 << 30, 1, 0, &f.max_layer,
	    &e) < 0 || hypr_net_init(&net, &e) < 0 ||
	    hypr_root_open(&f.root, o.root, &e) < 0)
		hypr_die_err(&e);
	if (mode == NULL) {
		if (i != argc)
			usage(stderr, HYPR_EXIT_USAGE);
		hypr_refuse_tty_stdin("a plan");
		f.quiet = 1;
		if (fetch_stream(&f, o.platform, &e) < 0)
			hypr_die_err(&e);
	} else if (!strcmp(mode, "pull")) {
		json_t *img;

		struct hypr_ref r;
		char was[HYPR_DIGEST_LEN + 1] = "", name[1024];
		char id[HYPR_DIGEST_LEN + 1];
		int k;

		if (i + 1 != argc)
			usage(stderr, HYPR_EXIT_USAGE);
		/* what the tag named before, for docker's Status line */
		if (hypr_ref_parse(argv[i], &r, &e) < 0)
			hypr_die_err(&e);
		if (r.digest[0] && hypr_blob_has(&f.root, r.digest))
			snprintf(was, sizeof(was), "%s", r.digest);
		else if (!r.digest[0] && hypr_tagref_get(&f.root, &r, was, &e) <= 0)
			was[0] = '\0';
		if (fetch_resolve(&f, argv[i], o.platform, &img, &e) < 0)
			hypr_die_err(&e);
		/* an image hypr pushed comes with its squashfs: stored as is.
		 * Asked only when the registry was (a pull the store answers
		 * alone makes no request; --pull=always asks) */
		k = f.networked ? fetch_artifact(&f, argv[i], img, id, sizeof(id), &e) : 0;
		if (k < 0)
			hypr_die_err(&e);
		if (k == 1 && !f.quiet)
			hypr_info("stored image %s (the squashfs hypr pushed)", id);
		/* when the registry was asked (a store-only resolve stays quiet) */
		if (!f.quiet && f.networked &&
		    hypr_ref_string(&r, name, sizeof(name)) == 0) {
			char fam[1024];

			hypr_store_familiar(name, fam, sizeof(fam));
			hypr_info("Digest: %s", f.top[0] ? f.top : hypr_json_str(img, "digest"));
			hypr_info("Status: %s for %s", was[0] && (!f.top[0] ||
			    strcmp(was, f.top) == 0) ? "Image is up to date" :
			    "Downloaded newer image", fam);
		}
		if (o.json) {
			json_dumpf(img, stdout, JSON_COMPACT);
			putchar('\n');
		} else {
			printf("%s\n", f.top[0] ? f.top : hypr_json_str(img, "digest"));
		}
		json_decref(img);
	} else if (!strcmp(mode, "load")) {
		if (i + 1 != argc)
			usage(stderr, HYPR_EXIT_USAGE);
		if (fetch_load(&f, argv[i], o.name, &e) < 0)
			hypr_die_err(&e);
	} else if (!strcmp(mode, "push")) {
		if (i + 1 != argc)
			usage(stderr, HYPR_EXIT_USAGE);
		if (fetch_push(&f, o.root, argv[i], o.all_tags, !o.no_artifact, &e) < 0)
			hypr_die_err(&e);
	} else if (!strcmp(mode, "save")) {
		if (i >= argc)
			usage(stderr, HYPR_EXIT_USAGE);
		if (fetch_save(&f, o.root, o.output, o.format, argv + i, (size_t)(argc - i),
		    &e) < 0)
			hypr_die_err(&e);
	} else if (!strcmp(mode, "cache-export")) {
		if (i != argc || o.to == NULL)
			usage(stderr, HYPR_EXIT_USAGE);
		if (fetch_cache_export(&f, o.to, &e) < 0)
			hypr_die_err(&e);
	} else if (!strcmp(mode, "login")) {
		if (i + 1 < argc)
			usage(stderr, HYPR_EXIT_USAGE);
		/* docker's default registry */
		if (fetch_login(&f, i < argc ? argv[i] : "docker.io", o.user, o.password,
		    o.pwstdin, &e) < 0)
			hypr_die_err(&e);
	} else {
		const char *server = i < argc ? argv[i] : "docker.io";
		int r;

		if (i + 1 < argc)
			usage(stderr, HYPR_EXIT_USAGE);
		if ((r = hypr_auth_erase(!strcmp(server, "index.docker.io") ? "docker.io" :
		    server, &e)) < 0)
			hypr_die_err(&e);
		if (r == 0)
			hypr_die(HYPR_EXIT_INPUT, "logout: not logged in to %s", server);
		if (!f.quiet)
			printf("Removing login credentials for %s\n", server);
	}
	json_decref(f.memo);
	free(f.cache_from);
	return hypr_close_stdout();
}
