"""The committed Pub/Sub modules are exactly what scripts/gen-proto makes of pubsub.proto, and
they describe the interface Salesforce publishes (service, methods, field numbers)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dialsync.stream import pubsub_pb2 as pb

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ("pubsub_pb2.py", "pubsub_pb2_grpc.py")


def test_regenerating_gives_the_committed_files(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHON": sys.executable}
    subprocess.run([str(ROOT / "scripts" / "gen-proto"), str(tmp_path)], check=True, env=env)
    for name in GENERATED:
        fresh = (tmp_path / "dialsync" / "stream" / name).read_text()
        committed = (ROOT / "src" / "dialsync" / "stream" / name).read_text()
        assert fresh == committed, f"{name} is stale: run scripts/gen-proto"


def test_wire_names_and_field_numbers() -> None:
    service = pb.DESCRIPTOR.services_by_name["PubSub"]
    assert service.full_name == "eventbus.v1.PubSub"
    assert set(service.methods_by_name) == {"Subscribe", "GetSchema", "GetTopic"}
    fetch = pb.FetchRequest.DESCRIPTOR.fields_by_name
    assert {n: f.number for n, f in fetch.items()} == {
        "topic_name": 1,
        "replay_preset": 2,
        "replay_id": 3,
        "num_requested": 4,
        "auth_refresh": 5,
    }
    response = pb.FetchResponse.DESCRIPTOR.fields_by_name
    assert response["latest_replay_id"].number == 2
    assert response["pending_num_requested"].number == 4
    assert pb.ReplayPreset.Value("CUSTOM") == 2
