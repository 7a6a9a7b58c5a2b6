from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model, password_validation
from django.core.validators import RegexValidator
from django.utils.translation import gettext_lazy as _

from apps.channels.models import Channel, key_validator
from apps.core.fields import EndpointFormField
from apps.tenants.models import Tenant, slug_validator

from .services import check_setup_token

PROVIDERS = [
    ("builtin", _("Built-in model — answers from knowledge entries, no API key needed")),
    ("openai", _("OpenAI-compatible API (OpenAI, GLM, DeepSeek, Qwen, Moonshot, Ollama, vLLM…)")),
    ("anthropic", "Anthropic"),
]


class SetupForm(forms.Form):
    setup_token = forms.CharField(
        label=_("Setup token"),
        max_length=64,
        help_text=_("Printed in the console where Parley started (or run: python manage.py setup_token)."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "autofocus": True}),
    )
    username = forms.CharField(
        label=_("Admin username"),
        max_length=150,
        validators=[RegexValidator(r"^[\w.@+-]+$", _("Letters, digits and @/./+/-/_ only."))],
    )
    email = forms.EmailField(label=_("Admin e-mail"), required=False)
    password1 = forms.CharField(label=_("Password"), widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    password2 = forms.CharField(
        label=_("Password again"), widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )
    tenant_name = forms.CharField(label=_("Company (tenant) name"), max_length=200, initial=_("My Company"))
    tenant_slug = forms.CharField(
        label=_("Tenant short name"), max_length=63, initial="my-company", validators=[slug_validator]
    )
    provider = forms.ChoiceField(label=_("AI model"), choices=PROVIDERS, initial="builtin", widget=forms.RadioSelect)
    endpoint = EndpointFormField(
        label=_("API base URL"), required=False, max_length=500, help_text=_("e.g. https://api.openai.com/v1")
    )
    api_key = forms.CharField(
        label=_("API key"), required=False, widget=forms.PasswordInput(attrs={"autocomplete": "off"})
    )
    model_name = forms.CharField(label=_("Model name"), required=False, max_length=200, help_text=_("e.g. glm-4-turbo"))
    bot_name = forms.CharField(label=_("Bot name"), max_length=200, initial=_("Assistant"))
    channel_key = forms.CharField(
        label=_("Web chat key"),
        max_length=64,
        initial="my-company-web",
        validators=[key_validator],
        help_text=_("Used in the chat URL: /chat/<key>/"),
    )

    def clean_setup_token(self) -> str:
        token = self.cleaned_data["setup_token"]
        if not check_setup_token(token):
            raise forms.ValidationError(
                _("This setup token is not right. Copy it from the console where Parley started.")
            )
        return token

    def clean_username(self) -> str:
        username = self.cleaned_data["username"]
        if get_user_model().objects.filter(username=username).exists():
            raise forms.ValidationError(_("A user with this name exists already."))
        return username

    def clean_tenant_slug(self) -> str:
        slug = self.cleaned_data["tenant_slug"]
        if Tenant.objects.filter(slug=slug).exists():
            raise forms.ValidationError(_("A tenant with this short name exists already."))
        return slug

    def clean_channel_key(self) -> str:
        key = self.cleaned_data["channel_key"]
        if Channel.objects.filter(key=key).exists():
            raise forms.ValidationError(_("A channel with this key exists already."))
        return key

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        p1, p2 = cleaned.get("password1"), cleaned.get("password2")
        if p1 and p2 and p1 != p2:
            self.add_error("password2", _("The two passwords differ."))
        elif p1:
            user = get_user_model()(username=cleaned.get("username", ""), email=cleaned.get("email", ""))
            try:
                password_validation.validate_password(p1, user)
            except forms.ValidationError as exc:
                self.add_error("password1", exc)
        if cleaned.get("provider") in ("openai", "anthropic"):
            # (An endpoint given but refused has its own error already.)
            if cleaned.get("provider") == "openai" and not cleaned.get("endpoint") and "endpoint" not in self.errors:
                self.add_error("endpoint", _("An OpenAI-compatible model needs its API base URL."))
            if not cleaned.get("model_name"):
                self.add_error("model_name", _("Name the model to use, e.g. glm-4-turbo."))
            if not cleaned.get("api_key") and cleaned.get("provider") == "anthropic":
                self.add_error("api_key", _("Anthropic needs an API key."))
        return cleaned
