//go:build tools

// Package tools pins promtool for test/servers/tools.sh; it is never compiled into anything.
package tools

import _ "github.com/prometheus/prometheus/cmd/promtool"
