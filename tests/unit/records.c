/* Unit tests for the stream decoders (lib/plan.c, lib/steps.c,
 * lib/imagestream.c): types and required fields checked once, one error
 * line naming stream, line, record and field; writers read back. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "imagestream.h"
#include "plan.h"
#include "steps.h"

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"

/* Decode one plan record from text: 0, or -1 with msg (if given) the error. */
static int
plan_rec(const char *text, struct hypr_plan_rec *r, char *msg)
{
	struct hypr_err e = { 0 };
	json_t *j = json_loads(text, 0, NULL);
	int rc;

	if (j == NULL)
		return -2;
	rc = hypr_plan_decode(j, "resolved", 4, r, &e);
	json_decref(j);
	if (rc < 0 && msg)
		snprintf(msg, sizeof(e.msg), "%s", e.msg);
	if (rc < 0 && e.code != HYPR_EXIT_INPUT)
		return -3;
	return rc;
}

static int
plan_err(const char *text, const char *want)
{
	struct hypr_plan_rec r;
	char msg[sizeof(((struct hypr_err *)0)->msg)] = "";

	if (plan_rec(text, &r, msg) != -1) {
		fprintf(stderr, "accepted: %s\n", text);
		return 0;
	}
	if (strcmp(msg, want) != 0) {
		fprintf(stderr, "got  %s\nwant %s\n", msg, want);
		return 0;
	}
	return 1;
}

static void
plan_tests(void)
{
	struct hypr_plan_rec r;
	json_t *k;

	CHECK(plan_rec("{\"type\":\"instr\",\"stage\":0,\"line\":[2,3],\"op\":\"RUN\","
	    "\"original\":\"RUN --mount=a --mount=b x\",\"flags\":{\"mount\":[\"a\",\"b\"],"
	    "\"network\":\"none\"},\"args\":[\"x\"],\"form\":\"shell\",\"heredocs\":"
	    "[{\"name\":\"EOF\",\"content\":\"hi\\n\",\"expand\":true,\"strip_tabs\":false}],"
	    "\"mount_from\":{\"s\":{\"stage\":1}}}", &r, NULL) == 0);
	CHECK(r.kind == HYPR_PLAN_INSTR);
	CHECK(r.u.instr.stage == 0 && r.u.instr.line[0] == 2 && r.u.instr.line[1] == 3);
	CHECK(strcmp(r.u.instr.op, "RUN") == 0 && r.u.instr.nargs == 1);
	CHECK(r.u.instr.nheredocs == 1 && r.u.instr.heredocs[0].expand &&
	    r.u.instr.heredocs[0].fd == -1);
	CHECK(strcmp(hypr_plan_flag(&r.u.instr, "mount"), "b") == 0);
	CHECK(strcmp(hypr_plan_flag(&r.u.instr, "network"), "none") == 0);
	CHECK(hypr_plan_flag(&r.u.instr, "from") == NULL && !hypr_plan_flag_set(&r.u.instr, "from"));
	CHECK(hypr_plan_mount_from(&r.u.instr, "s") && hypr_plan_mount_from(&r.u.instr, "s")->stage == 1);
	CHECK(hypr_plan_mount_from(&r.u.instr, "t") == NULL);
	/* the cache key sees what was written, never the line */
	k = hypr_plan_instr_key(&r.u.instr);
	CHECK(k && json_object_get(k, "line") == NULL && json_object_get(k, "heredocs") &&
	    json_object_size(k) == 5);
	json_decref(k);
	hypr_plan_rec_free(&r);

	/* a resolved stage: its image decoded, diff_ids onto the layers */
	CHECK(plan_rec("{\"type\":\"stage\",\"index\":0,\"name\":null,\"line\":[1,1],"
	    "\"base\":\"busybox\",\"image\":{\"ref\":\"docker.io/library/busybox:latest\","
	    "\"digest\":\"" D1 "\",\"config\":\"" D2 "\",\"layers\":[{\"digest\":\"" D2 "\","
	    "\"size\":5}],\"diff_ids\":[\"" D1 "\"]}}", &r, NULL) == 0);
	CHECK(r.kind == HYPR_PLAN_STAGE && r.u.stage.has_image && r.u.stage.base_stage == -1);
	CHECK(r.u.stage.image.nlayers == 1 && r.u.stage.image.layers[0].size == 5);
	CHECK(strcmp(r.u.stage.image.layers[0].diff_id, D1) == 0);
	CHECK(r.u.stage.image.layers[0].media_type[0] == '\0');
	{
		/* what hypr-fetch writes reads back */
		json_t *o = hypr_plan_image_json(&r.u.stage.image);

		CHECK(o && strcmp(json_string_value(json_object_get(o, "digest")), D1) == 0);
		CHECK(json_array_size(json_object_get(o, "diff_ids")) == 1);
		json_decref(o);
	}
	hypr_plan_rec_free(&r);

	/* unknown record types pass; unknown fields are skipped */
	CHECK(plan_rec("{\"type\":\"future\",\"x\":1}", &r, NULL) == 0 &&
	    r.kind == HYPR_PLAN_OTHER);
	hypr_plan_rec_free(&r);

	/* one error line: stream, line, record, field */
	CHECK(plan_err("{\"type\":\"instr\",\"stage\":0,\"line\":[1,1],\"args\":[]}",
	    "resolved:4: instr record: op: missing"));
	CHECK(plan_err("{\"type\":\"instr\",\"stage\":0,\"line\":[1,1],\"op\":7,\"args\":[]}",
	    "resolved:4: instr record: op: not a string"));
	CHECK(plan_err("{\"type\":\"instr\",\"stage\":0,\"line\":[1,1],\"op\":\"RUN\","
	    "\"args\":[\"a\",2]}", "resolved:4: instr record: args: item 1 is not a string"));
	CHECK(plan_err("{\"type\":\"instr\",\"stage\":0,\"line\":[3,1],\"op\":\"RUN\",\"args\":[]}",
	    "resolved:4: instr record: line: not a [first, last] line range"));
	CHECK(plan_err("{\"type\":\"instr\",\"line\":[1,1],\"op\":\"RUN\",\"args\":[]}",
	    "resolved:4: instr record: stage: missing"));
	CHECK(plan_err("{\"type\":\"instr\",\"stage\":-1,\"line\":[1,1],\"op\":\"RUN\",\"args\":[]}",
	    "resolved:4: instr record: stage: out of range"));
	CHECK(plan_err("{\"type\":\"instr\",\"stage\":0,\"line\":[1,1],\"op\":\"RUN\",\"args\":[],"
	    "\"flags\":{\"mount\":[1]}}", "resolved:4: instr record: flags.mount: item 0 is not a string"));
	CHECK(plan_err("{\"type\":\"instr\",\"stage\":0,\"line\":[1,1],\"op\":\"ENV\",\"args\":[],"
	    "\"pairs\":[{\"value\":\"v\"}]}", "resolved:4: instr record: pairs[0].key: missing"));
	CHECK(plan_err("{\"type\":\"instr\",\"stage\":0,\"line\":[1,1],\"op\":\"RUN\",\"args\":[],"
	    "\"form\":\"json\"}", "resolved:4: instr record: form: not exec, shell or null"));
	CHECK(plan_err("{\"type\":\"stage\",\"index\":0,\"line\":[1,1],\"base\":\"b\","
	    "\"image\":{\"digest\":\"" D1 "\",\"config\":\"" D2 "\",\"layers\":"
	    "[{\"digest\":\"sha256:../x\"}]}}",
	    "resolved:4: stage record: image.layers[0].digest: not a digest"));
	CHECK(plan_err("{\"type\":\"stage\",\"index\":0,\"line\":[1,1],\"base\":\"b\","
	    "\"image\":{\"digest\":\"" D1 "\",\"config\":\"" D2 "\",\"layers\":[],"
	    "\"diff_ids\":[\"" D1 "\"]}}",
	    "resolved:4: stage record: image.diff_ids: 1 for 0 layers"));
	CHECK(plan_err("{\"type\":\"stage\",\"index\":0,\"line\":[1,1]}",
	    "resolved:4: stage record: base: missing"));
}

static void
steps_tests(void)
{
	struct hypr_steps_rec r;
	struct hypr_err e = { 0 };
	struct hypr_stream_out out;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	json_t *j;

	/* the writer's record, read back */
	{
		struct hypr_steps_step s = { .stage = 1, .n = 2, .line = { 3, 4 }, .op = "RUN",
			.created_by = "RUN x", .key = D1, .has_layer = 1, .author = "me" };

		hypr_layer_set(&s.layer, D2, 10, HYPR_MEDIA_LAYER_TAR);
		CHECK((f = open_memstream(&buf, &len)) != NULL);
		out.f = f;
		out.records = 0;
		CHECK(hypr_steps_put_step(&out, &s, &e) == 0);
		fclose(f);
		CHECK(strcmp(buf, "{\"type\":\"step\",\"stage\":1,\"n\":2,\"line\":[3,4],\"op\":"
		    "\"RUN\",\"created_by\":\"RUN x\",\"key\":\"" D1 "\",\"cached\":false,"
		    "\"layer\":{\"digest\":\"" D2 "\",\"diff_id\":\"" D2 "\",\"size\":10,"
		    "\"media_type\":\"application/vnd.oci.image.layer.v1.tar\"},"
		    "\"empty_layer\":false,\"author\":\"me\"}\n") == 0);
		j = json_loads(buf, 0, NULL);
		free(buf);
		CHECK(hypr_steps_decode(j, "steps", 2, &r, &e) == 0);
		CHECK(r.kind == HYPR_STEPS_STEP && r.u.step.n == 2 && r.u.step.has_layer &&
		    strcmp(r.u.step.layer.digest, D2) == 0 && strcmp(r.u.step.author, "me") == 0);
		hypr_steps_rec_free(&r);
		json_decref(j);
	}
	j = json_loads("{\"type\":\"step\",\"stage\":0,\"n\":1,\"op\":\"RUN\",\"key\":\"k\"}", 0,
	    NULL);
	CHECK(hypr_steps_decode(j, "steps", 7, &r, &e) < 0 &&
	    strcmp(e.msg, "steps:7: step record: key: not a digest") == 0);
	json_decref(j);
	j = json_loads("{\"type\":\"stage\",\"index\":0,\"base_layers\":[{\"size\":1}]}", 0, NULL);
	CHECK(hypr_steps_decode(j, "steps", 2, &r, &e) < 0 &&
	    strcmp(e.msg, "steps:2: stage record: base_layers[0].digest: missing") == 0);
	json_decref(j);
}

static void
image_tests(void)
{
	struct hypr_image_rec r;
	struct hypr_err e = { 0 };
	json_t *j = json_loads("{\"type\":\"image\",\"layers\":[{\"digest\":\"" D1 "\"}],"
	    "\"history\":[{\"created_by\":\"X\",\"empty_layer\":true}],\"base\":null}", 0, NULL);
	struct hypr_image_squashfs sq = { .digest = D2, .size = 4096 };

	CHECK(hypr_image_rec_is(j));
	CHECK(hypr_image_rec_decode(j, "image", 2, &r, &e) == 0);
	CHECK(r.nlayers == 1 && r.nhistory == 1 && r.history[0].empty_layer && !r.has_base &&
	    !r.has_squashfs);
	hypr_image_rec_free(&r);
	CHECK(hypr_image_rec_set_squashfs(j, &sq, &e) == 0);
	CHECK(hypr_image_rec_decode(j, "image", 2, &r, &e) == 0);
	CHECK(r.has_squashfs && r.squashfs.size == 4096 &&
	    strcmp(r.squashfs.compression, "zstd") == 0);
	hypr_image_rec_free(&r);
	json_decref(j);
	j = json_loads("{\"type\":\"image\"}", 0, NULL);
	CHECK(hypr_image_rec_decode(j, "image", 2, &r, &e) < 0 &&
	    strcmp(e.msg, "image:2: image record: layers: missing") == 0);
	json_decref(j);
}

int
main(void)
{
	plan_tests();
	steps_tests();
	image_tests();
	CHECK_DONE();
}
