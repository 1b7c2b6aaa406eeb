package txn

import (
	"encoding/hex"

	"github.com/ledgervault/ledgervault/aptos"
)

// HashValue is a 32-byte SHA3-256 digest, serialized in BCS as 32 bytes without a length
// (the same type as package aptos's).
type HashValue = aptos.HashValue

// Address is a 32-byte Move account address, serialized in BCS as 32 bytes without a length.
type Address [32]byte

// String returns the address in lower-case hex with a 0x prefix.
func (a Address) String() string { return "0x" + hex.EncodeToString(a[:]) }

// Record is one decoded transaction-backup record: the BCS tuple
// (Transaction, TransactionInfo, Vec<ContractEvent>, WriteSet).
//
// Byte slices inside a Record alias the input it was decoded from.
type Record struct {
	// Transaction is the transaction itself.
	Transaction Transaction
	// Info is the transaction info the accumulator commits to.
	Info TransactionInfo
	// Events are the events the transaction emitted, in order.
	Events []ContractEvent
	// WriteSet is the set of state changes the transaction made.
	WriteSet WriteSet

	// Exact BCS bytes of each part, for hashing.
	txnBytes, infoBytes, writeSetBytes []byte
	eventBytes                         [][]byte
}

// TransactionKind is the variant of a Transaction.
type TransactionKind uint8

// The Transaction variants of the Aptos framework in 2023 (variant index order).
const (
	// KindUser is UserTransaction(SignedTransaction).
	KindUser TransactionKind = iota
	// KindGenesis is GenesisTransaction(WriteSetPayload).
	KindGenesis
	// KindBlockMetadata is BlockMetadata(BlockMetadata).
	KindBlockMetadata
	// KindStateCheckpoint is StateCheckpoint(HashValue).
	KindStateCheckpoint
	numTransactionKinds
)

var transactionKindNames = [...]string{"UserTransaction", "GenesisTransaction", "BlockMetadata", "StateCheckpoint"}

// String returns the Rust variant name.
func (k TransactionKind) String() string {
	if int(k) < len(transactionKindNames) {
		return transactionKindNames[k]
	}
	return "TransactionKind(?)"
}

// Transaction is the Aptos Transaction enum; exactly the field of its Kind is set.
type Transaction struct {
	// Kind says which variant this is.
	Kind TransactionKind
	// User is set for KindUser.
	User *SignedTransaction
	// Genesis is set for KindGenesis.
	Genesis *WriteSetPayload
	// BlockMetadata is set for KindBlockMetadata.
	BlockMetadata *BlockMetadata
	// StateCheckpoint is the block id of a KindStateCheckpoint transaction.
	StateCheckpoint HashValue
}

// SignedTransaction is a user transaction with its authenticator.
type SignedTransaction struct {
	// Raw is the signed part.
	Raw RawTransaction
	// Authenticator carries the public keys and signatures.
	Authenticator TransactionAuthenticator
}

// RawTransaction is the part of a user transaction its sender signs.
type RawTransaction struct {
	// Sender is the sending account.
	Sender Address
	// SequenceNumber is the sender's sequence number this transaction uses.
	SequenceNumber uint64
	// Payload is what the transaction runs.
	Payload TransactionPayload
	// MaxGasAmount is the most gas the transaction may use.
	MaxGasAmount uint64
	// GasUnitPrice is the price per gas unit.
	GasUnitPrice uint64
	// ExpirationTimestampSecs is when the transaction expires, in Unix seconds.
	ExpirationTimestampSecs uint64
	// ChainID is the chain the transaction is for.
	ChainID uint8
}

// PayloadKind is the variant of a TransactionPayload.
type PayloadKind uint8

// The TransactionPayload variants (variant index order).
const (
	// PayloadScript is Script(Script).
	PayloadScript PayloadKind = iota
	// PayloadModuleBundle is ModuleBundle(Vec<Module>), deprecated.
	PayloadModuleBundle
	// PayloadEntryFunction is EntryFunction(EntryFunction).
	PayloadEntryFunction
	// PayloadMultisig is Multisig(Multisig).
	PayloadMultisig
	numPayloadKinds
)

// TransactionPayload is what a user transaction runs; the field of its Kind is set.
type TransactionPayload struct {
	// Kind says which variant this is.
	Kind PayloadKind
	// Script is set for PayloadScript.
	Script *Script
	// Modules holds each module's bytecode for PayloadModuleBundle.
	Modules [][]byte
	// EntryFunction is set for PayloadEntryFunction.
	EntryFunction *EntryFunction
	// Multisig is set for PayloadMultisig.
	Multisig *Multisig
}

// Script is Move script bytecode with its type and value arguments.
type Script struct {
	// Code is the script bytecode.
	Code []byte
	// TyArgs are the type arguments.
	TyArgs []TypeTag
	// Args are the value arguments.
	Args []TransactionArgument
}

// ArgKind is the variant of a TransactionArgument.
type ArgKind uint8

// The TransactionArgument variants (variant index order).
const (
	// ArgU8 is a u8.
	ArgU8 ArgKind = iota
	// ArgU64 is a u64.
	ArgU64
	// ArgU128 is a u128.
	ArgU128
	// ArgAddress is an address.
	ArgAddress
	// ArgU8Vector is a vector<u8>.
	ArgU8Vector
	// ArgBool is a bool.
	ArgBool
	// ArgU16 is a u16.
	ArgU16
	// ArgU32 is a u32.
	ArgU32
	// ArgU256 is a u256.
	ArgU256
	numArgKinds
)

// TransactionArgument is one script argument. Value holds its BCS bytes without the
// variant index: the little-endian integer, the 32-byte address, the bool byte, or for
// ArgU8Vector the vector's contents (without its length).
type TransactionArgument struct {
	// Kind says which variant this is.
	Kind ArgKind
	// Value is the argument's bytes as described on the type.
	Value []byte
}

// ModuleID names a Move module.
type ModuleID struct {
	// Address is the account the module is published under.
	Address Address
	// Name is the module name.
	Name string
}

// EntryFunction is a call of a published entry function.
type EntryFunction struct {
	// Module is the module defining the function.
	Module ModuleID
	// Function is the function name.
	Function string
	// TyArgs are the type arguments.
	TyArgs []TypeTag
	// Args are the BCS-encoded value arguments.
	Args [][]byte
}

// Multisig is a transaction run as a multisig account.
type Multisig struct {
	// MultisigAddress is the multisig account.
	MultisigAddress Address
	// EntryFunction is the payload, or nil when the payload is stored on chain.
	EntryFunction *EntryFunction
}

// TypeTagKind is the variant of a TypeTag.
type TypeTagKind uint8

// The TypeTag variants (variant index order).
const (
	// TypeBool is bool.
	TypeBool TypeTagKind = iota
	// TypeU8 is u8.
	TypeU8
	// TypeU64 is u64.
	TypeU64
	// TypeU128 is u128.
	TypeU128
	// TypeAddress is address.
	TypeAddress
	// TypeSigner is signer.
	TypeSigner
	// TypeVector is vector<Elem>.
	TypeVector
	// TypeStruct is a struct type.
	TypeStruct
	// TypeU16 is u16.
	TypeU16
	// TypeU32 is u32.
	TypeU32
	// TypeU256 is u256.
	TypeU256
	numTypeTagKinds
)

// TypeTag is a Move type.
type TypeTag struct {
	// Kind says which variant this is.
	Kind TypeTagKind
	// Elem is the element type of a TypeVector.
	Elem *TypeTag
	// Struct is the struct of a TypeStruct.
	Struct *StructTag
}

// StructTag is a fully qualified Move struct type.
type StructTag struct {
	// Address is where the defining module is published.
	Address Address
	// Module is the defining module's name.
	Module string
	// Name is the struct name.
	Name string
	// TypeArgs are the struct's type arguments.
	TypeArgs []TypeTag
}

// AuthKind is the variant of a TransactionAuthenticator.
type AuthKind uint8

// The TransactionAuthenticator variants (variant index order).
const (
	// AuthEd25519 is a single Ed25519 signature.
	AuthEd25519 AuthKind = iota
	// AuthMultiEd25519 is a K-of-N Ed25519 multisignature.
	AuthMultiEd25519
	// AuthMultiAgent is a sender plus secondary signers.
	AuthMultiAgent
	// AuthFeePayer is a multi-agent transaction whose gas a fee payer pays.
	AuthFeePayer
	numAuthKinds
)

// TransactionAuthenticator authenticates a user transaction. For AuthEd25519 and
// AuthMultiEd25519 Sender holds the key and signature; the other fields are used by
// AuthMultiAgent and AuthFeePayer.
type TransactionAuthenticator struct {
	// Kind says which variant this is.
	Kind AuthKind
	// Sender authenticates the sender.
	Sender AccountAuthenticator
	// SecondarySignerAddresses are the secondary signers' accounts.
	SecondarySignerAddresses []Address
	// SecondarySigners authenticate the secondary signers, in the same order.
	SecondarySigners []AccountAuthenticator
	// FeePayerAddress is the fee payer's account (AuthFeePayer).
	FeePayerAddress Address
	// FeePayerSigner authenticates the fee payer (AuthFeePayer).
	FeePayerSigner *AccountAuthenticator
}

// AccountAuthKind is the variant of an AccountAuthenticator.
type AccountAuthKind uint8

// The AccountAuthenticator variants (variant index order).
const (
	// AccountEd25519 is a single Ed25519 signature.
	AccountEd25519 AccountAuthKind = iota
	// AccountMultiEd25519 is a K-of-N Ed25519 multisignature.
	AccountMultiEd25519
	numAccountAuthKinds
)

// AccountAuthenticator is one account's public key and signature.
type AccountAuthenticator struct {
	// Kind says which scheme this is.
	Kind AccountAuthKind
	// PublicKey is the key bytes: 32 for Ed25519; N*32 keys then a threshold byte for
	// MultiEd25519.
	PublicKey []byte
	// Signature is the signature bytes: 64 for Ed25519; K*64 signatures then a 4-byte
	// bitmap for MultiEd25519.
	Signature []byte
}

// WriteSetPayloadKind is the variant of a WriteSetPayload.
type WriteSetPayloadKind uint8

// The WriteSetPayload variants (variant index order).
const (
	// WriteSetDirect is Direct(ChangeSet).
	WriteSetDirect WriteSetPayloadKind = iota
	// WriteSetScript is Script{execute_as, script}.
	WriteSetScript
	numWriteSetPayloadKinds
)

// WriteSetPayload is the body of a genesis transaction.
type WriteSetPayload struct {
	// Kind says which variant this is.
	Kind WriteSetPayloadKind
	// WriteSet and Events are the change set of WriteSetDirect.
	WriteSet WriteSet
	// Events are the change set's events (WriteSetDirect).
	Events []ContractEvent
	// ExecuteAs is the signer of WriteSetScript.
	ExecuteAs Address
	// Script is the script of WriteSetScript.
	Script *Script
}

// BlockMetadata opens a block.
type BlockMetadata struct {
	// ID is the block id.
	ID HashValue
	// Epoch is the block's epoch.
	Epoch uint64
	// Round is the block's round.
	Round uint64
	// Proposer is the proposing validator.
	Proposer Address
	// PreviousBlockVotesBitvec marks the validators that voted for the previous block.
	PreviousBlockVotesBitvec []byte
	// FailedProposerIndices are the validators whose proposals failed since the last block.
	FailedProposerIndices []uint32
	// TimestampUsecs is the block time in Unix microseconds.
	TimestampUsecs uint64
}

// TransactionInfo is what the transaction accumulator commits to for one version
// (the enum TransactionInfo, variant V0).
type TransactionInfo struct {
	// GasUsed is the gas the transaction used.
	GasUsed uint64
	// Status is how execution ended.
	Status ExecutionStatus
	// TransactionHash is the hash of the Transaction.
	TransactionHash HashValue
	// EventRootHash is the root of the event accumulator over the events' hashes.
	EventRootHash HashValue
	// StateChangeHash is the hash of the WriteSet.
	StateChangeHash HashValue
	// StateCheckpointHash is the state root after the transaction, when it ends a block.
	StateCheckpointHash *HashValue
	// StateCemeteryHash is reserved (always None on chain).
	StateCemeteryHash *HashValue
}

// StatusKind is the variant of an ExecutionStatus.
type StatusKind uint8

// The ExecutionStatus variants (variant index order).
const (
	// StatusSuccess is Success.
	StatusSuccess StatusKind = iota
	// StatusOutOfGas is OutOfGas.
	StatusOutOfGas
	// StatusMoveAbort is MoveAbort{location, code, info}.
	StatusMoveAbort
	// StatusExecutionFailure is ExecutionFailure{location, function, code_offset}.
	StatusExecutionFailure
	// StatusMiscellaneousError is MiscellaneousError(Option<StatusCode>).
	StatusMiscellaneousError
	numStatusKinds
)

// ExecutionStatus is how a transaction's execution ended.
type ExecutionStatus struct {
	// Kind says which variant this is.
	Kind StatusKind
	// Location is where a StatusMoveAbort or StatusExecutionFailure happened.
	Location AbortLocation
	// Code is the abort code of StatusMoveAbort.
	Code uint64
	// Info is the optional abort explanation of StatusMoveAbort.
	Info *AbortInfo
	// Function and CodeOffset locate a StatusExecutionFailure.
	Function uint16
	// CodeOffset is the bytecode offset of a StatusExecutionFailure.
	CodeOffset uint16
	// StatusCode is the optional VM status code of StatusMiscellaneousError.
	StatusCode *uint64
}

// AbortLocation is a module or the transaction's script.
type AbortLocation struct {
	// Script is true for AbortLocation::Script; otherwise Module is set.
	Script bool
	// Module is the aborting module.
	Module ModuleID
}

// AbortInfo explains an abort code.
type AbortInfo struct {
	// ReasonName is the error constant's name.
	ReasonName string
	// Description is its documentation.
	Description string
}

// EventKind is the variant of a ContractEvent.
type EventKind uint8

// The ContractEvent variants (variant index order).
const (
	// EventV0 is an event emitted to an event handle.
	EventV0 EventKind = iota
	// EventV1 is a module event.
	EventV1
	numEventKinds
)

// EventKey identifies an event handle.
type EventKey struct {
	// CreationNumber is the handle's creation number in its account.
	CreationNumber uint64
	// AccountAddress is the account holding the handle.
	AccountAddress Address
}

// ContractEvent is one emitted event.
type ContractEvent struct {
	// Kind says which variant this is.
	Kind EventKind
	// Key is the event handle (EventV0).
	Key EventKey
	// SequenceNumber is the event's number within its handle (EventV0).
	SequenceNumber uint64
	// TypeTag is the event's Move type.
	TypeTag TypeTag
	// Data is the BCS-encoded event value.
	Data []byte
}

// WriteSet is the state changes of one transaction (the enum WriteSet, variant V0),
// entries sorted by the BCS bytes of their keys as BCS requires of a map.
type WriteSet struct {
	// Entries are the changed keys with their operations.
	Entries []WriteSetEntry
}

// WriteSetEntry is one state key and what happened to it.
type WriteSetEntry struct {
	// Key is the state key.
	Key StateKey
	// Op is the change.
	Op WriteOp
}

// StateKeyKind is the variant of a StateKey.
type StateKeyKind uint8

// The StateKey variants (variant index order).
const (
	// StateKeyAccessPath is AccessPath{address, path}.
	StateKeyAccessPath StateKeyKind = iota
	// StateKeyTableItem is TableItem{handle, key}.
	StateKeyTableItem
	// StateKeyRaw is Raw(bytes).
	StateKeyRaw
	numStateKeyKinds
)

// StateKey names one state value. Address is the access path's account or the table
// handle; Path is the access path's path, the table item's key or the raw bytes.
type StateKey struct {
	// Kind says which variant this is.
	Kind StateKeyKind
	// Address is the account (StateKeyAccessPath) or table handle (StateKeyTableItem).
	Address Address
	// Path is the path, table key or raw key bytes.
	Path []byte
}

// WriteOpKind is the variant of a WriteOp.
type WriteOpKind uint8

// The WriteOp variants (variant index order).
const (
	// OpCreation creates a value.
	OpCreation WriteOpKind = iota
	// OpModification changes a value.
	OpModification
	// OpDeletion deletes a value.
	OpDeletion
	// OpCreationWithMetadata creates a value with storage metadata.
	OpCreationWithMetadata
	// OpModificationWithMetadata changes a value with storage metadata.
	OpModificationWithMetadata
	// OpDeletionWithMetadata deletes a value with storage metadata.
	OpDeletionWithMetadata
	numWriteOpKinds
)

// WriteOp is one state change.
type WriteOp struct {
	// Kind says which variant this is.
	Kind WriteOpKind
	// Data is the new value (creations and modifications).
	Data []byte
	// Metadata is set for the WithMetadata variants.
	Metadata *StateValueMetadata
}

// StateValueMetadata is the storage-fee metadata of a state value.
type StateValueMetadata struct {
	// V1 is true for the V1 variant (slot and bytes deposits); V0 has one deposit.
	V1 bool
	// Deposit is the V0 deposit, or the V1 slot deposit.
	Deposit uint64
	// BytesDeposit is the V1 bytes deposit.
	BytesDeposit uint64
	// CreationTimeUsecs is when the value was created, in Unix microseconds.
	CreationTimeUsecs uint64
}
