"""The cluster's ZooKeeper session: every request bounded, every create through one ACL hook.

`ZooKeeper` wraps one kazoo client and is the only way the cluster talks to ZooKeeper. Its
methods are typed (`get` returns the data and a `Stat`, `children` a list of names, `commit` an
`Outcome`), and ZooKeeper's own errors pass through unchanged (`cluster.zk.errors`).

Guarantees:
- Every request is bounded by a timeout (the client's `timeout`, or the one a call gives); none
  blocks forever when ZooKeeper is gone. Each goes through kazoo's `*_async` result, awaited
  with that timeout, so a request kazoo queued while it reconnects fails with
  `ZooKeeperUnavailable` ("ZooKeeper did not answer within N s") instead of waiting.
- A client from `connect` (commands) also gives up reconnecting after its timeout.
- Every znode the cluster creates (`create`, `ensure_path`, `Create` in `commit`) passes through
  `acl_for`, the one place that decides its ACL. Today it keeps the ACL the caller asked for
  (None: ZooKeeper's open default), as the code always did; the cluster's own ACL is to be
  attached there. (The lock recipe's contender znodes are created by kazoo with the client's
  default ACL.)
- Watch callbacks run on kazoo's thread: they must not call ZooKeeper (hand events to the loop).
- `watch_children` and `watch_exists` only request a watch: they never wait, so a loop can arm
  while ZooKeeper is away (kazoo's watch recipes would retry without limit in the caller).

Does not: retry a failed request, or make reads across znodes consistent (ZooKeeper has no
multi-read); calls from the event loop must run in an executor (`NodeDaemon.blocking`).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, Protocol, TypeVar

from kazoo.client import KazooClient, KazooState
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.retry import KazooRetry

from cluster.errors import ConfigError, ZooKeeperAuthFailed, ZooKeeperUnavailable
from cluster.zk.acl import Acl, cluster_acl
from cluster.zk.errors import AuthFailedError, NodeExistsError, NoNodeError, ZooKeeperError
from cluster.zk.ops import Check, Create, Op, Outcome, SetData, Stat

T = TypeVar("T")
#: Called on kazoo's thread with the watched event; it must not call ZooKeeper.
Watcher = Callable[[Any], None]

#: Connection states a listener receives (Curator's names, as kazoo reports them).
ConnectionState = str
CONNECTED: ConnectionState = KazooState.CONNECTED
SUSPENDED: ConnectionState = KazooState.SUSPENDED
LOST: ConnectionState = KazooState.LOST


class Lock(Protocol):
    """A ZooKeeper lock (kazoo's recipe): hold it between `acquire` and `release`."""

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool: ...

    def release(self) -> bool: ...


def _answer(result: Any, timeout: float) -> Any:
    """The value of a kazoo `*_async` result, or `ZooKeeperUnavailable` after `timeout` s."""
    try:
        return result.get(timeout=timeout)
    except KazooTimeoutError as e:
        raise ZooKeeperUnavailable(f"ZooKeeper did not answer within {timeout:g} s") from e


class Pending(Generic[T]):
    """A request already sent: several can be in flight at once (one round trip for all)."""

    def __init__(self, result: Any, convert: Callable[[Any], T], timeout: float) -> None:
        self._result = result
        self._convert = convert
        self._timeout = timeout

    def get(self) -> T:
        """The answer (bounded); ZooKeeper's error otherwise."""
        return self._convert(_answer(self._result, self._timeout))

    def get_or_none(self) -> T | None:
        """The answer, or None when the znode does not exist."""
        try:
            return self.get()
        except NoNodeError:
            return None


def _data_and_stat(got: Any) -> tuple[bytes, Stat]:
    return bytes(got[0] or b""), Stat.of(got[1])


def _names(got: Any) -> list[str]:
    return [str(n) for n in got]


def _acls_and_stat(got: Any) -> tuple[list[Acl], Stat]:
    return list(got[0]), Stat.of(got[1])


class ZooKeeper:
    """One ZooKeeper session (see the module docstring). `timeout` bounds each request."""

    def __init__(self, client: KazooClient, timeout: float = 5.0, auth: str | None = None) -> None:
        self._client = client
        self.timeout = timeout
        self._auth = auth

    # --- the ACL of every create ------------------------------------------------------------

    def acl_for(self, path: str, acl: Sequence[Acl] | None) -> list[Acl]:
        """The ACL znode `path` is created with: the one place every create passes through.

        The caller's, when it names one (a secret's digest entry); else the cluster's rule
        (`cluster.zk.acl.cluster_acl`): this session's credential only, and only CREATE for
        the world on the parents every cluster shares. `NoCredential` without a credential."""
        return list(acl) if acl is not None else cluster_acl(path, self._auth)

    # --- session ----------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return bool(self._client.connected)

    @property
    def session_id(self) -> int:
        """This session's id (0 while there is none)."""
        client_id = self._client.client_id
        return int(client_id[0]) if client_id else 0

    def add_listener(self, listener: Callable[[ConnectionState], object]) -> None:
        """`listener` gets each connection state on kazoo's thread: it must only hand it on."""
        self._client.add_listener(listener)

    def start(self, timeout: float) -> None:
        self._client.start(timeout=timeout)

    def start_async(self) -> threading.Event:
        """Start connecting; the event is set once connected (or given up)."""
        event: threading.Event = self._client.start_async()
        return event

    def add_auth(self, auth: str, timeout: float) -> None:
        _answer(self._client.add_auth_async("digest", auth), timeout)
        self._auth = auth
        # What kazoo's own recipes (the lock) create gets the cluster's ACL too.
        self._client.default_acl = cluster_acl("/managed/clusters/-", auth)

    def drop_connection(self) -> bool:
        """Drop the connection to the current server, as kazoo does when a ping goes unanswered:
        kazoo then reconnects to another server of the ensemble, keeping the session if the
        quorum has not expired it. Whether there was a connection to drop.

        Why this exists: kazoo counts every request it sends as a ping, so a client that keeps
        asking a server that no longer answers (cut off by a partition: no reset ever arrives)
        never notices. Shutting the socket down makes kazoo's next read see the end of the
        stream; kazoo has no public call for this, hence the reach into its connection."""
        sock = getattr(self._client._connection, "_socket", None)
        if sock is None or not self._client.connected:
            return False
        with contextlib.suppress(OSError):
            # The plain socket's shutdown, not SSLSocket's: that one also drops the TLS state
            # under kazoo's thread, which may be reading it. TLS then reads the end of stream.
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        return True

    def close(self) -> None:
        try:
            self._client.stop()
        finally:
            self._client.close()

    def _wait(self, result: Any, timeout: float | None) -> Any:
        return _answer(result, self.timeout if timeout is None else timeout)

    # --- reads ------------------------------------------------------------------------------

    def request_get(
        self, path: str, watch: Watcher | None = None, timeout: float | None = None
    ) -> Pending[tuple[bytes, Stat]]:
        return Pending(
            self._client.get_async(path, watch=watch),
            _data_and_stat,
            self.timeout if timeout is None else timeout,
        )

    def request_children(
        self, path: str, watch: Watcher | None = None, timeout: float | None = None
    ) -> Pending[list[str]]:
        return Pending(
            self._client.get_children_async(path, watch=watch),
            _names,
            self.timeout if timeout is None else timeout,
        )

    def request_acls(
        self, path: str, timeout: float | None = None
    ) -> Pending[tuple[list[Acl], Stat]]:
        return Pending(
            self._client.get_acls_async(path),
            _acls_and_stat,
            self.timeout if timeout is None else timeout,
        )

    def get(
        self, path: str, watch: Watcher | None = None, timeout: float | None = None
    ) -> tuple[bytes, Stat]:
        """The znode's data and `Stat`; `NoNodeError` when it does not exist."""
        return self.request_get(path, watch, timeout).get()

    def find(self, path: str, timeout: float | None = None) -> tuple[bytes, Stat] | None:
        """The znode's data and `Stat`, or None when it does not exist."""
        return self.request_get(path, None, timeout).get_or_none()

    def get_many(
        self, paths: Iterable[str], timeout: float | None = None
    ) -> list[tuple[bytes, Stat] | None]:
        """Each znode's data and `Stat` (None where it does not exist), requested in parallel."""
        pending = [self.request_get(p, None, timeout) for p in paths]
        return [p.get_or_none() for p in pending]

    def children(
        self, path: str, watch: Watcher | None = None, timeout: float | None = None
    ) -> list[str]:
        """The names of the znode's children (unordered); `NoNodeError` when it is missing."""
        return self.request_children(path, watch, timeout).get()

    def children_or_none(self, path: str, timeout: float | None = None) -> list[str]:
        """The names of the znode's children; [] when the znode does not exist."""
        return self.request_children(path, None, timeout).get_or_none() or []

    def exists(
        self, path: str, watch: Watcher | None = None, timeout: float | None = None
    ) -> Stat | None:
        got = self._wait(self._client.exists_async(path, watch=watch), timeout)
        return None if got is None else Stat.of(got)

    def get_acls(self, path: str, timeout: float | None = None) -> tuple[list[Acl], Stat]:
        return self.request_acls(path, timeout).get()

    def sync(self, path: str, timeout: float | None = None) -> None:
        """Bring this session's server up to date with the leader for `path`."""
        self._wait(self._client.sync_async(path), timeout)

    # --- writes -----------------------------------------------------------------------------

    def create(
        self,
        path: str,
        data: bytes = b"",
        *,
        acl: Sequence[Acl] | None = None,
        ephemeral: bool = False,
        sequence: bool = False,
        makepath: bool = False,
        timeout: float | None = None,
    ) -> str:
        """Create a znode; returns its path (with the sequence number when `sequence`). With
        `makepath`, missing parents are created first, each with its own ACL."""
        parent = path.rsplit("/", 1)[0]
        if makepath and parent:
            self.ensure_path(parent, timeout=timeout)
        created = self._client.create_async(
            path, data, acl=self.acl_for(path, acl), ephemeral=ephemeral, sequence=sequence
        )
        return str(self._wait(created, timeout))

    def ensure_path(
        self, path: str, acl: Sequence[Acl] | None = None, timeout: float | None = None
    ) -> None:
        """Create `path` and its missing parents (idempotent, safe to race). Each is created
        with its own ACL (`acl_for`; `acl`, when given, only for `path` itself)."""
        if self.exists(path, timeout=timeout) is not None:
            return
        parts = path.strip("/").split("/")
        for depth in range(1, len(parts) + 1):
            prefix = "/" + "/".join(parts[:depth])
            with contextlib.suppress(NodeExistsError):
                self.create(prefix, acl=acl if prefix == path else None, timeout=timeout)

    def create_if_missing(self, path: str, data: bytes, timeout: float | None = None) -> None:
        """Create `path` with `data` unless it exists (idempotent, safe to race)."""
        with contextlib.suppress(NodeExistsError):
            self.create(path, data, timeout=timeout)

    def set(self, path: str, data: bytes, version: int = -1, timeout: float | None = None) -> Stat:
        return Stat.of(self._wait(self._client.set_async(path, data, version), timeout))

    def delete(
        self,
        path: str,
        version: int = -1,
        *,
        recursive: bool = False,
        timeout: float | None = None,
    ) -> None:
        """Delete a znode (with `recursive`, its subtree, children first; missing is fine)."""
        if recursive:
            for child in self.children_or_none(path, timeout):
                self.delete(f"{path}/{child}", recursive=True, timeout=timeout)
            with contextlib.suppress(NoNodeError):
                self._wait(self._client.delete_async(path, version), timeout)
            return
        self._wait(self._client.delete_async(path, version), timeout)

    def set_acls(self, path: str, acls: Sequence[Acl], timeout: float | None = None) -> None:
        self._wait(self._client.set_acls_async(path, list(acls)), timeout)

    def commit(self, ops: Sequence[Op], timeout: float | None = None) -> Outcome:
        """Apply `ops` in one transaction: all or nothing. An empty list applies nothing."""
        if not ops:
            return Outcome(())
        tx = self._client.transaction()
        for op in ops:
            if isinstance(op, Create):
                acl = self.acl_for(op.path, op.acl)
                tx.create(op.path, op.data, acl=acl, ephemeral=op.ephemeral, sequence=op.sequence)
            elif isinstance(op, SetData):
                tx.set_data(op.path, op.data, version=op.version)
            elif isinstance(op, Check):
                tx.check(op.path, op.version)
            else:
                tx.delete(op.path, version=op.version)
        results = self._wait(tx.commit_async(), timeout)
        return Outcome(tuple(_result(r) for r in results))

    # --- recipes and watches ----------------------------------------------------------------

    def lock(self, path: str, identifier: str) -> Lock:
        """kazoo's lock recipe on `path` (it owns the contender znodes under it)."""
        lock: Lock = self._client.Lock(path, identifier)
        return lock

    def watch_children(self, path: str, watcher: Watcher) -> None:
        """Ask for a one-shot watch on `path`'s children; never waits (best effort)."""
        with contextlib.suppress(ZooKeeperError, OSError):
            self._client.get_children_async(path, watch=watcher)

    def watch_exists(self, path: str, watcher: Watcher) -> None:
        """Ask for a one-shot watch on `path` being created, changed or deleted; never waits."""
        with contextlib.suppress(ZooKeeperError, OSError):
            self._client.exists_async(path, watch=watcher)


def _result(r: Any) -> str | Stat | bool | ZooKeeperError:
    if isinstance(r, ZooKeeperError | str | bool):
        return r
    return Stat.of(r)


#: Where a client finds the CA of the ensemble's certificates when none is given.
CA_ENV = "MANAGED_ZK_CA"


def trusted_ca(ca_file: str | None) -> str:
    """The CA file that ZooKeeper's certificates must chain to: `ca_file`, else `$MANAGED_ZK_CA`.

    ZooKeeper is reached over TLS only, so a client without one is refused here with one clear
    line (`ConfigError`), before anything is sent."""
    chosen = ca_file or os.environ.get(CA_ENV) or None
    if chosen is None:
        raise ConfigError(
            "ZooKeeper is reached over TLS only: give the CA of its certificates with "
            f"--zk-ca FILE (env {CA_ENV})"
        )
    if not os.path.isfile(chosen) or not os.access(chosen, os.R_OK):
        raise ConfigError(f"cannot read the ZooKeeper CA file {chosen}")
    return chosen


def make_client(
    hosts: str,
    session_timeout: float,
    auth: str | None = None,
    reconnect_deadline: float | None = None,
    timeout: float = 5.0,
    ca_file: str | None = None,
) -> ZooKeeper:
    """A session with bounded back-off between connection attempts, not yet started.

    It retries its connection forever (the daemon), or, with `reconnect_deadline`, gives up after
    failing that many seconds in a row (commands). It speaks TLS only, verifying the servers'
    certificates and host names against `ca_file` (`trusted_ca`). `auth` (USER:PASSWORD) is the
    cluster's digest credential: it is sent only inside TLS, and every znode the session creates
    gets the cluster's ACL for it (`acl_for`). `timeout` bounds each request.
    """
    client = KazooClient(
        hosts=hosts,
        timeout=session_timeout,
        connection_retry=KazooRetry(
            max_tries=-1, delay=0.1, backoff=2, max_delay=1.0, deadline=reconnect_deadline
        ),
        auth_data=[("digest", auth)] if auth else None,
        use_ssl=True,
        ca=trusted_ca(ca_file),
        verify_certs=True,
        check_hostname=True,
    )
    if auth:
        client.default_acl = cluster_acl("/managed/clusters/-", auth)
    return ZooKeeper(client, timeout, auth=auth)


def connect(
    hosts: str,
    timeout: float = 5.0,
    session_timeout: float = 10.0,
    auth: str | None = None,
    ca_file: str | None = None,
) -> ZooKeeper:
    """A short-lived session for a command: connected and authenticated within `timeout` s.

    Raises `ZooKeeperUnavailable` when no server answers, `ZooKeeperAuthFailed` when ZooKeeper
    refuses the credential. The client stops reconnecting after `timeout` seconds without a
    server, so a command run while the ensemble loses quorum fails instead of hanging.
    """
    zk = make_client(
        hosts, session_timeout, reconnect_deadline=timeout, timeout=timeout, ca_file=ca_file
    )
    try:
        zk.start(timeout)
    except (KazooTimeoutError, ZooKeeperError, OSError, ValueError) as e:
        zk.close()
        raise ZooKeeperUnavailable(
            f"cannot reach ZooKeeper at {hosts} within {timeout:g}s "
            "(is the ensemble up and does it have quorum?)"
        ) from e
    if auth is not None:
        # Added after the connection is up, so a refusal is told apart from an absent server
        # (kazoo reports a refused credential given at start only as a connection time-out).
        try:
            zk.add_auth(auth, timeout)
        except AuthFailedError as e:
            zk.close()
            raise ZooKeeperAuthFailed(
                f"ZooKeeper at {hosts} refused the credential given with --zk-auth "
                "(MANAGED_ZK_AUTH): expected USER:PASSWORD"
            ) from e
        except BaseException:
            zk.close()
            raise
    return zk


def close(zk: ZooKeeper) -> None:
    zk.close()
