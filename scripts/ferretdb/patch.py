"""Apply Açık Kapı's changes to FerretDB v1.24.2's source tree (argument: the module's root).

Each change is a literal replacement that must match exactly once, so a different FerretDB
source fails loudly here instead of building something else. Why each: scripts/ensure-ferretdb.sh.
"""
import pathlib
import shutil
import sys

root = pathlib.Path(sys.argv[1])
here = pathlib.Path(__file__).parent

CHANGES = {
    # 1. `_id` lookups on the `_id` index's own expression.
    "internal/backends/sqlite/metadata/metadata.go": [(
        "IDColumn = DefaultColumn + \"->'$._id'\"",
        'IDColumn = DefaultColumn + "->\\"_id\\""',
    )],
    # 2. `{_id: {$in: [...]}}` on the same index (id_in.go), in queries and their explain.
    "internal/backends/sqlite/collection.go": [(
        "\tq += whereClause\n\tq += prepareOrderByClause(params.Sort)\n",
        "\tif whereClause == \"\" && params.Filter.Len() == 1 {\n"
        "\t\tv, _ := params.Filter.Get(\"_id\")\n"
        "\t\twhereClause, args = idInClause(v)\n"
        "\t}\n\n"
        "\tq += whereClause\n\tq += prepareOrderByClause(params.Sort)\n",
    ), (
        "\torderByClause := prepareOrderByClause(params.Sort)\n",
        "\tif whereClause == \"\" && params.Filter.Len() == 1 {\n"
        "\t\tv, _ := params.Filter.Get(\"_id\")\n"
        "\t\twhereClause, args = idInClause(v)\n"
        "\t\tfilterPushdown = whereClause != \"\"\n"
        "\t}\n\n"
        "\torderByClause := prepareOrderByClause(params.Sort)\n",
    )],
    # 3. An `update` command closes each statement's read before the next statement. Upstream
    # defers every close to the end of the command, so a bulk of 100 or more updates holds all
    # 100 connections of the pool open and waits forever for a 101st (the server hangs).
    "internal/handler/msg_update.go": [(
        "\t\tcloser := iterator.NewMultiCloser()\n\t\tdefer closer.Close()\n",
        "\t\tcloser := iterator.NewMultiCloser()\n",
    ), (
        "\t\tresult, err := common.UpdateDocument(ctx, c, \"update\", iter, &u)\n",
        "\t\tresult, err := common.UpdateDocument(ctx, c, \"update\", iter, &u)\n"
        "\t\tcloser.Close()\n",
    )],
    # 4. A delete by `{_id: {$in: [...]}}` alone deletes those ids without reading and decoding
    # each document first (delete_ids.go).
    "internal/handler/msg_delete.go": [(
        "\tvar qp backends.QueryParams\n\tif !h.DisablePushdown {\n",
        "\tif ids := idsToDelete(p.Filter); ids != nil && !p.Limited {\n"
        "\t\td, err := c.DeleteAll(ctx, &backends.DeleteAllParams{IDs: ids})\n"
        "\t\tif err != nil {\n"
        "\t\t\treturn 0, lazyerrors.Error(err)\n"
        "\t\t}\n\n"
        "\t\treturn d.Deleted, nil\n"
        "\t}\n\n"
        "\tvar qp backends.QueryParams\n\tif !h.DisablePushdown {\n",
    )],
}

for name, replacements in CHANGES.items():
    path = root / name
    path.chmod(0o644)
    text = path.read_text()
    for old, new in replacements:
        if text.count(old) != 1:
            sys.exit(f"could not apply Açık Kapı's change to {path}: source differs")
        text = text.replace(old, new)
    path.write_text(text)
shutil.copyfile(here / "id_in.go", root / "internal/backends/sqlite/id_in.go")
shutil.copyfile(here / "delete_ids.go", root / "internal/handler/delete_ids.go")
