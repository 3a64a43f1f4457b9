// Added by Açık Kapı's scripts/ensure-ferretdb.sh to FerretDB v1.24.2's handler.
//
// FerretDB 1.24 deletes by reading every matching document, decoding it and filtering it
// against the whole filter, then deleting the ids it kept. For `{_id: {$in: [ids]}}` alone,
// with ids that are strings or ObjectIds, that filter matches exactly the documents stored
// under those ids: they are deleted by id at once, with the same statement the handler ends
// with (`DeleteAll`), and the reply counts the rows deleted. Reading and decoding them was 39%
// of the server's time under reporting's projector, which rewrites documents by delete and
// insert (docs/architecture.md, "Storage").

package handler

import (
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// maxIDsToDelete matches the `$in` pushdown's bound (internal/backends/sqlite/id_in.go).
const maxIDsToDelete = 1000

// idsToDelete returns the ids of a filter `{_id: {$in: [ids]}}` whose ids are all strings or
// ObjectIds (each once), or nil when the filter is anything else.
func idsToDelete(filter *types.Document) []any {
	if filter == nil || filter.Len() != 1 {
		return nil
	}

	v, err := filter.Get("_id")
	if err != nil {
		return nil
	}

	d, ok := v.(*types.Document)
	if !ok || d.Len() != 1 {
		return nil
	}

	raw, err := d.Get("$in")
	if err != nil {
		return nil
	}

	arr, ok := raw.(*types.Array)
	if !ok || arr.Len() == 0 || arr.Len() > maxIDsToDelete {
		return nil
	}

	ids := make([]any, 0, arr.Len())
	seen := make(map[any]struct{}, arr.Len())

	for i := 0; i < arr.Len(); i++ {
		id := must.NotFail(arr.Get(i))

		switch id.(type) {
		case string, types.ObjectID:
		default:
			return nil
		}

		if _, dup := seen[id]; dup {
			continue
		}

		seen[id] = struct{}{}
		ids = append(ids, id)
	}

	return ids
}
