// Added by Açık Kapı's scripts/ensure-ferretdb.sh to FerretDB v1.24.2's SQLite backend.
//
// FerretDB 1.24 pushes down only `{_id: <string or ObjectId>}` to SQLite; `{_id: {$in: [...]}}`
// walks the whole table (2,000 documents read in 100-id batches: 36 s at 10,000 documents).
// This lets the same unique `_id` index answer it, as MongoDB's does. The handler still filters
// every returned document against the whole filter, so the result cannot change, only the cost.

package sqlite

import (
	"fmt"
	"strings"

	"github.com/FerretDB/FerretDB/internal/backends/sqlite/metadata"
	"github.com/FerretDB/FerretDB/internal/handler/sjson"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// maxIDsInClause stays far below SQLite's limit on bound parameters (32,766).
const maxIDsInClause = 1000

// idInClause returns `WHERE <_id index expression> IN (?, …)` and its arguments for a filter
// value `{$in: [ids]}` whose ids are all strings or ObjectIds, or "" when it cannot.
func idInClause(v any) (string, []any) {
	d, ok := v.(*types.Document)
	if !ok || d.Len() != 1 {
		return "", nil
	}

	raw, err := d.Get("$in")
	if err != nil {
		return "", nil
	}

	arr, ok := raw.(*types.Array)
	if !ok || arr.Len() == 0 || arr.Len() > maxIDsInClause {
		return "", nil
	}

	placeholders := make([]string, arr.Len())
	args := make([]any, arr.Len())

	for i := 0; i < arr.Len(); i++ {
		id := must.NotFail(arr.Get(i))

		switch id.(type) {
		case string, types.ObjectID:
		default:
			return "", nil
		}

		placeholders[i] = "?"
		args[i] = string(must.NotFail(sjson.MarshalSingleValue(id)))
	}

	return fmt.Sprintf(` WHERE %s IN (%s)`, metadata.IDColumn, strings.Join(placeholders, ", ")), args
}
