package api

import (
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The REST API's specification (openapi.yaml) and the code describe the same API: the routes the
// router serves (here and the extra routes the gateway's wiring mounts) are exactly the spec's
// operations, and the error codes the code can answer are exactly the spec's ErrorCode values.
func TestOpenAPISpecMatchesTheRouterAndTheErrorCodes(t *testing.T) {
	spec := readSpec(t, "openapi.yaml")

	codeRoutes := routesInCode(t)
	specRoutes := spec.routes()
	if !slices.Equal(codeRoutes, specRoutes) {
		t.Errorf("routes differ\n  only in the code: %v\n  only in openapi.yaml: %v", minus(codeRoutes, specRoutes), minus(specRoutes, codeRoutes))
	}

	codes := errorCodesInCode(t)
	specCodes := slices.Sorted(slices.Values(spec.Components.Schemas.ErrorCode.Enum))
	if !slices.Equal(codes, specCodes) {
		t.Errorf("error codes differ\n  only in the code: %v\n  only in openapi.yaml: %v", minus(codes, specCodes), minus(specCodes, codes))
	}
	for _, c := range codes {
		if !strings.Contains(spec.Components.Schemas.ErrorCode.Description, "`"+c+"`") {
			t.Errorf("ErrorCode's description does not explain %s", c)
		}
	}
}

type openAPISpec struct {
	Paths      map[string]map[string]yaml.Node `yaml:"paths"`
	Components struct {
		Schemas struct {
			ErrorCode struct {
				Enum        []string `yaml:"enum"`
				Description string   `yaml:"description"`
			} `yaml:"ErrorCode"`
		} `yaml:"schemas"`
	} `yaml:"components"`
}

func readSpec(t *testing.T, path string) openAPISpec {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s openAPISpec
	if err := yaml.Unmarshal(data, &s); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return s
}

// routes lists the spec's operations as "METHOD /path", sorted.
func (s openAPISpec) routes() []string {
	var out []string
	for path, item := range s.Paths {
		for method := range item {
			switch method {
			case "get", "put", "post", "delete", "options", "head", "patch", "trace":
				out = append(out, strings.ToUpper(method)+" "+path)
			}
		}
	}
	slices.Sort(out)
	return out
}

// routesInCode lists the routes as "METHOD /path", sorted: the patterns api.New registers (a
// pattern without a method takes the methods of its a.methods table; the catch-all "/" is no
// route) and the extra Route patterns the gateway's wiring (gateway/app) mounts.
func routesInCode(t *testing.T) []string {
	t.Helper()
	set := map[string]bool{}
	for _, f := range parseDir(t, ".") {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) < 2 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || (sel.Sel.Name != "Handle" && sel.Sel.Name != "HandleFunc") {
				return true
			}
			pattern, ok := stringLit(call.Args[0])
			if !ok || pattern == "/" {
				return true
			}
			if method, path, hasMethod := strings.Cut(pattern, " "); hasMethod {
				set[method+" "+path] = true
				return true
			}
			methods := methodsTable(call.Args[1])
			if len(methods) == 0 {
				t.Errorf("pattern %q has neither a method nor an a.methods table", pattern)
			}
			for _, m := range methods {
				set[m+" "+pattern] = true
			}
			return true
		})
	}
	for _, f := range parseDir(t, filepath.Join("..", "app")) {
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.CompositeLit)
			if !ok {
				return true
			}
			// api.Route{...}, or the elements of []api.Route{{...}} whose type is elided.
			var routes []*ast.CompositeLit
			switch typ := lit.Type.(type) {
			case *ast.SelectorExpr:
				if typ.Sel.Name == "Route" {
					routes = append(routes, lit)
				}
			case *ast.ArrayType:
				if sel, ok := typ.Elt.(*ast.SelectorExpr); ok && sel.Sel.Name == "Route" {
					for _, el := range lit.Elts {
						if r, ok := el.(*ast.CompositeLit); ok && r.Type == nil {
							routes = append(routes, r)
						}
					}
				}
			}
			for _, r := range routes {
				for _, el := range r.Elts {
					if kv, ok := el.(*ast.KeyValueExpr); ok && identName(kv.Key) == "Pattern" {
						if p, ok := stringLit(kv.Value); ok {
							set[p] = true
						} else {
							t.Errorf("an api.Route's Pattern is not a string literal")
						}
					}
				}
			}
			return true
		})
	}
	return slices.Sorted(maps.Keys(set))
}

// methodsTable returns the HTTP methods keyed in the map literal inside an a.methods(...) call.
func methodsTable(e ast.Expr) []string {
	var out []string
	ast.Inspect(e, func(n ast.Node) bool {
		lit, ok := n.(*ast.CompositeLit)
		if !ok {
			return true
		}
		if _, isMap := lit.Type.(*ast.MapType); !isMap {
			return true
		}
		for _, el := range lit.Elts {
			kv, ok := el.(*ast.KeyValueExpr)
			if !ok {
				continue
			}
			if sel, ok := kv.Key.(*ast.SelectorExpr); ok && strings.HasPrefix(sel.Sel.Name, "Method") {
				out = append(out, strings.ToUpper(strings.TrimPrefix(sel.Sel.Name, "Method")))
			}
		}
		return false
	})
	return out
}

// errorCodesInCode lists, sorted, every error code the package answers: the code argument of
// writeError calls and the Code of errorDetail literals, either a string literal or a variable
// whose string-literal assignments in the same function are all taken.
func errorCodesInCode(t *testing.T) []string {
	t.Helper()
	set := map[string]bool{}
	for _, f := range parseDir(t, ".") {
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Body == nil || fn.Name.Name == "writeError" || fn.Name.Name == "WriteError" { // both pass their callers' codes on
				continue
			}
			assigned := stringAssignments(fn.Body)
			add := func(e ast.Expr) {
				if s, ok := stringLit(e); ok {
					set[s] = true
					return
				}
				if name := identName(e); name != "" && len(assigned[name]) > 0 {
					for _, s := range assigned[name] {
						set[s] = true
					}
					return
				}
				t.Errorf("%s: an error code that is neither a string literal nor a variable assigned literals", fn.Name.Name)
			}
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.CallExpr:
					if identName(n.Fun) == "writeError" && len(n.Args) == 4 {
						add(n.Args[2])
					}
				case *ast.CompositeLit:
					if identName(n.Type) == "errorDetail" {
						for _, el := range n.Elts {
							if kv, ok := el.(*ast.KeyValueExpr); ok && identName(kv.Key) == "Code" {
								add(kv.Value)
							}
						}
					}
				}
				return true
			})
		}
	}
	// The extra Routes the gateway's wiring mounts answer their errors with api.WriteError, whose
	// code must be a string literal; an error body written by hand there (a "code" key) would
	// escape this list, so it fails the test.
	for _, f := range parseDir(t, filepath.Join("..", "app")) {
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				if sel, ok := n.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "WriteError" && identName(sel.X) == "api" && len(n.Args) == 4 {
					if s, ok := stringLit(n.Args[2]); ok {
						set[s] = true
					} else {
						t.Errorf("gateway/app: an api.WriteError code that is not a string literal")
					}
				}
			case *ast.BasicLit:
				if s, ok := stringLit(n); ok && s == "code" {
					t.Errorf("gateway/app writes an error body's \"code\" itself: answer errors with api.WriteError so the code is checked against openapi.yaml")
				}
			}
			return true
		})
	}
	return slices.Sorted(maps.Keys(set))
}

// The docs name error codes with their status ("409 `not_in_cluster_mode`"): each must be a code
// of the spec's ErrorCode enum, with the status its description gives it, so a renamed or removed
// code cannot live on in the prose.
func TestTheDocsNameOnlyTheSpecsErrorCodesWithTheirStatus(t *testing.T) {
	spec := readSpec(t, "openapi.yaml")
	status := map[string]string{} // code -> status, from the description's "- `code` (NNN):" lines
	for _, m := range regexp.MustCompile("(?m)^- `([a-z0-9_]+)` \\(([0-9]{3})\\)").FindAllStringSubmatch(spec.Components.Schemas.ErrorCode.Description, -1) {
		status[m[1]] = m[2]
	}
	for _, c := range spec.Components.Schemas.ErrorCode.Enum {
		if status[c] == "" {
			t.Errorf("ErrorCode's description gives %s no status", c)
		}
	}
	docs, err := filepath.Glob(filepath.Join("..", "..", "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	docs = append(docs, filepath.Join("..", "..", "README.md"))
	named := regexp.MustCompile("\\b([45][0-9]{2}) `([a-z][a-z0-9_]*)`")
	seen := 0
	for _, p := range docs {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range named.FindAllStringSubmatch(string(data), -1) {
			seen++
			want, ok := status[m[2]]
			switch {
			case !ok:
				t.Errorf("%s names %s %s, which is no code of openapi.yaml's ErrorCode", p, m[1], m[2])
			case want != m[1]:
				t.Errorf("%s names %s %s; openapi.yaml answers %s with %s", p, m[1], m[2], m[2], want)
			}
		}
	}
	if seen == 0 {
		t.Fatal("no \"NNN `code`\" in the docs: the pattern no longer matches how they name error codes")
	}
}

// stringAssignments maps each variable of body to the string literals assigned to it.
func stringAssignments(body *ast.BlockStmt) map[string][]string {
	out := map[string][]string{}
	ast.Inspect(body, func(n ast.Node) bool {
		as, ok := n.(*ast.AssignStmt)
		if !ok || len(as.Lhs) != len(as.Rhs) {
			return true
		}
		for i, l := range as.Lhs {
			if s, ok := stringLit(as.Rhs[i]); ok && identName(l) != "" {
				out[identName(l)] = append(out[identName(l)], s)
			}
		}
		return true
	})
	return out
}

func parseDir(t *testing.T, dir string) []*ast.File {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	if len(files) == 0 {
		t.Fatalf("no Go files in %s", dir)
	}
	return files
}

func stringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

func identName(e ast.Expr) string {
	if id, ok := e.(*ast.Ident); ok {
		return id.Name
	}
	return ""
}

// minus returns the elements of a that are not in b.
func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}
