"""The steps of the message pipeline, in the order they run.

Each step is a module with ``run(turn) -> Outcome``: it reads the turn, does its part (storing and
sending through ``turn.storage`` and ``..sending``), fills in what it learnt, and says CONTINUE
(the next step runs) or DONE (the message's handling is over: answered, handed to a workflow,
merged into another answer, or no longer this worker's). ``process.handle`` runs them.

Adding a step is a module here and one line below (docs/pipeline.md).
"""

from __future__ import annotations

from collections.abc import Callable

from ..turn import Outcome, Turn
from . import (
    cached_answer,
    cite,
    commands,
    context,
    deliver,
    generate,
    handoff_gate,
    knowledge,
    merge,
    refused,
    resume,
    retrieve,
    session,
    store,
    user_turn,
    workflows,
)

Step = Callable[[Turn], Outcome]

STEPS: list[Step] = [
    resume.run,  # an answer stored before a crash is sent (once), not made again
    session.run,  # the conversation, and the language to answer in
    handoff_gate.run,  # a person holds the conversation (the bot is silent), or /human asks for one
    workflows.run,  # a workflow trigger or a confirmation's "yes"/"no"
    commands.run,  # /help, /reset, /stop, /lang …
    refused.run,  # over a rate limit: the notice only
    user_turn.run,  # the user's turn is stored
    merge.run,  # the merge window; earlier messages folded in; a newer one takes over
    context.run,  # what the model is sent, and which models to try
    knowledge.run,  # a knowledge entry (Q&A) answers, on any turn
    retrieve.run,  # the bot's knowledge bases: passages into the prompt, or "I don't know"
    cached_answer.run,  # the answer cache answers a context-free question
    generate.run,  # the models answer (identical questions in flight share one call)
    cite.run,  # the sources an answer cites are listed under it and kept on the reply
    store.run,  # the reply is stored, unless the sender wrote again
    deliver.run,  # the reply is sent and the message finished
]
