// Command etcd is the etcd server, built from go.etcd.io/etcd/server/v3 (its own go.mod carries
// local replace directives, so `go install` refuses it; this scratch module restates them).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
