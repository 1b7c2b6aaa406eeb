package backupservice

// DefaultAddress is the backup service's default listen address.
const DefaultAddress = "127.0.0.1:6186"

// Header names and content types of the responses.
const (
	// RecordCountHeader carries the number of records a stream response will hold; the
	// trailer of the stream must agree.
	RecordCountHeader = "Ledgervault-Record-Count"
	// RecordsContentType is the content type of record streams.
	RecordsContentType = "application/x-ledgervault-records"
	// CBORContentType is the content type of proof responses.
	CBORContentType = "application/cbor"
)

// The endpoint names, used in paths (after a leading slash) and as metric labels.
const (
	EndpointDBState                = "db_state"
	EndpointStateItemCount         = "state_item_count"
	EndpointStateSnapshotChunk     = "state_snapshot_chunk"
	EndpointStateRangeProof        = "state_range_proof"
	EndpointStateRootProof         = "state_root_proof"
	EndpointEpochEndingLedgerInfos = "epoch_ending_ledger_infos"
	EndpointTransactions           = "transactions"
	EndpointTransactionRangeProof  = "transaction_range_proof"
)

// MaxErrorMessageSize bounds the body of an error answer: the server cuts longer
// messages, the client reads no more.
const MaxErrorMessageSize = 4 << 10
