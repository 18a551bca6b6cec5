// composecheck loads a Compose file the way `docker compose config` does (compose-go,
// the reference implementation of the Compose specification): it validates the file
// against the Compose spec JSON schema, interpolates variables from the environment and
// the project's .env, checks consistency (every network, volume, secret and service a
// service names exists) and prints the normalized project as JSON on stdout.
//
// Exit status: 0 valid, 1 invalid (the loader's message on stderr), 2 usage error.
// It never contacts a Docker engine or a registry.
//
// Usage: composecheck [-profile NAME]... [-env-file FILE] compose.yaml
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	var profiles listFlag
	var envFiles listFlag
	flag.Var(&profiles, "profile", "profile to enable (repeatable; \"*\" enables all)")
	flag.Var(&envFiles, "env-file", "env file for interpolation (repeatable; default: the project's .env)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: composecheck [-profile NAME]... [-env-file FILE]... compose.yaml")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	options := []cli.ProjectOptionsFn{
		cli.WithOsEnv,
		cli.WithEnvFiles(envFiles...),
		cli.WithDotEnv,
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
		cli.WithProfiles(profiles),
	}
	projectOptions, err := cli.NewProjectOptions([]string{flag.Arg(0)}, options...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "composecheck: %v\n", err)
		os.Exit(1)
	}
	project, err := projectOptions.LoadProject(context.Background())
	if err != nil {
		fmt.Fprintf(os.Stderr, "composecheck: invalid: %v\n", err)
		os.Exit(1)
	}
	out, err := project.MarshalJSON()
	if err != nil {
		fmt.Fprintf(os.Stderr, "composecheck: %v\n", err)
		os.Exit(1)
	}
	os.Stdout.Write(out)
	os.Stdout.Write([]byte("\n"))
}
