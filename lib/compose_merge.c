/* compose_merge.c - several compose files as one YAML document, merged
 * as compose-go merges them: mappings key by key, a later scalar wins,
 * lists appended, command, entrypoint and healthcheck.test replaced,
 * environment, labels and build args merged by name whichever form (list
 * or mapping) each file uses. Each node of the result remembers its file
 * and line, for messages. */
#include "compose_int.h"

#include <stdlib.h>
#include <string.h>




/* Aliases are copied, so the copies are counted (a "billion laughs" file
 * stops at MERGE_NODES) and the depth is bounded (a recursive alias stops
 * at MERGE_DEPTH). */
#define MERGE_NODES 200000
#define MERGE_DEPTH 64

static yaml_node_t *
nd(yaml_document_t *d, int id)
{
	return yaml_document_get_node(d, id);
}

/* Record where a new node came from; 0 or -1 (error set). */
static int
md_note(struct compose_mdoc *m, int id, int fi, yaml_mark_t mark)
{
	yaml_node_t *n;

	if (!id)
		return compose_oom(m->e);
	if ((size_t)id > MERGE_NODES)
		return hypr_err_set(m->e, HYPR_EXIT_INPUT, "%s: over %d YAML nodes once aliases "
		    "are expanded", m->fname, MERGE_NODES);
	if ((size_t)id > m->n) {
		size_t cap = (size_t)id * 2;
		int *q = realloc(m->file, cap * sizeof *q);

		if (!q)
			return compose_oom(m->e);
		m->file = q;
		m->n = cap;
	}
	m->file[id - 1] = fi;
	n = nd(&m->d, id);
	n->start_mark = n->end_mark = mark;
	return 0;
}

static int
copy_node(struct compose_mdoc *m, yaml_document_t *sd, yaml_node_t *sn, int fi, int depth);

static int
is_merge_key(yaml_node_t *k)
{
	return k->type == YAML_SCALAR_NODE && k->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	    !strcmp((const char *)k->data.scalar.value, "<<");
}

/* Copy a pair into mapping id unless its key is there already: how YAML's
 * merge key (<<: *anchor) adds what the mapping does not say itself. */
static int
add_missing(struct compose_mdoc *m, int id, yaml_document_t *sd, yaml_node_pair_t pr, int fi,
    int depth)
{
	const char *key = compose_scalar(nd(sd, pr.key));
	yaml_node_t *mp = nd(&m->d, id);
	int ck, cv;

	for (yaml_node_pair_t *q = mp->data.mapping.pairs.start; key && q < mp->data.mapping.pairs.top;
	    q++) {
		const char *have = compose_scalar(nd(&m->d, q->key));

		if (have && !strcmp(have, key))
			return 1;
	}
	if (!(ck = copy_node(m, sd, nd(sd, pr.key), fi, depth + 1)) ||
	    !(cv = copy_node(m, sd, nd(sd, pr.value), fi, depth + 1)))
		return 0;
	if (!yaml_document_append_mapping_pair(&m->d, id, ck, cv))
		return compose_oom(m->e), 0;
	return 1;
}

/* The pairs a merge key's value brings: a mapping, or a list of them (the
 * first one given wins); its own << too. 1, or 0 with the error set. */
static int
merge_key(struct compose_mdoc *m, int id, yaml_document_t *sd, yaml_node_t *v, int fi,
    int depth)
{
	if (depth > MERGE_DEPTH)
		return hypr_err_set(m->e, HYPR_EXIT_INPUT, "%s:%ld: nested over %d levels deep",
		    m->fname, compose_line(v), MERGE_DEPTH), 0;
	if (v->type == YAML_SEQUENCE_NODE) {
		for (yaml_node_item_t *i = v->data.sequence.items.start;
		    i < v->data.sequence.items.top; i++) {
			yaml_node_t *it = nd(sd, *i);

			if (it->type != YAML_MAPPING_NODE)
				return hypr_err_set(m->e, HYPR_EXIT_INPUT, "%s:%ld: << must be a mapping "
				    "or a list of mappings", m->fname, compose_line(it)), 0;
			if (!merge_key(m, id, sd, it, fi, depth + 1))
				return 0;
		}
		return 1;
	}
	if (v->type != YAML_MAPPING_NODE)
		return hypr_err_set(m->e, HYPR_EXIT_INPUT, "%s:%ld: << must be a mapping or a list "
		    "of mappings", m->fname, compose_line(v)), 0;
	for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++)
		if (!is_merge_key(nd(sd, p->key)) && !add_missing(m, id, sd, *p, fi, depth))
			return 0;
	for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++)
		if (is_merge_key(nd(sd, p->key)) && !merge_key(m, id, sd, nd(sd, p->value), fi,
		    depth + 1))
			return 0;
	return 1;
}

/* Copy sn (of sd) into m: a new node's id, or 0 with the error set. A
 * mapping's << keys are resolved as YAML 1.1 merges them (compose-go does):
 * its own keys first, then those of each << it does not have. */
static int
copy_node(struct compose_mdoc *m, yaml_document_t *sd, yaml_node_t *sn, int fi, int depth)
{
	yaml_mark_t mark = sn->start_mark;
	int id, type = sn->type;

	if (depth > MERGE_DEPTH) {
		hypr_err_set(m->e, HYPR_EXIT_INPUT, "%s:%ld: nested over %d levels deep",
		    m->fname, compose_line(sn), MERGE_DEPTH);
		return 0;
	}
	if (type == YAML_SCALAR_NODE)
		id = yaml_document_add_scalar(&m->d, NULL, sn->data.scalar.value,
		    (int)sn->data.scalar.length, sn->data.scalar.style);
	else if (type == YAML_SEQUENCE_NODE)
		id = yaml_document_add_sequence(&m->d, NULL, sn->data.sequence.style);
	else
		id = yaml_document_add_mapping(&m->d, NULL, sn->data.mapping.style);
	if (md_note(m, id, fi, mark) < 0)
		return 0;
	if (type == YAML_SEQUENCE_NODE) {
		size_t k, cnt = (size_t)(sn->data.sequence.items.top - sn->data.sequence.items.start);

		for (k = 0; k < cnt; k++) {
			int c = copy_node(m, sd, nd(sd, sn->data.sequence.items.start[k]), fi, depth + 1);

			if (!c || !yaml_document_append_sequence_item(&m->d, id, c))
				return c ? (compose_oom(m->e), 0) : 0;
		}
	} else if (type == YAML_MAPPING_NODE) {
		size_t k, cnt = (size_t)(sn->data.mapping.pairs.top - sn->data.mapping.pairs.start);

		for (k = 0; k < cnt; k++) {
			yaml_node_pair_t pr = sn->data.mapping.pairs.start[k];
			int ck, cv;

			if (is_merge_key(nd(sd, pr.key)))
				continue;
			if (!(ck = copy_node(m, sd, nd(sd, pr.key), fi, depth + 1)) ||
			    !(cv = copy_node(m, sd, nd(sd, pr.value), fi, depth + 1)))
				return 0;
			if (!yaml_document_append_mapping_pair(&m->d, id, ck, cv))
				return compose_oom(m->e), 0;
		}
		for (k = 0; k < cnt; k++) {
			yaml_node_pair_t pr = sn->data.mapping.pairs.start[k];

			if (is_merge_key(nd(sd, pr.key)) &&
			    !merge_key(m, id, sd, nd(sd, pr.value), fi, depth + 1))
				return 0;
		}
	}
	return id;
}

/* A list of "K=V" / "K" as a mapping (environment, labels, build.args in
 * their list form), so that two files merge them by name. A new node of
 * doc d, or 0 with the error set. */
static int
seq_to_map(struct compose_mdoc *m, yaml_document_t *d, int id, int fi)
{
	yaml_node_t *n = nd(d, id);
	int mid;
	size_t k, cnt;

	if (n->type != YAML_SEQUENCE_NODE)
		return id;
	cnt = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	mid = yaml_document_add_mapping(d, NULL, YAML_BLOCK_MAPPING_STYLE);
	if (d == &m->d ? md_note(m, mid, fi, nd(d, id)->start_mark) < 0 : !mid)
		return mid ? 0 : (compose_oom(m->e), 0);
	for (k = 0; k < cnt; k++) {
		yaml_node_t *it = nd(d, nd(d, id)->data.sequence.items.start[k]);
		yaml_mark_t mark = it->start_mark;
		const char *str = compose_scalar(it), *eq;
		int kid, vid, ifi = d == &m->d ? m->file[nd(d, id)->data.sequence.items.start[k] - 1] : fi;

		if (!str)
			return hypr_err_set(m->e, HYPR_EXIT_INPUT, "%s:%ld: a list item must be a "
			    "string", m->fname, compose_line(it)), 0;
		eq = strchr(str, '=');
		kid = yaml_document_add_scalar(d, NULL, (yaml_char_t *)str,
		    eq ? (int)(eq - str) : (int)strlen(str), YAML_PLAIN_SCALAR_STYLE);
		if (d == &m->d && md_note(m, kid, ifi, mark) < 0)
			return 0;
		str = compose_scalar(nd(d, nd(d, id)->data.sequence.items.start[k]));
		eq = strchr(str, '=');
		vid = yaml_document_add_scalar(d, NULL, (yaml_char_t *)(eq ? eq + 1 : ""), -1,
		    eq ? YAML_SINGLE_QUOTED_SCALAR_STYLE : YAML_PLAIN_SCALAR_STYLE);
		if (d == &m->d && md_note(m, vid, ifi, mark) < 0)
			return 0;
		if (!kid || !vid || !yaml_document_append_mapping_pair(d, mid, kid, vid))
			return compose_oom(m->e), 0;
	}
	return mid;
}

/* Merge node sid of sd (file fi) into node did of the merged document;
 * key is the key both sit under, level its depth (1 a top-level key, 2 a
 * service, 3 a service's key, 4 one of build: or healthcheck:). Returns
 * the node now in did's place (did itself when merged in place), 0 on
 * error. */
static int
merge_node(struct compose_mdoc *m, int did, yaml_document_t *sd, int sid, int fi, const char *key,
    int level)
{
	yaml_node_t *dn = nd(&m->d, did), *sn = nd(sd, sid);
	int mapish = key && ((level == 3 && (!strcmp(key, "environment") ||
	    !strcmp(key, "labels"))) || (level == 4 && (!strcmp(key, "args") ||
	    !strcmp(key, "labels"))));

	if (level > MERGE_DEPTH)
		return copy_node(m, sd, sn, fi, level);
	if (mapish && dn->type != sn->type) {
		if (!(did = seq_to_map(m, &m->d, did, fi)) || !(sid = seq_to_map(m, sd, sid, fi)))
			return 0;
		dn = nd(&m->d, did);
		sn = nd(sd, sid);
	}
	if (dn->type == YAML_MAPPING_NODE && sn->type == YAML_MAPPING_NODE) {
		size_t k, cnt = (size_t)(sn->data.mapping.pairs.top - sn->data.mapping.pairs.start);

		for (k = 0; k < cnt; k++) {
			yaml_node_pair_t pr = nd(sd, sid)->data.mapping.pairs.start[k];
			const char *sk = compose_scalar(nd(sd, pr.key));
			size_t j, dcnt;
			int found = 0;

			dn = nd(&m->d, did);
			dcnt = (size_t)(dn->data.mapping.pairs.top - dn->data.mapping.pairs.start);
			for (j = 0; sk && j < dcnt; j++) {
				const char *dk = compose_scalar(nd(&m->d, dn->data.mapping.pairs.start[j].key));
				int v;

				if (!dk || strcmp(dk, sk))
					continue;
				if (!(v = merge_node(m, dn->data.mapping.pairs.start[j].value, sd,
				    pr.value, fi, sk, level + 1)))
					return 0;
				nd(&m->d, did)->data.mapping.pairs.start[j].value = v;
				found = 1;
				break;
			}
			if (!found) {
				int ck = copy_node(m, sd, nd(sd, pr.key), fi, level + 1), cv;

				if (!ck || !(cv = copy_node(m, sd, nd(sd, pr.value), fi, level + 1)))
					return 0;
				if (!yaml_document_append_mapping_pair(&m->d, did, ck, cv))
					return compose_oom(m->e), 0;
			}
		}
		return did;
	}
	if (dn->type == YAML_SEQUENCE_NODE && sn->type == YAML_SEQUENCE_NODE &&
	    !(level == 3 && key && (!strcmp(key, "command") || !strcmp(key, "entrypoint"))) &&
	    !(level == 4 && key && !strcmp(key, "test"))) {
		size_t k, cnt = (size_t)(sn->data.sequence.items.top - sn->data.sequence.items.start);

		for (k = 0; k < cnt; k++) {
			int c = copy_node(m, sd, nd(sd, nd(sd, sid)->data.sequence.items.start[k]), fi,
			    level + 1);

			if (!c || !yaml_document_append_sequence_item(&m->d, did, c))
				return c ? (compose_oom(m->e), 0) : 0;
		}
		return did;
	}
	return copy_node(m, sd, sn, fi, level);
}


int
compose_merge(struct compose_mdoc *m, yaml_document_t *src, int fi)
{
	struct compose_mdoc t = { .fname = m->fname, .e = m->e };
	int r;

	if (fi == 0)
		return copy_node(m, src, yaml_document_get_root_node(src), 0, 0) ? 0 : -1;
	/* the file's << resolved first, in a copy of its own */
	if (!yaml_document_initialize(&t.d, NULL, NULL, NULL, 1, 1))
		return compose_oom(m->e);
	r = copy_node(&t, src, yaml_document_get_root_node(src), fi, 0) &&
	    merge_node(m, 1, &t.d, 1, fi, NULL, 0) ? 0 : -1;
	yaml_document_delete(&t.d);
	free(t.file);
	return r;
}
