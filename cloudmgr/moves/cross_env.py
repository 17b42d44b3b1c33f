"""What every step of a cross-cloud move works with: the two clouds, the projects, the move's
idempotency key and its work folder (:mod:`cloudmgr.moves.run_cross_cloud`,
:mod:`cloudmgr.moves.run_cross_parts`, :mod:`cloudmgr.moves.run_undo`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cloudmgr.cloud import CloudProvider, Image
from cloudmgr.moves.stepping import MoveView, StepContext

#: Seconds a step may wait per GB of a volume's data (an upload to an image, a volume made
#: from one), on top of the move's own timeout.
SECONDS_PER_GB = 60.0


def snapshot_name(key: str) -> str:
    """The source snapshot's name: the move's idempotency key makes it unique on the cloud
    (several cloudmgr databases may share one OpenStack)."""
    return f"cloudmgr-{key}-snapshot"


def image_name(key: str) -> str:
    return f"cloudmgr-{key}-image"


def images_named(provider: CloudProvider, name: str) -> list[Image]:
    return [i for i in provider.list_images() if i.name == name]


class CrossCloudEnv:
    """One run of a cross-cloud move: its clouds and what it names things by."""

    def __init__(self, ctx: StepContext, view: MoveView) -> None:
        assert view.target_cloud is not None and view.target_project_id is not None
        self.ctx = ctx
        self.view = view
        self.source = view.cloud.provider(ctx.registry)
        self.target = view.target_cloud.provider(ctx.registry)
        self.source_project = view.project_id or ""
        self.target_project = view.target_project_id
        self.server_id = view.server_id or ""
        self.folder: Path = ctx.work_dir / str(view.id)
        self.key = view.idempotency_key or f"move-{view.id}"

    @property
    def resources(self) -> dict[str, Any]:
        return self.view.resources

    @property
    def timeout(self) -> float:
        return self.ctx.timeout

    def data_timeout(self, size_gb: int) -> float:
        """How long copying ``size_gb`` of a volume's data may take."""
        return self.ctx.timeout + SECONDS_PER_GB * max(int(size_gb), 1)

    @property
    def target_server_id(self) -> str:
        return str(self.resources["target_server_id"])
