"""``ftdata catalog | lineage | erasure``: the catalog database, record lineage, erasure requests.

Output holds ids, keys, counts, hashes and file paths. Raw rows (restricted: they hold PII) are
printed only with ``lineage --show-raw``; subject identifiers are hashed before they are stored.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ftdata_pipeline.config.loader import load_project


def _catalog(args: argparse.Namespace):
    from ftdata_pipeline.governance.catalog import Catalog, default_catalog_url
    from ftdata_pipeline.orchestration.storage import default_home

    return Catalog(getattr(args, "catalog_url", None) or default_catalog_url(default_home()))


def _storage():
    from ftdata_pipeline.orchestration.storage import PipelineStorage, default_home

    return PipelineStorage(home=default_home())


def _project(args: argparse.Namespace):
    return load_project(args.config_dir)  # a ConfigError is reported by cli.main


# -------------------------------------------------------------------------------- catalog


def _cmd_catalog_upgrade(args: argparse.Namespace) -> int:
    from ftdata_pipeline.governance import catalog as cat

    url = args.catalog_url or cat.default_catalog_url(_storage().home)
    engine = cat.make_engine(url)
    try:
        before = cat.current_revision(engine)
        cat.upgrade(engine, args.revision)
        after = cat.current_revision(engine)
    finally:
        engine.dispose()
    print(f"catalog {cat.shown_url(url)}: {before or 'empty'} -> {after}")
    return 0


def _cmd_catalog_audit(args: argparse.Namespace) -> int:
    catalog = _catalog(args)
    for e in reversed(catalog.audit_log(limit=args.limit, dataset=args.dataset)):
        target = e.dataset or e.source or "-"
        config = ""
        if e.config_hash:
            prev = (e.previous_config_hash or "none")[:12]
            config = f" config {prev} -> {e.config_hash[:12]}"
        print(f"{e.at:%Y-%m-%d %H:%M:%S} {e.action:<18} {target:<22} run={e.run_id or '-'} "
              f"by {e.user}@{e.host}{config} {json.dumps(e.details, sort_keys=True)}")
    return 0


def _cmd_catalog_versions(args: argparse.Namespace) -> int:
    for v in _catalog(args).versions(args.dataset, limit=args.limit):
        print(f"{v.dataset}: run {v.run_id} config {v.config_hash[:12]} code {v.code_version} "
              f"records {v.records} ({v.created_at:%Y-%m-%d %H:%M:%S})")
        for src, facts in sorted((v.inputs or {}).items()):
            facts = facts or {}
            print(f"    input {src}: data_version {str(facts.get('data_version'))[:12]} "
                  f"rows {facts.get('rows')} erased {facts.get('rows_erased')}")
        for f in v.exports:
            print(f"    {f.path}  {f.records} records  sha256 {f.sha256[:16]}")
    return 0


# -------------------------------------------------------------------------------- lineage


def _print_raw(storage, project, source: str, key: str, show_raw: bool) -> None:
    from ftdata_pipeline.governance.lineage import raw_row

    cfg = project.sources.get(source)
    where = ""
    if cfg is not None:
        where = cfg.path if cfg.kind == "file" else f"sql query ({cfg.url_env or 'url'})"
        where = f" in {where}, key column {cfg.key or (cfg.turns.group if cfg.turns else 'row number')}"
    row = raw_row(storage, source, key)
    if row is None:
        print(f"  raw row: {source} / {key}{where}: not in the stored raw asset "
              "(erased, or the source has not been materialized)")
        return
    fields = [k for k, v in row.items() if v is not None]
    print(f"  raw row: {source} / {key}{where}")
    if show_raw:
        # Explicitly asked for: the raw row holds unredacted content.
        print("    " + json.dumps(row, ensure_ascii=False, default=str))
    else:
        print(f"    fields: {', '.join(fields)}  (values hidden: raw data is restricted; "
              "--show-raw prints them)")


def _reconcile(catalog) -> None:
    """Record exports published by a run that died before it could record them."""
    from ftdata_pipeline.governance.reconcile import reconcile_all

    for dataset in reconcile_all(catalog, _storage().root / "exports"):
        print(f"(catalog reconciled with the export on disk for {dataset})", file=sys.stderr)


def _cmd_lineage(args: argparse.Namespace) -> int:
    _reconcile(_catalog(args))
    if args.source:
        return _lineage_source(args)
    if not args.record_id:
        print("give a record id, or --source NAME [--key KEY]", file=sys.stderr)
        return 2
    return _lineage_record(args)


def _lineage_record(args: argparse.Namespace) -> int:
    from ftdata_pipeline.governance.lineage import (
        STAGES,
        raw_keys,
        raw_row,
        record_in_raw,
        record_in_stages,
        stage_decisions,
    )

    project = _project(args)
    storage = _storage()
    catalog = _catalog(args)
    rid = args.record_id
    exported = catalog.lineage_of_record(rid)
    found: dict[str, Any] | None = None
    if exported:
        found = {k: exported[0][k] for k in ("source", "source_key")}
    else:
        # only records sources hold record ids (annotations and teacher outputs do not)
        records_sources = sorted(n for n, s in project.sources.items() if s.role == "records")
        found = record_in_raw(storage, records_sources, rid) or record_in_stages(
            storage, sorted(project.recipes), rid
        )
    if found is None:
        print(f"record {rid}: not found in the catalog's export lineage nor in stored stages")
        return 1
    source, key = found["source"], found["source_key"]
    print(f"record {rid}: source {source}, source_key {key}")
    keys = raw_keys(key, lambda k: raw_row(storage, source, k) is not None)
    for k in keys:
        _print_raw(storage, project, source, k, args.show_raw)
    datasets = sorted(
        name for name, r in project.recipes.items()
        if source in r.sources or (found.get("dataset") == name)
    )
    parts = []
    if len(keys) > 1:  # a pair: its parts went through curated/redacted on their own ids
        parts = [(k, (raw_row(storage, source, k) or {}).get("record_id")) for k in keys]
    for dataset in datasets:
        decisions = []
        for k, part_id in parts:
            for d in stage_decisions(storage, dataset, part_id or "", ("curated", "redacted")):
                decisions.append({**d, "stage": f"{d['stage']}[{k}]"})
        decisions += stage_decisions(
            storage, dataset, rid, ("labeled", "split") if parts else STAGES
        )
        shown = []
        for d in decisions:
            if d["decision"] == "kept":
                shown.append(f"{d['stage']}: kept" + (f" ({d['split']})" if d.get("split") else ""))
            elif d["decision"] == "rejected":
                score = "" if d["score"] is None else f" score={d['score']:.3g}"
                detail = f" ({d['detail']})" if d["detail"] else ""
                shown.append(f"{d['stage']}: REJECTED rule={d['rule']}{score}{detail}")
            else:
                shown.append(f"{d['stage']}: not present")
        print(f"  {dataset}: " + "; ".join(shown))
    for e in exported:
        print(f"  exported in {e['dataset']} (run {e['run_id']}), split {e['split']}, line {e['line']}:")
        for f in e["files"]:
            print(f"    {storage.exports_dir(e['dataset']) / f}")
    if not exported:
        print("  not in any current export")
    return 0


def _lineage_source(args: argparse.Namespace) -> int:
    catalog = _catalog(args)
    storage = _storage()
    if args.key:
        rows = catalog.lineage_of_source(args.source, args.key)
        if not rows:
            print(f"source {args.source} key {args.key}: in no current export")
        for r in rows:
            print(f"{r['dataset']}: record {r['record_id']} (source_key {r['source_key']}), "
                  f"split {r['split']}, line {r['line']}")
            for f in r["files"]:
                print(f"    {storage.exports_dir(r['dataset']) / f}")
        return 0
    summary = catalog.source_summary(args.source)
    if not summary:
        print(f"source {args.source}: no records in any current export")
    for s in summary:
        print(f"{s['dataset']} {s['split']}: {s['records']} records from {args.source}")
        for f in s["files"]:
            print(f"    {storage.exports_dir(s['dataset']) / f}")
    return 0


# -------------------------------------------------------------------------------- erasure


def _cmd_erasure_request(args: argparse.Namespace) -> int:
    from ftdata_pipeline.governance.erasure import ErasureError, current_fingerprint, subject_hash

    project = _project(args)
    cfg = project.sources.get(args.source)
    if cfg is None:
        print(f"unknown source {args.source!r} (see sources.yaml)", file=sys.stderr)
        return 2
    subjects = list(args.subject_id or [])
    if args.subject_id_stdin:
        subjects += [line.strip() for line in sys.stdin if line.strip()]
    if subjects and not cfg.subject_field:
        print(f"source {args.source!r} has no subject_field in sources.yaml: erase by --key",
              file=sys.stderr)
        return 2
    if not subjects and not args.key:
        print("give --key KEY (repeatable) or --subject-id VALUE", file=sys.stderr)
        return 2
    try:
        hashes = [subject_hash(v, allow_unkeyed=args.allow_unkeyed) for v in subjects]
        fingerprint = current_fingerprint() if subjects else None
    except ErasureError as exc:
        print(f"erasure request refused: {exc}", file=sys.stderr)
        return 2
    request_id = _catalog(args).request_erasure(
        args.source, keys=args.key or [], subject_hashes=hashes,
        requester=args.requester, reason=args.reason or "", key_fingerprint=fingerprint,
    )
    how = ""
    if subjects:
        how = (f" (stored as HMAC-SHA256, key fingerprint {fingerprint})" if fingerprint
               else " (stored as UNKEYED SHA-256: guessable from a list of identifiers)")
    print(f"erasure request {request_id} recorded for source {args.source}: "
          f"{len(args.key or [])} key(s), {len(subjects)} subject id(s){how}; "
          "it applies from the next materialization of the source's datasets")
    return 0


def _subject_keys(args, requests) -> tuple[dict[int, set[str]], dict[int, str]]:
    """Source keys matched now by every subject request (read from the sources)."""
    from ftdata_pipeline.governance.erasure import ErasureRule

    found: dict[int, set[str]] = {}
    errors: dict[int, str] = {}
    wanted = [r for r in requests if any(i.match == "subject" for i in r.items)]
    if not wanted:
        return found, errors
    try:
        project = _project(args)
    except Exception as exc:  # noqa: BLE001 - the report goes on without the source
        return found, {r.id: f"config not loaded ({type(exc).__name__})" for r in wanted}
    for source in sorted({r.source for r in wanted}):
        cfg = project.sources.get(source)
        reqs = [r for r in wanted if r.source == source]
        if cfg is None:
            errors.update({r.id: "source no longer in sources.yaml" for r in reqs})
            continue
        rules = [ErasureRule(r.id, i.match, i.value, i.scheme, i.key_fingerprint)
                 for r in reqs for i in r.items if i.match == "subject"]
        try:
            f, e = _locate_subjects(source, cfg, project.root, rules)
        except Exception as exc:  # noqa: BLE001 - an unreadable source is reported, not fatal
            f, e = {}, {r.id: f"source not readable ({type(exc).__name__})" for r in reqs}
        found.update(f)
        errors.update(e)
    return found, errors


def _locate_subjects(source: str, cfg, root, rules):
    """locate_subjects over the source, or over each file of a source partitioned by file."""
    from ftdata_pipeline.governance.erasure import locate_subjects

    if cfg.partition is None or cfg.partition.by != "file":
        return locate_subjects(source, cfg, root, rules)
    from ftdata_pipeline.sources.partitioned import partition_files

    found: dict[int, set[str]] = {}
    errors: dict[int, str] = {}
    for path in partition_files(cfg, Path(root)).values():
        one = cfg.model_copy(update={"path": str(path), "partition": None})
        f, e = locate_subjects(source, one, root, rules)
        for rid, keys in f.items():
            found.setdefault(rid, set()).update(keys)
        errors.update(e)
    return found, errors


def _stored_raw_partition_keys(source: str) -> dict[str, set[str]]:
    """Partition -> source keys of every stored partition of a partitioned raw asset."""
    import polars as pl

    paths = _storage().partition_paths(["raw", source], restricted=True)
    return {k: set(pl.read_parquet(p, columns=["source_key"])["source_key"].to_list())
            for k, p in paths.items()}


def _stored_raw_keys(source: str) -> set[str] | None:
    import polars as pl

    path = _storage().asset_path(["raw", source], restricted=True)
    if not path.exists():
        partitions = _stored_raw_partition_keys(source)
        return set().union(*partitions.values()) if partitions else None
    return set(pl.read_parquet(path, columns=["source_key"])["source_key"].to_list())


def _cmd_erasure_list(args: argparse.Namespace) -> int:
    catalog = _catalog(args)
    _reconcile(catalog)
    requests = catalog.erasure_requests(args.source)
    if not requests:
        print("no erasure requests")
    subject_keys, subject_errors = _subject_keys(args, requests)
    raw_keys: dict[str, set[str] | None] = {}
    for r in requests:
        keys = [i.value for i in r.items if i.match == "key"]
        subjects = [i for i in r.items if i.match == "subject"]
        state = r.status
        if r.status == "fulfilled":
            state += f" by run {r.fulfilled_run_id} ({r.rows_erased} row(s) erased)"
        hashing = ""
        if subjects:
            unkeyed = [i for i in subjects if i.scheme != "hmac-sha256"]
            fps = sorted({i.key_fingerprint or "unknown" for i in subjects if i not in unkeyed})
            hashing = (" UNKEYED sha256 (guessable from a list of identifiers)" if unkeyed
                       else f" hmac-sha256, key fingerprint {', '.join(fps)}")
        located = set(keys) | subject_keys.get(r.id, set())
        exported: dict[str, int] = {}
        for k in sorted(located):
            for row in catalog.lineage_of_source(r.source, k):
                where = f"{row['dataset']} {row['split']}"
                exported[where] = exported.get(where, 0) + 1
        still = sum(exported.values())
        print(f"#{r.id} {r.source} requested {r.requested_at:%Y-%m-%d %H:%M} by {r.requester}: "
              f"keys {keys or '-'}, subject ids {len(subjects)}{hashing}; {state}"
              + (f"; STILL in {still} exported record(s): rematerialize" if still else "")
              + (f" — {r.reason}" if r.reason else ""))
        if r.id in subject_errors:
            print(f"    subject rows: cannot be located: {subject_errors[r.id]}")
        if r.source not in raw_keys:
            raw_keys[r.source] = _stored_raw_keys(r.source)
        stored = raw_keys[r.source]
        parts = []
        if subjects and r.id not in subject_errors:
            parts.append(f"source system {len(subject_keys.get(r.id, set()))} row(s) (kept "
                         "out of every run; delete them there)")
        parts.append(f"raw/{r.source} {'not stored' if stored is None else len(located & stored)}")
        holding = [k for k, ks in _stored_raw_partition_keys(r.source).items() if located & ks]
        if holding:
            parts.append(f"raw/{r.source} partition(s) {', '.join(holding)}: rematerialize them")
        parts.append("exports " + (", ".join(f"{w}: {n}" for w, n in sorted(exported.items()))
                                   or "0"))
        print("    rows now: " + "; ".join(parts))
    return 0


def register(subparsers) -> None:
    """Add the ``catalog``, ``lineage`` and ``erasure`` commands to the ``ftdata`` parser."""
    url_help = "catalog database URL (default: FTDATA_CATALOG_URL, else $FTDATA_HOME/catalog.db)"

    cat = subparsers.add_parser("catalog", help="catalog and audit database")
    cat_sub = cat.add_subparsers(dest="catalog_command", required=True)
    up = cat_sub.add_parser("upgrade", help="create or migrate the catalog schema (Alembic)")
    up.add_argument("--revision", default="head")
    up.add_argument("--catalog-url", default=None, help=url_help)
    up.set_defaults(func=_cmd_catalog_upgrade)
    audit = cat_sub.add_parser("audit", help="audit log: runs, erasure requests, who and when")
    audit.add_argument("--dataset")
    audit.add_argument("--limit", type=int, default=50)
    audit.add_argument("--catalog-url", default=None, help=url_help)
    audit.set_defaults(func=_cmd_catalog_audit)
    ver = cat_sub.add_parser("versions", help="dataset versions with inputs and export files")
    ver.add_argument("--dataset")
    ver.add_argument("--limit", type=int, default=10)
    ver.add_argument("--catalog-url", default=None, help=url_help)
    ver.set_defaults(func=_cmd_catalog_versions)

    lin = subparsers.add_parser(
        "lineage", help="trace an exported example to its raw row, or a source to its exports"
    )
    lin.add_argument("record_id", nargs="?", help="record id (the `id` of an exported line)")
    lin.add_argument("--source", help="list the exports holding records from this source")
    lin.add_argument("--key", help="with --source: one source key")
    lin.add_argument("--show-raw", action="store_true",
                     help="print the raw row's values (restricted data: holds PII)")
    lin.add_argument("--catalog-url", default=None, help=url_help)
    lin.set_defaults(func=_cmd_lineage)

    era = subparsers.add_parser("erasure", help="erasure (right to be forgotten) requests")
    era_sub = era.add_subparsers(dest="erasure_command", required=True)
    req = era_sub.add_parser("request", help="record an erasure request")
    req.add_argument("--source", required=True)
    req.add_argument("--key", action="append", help="source key to erase (repeatable)")
    req.add_argument("--subject-id", action="append",
                     help="data-subject identifier matched on the source's subject_field "
                     "(stored only as a hash; prefer --subject-id-stdin to keep it out of "
                     "shell history)")
    req.add_argument("--subject-id-stdin", action="store_true",
                     help="read subject identifiers from stdin, one per line")
    req.add_argument("--allow-unkeyed", action="store_true",
                     help="without FTDATA_SUBJECT_HASH_KEY, store subject ids as unkeyed "
                     "SHA-256 (guessable from a list of identifiers; reported as unkeyed)")
    req.add_argument("--reason", default="")
    req.add_argument("--requester", default=None, help="default: the current user")
    req.add_argument("--catalog-url", default=None, help=url_help)
    req.set_defaults(func=_cmd_erasure_request)
    lst = era_sub.add_parser("list", help="erasure requests and their status")
    lst.add_argument("--source")
    lst.add_argument("--catalog-url", default=None, help=url_help)
    lst.set_defaults(func=_cmd_erasure_list)
