/* containers.c - what hypr-store knows of the containers of hypr run
 * (lib/container.h): system df's Containers row and -v section, system
 * prune's stopped containers, and the images containers use (a stopped
 * one's too: `hypr start` boots it again from its image).
 *
 * What a container keeps on disk is its directory (config, state, log and
 * the writable layer's sparse ext4 disk, hypr-run(1)), so its blocks are
 * its size here. A container runs exactly while its supervisor holds
 * its lock: prune takes that lock itself before it removes one, so a
 * container being started is never removed under it. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "container.h"
#include "image.h"
#include "tool.h"
#include "volume.h"

void
ctr_usage(struct hypr_root *r, struct ctr_usage *u, struct hypr_table *rows)
{
	struct hypr_err e = { 0 };
	struct hypr_ctr *v;
	size_t n;

	memset(u, 0, sizeof(*u));
	if (hypr_ctr_list(r, &v, &n, &e) < 0)
		hypr_die_err(&e);
	for (size_t i = 0; i < n; i++) {
		uint64_t z = hypr_disk_usage(v[i].dir);
		const char *img = json_string_value(json_object_get(v[i].config, "image"));
		const char *name = json_string_value(json_object_get(v[i].config, "name"));
		const char *st = json_string_value(json_object_get(v[i].state, "status"));
		char sid[13], h[32], line[1200];

		u->n++;
		u->bytes += z;
		if (v[i].alive)
			u->running++;
		else
			u->reclaim += z;
		if (!rows)
			continue;
		hypr_ctr_short(v[i].id, sid);
		hypr_image_human_size(z, h, sizeof(h));
		snprintf(line, sizeof(line), "%s\t%.400s\t%s\t%s\t%.400s", sid, img ? img : "",
		    h, v[i].alive ? "running" : st && strcmp(st, "created") ? "exited" :
		    st ? st : "dead", name ? name : "");
		hypr_table_add(rows, line);
	}
	hypr_ctr_list_free(v, n);
}

void
ctr_prune(struct hypr_root *r, uint64_t *freed)
{
	struct hypr_err e = { 0 };
	struct hypr_ctr *v;
	size_t n, any = 0;

	if (hypr_ctr_list(r, &v, &n, &e) < 0)
		hypr_die_err(&e);
	for (size_t i = 0; i < n; i++) {
		uint64_t z;
		int fd;

		if (v[i].alive || hypr_ctr_lock(&v[i], &fd, &e) < 0)
			continue;	/* running, or started since the list */
		z = hypr_disk_usage(v[i].dir);
		if (hypr_ctr_remove(&v[i], &e) < 0) {
			hypr_say_err(&e);
		} else {
			if (!any++)
				printf("Deleted Containers:\n");
			printf("%s\n", v[i].id);
			*freed += z;
		}
		close(fd);
	}
	if (any)
		printf("\n");
	hypr_ctr_list_free(v, n);
}

int
ctr_using(struct hypr_root *r, const char *image_id, char *who, size_t n)
{
	struct hypr_err e = { 0 };
	struct hypr_ctr *v;
	size_t nv;
	int hit = 0;

	if (hypr_ctr_list(r, &v, &nv, &e) < 0)
		hypr_die_err(&e);
	for (size_t i = 0; i < nv && !hit; i++) {
		const char *id = json_string_value(json_object_get(v[i].config, "image_id"));

		if (id && !strcmp(id, image_id)) {
			hit = 1;
			if (who && n >= 13)
				hypr_ctr_short(v[i].id, who);
		}
	}
	hypr_ctr_list_free(v, nv);
	return hit;
}

void
vol_usage(struct hypr_root *r, struct ctr_usage *u, struct hypr_table *rows)
{
	struct hypr_err e = { 0 };
	json_t *names, *v;
	size_t i;

	memset(u, 0, sizeof(*u));
	if (hypr_vol_list(r, &names, &e) < 0)
		hypr_die_err(&e);
	json_array_foreach(names, i, v) {
		const char *name = json_string_value(v);
		json_t *m = hypr_vol_meta(r, name, &e), *ids = NULL;
		uint64_t z = m ? hypr_disk_usage(json_string_value(json_object_get(m, "mountpoint"))) : 0;
		size_t links = 0;
		char h[32], line[400];

		if (hypr_vol_users(r, name, &ids, &e) == 0)
			links = json_array_size(ids);
		json_decref(ids);
		json_decref(m);
		u->n++;
		u->bytes += z;
		if (links)
			u->running++;
		else
			u->reclaim += z;
		if (!rows)
			continue;
		hypr_image_human_size(z, h, sizeof(h));
		snprintf(line, sizeof(line), "%s\t%zu\t%s", name, links, h);
		hypr_table_add(rows, line);
	}
	json_decref(names);
}

void
vol_prune(struct hypr_root *r, uint64_t *freed)
{
	struct hypr_err e = { 0 };
	json_t *names, *v;
	size_t i, any = 0;
	int fd;

	if (hypr_vol_lock(r, &fd, &e) < 0 || hypr_vol_list(r, &names, &e) < 0)
		hypr_die_err(&e);
	json_array_foreach(names, i, v) {
		const char *name = json_string_value(v);
		json_t *m = hypr_vol_meta(r, name, &e), *ids;
		int anon = m && json_is_true(json_object_get(m, "anonymous"));

		json_decref(m);
		if (!anon || hypr_vol_users(r, name, &ids, &e) < 0)
			continue;	/* named ones: hypr volume prune -a */
		if (!json_array_size(ids) && hypr_vol_remove(r, name, freed, &e) == 0) {
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
}
