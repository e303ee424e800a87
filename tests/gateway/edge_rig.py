"""Private Envoys for edge tests: rendered by gateway/envoy_config.py with
limits of the test's choosing (short timeouts, small rate limits), in front of
the session stack's services or of processes the test owns, so a test can
exhaust a bucket or kill an upstream without touching the shared stack."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from gateway import envoy_config
from local_stack import infra
from local_stack.paths import DESCRIPTOR_SET
from local_stack.ports import free_port
from local_stack.stack import local_upstreams
from tests.rig import ProcessRig


@dataclass
class EdgeRig(ProcessRig):
    """A ProcessRig that also runs Envoys of its own."""

    def start_envoy(
        self, name: str, upstreams: Sequence[envoy_config.Upstream], limits: envoy_config.EdgeLimits
    ) -> str:
        """Start an Envoy named ``name`` in front of ``upstreams``; its address (host:port)."""
        port, admin_port = free_port(), free_port()
        config = envoy_config.render(
            listen_address="127.0.0.1",
            listen_port=port,
            admin_address="127.0.0.1",
            admin_port=admin_port,
            descriptor_path=str(DESCRIPTOR_SET),
            upstreams=upstreams,
            jwks_path=str(self.mesh.keys.jwks),
            limits=limits,
        )
        path = envoy_config.write(config, self.root / f"{name}.json")
        spec = dataclasses.replace(infra.envoy_spec(path), name=name)
        self.launch(spec, lambda: infra.envoy_ready(admin_port))
        return f"127.0.0.1:{port}"

    def shared_upstreams(self) -> list[envoy_config.Upstream]:
        """The session stack's services, as its own Envoy routes them."""
        return local_upstreams(self.mesh.settings)

    def upstreams_with(self, cluster: str, port: int) -> list[envoy_config.Upstream]:
        """The session stack's services, with ``cluster`` at ``port`` instead."""
        return [
            dataclasses.replace(u, port=port) if u.cluster == cluster else u for u in self.shared_upstreams()
        ]
