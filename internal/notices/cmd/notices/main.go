// Command notices rewrites THIRD_PARTY_NOTICES.md at the module root from the module graph of the
// shipped binaries (make notices). Exit codes: 0 written, 1 failed.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"wagate/internal/notices"
)

func main() {
	mods, err := notices.Modules(context.Background(), ".", notices.Packages...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	path := filepath.Join(".", notices.FileName)
	if err := os.WriteFile(path, notices.Render(mods), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "notices:", err)
		os.Exit(1)
	}
	fmt.Printf("wrote %s: %d modules\n", path, len(mods))
}
