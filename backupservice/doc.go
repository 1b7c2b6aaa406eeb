// Package backupservice is the protocol of the node's backup service and its typed
// client: HTTP GET endpoints that stream a store's state snapshots, transactions and
// epoch-ending ledger infos as length-prefixed records (package records) and serve the
// proofs (package ledger/proof) that tie them to signed ledger infos. The client has
// request and idle-read timeouts and bounds every answer; it depends on the ledger and
// record packages only, not on the store. The server is package backupservice/server.
// The protocol is specified in docs/backup-service.md.
package backupservice
