"""The app schema of a SQLite file and of a PostgreSQL database, described alike so they can be compared.

``describe_sqlite(conn)`` and ``describe_postgres(conn)`` return the same normalised structure:
``{table: {"columns": [...], "primary_key": [...], "foreign_keys": [...], "unique": [...], "checks": [...],
"indexes": {name: {...}}}}``. What is normalised away, because the two engines differ there by nature:

- types become SQLite affinities: INTEGER/BIGINT -> "integer", DOUBLE PRECISION -> "real", BYTEA -> "blob";
  ``INTEGER PRIMARY KEY AUTOINCREMENT`` and ``GENERATED ... AS IDENTITY`` both read ``"autoincrement": True``;
- defaults lose PostgreSQL's casts (``'new'::text`` -> ``'new'``, ``'0'::double precision`` -> ``0``);
- primary-key columns count as NOT NULL (PostgreSQL enforces it; SQLite reports 0 for a TEXT key);
- unique constraints and CHECKs are compared by content, not by name (SQLite does not name them);
  ``col IN (a, b)`` and PostgreSQL's ``col = ANY (ARRAY[a, b])`` both become ``"col in (a, b)"``;
- only indexes created by ``CREATE INDEX`` are listed (not those behind keys and unique constraints);
- SQLite's own tables (``sqlite_*``) are left out.
"""

from __future__ import annotations

import re

_PG_TYPES = {"integer": "integer", "bigint": "integer", "smallint": "integer", "double precision": "real",
             "real": "real", "text": "text", "bytea": "blob", "boolean": "boolean"}
_PG_ON_DELETE = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}


def describe_sqlite(conn) -> dict:
    """The schema of an open ``sqlite3`` connection."""
    tables = [row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    schema = {}
    for table in tables:
        create_sql = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
                                  (table,)).fetchone()[0]
        info = conn.execute(f'PRAGMA table_info("{table}")').fetchall()
        primary_key = [row[1] for row in sorted((r for r in info if r[5]), key=lambda r: r[5])]
        autoincrement = "AUTOINCREMENT" in create_sql.upper()
        columns = [_column(name=row[1], type_=_sqlite_type(row[2]), not_null=bool(row[3]) or bool(row[5]),
                           default=_default(row[4]),
                           autoincrement=autoincrement and primary_key == [row[1]])
                   for row in info]
        foreign_keys = {}
        for row in conn.execute(f'PRAGMA foreign_key_list("{table}")'):
            key = foreign_keys.setdefault(row[0], {"columns": [], "table": row[2], "references": [],
                                                   "on_delete": row[6].upper(), "on_update": row[5].upper()})
            key["columns"].append(row[3])
            key["references"].append(row[4] if row[4] is not None else None)
        unique, indexes = [], {}
        for row in conn.execute(f'PRAGMA index_list("{table}")'):
            name, is_unique, origin, partial = row[1], bool(row[2]), row[3], bool(row[4])
            index_columns = [(r[2], bool(r[3])) for r in conn.execute(f'PRAGMA index_xinfo("{name}")') if r[5]]
            if origin == "u":
                unique.append([column for column, _ in index_columns])
            elif origin == "c":
                index_sql = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?",
                                         (name,)).fetchone()[0]
                indexes[name] = _index(index_columns, is_unique,
                                       _sqlite_predicate(index_sql) if partial else None)
        schema[table] = _table(columns, primary_key, list(foreign_keys.values()), unique,
                               [_check(c) for c in _sqlite_checks(create_sql)], indexes)
    _resolve_implicit_references(schema)
    return schema


def describe_postgres(conn, schema_name: str = "public") -> dict:
    """The schema of an open ``psycopg`` connection (one PostgreSQL schema, ``public`` by default)."""
    tables = [row[0] for row in conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind IN ('r', 'p') ORDER BY c.relname", (schema_name,))]
    schema = {}
    for table in tables:
        oid = conn.execute("SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                           "WHERE n.nspname = %s AND c.relname = %s", (schema_name, table)).fetchone()[0]
        attributes = conn.execute(
            "SELECT a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, "
            "pg_get_expr(d.adbin, d.adrelid), a.attidentity "
            "FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
            "WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum", (oid,)).fetchall()
        names = {row[0]: row[1] for row in attributes}
        constraints = conn.execute(
            "SELECT contype, conkey, confrelid::regclass::text, confkey, confdeltype, confupdtype, "
            "pg_get_constraintdef(oid), conindid FROM pg_constraint WHERE conrelid = %s ORDER BY conname",
            (oid,)).fetchall()
        primary_key, foreign_keys, unique, checks, constraint_indexes = [], [], [], [], set()
        for contype, conkey, ref_table, confkey, on_delete, on_update, definition, index_oid in constraints:
            if contype == "p":
                primary_key = [names[k] for k in conkey]
                constraint_indexes.add(index_oid)
            elif contype == "u":
                unique.append([names[k] for k in conkey])
                constraint_indexes.add(index_oid)
            elif contype == "f":
                ref_names = dict(conn.execute(
                    "SELECT attnum, attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0",
                    (ref_table,)).fetchall())
                foreign_keys.append({"columns": [names[k] for k in conkey], "table": ref_table.strip('"'),
                                     "references": [ref_names[k] for k in confkey],
                                     "on_delete": _PG_ON_DELETE[on_delete], "on_update": _PG_ON_DELETE[on_update]})
            elif contype == "c":
                checks.append(_check(re.sub(r"^CHECK\s*", "", definition)))
        columns = [_column(name=name, type_=_PG_TYPES.get(type_, type_), not_null=not_null or name in primary_key,
                           default=_default(default), autoincrement=bool(identity))
                   for _, name, type_, not_null, default, identity in attributes]
        indexes = {}
        for index_oid, name, is_unique, predicate, keys, options in conn.execute(
                "SELECT i.indexrelid, c.relname, i.indisunique, pg_get_expr(i.indpred, i.indrelid), "
                "(i.indkey::int2[])[0:i.indnkeyatts - 1], i.indoption::int2[] "
                "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = %s", (oid,)):
            if index_oid in constraint_indexes:
                continue
            index_columns = [(names.get(key, "<expression>"), bool(option & 1)) for key, option in zip(keys, options, strict=True)]
            indexes[name] = _index(index_columns, is_unique, predicate)
        schema[table] = _table(columns, primary_key, foreign_keys, unique, checks, indexes)
    return schema


def differences(a: dict, b: dict, a_name: str = "sqlite", b_name: str = "postgresql") -> list[str]:
    """Every way two described schemas differ, one readable line each (empty: the same schema)."""
    found = []
    for table in sorted(a.keys() - b.keys()):
        found.append(f"table {table}: only in {a_name}")
    for table in sorted(b.keys() - a.keys()):
        found.append(f"table {table}: only in {b_name}")
    for table in sorted(a.keys() & b.keys()):
        ta, tb = a[table], b[table]
        names_a = [c["name"] for c in ta["columns"]]
        names_b = [c["name"] for c in tb["columns"]]
        if names_a != names_b:
            found.append(f"table {table}: columns {names_a} in {a_name}, {names_b} in {b_name}")
        columns_b = {c["name"]: c for c in tb["columns"]}
        for column in ta["columns"]:
            other = columns_b.get(column["name"])
            if other is None:
                continue
            for key in ("type", "not_null", "default", "autoincrement"):
                if column[key] != other[key]:
                    found.append(f"column {table}.{column['name']}: {key} {column[key]!r} in {a_name}, "
                                 f"{other[key]!r} in {b_name}")
        for key in ("primary_key", "foreign_keys", "unique", "checks"):
            if ta[key] != tb[key]:
                found.append(f"table {table}: {key} {ta[key]!r} in {a_name}, {tb[key]!r} in {b_name}")
        for name in sorted(ta["indexes"].keys() | tb["indexes"].keys()):
            ia, ib = ta["indexes"].get(name), tb["indexes"].get(name)
            if ia != ib:
                found.append(f"index {table}.{name}: {ia!r} in {a_name}, {ib!r} in {b_name}")
    return found


def _column(*, name, type_, not_null, default, autoincrement) -> dict:
    return {"name": name, "type": type_, "not_null": not_null, "default": default, "autoincrement": autoincrement}


def _table(columns, primary_key, foreign_keys, unique, checks, indexes) -> dict:
    return {"columns": columns, "primary_key": primary_key,
            "foreign_keys": sorted(foreign_keys, key=lambda k: (k["columns"], k["table"])),
            "unique": sorted(unique), "checks": sorted(checks), "indexes": indexes}


def _index(columns, unique, predicate) -> dict:
    return {"columns": [name for name, _ in columns], "descending": [desc for _, desc in columns],
            "unique": unique, "where": _expression(predicate) if predicate else None}


def _sqlite_type(declared: str) -> str:
    """SQLite's affinity rules (https://sqlite.org/datatype3.html#determination_of_column_affinity)."""
    upper = declared.upper()
    if "INT" in upper:
        return "integer"
    if any(word in upper for word in ("CHAR", "CLOB", "TEXT")):
        return "text"
    if not upper or "BLOB" in upper:
        return "blob"
    if any(word in upper for word in ("REAL", "FLOA", "DOUB")):
        return "real"
    return "numeric"


def _default(expression: str | None):
    """A default as comparable text: casts, redundant parentheses and quotes around numbers removed."""
    if expression is None:
        return None
    text = expression.strip()
    while text.startswith("(") and text.endswith(")") and _balanced(text[1:-1]):
        text = text[1:-1].strip()
    text = re.sub(r"::[a-z ]+(\[\])?$", "", text)
    if re.fullmatch(r"'-?\d+(\.\d+)?'", text):
        text = text[1:-1]
    if re.fullmatch(r"-?\d+\.0+", text):
        text = text.split(".")[0]
    return text


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def _sqlite_checks(create_sql: str) -> list[str]:
    """The expression of every CHECK in a CREATE TABLE (SQLite keeps no catalogue of them)."""
    text = re.sub(r"--[^\n]*", "", create_sql)
    checks = []
    for match in re.finditer(r"\bCHECK\s*\(", text, re.IGNORECASE):
        depth, start = 0, match.end() - 1
        for position in range(start, len(text)):
            depth += {"(": 1, ")": -1}.get(text[position], 0)
            if depth == 0:
                checks.append(text[start:position + 1])
                break
    return checks


def _sqlite_predicate(index_sql: str) -> str:
    return re.split(r"\bWHERE\b", index_sql, maxsplit=1, flags=re.IGNORECASE)[1]


def _check(expression: str) -> str:
    """``col IN (...)`` and ``col = ANY (ARRAY[...])`` as one spelling; anything else as normalised text."""
    text = _expression(expression)
    match = (re.fullmatch(r"(\w+) in \((.*)\)", text)
             or re.fullmatch(r"(\w+) = any \(array\[(.*)\]\)", text))
    if match:
        values = [value.strip() for value in match.group(2).split(",")]
        return f"{match.group(1)} in ({', '.join(values)})"
    return text


def _expression(expression: str) -> str:
    text = re.sub(r"::[a-z ]+(\[\])?", "", expression.lower())
    text = re.sub(r'"(\w+)"', r"\1", text)
    text = " ".join(text.split())
    while text.startswith("(") and text.endswith(")") and _balanced(text[1:-1]):
        text = text[1:-1].strip()
    text = re.sub(r"\(\s+", "(", re.sub(r"\s+\)", ")", text))
    return text


def _resolve_implicit_references(schema: dict) -> None:
    """``REFERENCES t`` without columns means t's primary key; PostgreSQL always names it."""
    for table in schema.values():
        for key in table["foreign_keys"]:
            if any(column is None for column in key["references"]) and key["table"] in schema:
                key["references"] = schema[key["table"]]["primary_key"]
