package deploy_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// instr is one Dockerfile instruction: its keyword in capitals and the rest of the
// line, continuation lines joined.
type instr struct {
	cmd, args string
	line      int
}

// stage is one FROM and the instructions up to the next.
type stage struct {
	from, name string
	instrs     []instr
	labels     map[string]string
}

type dockerfile struct{ stages []stage }

func (d dockerfile) final() stage { return d.stages[len(d.stages)-1] }

// parseDockerfile reads the repository's Dockerfile.
func parseDockerfile(t *testing.T) dockerfile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := parseDockerfileText(string(b))
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	return d
}

var labelRe = regexp.MustCompile(`([A-Za-z0-9_.-]+)=("(?:[^"\\]|\\.)*"|\S+)`)

// parseDockerfileText splits a Dockerfile into stages. It knows the default escape
// character only (a # escape= directive is refused).
func parseDockerfileText(text string) (dockerfile, error) {
	var d dockerfile
	sc := bufio.NewScanner(strings.NewReader(text))
	var pending string
	start := 0
	for n := 1; sc.Scan(); n++ {
		raw := sc.Text()
		line := strings.TrimSpace(raw)
		if strings.HasPrefix(line, "# escape=") {
			return d, fmt.Errorf("line %d: escape directive not supported", n)
		}
		if strings.HasPrefix(line, "#") || (line == "" && pending == "") {
			continue
		}
		if pending == "" {
			start = n
		}
		if strings.HasSuffix(line, `\`) {
			pending += strings.TrimSuffix(line, `\`) + " "
			continue
		}
		line, pending = pending+line, ""
		cmd, args, _ := strings.Cut(line, " ")
		in := instr{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args), line: start}
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			s := stage{from: f[0], labels: map[string]string{}}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.name = f[2]
			} else if len(f) != 1 {
				return d, fmt.Errorf("line %d: FROM %q", start, in.args)
			}
			d.stages = append(d.stages, s)
		}
		if len(d.stages) == 0 {
			if in.cmd != "ARG" {
				return d, fmt.Errorf("line %d: %s before the first FROM", start, in.cmd)
			}
			continue
		}
		s := &d.stages[len(d.stages)-1]
		if in.cmd == "LABEL" {
			for _, m := range labelRe.FindAllStringSubmatch(in.args, -1) {
				v := m[2]
				if uq, err := strconv.Unquote(v); err == nil {
					v = uq
				}
				s.labels[m[1]] = v
			}
		}
		s.instrs = append(s.instrs, in)
	}
	if pending != "" {
		return d, fmt.Errorf("continuation at the end of the file")
	}
	if len(d.stages) == 0 {
		return d, fmt.Errorf("no FROM")
	}
	return d, sc.Err()
}

// dockerfileUser returns the numeric uid and gid of the final stage's last USER.
func dockerfileUser(t *testing.T, d dockerfile) (int64, int64) {
	t.Helper()
	user := ""
	for _, in := range d.final().instrs {
		if in.cmd == "USER" {
			user = in.args
		}
	}
	u, g, ok := strings.Cut(user, ":")
	uid, err1 := strconv.ParseInt(u, 10, 64)
	gid, err2 := strconv.ParseInt(g, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		t.Fatalf("final stage USER %q: want numeric uid:gid (runAsNonRoot can only check a number)", user)
	}
	return uid, gid
}

var (
	digestRe     = regexp.MustCompile(`@sha256:[0-9a-f]{64}$`)
	versionTagRe = regexp.MustCompile(`:[0-9]+\.[0-9]+\.[0-9]+[A-Za-z0-9._-]*$`)
	goModGoRe    = regexp.MustCompile(`(?m)^go ([0-9]+\.[0-9]+\.[0-9]+)$`)
)

// dockerfileViolations lints a Dockerfile: multi-stage with the binary copied from a
// build stage, every base pinned (by digest, or by a full version tag for the build
// stage), CGO_ENABLED=0 for the go build, a numeric non-root USER in the final stage,
// no ADD (never of a URL), an exec-form ENTRYPOINT, and the build stamping the
// version as the Makefile does.
func dockerfileViolations(d dockerfile, goVersion string) []string {
	var v []string
	bad := func(format string, a ...any) { v = append(v, fmt.Sprintf(format, a...)) }
	if len(d.stages) < 2 {
		bad("not multi-stage: %d FROM", len(d.stages))
		return v
	}
	for i, s := range d.stages {
		final := i == len(d.stages)-1
		switch {
		case digestRe.MatchString(s.from):
		case !final && versionTagRe.MatchString(s.from):
		default:
			bad("FROM %s: not pinned (a digest; a build stage may use a full version tag)", s.from)
		}
		for _, in := range s.instrs {
			if in.cmd == "ADD" {
				bad("line %d: ADD %s (COPY for files; never fetch URLs in a build)", in.line, in.args)
			}
		}
	}
	build := d.stages[0]
	if !strings.Contains(build.from, "golang:"+goVersion) {
		bad("build stage FROM %s: want go.mod's Go %s", build.from, goVersion)
	}
	var cgoOff, built, stamped bool
	for _, in := range build.instrs {
		if (in.cmd == "ENV" || in.cmd == "ARG") && regexp.MustCompile(`(^|\s)CGO_ENABLED=0(\s|$)`).MatchString(in.args) {
			cgoOff = true
		}
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			built = true
			cgoOff = cgoOff || strings.Contains(in.args, "CGO_ENABLED=0")
			stamped = strings.Contains(in.args, "-trimpath")
			for _, x := range []string{"Version", "Commit", "Date"} {
				stamped = stamped && strings.Contains(in.args, "internal/buildinfo."+x+"=")
			}
		}
	}
	if !built || !cgoOff {
		bad("build stage: go build with CGO_ENABLED=0 (a static binary) required")
	}
	if !stamped {
		bad("build stage: go build must use -trimpath and set buildinfo Version, Commit and Date")
	}
	f := d.final()
	var copied bool
	var user, entry string
	for _, in := range f.instrs {
		switch in.cmd {
		case "COPY":
			copied = copied || strings.HasPrefix(in.args, "--from="+build.name+" ")
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			entry = in.args
		case "RUN":
			bad("final stage: RUN %s (the base has no shell; build in the build stage)", in.args)
		}
	}
	if build.name == "" || !copied {
		bad("final stage must COPY --from=<named build stage>")
	}
	u, g, _ := strings.Cut(user, ":")
	uid, err1 := strconv.Atoi(u)
	_, err2 := strconv.Atoi(g)
	if err1 != nil || err2 != nil || uid == 0 {
		bad("final stage USER %q: want a numeric non-root uid:gid", user)
	}
	var argv []string
	if err := json.Unmarshal([]byte(entry), &argv); err != nil || len(argv) == 0 || !strings.HasPrefix(argv[0], "/") {
		bad("ENTRYPOINT %q: want exec form with an absolute path, [\"/usr/local/bin/ledgervault\"]", entry)
	}
	return v
}

// goModVersion returns the go directive of go.mod.
func goModVersion(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := goModGoRe.FindSubmatch(b)
	if m == nil {
		t.Fatal("go.mod: no go directive with a full version")
	}
	return string(m[1])
}

// TestDockerfileLint lints the repository's Dockerfile (see dockerfileViolations) and
// checks that .dockerignore keeps the git directory and build output out of the context.
func TestDockerfileLint(t *testing.T) {
	for _, v := range dockerfileViolations(parseDockerfile(t), goModVersion(t)) {
		t.Error(v)
	}
	ign, err := os.ReadFile(filepath.Join(repoRoot(t), ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{".git", ".cache", "bin"} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(p) + `$`).Match(ign) {
			t.Errorf(".dockerignore lacks %s", p)
		}
	}
}

// TestDockerfileLintRejects feeds the lint Dockerfiles that break one rule each.
func TestDockerfileLintRejects(t *testing.T) {
	good, err := os.ReadFile(filepath.Join(repoRoot(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	goVersion := goModVersion(t)
	cases := map[string]func(string) string{
		"single stage": func(s string) string {
			return "FROM gcr.io/distroless/static-debian12@sha256:" + strings.Repeat("a", 64) + "\nUSER 65532:65532\nENTRYPOINT [\"/x\"]\n"
		},
		"unpinned final base": func(s string) string {
			return regexp.MustCompile(`(?m)^(FROM gcr\.io/\S+?)@sha256:[0-9a-f]+`).ReplaceAllString(s, "$1")
		},
		"latest build base": func(s string) string {
			return strings.Replace(s, "golang:"+goVersion+"-bookworm", "golang:latest", 1)
		},
		"cgo on":     func(s string) string { return strings.ReplaceAll(s, "CGO_ENABLED=0", "CGO_ENABLED=1") },
		"root user":  func(s string) string { return strings.Replace(s, "USER 65532:65532", "USER root", 1) },
		"user named": func(s string) string { return strings.Replace(s, "USER 65532:65532", "USER nonroot", 1) },
		"no user":    func(s string) string { return strings.Replace(s, "USER 65532:65532", "", 1) },
		"add url": func(s string) string {
			return strings.Replace(s, "COPY go.mod", "ADD https://example.invalid/x /x\nCOPY go.mod", 1)
		},
		"shell entrypoint": func(s string) string {
			return regexp.MustCompile(`(?m)^ENTRYPOINT .*$`).ReplaceAllString(s, "ENTRYPOINT /usr/local/bin/ledgervault")
		},
		"not stamped": func(s string) string { return strings.ReplaceAll(s, "-trimpath", "") },
		"go version": func(s string) string {
			return strings.Replace(s, "golang:"+goVersion, "golang:1.20.1", 1)
		},
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			text := mutate(string(good))
			if text == string(good) {
				t.Fatal("the mutation changed nothing: the Dockerfile no longer has what it edits")
			}
			d, err := parseDockerfileText(text)
			if err != nil {
				t.Fatal(err)
			}
			if v := dockerfileViolations(d, goVersion); len(v) == 0 {
				t.Error("not reported")
			} else {
				t.Logf("reported: %v", v)
			}
		})
	}
}
