"""The fake Telegram API for the tests: a real HTTP server on 127.0.0.1 (``tests.fakes.server``)
speaking the platform's wire format, request builders that sign (and encrypt) callbacks as the
platform does, and the platform end of its long connection (``tests.fakes.connectors.FakeSocketServer``)."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

from tests.fakes.platforms import sample_json
from tests.fakes.server import FakeServer, RecordedRequest, Response

TELEGRAM_ASKER = {"id": 412503776, "is_bot": False, "first_name": "Mei", "username": "meilin", "language_code": "en"}


def _telegram_error(status: int, description: str) -> tuple[int, dict]:
    return status, {"ok": False, "error_code": status, "description": description}


class FakeTelegramBot:
    """``sendMessage``, ``editMessageText``, ``deleteMessage``, ``answerCallbackQuery``,
    ``editMessageReplyMarkup`` and ``setWebhook`` for one bot token, as api.telegram.org answers
    them. Each sent message is kept (with its text, keyboard and edits), so an edit of a message
    that does not exist, or one that changes nothing, is refused the way Telegram refuses it;
    button ``callback_data`` outside 1–64 bytes is refused on send.

    ``rate_limit=True`` adds Telegram's flood control as this fake models it: a chat takes at most
    two messages and edits within any second (about one a second, with a short burst); one more
    is refused with 429 and ``retry_after``, and counted in ``refused``."""

    RATE_WINDOW_S = 1.0
    RATE_BURST = 2

    def __init__(
        self, server: FakeServer, *, token: str, first_message_id: int = 2000, bot_id: int = 0, rate_limit: bool = False
    ) -> None:
        self.server, self.token = server, token
        self.bot = {"id": bot_id or int(token.split(":", 1)[0]), "is_bot": True, "first_name": "Parley"}
        self.messages: dict[tuple[Any, int], dict] = {}
        self.rate_limit = rate_limit
        self.refused = 0
        self._calls: dict[Any, list[float]] = {}
        self._rate_lock = threading.Lock()
        self._ids = itertools.count(first_message_id)
        prefix = f"/bot{token}/"
        server.route("POST", prefix + "sendMessage", self.send_message)
        server.route("POST", prefix + "editMessageText", self._edit_text)
        server.route("POST", prefix + "deleteMessage", self._delete)
        server.route("POST", prefix + "answerCallbackQuery", self._answer)
        server.route("POST", prefix + "editMessageReplyMarkup", self._edit)
        server.route("POST", prefix + "setWebhook", lambda req: (200, {"ok": True, "result": True}))

    def _flood(self, chat_id: Any) -> tuple[int, dict] | None:
        """None when the chat may take one more message or edit now; else Telegram's 429."""
        if not self.rate_limit:
            return None
        now = time.monotonic()
        with self._rate_lock:
            recent = [t for t in self._calls.get(chat_id, []) if now - t < self.RATE_WINDOW_S]
            if len(recent) >= self.RATE_BURST:
                self.refused += 1
                self._calls[chat_id] = recent
                status, body = _telegram_error(429, "Too Many Requests: retry after 1")
                body["parameters"] = {"retry_after": 1}
                return status, body
            self._calls[chat_id] = [*recent, now]
        return None

    @staticmethod
    def _bad_buttons(markup: dict | None) -> bool:
        for row in (markup or {}).get("inline_keyboard", []):
            for button in row:
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= 64:
                    return True
        return False

    def send_message(self, req: RecordedRequest) -> tuple[int, dict]:
        body = req.json()
        markup = body.get("reply_markup")
        if self._bad_buttons(markup):
            return _telegram_error(400, "Bad Request: BUTTON_DATA_INVALID")
        if refused := self._flood(body.get("chat_id")):
            return refused
        message = {
            "message_id": next(self._ids),
            "from": self.bot,
            "chat": {"id": body["chat_id"], "type": "private" if int(body["chat_id"]) > 0 else "supergroup"},
            "date": int(time.time()),
            "text": body.get("text", ""),
        }
        if markup:
            message["reply_markup"] = markup
        self.messages[(body["chat_id"], message["message_id"])] = message
        return 200, {"ok": True, "result": message}

    def _answer(self, req: RecordedRequest) -> tuple[int, dict]:
        body = req.json()
        if not body.get("callback_query_id"):
            return _telegram_error(
                400, "Bad Request: query is too old and response timeout expired or query ID is invalid"
            )
        if len(body.get("text") or "") > 200:
            return _telegram_error(400, "Bad Request: MESSAGE_TOO_LONG")
        return 200, {"ok": True, "result": True}

    def _edit(self, req: RecordedRequest) -> tuple[int, dict]:
        body = req.json()
        message = self.messages.get((body.get("chat_id"), body.get("message_id")))
        if message is None:
            return _telegram_error(400, "Bad Request: message to edit not found")
        if message.get("reply_markup") == body.get("reply_markup"):
            return _telegram_error(
                400,
                "Bad Request: message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message",
            )
        message["reply_markup"] = body.get("reply_markup")
        message["edit_date"] = int(time.time())
        return 200, {"ok": True, "result": message}

    def _edit_text(self, req: RecordedRequest) -> tuple[int, dict]:
        body = req.json()
        message = self.messages.get((body.get("chat_id"), body.get("message_id")))
        if message is None:
            return _telegram_error(400, "Bad Request: message to edit not found")
        if not str(body.get("text") or "").strip():
            return _telegram_error(400, "Bad Request: message text is empty")
        if self._bad_buttons(body.get("reply_markup")):
            return _telegram_error(400, "Bad Request: BUTTON_DATA_INVALID")
        if message["text"] == body.get("text") and message.get("reply_markup") == body.get("reply_markup"):
            return _telegram_error(
                400,
                "Bad Request: message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message",
            )
        if refused := self._flood(body.get("chat_id")):
            return refused
        message["text"] = body["text"]
        if body.get("reply_markup"):
            message["reply_markup"] = body["reply_markup"]
        else:
            message.pop("reply_markup", None)
        message["edit_date"] = int(time.time())
        message.setdefault("versions", []).append(body["text"])
        return 200, {"ok": True, "result": message}

    def _delete(self, req: RecordedRequest) -> tuple[int, dict]:
        body = req.json()
        if self.messages.pop((body.get("chat_id"), body.get("message_id")), None) is None:
            return _telegram_error(400, "Bad Request: message to delete not found")
        return 200, {"ok": True, "result": True}

    def chat(self, chat_id: Any) -> list[dict]:
        """The bot's messages in ``chat_id`` as the user sees them now, oldest first (deleted ones
        gone, edited ones in their latest form; ``versions`` lists each edit's text)."""
        return [m for (chat, _), m in sorted(self.messages.items(), key=lambda kv: kv[0][1]) if chat == chat_id]

    @property
    def text_edits(self) -> list[RecordedRequest]:
        return self._requests("editMessageText")

    def _requests(self, method: str) -> list[RecordedRequest]:
        return self.server.requests_to(f"/bot{self.token}/{method}")

    @property
    def sent(self) -> list[RecordedRequest]:
        return self._requests("sendMessage")

    @property
    def answers(self) -> list[RecordedRequest]:
        return self._requests("answerCallbackQuery")

    @property
    def edits(self) -> list[RecordedRequest]:
        return self._requests("editMessageReplyMarkup")

    def message(self, chat_id: Any, message_id: int) -> dict:
        """A sent message as Telegram now holds it (with its current keyboard)."""
        return self.messages[(chat_id, message_id)]


_callback_ids = itertools.count(4204611973380061)


def telegram_callback(
    message: dict, button: int = 0, *, update_id: int, user: dict | None = None, data: Any = ..., language: str = ""
) -> dict:
    """The update Telegram sends when ``user`` (default: the asker of the private-chat sample)
    presses button ``button`` of the bot's ``message`` (as Telegram holds it, keyboard included).
    ``data`` replaces what the button carries (a bad client can send anything)."""
    sender = dict(user or TELEGRAM_ASKER)
    if language:
        sender["language_code"] = language
    row = message.get("reply_markup", {}).get("inline_keyboard", [[]])[0]
    query: dict[str, Any] = {
        "id": str(next(_callback_ids)),
        "from": sender,
        "message": message,
        "chat_instance": "-6312874162357361243",
    }
    pressed = row[button]["callback_data"] if data is ... else data
    if pressed is not None:
        query["data"] = pressed
    return {"update_id": update_id, "callback_query": query}


# --- the long connection ----------------------------------------------------------------------


class FakeTelegramPolling:
    """The Bot API for one token: updates queued by the test are served to ``getUpdates`` from the
    requested ``offset`` on (confirmed ones are forgotten, as Telegram does); a poll with nothing to
    give waits a little, like a long poll."""

    def __init__(self, http: FakeServer, *, token: str, webhook_url: str = "", wait: float = 0.3) -> None:
        self.http, self.token = http, token
        self.webhook_url = webhook_url
        self.wait = wait
        self.updates: list[dict] = []
        self.offsets: list[int | None] = []
        self._lock = threading.Lock()
        self.bot = FakeTelegramBot(http, token=token, first_message_id=1001)
        prefix = f"/bot{token}/"
        http.route("POST", prefix + "getWebhookInfo", self._info)
        http.route("POST", prefix + "deleteWebhook", self._delete)
        http.route("POST", prefix + "getUpdates", self._get_updates)
        http.route("POST", prefix + "sendMessage", self._send)

    def queue(self, update: dict) -> None:
        with self._lock:
            self.updates.append(update)

    def _info(self, req: RecordedRequest) -> Response:
        return Response(200, {"ok": True, "result": {"url": self.webhook_url, "pending_update_count": 0}})

    def _delete(self, req: RecordedRequest) -> Response:
        self.webhook_url = ""
        return Response(200, {"ok": True, "result": True, "description": "Webhook was deleted"})

    def _get_updates(self, req: RecordedRequest) -> Response:
        if self.webhook_url:
            return Response(
                409,
                {
                    "ok": False,
                    "error_code": 409,
                    "description": "Conflict: can't use getUpdates method while webhook is active; "
                    "use deleteWebhook to delete the webhook first",
                },
            )
        offset = req.json().get("offset")
        deadline = time.monotonic() + self.wait
        while True:
            with self._lock:
                self.offsets.append(offset)
                if isinstance(offset, int):
                    self.updates = [u for u in self.updates if u["update_id"] >= offset]
                pending = list(self.updates)
            if pending or time.monotonic() > deadline:
                return Response(200, {"ok": True, "result": pending})
            time.sleep(0.05)
            with self._lock:
                self.offsets.pop()

    def _send(self, req: RecordedRequest) -> Response:
        return Response(*self.bot.send_message(req))  # kept, so a click on its buttons can be edited

    @property
    def sent(self) -> list[RecordedRequest]:
        return self.http.requests_to(f"/bot{self.token}/sendMessage")

    @property
    def deletes(self) -> list[RecordedRequest]:
        return self.http.requests_to(f"/bot{self.token}/deleteWebhook")


def telegram_update(update_id: int, *, text: str) -> dict:
    update = sample_json("telegram", "private_message.json")
    update["update_id"] = update_id
    update["message"]["message_id"] = update_id % 100000
    update["message"]["text"] = text
    return update
