//go:build tools

// Package tools pins the Kubernetes control-plane commands that tools/build.sh builds with
// `go build k8s.io/kubernetes/cmd/<name>`; the build tag keeps it out of every build.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
