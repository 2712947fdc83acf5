// gofeed_bench: times Go's gofeed (Debian golang-github-mmcdole-gofeed-dev) over every file of
// the directories given, read into memory first; median of -runs runs in CPU time of the
// process. Prints lines in parse_bench's format:
//
//	median LABEL gofeed files bytes seconds MB/s files/s
//
// Built by bench/parse/run.sh with Debian's packaged sources:
// GO111MODULE=off GOPATH=/usr/share/gocode go build -o DIR/gofeed_bench bench/parse/gofeed/main.go
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/mmcdole/gofeed"
)

func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

func load(dir string) [][]byte {
	var paths []string
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			name := info.Name()
			if !strings.HasPrefix(name, "LICENSE") && !strings.HasPrefix(name, "README") {
				paths = append(paths, p)
			}
		}
		return nil
	})
	sort.Strings(paths)
	var files [][]byte
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			files = append(files, b)
		}
	}
	return files
}

func main() {
	runs := flag.Int("runs", 5, "runs")
	flag.Parse()
	for _, spec := range flag.Args() {
		parts := strings.SplitN(spec, "=", 2)
		if len(parts) != 2 {
			continue
		}
		label, dir := parts[0], parts[1]
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			fmt.Printf("skip %s: %s is missing\n", label, dir)
			continue
		}
		files := load(dir)
		size := 0
		for _, f := range files {
			size += len(f)
		}
		parser := gofeed.NewParser()
		var times []float64
		failures := 0
		for r := 0; r <= *runs; r++ { // the first run warms up
			failures = 0
			start := cpuSeconds()
			for _, f := range files {
				if _, err := parser.Parse(bytes.NewReader(f)); err != nil {
					failures++
				}
			}
			if r > 0 {
				times = append(times, cpuSeconds()-start)
			}
		}
		sort.Float64s(times)
		t := times[len(times)/2]
		fmt.Printf("median %s gofeed %d %d %.6f %.2f %.1f failures=%d\n", label, len(files), size, t,
			float64(size)/t/1e6, float64(len(files))/t, failures)
	}
}
