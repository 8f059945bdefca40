"""Applies ja4-platform's schema on an old ClickHouse engine (chDB 1.0.2 = 23.10) and reports.

argv: plan.sql (embedded flavour, applied twice), seed.sql (applied once), parse.sql
(server + cluster flavour, parse-checked with formatQuery), data dir, database.
chDB 1.0 prints engine errors on stderr instead of raising, so stderr is captured per query.
Prints one JSON object: {"applied": n, "errors": [...], "checks": {...}, "parsed": n}.
"""
import json
import os
import sys
import tempfile

from chdb import session


def statements(path, db=None):
    text = open(path, encoding="utf-8").read()
    out = []
    for chunk in text.split(";\n"):
        lines = [l for l in chunk.split("\n") if not l.lstrip().startswith("--")]
        stmt = "\n".join(lines).strip()
        if stmt:
            out.append(stmt.replace("{db}", db) if db else stmt)
    return out


def run(sess, sql, fmt="TSV"):
    saved = os.dup(2)
    with tempfile.TemporaryFile() as err:
        os.dup2(err.fileno(), 2)
        try:
            res = sess.query(sql, fmt)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        err.seek(0)
        msg = err.read().decode("utf-8", "replace")
    if "DB::Exception" in msg:
        raise RuntimeError(msg.strip()[:500])
    return str(res)


def main():
    plan, seed, parse, data, db = sys.argv[1:6]
    sess = session.Session(data)
    errors, applied = [], 0
    for round_ in range(2):
        for s in statements(plan):
            try:
                run(sess, s)
                applied += 1
            except RuntimeError as e:
                errors.append({"round": round_, "sql": s[:200], "error": str(e)})
    # chDB 1.0 reads inline INSERT data up to the first newline only: one line per statement.
    for s in statements(seed, db):
        s = " ".join(l.strip() for l in s.split("\n"))
        try:
            run(sess, s)
        except RuntimeError as e:
            errors.append({"seed": s[:200], "error": str(e)})
    checks = {}
    for name, sql in {
        "http_logs": f"SELECT count() FROM {db}.http_logs",
        "enriched": f"SELECT asn, country, crawler_rule, crawler_name FROM {db}.http_logs WHERE client_ip = toIPv6('::ffff:203.0.113.7') LIMIT 1",
        "agg_hits": f"SELECT sum(hits), uniqMerge(paths) FROM {db}.agg_host_ip_ja4_1h WHERE client_ip = toIPv6('::ffff:203.0.113.7')",
        "features": f"SELECT hits, post_ratio, path_diversity FROM {db}.view_ai_features_1h WHERE src_ip = toIPv6('::ffff:203.0.113.7')",
        "features_24h": f"SELECT count() FROM {db}.view_ai_features_24h",
    }.items():
        try:
            checks[name] = run(sess, sql).strip()
        except RuntimeError as e:
            errors.append({"check": name, "error": str(e)})
    parsed = 0
    for s in statements(parse):
        lit = "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"
        try:
            run(sess, f"SELECT formatQuery({lit})")
            parsed += 1
        except RuntimeError as e:
            errors.append({"parse": s[:200], "error": str(e)})
    print(json.dumps({"applied": applied, "errors": errors, "checks": checks, "parsed": parsed}))


main()
