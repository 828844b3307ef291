package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	"go.yaml.in/yaml/v3"

	"wagate/gateway/config"
)

// ---- compose.yaml ----

func readYAML(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := yaml.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}

func m(v any) map[string]any { out, _ := v.(map[string]any); return out }

func strs(v any) []string {
	var out []string
	for _, e := range v.([]any) {
		out = append(out, fmt.Sprint(e))
	}
	return out
}

// interpolate resolves compose's ${NAME:-default} and ${NAME} from env.
func interpolate(s string, env map[string]string) string {
	return regexp.MustCompile(`\$\{([A-Z_]+)(:-([^}]*))?\}`).ReplaceAllStringFunc(s, func(ref string) string {
		g := regexp.MustCompile(`\$\{([A-Z_]+)(:-([^}]*))?\}`).FindStringSubmatch(ref)
		if v, ok := env[g[1]]; ok && v != "" {
			return v
		}
		return g[3]
	})
}

// loadGateway runs the gateway's configuration loader on an environment, reading files from
// files; it is what a replica does at start.
func loadGateway(env map[string]string, files map[string]string) (config.Config, error) {
	loaded, err := config.Load(config.Options{
		Args:   nil,
		Getenv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		Environ: func() []string {
			var out []string
			for _, k := range slices.Sorted(maps.Keys(env)) {
				out = append(out, k+"="+env[k])
			}
			return out
		},
		ReadFile: func(p string) ([]byte, error) {
			if v, ok := files[p]; ok {
				return []byte(v), nil
			}
			return nil, fmt.Errorf("open %s: %w", p, os.ErrNotExist)
		},
		Stdout: io.Discard,
		Output: io.Discard,
	})
	return loaded.Config, err
}

// fakeSecrets are what the secret files hold in the tests.
var fakeSecrets = map[string]string{
	"api_token":         "api-token-0123456789abcdef",
	"laravel_token":     "laravel-token-0123456789",
	"store_dsn":         "postgres://wagate:pw@postgres:5432/wagate?sslmode=disable",
	"postgres_password": "pw",
}

func TestComposeRunsThreeClusterReplicasTheGatewayAccepts(t *testing.T) {
	doc := readYAML(t, "compose.yaml")
	services := m(doc["services"])
	declaredSecrets := m(doc["secrets"])

	// Redis keeps what it is told and never evicts it.
	redisCmd := strings.Join(strs(m(services["redis"])["command"]), " ")
	for _, want := range []string{"--appendonly yes", "--maxmemory-policy noeviction"} {
		if !strings.Contains(redisCmd, want) {
			t.Errorf("redis command %q lacks %q", redisCmd, want)
		}
	}

	var gateways []string
	ids, advertised := map[string]bool{}, map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(services)) {
		if !strings.HasPrefix(name, "gateway-") {
			continue
		}
		gateways = append(gateways, name)
		svc := m(services[name])
		env := map[string]string{}
		for k, v := range m(svc["environment"]) {
			env[k] = interpolate(fmt.Sprint(v), nil)
		}
		mounted := strs(svc["secrets"])
		files := map[string]string{}
		for _, s := range mounted {
			if _, ok := declaredSecrets[s]; !ok {
				t.Errorf("%s mounts secret %s that compose.yaml does not declare", name, s)
			}
			files["/run/secrets/"+s] = fakeSecrets[s]
		}
		for k, v := range env {
			if strings.HasSuffix(k, "_FILE") && files[v] == "" {
				t.Errorf("%s: %s=%s is not a secret the service mounts", name, k, v)
			}
		}
		cfg, err := loadGateway(env, files)
		if err != nil {
			t.Fatalf("%s: the gateway refuses its environment:\n%v", name, err)
		}
		if !cfg.Cluster || cfg.Mode != "batch" {
			t.Errorf("%s: cluster %v, mode %q", name, cfg.Cluster, cfg.Mode)
		}
		if cfg.APIToken != fakeSecrets["api_token"] || cfg.StoreDSN != fakeSecrets["store_dsn"] || cfg.LaravelToken != fakeSecrets["laravel_token"] {
			t.Errorf("%s: secrets not read from their files", name)
		}
		if cfg.AdvertiseURL != "http://"+name+":4000" {
			t.Errorf("%s advertises %q: the other replicas reach it as %s:4000", name, cfg.AdvertiseURL, name)
		}
		if ids[cfg.GatewayID] || advertised[cfg.AdvertiseURL] {
			t.Errorf("%s: gateway id %q or advertise URL %q used twice", name, cfg.GatewayID, cfg.AdvertiseURL)
		}
		ids[cfg.GatewayID], advertised[cfg.AdvertiseURL] = true, true

		grace, err := time.ParseDuration(fmt.Sprint(svc["stop_grace_period"]))
		if err != nil || grace <= cfg.ShutdownTimeout {
			t.Errorf("%s: stop_grace_period %v must exceed the shutdown timeout %v (%v)", name, svc["stop_grace_period"], cfg.ShutdownTimeout, err)
		}
		if hc := strings.Join(strs(m(svc["healthcheck"])["test"]), " "); hc != "CMD /usr/local/bin/gateway healthcheck" {
			t.Errorf("%s healthcheck %q", name, hc)
		}
		for _, dep := range []string{"redis", "postgres"} {
			if c := m(m(svc["depends_on"])[dep])["condition"]; c != "service_healthy" {
				t.Errorf("%s starts before %s is healthy (%v)", name, dep, c)
			}
		}
	}
	if len(gateways) != 3 {
		t.Fatalf("gateway services %v, want 3", gateways)
	}

	// haproxy balances over exactly these replicas, checking readiness.
	cfg, err := os.ReadFile("haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	var servers []string
	for _, line := range strings.Split(string(cfg), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "server" {
			if f[2] != f[1]+":4000" {
				t.Errorf("haproxy server %s points at %s", f[1], f[2])
			}
			servers = append(servers, f[1])
		}
	}
	if !slices.Equal(servers, gateways) {
		t.Errorf("haproxy servers %v, compose gateways %v", servers, gateways)
	}
	if !strings.Contains(string(cfg), "option httpchk GET /readyz") {
		t.Error("haproxy does not check /readyz")
	}
}

// ---- Dockerfile ----

func TestDockerfileBuildsAStaticNonRootImage(t *testing.T) {
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goLine := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(string(gomod))
	if want := "ARG GO_VERSION=" + goLine[1]; !strings.Contains(df, want) {
		t.Errorf("the build stage's Go is not go.mod's (%s): want %q", goLine[1], want)
	}
	for _, want := range []string{"CGO_ENABLED=0", "./gateway/cmd/gateway", `ENTRYPOINT ["/usr/local/bin/gateway"]`, "gcr.io/distroless/static"} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	users := regexp.MustCompile(`(?m)^USER (\S+)`).FindAllStringSubmatch(df, -1)
	if len(users) == 0 {
		t.Fatal("the image runs as root: no USER")
	}
	if u := users[len(users)-1][1]; strings.HasPrefix(u, "0") || strings.HasPrefix(u, "root") {
		t.Errorf("the image runs as %s", u)
	}
	if !strings.HasPrefix(df, "# syntax=") {
		t.Error("the syntax directive must be the first line")
	}
}

// ---- the Helm chart ----

// helmFuncs are the template functions the chart may use, with Helm's meaning; a template using
// any other fails to parse here.
func helmFuncs(root **template.Template) template.FuncMap {
	return template.FuncMap{
		"include": func(name string, data any) (string, error) {
			var buf bytes.Buffer
			err := (*root).ExecuteTemplate(&buf, name, data)
			return buf.String(), err
		},
		"toYaml": func(v any) (string, error) {
			b, err := yaml.Marshal(v)
			return strings.TrimSuffix(string(b), "\n"), err
		},
		"nindent": func(n int, s string) string {
			pad := strings.Repeat(" ", n)
			return "\n" + pad + strings.ReplaceAll(s, "\n", "\n"+pad)
		},
		"quote": func(v any) string { return strconv.Quote(fmt.Sprint(v)) },
		"default": func(d, v any) any {
			if v == nil || v == "" || v == 0 || v == false {
				return d
			}
			return v
		},
		"required": func(msg string, v any) (any, error) {
			if v == nil || v == "" {
				return nil, errors.New(msg)
			}
			return v, nil
		},
		"trunc": func(n int, s string) string {
			if len(s) > n {
				return s[:n]
			}
			return s
		},
		"trimSuffix": func(suffix, s string) string { return strings.TrimSuffix(s, suffix) },
	}
}

const chartDir = "helm/wagate"

// renderChart renders every template of the chart with values.yaml merged with overrides, the
// way `helm template wagate deploy/helm/wagate` does, and returns the rendered objects.
func renderChart(t *testing.T, overrides map[string]any) ([]map[string]any, error) {
	t.Helper()
	values := readYAML(t, filepath.Join(chartDir, "values.yaml"))
	merge(values, overrides)
	chart := readYAML(t, filepath.Join(chartDir, "Chart.yaml"))
	data := map[string]any{
		"Values":  values,
		"Release": map[string]any{"Name": "wagate", "Namespace": "messaging", "Service": "Helm"},
		"Chart":   map[string]any{"Name": chart["name"], "Version": chart["version"], "AppVersion": chart["appVersion"]},
	}
	var root *template.Template
	root = template.New("chart").Funcs(helmFuncs(&root)).Option("missingkey=error")
	paths, err := filepath.Glob(filepath.Join(chartDir, "templates", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := root.New(filepath.Base(p)).Parse(string(b)); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
	}
	var objects []map[string]any
	for _, p := range paths {
		name := filepath.Base(p)
		if strings.HasPrefix(name, "_") || !strings.HasSuffix(name, ".yaml") {
			continue
		}
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, name, data); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		dec := yaml.NewDecoder(&buf)
		for {
			var obj map[string]any
			err := dec.Decode(&obj)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s renders invalid YAML: %v\n%s", name, err, buf.String())
			}
			if obj == nil {
				continue
			}
			for _, k := range []string{"apiVersion", "kind"} {
				if obj[k] == nil {
					t.Fatalf("%s renders an object without %s: %v", name, k, obj)
				}
			}
			if m(obj["metadata"])["name"] == nil {
				t.Fatalf("%s renders a %s without a name", name, obj["kind"])
			}
			objects = append(objects, obj)
		}
	}
	return objects, nil
}

func merge(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				merge(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

func find(objs []map[string]any, kind string) []map[string]any {
	var out []map[string]any
	for _, o := range objs {
		if o["kind"] == kind {
			out = append(out, o)
		}
	}
	return out
}

func path(v any, keys ...string) any {
	for _, k := range keys {
		v = m(v)[k]
	}
	return v
}

// podEnv resolves a container's env the way the kubelet does for a pod named pod with IP ip:
// fieldRefs, secretKeyRefs (from secret) and $(VAR) references to variables defined earlier.
func podEnv(t *testing.T, container map[string]any, pod, ip string, secret map[string]string) map[string]string {
	t.Helper()
	env := map[string]string{}
	ref := regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)
	for _, e := range container["env"].([]any) {
		e := m(e)
		name := e["name"].(string)
		switch {
		case e["value"] != nil:
			env[name] = ref.ReplaceAllStringFunc(fmt.Sprint(e["value"]), func(s string) string {
				v, ok := env[ref.FindStringSubmatch(s)[1]]
				if !ok {
					t.Errorf("%s refers to %s, not defined before it", name, s)
				}
				return v
			})
		case path(e, "valueFrom", "fieldRef") != nil:
			switch f := path(e, "valueFrom", "fieldRef", "fieldPath"); f {
			case "metadata.name":
				env[name] = pod
			case "status.podIP":
				env[name] = ip
			default:
				t.Fatalf("%s: unexpected fieldRef %v", name, f)
			}
		case path(e, "valueFrom", "secretKeyRef") != nil:
			key := path(e, "valueFrom", "secretKeyRef", "key").(string)
			v, ok := secret[key]
			if !ok {
				t.Fatalf("%s: secret key %s not in the secret", name, key)
			}
			env[name] = v
		default:
			t.Fatalf("%s has neither a value nor a valueFrom", name)
		}
	}
	return env
}

var chartSecret = map[string]string{
	"api-token":     "api-token-0123456789abcdef",
	"laravel-token": "laravel-token-0123456789",
	"redis-url":     "redis://redis.messaging.svc:6379/0",
	"store-dsn":     "postgres://wagate:pw@postgres.messaging.svc:5432/wagate",
}

func TestHelmChartRendersAClusterTheGatewayAccepts(t *testing.T) {
	objs, err := renderChart(t, map[string]any{"secrets": map[string]any{"existingSecret": "wagate-secrets"}})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, o := range objs {
		kinds[o["kind"].(string)]++
	}
	if want := map[string]int{"StatefulSet": 1, "Service": 2, "PodDisruptionBudget": 1}; !maps.Equal(kinds, want) {
		t.Fatalf("rendered %v, want %v (no Secret with existingSecret, no ServiceMonitor by default)", kinds, want)
	}
	sts := find(objs, "StatefulSet")[0]
	spec := m(sts["spec"])
	podLabels := m(path(spec, "template", "metadata", "labels"))
	if !maps.Equal(m(path(spec, "selector", "matchLabels")), podLabels) {
		t.Error("the StatefulSet's selector is not its pods' labels")
	}
	if spec["replicas"] != 3 || spec["podManagementPolicy"] != "Parallel" || path(spec, "updateStrategy", "type") != "RollingUpdate" {
		t.Errorf("replicas %v, policy %v, update %v", spec["replicas"], spec["podManagementPolicy"], path(spec, "updateStrategy", "type"))
	}

	// Services: one for clients, one headless naming the StatefulSet's pods; both select the pods.
	var headless string
	for _, svc := range find(objs, "Service") {
		if !maps.Equal(m(path(svc, "spec", "selector")), podLabels) {
			t.Errorf("service %v does not select the gateway pods", path(svc, "metadata", "name"))
		}
		if path(svc, "spec", "clusterIP") == "None" {
			headless = path(svc, "metadata", "name").(string)
		}
	}
	if headless == "" || spec["serviceName"] != headless {
		t.Errorf("serviceName %v, headless service %q", spec["serviceName"], headless)
	}
	pdb := find(objs, "PodDisruptionBudget")[0]
	if !maps.Equal(m(path(pdb, "spec", "selector", "matchLabels")), podLabels) || path(pdb, "spec", "maxUnavailable") != 1 {
		t.Errorf("PDB %v", pdb["spec"])
	}

	pod := m(path(spec, "template", "spec"))
	if path(pod, "securityContext", "runAsNonRoot") != true {
		t.Error("pods may run as root")
	}
	if len(pod["topologySpreadConstraints"].([]any)) == 0 {
		t.Error("no topology spread")
	}
	containers := pod["containers"].([]any)
	if len(containers) != 1 {
		t.Fatalf("%d containers", len(containers))
	}
	c := m(containers[0])
	if img := c["image"]; img != "wagate/gateway:0.1.0" {
		t.Errorf("image %v: the tag defaults to the chart's appVersion", img)
	}
	if p := path(c, "readinessProbe", "httpGet", "path"); p != "/readyz" {
		t.Errorf("readiness probe %v", p)
	}
	if p := path(c, "livenessProbe", "httpGet", "path"); p != "/healthz" {
		t.Errorf("liveness probe %v", p)
	}
	if path(c, "resources", "limits", "memory") == nil || path(c, "resources", "requests", "cpu") == nil {
		t.Errorf("resources %v", c["resources"])
	}

	// Each replica's environment, resolved as the kubelet would, passes the gateway's own check:
	// its id is its pod name, it advertises its pod IP, secrets come from the Secret.
	for i, ip := range []string{"10.1.0.7", "10.1.3.9", "10.1.5.2"} {
		name := fmt.Sprintf("wagate-wagate-%d", i)
		env := podEnv(t, c, name, ip, chartSecret)
		for _, e := range c["env"].([]any) {
			e := m(e)
			if k := e["name"].(string); slices.Contains([]string{"WAGATE_API_TOKEN", "WAGATE_LARAVEL_TOKEN", "WAGATE_REDIS_URL", "WAGATE_STORE_DSN"}, k) && e["value"] != nil {
				t.Errorf("%s is written into the manifest instead of coming from the Secret", k)
			}
		}
		cfg, err := loadGateway(env, nil)
		if err != nil {
			t.Fatalf("replica %s: the gateway refuses its environment:\n%v", name, err)
		}
		if !cfg.Cluster || cfg.GatewayID != name || cfg.AdvertiseURL != "http://"+ip+":4000" || cfg.ClusterShards != 1024 {
			t.Errorf("replica %s: cluster %v, id %q, advertise %q, shards %d", name, cfg.Cluster, cfg.GatewayID, cfg.AdvertiseURL, cfg.ClusterShards)
		}
		grace := time.Duration(pod["terminationGracePeriodSeconds"].(int)) * time.Second
		if grace <= cfg.ShutdownTimeout {
			t.Errorf("terminationGracePeriodSeconds %v must exceed the shutdown timeout %v", grace, cfg.ShutdownTimeout)
		}
		limit, err1 := quantity(path(c, "resources", "limits", "memory").(string))
		goLimit, err2 := quantity(env["GOMEMLIMIT"])
		if err1 != nil || err2 != nil || goLimit > limit*9/10+limit/100 || goLimit < limit*8/10 {
			t.Errorf("GOMEMLIMIT %s should be about 90%% of the memory limit %v (%v %v)", env["GOMEMLIMIT"], path(c, "resources", "limits", "memory"), err1, err2)
		}
	}
}

// quantity parses the binary-suffixed sizes used here (Mi, Gi; GOMEMLIMIT's MiB, GiB).
func quantity(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"MiB", 1 << 20}, {"GiB", 1 << 30}, {"Mi", 1 << 20}, {"Gi", 1 << 30}}
	for _, u := range units {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			return v * u.mult, err
		}
	}
	return 0, fmt.Errorf("size %q", s)
}

func TestHelmChartOptionalObjects(t *testing.T) {
	t.Run("created secret holds every key the pods read", func(t *testing.T) {
		objs, err := renderChart(t, map[string]any{"secrets": map[string]any{"create": true,
			"apiToken": chartSecret["api-token"], "laravelToken": chartSecret["laravel-token"],
			"redisURL": chartSecret["redis-url"], "storeDSN": chartSecret["store-dsn"]}})
		if err != nil {
			t.Fatal(err)
		}
		secrets := find(objs, "Secret")
		if len(secrets) != 1 {
			t.Fatalf("%d secrets", len(secrets))
		}
		data := m(secrets[0]["stringData"])
		c := m(path(find(objs, "StatefulSet")[0], "spec", "template", "spec").(map[string]any)["containers"].([]any)[0])
		for _, e := range c["env"].([]any) {
			ref := m(path(e, "valueFrom", "secretKeyRef"))
			if ref == nil {
				continue
			}
			if ref["name"] != path(secrets[0], "metadata", "name") || data[ref["key"].(string)] != chartSecret[ref["key"].(string)] {
				t.Errorf("%v reads %v, not in the created secret", path(e, "name"), ref)
			}
		}
	})
	t.Run("created secret without a value is refused", func(t *testing.T) {
		_, err := renderChart(t, map[string]any{"secrets": map[string]any{"create": true, "apiToken": "x", "laravelToken": "y", "redisURL": "redis://r"}})
		if err == nil || !strings.Contains(err.Error(), "secrets.storeDSN is required") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("service monitor scrapes the client service only", func(t *testing.T) {
		objs, err := renderChart(t, map[string]any{"serviceMonitor": map[string]any{"enabled": true}, "secrets": map[string]any{"existingSecret": "s"}})
		if err != nil {
			t.Fatal(err)
		}
		sm := find(objs, "ServiceMonitor")
		if len(sm) != 1 {
			t.Fatalf("%d service monitors", len(sm))
		}
		sel := m(path(sm[0], "spec", "selector", "matchLabels"))
		var matched []any
		for _, svc := range find(objs, "Service") {
			labels := m(path(svc, "metadata", "labels"))
			ok := true
			for k, v := range sel {
				ok = ok && labels[k] == v
			}
			if ok {
				matched = append(matched, path(svc, "metadata", "name"))
			}
		}
		if len(matched) != 1 || path(m(path(sm[0], "spec").(map[string]any)["endpoints"].([]any)[0]), "path") != "/metrics" {
			t.Fatalf("the monitor selects services %v", matched)
		}
	})
	t.Run("extra settings and replicas", func(t *testing.T) {
		objs, err := renderChart(t, map[string]any{"replicaCount": 5, "secrets": map[string]any{"existingSecret": "s"},
			"gateway": map[string]any{"extraEnv": map[string]any{"WAGATE_BATCH_SIZE": 200}}})
		if err != nil {
			t.Fatal(err)
		}
		spec := m(find(objs, "StatefulSet")[0]["spec"])
		c := m(path(spec, "template", "spec").(map[string]any)["containers"].([]any)[0])
		cfg, err := loadGateway(podEnv(t, c, "wagate-wagate-4", "10.1.0.1", chartSecret), nil)
		if err != nil || spec["replicas"] != 5 || cfg.Batch.Size != 200 {
			t.Fatalf("replicas %v, batch size %d, %v", spec["replicas"], cfg.Batch.Size, err)
		}
	})
	t.Run("a typo in extra settings is the gateway's error", func(t *testing.T) {
		objs, err := renderChart(t, map[string]any{"secrets": map[string]any{"existingSecret": "s"},
			"gateway": map[string]any{"extraEnv": map[string]any{"WAGATE_BATCH_SIZ": 200}}})
		if err != nil {
			t.Fatal(err)
		}
		c := m(path(find(objs, "StatefulSet")[0], "spec", "template", "spec").(map[string]any)["containers"].([]any)[0])
		if _, err := loadGateway(podEnv(t, c, "p-0", "10.1.0.1", chartSecret), nil); err == nil || !strings.Contains(err.Error(), "WAGATE_BATCH_SIZ") {
			t.Fatalf("got %v", err)
		}
	})
}
