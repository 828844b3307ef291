// Package deploy holds the gateway's deployment artefacts and the tests that check them: the
// Dockerfile at the repository root, compose.yaml (three replicas in cluster mode, Redis,
// Postgres, haproxy), and the Helm chart helm/wagate. Neither Docker nor Helm runs in these
// tests: the compose file is parsed and every gateway's environment is passed through the
// gateway's own configuration loader; the chart's templates are rendered with text/template and
// the functions they use (deploy_test.go), and the rendered objects are checked.
package deploy
