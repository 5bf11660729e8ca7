/* Unit tests for lib/template: Go text/template's subset over JSON. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "template.h"

static const char *data_text =
    "{\"Id\":\"sha256:abc\",\"Created\":\"2026-01-02T03:04:05Z\",\"Size\":4096,"
    "\"RepoTags\":[\"app:1\",\"app:latest\"],\"Empty\":[],\"Null\":null,\"On\":true,"
    "\"Config\":{\"Env\":[\"PATH=/bin\",\"A=<b>\"],\"Cmd\":[\"sh\",\"-c\",\"echo hi\"],"
    "\"Labels\":{\"k\":\"v\",\"a.b\":\"dotted\"},\"User\":\"\",\"Healthcheck\":null},"
    "\"Ports\":{\"80/tcp\":{},\"443/tcp\":{}},\"name\":\"web server\"}";

static json_t *data;
static json_t *maps[1];

/* out: the output, or "ERR <code>: <message>" */
static char *
run(const char *tmpl)
{
	struct hypr_tmpl *t;
	struct hypr_err e = { 0 };
	struct hypr_strbuf b = { 0 };
	struct hypr_tmpl_data d = { .dot = data, .maps = maps, .nmaps = 1 };
	char *r;

	if (hypr_tmpl_parse(tmpl, &t, &e) < 0 || hypr_tmpl_exec(t, &d, &b, &e) < 0) {
		if (asprintf(&r, "ERR %d: %s", e.code, e.msg) < 0)
			r = NULL;
		free(b.s);
	} else {
		r = hypr_strbuf_take(&b);
	}
	hypr_tmpl_free(t);
	return r;
}

static int
is(const char *tmpl, const char *want)
{
	char *got = run(tmpl);
	int ok = got && strcmp(got, want) == 0;

	if (!ok)
		fprintf(stderr, "template %s: got [%s], want [%s]\n", tmpl, got ? got : "(null)",
		    want);
	free(got);
	return ok;
}

int
main(void)
{
	data = json_loads(data_text, 0, NULL);
	CHECK(data != NULL);
	maps[0] = json_object_get(json_object_get(data, "Config"), "Labels");

	/* fields, text, escapes */
	CHECK(is("{{.Id}} {{.Created}}", "sha256:abc 2026-01-02T03:04:05Z"));
	CHECK(is("id={{ .Id }}!", "id=sha256:abc!"));
	CHECK(is("{{.Config.User}}|{{.Size}}|{{.On}}|{{.Null}}|", "|4096|true||"));
	CHECK(is("a\\tb\\nc", "a\tb\nc"));
	CHECK(is("{{.RepoTags}} {{.Config.Labels}}", "[app:1 app:latest] map[a.b:dotted k:v]"));
	CHECK(is("{{.Config.Labels.k}}[{{.Config.Labels.nope}}]", "v[]"));
	CHECK(is("{{.Null.X}}", ""));
	CHECK(is("", ""));
	CHECK(is("plain", "plain"));

	/* json */
	CHECK(is("{{json .Config.Env}}", "[\"PATH=/bin\",\"A=<b>\"]"));
	CHECK(is("{{json .Id}} {{json .Size}} {{json .Null}}", "\"sha256:abc\" 4096 null"));
	CHECK(is("{{json .Config.Labels}}", "{\"k\":\"v\",\"a.b\":\"dotted\"}"));

	/* range over arrays and objects */
	CHECK(is("{{range .RepoTags}}{{.}} {{end}}", "app:1 app:latest "));
	CHECK(is("{{range $i, $t := .RepoTags}}{{$i}}={{$t}},{{end}}", "0=app:1,1=app:latest,"));
	CHECK(is("{{range $k, $v := .Config.Labels}}{{$k}}:{{$v}};{{end}}", "a.b:dotted;k:v;"));
	CHECK(is("{{range $p, $c := .Ports}}{{$p}} {{end}}", "443/tcp 80/tcp "));
	CHECK(is("{{range .Empty}}x{{else}}none{{end}}", "none"));
	CHECK(is("{{range .Null}}x{{end}}.", "."));
	CHECK(is("{{range .RepoTags}}{{$.Id}} {{end}}", "sha256:abc sha256:abc "));

	/* index, join, split, println, case */
	CHECK(is("{{index .Config.Labels \"k\"}}", "v"));
	CHECK(is("{{index .Config.Labels \"a.b\"}}", "dotted"));
	CHECK(is("[{{index .Config.Labels \"missing\"}}]", "[]"));
	CHECK(is("{{index .RepoTags 1}}", "app:latest"));
	CHECK(is("{{index .Null \"k\"}}.", "."));
	CHECK(is("{{join .Config.Cmd \" \"}}", "sh -c echo hi"));
	CHECK(is("{{join .Null \",\"}}.", "."));
	CHECK(is("{{join (split \"a:b:c\" \":\") \"-\"}}", "a-b-c"));
	CHECK(is("{{println .Id .Size}}", "sha256:abc 4096\n"));
	CHECK(is("{{print \"a\" \"b\" 1 2}}", "ab1 2"));
	CHECK(is("{{printf \"%s=%d %q %%\" .Id .Size \"x\"}}", "sha256:abc=4096 \"x\" %"));
	CHECK(is("{{printf \"%-8s|%8s|%.6s|%06d|%3d|%s\" \"ab\" \"cd\" .Id .Size 12345}}",
	    "ab      |      cd|sha256|004096|12345|%!s(MISSING)"));
	CHECK(is("{{printf \"%5000s\" .Id}}", "ERR 2: col 3: printf: unsupported verb %s (%s %v %d %q, "
	    "flags - and 0, a width up to 1000, a precision)"));
	CHECK(is("{{upper .name}} {{lower \"AbC\"}} {{title .name}}", "WEB SERVER abc Web Server"));
	CHECK(is("{{.name | upper}}", "WEB SERVER"));
	CHECK(is("{{.Config.Env | len}} {{len .Id}}", "2 10"));
	CHECK(is("{{truncate .Id 6}}", "sha256"));
	CHECK(is("{{.Config.Labels \"k\"}}", "v"));

	/* if, with, comparisons */
	CHECK(is("{{if .On}}yes{{else}}no{{end}}", "yes"));
	CHECK(is("{{if .Empty}}yes{{else}}no{{end}}", "no"));
	CHECK(is("{{if .Null}}a{{else if .On}}b{{else}}c{{end}}", "b"));
	CHECK(is("{{if eq .Size 4096}}big{{end}}", "big"));
	CHECK(is("{{if ne .Id \"x\"}}ne{{end}}{{if not .Null}}!{{end}}", "ne!"));
	CHECK(is("{{if and .On .Size}}and{{end}}{{if or .Null .Empty}}or{{end}}", "and"));
	CHECK(is("{{with .Config}}{{.User}}<{{json .Cmd}}>{{end}}", "<[\"sh\",\"-c\",\"echo hi\"]>"));
	CHECK(is("{{with .Null}}x{{else}}y{{end}}", "y"));

	/* trimming, comments */
	CHECK(is("a  {{- .Size -}}  b", "a4096b"));
	CHECK(is("a{{/* a comment */}}b", "ab"));

	/* errors: unknown fields name the field, exit 2 */
	CHECK(is("{{.Nope}}", "ERR 2: unknown field .Nope"));
	CHECK(is("{{.Config.Nope}}", "ERR 2: unknown field .Config.Nope"));
	CHECK(is("{{range .RepoTags}}{{.X}}{{end}}", "ERR 2: can't evaluate field X in a string (.X)"));
	CHECK(is("{{$x.A}}", "ERR 2: undefined variable $x"));
	CHECK(is("{{.Id", "ERR 2: col 6: unclosed action"));
	CHECK(is("{{if .On}}x", "ERR 2: col 12: missing {{end}}"));
	CHECK(is("{{end}}", "ERR 2: col 8: unexpected {{end}}"));
	CHECK(is("{{nope .Id}}", "ERR 2: col 3: function \"nope\" not defined"));
	CHECK(is("{{index .RepoTags 5}}", "ERR 2: col 3: index: index out of range: 5"));
	CHECK(is("{{join .Id \",\"}}", "ERR 2: col 3: join: a string is not an array"));
	CHECK(is("{{json}}", "ERR 2: col 3: json: wrong number of arguments (0)"));
	CHECK(is("{{.Id | .Size}}", "ERR 2: col 9: can't pipe into a value (not a function)"));
	CHECK(is("{{\"abc}}", "ERR 2: col 9: unterminated string"));
	CHECK(is("{{range .Id}}{{end}}", "ERR 2: range can't iterate over a string"));

	/* limits */
	{
		char deep[512] = "";

		for (int i = 0; i < 40; i++)
			strcat(deep, "{{if .On}}");
		{
			char *r = run(deep);

			CHECK(r && strstr(r, "nested too deep"));
			free(r);
		}
	}
	{
		struct hypr_tmpl *t;
		struct hypr_err e = { 0 };
		struct hypr_strbuf b = { 0 };
		struct hypr_tmpl_data d = { .dot = data, .max_steps = 100 };

		CHECK(hypr_tmpl_parse("{{range .RepoTags}}{{range $.RepoTags}}{{range $.RepoTags}}"
		    "{{range $.RepoTags}}{{range $.RepoTags}}{{range $.RepoTags}}{{range $.RepoTags}}"
		    "x{{end}}{{end}}{{end}}{{end}}{{end}}{{end}}{{end}}", &t, &e) == 0);
		CHECK(hypr_tmpl_exec(t, &d, &b, &e) < 0 && e.code == 2 && strstr(e.msg, "steps"));
		free(b.s);
		hypr_tmpl_free(t);
		/* iterations count even with nothing in the body */
		b = (struct hypr_strbuf){ 0 };
		d.max_steps = 5;
		CHECK(hypr_tmpl_parse("{{range .RepoTags}}{{range $.RepoTags}}{{end}}{{end}}", &t,
		    &e) == 0);
		CHECK(hypr_tmpl_exec(t, &d, &b, &e) < 0 && strstr(e.msg, "over 5 steps"));
		free(b.s);
		hypr_tmpl_free(t);
	}
	json_decref(data);
	CHECK_DONE();
}
