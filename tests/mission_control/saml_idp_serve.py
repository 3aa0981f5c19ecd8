"""A real SAML 2.0 identity provider for sign-in tests, in its own process: pysaml2's
`saml2.server.Server` signing assertions with the key and certificate the test made, serving
its single sign-on endpoint (HTTP-Redirect binding) over TLS on loopback.

Usage: python saml_idp_serve.py PORT TLS_CERT TLS_KEY SIGNING_CERT SIGNING_KEY PEOPLE_JSON METADATA
At start it writes its own metadata (entity ID, signing certificate, SSO endpoint) to
METADATA: what a Mission Control administrator downloads from their provider.
PEOPLE_JSON maps a user name to ``{"attributes": {name: [values]}, "authn_context": CLASS}``.

The person at the provider is played by the test: ``GET /sso?SAMLRequest=...`` answers with the
provider's form (the request carried along); posting it with ``user`` answers with the page
that posts the signed response to the service provider's assertion consumer service. Test
switches on that form: ``sign=0`` sends the assertion unsigned (a provider misconfigured, or
a forger without the key), ``sign=response`` signs the response but not the assertion;
``sha1=1`` signs with RSA-SHA1 (an outdated provider).
"""

from __future__ import annotations

import html
import json
import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig, SPConfig
from saml2.mdstore import MetadataStore
from saml2.metadata import create_metadata_string
from saml2.saml import NAME_FORMAT_BASIC, NAMEID_FORMAT_PERSISTENT, NameID
from saml2.server import Server
from saml2.xmldsig import DIGEST_SHA1, DIGEST_SHA256, SIG_RSA_SHA1, SIG_RSA_SHA256

XMLSEC = "/usr/bin/xmlsec1"


def provider(base: str, cert: str, key: str) -> Server:
    config = IdPConfig()
    config.load(
        {
            "entityid": base + "/metadata",
            "xmlsec_binary": XMLSEC,
            "key_file": key,
            "cert_file": cert,
            "service": {
                "idp": {
                    "endpoints": {
                        "single_sign_on_service": [(base + "/sso", BINDING_HTTP_REDIRECT)],
                    },
                    "name_id_format": [NAMEID_FORMAT_PERSISTENT],
                    "policy": {
                        "default": {"lifetime": {"minutes": 5}, "name_form": NAME_FORMAT_BASIC}
                    },
                },
            },
        }
    )
    return Server(config=config)


def learn_service_provider(idp: Server, entity_id: str, acs_url: str) -> None:
    """Register the service provider as its request describes it (a real provider imports the
    SP's metadata beforehand; this one learns it at the first request, the test's shortcut:
    Mission Control's port is only known once it serves)."""
    config = SPConfig()
    config.load(
        {
            "entityid": entity_id,
            "service": {
                "sp": {"endpoints": {"assertion_consumer_service": [(acs_url, BINDING_HTTP_POST)]}}
            },
        }
    )
    if idp.metadata is None:
        idp.metadata = MetadataStore(idp.config.attribute_converters, idp.config)
    idp.metadata.load("inline", create_metadata_string(None, config).decode())


def form(action: str, fields: dict[str, str], button: str) -> bytes:
    inputs = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in fields.items()
    )
    return (
        f'<html><body><form method="post" action="{html.escape(action)}">{inputs}'
        f'<input name="user"><button type="submit">{button}</button></form></body></html>'
    ).encode()


def main() -> None:
    port = int(sys.argv[1])
    tls_cert, tls_key, cert, key, people_file, metadata_out = sys.argv[2:8]
    base = f"https://127.0.0.1:{port}"
    idp = provider(base, cert, key)
    people: dict[str, Any] = json.loads(Path(people_file).read_text())

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/metadata":
                return self._send(200, Path(metadata_out).read_bytes())
            if url.path != "/sso" or "SAMLRequest" not in query:
                return self._send(404, b"not found")
            # Parsing checks the request is well formed and meant for this provider.
            idp.parse_authn_request(query["SAMLRequest"], BINDING_HTTP_REDIRECT)
            fields = {
                "SAMLRequest": query["SAMLRequest"],
                "RelayState": query.get("RelayState", ""),
            }
            self._send(200, form("/sso/login", fields, "Sign in"))

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            fields = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            person = people.get(fields.get("user", ""))
            if self.path != "/sso/login" or person is None:
                return self._send(403, b"unknown person")
            request = idp.parse_authn_request(fields["SAMLRequest"], BINDING_HTTP_REDIRECT).message
            learn_service_provider(idp, request.issuer.text, request.assertion_consumer_service_url)
            signed = fields.get("sign", "1") == "1"
            sha1 = fields.get("sha1") == "1"
            response = idp.create_authn_response(
                person["attributes"],
                in_response_to=request.id,
                destination=request.assertion_consumer_service_url,
                sp_entity_id=request.issuer.text,
                name_id=NameID(format=NAMEID_FORMAT_PERSISTENT, text=fields["user"]),
                authn={"class_ref": person["authn_context"], "authn_auth": base + "/metadata"},
                sign_assertion=signed,
                sign_alg=SIG_RSA_SHA1 if sha1 else SIG_RSA_SHA256,
                digest_alg=DIGEST_SHA1 if sha1 else DIGEST_SHA256,
                sign_response=fields.get("sign") == "response",
            )
            page = idp.apply_binding(
                BINDING_HTTP_POST,
                str(response),
                request.assertion_consumer_service_url,
                relay_state=fields.get("RelayState", ""),
                response=True,
            )
            self._send(200, page["data"].encode())

        def log_message(self, format: str, *args: Any) -> None:
            sys.stderr.write((format % args) + "\n")

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls_cert, tls_key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    # Written once the port is bound: its presence says the provider answers.
    Path(metadata_out + ".tmp").write_text(create_metadata_string(None, idp.config).decode())
    Path(metadata_out + ".tmp").rename(metadata_out)
    server.serve_forever()


if __name__ == "__main__":
    main()
