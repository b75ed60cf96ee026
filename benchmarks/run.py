"""``make bench``: every benchmark, results in ``benchmarks/results/*.json`` and ``benchmarks/RESULTS.md``.

    python -m benchmarks.run [--quick]
                             [--only taiwan,taiwan_fairness,online,ingest,shadow,batch,scaling,
                                     offline_batch]
                             [--batch-customers N] [--scaling-sizes 10000,100000,1000000]
                             [--only training_scale --training-sizes 100000,1000000]

Never part of ``make test``. Load generation only against 127.0.0.1 and bounded in time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import common, results_md

ALL = (
    "taiwan",
    "taiwan_fairness",
    "online",
    "ingest",
    "shadow",
    "batch",
    "scaling",
    "training_scale",
    "offline_batch",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, short load: a smoke run")
    parser.add_argument("--only", default=",".join(ALL), help=f"comma-separated subset of {ALL}")
    parser.add_argument(
        "--world-customers",
        type=int,
        default=20_000,
        help="customers of the simulated world shared by online, batch and scaling",
    )
    parser.add_argument(
        "--batch-customers",
        type=int,
        default=None,
        help="batch scoring on its own world of this size (default: the shared world)",
    )
    parser.add_argument(
        "--scaling-sizes",
        default="10000,100000",
        help="sizes simulated, ingested and trained in their own processes (the shared world "
        "is one more point); above 100,000 the store is built from 100,000-customer simulations",
    )
    parser.add_argument(
        "--scaling-store",
        type=Path,
        help="folder for scaling sizes above 100,000 (kept; reused when it already holds that "
        "size) instead of a temporary one; score it afterwards with --batch-world",
    )
    parser.add_argument(
        "--batch-world",
        type=Path,
        help="batch scoring on this data folder with its own champion (e.g. the --scaling-store "
        "folder after a 1,000,000-customer scaling run)",
    )
    parser.add_argument(
        "--batch-store",
        type=Path,
        help="keep the chunk-built store of --batch-customers above 200,000 in this folder "
        "(reused when it already holds that size) instead of a temporary one",
    )
    parser.add_argument(
        "--world",
        type=Path,
        help="reuse this data folder (e.g. .tijdig after `make run`) as the shared world "
        "instead of simulating, ingesting and training a new one",
    )
    parser.add_argument(
        "--training-sizes",
        default="100000,1000000",
        help="training_scale: population sizes (multiples of 100,000), each variant in its "
        "own process",
    )
    parser.add_argument(
        "--training-variants",
        default="in_process,partitioned,sample,dask",
        help="training_scale: which of in_process, partitioned, sample, dask to run",
    )
    parser.add_argument(
        "--training-store",
        type=Path,
        help="training_scale: keep the offline copies here (reused when they hold that size)",
    )
    parser.add_argument(
        "--training-chunks",
        type=Path,
        help="training_scale: 100,000-customer simulations already written as Parquet "
        "(<k>/<table>.parquet, seed 1000+k) to build the offline copies from",
    )
    parser.add_argument(
        "--offline-sizes",
        default="100000,1000000",
        help="offline_batch: customers of each offline copy scored cold",
    )
    parser.add_argument(
        "--offline-dir",
        type=Path,
        default=common.ROOT / ".scratch" / "offline-bench",
        help="offline_batch: where the simulated chunks and the offline copies are kept "
        "(reused by the next run)",
    )
    parser.add_argument(
        "--offline-chunks",
        type=int,
        default=10,
        help="offline_batch: distinct 100,000-customer simulations at most; larger sizes "
        "write them again under new ids (recorded)",
    )
    parser.add_argument(
        "--offline-dask",
        default="local:2",
        help="offline_batch: the --dask cluster also measured ('' for none)",
    )
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="only rebuild RESULTS.md from the results files (keeps the last run's header)",
    )
    args = parser.parse_args(argv)
    if args.render_only:
        last = common.RESULTS_DIR / "_run.json"
        info_last = json.loads(last.read_text()) if last.is_file() else None
        common.RESULTS_MD.write_text(results_md.render_results_md(info_last))
        return 0
    chosen = [x.strip() for x in args.only.split(",") if x.strip()]
    unknown = sorted(set(chosen) - set(ALL))
    if unknown:
        parser.error(f"--only must name some of {ALL}; got {unknown}")

    info: dict[str, Any] = {
        "date": common.now_iso(),
        "machine": common.machine(),
        "commit": common.code_version(),
        "command": "python -m benchmarks.run "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "skipped": [],
    }
    started = time.perf_counter()
    import tempfile

    tmp = tempfile.TemporaryDirectory(prefix="tijdig-bench-world-")
    world: Path | None = None
    world_info: dict[str, Any] = {}
    if args.world is not None:
        world = args.world.resolve()
        world_info = {"reused": str(world)}
    elif {"online", "ingest", "shadow", "scaling", "offline_batch"} & set(chosen) or (
        "batch" in chosen and not args.batch_world
    ):
        # batch on its own --batch-world needs no shared world
        from benchmarks.world import prepare_world_in_child

        world = Path(tmp.name) / "world"
        size = 5_000 if args.quick else args.world_customers
        print(f"== shared world: {size:,} customers", file=sys.stderr, flush=True)
        world_info = prepare_world_in_child(world, customers=size)
    for name in chosen:
        t0 = time.perf_counter()
        print(f"== {name}", file=sys.stderr, flush=True)
        if name == "taiwan":
            from benchmarks import taiwan

            result = taiwan.run(quick=args.quick)
        elif name == "taiwan_fairness":
            from benchmarks import taiwan_fairness

            result = taiwan_fairness.run(quick=args.quick)
        elif name == "online":
            from benchmarks import online

            result = online.run(quick=args.quick, world=world)
            result["world"] = {k: v for k, v in world_info.items() if k != "metrics"}
        elif name == "ingest":  # scoring while a bulk event batch is ingested
            from benchmarks.online import ingest

            result = ingest.run(world=world, quick=args.quick)
        elif name == "shadow":
            from benchmarks.online import shadow

            result = shadow.run(quick=args.quick, world=world)
            result["world"] = {k: v for k, v in world_info.items() if k != "metrics"}
        elif name == "batch":
            from benchmarks import batch

            if args.batch_world:
                result = batch.run(quick=args.quick, world=args.batch_world.resolve())
                if result["customers"] > batch.BIG:
                    result["name"] = "batch_large"
            elif args.batch_customers:
                result = batch.run(
                    quick=args.quick,
                    customers=args.batch_customers,
                    model_world=world,
                    store_dir=args.batch_store.resolve() if args.batch_store else None,
                )
                if result["customers"] > batch.BIG:
                    result["name"] = "batch_large"  # beside the shared world's batch figures
            else:
                result = batch.run(quick=args.quick, world=world)
        elif name == "training_scale":
            from benchmarks import training_scale

            result = training_scale.run(
                sizes=(5_000,)
                if args.quick
                else tuple(int(s) for s in args.training_sizes.split(",")),
                variants=tuple(v.strip() for v in args.training_variants.split(",")),
                store_dir=args.training_store.resolve() if args.training_store else None,
                chunks=args.training_chunks,
                previous=None if args.quick else common.load_results().get("training_scale"),
                checkpoint=None if args.quick else common.write_result,
            )
        elif name == "offline_batch":
            from benchmarks import offline_batch

            assert world is not None
            result = offline_batch.run(
                args.offline_dir.resolve(),
                world,
                sizes=(10_000,)
                if args.quick
                else tuple(int(s) for s in args.offline_sizes.split(",")),
                dask=args.offline_dask or None,
                max_chunks=args.offline_chunks,
            )
        else:
            from benchmarks import scaling

            sizes = tuple(int(s) for s in args.scaling_sizes.split(","))
            result = scaling.run(
                quick=args.quick,
                sizes=sizes,
                shared_world=world_info,
                store_dir=args.scaling_store,
                previous=common.load_results().get("scaling"),
            )
        result["wall_s"] = round(time.perf_counter() - t0, 1)
        path = common.write_result(result)
        print(f"   {path} ({result['wall_s']} s)", file=sys.stderr, flush=True)
    tmp.cleanup()
    info["wall_s"] = round(time.perf_counter() - started, 1)
    if args.quick:
        info["skipped"].append(
            "--quick: small sizes and 10 s load windows (not the issue's figures)"
        )
    info["skipped"] += [s for s in _standing_skips(args)]
    (common.RESULTS_DIR / "_run.json").write_text(json.dumps(info, indent=1) + "\n")
    common.RESULTS_MD.write_text(results_md.render_results_md(info))
    print(f"wrote {common.RESULTS_MD}", file=sys.stderr)
    return 0


def _standing_skips(args: argparse.Namespace) -> list[str]:
    """What this run did not measure at the issue's sizes, and how to run it."""
    out = []
    chosen = {x.strip() for x in args.only.split(",")}
    batch_n = args.batch_customers or args.world_customers
    if (
        "batch" in chosen
        and batch_n < 1_000_000
        and not (common.RESULTS_DIR / "batch_large.json").is_file()
    ):
        out.append(
            f"batch scoring at {batch_n:,} customers, not 1,000,000: simulating, ingesting and "
            "training 1M customers (24 months) does not fit this session's time box on 2 shared "
            "cores; run `python -m benchmarks.run --only batch --batch-customers 1000000`"
        )
    sizes = {int(x) for x in args.scaling_sizes.split(",")} | {args.world_customers}
    written = common.load_results().get("scaling")  # with sizes carried over from earlier runs
    if written:
        sizes |= {r["customers"] for r in written["sizes"]}
    missing = sorted({10_000, 100_000, 1_000_000} - sizes)
    if "scaling" in chosen and missing:
        out.append(
            "scaling at "
            + ", ".join(f"{n:,}" for n in missing)
            + " customers skipped for time; run "
            "`python -m benchmarks.run --only scaling --scaling-sizes 10000,100000,1000000`"
        )
    return out


if __name__ == "__main__":
    raise SystemExit(main())
