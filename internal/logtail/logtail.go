// Package logtail reads the last lines of a log file, for error messages that show what a child
// process said before it failed.
package logtail

import (
	"bufio"
	"os"
)

// Last returns the last n lines of the file at path (fewer when it is shorter, nil when it cannot
// be read). Lines longer than 1 MiB are cut by the scanner and end the read.
func Last(path string, n int) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return lines
}
