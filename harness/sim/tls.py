"""TLS for ``wss://`` (protocol.md §1.5, §8.1): given files, or a throwaway trustme CA.

The self-signed mode lets every client TLS path (CA bundle, host-name check, explicit
insecure flag) be tested on loopback.
"""

from __future__ import annotations

import dataclasses
import os
import ssl
import tempfile

from harness.errors import UsageError
from harness.sim.config import Tls


def make_self_signed(tls: Tls, directory: str | None = None) -> Tls:
    """Create a CA and a server certificate for ``tls.self_signed_host`` (plus loopback).

    Returns a ``Tls`` whose cert, key and CA files live in ``directory`` (a new temporary
    directory when omitted; the caller removes it).
    """
    import trustme

    host = tls.self_signed_host
    assert host is not None
    out = directory or tempfile.mkdtemp(prefix="harness-sim-tls-")
    ca = trustme.CA()
    names = [host] + [n for n in ("127.0.0.1", "::1", "localhost") if n != host]
    cert = ca.issue_cert(*names)
    ca_file = os.path.join(out, "ca.pem")
    cert_file = os.path.join(out, "server.pem")
    key_file = os.path.join(out, "server.key")
    ca.cert_pem.write_to_path(ca_file)
    cert.cert_chain_pems[0].write_to_path(cert_file)
    for extra in cert.cert_chain_pems[1:]:
        extra.write_to_path(cert_file, append=True)
    cert.private_key_pem.write_to_path(key_file)
    return dataclasses.replace(tls, certfile=cert_file, keyfile=key_file, ca_file=ca_file)


def server_context(tls: Tls) -> ssl.SSLContext:
    """A TLS 1.2+ server context from ``tls.certfile``/``tls.keyfile``.

    Raises:
        UsageError: the files cannot be loaded.
    """
    if tls.certfile is None:
        raise UsageError("TLS needs --certfile (and --keyfile) or --tls-self-signed HOST")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(tls.certfile, tls.keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"cannot load TLS certificate {tls.certfile!r}: {exc}") from exc
    return context
