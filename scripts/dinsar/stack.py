"""The processing stack as the workflow sees it after the search: dates, scenes and pairs.

Built once from the checkpoint's outputs (scenes.geojson + dates.csv) and the pair settings;
every Snakemake input function reads from one cached instance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from .config import Config, Pairs
from .download import Target
from .errors import DinsarError
from .inventory import Acquisition, Burst, Scene, load_saved_search, read_dates_table
from .pairs import Pair, network_for_tracks


@dataclass
class Stack:
    acquisitions: list[Acquisition]  # every assessed acquisition, used or not
    settings: Pairs
    scenes_by_granule: dict[str, Scene] = field(default_factory=dict)

    @classmethod
    def load(cls, scenes_path: str | Path, dates_path: str | Path, cfg: Config) -> Stack:
        scenes = {s.granule: s for s in load_saved_search(scenes_path)}
        acquisitions = []
        for row in read_dates_table(dates_path):
            granules = [g for g in row["granules"].split(";") if g]
            missing = [g for g in granules if g not in scenes]
            if missing:
                raise DinsarError(
                    f"{dates_path} lists {missing[0]} which is not in {scenes_path}; "
                    "the inventory is inconsistent: delete the inventory/ folder and rerun"
                )
            acquisitions.append(
                Acquisition(
                    track=row["track"],
                    date=row["date"],
                    scenes=[scenes[g] for g in granules],
                    coverage=float(row["coverage"]),
                    used=row["used"] == "yes",
                    reason=row["reason"],
                )
            )
        return cls(acquisitions, cfg.pairs, scenes)

    @cached_property
    def used(self) -> list[Acquisition]:
        return [a for a in self.acquisitions if a.used]

    @cached_property
    def by_date(self) -> dict[str, list[Acquisition]]:
        """Usable acquisitions per date (several when tracks: all shares a date)."""
        out: dict[str, list[Acquisition]] = {}
        for acq in self.used:
            out.setdefault(acq.date, []).append(acq)
        return out

    @cached_property
    def pairs(self) -> list[Pair]:
        return network_for_tracks(self.used, self.settings)

    @cached_property
    def pair_by_id(self) -> dict[str, Pair]:
        return {p.id: p for p in self.pairs}

    @cached_property
    def tracks(self) -> list[str]:
        return sorted({a.track for a in self.used})

    @cached_property
    def dates(self) -> list[str]:
        """Dates that at least one pair uses (only those are downloaded)."""
        return sorted({d for p in self.pairs for d in (p.reference, p.secondary)})

    def acquisition(self, track: str, date: str) -> Acquisition:
        for acq in self.by_date.get(date, []):
            if acq.track == track:
                return acq
        raise KeyError(f"no usable acquisition for track {track} on {date}")

    def acquisition_of_safe(self, name: str) -> Acquisition:
        """The usable date whose SAFE zip (burst mode: assembled from its bursts) is ``name``."""
        for acq in self.used:
            if name in acq.safe_names:
                return acq
        raise KeyError(f"no usable date has the SAFE {name}")

    @cached_property
    def pairs_by_reference(self) -> dict[str, list[Pair]]:
        """The pairs of each reference date (the dates that have a geometry job)."""
        dates = dict.fromkeys(p.reference for p in self.pairs)
        return {date: [p for p in self.pairs if p.reference == date] for date in dates}

    def reference_acquisition(self, date: str) -> Acquisition:
        pair = self.pairs_by_reference[date][0]
        return self.acquisition(pair.track, date)

    def pair_acquisitions(self, pair_id: str) -> tuple[Acquisition, Acquisition]:
        pair = self.pair_by_id[pair_id]
        return self.acquisition(pair.track, pair.reference), self.acquisition(
            pair.track, pair.secondary
        )

    @cached_property
    def granules(self) -> list[str]:
        """Every scene a pair needs: each is downloaded once, however many pairs use it."""
        names = set()
        for date in self.dates:
            for acq in self.by_date[date]:
                if any(p.track == acq.track for p in self.pairs):
                    names.update(acq.granules)
        return sorted(names)

    def granules_for_date(self, date: str) -> list[str]:
        return sorted(g for acq in self.by_date.get(date, []) for g in acq.granules)

    def track_dates(self, track: str) -> list[str]:
        return sorted(
            {d for p in self.pairs if p.track == track for d in (p.reference, p.secondary)}
        )

    @cached_property
    def burst_mode(self) -> bool:
        """True when the dates are made of bursts (download.mode burst) rather than SLCs."""
        return any(isinstance(s, Burst) for a in self.used for s in a.scenes)

    def download_targets(self, cfg: Config) -> list[Target]:
        """Every file the pairs need from the network, where it lands in the shared cache: the
        SLC zips, or in burst mode each burst's TIFF and its slice's metadata (once)."""
        from .burst_staging import burst_targets

        targets: dict[Path, Target] = {}
        for granule in self.granules:
            scene = self.scenes_by_granule[granule]
            if isinstance(scene, Burst):
                for target in burst_targets(scene, cfg.cache_dir("bursts")):
                    targets.setdefault(target.dest, target)
            else:
                dest = cfg.cache_dir("slc") / scene.filename
                targets[dest] = Target(scene.url, dest, scene.bytes, scene.md5, granule)
        return list(targets.values())

    def bytes_to_download(self) -> int:
        return sum(self.scenes_by_granule[g].bytes for g in self.granules)
