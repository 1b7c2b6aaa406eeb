package txn

import (
	"github.com/ledgervault/ledgervault/aptos/bcs"
)

// A test-only BCS encoder of decoded records, mirroring the decoder field by field. The
// round trip encode(DecodeRecord(b)) == b shows the decoder keeps every byte's meaning;
// the fuzz target and the synthetic-variant tests rely on it.

type enc struct{ b []byte }

func (e *enc) u8(v uint8)       { e.b = bcs.AppendU8(e.b, v) }
func (e *enc) u16(v uint16)     { e.b = bcs.AppendU16(e.b, v) }
func (e *enc) u32(v uint32)     { e.b = bcs.AppendU32(e.b, v) }
func (e *enc) u64(v uint64)     { e.b = bcs.AppendU64(e.b, v) }
func (e *enc) uleb(v int)       { e.b = bcs.AppendULEB128(e.b, uint32(v)) }
func (e *enc) bytes(v []byte)   { e.b = bcs.AppendBytes(e.b, v) }
func (e *enc) str(v string)     { e.b = bcs.AppendString(e.b, v) }
func (e *enc) fixed(v []byte)   { e.b = append(e.b, v...) }
func (e *enc) addr(a Address)   { e.fixed(a[:]) }
func (e *enc) hash(h HashValue) { e.fixed(h[:]) }
func (e *enc) optHash(h *HashValue) {
	if h == nil {
		e.u8(0)
		return
	}
	e.u8(1)
	e.hash(*h)
}

func encodeRecord(r *Record) []byte {
	e := &enc{}
	e.transaction(&r.Transaction)
	e.info(&r.Info)
	e.events(r.Events)
	e.writeSet(&r.WriteSet)
	return e.b
}

func (e *enc) transaction(t *Transaction) {
	e.uleb(int(t.Kind))
	switch t.Kind {
	case KindUser:
		e.signed(t.User)
	case KindGenesis:
		e.writeSetPayload(t.Genesis)
	case KindBlockMetadata:
		b := t.BlockMetadata
		e.hash(b.ID)
		e.u64(b.Epoch)
		e.u64(b.Round)
		e.addr(b.Proposer)
		e.bytes(b.PreviousBlockVotesBitvec)
		e.uleb(len(b.FailedProposerIndices))
		for _, i := range b.FailedProposerIndices {
			e.u32(i)
		}
		e.u64(b.TimestampUsecs)
	case KindStateCheckpoint:
		e.hash(t.StateCheckpoint)
	}
}

func (e *enc) signed(s *SignedTransaction) {
	r := &s.Raw
	e.addr(r.Sender)
	e.u64(r.SequenceNumber)
	e.payload(&r.Payload)
	e.u64(r.MaxGasAmount)
	e.u64(r.GasUnitPrice)
	e.u64(r.ExpirationTimestampSecs)
	e.u8(r.ChainID)
	a := &s.Authenticator
	e.uleb(int(a.Kind))
	switch a.Kind {
	case AuthEd25519, AuthMultiEd25519:
		e.bytes(a.Sender.PublicKey)
		e.bytes(a.Sender.Signature)
	case AuthMultiAgent, AuthFeePayer:
		e.accountAuth(&a.Sender)
		e.uleb(len(a.SecondarySignerAddresses))
		for _, x := range a.SecondarySignerAddresses {
			e.addr(x)
		}
		e.uleb(len(a.SecondarySigners))
		for i := range a.SecondarySigners {
			e.accountAuth(&a.SecondarySigners[i])
		}
		if a.Kind == AuthFeePayer {
			e.addr(a.FeePayerAddress)
			e.accountAuth(a.FeePayerSigner)
		}
	}
}

func (e *enc) accountAuth(a *AccountAuthenticator) {
	e.uleb(int(a.Kind))
	e.bytes(a.PublicKey)
	e.bytes(a.Signature)
}

func (e *enc) payload(p *TransactionPayload) {
	e.uleb(int(p.Kind))
	switch p.Kind {
	case PayloadScript:
		e.script(p.Script)
	case PayloadModuleBundle:
		e.uleb(len(p.Modules))
		for _, m := range p.Modules {
			e.bytes(m)
		}
	case PayloadEntryFunction:
		e.entryFunction(p.EntryFunction)
	case PayloadMultisig:
		e.addr(p.Multisig.MultisigAddress)
		if p.Multisig.EntryFunction == nil {
			e.u8(0)
		} else {
			e.u8(1)
			e.uleb(0)
			e.entryFunction(p.Multisig.EntryFunction)
		}
	}
}

func (e *enc) script(s *Script) {
	e.bytes(s.Code)
	e.typeTags(s.TyArgs)
	e.uleb(len(s.Args))
	for _, a := range s.Args {
		e.uleb(int(a.Kind))
		if a.Kind == ArgU8Vector {
			e.bytes(a.Value)
		} else {
			e.fixed(a.Value)
		}
	}
}

func (e *enc) entryFunction(f *EntryFunction) {
	e.moduleID(&f.Module)
	e.str(f.Function)
	e.typeTags(f.TyArgs)
	e.uleb(len(f.Args))
	for _, a := range f.Args {
		e.bytes(a)
	}
}

func (e *enc) moduleID(m *ModuleID) {
	e.addr(m.Address)
	e.str(m.Name)
}

func (e *enc) typeTags(ts []TypeTag) {
	e.uleb(len(ts))
	for i := range ts {
		e.typeTag(&ts[i])
	}
}

func (e *enc) typeTag(t *TypeTag) {
	e.uleb(int(t.Kind))
	switch t.Kind {
	case TypeVector:
		e.typeTag(t.Elem)
	case TypeStruct:
		e.addr(t.Struct.Address)
		e.str(t.Struct.Module)
		e.str(t.Struct.Name)
		e.typeTags(t.Struct.TypeArgs)
	}
}

func (e *enc) writeSetPayload(p *WriteSetPayload) {
	e.uleb(int(p.Kind))
	switch p.Kind {
	case WriteSetDirect:
		e.writeSet(&p.WriteSet)
		e.events(p.Events)
	case WriteSetScript:
		e.addr(p.ExecuteAs)
		e.script(p.Script)
	}
}

func (e *enc) info(t *TransactionInfo) {
	e.uleb(0)
	e.u64(t.GasUsed)
	s := &t.Status
	e.uleb(int(s.Kind))
	switch s.Kind {
	case StatusMoveAbort:
		e.location(&s.Location)
		e.u64(s.Code)
		if s.Info == nil {
			e.u8(0)
		} else {
			e.u8(1)
			e.str(s.Info.ReasonName)
			e.str(s.Info.Description)
		}
	case StatusExecutionFailure:
		e.location(&s.Location)
		e.u16(s.Function)
		e.u16(s.CodeOffset)
	case StatusMiscellaneousError:
		if s.StatusCode == nil {
			e.u8(0)
		} else {
			e.u8(1)
			e.u64(*s.StatusCode)
		}
	}
	e.hash(t.TransactionHash)
	e.hash(t.EventRootHash)
	e.hash(t.StateChangeHash)
	e.optHash(t.StateCheckpointHash)
	e.optHash(t.StateCemeteryHash)
}

func (e *enc) location(l *AbortLocation) {
	if l.Script {
		e.uleb(1)
		return
	}
	e.uleb(0)
	e.moduleID(&l.Module)
}

func (e *enc) events(evs []ContractEvent) {
	e.uleb(len(evs))
	for i := range evs {
		ev := &evs[i]
		e.uleb(int(ev.Kind))
		if ev.Kind == EventV0 {
			e.u64(ev.Key.CreationNumber)
			e.addr(ev.Key.AccountAddress)
			e.u64(ev.SequenceNumber)
		}
		e.typeTag(&ev.TypeTag)
		e.bytes(ev.Data)
	}
}

func (e *enc) writeSet(w *WriteSet) {
	e.uleb(0)
	e.uleb(len(w.Entries))
	for i := range w.Entries {
		k := &w.Entries[i].Key
		e.uleb(int(k.Kind))
		switch k.Kind {
		case StateKeyAccessPath, StateKeyTableItem:
			e.addr(k.Address)
			e.bytes(k.Path)
		case StateKeyRaw:
			e.bytes(k.Path)
		}
		o := &w.Entries[i].Op
		e.uleb(int(o.Kind))
		switch o.Kind {
		case OpCreation, OpModification:
			e.bytes(o.Data)
		case OpCreationWithMetadata, OpModificationWithMetadata:
			e.bytes(o.Data)
			e.metadata(o.Metadata)
		case OpDeletionWithMetadata:
			e.metadata(o.Metadata)
		}
	}
}

func (e *enc) metadata(m *StateValueMetadata) {
	if m.V1 {
		e.uleb(1)
		e.u64(m.Deposit)
		e.u64(m.BytesDeposit)
	} else {
		e.uleb(0)
		e.u64(m.Deposit)
	}
	e.u64(m.CreationTimeUsecs)
}
