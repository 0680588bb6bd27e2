"""Every remote service of a full run, emulated on the local HTTPS server, plus a user's setup.

One call serves a date window of the recorded path-13 stack: the CMR search (records rewritten
to point at local product URLs), SAFE zips built from real annotations (safe_factory),
Earthdata login, POEORBs (real files re-timed to the scenes), DEM tiles and a geoid, and
AUX_CAL. ``user_setup`` gives a private HOME with a .netrc, an environment with the topsApp
test double on PATH, and a workflow config that uses all of it. Used by the staging,
end-to-end, reliability and SLURM tests.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shapely.geometry import shape

from fixture_scenes import TEST_ROI, stack_records
from harness import environment
from harness.earthdata import netrc_text
from harness.orbit_server import serve_aux_cal
from harness.safe_factory import safe_zip_bytes

DOUBLE_DIR = Path(__file__).resolve().parents[1] / "topsapp_double"


@dataclass
class Services:
    records: list[dict[str, Any]]
    geoid: str
    aux_url: str


def serve_window(
    start: str,
    end: str,
    *,
    cmr: Any,
    earthdata: Any,
    orbit_bucket: Any,
    dem_tiles: Any,
    https_server: Any,
    shared_dir: Path,
    aux_date: str | None = None,
) -> Services:
    """Serve products, orbits, tiles, geoid and AUX_CAL for every scene between start and end.

    ``aux_date`` (YYYYMMDD): that date's scenes are made IPF 002.36 products (AUX_CAL needed).
    """
    records = [
        r for r in stack_records(shared_dir) if start <= r["properties"]["startTime"][:10] <= end
    ]
    passes: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        props = record["properties"]
        day = props["startTime"][:10]
        ipf = "002.36" if aux_date and day.replace("-", "") == aux_date else props["pgeVersion"]
        data = safe_zip_bytes(
            props["sceneName"],
            shape(record["geometry"]),
            flight_direction=props["flightDirection"],
            ipf=ipf,
        )
        earthdata.add_product(props["sceneName"], data)
        earthdata.ipf[props["sceneName"]] = ipf
        passes.setdefault(f"{props['platform']}/{day}", []).append(props)
    cmr.rewrite = earthdata.rewrite_record
    orbit_bucket.add_real(shared_dir)  # real files for other dates: never chosen, always listed
    for scenes in passes.values():
        begin = min(_time(s["startTime"]) for s in scenes)
        stop = max(_time(s["stopTime"]) for s in scenes)
        orbit_bucket.add_retimed(_mission(scenes[0]["platform"]), begin, stop)
    return Services(records, dem_tiles.add_synthetic_geoid(), serve_aux_cal(https_server))


def _time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", ""))


def _mission(platform: str) -> str:
    return "S1" + platform[-1].upper()  # "Sentinel-1A" -> "S1A"


@dataclass
class UserSetup:
    """What a user has: a HOME with .netrc, an environment, a config, and the secrets to hide."""

    home: Path
    env: dict[str, str]
    config: dict[str, Any]
    secrets: list[str] = field(default_factory=list)

    @property
    def workspace(self) -> Path:
        return Path(self.config["workspace"])


def user_setup(
    tmp_path: Path,
    start: str,
    end: str,
    services: Services,
    *,
    cmr: Any,
    earthdata: Any,
    orbit_bucket: Any,
    dem_tiles: Any,
    ca_bundle: str,
    caches: Path | None = None,
    workspace: Path | None = None,
    double: bool = True,
    **extra: Any,
) -> UserSetup:
    """A .netrc in a private HOME, PATH with the topsApp double, and a config for the window."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    user, password = earthdata.user
    netrc = home / ".netrc"
    netrc.write_text(netrc_text("localhost", user, password))
    netrc.chmod(0o600)
    env = environment.clean()  # no credentials, proxies or double settings but the ones given
    env["HOME"] = str(home)
    path = [str(Path(sys.executable).parent), env.get("PATH", "")]
    if double:
        path.insert(0, str(DOUBLE_DIR))
    env["PATH"] = os.pathsep.join(path)
    env["ISCE_HOME"] = ""
    if double:
        # the project's ISCE2 build would come before the double on PATH
        env["DINSAR_ISCE2_ROOT"] = str(tmp_path / "no_isce2_builds")
    caches = caches or tmp_path / "shared_cache"
    config: dict[str, Any] = {
        "workspace": str(workspace or tmp_path / "ws"),
        "roi": TEST_ROI,
        "dates": {"start": start, "end": end},
        "search": {"host": cmr.host},
        "network": {"ca_bundle": ca_bundle, "retries": 2, "backoff": 0.05, "timeout": 30},
        "cache": {k: str(caches / k) for k in ("slc", "orbits", "dem_tiles")},
        "download": {"edl_host": earthdata.edl_host, "chunk_mb": 0.25, "disk_margin_gb": 0.001},
        "orbits": {"asf_url": orbit_bucket.url, "aux_cal_url": services.aux_url},
        "dem": {"tiles_url": dem_tiles.url, "geoid": services.geoid},
        "isce": {"threads": 1},
    }
    for key, value in extra.items():
        if isinstance(value, dict):
            config[key] = {**config.get(key, {}), **value}
        else:
            config[key] = value
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    return UserSetup(home, env, config, [password, basic])
