//go:build tools

// Package tools pins kubeconform for test/servers/tools.sh; it is never compiled into anything.
package tools

import _ "github.com/yannh/kubeconform/cmd/kubeconform"
