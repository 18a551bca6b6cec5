// dockerfilecheck is `docker build --check` without a Docker engine: it runs BuildKit's own
// Dockerfile front end (parser, instruction parser, lint rules, stage dispatch) on a
// Dockerfile, with base images answered by an offline resolver (an empty image config), so
// syntax errors, unknown stages or flags, undefined variables and every default lint rule are
// reported exactly as BuildKit reports them.
//
// It also reads the build context the way the Docker CLI sends it (.dockerignore patterns
// through moby/patternmatcher) and checks that every COPY/ADD source from the context exists
// and is not excluded.
//
// Prints one JSON document on stdout: lint warnings, the build error if any, the stages with
// the instructions the tests care about, and the context check. Exit status: 0 clean, 1
// warnings, a build error or a missing COPY source, 2 usage error.
//
// Usage: dockerfilecheck [-context DIR] Dockerfile
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	"github.com/moby/buildkit/frontend/dockerfile/dockerignore"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
	digest "github.com/opencontainers/go-digest"
)

// offlineResolver answers every base image with an empty linux image config, so the front end
// can dispatch every stage without a registry.
type offlineResolver struct{}

func (offlineResolver) ResolveImageConfig(_ context.Context, ref string, _ sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},` +
		`"config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}}`)
	return ref, digest.FromString(ref), config, nil
}

type warning struct {
	Rule   string `json:"rule"`
	Detail string `json:"detail"`
	Line   int32  `json:"line"`
}

type command struct {
	Name    string   `json:"name"`
	Args    []string `json:"args"`
	From    string   `json:"from,omitempty"`
	Dest    string   `json:"dest,omitempty"`
	Shell   bool     `json:"shell,omitempty"`
	Line    int      `json:"line"`
	Mounts  []string `json:"flags,omitempty"`
	Heredoc bool     `json:"heredoc,omitempty"`
}

type stage struct {
	Name     string    `json:"name"`
	Base     string    `json:"base"`
	Commands []command `json:"commands"`
}

type copySource struct {
	Stage   string `json:"stage"`
	Source  string `json:"source"`
	Files   int    `json:"files"`
	Ignored bool   `json:"ignored"`
}

type contextReport struct {
	Dir         string       `json:"dir"`
	Patterns    []string     `json:"dockerignore"`
	Files       []string     `json:"files"`
	Bytes       int64        `json:"bytes"`
	CopySources []copySource `json:"copy_sources"`
}

type report struct {
	Warnings   []warning     `json:"warnings"`
	BuildError string        `json:"build_error,omitempty"`
	Stages     []stage       `json:"stages"`
	Context    contextReport `json:"context"`
	OK         bool          `json:"ok"`
}

func main() {
	contextDir := flag.String("context", "", "build context (default: the Dockerfile's folder)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: dockerfilecheck [-context DIR] Dockerfile")
		os.Exit(2)
	}
	dockerfile := flag.Arg(0)
	if *contextDir == "" {
		*contextDir = filepath.Dir(dockerfile)
	}
	source, err := os.ReadFile(dockerfile)
	if err != nil {
		fmt.Fprintf(os.Stderr, "dockerfilecheck: %v\n", err)
		os.Exit(2)
	}
	out := report{Warnings: []warning{}, Stages: []stage{}}

	// The lint report refers to its source by an LLB definition; an empty one will do.
	sourceState := llb.Scratch()
	sourceMap := llb.NewSourceMap(&sourceState, filepath.Base(dockerfile), "Dockerfile", source)
	if sourceMap.Definition, err = sourceState.Marshal(context.Background()); err != nil {
		fmt.Fprintf(os.Stderr, "dockerfilecheck: %v\n", err)
		os.Exit(2)
	}
	lint, err := dockerfile2llb.DockerfileLint(context.Background(), source, dockerfile2llb.ConvertOpt{
		MetaResolver: offlineResolver{},
		SourceMap:    sourceMap,
	})
	if err != nil {
		out.BuildError = err.Error()
	} else {
		for _, w := range lint.Warnings {
			var line int32
			if w.Location != nil && len(w.Location.Ranges) > 0 {
				line = w.Location.Ranges[0].Start.Line
			}
			out.Warnings = append(out.Warnings, warning{Rule: w.RuleName, Detail: w.Detail, Line: line})
		}
		if lint.Error != nil {
			out.BuildError = lint.Error.Message
		}
	}

	ast, err := parser.Parse(bytes.NewReader(source))
	if err == nil {
		var stages []instructions.Stage
		stages, _, err = instructions.Parse(ast.AST, nil)
		if err == nil {
			out.Stages = describe(stages)
		}
	}
	if err != nil && out.BuildError == "" {
		out.BuildError = err.Error()
	}

	out.Context, err = checkContext(*contextDir, out.Stages)
	if err != nil {
		fmt.Fprintf(os.Stderr, "dockerfilecheck: context: %v\n", err)
		os.Exit(2)
	}
	out.OK = len(out.Warnings) == 0 && out.BuildError == ""
	for _, src := range out.Context.CopySources {
		if src.Files == 0 || src.Ignored {
			out.OK = false
		}
	}
	encoder := json.NewEncoder(os.Stdout)
	encoder.SetIndent("", "  ")
	if err := encoder.Encode(out); err != nil {
		fmt.Fprintf(os.Stderr, "dockerfilecheck: %v\n", err)
		os.Exit(2)
	}
	if !out.OK {
		os.Exit(1)
	}
}

func describe(stages []instructions.Stage) []stage {
	result := make([]stage, 0, len(stages))
	for _, s := range stages {
		described := stage{Name: s.Name, Base: s.BaseName, Commands: []command{}}
		for _, raw := range s.Commands {
			c := command{Name: strings.ToLower(raw.Name()), Args: []string{}}
			if locator, ok := raw.(interface{ Location() []parser.Range }); ok && len(locator.Location()) > 0 {
				c.Line = locator.Location()[0].Start.Line
			}
			switch typed := raw.(type) {
			case *instructions.CopyCommand:
				c.Args, c.From, c.Dest = typed.SourcePaths, typed.From, typed.DestPath
				c.Heredoc = len(typed.SourceContents) > 0
			case *instructions.AddCommand:
				c.Args, c.Dest = typed.SourcePaths, typed.DestPath
			case *instructions.RunCommand:
				c.Args, c.Shell, c.Mounts = typed.CmdLine, typed.PrependShell, typed.FlagsUsed
				c.Heredoc = len(typed.Files) > 0
			case *instructions.EntrypointCommand:
				c.Args, c.Shell = typed.CmdLine, typed.PrependShell
			case *instructions.CmdCommand:
				c.Args, c.Shell = typed.CmdLine, typed.PrependShell
			case *instructions.UserCommand:
				c.Args = []string{typed.User}
			case *instructions.WorkdirCommand:
				c.Args = []string{typed.Path}
			case *instructions.ExposeCommand:
				c.Args = typed.Ports
			case *instructions.EnvCommand:
				for _, pair := range typed.Env {
					c.Args = append(c.Args, pair.Key+"="+pair.Value)
				}
			case *instructions.ArgCommand:
				for _, pair := range typed.Args {
					c.Args = append(c.Args, pair.Key)
				}
			case *instructions.LabelCommand:
				for _, pair := range typed.Labels {
					c.Args = append(c.Args, pair.Key+"="+pair.Value)
				}
			}
			described.Commands = append(described.Commands, c)
		}
		result = append(result, described)
	}
	return result
}

// checkContext lists the files the Docker CLI would send (after .dockerignore) and matches
// every COPY/ADD source of the context against them.
func checkContext(dir string, stages []stage) (contextReport, error) {
	result := contextReport{Dir: dir, Patterns: []string{}, Files: []string{}, CopySources: []copySource{}}
	if handle, err := os.Open(filepath.Join(dir, ".dockerignore")); err == nil {
		result.Patterns, err = dockerignore.ReadAll(handle)
		handle.Close()
		if err != nil {
			return result, err
		}
	}
	matcher, err := patternmatcher.New(result.Patterns)
	if err != nil {
		return result, err
	}
	var negations []string
	for _, pattern := range result.Patterns {
		if strings.HasPrefix(pattern, "!") {
			negations = append(negations, strings.TrimPrefix(pattern, "!"))
		}
	}
	err = filepath.WalkDir(dir, func(full string, entry fs.DirEntry, walkErr error) error {
		if walkErr != nil {
			return walkErr
		}
		rel, err := filepath.Rel(dir, full)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		excluded, err := matcher.MatchesOrParentMatches(rel)
		if err != nil {
			return err
		}
		if entry.IsDir() {
			if excluded && !mayReinclude(rel, negations) {
				return filepath.SkipDir
			}
			return nil
		}
		if !excluded {
			info, err := entry.Info()
			if err != nil {
				return err
			}
			result.Files = append(result.Files, rel)
			result.Bytes += info.Size()
		}
		return nil
	})
	if err != nil {
		return result, err
	}
	fromStage := map[string]bool{}
	for _, s := range stages {
		fromStage[strings.ToLower(s.Name)] = true
	}
	for _, s := range stages {
		for _, c := range s.Commands {
			if (c.Name != "copy" && c.Name != "add") || c.From != "" || c.Heredoc {
				continue
			}
			for _, src := range c.Args {
				clean := strings.TrimSuffix(path.Clean(strings.TrimPrefix(src, "/")), "/")
				ignored, err := matcher.MatchesOrParentMatches(clean)
				if err != nil {
					return result, err
				}
				count := 0
				for _, file := range result.Files {
					matched, _ := path.Match(clean, file)
					if matched || file == clean || strings.HasPrefix(file, clean+"/") {
						count++
					}
				}
				result.CopySources = append(result.CopySources, copySource{Stage: s.Name, Source: src, Files: count, Ignored: ignored})
			}
		}
	}
	return result, nil
}

// mayReinclude tells whether a negated pattern could select something inside an excluded folder.
func mayReinclude(dir string, negations []string) bool {
	for _, pattern := range negations {
		pattern = strings.TrimPrefix(path.Clean(pattern), "/")
		if strings.HasPrefix(pattern, "**") || strings.HasPrefix(pattern, dir+"/") || pattern == dir {
			return true
		}
	}
	return false
}
