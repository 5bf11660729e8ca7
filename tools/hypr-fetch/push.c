/* push.c - hypr-fetch push: stored images out to their registries
 * (lib/push.h does the work). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fetch.h"
#include "push.h"
#include "store.h"
#include "stream.h"
#include "tool.h"

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int
push_one(struct fetch *f, struct hypr_store *s, const char *canon, int artifact,
    struct hypr_err *e)
{
	const char *id = hypr_json_str(json_object_get(s->index, "tags"), canon);
	struct hypr_image *im = hypr_store_get(s, id);
	struct hypr_push_result res;
	char fam[600];
	const char *colon = strrchr(canon, ':');

	hypr_store_familiar(canon, fam, sizeof(fam));
	if (im == NULL || im->m == NULL || im->problem)
		return hypr_err_set(e, HYPR_EXIT_INPUT,
		    "An image does not exist locally with the tag: %s", fam);
	if (!f->quiet)
		fprintf(stderr, "The push refers to repository [%.*s]\n",
		    (int)(colon - canon), canon);
	if (hypr_push_image(&f->root, im->m, canon, f->insecure, artifact, f->quiet ? NULL : stderr,
	    &res, e) < 0)
		return -1;
	printf("%s: digest: %s size: %llu\n", colon + 1, res.digest,
	    (unsigned long long)res.size);
	fflush(stdout);
	return 0;
}

int
fetch_push(struct fetch *f, const char *root, const char *what, int all_tags,
    int artifact, struct hypr_err *e)
{
	struct hypr_store s;
	char canon[600];
	const char *slash = strrchr(what, '/'), *name = slash ? slash + 1 : what;
	int rv = 0;

	if (strchr(what, '@'))
		return hypr_err_set(e, HYPR_EXIT_USAGE,
		    "push: '%s': push a tag, not a digest", what);
	if (all_tags && strchr(name, ':'))
		return hypr_err_set(e, HYPR_EXIT_USAGE,
		    "push: --all-tags takes a name without a tag, not '%s'", what);
	if (hypr_store_canon_tag(what, canon, sizeof(canon), e) < 0)
		return -1;
	if (hypr_store_open(&s, root, 0, e) < 0)
		return -1;
	if (!all_tags) {
		rv = push_one(f, &s, canon, artifact, e);
	} else {
		/* every tag of the repository, sorted */
		json_t *tags = json_object_get(s.index, "tags"), *v;
		const char *k, **list = calloc(json_object_size(tags) + 1, sizeof(char *));
		size_t n = 0, rl = (size_t)(strrchr(canon, ':') - canon);

		if (list == NULL)
			hypr_die_errno("push");
		json_object_foreach(tags, k, v)
			if (strncmp(k, canon, rl + 1) == 0 && !strchr(k + rl + 1, '/'))
				list[n++] = k;
		qsort(list, n, sizeof(*list), str_cmp);
		if (n == 0)
			rv = hypr_err_set(e, HYPR_EXIT_INPUT,
			    "An image does not exist locally with the name: %.*s", (int)rl, canon);
		for (size_t i = 0; i < n && rv == 0; i++)
			rv = push_one(f, &s, list[i], artifact, e);
		free(list);
	}
	hypr_store_close(&s);
	return rv;
}
