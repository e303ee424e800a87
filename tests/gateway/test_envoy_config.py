"""The rendered Envoy config is accepted by Envoy itself."""

from __future__ import annotations

import json
from pathlib import Path

from gateway import envoy_config
from mesh_cli import infra
from mesh_cli.paths import DESCRIPTOR_SET
from mesh_cli.stack import StackSettings, local_upstreams


def test_envoy_validates_the_local_config(tmp_path: Path) -> None:
    config = envoy_config.render(
        listen_address="127.0.0.1",
        listen_port=18080,
        admin_address="127.0.0.1",
        admin_port=19901,
        descriptor_path=str(DESCRIPTOR_SET),
        upstreams=local_upstreams(StackSettings()),
    )
    path = envoy_config.write(config, tmp_path / "envoy.json")
    result = infra.validate_envoy_config(path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout + result.stderr


def test_envoy_rejects_a_broken_config(tmp_path: Path) -> None:
    # The validation step can fail: a misspelt field is refused.
    config = envoy_config.render(
        listen_address="127.0.0.1",
        listen_port=18080,
        admin_address="127.0.0.1",
        admin_port=19901,
        descriptor_path=str(DESCRIPTOR_SET),
        upstreams=local_upstreams(StackSettings()),
    )
    config["static_resources"]["clusters"][0]["conect_timeout"] = "1s"
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(config))
    assert infra.validate_envoy_config(path).returncode != 0


def test_every_service_is_routed_and_transcoded() -> None:
    upstreams = local_upstreams(StackSettings())
    config = envoy_config.render(
        listen_address="127.0.0.1",
        listen_port=1,
        admin_address="127.0.0.1",
        admin_port=2,
        descriptor_path="/x.binpb",
        upstreams=upstreams,
    )
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    transcoder = hcm["http_filters"][0]["typed_config"]
    prefixes = [r["match"]["prefix"] for r in hcm["route_config"]["virtual_hosts"][0]["routes"]]
    for upstream in upstreams:
        for service in upstream.services:
            assert service in transcoder["services"]
            assert f"/{service}/" in prefixes
