"""protocol.md §1.3, §1.4, §8.2 items 5-6: upgrade checks in order, Origin rules, pings."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from websockets.exceptions import InvalidStatus

from harness.sim.launcher import SimProcess

from .conftest import DEPLOYMENT, open_guest

OTHER = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimProcess]:
    args = [
        "--deployment-id", DEPLOYMENT,
        "--deployment-id", OTHER,
        "--allowed-origin", "site.example",
        "--allowed-origin", "webmessaging.mypurecloud.com",
    ]  # fmt: skip
    with SimProcess(args) as proc:
        yield proc


def refused(url: str, **kwargs: object) -> tuple[int, str]:
    with pytest.raises(InvalidStatus) as info:
        open_guest(url, **kwargs)  # type: ignore[arg-type]
    response = info.value.response
    return response.status_code, response.body.decode()


@pytest.mark.parametrize("path", ["/", "/v2", "/webchat/api/v2/connections", "/v1/extra"])
def test_other_paths_get_404(sim: SimProcess, path: str) -> None:
    base = sim.url.removesuffix("/v1")
    status, body = refused(base + path)
    assert status == 404 and body.count("\n") == 1


def test_missing_deployment_gets_403(sim: SimProcess) -> None:
    assert refused(sim.url, deployment=None) == (403, "Forbidden: missing deploymentId\n")
    assert refused(sim.url, deployment="") == (403, "Forbidden: missing deploymentId\n")


def test_unknown_deployment_gets_403(sim: SimProcess) -> None:
    assert refused(sim.url, deployment="nope") == (403, "Forbidden: unknown deploymentId\n")


def test_listed_deployments_pass_and_extras_are_ignored(sim: SimProcess, guests) -> None:
    guest = guests(sim.url, deployment=OTHER, query="application=TransportSDK-2.14.0&x=1")
    guest.ws.ping().wait(5)
    guests(sim.url, headers={"deploymentId": "nope"})  # the header is ignored


@pytest.mark.parametrize(
    "origin",
    [
        None,  # most non-browser clients send none
        "https://site.example",
        "http://site.example:8080/page",
        "site.example",  # the mobile SDK sends its host without a scheme
        "site.example:443",
        "https://SITE.Example",
        "webmessaging.mypurecloud.com",
    ],
)
def test_allowed_origins(sim: SimProcess, origin: str | None) -> None:
    guest = open_guest(sim.url, origin=origin)
    assert guest.configure()["class"] == "SessionResponse"
    guest.ws.close()


@pytest.mark.parametrize("origin", ["null", "https://evil.example", "site.example.evil", ""])
def test_other_origins_get_403(sim: SimProcess, origin: str) -> None:
    assert refused(sim.url, origin=origin) == (403, "Forbidden: origin not allowed\n")


def test_any_origin_without_allow_list(start_sim, guests) -> None:
    sim = start_sim()
    guests(sim.url, origin="https://anything.example")
    guests(sim.url, origin="null")


def test_check_order_path_before_deployment_before_origin(sim: SimProcess) -> None:
    base = sim.url.removesuffix("/v1")
    assert refused(base + "/v2", deployment="nope", origin="null")[0] == 404
    status, body = refused(sim.url, deployment="nope", origin="null")
    assert (status, body) == (403, "Forbidden: unknown deploymentId\n")


def test_no_compression_no_subprotocol(sim: SimProcess) -> None:
    guest = open_guest(sim.url, compression=None)
    guest.ws.close()
    from websockets.sync.client import connect

    with connect(sim.url + f"?deploymentId={DEPLOYMENT}", compression="deflate") as ws:
        assert ws.response is not None
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        assert ws.subprotocol is None


def test_pings_get_pongs_before_configure(sim: SimProcess, guests) -> None:
    guest = guests(sim.url)
    for _ in range(3):
        assert guest.ws.ping().wait(5)
    guest.configure()
    assert guest.ws.ping().wait(5)
