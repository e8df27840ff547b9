//go:build tools

// Package tools pins skaffold for test/servers/tools.sh; it is never compiled into anything.
package tools

import _ "github.com/GoogleContainerTools/skaffold/v2/cmd/skaffold"
