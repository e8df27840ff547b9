//go:build tools

// Package tools pins helm for test/servers/tools.sh; it is never compiled into anything.
package tools

import _ "helm.sh/helm/v3/cmd/helm"
