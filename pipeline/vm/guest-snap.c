/* guest-snap.c - the build VM's snapshot point (hypr-guest(7), SNAPSHOTS):
 * where the guest stops for the host to save it, and what a restored
 * guest does before it goes on. */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/random.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guest.h"
#include "vm_proto.h"

/* The layers' fs written out: a snapshot's copy of the scratch disk is
 * what its guest knows. */
void
sync_layers(void)
{
	int fd;

	if ((fd = open(L, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 || syncfs(fd) < 0)
		fatal("sync " L ": %s", strerror(errno));
	close(fd);
}

/* Under TCG the kernel runs on the tsc-early clocksource until a delayed
 * work, about a second after boot, switches to the refined "tsc" (a
 * stop_machine, the clockevents' one-shot probe). Saved before that, every
 * restored guest would do it during its first step: wait for it (3 s at
 * most). Under KVM the clocksource is kvm-clock: no wait. */
static void
tsc_settle(void)
{
	const char *p = "/sys/devices/system/clocksource/clocksource0/current_clocksource";
	char buf[32];

	for (int i = 0; i < 300; i++) {
		int fd = open(p, O_RDONLY | O_CLOEXEC);
		ssize_t n;

		if (fd < 0)
			return;
		n = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (n <= 0 || strncmp(buf, "tsc-early", 9))
			return;
		usleep(10000);
	}
}

/* hypr.snap=1: everything so far holds for any build VM of this shape
 * (kernel, devices, RAM, and with hypr.snapfs=1 the scratch fs, which
 * each VM gets a copy of): the host saves the guest here once (PAUSED)
 * and restores it for every later build VM, which goes on with GO. Each
 * restored guest starts from the same random state, so GO brings fresh
 * host entropy and the CRNG is reseeded with it; disk blocks cached at
 * probe time (partition scans of the snapshot's placeholders) are
 * dropped (devs: n device names, "" skipped). GO's last 8 bytes, if any,
 * are the build's disk limit, returned (else 0): the snapshot's scratch fs
 * spans the whole disk, so the caller reserves what is free beyond it.
 * hypr-guest(7). */
uint64_t
snapshot_point(const char *const *devs, size_t n)
{
	unsigned char h[HYPR_PROTO_HDR], seed[64];
	uint64_t limit = 0;
	struct {
		int entropy_count, buf_size;
		unsigned char buf[32];
	} ent;
	uint32_t len;
	int fd;

	tsc_settle();
	send_frame(HYPR_MSG_PAUSED, 0, NULL, 0);
	if (read_all(ctl, h, sizeof h) < 0)
		fatal("control port closed");
	len = hypr_proto_get32(h);
	if (h[4] != HYPR_MSG_GO || len < sizeof ent.buf || len > sizeof seed ||
	    read_all(ctl, seed, len) < 0)
		fatal("snapshot: a GO frame with a seed was expected (type %d, %u bytes)", h[4], len);
	if (len >= sizeof ent.buf + 8)
		limit = hypr_proto_get64(seed + sizeof ent.buf);
	ent.entropy_count = 8 * (int)sizeof ent.buf;
	ent.buf_size = (int)sizeof ent.buf;
	memcpy(ent.buf, seed, sizeof ent.buf);
	if ((fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC)) < 0 ||
	    ioctl(fd, RNDADDENTROPY, &ent) < 0 || ioctl(fd, RNDRESEEDCRNG) < 0)
		fatal("snapshot: reseeding the CRNG: %s", strerror(errno));
	close(fd);
	for (size_t k = 0; k < n; k++) {
		if (!devs[k][0])
			continue;
		if ((fd = open(devs[k], O_RDONLY | O_CLOEXEC)) < 0 || ioctl(fd, BLKFLSBUF, 0) < 0)
			fatal("snapshot: %s: %s", devs[k], strerror(errno));
		close(fd);
	}
	/* from here on a failure is this VM's, not its snapshot's */
	send_frame(HYPR_MSG_RESUMED, 0, NULL, 0);
	if (debug)
		logmsg("restored from a snapshot");
	return limit;
}

/* hypr.snapbase=1: the snapshot of one base (hypr-guest(7)): it mounted,
 * the init layer made, with warm the warm-up step run (5 s at most) and
 * all it left killed, the layers' fs written out; the base's pages and the
 * guest's caches a step fills are then in every restored guest. */
uint64_t
snapshot_base(const char *const *devs, size_t n, int warm)
{
	pid_t w = warm ? step_warm() : -1;

	for (int i = 0; w > 0 && i < 500 && waitpid(w, NULL, WNOHANG) == 0; i++)
		usleep(10000);
	kill(-1, SIGKILL);
	while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
		;
	sync_layers();
	return snapshot_point(devs, n);
}
