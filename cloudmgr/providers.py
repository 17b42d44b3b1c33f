"""Which CloudProvider serves which cloud.

The only place that builds providers: everything else asks the registry, so there is
one way to talk to a cloud.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from cloudmgr.config import Settings

if TYPE_CHECKING:
    from cloudmgr.cloud import CloudProvider
    from cloudmgr.cloud.reachability import ReachabilityObserver

ObserverFactory = Callable[[str], "ReachabilityObserver"]


class ProviderRegistry:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._providers: dict[str, CloudProvider] = {}
        self._lock = threading.Lock()
        self._observer_factory: ObserverFactory | None = None

    def observe_with(self, factory: ObserverFactory | None) -> None:
        """Give every provider, built and to be built, the observer ``factory(cloud_key)`` of
        whether its calls reach the cloud (the runtime's: cloudmgr.organisation.reachability)."""
        with self._lock:
            self._observer_factory = factory
            for cloud_key, provider in self._providers.items():
                provider.reachability_observer = factory(cloud_key) if factory else None

    @property
    def is_simulated(self) -> bool:
        return self._settings.cloud_provider == "simulated"

    def for_cloud(self, cloud_key: str, os_cloud: str, region: str | None) -> CloudProvider:
        with self._lock:
            provider = self._providers.get(cloud_key)
            if provider is None:
                provider = self._build(cloud_key, os_cloud, region)
                if self._observer_factory is not None:
                    provider.reachability_observer = self._observer_factory(cloud_key)
                self._providers[cloud_key] = provider
            return provider

    def _build(self, cloud_key: str, os_cloud: str, region: str | None) -> CloudProvider:
        # Imported here: openstacksdk takes a second to import, and most commands never need it.
        if self.is_simulated:
            from cloudmgr.cloud.simulated import SimulatedProvider

            state_dir = self._settings.instance_path / "simulated-clouds"
            state_dir.mkdir(parents=True, exist_ok=True)
            if self._settings.demo:  # `make run`: clouds sized as a province's (the lab's are tiny)
                from cloudmgr.cloud.simulated.province import province_cloud

                return province_cloud(state_dir / f"{cloud_key}.json")
            return SimulatedProvider(state_path=state_dir / f"{cloud_key}.json")
        from cloudmgr.cloud.openstack import OpenStackProvider

        config_files = [self._settings.os_client_config_file] if self._settings.os_client_config_file else None
        return OpenStackProvider(cloud=os_cloud, region=region, config_files=config_files)
