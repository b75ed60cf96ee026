"""Targeting evidence (issue 22 item 3): whom a contact team of limited capacity should call.

``tijdig targeting-eval``: tijdig's probability vs the traditional rule (second reminder
open) vs at random vs an uplift model fitted on a randomised pilot; see :mod:`.run`.
"""
