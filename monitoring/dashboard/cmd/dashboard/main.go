// Command dashboard rewrites monitoring/grafana-dashboard.json from the monitoring/dashboard code
// (make dashboard; run from the module root). Exit codes: 0 written, 1 failed.
package main

import (
	"fmt"
	"os"

	"wagate/monitoring/dashboard"
)

func main() {
	data, err := dashboard.JSON()
	if err == nil {
		err = os.WriteFile(dashboard.FileName, data, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("wrote", dashboard.FileName)
}
