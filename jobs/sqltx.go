package jobs

import (
	"database/sql"
	"errors"

	"github.com/korrigo/korrigo/ent"
)

// sqlTx is the *sql.Tx beneath an ent transaction, so that River's InsertTx
// writes its job in the very transaction that changed the copy and recorded
// our Job row: both commit or neither does.
//
// ent.Tx.SQLTx is generated from tools/entc/template/sqltx.tmpl: it reads the
// transaction ent's database/sql driver began (through ent's debug driver,
// which servertest uses) with plain type assertions. If a transaction ever
// runs on something else, the request fails (errNoSQLTx) rather than
// enqueueing outside the transaction.
func sqlTx(tx *ent.Tx) (*sql.Tx, error) {
	if tx == nil {
		return nil, errNoSQLTx
	}
	stx, ok := tx.SQLTx()
	if !ok || stx == nil {
		return nil, errNoSQLTx
	}
	return stx, nil
}

var errNoSQLTx = errors.New("jobs: no *sql.Tx beneath the ent transaction")
