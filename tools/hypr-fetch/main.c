/* hypr-fetch - resolve a plan's base images to digests, config and layers in
 * the content store, pulling from OCI registries what the store lacks. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <unistd.h>

#include "auth.h"
#include "fetch.h"
#include "map.h"
#include "net.h"
#include "plan.h"
#include "registry.h"
#include "stream.h"
#include "tool.h"

static void
usage(FILE *out, int code)
{
	fprintf(out,
	    "usage: hypr-fetch [--pull=missing|always|never] [--platform P] < plan > resolved\n"
	    "       hypr-fetch pull [--platform P] [--pull=POLICY] [--json] REF\n"
	    "       hypr-fetch load [--name REF] PATH   (OCI layout dir or docker-save tar)\n"
	    "       hypr-fetch login [-u USER] [--password-stdin] REGISTRY\n"
	    "       hypr-fetch logout REGISTRY\n"
	    "       hypr-fetch push [-a|--all-tags] NAME[:TAG]\n"
	    "options: --insecure-registry HOST (plain HTTP; repeatable), --jobs N,\n"
	    "         --root DIR (default $HYPR_ROOT), -q/--quiet\n");
	exit(code);
}

enum { OPT_PULL = 256, OPT_PLATFORM, OPT_INSECURE, OPT_JOBS, OPT_ROOT, OPT_JSON,
	OPT_NAME, OPT_PWSTDIN };

struct opts {
	const char *platform, *root, *name, *user, *password;
	int json, pwstdin, all_tags;
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
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "ahqu:p:", lo, NULL)) != -1) {
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
		case 'h':
			usage(stdout, 0);
			break;
		default:
			usage(stderr, HYPR_EXIT_USAGE);
		}
	}
	return optind;
}

/* The plan's header line is read ahead to learn its "needs": hypr-fetch
 * passes records through untouched, so any feature is fine here and the
 * stages after it check their own. */
struct ahead {
	char *line;
	size_t len, off;
	FILE *rest;
};

static ssize_t
ahead_read(void *cookie, char *buf, size_t n)
{
	struct ahead *a = cookie;

	if (a->off < a->len) {
		size_t k = a->len - a->off < n ? a->len - a->off : n;

		memcpy(buf, a->line + a->off, k);
		a->off += k;
		return (ssize_t)k;
	}
	return (ssize_t)fread(buf, 1, n, a->rest);
}

static FILE *
open_plan(FILE *in, const char ***known)
{
	static struct ahead a;
	static const char *list[64];
	cookie_io_functions_t io = { .read = ahead_read };
	size_t cap = 0, i, k = 0;
	ssize_t n;
	json_t *h, *v;

	a.rest = in;
	if ((n = getline(&a.line, &cap, in)) > 0) {
		a.len = (size_t)n;
		h = json_loadb(a.line, a.len, 0, NULL);
		json_array_foreach(json_object_get(h, "needs"), i, v)
			if (json_is_string(v) && k + 1 < sizeof(list) / sizeof(list[0]))
				list[k++] = strdup(json_string_value(v));
		json_decref(h);
	}
	list[k] = NULL;
	*known = list;
	return fopencookie(&a, "r", io);
}

/* The stream mode: plan in, resolved out. */
/* RUN --mount from= values that name no stage are images: resolve each
 * once into the record's mount_from (hypr-resolved(5)). */
static int
mount_images(struct fetch *f, struct hypr_plan_instr *in, const char *platform,
    struct hypr_err *e)
{
	struct hypr_map added = { 0 };
	const char **specs;
	size_t n;

	if (hypr_plan_flag_all(in, "mount", &specs, &n, e) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const char *p;
		char from[1024];
		json_t *img;
		int r;

		for (p = specs[i]; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
			size_t l = strcspn(p, ",");

			if (l > 5 && !strncasecmp(p, "from=", 5) && l - 5 < sizeof(from)) {
				memcpy(from, p + 5, l - 5);
				from[l - 5] = '\0';
				break;
			}
		}
		/* a stage (the plan's own entry), a variable, or resolved already */
		if (!p || !*p || strchr(from, '$') || hypr_plan_mount_from(in, from) ||
		    hypr_map_get(&added, from))
			continue;
		if (fetch_resolve(f, from, platform, &img, e) < 0)
			goto fail;
		r = hypr_plan_instr_add_mount_image(in, from, img, e);
		json_decref(img);
		if (r < 0)
			goto fail;
		if (hypr_map_set(&added, from, (void *)1, NULL) < 0) {
			hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
			goto fail;
		}
	}
	free(specs);
	hypr_map_free(&added, NULL);
	return 0;
fail:
	free(specs);
	hypr_map_free(&added, NULL);
	return -1;
}

static int
resolve_stream(struct fetch *f, const char *platform, struct hypr_err *e)
{
	struct hypr_stream_in in;
	struct hypr_stream_out out;
	struct hypr_plan_header h;
	struct hypr_plan_rec rec;
	json_t *hdr = NULL, *img;
	const char **known;
	const char *dflt;
	struct hypr_map plats = { 0 };	/* stage index -> its platform */
	FILE *pf = open_plan(stdin, &known);
	int k, rc = -1;

	if (pf == NULL)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "reading the plan");
	if (hypr_stream_open(&in, pf, "plan", "plan", 1, known, e) < 0)
		return -1;
	if (hypr_plan_header(&in, &h, e) < 0) {
		hypr_stream_close(&in);
		return -1;
	}
	if ((hdr = hypr_plan_resolved_header(&in, platform)) == NULL) {
		hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
		goto fail;
	}
	dflt = platform ? platform : h.platform;
	if (hypr_stream_begin(&out, stdout, "resolved", 1, hdr, e) < 0)
		goto fail;
	while ((k = hypr_plan_next(&in, &rec, e)) == 1) {
		if (rec.kind == HYPR_PLAN_STAGE) {
			struct hypr_plan_stage *st = &rec.u.stage;
			const char *p = st->platform && *st->platform ? st->platform : dflt;
			char idx[32], *old = NULL, *copy = strdup(p ? p : "");

			snprintf(idx, sizeof(idx), "%d", st->index);
			if (copy == NULL || hypr_map_set(&plats, idx, copy, (void **)&old) < 0) {
				free(copy);
				hypr_plan_rec_free(&rec);
				hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
				goto fail;
			}
			free(old);
			if (strcmp(st->base, "scratch") != 0 && st->base_stage < 0) {
				if (fetch_resolve(f, st->base, p, &img, e) < 0) {
					hypr_err_prefix(e, "line %ld", st->line[0]);
					hypr_plan_rec_free(&rec);
					goto fail;
				}
				k = hypr_plan_stage_set_image(st, img, e);
				json_decref(img);
				if (k < 0) {
					hypr_plan_rec_free(&rec);
					goto fail;
				}
			}
		} else if (rec.kind == HYPR_PLAN_INSTR) {
			struct hypr_plan_instr *ins = &rec.u.instr;
			const char *from = hypr_plan_flag(ins, "from");
			const char *p;
			char idx[32];

			snprintf(idx, sizeof(idx), "%d", ins->stage);
			p = hypr_map_get(&plats, idx);
			if (!p || !*p)
				p = dflt;
			if (from && *from && ins->from_stage < 0) {
				if (fetch_resolve(f, from, p, &img, e) < 0) {
					hypr_err_prefix(e, "line %ld: --from", ins->line[0]);
					hypr_plan_rec_free(&rec);
					goto fail;
				}
				k = hypr_plan_instr_set_from_image(ins, img, e);
				json_decref(img);
				if (k < 0) {
					hypr_plan_rec_free(&rec);
					goto fail;
				}
			}
			if (mount_images(f, ins, p, e) < 0) {
				hypr_err_prefix(e, "line %ld: --mount from", ins->line[0]);
				hypr_plan_rec_free(&rec);
				goto fail;
			}
		}
		k = hypr_stream_put(&out, rec.json, e);
		hypr_plan_rec_free(&rec);
		if (k < 0)
			goto fail;
	}
	if (k < 0 || hypr_stream_end(&out, e) < 0)
		goto fail;
	rc = 0;
fail:
	hypr_map_free(&plats, free);
	json_decref(hdr);
	hypr_plan_header_free(&h);
	hypr_stream_close(&in);
	return rc;
}

static char *
read_password(void)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = getline(&line, &cap, stdin);

	if (n < 0) {
		free(line);
		return NULL;
	}
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	return line;
}

static int
login(struct fetch *f, const char *server, struct opts *o, struct hypr_err *e)
{
	struct hypr_ref r;
	struct hypr_registry g;
	char *pw, probe[600];
	int rc;

	if (o->password)
		hypr_warn("--password on the command line is visible to other users; "
		    "use --password-stdin");
	if (!o->user)
		hypr_die(HYPR_EXIT_USAGE, "login: -u USER is required");
	pw = o->password ? strdup(o->password) : o->pwstdin ? read_password() : NULL;
	if (!pw || !*pw) {
		hypr_secret_free(pw);
		hypr_die(HYPR_EXIT_USAGE, "login: give the password with --password-stdin");
	}
	/* Check the credentials against the registry before saving them. */
	snprintf(probe, sizeof(probe), "%s/hypr-login-probe", server);
	if (hypr_ref_parse(strchr(server, '.') || strchr(server, ':') ||
	    !strcmp(server, "localhost") ? probe : "docker.io/library/x", &r, e) < 0) {
		hypr_secret_free(pw);
		return hypr_err_prefix(e, "login");
	}
	if (hypr_registry_open(&g, &f->root, &r, f->insecure, e) < 0) {
		hypr_secret_free(pw);
		return -1;
	}
	hypr_secret_free(g.basic);
	hypr_secret_free(g.refresh);
	g.refresh = NULL;
	if (asprintf(&g.basic, "%s:%s", o->user, pw) < 0)
		g.basic = NULL;
	rc = hypr_registry_ping(&g, e);
	hypr_registry_close(&g);
	if (rc == 0)
		rc = hypr_auth_store(r.domain, o->user, pw, e);
	hypr_secret_free(pw);
	if (rc == 0 && !f->quiet)
		printf("Login Succeeded\n");
	return rc;
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
	    !strcmp(argv[1], "push"))) {
		mode = argv[1];
		argv++;
		argc--;
	}
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
		if (resolve_stream(&f, o.platform, &e) < 0)
			hypr_die_err(&e);
	} else if (!strcmp(mode, "pull")) {
		json_t *img;

		if (i + 1 != argc)
			usage(stderr, HYPR_EXIT_USAGE);
		if (fetch_resolve(&f, argv[i], o.platform, &img, &e) < 0)
			hypr_die_err(&e);
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
		if (fetch_push(&f, o.root, argv[i], o.all_tags, &e) < 0)
			hypr_die_err(&e);
	} else if (!strcmp(mode, "login")) {
		if (i + 1 != argc)
			usage(stderr, HYPR_EXIT_USAGE);
		if (login(&f, argv[i], &o, &e) < 0)
			hypr_die_err(&e);
	} else {
		int r;

		if (i + 1 != argc)
			usage(stderr, HYPR_EXIT_USAGE);
		if ((r = hypr_auth_erase(!strcmp(argv[i], "index.docker.io") ? "docker.io" :
		    argv[i], &e)) < 0)
			hypr_die_err(&e);
		if (r == 0)
			hypr_die(HYPR_EXIT_INPUT, "logout: not logged in to %s", argv[i]);
		if (!f.quiet)
			printf("Removing login credentials for %s\n", argv[i]);
	}
	json_decref(f.memo);
	return hypr_close_stdout();
}
