"""The reply service the pipeline gives workflows (``apps.workflows.delivery``): a run's result is
told to its user through the same reply path as every other answer."""

from __future__ import annotations

from collections.abc import Callable

from django.db import transaction

from apps.workflows.models import WorkflowRun

from .models import InboundMessage, Message
from .pipeline.sending import send_reply
from .pipeline.storage import storage


class WorkflowReplies:
    def tell(self, run: WorkflowRun, text: Callable[[], str]) -> None:
        target_id = run.confirmed_by_id or run.inbound_id
        if run.conversation_id is None or target_id is None:
            return  # the conversation was deleted (retention): nobody to tell
        target = InboundMessage.objects.filter(pk=target_id).select_related("channel__bot__tenant").first()
        if target is None:
            return
        reply = Message.objects.filter(pk=run.reply_id).first() if run.reply_id else None
        if reply is None:
            body = text()
            with transaction.atomic():
                still_open = WorkflowRun.objects.select_for_update().filter(pk=run.pk, reply__isnull=True).exists()
                if still_open:
                    reply = Message.objects.create(
                        conversation_id=run.conversation_id,
                        inbound=target,
                        role=Message.Role.ASSISTANT,
                        text=body,
                        language=run.language,
                        source="workflow",
                        failed=run.status != WorkflowRun.Status.SUCCEEDED,
                    )
                    WorkflowRun.objects.filter(pk=run.pk).update(reply=reply)
                    InboundMessage.objects.filter(pk=target.pk, reply__isnull=True).update(reply=reply)
                    run.reply = reply
            if reply is None:  # another worker stored it a moment ago
                reply = Message.objects.filter(pk=WorkflowRun.objects.filter(pk=run.pk).values("reply")[:1]).first()
                if reply is None:
                    return
        if reply.delivered_at is not None:
            return
        # One sender at a time: a second task for the same run (a sweep racing a late worker, a
        # redelivered task) waits for the first send here, then finds the reply delivered.
        with transaction.atomic():
            reply = Message.objects.select_for_update().filter(pk=reply.pk).first()
            if reply is not None:
                send_reply(storage(), target, reply)
