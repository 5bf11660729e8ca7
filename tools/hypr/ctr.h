/* ctr.h - the driver's runtime: hypr run, the supervisor of a container,
 * and the container commands (ps, logs, stop, kill, rm, exec, inspect). */
#ifndef HYPR_DRIVER_CTR_H
#define HYPR_DRIVER_CTR_H

#include <stdint.h>
#include <jansson.h>
#include "cas.h"
#include "container.h"

/* hypr run's status when hypr, not the process, failed (docker run's). */
#define HYPR_EXIT_RUN 125

/* A new container from a spec: what `hypr run` was told, as JSON (the
 * flags' values: "image", "command", "entrypoint", "env", "env_files",
 * "user", "workdir", "hostname", "tty", "interactive", "rm", "network",
 * "ports", "publish_all", "volumes", "memory", "cpus", "health",
 * "restart", "stop_signal", "stop_timeout", "labels", "add_hosts",
 * compose's "hosts", "guestfwds" and "expose"). The image is resolved
 * under the store's lock and its squashfs locked shared (*sqfd holds it);
 * the container is created with its supervisor's lock held (*lockfd).
 * Dies with one line on an error. */
void ctr_create(const struct hypr_root *root, json_t *spec, struct hypr_ctr *c,
    int *sqfd, int *lockfd);
/* ctr_start's flags */
#define CTR_QUIET 1	/* detached: no ID on stdout */
#define CTR_HOLD 2	/* detached: the process's output before the first
			 * attach is kept for it (hypr run -it attaches right
			 * after), and its terminal gets this one's size */
/* Supervise a created container: boot its VM, run its process, keep its
 * log and state, serve its control socket, restart it by its policy.
 * fg: attached to this terminal, returns the exit status to exit with.
 * Detached (fg 0): forks a supervisor of its own session and returns once
 * the process runs (0, the ID printed unless CTR_QUIET) or could not
 * start. */
int ctr_start(const struct hypr_root *root, struct hypr_ctr *c, int sqfd, int lockfd,
    int fg, int flags);
/* Attach this terminal to a running container (hypr attach, hypr run -it):
 * its output, our stdin unless nostdin (when its stdin is open), the
 * window's size; keys (nkeys) detach. Returns its exit status, or 0 when
 * detached. Dies with one line when it does not run. */
int ctr_attach(struct hypr_ctr *c, int nostdin, const unsigned char *keys, size_t nkeys);
/* docker's --detach-keys: "ctrl-p,ctrl-q", a letter or ctrl-<a-z@[\]^_>
 * into keys (at most cap); dies with a usage error when bad. */
size_t ctr_detach_keys(const char *spec, unsigned char *keys, size_t cap);

/* What a command does to one container (ctr_each): 0, and its name is
 * printed; CTR_SAID, it printed why not itself (exit status 3); -1, e says
 * why. */
#define CTR_SAID 1
typedef int ctr_act(const struct hypr_root *r, struct hypr_ctr *c, const char *name,
    void *arg, struct hypr_err *e);
/* docker's stop, kill, rm, start, restart: act on each CONTAINER named in
 * argv[first..argc) (one that is not found is an error, the others are
 * still done), then close standard output. The last failure's exit status,
 * else 0. */
int ctr_each(char **argv, int first, int argc, ctr_act *act, void *arg);

int cmd_run(int argc, char **argv);
int cmd_create(int argc, char **argv);
int cmd_start(int argc, char **argv);
int cmd_restart(int argc, char **argv);
int cmd_attach(int argc, char **argv);
int cmd_ps(int argc, char **argv);
int cmd_logs(int argc, char **argv);
int cmd_stop(int argc, char **argv);
int cmd_kill(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_exec(int argc, char **argv);
int cmd_container(int argc, char **argv);
int cmd_volume(int argc, char **argv);
int cmd_proxy(int argc, char **argv);

/* Shared helpers (ctrcmd.c). */
/* "Up 5 seconds (healthy)", "Exited (0) 3 minutes ago", ... */
void ctr_status(const struct hypr_ctr *c, char *buf, size_t n);
/* created, running, restarting, exited, dead (docker's .State). */
const char *ctr_state(const struct hypr_ctr *c);
/* "127.0.0.1:8080->80/tcp, ..." (compose's hidden forwards left out). */
void ctr_ports_text(const struct hypr_ctr *c, char *buf, size_t n);
/* docker ps's COMMAND column ("\"httpd -f\""), cut to 20 characters with trunc. */
void ctr_command_text(const struct hypr_ctr *c, int trunc, char *buf, size_t n);
/* Docker's units.HumanDuration ("5 seconds", "About a minute"). */
void ctr_human(int64_t ns, char *buf, size_t n);
/* Go-style durations ("1m30s", "500ms") to nanoseconds; -1 if bad. */
int64_t ctr_duration(const char *s);
/* "SIGTERM", "TERM", "15" -> 15; -1 if unknown. */
int ctr_signal(const char *s);
/* Stop a container (as hypr stop): its stop signal, then SIGKILL after
 * timeout seconds (< 0: its own). 0 once it is down; -1 with e. */
int ctr_stop(struct hypr_ctr *c, int timeout, struct hypr_err *e);
/* A client of a supervisor's process (exec, attach): its output to ours,
 * our stdin to it when stdin_on (a 256 KiB window; raw mode with tty on a
 * terminal), SIGWINCH as WINSIZE; the status of its EXIT. rd: frames
 * already read from fd (taken over and freed), or NULL. nkeys > 0: the
 * keys that detach (return 0, the process runs on). Dies on an ERROR. */
int ctr_client_loop(struct hypr_ctr *c, int fd, struct hypr_ctr_reader *rd, int tty,
    int stdin_on, const unsigned char *keys, size_t nkeys);
/* --tail's value: "all" is -1, else a count (0 or more); -1 with
 * *ok = 0 when it is neither. */
long ctr_tail(const char *arg, int *ok);
/* docker logs's --since and --until: the records written in [since,
 * until], in ns since the epoch. */
struct ctr_window {
	int64_t since, until;
};
#define CTR_WINDOW_ALL ((struct ctr_window){ INT64_MIN, INT64_MAX })
/* A --since or --until value as ns since the epoch: an RFC 3339 time
 * ("2024-05-01T12:00:00Z", "...T14:00:00.5+02:00"; without a zone, UTC),
 * a date (its midnight, UTC), Unix seconds ("1714564800", with a
 * fraction), or a Go duration before now ("42m", "1h30m"); -1 if none. */
int64_t ctr_log_when(const char *arg);
/* docker logs's options, shared by hypr logs and compose logs. */
struct ctr_logs_opts {
	int follow, ts;		/* -f, -t */
	long tail;		/* -n: -1 for all */
	struct ctr_window w;	/* --since, --until */
};
#define CTR_LOGS_OPTS_INIT { 0, 0, -1, CTR_WINDOW_ALL }
/* Parse -f, -t, -n, --since, --until and -h from argv[optind] on (getopt's
 * order: options, then operands). A bad value dies with a usage error
 * naming cmd ("logs", "compose logs"); usage(stdout, 0) is -h's,
 * usage(stderr, 2) an unknown option's (both exit). */
void ctr_logs_parse(int argc, char **argv, const char *cmd, struct ctr_logs_opts *o,
    void (*usage)(FILE *f, int code));
/* How many of a container's log lines in w to pass over so that its last
 * tail lines are left (tail < 0: none). */
unsigned long long ctr_log_skip(const struct hypr_ctr *c, long tail, struct ctr_window w);
/* Pass over up to *skip whole lines at the start of a log record. */
void ctr_skip_lines(unsigned long long *skip, const char **data, size_t *len);
/* docker logs -t's time of a record, "2006-01-02T15:04:05.999999999Z". */
void ctr_log_time(int64_t ns, char *buf, size_t n);
/* Whether ip:port (udp or tcp) can be bound (runopts.c). */
int ctr_port_free(int udp, const char *ip, unsigned port);
/* Whether the status wants another start ("on-failure", "always", ...). */
int ctr_should_restart(json_t *restart, int status, int count);

#endif
