//go:build !linux

package fdtable

// Reserve does nothing where the table's growth is not Linux's (see the package doc).
func Reserve(n int) (int, error) { return 0, nil }
