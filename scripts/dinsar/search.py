"""Find the scenes for a config: ASF search over the network, or a saved search, then grouping.

This is the checkpoint of the workflow: its outputs (scenes.geojson, dates.csv) decide which
dates and pairs exist.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry import box as shapely_box

from .burst_set import BurstChoice, assess_bursts, resolve_mode
from .bursts import isce_search_area
from .config import Config
from .errors import DinsarError
from .inventory import (
    Acquisition,
    Burst,
    InventoryError,
    Scene,
    SceneFilter,
    TrackChoice,
    assess,
    burst_from_properties,
    choose_tracks,
    deduplicate,
    group_acquisitions,
    load_saved_search,
    scene_from_properties,
    write_dates_table,
    write_inventory,
)
from .net import pin_ca_bundle
from .retry import network_failure, unresolved_host, with_retries
from .roi import parse_roi

log = logging.getLogger(__name__)


class SearchError(DinsarError):
    """ASF could not be searched, or found nothing usable."""


def scene_filter(cfg: Config) -> SceneFilter:
    return SceneFilter(
        roi=parse_roi(cfg.roi),
        start=cfg.dates.start,
        end=cfg.dates.end,
        polarization=cfg.search.polarization,
        flight_direction=cfg.search.flight_direction,
        relative_orbits=tuple(cfg.search.relative_orbits),
    )


def describe_query(cfg: Config, roi: Polygon | MultiPolygon, bursts: bool) -> dict[str, Any]:
    """What was searched, in words a user can act on (kept in scenes.geojson and messages)."""
    west, south, east, north = roi.bounds
    return {
        "source": f"saved search {cfg.inventory}" if cfg.inventory else "ASF (CMR) search",
        "collection": "SLC-BURST" if bursts else "SLC",
        "roi_bounds_wsen": [round(v, 6) for v in (west, south, east, north)],
        "start": cfg.dates.start.isoformat(),
        "end": cfg.dates.end.isoformat(),
        "flight_direction": cfg.search.flight_direction or "any",
        "relative_orbits": list(cfg.search.relative_orbits) or "any",
        "polarization": cfg.search.polarization,
    }


def search_asf(cfg: Config, roi: Polygon | MultiPolygon, bursts: bool | None = None) -> list[Scene]:
    """Query CMR through asf_search for Sentinel-1 IW SLC scenes (or, ``bursts``, the bursts of
    ASF's SLC-BURST collection) intersecting the ROI; ``None``: as download.mode says."""
    import asf_search as asf
    import requests

    # asf_search would otherwise post failed searches (with the user's ROI) to ASF.
    asf.REPORT_ERRORS = False
    asf.constants.INTERNAL.CMR_TIMEOUT = cfg.network.timeout
    host = cfg.search.host or asf.constants.INTERNAL.CMR_HOST
    session = pin_ca_bundle(asf.ASFSession(cmr_host=host), cfg.network.ca_bundle)
    opts = asf.ASFSearchOptions(host=host, session=session)
    if bursts is None:
        bursts = resolve_mode(cfg.download.mode, roi) == "burst"
    query: dict[str, Any] = {
        "platform": [asf.PLATFORM.SENTINEL1],
        "processingLevel": asf.PRODUCT_TYPE.BURST if bursts else asf.PRODUCT_TYPE.SLC,
        "beamMode": asf.BEAMMODE.IW,
        # bursts: wide enough for every burst topsApp's crop would keep (dinsar.bursts.isce_box)
        "intersectsWith": shapely_box(*isce_search_area(roi.bounds)).wkt if bursts else roi.wkt,
        "start": dt.datetime.combine(cfg.dates.start, dt.time.min, dt.UTC),
        "end": dt.datetime.combine(cfg.dates.end, dt.time.max, dt.UTC),
    }
    if cfg.search.relative_orbits:
        query["relativeOrbit"] = list(cfg.search.relative_orbits)
    if cfg.search.flight_direction:
        query["flightDirection"] = cfg.search.flight_direction
    if bursts:
        query["polarization"] = [cfg.search.polarization]
    log.info("searching ASF at https://%s for %s", host, describe_query(cfg, roi, bursts))

    def is_transient(exc: BaseException) -> bool:
        if unresolved_host(exc) is not None:
            return False  # a name that does not resolve does not resolve on the next try
        if isinstance(exc, requests.exceptions.SSLError):
            return False  # a certificate problem does not fix itself
        if isinstance(
            exc,
            (
                requests.exceptions.ConnectionError,
                requests.exceptions.Timeout,
                requests.exceptions.ChunkedEncodingError,
                requests.exceptions.JSONDecodeError,  # truncated reply body
                asf.exceptions.ASFSearch5xxError,
            ),
        ):
            return True
        message = str(exc)
        return "HTTP 429" in message or "timed out" in message.lower() or "Timeout" in message

    try:
        results = with_retries(
            lambda: asf.search(opts=opts, **query),
            is_transient,
            cfg.network.retries,
            cfg.network.backoff,
            f"ASF search at https://{host}",
        )
    except requests.exceptions.SSLError as exc:
        raise SearchError(
            f"TLS verification of https://{host} failed ({str(exc)[:200]}); if your site "
            "intercepts TLS, set network.ca_bundle to its CA file"
        ) from None
    except (
        requests.exceptions.ConnectionError,
        requests.exceptions.Timeout,
        requests.exceptions.ChunkedEncodingError,
    ) as exc:
        if unresolved_host(exc) is not None:
            raise SearchError(
                f"ASF search at https://{host}: {network_failure(exc, 'search.host')}; "
                "without internet, set `inventory:` to a saved search"
            ) from None
        raise SearchError(
            f"ASF search at https://{host} could not be reached ({type(exc).__name__}, "
            f"{cfg.network.retries} retries): searching needs network access. On a machine "
            "without internet, set `inventory:` to a saved search (an asf_search GeoJSON export, "
            "or the <workspace>/inventory/scenes.geojson of a run made with internet)."
        ) from None
    except (asf.exceptions.ASFSearchError, requests.exceptions.JSONDecodeError) as exc:
        if "took too long" in str(exc):  # asf_search's wording for a read timeout
            raise SearchError(
                f"ASF search at https://{host} timed out after {cfg.network.timeout:g} s "
                f"({cfg.network.retries} retries): CMR is slow or unreachable. Raise "
                "network.timeout, retry later, or set `inventory:` to a saved search."
            ) from None
        raise SearchError(
            f"ASF search at https://{host} failed after {cfg.network.retries} retries: "
            f"{str(exc).splitlines()[0][:300]}. Retry later (CMR may be down or rate-limiting), "
            "or set `inventory:` to a saved search to plan offline."
        ) from None
    if not getattr(results, "searchComplete", True):
        raise SearchError(
            f"ASF search at https://{host} returned an incomplete result list; retry later"
        )
    scenes = []
    for product in results:
        props = product.properties
        if not str(props.get("sceneName", "")).startswith("S1"):
            continue
        build = burst_from_properties if props.get("burst") else scene_from_properties
        try:
            scene = build(
                props,
                product.geometry,
                getattr(product, "baseline", None),
                "result",
                # names and URLs from a reply end up in file paths, commands and requests
                fix="the search result is refused; retry later, or set `inventory:` to a saved "
                "search you have checked",
            )
        except InventoryError as exc:
            raise SearchError(
                f"ASF search at https://{host} returned a record that cannot be used: {exc}"
            ) from None
        scenes.append(scene)
    log.info("ASF returned %d scene(s)", len(scenes))
    return scenes


@dataclass
class SearchOutcome:
    scenes: list[Scene]
    acquisitions: list[Acquisition]
    choice: TrackChoice
    bursts: dict[str, BurstChoice] | None = None  # burst mode: each track's burst set


def run_search(cfg: Config, inventory_path: Path, dates_path: Path,
               coverage_path: Path | None = None) -> SearchOutcome:  # fmt: skip
    """Search (or read the saved search), decide usable dates and tracks, write the inventory.

    When no date is usable, ``coverage_path`` gets the coverage figure (the plan's, which
    otherwise never runs) before the SearchError: it shows what each date covers.
    """
    roi = parse_roi(cfg.roi)
    found, bursts = search_records(cfg, roi)
    query = describe_query(cfg, roi, bursts)
    scenes = _wanted(cfg, found, query)
    acquisitions = group_acquisitions(scenes)
    burst_sets = None
    if query["collection"] == "SLC-BURST":
        burst_sets = assess_bursts(acquisitions, roi, cfg.search.min_roi_coverage)
    else:
        assess(acquisitions, roi, cfg.search.min_roi_coverage)
    choice = choose_tracks(acquisitions, cfg.search.tracks)
    for acq in acquisitions:
        if not acq.used:
            log.warning("dropped %s %s: %s", acq.track, acq.date, acq.reason)
    # dates.csv first: the stamp in scenes.geojson, written last, vouches for both files
    write_dates_table(acquisitions, dates_path)
    write_inventory(scenes, inventory_path, query, search_stamp(cfg, dates_path))
    usable = [a for a in acquisitions if a.used]
    if not usable:
        reasons = sorted({a.reason for a in acquisitions})
        where = f"{dates_path} for each date"
        if coverage_path is not None:
            from .plots import plot_coverage  # matplotlib: only for this figure

            plot_coverage(roi, acquisitions, coverage_path, cfg.search.min_roi_coverage)
            where = f"{coverage_path} for each date's coverage"
        raise SearchError(
            f"{len(scenes)} scene(s) found but no date is usable: {'; '.join(reasons)[:500]}. "
            f"Lower search.min_roi_coverage, shrink the ROI, or pick another track; see {where}."
        )
    log.info(
        "tracks chosen: %s; %d usable date(s) of %d",
        ", ".join(choice.tracks),
        len(usable),
        len(acquisitions),
    )
    return SearchOutcome(scenes, acquisitions, choice, burst_sets)


def search_records(cfg: Config, roi: Polygon | MultiPolygon) -> tuple[list[Scene], bool]:
    """The records to plan from (the saved search, else ASF's), and whether they are bursts.

    ``download.mode: auto`` follows a saved search that holds one kind of record (it was saved
    in that mode); otherwise the area decides (``resolve_mode``), and when ASF holds no burst
    for the area and dates, whole SLCs are searched instead.
    """
    auto = cfg.download.mode == "auto"
    if cfg.inventory:
        found = load_saved_search(cfg.inventory)
        log.info("read %d scene(s) from saved search %s", len(found), cfg.inventory)
        kinds = {isinstance(s, Burst) for s in found}
        if auto and len(kinds) == 1:
            bursts = kinds.pop()
            log.info("download.mode auto: the saved search holds %s, so %s mode",
                     "bursts" if bursts else "SLC scenes", "burst" if bursts else "slc")  # fmt: skip
            return found, bursts
        return found, resolve_mode(cfg.download.mode, roi) == "burst"
    bursts = resolve_mode(cfg.download.mode, roi) == "burst"
    found = search_asf(cfg, roi, bursts)
    if auto and bursts and not any(isinstance(s, Burst) for s in found):
        log.warning("download.mode auto: ASF holds no burst of the area for these dates; "
                    "searching whole SLC scenes instead")  # fmt: skip
        return search_asf(cfg, roi, False), False
    return found, bursts


def _wanted(cfg: Config, found: list[Scene], query: dict[str, Any]) -> list[Scene]:
    """The scenes (or bursts) the config asks for, once each; none is a SearchError naming the
    search."""
    wanted = scene_filter(cfg)
    bursts = query["collection"] == "SLC-BURST"
    scenes = deduplicate(
        s for s in found if wanted.accepts(s) and isinstance(s, Burst) == bursts
    )
    if not scenes:
        what = "bursts (SLC-BURST)" if bursts else "IW SLC scenes"
        other = (
            "; a saved search made in the other download mode holds no " + what
            if cfg.inventory and any(isinstance(s, Burst) != bursts for s in found)
            else ""
        )
        raise SearchError(
            f"no Sentinel-1 {what} found for "
            + ", ".join(f"{k}={v}" for k, v in query.items())
            + ". Check the ROI (lon lat order), widen the dates, or relax "
            "search.flight_direction / search.relative_orbits / search.polarization"
            + (f"{other}: save the search again with this download.mode" if other else ".")
        )
    return scenes


def save_search(cfg: Config, path: str | Path) -> list[Scene]:
    """Search ASF for the config's scenes and save them, state vectors included, as an
    inventory that `inventory:` reads back: a later plan offline still has its baselines
    (an asf_search ``.geojson()`` export has none). The config's ``inventory`` is not read."""
    cfg = cfg.model_copy(update={"inventory": None})
    roi = parse_roi(cfg.roi)
    found, bursts = search_records(cfg, roi)
    query = describe_query(cfg, roi, bursts)
    scenes = _wanted(cfg, found, query)
    write_inventory(scenes, path, query)
    return scenes


def search_settings(cfg: Config) -> dict[str, Any]:
    """Every setting the search depends on (the search rule's params: a change re-runs it)."""
    return {
        "roi": cfg.roi,
        "dates": [str(cfg.dates.start), str(cfg.dates.end)],
        "inventory": cfg.inventory,
        "search": cfg.search.model_dump(),
        "download_mode": cfg.download.mode,
    }


def search_stamp(cfg: Config, dates_path: Path) -> dict[str, Any]:
    """What an inventory was made for: the settings, and the digest of its dates table."""
    return {
        "settings": search_settings(cfg),
        "dates_sha256": hashlib.sha256(Path(dates_path).read_bytes()).hexdigest(),
    }


def inventory_is_current(scenes_path: str | Path, dates_path: str | Path, cfg: Config) -> bool:
    """True when the search outputs exist, belong together and were made for this config.

    Lets the workflow read a finished search directly instead of going through Snakemake's
    checkpoint machinery, which re-evaluates every dependent job (minutes for 1000 pairs).
    """
    scenes_path = Path(scenes_path)
    try:
        if cfg.inventory and Path(cfg.inventory).stat().st_mtime > scenes_path.stat().st_mtime:
            return False  # a newer saved search: Snakemake re-runs the search
        with open(scenes_path) as handle:
            stamp = json.load(handle).get("stamp") or {}
        return stamp == search_stamp(cfg, dates_path)
    except (OSError, ValueError, AttributeError):
        return False
