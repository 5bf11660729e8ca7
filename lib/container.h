/* container.h - the containers of hypr run: $HYPR_ROOT/containers/<id>/.
 *
 * A container is a directory named by its 64-hex ID holding config.json
 * (what to run, written once at creation), state.json (what happened,
 * rewritten by its supervisor through a temp file and rename), log (its
 * output as records), lock and ctl.sock. The supervisor (the `hypr run`
 * process, or its detached child) holds an exclusive flock on lock while
 * it lives: a container is running exactly while that lock is held, so a
 * SIGKILLed supervisor never leaves a container that looks alive. Names
 * are unique, checked under containers/.lock. See hypr-container(1). */
#ifndef HYPR_CONTAINER_H
#define HYPR_CONTAINER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>
#include "cas.h"
#include "err.h"

#define HYPR_CTR_ID_LEN 64

struct hypr_ctr {
	char id[HYPR_CTR_ID_LEN + 1];
	char dir[4200];
	json_t *config;		/* config.json */
	json_t *state;		/* state.json ({} if unreadable) */
	int alive;		/* its supervisor holds the lock */
};

/* Create a container from config (its "name" may be absent: one is made
 * up): a new ID, the directory, config.json with "id", "name" and
 * "created" set, state.json {"status":"created"}. A name in use is
 * HYPR_EXIT_INPUT with Docker's message. */
int hypr_ctr_create(const struct hypr_root *r, json_t *config, struct hypr_ctr *c,
    struct hypr_err *e);
/* Every container, newest first (*v freed with hypr_ctr_list_free). */
int hypr_ctr_list(const struct hypr_root *r, struct hypr_ctr **v, size_t *n,
    struct hypr_err *e);
void hypr_ctr_list_free(struct hypr_ctr *v, size_t n);
/* By full ID, name or unique ID prefix; else HYPR_EXIT_INPUT "No such
 * container: WHAT", and *c zeroed. */
int hypr_ctr_find(const struct hypr_root *r, const char *what, struct hypr_ctr *c,
    struct hypr_err *e);
int hypr_ctr_load(const struct hypr_root *r, const char *id, struct hypr_ctr *c,
    struct hypr_err *e);
void hypr_ctr_free(struct hypr_ctr *c);
/* Re-read state.json and whether it runs. */
int hypr_ctr_reload(struct hypr_ctr *c, struct hypr_err *e);
/* Write c->state (atomically). */
int hypr_ctr_save_state(struct hypr_ctr *c, struct hypr_err *e);
/* The supervisor's lock, held while *fd stays open: HYPR_EXIT_INPUT if
 * another process holds it. */
int hypr_ctr_lock(struct hypr_ctr *c, int *fd, struct hypr_err *e);
/* Remove the directory (the caller checked it does not run). */
int hypr_ctr_remove(struct hypr_ctr *c, struct hypr_err *e);
/* The control socket: listen (the supervisor) or connect (a client). */
int hypr_ctr_listen(struct hypr_ctr *c, int *fd, struct hypr_err *e);
int hypr_ctr_connect(struct hypr_ctr *c, int *fd, struct hypr_err *e);
/* Short ID (12 hex digits) into buf (13 bytes). */
void hypr_ctr_short(const char *id, char *buf);
/* CLOCK_REALTIME in nanoseconds. */
int64_t hypr_ctr_now_ns(void);

/* ---- the log: records "S NS LEN\n" then LEN bytes; S is 1 (stdout) or
 * 2 (stderr), NS the time in nanoseconds. At HYPR_CTR_LOG_MAX bytes
 * (default 64M) the log moves to log.1 (one kept) and starts again. ---- */
/* Append one record with one write (fd opened O_APPEND). */
int hypr_ctr_log_append(int fd, int stream, int64_t ns, const void *buf, size_t len);
struct hypr_ctr_log {
	char path[4300];
	int fd;
	int old;		/* reading log.1 before log */
	ino_t ino;
	char *buf;
	size_t len, cap, pos;
};
/* Open for reading from the oldest record. */
int hypr_ctr_log_open(struct hypr_ctr_log *l, const struct hypr_ctr *c, struct hypr_err *e);
/* The next whole record: 1, or 0 at the end for now (a follower calls
 * again later; a rotated log is followed into the new one), -1 on a
 * damaged record. */
int hypr_ctr_log_next(struct hypr_ctr_log *l, int *stream, int64_t *ns,
    const char **data, size_t *len, struct hypr_err *e);
void hypr_ctr_log_close(struct hypr_ctr_log *l);

/* ---- the control protocol: frames as hypr-guest(7)'s (u32 length, u8
 * type, u32 id, payload) between a client and the supervisor. ---- */
enum hypr_ctr_msg {
	/* client -> supervisor */
	HYPR_CTR_STOP = 'S',	/* u32 seconds before SIGKILL (~0u: the container's) */
	HYPR_CTR_KILL = 'K',	/* u32 signal */
	HYPR_CTR_EXEC = 'x',	/* JSON {argv, env, user, workdir, tty, stdin, rows, cols, detach} */
	HYPR_CTR_STDIN = '0',	/* bytes; empty: EOF */
	HYPR_CTR_WINSIZE = 'W',	/* u32 rows, u32 cols */
	HYPR_CTR_ATTACH = 'A',	/* the image's process: its output from now on,
				 * STDIN and WINSIZE to it, its EXIT (hypr attach) */
	/* supervisor -> client */
	HYPR_CTR_STDOUT = '1',
	HYPR_CTR_STDERR = '2',
	HYPR_CTR_EXIT = 'X',	/* i32 status */
	HYPR_CTR_ACK = 'a',	/* u32 stdin bytes taken */
	HYPR_CTR_ERROR = 'E',	/* one line */
	HYPR_CTR_OK = 'o',	/* a request was taken */
};
/* Blocking send of one frame. */
int hypr_ctr_send(int fd, int type, uint32_t id, const void *p, size_t n);
/* A frame reader for a non-blocking fd. */
struct hypr_ctr_reader {
	unsigned char *buf;
	size_t len, cap;
	int held;
};
/* Read what fd has; then take frames: 1 (type, payload until the next
 * call), 0 none yet, -1 EOF or a bad frame. */
int hypr_ctr_read(struct hypr_ctr_reader *r, int fd);
int hypr_ctr_frame(struct hypr_ctr_reader *r, int *type, uint32_t *id,
    const unsigned char **p, uint32_t *n);
void hypr_ctr_reader_free(struct hypr_ctr_reader *r);

#endif
