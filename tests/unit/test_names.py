"""What operators type: names, addresses, credentials; no servers."""

from __future__ import annotations

import pytest

from cluster.errors import MembershipError
from cluster.names import check_address, check_credential, check_name, check_node_id
from cluster.roster import validate_entry, validate_leaving


@pytest.mark.parametrize("value", ["n1", "a", "dc-1", "x" * 63])
def test_good_names(value: str) -> None:
    assert check_name("node id", value) == value


@pytest.mark.parametrize("value", ["", "N1", "-a", "a-", "a_b", "x" * 64, "n1\n", "n1 ", "\nn1"])
def test_bad_names_including_a_trailing_newline(value: str) -> None:
    with pytest.raises(ValueError, match="invalid"):
        check_name("node id", value)


def test_addresses() -> None:
    assert check_address("127.0.0.1:7001") == ("127.0.0.1", 7001)
    assert check_address("[::1]:80") == ("::1", 80)
    for bad in ("127.0.0.1", "h:0", "h:70000", "h:80\n", "h :80"):
        with pytest.raises(ValueError, match="HOST:PORT"):
            check_address(bad)


def test_the_zookeeper_node_id_is_reserved_for_joining_only() -> None:
    with pytest.raises(ValueError, match="reserved"):
        check_node_id("zookeeper")
    with pytest.raises(MembershipError, match="reserved") as e:
        validate_entry("zookeeper", "dc1", "127.0.0.1:7001")
    assert "\n" not in str(e.value)
    validate_leaving("zookeeper")  # a well-formed id may always be removed
    with pytest.raises(MembershipError, match="invalid"):
        validate_leaving("Bad_Id")


def test_credentials() -> None:
    assert check_credential("ops:secret") == "ops:secret"
    assert check_credential("ops:") == "ops:"
    for bad in ("", "nocolon", ":secret"):
        with pytest.raises(ValueError, match="USER:PASSWORD"):
            check_credential(bad)
