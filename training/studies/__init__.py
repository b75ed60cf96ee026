"""The evidence studies behind the README's figures, each a ``tijdig`` command: forward
simulations that compare tijdig's decisions with a naive policy on the same customers.

* :mod:`training.studies.debit_eval` — debit dates (``tijdig debit-eval``);
* :mod:`training.studies.plan_eval` — payment plans (``tijdig plan-eval``);
* :mod:`training.studies.bnpl_eval` — pay-later approval (``tijdig bnpl-eval``).
"""
