/* compose.h - a Compose project (compose.yaml, its override files, .env),
 * read with libyaml.
 *
 * What building needs: each service's image: and build: (string form, or
 * context, dockerfile or dockerfile_inline, args as a list or a map, target,
 * labels, tags, no_cache, pull). What running needs: command, entrypoint,
 * environment, env_file, ports, expose, depends_on, restart, volumes (binds),
 * healthcheck, user, working_dir, hostname, container_name, stop_signal,
 * stop_grace_period, mem_limit, cpus, tty, stdin_open, labels, extra_hosts,
 * network_mode, profiles. Scalars are interpolated as Compose does ($V, ${V},
 * ${V:-w}, ${V-w}, ${V:+w}, ${V:?msg}, ${V?msg}, $$). Keys hypr cannot honour
 * and unset variables are reported as warnings in the result, never dropped
 * silently; lib never prints. */
#ifndef HYPR_COMPOSE_H
#define HYPR_COMPOSE_H

#include <stddef.h>
#include <stdio.h>
#include "err.h"

struct hypr_compose_kv {
	char *key;
	char *value;		/* NULL: a bare key, its value comes from the environment */
};

struct hypr_compose_service {
	char *name;
	char *image;		/* image: or NULL */
	int has_build;		/* 0: nothing to build */
	char *context;		/* absolute or relative to the compose file's directory */
	char *dockerfile;	/* NULL for the default; relative paths are to the context */
	char *dockerfile_inline;	/* the Dockerfile's text itself, or NULL */
	char *target;		/* NULL for the last stage */
	struct hypr_compose_kv *args;
	size_t nargs;
	struct hypr_compose_kv *labels;
	size_t nlabels;
	char **tags;		/* build.tags: extra names */
	size_t ntags;
	char **cache_from;	/* build.cache_from: --cache-from values */
	size_t ncache_from;
	char **cache_to;	/* build.cache_to: --cache-to values */
	size_t ncache_to;
	int no_cache;		/* build.no_cache: true */
	int pull;		/* build.pull: true */
	/* running it (hypr compose up) */
	long line;		/* where the service starts, for messages */
	char **command;		/* NULL: the image's CMD; a string is split as a shell would */
	size_t ncommand;
	int has_command;
	char **entrypoint;
	size_t nentrypoint;
	int has_entrypoint;
	struct hypr_compose_kv *environment;	/* a NULL value: the host's */
	size_t nenvironment;
	struct hypr_compose_kv *env_files;	/* key: the path (absolute); value
						 * non-NULL: required */
	size_t nenv_files;
	char **ports;		/* docker run -p forms ("[IP:]HOST:PORT[/udp]") */
	size_t nports;
	char **expose;		/* "PORT[/tcp]" */
	size_t nexpose;
	struct hypr_compose_kv *depends_on;	/* key: the service; value: the condition
						 * (service_started, service_healthy,
						 * service_completed_successfully) */
	size_t ndepends_on;
	char *restart;		/* no, on-failure[:N], always, unless-stopped */
	char **volumes;		/* binds as docker run -v ("/abs:/dir[:ro]") */
	size_t nvolumes;
	int has_healthcheck;	/* healthcheck: given */
	char *hc_test;		/* a shell command (CMD-SHELL), or NULL */
	char **hc_argv;		/* CMD form */
	size_t nhc_argv;
	int hc_disable;		/* disable: true or test: ["NONE"] */
	char *hc_interval, *hc_timeout, *hc_start_period, *hc_retries;
	char *user, *working_dir, *hostname, *container_name, *stop_signal;
	char *stop_grace_period, *mem_limit, *cpus, *network_mode;
	int tty, stdin_open;
	struct hypr_compose_kv *run_labels;	/* labels: of the service */
	size_t nrun_labels;
	char **extra_hosts;	/* "NAME:IP" */
	size_t nextra_hosts;
	char **profiles;	/* profiles: none, the service is always active */
	size_t nprofiles;
	const char *file;	/* the file that defines it first, as given (in paths) */
};

struct hypr_compose {
	char *file;		/* the compose file as given */
	char *dir;		/* its directory (absolute) */
	char *name;		/* top-level name: or NULL */
	struct hypr_compose_service *services;	/* in file order */
	size_t nservices;
	char **warnings;	/* "compose.yaml:LINE: ..." each */
	size_t nwarnings;
	char **fnames;		/* each file's base name */
	char **paths;		/* each file as given */
	size_t nfiles;
};

/* What a project is read with: its files, merged in order as Compose
 * merges them (mappings key by key, a later scalar wins, lists appended,
 * command and entrypoint replaced, environment, labels and build args
 * merged by name), and the .env values for ${VAR} (the process
 * environment wins over them). */
struct hypr_compose_opts {
	const char *const *files;
	size_t nfiles;
	const struct hypr_compose_kv *env;	/* a later entry wins */
	size_t nenv;
};

/* Find the default compose file in dir: compose.yaml, compose.yml,
 * docker-compose.yml, docker-compose.yaml (first found). HYPR_EXIT_USAGE if none. */
int hypr_compose_find(const char *dir, char *out, size_t n, struct hypr_err *e);
/* Read and check a compose file. Malformed YAML or a bad shape: HYPR_EXIT_INPUT
 * with "file:LINE: what"; a failed load leaves nothing to free (freeing it
 * anyway is harmless). */
int hypr_compose_load(struct hypr_compose *c, const char *path, struct hypr_err *e);
/* The same for a project of one or more files (o->nfiles >= 1); unset
 * variables are warnings ("The \"X\" variable is not set. ..."). */
int hypr_compose_load_opts(struct hypr_compose *c, const struct hypr_compose_opts *o,
    struct hypr_err *e);
void hypr_compose_free(struct hypr_compose *c);
/* Read a .env file (KEY=VALUE lines, # comments, quotes, export) and append
 * to *v: a value is interpolated against the environment and what was read
 * before. A missing file with !required is no error. HYPR_EXIT_INPUT with
 * "FILE:LINE: what" for a bad line. */
int hypr_compose_dotenv(const char *path, int required, struct hypr_compose_kv **v,
    size_t *n, struct hypr_err *e);
void hypr_compose_kv_free(struct hypr_compose_kv *v, size_t n);
/* Print the project as `docker compose config` does (YAML, libyaml's
 * emitter): name, then the services with want[i] set, sorted by name,
 * their keys sorted, paths absolute. */
int hypr_compose_write_yaml(FILE *f, const struct hypr_compose *c, const char *project,
    const int *want, struct hypr_err *e);
/* Normalise a project name as Compose does: lowercase, keep [a-z0-9_-], must
 * start with a letter or digit. Returns 0, or -1 when nothing valid remains. */
int hypr_compose_project_name(const char *raw, char *out, size_t n);
/* Compose-style interpolation of one scalar against the environment. */
int hypr_compose_interpolate(const char *in, char **out, struct hypr_err *e);

#endif
