"""``tijdig bnpl-eval``: evidence for the pay-later policy, approval rate vs orders that end
in collection. The protocol and the run are :mod:`~training.studies.bnpl_eval.run`; the
simulator's policies :mod:`~training.studies.bnpl_eval.policies`; the figures, plot and
summary :mod:`~training.studies.bnpl_eval.report`.
"""
