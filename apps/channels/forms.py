from __future__ import annotations

import json
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from apps.core.crypto import mask_secret

from .connectors import long_connection_problems
from .models import Channel
from .services import validate_credentials


def masked_credentials(credentials: dict[str, Any]) -> dict[str, str]:
    return {k: mask_secret(str(v)) if v else "" for k, v in sorted(credentials.items())}


class CredentialsField(forms.CharField):
    widget = forms.Textarea(attrs={"rows": 6, "cols": 80, "spellcheck": "false", "style": "font-family: monospace"})


class ChannelForm(forms.ModelForm):
    """Credentials are edited as JSON. Saved values are shown masked; a value left as its mask
    keeps the saved secret, so editing one key never requires re-typing the others."""

    credentials = CredentialsField(
        required=False,
        help_text=_(
            'JSON object, e.g. {"app_id": "…", "app_secret": "…"}. Saved secrets appear masked; '
            "leave a masked value as it is to keep it."
        ),
    )

    class Meta:
        model = Channel
        fields = (
            "bot",
            "platform",
            "key",
            "name",
            "mode",
            "enabled",
            "streaming",
            "credentials",
            "api_base",
            "allowed_origins",
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        saved = self.instance.credentials if self.instance.pk else {}
        self.initial["credentials"] = json.dumps(masked_credentials(saved), indent=2, ensure_ascii=False)

    def clean_credentials(self) -> dict[str, str]:
        raw = (self.cleaned_data.get("credentials") or "").strip() or "{}"
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(
                _("Not valid JSON: %(error)s (line %(line)d, column %(column)d).")
                % {"error": exc.msg, "line": exc.lineno, "column": exc.colno}
            ) from exc
        if not isinstance(value, dict) or not all(isinstance(v, str | int) for v in value.values()):
            raise forms.ValidationError(_("Credentials must be a JSON object of names to text values."))
        saved = self.instance.credentials if self.instance.pk else {}
        masks = masked_credentials(saved)
        merged = {}
        for key, val in value.items():
            val = str(val)
            merged[key] = saved[key] if key in saved and val == masks.get(key) else val
        return merged

    def clean(self) -> dict:
        cleaned = super().clean()
        platform = cleaned.get("platform")
        if platform and cleaned.get("mode") == Channel.Mode.LONG_CONNECTION:
            # The connection authenticates itself: webhook secrets are not needed, its own keys are.
            problems = long_connection_problems(
                platform, cleaned.get("credentials") or {}, enabled=cleaned.get("enabled", True)
            )
            for field, errors in problems.items():
                if field == "mode" or "credentials" in cleaned:
                    for error in errors:
                        self.add_error(field, error)
        elif platform and "credentials" in cleaned:
            for error in validate_credentials(platform, cleaned["credentials"], enabled=cleaned.get("enabled", True)):
                self.add_error("credentials", error)
        return cleaned


class SendTestForm(forms.Form):
    chat_id = forms.CharField(max_length=200, help_text=_("Chat, group or conversation id on the platform."))
    user_id = forms.CharField(max_length=200, required=False, help_text=_("User id, where the platform needs one."))
    is_group = forms.BooleanField(required=False)
