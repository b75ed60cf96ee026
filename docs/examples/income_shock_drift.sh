#!/usr/bin/env bash
# Drift monitoring sees a world that moved (issue 23): train on a normal simulated world,
# then score the same later day in that world and in one where an income shock hit, and
# compare each with the model's training reference (`tijdig monitor drift`).
#
#   docs/examples/income_shock_drift.sh [WORK_DIR]
#
# Environment: TIJDIG (the command; default `tijdig`, e.g. "python -m cli.main" from a
# checkout), CUSTOMERS (default 3000). The two worlds share a seed, so they are the same
# customers with the same lives until the shock. About 2-4 minutes on two cores.
# Writes WORK_DIR/drift-normal.md and WORK_DIR/drift-shocked.md (monitor drift's reports)
# and prints both. monitor drift exits 1 when a column reaches the act level (0.25).
set -euo pipefail

TIJDIG=${TIJDIG:-tijdig}
CUSTOMERS=${CUSTOMERS:-3000}
WORK=${1:-$(mktemp -d -t tijdig-shock-XXXXXX)}
# The scenario: from 1 June 2026, 30 % of customers lose 40 % of their pay or benefit
# (a wave of lay-offs); scored on 1 October 2026, four months into it.
SHOCK_FROM=2026-06-01
SHOCK_SHARE=0.3
SHOCK_CUT=0.4
AS_OF=2026-10-01

mkdir -p "$WORK"
echo "== work folder $WORK"

echo "== the normal world: simulate, ingest, train"
$TIJDIG simulate --customers "$CUSTOMERS" --data-dir "$WORK/normal"
$TIJDIG ingest "$WORK/normal/simulation" --data-dir "$WORK/normal"
$TIJDIG train --force --data-dir "$WORK/normal"

echo "== the shocked world: the same seed, the shock from $SHOCK_FROM"
$TIJDIG simulate --customers "$CUSTOMERS" --data-dir "$WORK/shocked" \
  --income-shock-from "$SHOCK_FROM" --income-shock-share "$SHOCK_SHARE" \
  --income-shock-cut "$SHOCK_CUT"
$TIJDIG ingest "$WORK/shocked/simulation" --data-dir "$WORK/shocked"

for world in normal shocked; do
  echo "== score $world on $AS_OF with the normal world's champion, then monitor drift"
  TIJDIG_STORE_URL="sqlite:///$WORK/$world/events.db" $TIJDIG score-batch \
    --as-of "$AS_OF" --no-serving-rows --features --out "$WORK/scores-$world.parquet" \
    --data-dir "$WORK/normal"
  status=0
  $TIJDIG monitor drift --since "$AS_OF" --scores "$WORK/scores-$world.parquet" \
    --data-dir "$WORK/normal" > "$WORK/drift-$world.md" || status=$?
  echo "monitor drift on the $world world: exit $status"
  cat "$WORK/drift-$world.md"
done
