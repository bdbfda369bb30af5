package jobs

import (
	"database/sql"
	"errors"
	"reflect"
	"unsafe"

	"github.com/korrigo/korrigo/ent"
)

// sqlTx finds the *sql.Tx beneath an ent transaction, so that River's InsertTx
// writes its job in the very transaction that changed the copy and recorded our
// Job row: both commit or neither does.
//
// ent does not expose it (the generated Tx keeps its driver unexported), so this
// walks the Tx's fields by reflection to the *sql.Tx that ent's SQL driver began.
// The walk is bounded, read-only, and covered by tests on both databases and
// through ent's debug driver (which servertest uses); if a future ent changes its
// layout, it fails loudly (errNoSQLTx) and the finalize request fails instead of
// enqueueing outside the transaction.
func sqlTx(tx *ent.Tx) (*sql.Tx, error) {
	if tx == nil {
		return nil, errNoSQLTx
	}
	seen := map[uintptr]bool{}
	if found := findSQLTx(reflect.ValueOf(tx), 0, seen); found != nil {
		return found, nil
	}
	return nil, errNoSQLTx
}

var errNoSQLTx = errors.New("jobs: no *sql.Tx beneath the ent transaction")

var sqlTxType = reflect.TypeOf((*sql.Tx)(nil))

const maxSQLTxDepth = 40

func findSQLTx(v reflect.Value, depth int, seen map[uintptr]bool) *sql.Tx {
	if depth > maxSQLTxDepth || !v.IsValid() {
		return nil
	}
	switch v.Kind() {
	case reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return findSQLTx(v.Elem(), depth+1, seen)
	case reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		if v.Type() == sqlTxType {
			return (*sql.Tx)(unsafe.Pointer(v.Pointer()))
		}
		if seen[v.Pointer()] {
			return nil
		}
		seen[v.Pointer()] = true
		return findSQLTx(v.Elem(), depth+1, seen)
	case reflect.Struct:
		if v.Type().PkgPath() == "context" || v.Type() == reflect.TypeOf(sql.DB{}) {
			return nil
		}
		for i := range v.NumField() {
			f := v.Field(i)
			if !f.CanInterface() && f.CanAddr() {
				f = reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
			}
			if found := findSQLTx(f, depth+1, seen); found != nil {
				return found
			}
		}
	}
	return nil
}
