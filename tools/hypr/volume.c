/* volume.c - hypr volume create|ls|inspect|rm|prune: the named volumes of
 * hypr run -v NAME:PATH (lib/volume.h), as docker volume shows them. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "ctr.h"
#include "hypr.h"
#include "image.h"
#include "tool.h"
#include "volume.h"

static void
open_root(struct hypr_root *r)
{
	struct hypr_err e = { 0 };

	if (hypr_root_open(r, NULL, &e) < 0)
		hypr_die_err(&e);
}

static void
usage(FILE *f, int code)
{
	fputs("usage: hypr volume COMMAND\n"
	    "\n"
	    "  create [-l K=V] [NAME]   make a volume (a random name without NAME)\n"
	    "  ls [-q]                  list volumes\n"
	    "  inspect NAME...          their details, as JSON\n"
	    "  rm [-f] NAME...          remove volumes no container names\n"
	    "  prune [-a] [-f]          remove unused anonymous volumes (-a: every unused one)\n"
	    "\n"
	    "Use one with hypr run -v NAME:PATH. See hypr-volume(1).\n", f);
	exit(code);
}

/* docker's time format for CreatedAt: 2026-12-04T21:40:00Z */
static void
rfc3339(int64_t ns, char *buf, size_t n)
{
	time_t t = (time_t)(ns / 1000000000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int
create(const struct hypr_root *r, int argc, char **argv)
{
	struct hypr_err e = { 0 };
	json_t *labels = json_object();
	char name[256], data[4400];
	int ch, fd;

	optind = 1;
	while ((ch = getopt(argc, argv, "l:")) != -1) {
		if (ch != 'l')
			hypr_die(HYPR_EXIT_USAGE, "usage: hypr volume create [-l K=V] [NAME]");
		const char *eq = strchr(optarg, '=');
		json_object_setn_new(labels, optarg, eq ? (size_t)(eq - optarg) : strlen(optarg),
		    json_string(eq ? eq + 1 : ""));
	}
	if (argc - optind > 1)
		hypr_die(HYPR_EXIT_USAGE, "usage: hypr volume create [-l K=V] [NAME]");
	if (optind < argc) {
		snprintf(name, sizeof name, "%s", argv[optind]);
	} else {
		unsigned char rnd[32];
		if (getentropy(rnd, sizeof rnd) < 0)
			hypr_die_errno("getentropy");
		for (int i = 0; i < 32; i++)
			snprintf(name + 2 * i, 3, "%02x", rnd[i]);
	}
	if (!hypr_vol_name_ok(name))
		hypr_die(HYPR_EXIT_USAGE, "volume create: %s: invalid volume name: only "
		    "[a-zA-Z0-9][a-zA-Z0-9_.-] are allowed, two characters at least", name);
	if (hypr_vol_lock(r, &fd, &e) < 0 ||
	    hypr_vol_get(r, name, 1, labels, 0, data, sizeof data, NULL, &e) < 0)
		hypr_die_err(&e);
	close(fd);
	json_decref(labels);
	printf("%s\n", name);
	return hypr_close_stdout();
}

static int
ls(const struct hypr_root *r, int argc, char **argv)
{
	struct hypr_err e = { 0 };
	struct hypr_table t = { 0 };
	json_t *names, *v;
	size_t i;
	int ch, quiet = 0;

	optind = 1;
	while ((ch = getopt(argc, argv, "q")) != -1) {
		if (ch != 'q')
			hypr_die(HYPR_EXIT_USAGE, "usage: hypr volume ls [-q]");
		quiet = 1;
	}
	if (hypr_vol_list(r, &names, &e) < 0)
		hypr_die_err(&e);
	if (!quiet)
		hypr_table_add(&t, "DRIVER\tVOLUME NAME");
	json_array_foreach(names, i, v) {
		char line[300];
		if (quiet) {
			printf("%s\n", json_string_value(v));
			continue;
		}
		snprintf(line, sizeof line, "local\t%s", json_string_value(v));
		hypr_table_add(&t, line);
	}
	if (!quiet)
		hypr_table_print(&t, stdout);
	json_decref(names);
	return hypr_close_stdout();
}

static int
inspect(const struct hypr_root *r, int argc, char **argv)
{
	json_t *out = json_array();
	int rc = 0;

	if (argc < 2)
		hypr_die(HYPR_EXIT_USAGE, "usage: hypr volume inspect NAME...");
	for (int i = 1; i < argc; i++) {
		struct hypr_err e = { 0 };
		json_t *m = hypr_vol_meta(r, argv[i], &e);
		char t[64];
		if (!m) {
			hypr_say_err(&e);
			rc = e.code ? e.code : HYPR_EXIT_SYSTEM;
			continue;
		}
		rfc3339(json_integer_value(json_object_get(m, "created")), t, sizeof t);
		json_array_append_new(out, json_pack("{s:s,s:s,s:O,s:O,s:s,s:n,s:s}",
		    "CreatedAt", t, "Driver", "local", "Labels", json_object_get(m, "labels"),
		    "Mountpoint", json_object_get(m, "mountpoint"), "Name", argv[i], "Options",
		    "Scope", "local"));
		json_decref(m);
	}
	if (json_array_size(out) || !rc) {
		char *s = json_dumps(out, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
		printf("%s\n", s ? s : "[]");
		free(s);
	}
	json_decref(out);
	hypr_close_stdout();
	return rc;
}

/* Remove name unless a container names it; prints why not. */
static int
rm_one(const struct hypr_root *r, const char *name, uint64_t *freed, int quiet_missing)
{
	struct hypr_err e = { 0 };
	json_t *ids;

	if (hypr_vol_users(r, name, &ids, &e) < 0) {
		hypr_say_err(&e);
		return e.code ? e.code : HYPR_EXIT_SYSTEM;
	}
	if (json_array_size(ids)) {
		fprintf(stderr, "hypr: remove %s: volume is in use - [", name);
		for (size_t k = 0; k < json_array_size(ids); k++)
			fprintf(stderr, "%s%s", k ? ", " : "", json_string_value(json_array_get(ids, k)));
		fputs("]\n", stderr);
		json_decref(ids);
		return HYPR_EXIT_INPUT;
	}
	json_decref(ids);
	if (hypr_vol_remove(r, name, freed, &e) < 0) {
		if (quiet_missing && e.code == HYPR_EXIT_INPUT)
			return 0;
		hypr_say_err(&e);
		return e.code ? e.code : HYPR_EXIT_SYSTEM;
	}
	return -1;	/* removed */
}

static int
rm(const struct hypr_root *r, int argc, char **argv)
{
	struct hypr_err e = { 0 };
	int ch, force = 0, rc = 0, fd;

	optind = 1;
	while ((ch = getopt(argc, argv, "f")) != -1) {
		if (ch != 'f')
			hypr_die(HYPR_EXIT_USAGE, "usage: hypr volume rm [-f] NAME...");
		force = 1;
	}
	if (optind == argc)
		hypr_die(HYPR_EXIT_USAGE, "usage: hypr volume rm [-f] NAME...");
	if (hypr_vol_lock(r, &fd, &e) < 0)
		hypr_die_err(&e);
	for (int i = optind; i < argc; i++) {
		int k = rm_one(r, argv[i], NULL, force);
		if (k < 0) {
			printf("%s\n", argv[i]);
			fflush(stdout);
		} else if (k > 0) {
			rc = k;
		}
	}
	close(fd);
	hypr_close_stdout();
	return rc;
}

static int
prune(const struct hypr_root *r, int argc, char **argv)
{
	struct hypr_err e = { 0 };
	json_t *names, *v;
	uint64_t freed = 0;
	size_t i, any = 0;
	int ch, all = 0, force = 0, fd;
	char h[32];

	optind = 1;
	while ((ch = getopt(argc, argv, "af")) != -1) {
		if (ch == 'a')
			all = 1;
		else if (ch == 'f')
			force = 1;
		else
			hypr_die(HYPR_EXIT_USAGE, "usage: hypr volume prune [-a] [-f]");
	}
	if (!force) {
		char line[16];
		fprintf(stderr, "WARNING! This will remove %s volumes not used by at least one "
		    "container.\nAre you sure you want to continue? [y/N] ", all ? "all local" :
		    "anonymous local");
		if (!fgets(line, sizeof line, stdin) || (line[0] != 'y' && line[0] != 'Y'))
			return 0;
	}
	if (hypr_vol_lock(r, &fd, &e) < 0 || hypr_vol_list(r, &names, &e) < 0)
		hypr_die_err(&e);
	json_array_foreach(names, i, v) {
		const char *name = json_string_value(v);
		json_t *m = hypr_vol_meta(r, name, &e), *ids;
		int anon = m && json_is_true(json_object_get(m, "anonymous"));

		json_decref(m);
		if ((!all && !anon) || hypr_vol_users(r, name, &ids, &e) < 0)
			continue;
		if (!json_array_size(ids) && hypr_vol_remove(r, name, &freed, &e) == 0) {
			if (!any++)
				printf("Deleted Volumes:\n");
			printf("%s\n", name);
		}
		json_decref(ids);
	}
	json_decref(names);
	close(fd);
	if (any)
		printf("\n");
	hypr_image_human_size(freed, h, sizeof h);
	printf("Total reclaimed space: %s\n", h);
	return hypr_close_stdout();
}

int
cmd_volume(int argc, char **argv)
{
	struct hypr_root root;
	const char *sub = argc > 1 ? argv[1] : "";

	if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help"))
		usage(stdout, 0);
	if (!*sub)
		usage(stderr, HYPR_EXIT_USAGE);
	open_root(&root);
	if (!strcmp(sub, "create"))
		return create(&root, argc - 1, argv + 1);
	if (!strcmp(sub, "ls") || !strcmp(sub, "list"))
		return ls(&root, argc - 1, argv + 1);
	if (!strcmp(sub, "inspect"))
		return inspect(&root, argc - 1, argv + 1);
	if (!strcmp(sub, "rm") || !strcmp(sub, "remove"))
		return rm(&root, argc - 1, argv + 1);
	if (!strcmp(sub, "prune"))
		return prune(&root, argc - 1, argv + 1);
	hypr_die(HYPR_EXIT_USAGE, "volume: unknown command '%s' (create, ls, inspect, rm, prune)", sub);
}
