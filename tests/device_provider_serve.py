"""A real OpenID Connect provider offering the device authorization grant (RFC 8628), built
on authlib's server side (Flask integration), for `managed login` tests, in its own process
over TLS: the issuer is ``https://127.0.0.1:PORT``.

Usage: python device_provider_serve.py PORT CERT KEY CLIENT_ID PEOPLE_JSON
PEOPLE_JSON maps a subject to its claims (``preferred_username``, ``groups``...), and optionally
``lifetime_s``: how long that person's ID tokens are valid (default 300). The person at
the device page is played by the test: ``POST /device {user_code, sub, approve}``.
ID tokens are RS256 with the provider's key, published at ``/jwks``.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import flask
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin
from authlib.oauth2.rfc8628 import (
    DeviceAuthorizationEndpoint,
    DeviceCodeGrant,
    DeviceCredentialDict,
)
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from werkzeug.serving import run_simple

GRANT = "urn:ietf:params:oauth:grant-type:device_code"


class Client(ClientMixin):  # type: ignore[misc]
    def __init__(self, client_id: str) -> None:
        self.client_id = client_id

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def get_allowed_scope(self, scope: str) -> str:
        return scope

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        return False

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "none"

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == GRANT


def main() -> None:
    port, cert, key, client_id = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    people: dict[str, dict[str, Any]] = json.loads(sys.argv[5])
    issuer = f"https://127.0.0.1:{port}"
    signing = RSAKey.generate_key(2048, parameters={"kid": "device-provider"})
    credentials: dict[str, DeviceCredentialDict] = {}
    decisions: dict[str, tuple[str, bool]] = {}
    app = flask.Flask(__name__)
    client = Client(client_id)
    server = AuthorizationServer(
        app,
        query_client=lambda cid: client if cid == client_id else None,
        save_token=lambda token, request: None,
    )

    class Endpoint(DeviceAuthorizationEndpoint):  # type: ignore[misc]
        INTERVAL = 1
        CLIENT_AUTH_METHODS = ["none"]

        def get_verification_uri(self) -> str:
            return issuer + "/device"

        def save_device_credential(self, cid: str, scope: str, data: dict[str, Any]) -> None:
            credentials[data["device_code"]] = DeviceCredentialDict(
                client_id=cid, scope=scope, expires_at=time.time() + 600, **data
            )

    class Grant(DeviceCodeGrant):  # type: ignore[misc]
        TOKEN_ENDPOINT_AUTH_METHODS = ["none"]

        def query_device_credential(self, device_code: str) -> DeviceCredentialDict | None:
            return credentials.get(device_code)

        def query_user_grant(self, user_code: str) -> tuple[str, bool] | None:
            return decisions.get(user_code)

        def should_slow_down(self, credential: DeviceCredentialDict) -> bool:
            return False

        def create_token_response(self) -> tuple[int, dict[str, Any], list[Any]]:
            status, token, headers = super().create_token_response()
            sub = self.request.user
            now = int(time.time())
            person = dict(people.get(sub, {}))
            lifetime = int(person.pop("lifetime_s", 300))
            claims = {"iss": issuer, "aud": client_id, "sub": sub, "iat": now}
            claims.update(person, exp=now + lifetime)
            token["id_token"] = jwt.encode(
                {"alg": "RS256", "kid": "device-provider"}, claims, signing
            )
            return status, token, headers

    server.register_grant(Grant)
    server.register_endpoint(Endpoint)

    @app.get("/.well-known/openid-configuration")
    def discovery() -> Any:
        return flask.jsonify(
            issuer=issuer,
            device_authorization_endpoint=issuer + "/device_authorization",
            token_endpoint=issuer + "/token",
            jwks_uri=issuer + "/jwks",
            grant_types_supported=[GRANT],
            id_token_signing_alg_values_supported=["RS256"],
        )

    @app.post("/device_authorization")
    def device_authorization() -> Any:
        return server.create_endpoint_response("device_authorization")

    @app.post("/token")
    def token() -> Any:
        return server.create_token_response()

    @app.get("/jwks")
    def jwks() -> Any:
        return flask.jsonify(KeySet([signing]).as_dict(private=False))

    @app.post("/device")
    def device() -> Any:
        body = flask.request.get_json()
        decisions[body["user_code"]] = (body["sub"], bool(body["approve"]))
        return "", 204

    run_simple("127.0.0.1", port, app, ssl_context=(cert, key), threaded=True)


if __name__ == "__main__":
    main()
