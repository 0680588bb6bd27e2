"""The shared real stack (harness.real_stack) served as a user meets it, for the real-topsApp tests.

Its own local HTTPS server (the session's other emulators keep theirs), with the Earthdata
product emulation serving the stack's SAFE zips behind the login, and the orbit bucket serving
its POEORBs. ``inventory`` writes the saved search a user would plan from (our inventory
format, with the served URLs, sizes and md5s); ``config`` the workflow config for a workspace.

Burst mode: ``bursts()`` starts the burst-extractor emulation on the same data host, cutting
the bursts from the same zips; ``burst_inventory`` is then the saved search of their records.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import environment
from harness.earthdata import EarthdataEmulator, netrc_text
from harness.orbit_server import OrbitBucket
from harness.real_stack import RealStack
from harness.server import LocalHTTPSServer

TRACK_PATH = 168  # the source product's relative orbit


@dataclass
class RealServices:
    stack: RealStack
    server: LocalHTTPSServer
    earthdata: EarthdataEmulator
    orbits: OrbitBucket
    ca_bundle: str
    extractor: Any = None  # harness.burst_extractor.BurstExtractor, once bursts() started it

    @classmethod
    def start(cls, stack: RealStack, server: LocalHTTPSServer, ca_bundle: str) -> RealServices:
        earthdata = EarthdataEmulator(server)
        orbits = OrbitBucket(server)
        for scene in stack.scenes:
            earthdata.add_product(scene.granule, scene.zip_path)
            orbits.add(scene.eof_name, scene.eof_path)
        return cls(stack, server, earthdata, orbits, ca_bundle)

    def inventory(self, path: Path, dates: list[str] | None = None) -> Path:
        """A saved search of the stack (no baselines: ISCE's own Bperp is used)."""
        features = []
        for scene in self.stack.scenes:
            if dates is not None and scene.date not in dates:
                continue
            product = self.earthdata.products[scene.granule]
            lons = [p[0] for p in scene.footprint[:-1]]
            lats = [p[1] for p in scene.footprint[:-1]]
            features.append({
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [scene.footprint]},
                "properties": {
                    "granule": scene.granule, "url": product.url, "bytes": product.size,
                    "md5": product.md5, "path": TRACK_PATH, "frame": 150, "platform": "S1B",
                    "flight_direction": "DESCENDING", "track": f"{TRACK_PATH}_DESC",
                    "date": scene.date, "start_time": scene.start.isoformat() + "Z",
                    "stop_time": scene.stop.isoformat() + "Z", "polarization": "VV",
                    "orbit": scene.orbit, "ipf": "003.31",
                    "center_lat": sum(lats) / len(lats), "center_lon": sum(lons) / len(lons),
                    "perpendicular_baseline": None, "baseline": None,
                },
            })  # fmt: skip
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
        return path

    def bursts(self) -> Any:
        """The burst extractor over the stack's zips (started once)."""
        from harness.burst_extractor import BurstExtractor, stack_calibration

        if self.extractor is None:
            extractor = BurstExtractor(self.earthdata)
            for index, scene in enumerate(self.stack.scenes):
                calibration, noise = stack_calibration(self.stack, index)
                extractor.add_slice(scene.zip_path, calibration, noise)
            self.extractor = extractor
        return self.extractor

    def burst_inventory(self, path: Path, dates: list[str] | None = None) -> Path:
        """A saved search of the stack's bursts (our inventory format, as `dinsar search
        --save` writes it), their records made from the annotation."""
        from dinsar.inventory import burst_from_properties, write_inventory
        from harness.burst_extractor import burst_records

        extractor = self.bursts()
        bursts = []
        for scene in self.stack.scenes:
            if dates is not None and scene.date not in dates:
                continue
            for record in burst_records(self.stack, extractor, extractor.slices[scene.granule]):
                bursts.append(burst_from_properties(record["properties"], record["geometry"]))
        path.parent.mkdir(parents=True, exist_ok=True)
        write_inventory(bursts, path, {"source": "the shared real stack's bursts"})
        return path

    def user_env(self, home: Path) -> dict[str, str]:
        """A private HOME whose .netrc logs in to the emulation; no test double anywhere."""
        home.mkdir(parents=True, exist_ok=True)
        user, password = self.earthdata.user
        netrc = home / ".netrc"
        netrc.write_text(netrc_text(self.earthdata.edl_host.split(":")[0], user, password))
        netrc.chmod(0o600)
        env = environment.clean()  # no credentials, proxies or double settings of the user's
        env["HOME"] = str(home)
        # the project's ISCE2 build lives in the real user's cache, not in this HOME
        env.setdefault("XDG_CACHE_HOME", str(Path.home() / ".cache"))
        return env

    def config(self, workspace: Path, caches: Path, **extra: Any) -> dict[str, Any]:
        dates = [s.date for s in self.stack.scenes]
        config: dict[str, Any] = {
            "workspace": str(workspace),
            "roi": self.stack.roi_wkt,
            "dates": {"start": f"{dates[0][:4]}-{dates[0][4:6]}-{dates[0][6:]}",
                      "end": f"{dates[-1][:4]}-{dates[-1][4:6]}-{dates[-1][6:]}"},  # fmt: skip
            "inventory": str(self.inventory(workspace.parent / "saved_search.geojson")),
            "network": {"ca_bundle": self.ca_bundle, "retries": 2, "backoff": 0.05},
            "cache": {k: str(caches / k) for k in ("slc", "bursts", "orbits", "dem_tiles")},
            "download": {"edl_host": self.earthdata.edl_host, "disk_margin_gb": 0.001},
            "orbits": {"asf_url": self.orbits.url},
            "dem": {"file": str(self.stack.dem), "file_vertical_datum": "ellipsoid"},
            "pairs": {"sequential": 2},
            "isce": {"threads": 2},
            "timeseries": {"enabled": "auto"},  # the default, stated: write_config turns it off
        }
        for key, value in extra.items():
            config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
        return config
