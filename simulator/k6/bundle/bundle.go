// Package bundle turns a k6 test script (JavaScript or TypeScript, ES modules or CommonJS, with
// relative imports) into one goja program shared by every VU. esbuild bundles the script's own
// files; k6's built-in modules ("k6", "k6/http", ...) stay external and are provided per VU by the
// runtime through require; the jslib modules scripts import most (k6-summary, k6-utils) resolve to
// built-in equivalents offline; any other remote import fails with a message naming it.
package bundle

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/dop251/goja"
	"github.com/evanw/esbuild/pkg/api"
)

// JSLib module ids the runtime provides in place of remote jslib.k6.io imports.
const (
	JSLibSummary = "jslib:k6-summary"
	JSLibUtils   = "jslib:k6-utils"
)

// ErrRemoteImport reports an import of a remote module that has no built-in equivalent.
var ErrRemoteImport = errors.New("remote module imports are not supported (offline runtime)")

// Bundle is a compiled script.
type Bundle struct {
	// Path is the absolute path of the entry script.
	Path string
	// Dir is the entry script's folder; open() resolves relative paths against it.
	Dir string
	// Program evaluates to a function (module, exports, require) that runs the script's init
	// code in strict mode, as ES modules are (with boundGlobals resolved at compile time).
	Program *goja.Program
	// Source is the bundled JavaScript the program was compiled from (for diagnostics).
	Source string
}

var jslibAliases = []struct {
	pattern *regexp.Regexp
	id      string
}{
	{regexp.MustCompile(`^https://jslib\.k6\.io/k6-summary/[^/]+/index\.js$`), JSLibSummary},
	{regexp.MustCompile(`^https://jslib\.k6\.io/k6-utils/[^/]+/index\.js$`), JSLibUtils},
}

// boundGlobals are the global built-ins a script's loops read most, bound as parameters of a
// function around the bundle. goja resolves a name the script does not declare (Math in
// Math.random(), Infinity) at run time on every use: scope by scope, then a lookup in the global
// object's property map; a VU waking from a sleep finds that map out of the CPU's caches, and in
// k6-cost's inline polls (1000 VUs) these lookups were the interpreter's largest item
// (loadDynamic). A parameter of the enclosing function is resolved when the script is compiled.
// Infinity, NaN and undefined cannot be changed; Math is the global object's own (k6's
// randomSeed replaces its random method, which the script sees), only a script that assigns
// the global binding itself (globalThis.Math = ...) would still read the original in its code.
const boundGlobals = "Math, Infinity, NaN, undefined"

// Load reads, bundles and compiles the script at path.
func Load(path string) (*Bundle, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", path, err)
	}
	if _, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	var remote []string
	plugin := api.Plugin{
		Name: "k6-modules",
		Setup: func(b api.PluginBuild) {
			b.OnResolve(api.OnResolveOptions{Filter: `^https?://`}, func(a api.OnResolveArgs) (api.OnResolveResult, error) {
				for _, alias := range jslibAliases {
					if alias.pattern.MatchString(a.Path) {
						return api.OnResolveResult{Path: alias.id, External: true}, nil
					}
				}
				remote = append(remote, a.Path)
				return api.OnResolveResult{}, fmt.Errorf("%w: %s", ErrRemoteImport, a.Path)
			})
		},
	}
	res := api.Build(api.BuildOptions{
		EntryPoints:   []string{abs},
		AbsWorkingDir: filepath.Dir(abs),
		Bundle:        true,
		Write:         false,
		Format:        api.FormatCommonJS,
		Platform:      api.PlatformNeutral,
		Target:        api.ES2020,
		// goja has no async iteration: let esbuild lower it.
		Supported: map[string]bool{"async-generator": false, "for-await": false},
		External:  []string{"k6", "k6/*"},
		Plugins:   []api.Plugin{plugin},
		LogLevel:  api.LogLevelSilent,
		Charset:   api.CharsetUTF8,
		// goja reads an inline source map at the end (before the wrapper's "})"), so stack
		// traces point at the script's own files and lines.
		Sourcemap: api.SourceMapInline,
	})
	if len(res.Errors) > 0 {
		return nil, fmt.Errorf("bundle %s: %s", path, formatMessages(res.Errors))
	}
	if len(res.OutputFiles) != 1 {
		return nil, fmt.Errorf("bundle %s: esbuild produced %d outputs, want 1", path, len(res.OutputFiles))
	}
	src := string(res.OutputFiles[0].Contents)
	// The wrapper opens on the bundle's first line so that its lines keep their numbers.
	wrapped := "(function (" + boundGlobals + ") { return function (module, exports, require) {\"use strict\";" +
		src + "\n}; })(" + boundGlobals + ")"
	prog, err := goja.Compile(abs, wrapped, true)
	if err != nil {
		return nil, fmt.Errorf("compile %s: %w", path, err)
	}
	return &Bundle{Path: abs, Dir: filepath.Dir(abs), Program: prog, Source: src}, nil
}

func formatMessages(msgs []api.Message) string {
	parts := make([]string, 0, len(msgs))
	for _, m := range msgs {
		s := m.Text
		if m.Location != nil {
			s = fmt.Sprintf("%s:%d:%d: %s", m.Location.File, m.Location.Line, m.Location.Column, m.Text)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}
