"""topsApp's state after topo, for a pair that took its reference date's geometry.

Runs in ISCE's own interpreter, not the workflow's: ISCE pickles its processing document (an
``isceobj.Catalog.Catalog``) in ``PICKLE/<step>``, and only ISCE can load and write it. Standard
library only; dinsar.geometry runs it (``python -c <this file's text> ARGS``, so that nothing in
this folder shadows a module ISCE imports) and explains what topo leaves and why this is sound.

    ARGS: <pair dir> <geometry dir> <JSON {"pair": {swath: [start, count]},
                                           "geometry": {swath: [start, count]}}> <output file>
          [<folder of topsApp.py>: put on the path, as topsApp sees its own modules]

What it writes to <output file> (the caller's temporary name for ``PICKLE/topo``, renamed by
dinsar.atomic): the pair's ``PICKLE/verifyDEM`` plus the catalog node topo adds
(runTopo: the DEM used, per swath the common bursts and per burst its lines, pixels and bounding
box, then the overall box), taken from the geometry run's ``PICKLE/topo`` for the pair's own
bursts, in runTopo's order. A state that is not a catalog (a stand-in topsApp) is written as it
is: topo adds nothing else.
"""

import json
import os
import pickle
import sys

try:
    import isce  # noqa: F401 - puts isceobj on the path: the pickles hold ISCE's classes
except ImportError:
    pass


def topo_items(node, pair, geometry):
    """(key, value) of runTopo's catalog node for the pair's bursts, from the geometry's node."""
    items = [("Dem Used", node["Dem Used"])]
    boxes = []
    for swath in sorted(pair, key=int):
        start, count = pair[swath]
        if count <= 0:
            continue
        shift = start - geometry[swath][0]
        items.append((f"Number of common bursts IW-{swath}", count))
        for index in range(count):
            source = index + shift
            box = node[f"Bounding box for burst {source} - IW-{swath}"]
            boxes.append(box)
            items.append((f"Number of lines for burst {index} - IW-{swath}",
                          node[f"Number of lines for burst {source} - IW-{swath}"]))
            items.append((f"Number of pixels for bursts {index} - IW-{swath}",
                          node[f"Number of pixels for bursts {source} - IW-{swath}"]))
            items.append((f"Bounding box for burst {index} - IW-{swath}", box))
    items.append(("Overall bounding box", [min(b[0] for b in boxes), max(b[1] for b in boxes),
                                           min(b[2] for b in boxes), max(b[3] for b in boxes)]))
    return items


def main(argv):
    workdir, geometry_dir, spec, out = argv[0], argv[1], json.loads(argv[2]), argv[3]
    if len(argv) > 4:
        sys.path.append(argv[4])
    with open(os.path.join(workdir, "PICKLE", "verifyDEM"), "rb") as handle:
        state = pickle.load(handle)
    if hasattr(state, "addItem"):
        with open(os.path.join(geometry_dir, "PICKLE", "topo"), "rb") as handle:
            node = pickle.load(handle)["topo"]
        for key, value in topo_items(node, spec["pair"], spec["geometry"]):
            state.addItem(key, value, "topo")
    with open(out, "wb") as handle:
        pickle.dump(state, handle, protocol=pickle.HIGHEST_PROTOCOL)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
