// Package devenv holds dev.sh, the script behind `make dev`: fakewa, fakelaravel and the gateway
// on loopback with fresh tokens, the URLs and the two commands that pair a demo session printed,
// and everything stopped on Ctrl-C. Its test runs the script with the real binaries, pairs a
// session with the commands it printed, and stops it with SIGINT.
package devenv
