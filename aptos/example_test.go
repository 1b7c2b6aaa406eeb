package aptos_test

import (
	"context"
	"fmt"

	"github.com/ledgervault/ledgervault/aptos"
)

// The epoch-ending records and state.proof bytes come from the backup-cli format reader;
// here they are placeholders.
func ExampleVerifyEpochChain() {
	ctx := context.Background()
	trusted, err := aptos.ParseWaypoint("0:56d944dedbf7df290e9da5cb5a3fa73dec142d74dfa371ff868ac8af94b9bfb6")
	if err != nil {
		panic(err)
	}
	var records [][]byte    // each a BCS LedgerInfoWithSignatures, epochs in order
	var manifestWP []string // the waypoint each record's manifest lists
	src := make(aptos.SliceSource, len(records))
	for i, r := range records {
		w, err := aptos.ParseWaypoint(manifestWP[i])
		if err != nil {
			panic(err)
		}
		src[i] = aptos.Ending{Source: fmt.Sprintf("chunk record %d", i), Record: r, ManifestWaypoint: &w}
	}
	history, stats, err := aptos.VerifyEpochChain(ctx, trusted, &src, aptos.ChainOptions{})
	if err != nil {
		fmt.Println("not verified:", err)
		return
	}
	fmt.Printf("epochs %d-%d, %d signatures, domain %s\n",
		history.FirstEpoch(), history.LastEpoch(), stats.Signatures, history.Domain())

	var stateProof []byte // a snapshot's state.proof
	root, _ := aptos.ParseHashValue("a3ebf4ab48dddf9c049e5281208a853ee4a5ba49492378b735a836cb5dc54eca")
	if _, err := history.VerifyStateSnapshot(stateProof, 129152, root); err != nil {
		fmt.Println("snapshot not verified:", err)
	}
}
