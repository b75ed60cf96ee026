"""``tijdig``: the command line, a thin shell over ``training`` and ``service``. This
module assembles the app; each command group lives in its own module (``data``,
``models``, ``serving``, ``evidence``, ``decisions``, ``reports``, ``monitor``,
``offline``; shared
checks in ``checks``)."""

from __future__ import annotations

import typer

from cli import data, decisions, evidence, models, monitor, offline, reports, serving

app = typer.Typer(
    help="tijdig — risk and affordability scoring for social collection.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(models.models_app, name="models")
app.command("simulate")(data.simulate)
app.command("ingest")(data.ingest)
app.command("export")(data.export)
app.command("train")(models.train)
app.command("evaluate")(models.evaluate)
app.command("serve")(serving.serve)
app.command("run")(serving.run)
app.command("import")(data.import_statements)
app.command("score-batch")(serving.score_batch_command)
app.command("debit-eval")(evidence.debit_eval)
app.command("plan-eval")(evidence.plan_eval)
app.command("bnpl-eval")(evidence.bnpl_eval)
app.command("targeting-eval")(evidence.targeting_eval)
app.command("flow-eval")(evidence.flow_eval)
app.add_typer(serving.features_app, name="features")
app.add_typer(decisions.decisions_app, name="decisions")
app.add_typer(reports.reports_app, name="report")
app.add_typer(monitor.monitor_app, name="monitor")
app.add_typer(offline.offline_app, name="offline")

if __name__ == "__main__":
    app()
