"""A real OpenID Connect provider for sign-in tests, in its own process: `oidc-provider-mock`
(authlib's server side: authorization code flow with PKCE, ID tokens signed with its RSA key)
served over TLS on loopback, so the issuer is ``https://127.0.0.1:PORT``.

Usage: python oidc_provider_serve.py PORT CERT KEY [TOKEN_LIFETIME_S]
People are set with the provider's own ``PUT /users/{sub}`` (their claims, including `groups`
and `amr`, go into the ID token). One test switch: ``POST /test/publish-other-key`` makes the
provider publish another key than the one it signs with (a token "signed by the wrong key").
"""

from __future__ import annotations

import sys
from datetime import timedelta

import flask
from joserfc.jwk import KeySet, RSAKey
from oidc_provider_mock import app as provider_app
from werkzeug.serving import run_simple


def main() -> None:
    port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    lifetime = timedelta(seconds=int(sys.argv[4]) if len(sys.argv) > 4 else 3600)
    app = provider_app(require_nonce=True, access_token_max_age=lifetime)
    other = {"keys": None}

    original_jwks = app.view_functions["oidc-provider-mock.jwks"]

    def jwks() -> flask.typing.ResponseReturnValue:
        if other["keys"] is not None:
            return flask.jsonify(other["keys"])
        return original_jwks()

    app.view_functions["oidc-provider-mock.jwks"] = jwks

    @app.post("/test/publish-other-key")
    def publish_other_key() -> flask.typing.ResponseReturnValue:
        other["keys"] = KeySet([RSAKey.generate_key(2048)]).as_dict()  # type: ignore[assignment]
        return "", 204

    run_simple("127.0.0.1", port, app, ssl_context=(cert, key), threaded=True)


if __name__ == "__main__":
    main()
