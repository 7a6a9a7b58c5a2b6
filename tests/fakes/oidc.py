"""A fake OpenID Connect identity provider: a real HTTP server on 127.0.0.1 laid out like a Keycloak
realm, speaking the real wire format.

* ``GET  /realms/parley/.well-known/openid-configuration`` — discovery
* ``GET  /realms/parley/protocol/openid-connect/auth`` — authorize: checks the request (client id,
  redirect URI, state, nonce, PKCE S256) and redirects back with ``code`` and ``state`` (or with
  ``error=access_denied`` when ``deny`` is set)
* ``POST /realms/parley/protocol/openid-connect/token`` — checks client authentication (Basic),
  the code, the redirect URI and the PKCE verifier; answers with an RS256 id_token
* ``GET  /realms/parley/protocol/openid-connect/userinfo`` — the claims, for the access token
* ``GET  /realms/parley/protocol/openid-connect/certs`` — the JWKS

The signing key is an RSA key generated here with ``cryptography``. Tests change what the next
id_token looks like through ``user`` (the person signing in), ``claim_overrides`` and
``tamper`` ("signature", "other_key", "hs256").
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any
from urllib.parse import parse_qs, urlencode

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.fakes.server import FakeServer, RecordedRequest, Response

REALM = "/realms/parley"
OIDC = REALM + "/protocol/openid-connect"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int_b64(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


class FakeIdentityProvider:
    def __init__(self, server: FakeServer, *, client_id: str = "parley-admin", client_secret: str = "") -> None:
        self.server = server
        self.client_id = client_id
        self.client_secret = client_secret or "idp-secret-" + secrets.token_hex(12)
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "parley-test-key"
        self.user: dict[str, Any] = {}
        self.claim_overrides: dict[str, Any] = {}
        self.email_in_id_token = True
        self.tamper = ""
        self.deny = False
        self.token_status = 200
        self.codes: dict[str, dict[str, Any]] = {}
        self.pkce_checked = 0
        self.problems: list[str] = []  # requests the provider found wrong (a real one would refuse them)
        server.route("GET", REALM + "/.well-known/openid-configuration", self._discovery)
        server.route("GET", OIDC + "/auth", self._authorize)
        server.route("POST", OIDC + "/token", self._token)
        server.route("GET", OIDC + "/userinfo", self._userinfo)
        server.route("GET", OIDC + "/certs", self._jwks)
        server.route("GET", OIDC + "/logout", self._logout)
        self.end_session = True  # the discovery document names an end_session_endpoint
        self.issued_id_tokens: list[str] = []
        self.logouts: list[dict[str, str]] = []  # the query of each logout request

    @property
    def issuer(self) -> str:
        return self.server.url + REALM

    def sign_in_as(self, email: str, *, verified: Any = True, sub: str = "", **claims: Any) -> None:
        """The person who will be signed in at the provider on the next authorize request."""
        self.user = {"sub": sub or "kc-" + hashlib.sha256(email.encode()).hexdigest()[:12], "email": email, **claims}
        if verified is not None:
            self.user["email_verified"] = verified

    # --- endpoints ------------------------------------------------------------------------------
    def _discovery(self, req: RecordedRequest) -> tuple[int, Any]:
        return 200, {
            "issuer": self.issuer,
            "authorization_endpoint": self.server.url + OIDC + "/auth",
            "token_endpoint": self.server.url + OIDC + "/token",
            "userinfo_endpoint": self.server.url + OIDC + "/userinfo",
            "jwks_uri": self.server.url + OIDC + "/certs",
            **({"end_session_endpoint": self.server.url + OIDC + "/logout"} if self.end_session else {}),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "HS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        }

    def _authorize(self, req: RecordedRequest) -> Response:
        q = {k: v[0] for k, v in req.query.items()}
        for name in ("state", "nonce", "code_challenge", "redirect_uri"):
            if not q.get(name):
                self.problems.append(f"authorize without {name}")
        if q.get("client_id") != self.client_id:
            self.problems.append("authorize with another client id")
        if q.get("response_type") != "code" or q.get("code_challenge_method") != "S256":
            self.problems.append("authorize not code + S256")
        if "openid" not in q.get("scope", "").split():
            self.problems.append("authorize without the openid scope")
        redirect = q.get("redirect_uri", "")
        if self.deny:
            params = {"error": "access_denied", "error_description": "User denied consent", "state": q.get("state", "")}
        else:
            code = secrets.token_urlsafe(16)
            self.codes[code] = {
                "nonce": q.get("nonce"),
                "challenge": q.get("code_challenge"),
                "redirect_uri": redirect,
                "user": dict(self.user),
            }
            params = {"code": code, "state": q.get("state", "")}
        return Response(302, b"", {"Location": redirect + "?" + urlencode(params)})

    def _token(self, req: RecordedRequest) -> Response | tuple[int, Any]:
        if self.token_status != 200:
            return Response(self.token_status, "<html>upstream broke</html>", {"Content-Type": "text/html"})
        form = {k: v[0] for k, v in parse_qs(req.body.decode()).items()}
        expected = "Basic " + base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if req.headers.get("Authorization") != expected:
            return 401, {"error": "invalid_client"}
        grant = self.codes.pop(form.get("code", ""), None)
        if grant is None or form.get("grant_type") != "authorization_code":
            return 400, {"error": "invalid_grant", "error_description": "Code not valid"}
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return 400, {"error": "invalid_grant", "error_description": "Incorrect redirect_uri"}
        verifier = form.get("code_verifier", "")
        if b64url(hashlib.sha256(verifier.encode()).digest()) != grant["challenge"]:
            return 400, {"error": "invalid_grant", "error_description": "PKCE verification failed"}
        self.pkce_checked += 1
        access = secrets.token_urlsafe(24)
        self.codes["access:" + access] = grant
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.client_id,
            "azp": self.client_id,
            "iat": now,
            "exp": now + 300,
            "auth_time": now,
            "nonce": grant["nonce"],
            **grant["user"],
            **self.claim_overrides,
        }
        if not self.email_in_id_token:
            claims.pop("email", None)
            claims.pop("email_verified", None)
        id_token = self.id_token(claims)
        self.issued_id_tokens.append(id_token)
        return 200, {"access_token": access, "token_type": "Bearer", "expires_in": 300, "id_token": id_token}

    def _logout(self, req: RecordedRequest) -> Response:
        """RP-initiated logout: ends the provider's session and sends the browser back (to a
        ``post_logout_redirect_uri`` of the client's; a real provider checks it is registered)."""
        q = {k: v[0] for k, v in req.query.items()}
        self.logouts.append(q)
        if q.get("client_id") != self.client_id:
            self.problems.append("logout with another client id")
        if q.get("id_token_hint") not in self.issued_id_tokens:
            self.problems.append("logout with an id_token_hint this provider did not issue")
        return Response(302, "", {"Location": q.get("post_logout_redirect_uri", "/")})

    def _userinfo(self, req: RecordedRequest) -> tuple[int, Any]:
        auth = req.headers.get("Authorization", "")
        grant = self.codes.get("access:" + auth.removeprefix("Bearer "))
        if grant is None:
            return 401, {"error": "invalid_token"}
        return 200, dict(grant["user"])

    def _jwks(self, req: RecordedRequest) -> tuple[int, Any]:
        numbers = self.key.public_key().public_numbers()
        return 200, {
            "keys": [
                {
                    "kty": "RSA",
                    "kid": self.kid,
                    "use": "sig",
                    "alg": "RS256",
                    "n": _int_b64(numbers.n),
                    "e": _int_b64(numbers.e),
                }
            ]
        }

    # --- tokens ---------------------------------------------------------------------------------
    def id_token(self, claims: dict[str, Any]) -> str:
        alg = "HS256" if self.tamper == "hs256" else "RS256"
        header = {"alg": alg, "typ": "JWT", "kid": self.kid}
        signing_input = (b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())).encode()
        if alg == "HS256":
            # Signed with the client secret: valid HS256, but Parley accepts RS256 only.
            signature = hmac.new(self.client_secret.encode(), signing_input, hashlib.sha256).digest()
        else:
            key = self.other_key if self.tamper == "other_key" else self.key
            signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        if self.tamper == "signature":
            signature = bytes([signature[0] ^ 0x01]) + signature[1:]
        if self.tamper == "claims":
            # Claims changed after signing (a different e-mail), signature kept.
            forged = {**claims, "email": "root@example.com"}
            return (
                b64url(json.dumps(header).encode())
                + "."
                + b64url(json.dumps(forged).encode())
                + "."
                + b64url(signature)
            )
        return signing_input.decode() + "." + b64url(signature)
