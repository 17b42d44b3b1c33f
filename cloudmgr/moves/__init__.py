"""Moves inside and between clouds: live and cold migration, host drain, cross-cloud move.

Every move is a :class:`~cloudmgr.moves.models.Move` row written (who, when, why) before
anything touches a cloud; the work happens in a work-queue item after the commit
(:mod:`cloudmgr.moves.jobs`), step by step, each step recorded with its outcome and the ids
it created, so a move killed anywhere is resumed where it stopped.
"""
