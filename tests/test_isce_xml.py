"""topsApp.xml: the builder's structure, and one refusal per ISCE configuration pitfall."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from dinsar.errors import DinsarError
from dinsar.isce_image import IsceImage, normalise_name, write_raster
from dinsar.isce_xml import (
    SENSOR_PROPERTIES,
    TOPSINSAR_PROPERTIES,
    Sensor,
    TopsAppConfig,
    TopsAppXmlError,
    render_topsapp_xml,
    snwe,
    validate_topsapp_xml,
)

REF = ["S1A_IW_SLC__1SDV_20161007T141928_20161007T141956_013385_0155BE_46C1"]
SEC = ["S1A_IW_SLC__1SDV_20161031T141928_20161031T141956_013735_0160AF_EEEE"]
# two consecutive slices of one pass
REF2 = ["S1A_IW_SLC__1SDV_20161007T141901_20161007T141930_013385_0155BE_F3AD", *REF]
SEC2 = ["S1A_IW_SLC__1SDV_20161031T141901_20161031T141931_013735_0160AF_ED1C", *SEC]


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Path]:
    """Files a topsApp.xml names: zips, orbits, DEMs (contents do not matter here)."""
    slc = tmp_path / "slc"
    slc.mkdir()
    for name in {*REF2, *SEC2}:
        (slc / f"{name}.zip").write_bytes(b"PK")
    orbits = tmp_path / "orbits"
    orbits.mkdir()
    for date in ("20161007", "20161031"):
        (orbits / f"S1A_{date}.EOF").write_text("<Earth_Explorer_File/>")
    dem_dir = tmp_path / "dem"
    dem_dir.mkdir()
    for name in ("dem.wgs84", "geocode_dem.wgs84"):
        path = dem_dir / name
        image = IsceImage(file_name=str(path), width=8, length=6, data_type="SHORT",
                          first_lon=-121.5, delta_lon=0.1, first_lat=55.0, delta_lat=-0.1,
                          image_type="dem", reference="WGS84")  # fmt: skip
        write_raster(path, [np.zeros((6, 8), dtype=np.int16)], image)
    work = tmp_path / "work" / "20161007_20161031"
    work.mkdir(parents=True)
    return {"slc": slc, "orbits": orbits, "dem": dem_dir, "work": work}


def config(inputs: dict[str, Path], ref=REF, sec=SEC, **overrides) -> TopsAppConfig:
    """A pair's TopsAppConfig; isce settings given by name go into its Isce model (not
    validated, as a hand-made value would not be: the XML check must catch it)."""
    from dinsar.config import Isce

    settings = {k: overrides.pop(k) for k in list(overrides)
                if k in Isce.model_fields and k != "geocode_list"}  # fmt: skip
    overrides["isce"] = Isce.model_construct(**{**Isce().model_dump(), **settings})
    zips = inputs["slc"]
    values = {
        "reference": Sensor(tuple(str(zips / f"{g}.zip") for g in ref), "reference",
                            str(inputs["orbits"] / "S1A_20161007.EOF")),
        "secondary": Sensor(tuple(str(zips / f"{g}.zip") for g in sec), "secondary",
                            str(inputs["orbits"] / "S1A_20161031.EOF")),
        "swaths": (2,),
        "roi_snwe": snwe([-121.2, 54.5, -120.8, 54.8]),
        "geocode_bbox_snwe": snwe([-121.2, 54.5, -120.8, 54.8], 0.05),
        "dem": str(inputs["dem"] / "dem.wgs84"),
        "geocode_dem": str(inputs["dem"] / "geocode_dem.wgs84"),
        "geocode_list": ("merged/filt_topophase.unw", "merged/los.rdr"),
    }  # fmt: skip
    values.update(overrides)
    return TopsAppConfig(**values)


def xml_text(inputs: dict[str, Path], **kwargs) -> str:
    return render_topsapp_xml(config(inputs, **kwargs))


def refused(inputs: dict[str, Path], text: str) -> str:
    with pytest.raises(TopsAppXmlError) as err:
        validate_topsapp_xml(text, base_dir=inputs["work"])
    assert isinstance(err.value, DinsarError)  # printed as one line, no traceback
    assert "\n" not in str(err.value)
    return str(err.value)


def names(component: ET.Element) -> dict[str, str]:
    return {normalise_name(p.get("name", "")): (p.text or "").strip() for p in component.findall("property")}


# --- structure ---------------------------------------------------------------------------------


def test_snwe_converts_and_adds_the_margin() -> None:
    assert snwe([-121.2, 54.5, -120.8, 54.8]) == (54.5, 54.8, -121.2, -120.8)
    assert snwe([-121.2, 54.5, -120.8, 54.8], 0.05) == (54.45, 54.85, -121.25, -120.75)


@pytest.mark.parametrize("ref,sec", [(REF, SEC), (REF2, SEC2)], ids=["single-slice", "multi-slice"])
def test_generated_xml_has_the_structure_of_the_references(inputs, shared_dir, ref, sec) -> None:
    text = xml_text(inputs, ref=ref, sec=sec)
    ours = ET.fromstring(text)
    example = ET.parse(shared_dir / "reference" / "isce2" / "example_topsApp.xml").getroot()
    hyp3 = ET.parse(shared_dir / "fixtures" / "hyp3-isce2" / "topsApp.xml").getroot()
    for reference in (example, hyp3):
        assert ours.tag == reference.tag == "topsApp"
        assert [c.get("name") for c in ours] == [c.get("name") for c in reference] == ["topsinsar"]
        ours_app, ref_app = ours[0], reference[0]
        assert [c.get("name") for c in ours_app.findall("component")] == ["reference", "secondary"]
        assert [c.get("name") for c in ref_app.findall("component")] == ["reference", "secondary"]
        # the same settings at topsinsar level (we pass no orbit/aux directories: explicit files)
        shared = set(names(ref_app)) & set(TOPSINSAR_PROPERTIES)
        assert shared - {"applyionospherecorrection"} <= set(names(ours_app))
        for ours_sensor, ref_sensor in zip(ours_app.findall("component"), ref_app.findall("component"), strict=True):
            theirs = set(names(ref_sensor)) - {"orbitdirectory", "auxiliarydatadirectory"}
            assert theirs <= set(names(ours_sensor)) <= set(SENSOR_PROPERTIES)
    app = names(ours[0])
    sensors = [names(c) for c in ours[0].findall("component")]
    for sensor, granules in zip(sensors, (ref, sec), strict=True):
        assert eval(sensor["safe"]) == [str(inputs["slc"] / f"{g}.zip") for g in granules]  # noqa: S307
        assert sensor["safe"].startswith("[")  # a list literal even for one slice
        assert sensor["polarization"] == "vv"
        assert Path(sensor["orbitfile"]).is_absolute()
    assert [s["outputdirectory"] for s in sensors] == ["reference", "secondary"]
    assert app["swaths"] == "[2]"
    assert app["regionofinterest"] == "[54.5, 54.8, -121.2, -120.8]"
    assert app["geocodeboundingbox"] == "[54.45, 54.85, -121.25, -120.75]"
    for key in ("doesd", "usevirtualfiles", "dounwrap", "doionospherecorrection"):
        assert app[key] in ("True", "False")
    assert app["geocodelist"] == "['merged/filt_topophase.unw', 'merged/los.rdr']"
    validated = validate_topsapp_xml(text, base_dir=inputs["work"])
    assert validated.swaths == [2]
    assert validated.reference_dir != validated.secondary_dir


def test_settings_are_passed_through(inputs) -> None:
    text = xml_text(inputs, range_looks=10, azimuth_looks=2, filter_strength=0.3, unwrap=False,
                    unwrapper="icu", esd=False, esd_coherence_threshold=0.7, ionosphere=True,
                    use_virtual_files=False, polarization="VH")  # fmt: skip
    app = names(ET.fromstring(text)[0])
    assert (app["rangelooks"], app["azimuthlooks"], app["filterstrength"]) == ("10", "2", "0.3")
    assert (app["dounwrap"], app["unwrappername"], app["doesd"]) == ("False", "icu", "False")
    assert (app["esdcoherencethreshold"], app["doionospherecorrection"]) == ("0.7", "True")
    assert app["usevirtualfiles"] == "False"
    assert "<property name=\"polarization\">vh</property>" in text
    validate_topsapp_xml(text, base_dir=inputs["work"])


def test_aux_directory_only_when_given(inputs, tmp_path) -> None:
    aux = tmp_path / "aux"
    aux.mkdir()
    cfg = config(inputs)
    assert "auxiliary data directory" not in render_topsapp_xml(cfg)
    ref = Sensor(cfg.reference.safes, "reference", cfg.reference.orbit_file, str(aux))
    text = render_topsapp_xml(config(inputs, reference=ref))
    assert f'<property name="auxiliary data directory">{aux}</property>' in text
    validate_topsapp_xml(text, base_dir=inputs["work"])


def test_embedded_tables_match_the_reference(shared_dir) -> None:
    data = json.loads((shared_dir / "reference" / "isce2" / "topsapp_properties.json").read_text())
    for ours, comp in ((TOPSINSAR_PROPERTIES, "topsinsar"), (SENSOR_PROPERTIES, "reference")):
        theirs = {p["normalized_key"]: (p["public_name"], p["type"], p["container"])
                  for p in data["components"][comp]["parameters"]}  # fmt: skip
        assert ours == theirs


def test_reference_files_against_the_validator(shared_dir) -> None:
    example = (shared_dir / "reference" / "isce2" / "example_topsApp.xml").read_text()
    validate_topsapp_xml(example, check_files=False)
    # hyp3-isce2's real file passes ISCE but not our stricter house rules
    hyp3 = (shared_dir / "fixtures" / "hyp3-isce2" / "topsApp.xml").read_text()
    with pytest.raises(TopsAppXmlError) as err:
        validate_topsapp_xml(hyp3, check_files=False)
    assert [p.split(" =")[0] for p in err.value.problems] == [
        "property 'safe'", "property 'safe'", "property 'region of interest' is missing; set it"
    ]
    assert "splits the text on commas" in err.value.problems[0]


# --- one test per pitfall ----------------------------------------------------------------------


def test_unknown_property_name(inputs) -> None:
    text = xml_text(inputs).replace('name="region of interest"', 'name="region of intrest"')
    message = refused(inputs, text)
    assert "unknown property 'region of intrest'" in message
    assert "'regionofintrest'" in message and "did you mean 'region of interest'?" in message


def test_underscore_is_not_a_space(inputs) -> None:
    message = refused(inputs, xml_text(inputs).replace('name="do ESD"', 'name="do_ESD"'))
    assert "unknown property 'do_ESD'" in message and "'_' is not a space" in message
    assert "did you mean 'do ESD'?" in message


def test_case_and_whitespace_are_ignored_like_isce(inputs) -> None:
    text = xml_text(inputs).replace('name="do ESD"', 'name="DO   esd"')
    validate_topsapp_xml(text, base_dir=inputs["work"])


def test_unknown_property_in_a_sensor_component(inputs) -> None:
    text = xml_text(inputs).replace('name="orbit file"', 'name="orbitfiles"', 1)
    message = refused(inputs, text)
    assert "unknown property 'orbitfiles' in component 'reference'" in message
    assert "did you mean 'orbit file'?" in message


def test_wrong_application_component_name(inputs) -> None:
    message = refused(inputs, xml_text(inputs).replace('name="topsinsar"', 'name="insar"'))
    assert "component 'insar' is ignored by topsApp" in message
    assert "rename it to 'topsinsar'" in message


def test_topsapp_instance_name_is_accepted(inputs) -> None:
    validate_topsapp_xml(xml_text(inputs).replace('name="topsinsar"', 'name="topsApp"'),
                         base_dir=inputs["work"])  # fmt: skip


def test_master_slave_component_names(inputs) -> None:
    text = xml_text(inputs).replace('<component name="reference">', '<component name="master">')
    message = refused(inputs, text)
    assert "component 'master' is the pre-2.5 name" in message
    assert "rename it to 'reference'" in message


def test_non_python_boolean(inputs) -> None:
    text = xml_text(inputs).replace('name="do ESD">True<', 'name="do ESD">false<')
    message = refused(inputs, text)
    assert "property 'do ESD' = 'false' is not a Python boolean" in message
    assert "counts as True" in message and "write True or False" in message


def test_non_list_swaths(inputs) -> None:
    message = refused(inputs, xml_text(inputs).replace(">[2]<", ">2<"))
    assert "property 'swaths' = '2' is not a list" in message
    assert "crashes later in preprocess" in message and "[2]" in message


def test_non_list_safe(inputs) -> None:
    text = xml_text(inputs)
    zip_path = str(inputs["slc"] / f"{REF[0]}.zip")
    text = text.replace(f"['{zip_path}']", zip_path, 1)
    assert "property 'safe'" in refused(inputs, text)


def test_south_above_north(inputs) -> None:
    text = xml_text(inputs, roi_snwe=(54.8, 54.5, -121.2, -120.8))
    message = refused(inputs, text)
    assert "'region of interest' = [54.8, 54.5, -121.2, -120.8]" in message
    assert "S < N and W < E" in message and "swap the values" in message


def test_west_east_swapped_in_geocode_box(inputs) -> None:
    message = refused(inputs, xml_text(inputs, geocode_bbox_snwe=(54.45, 54.85, -120.75, -121.25)))
    assert "'geocode bounding box'" in message and "S < N and W < E" in message


def test_uppercase_polarization(inputs) -> None:
    text = xml_text(inputs).replace(">vv<", ">VV<")
    message = refused(inputs, text)
    assert "polarization 'VV' must be lower case" in message and "write 'vv'" in message


def test_equal_output_directories(inputs) -> None:
    text = xml_text(inputs).replace(">secondary</property>", ">reference/</property>")
    message = refused(inputs, text)
    assert "'output directory' are both 'reference'" in message
    assert "use 'reference' and 'secondary'" in message


def test_missing_safe_zip(inputs) -> None:
    (inputs["slc"] / f"{SEC[0]}.zip").unlink()
    message = refused(inputs, xml_text(inputs))
    assert f"SAFE {inputs['slc'] / SEC[0]}.zip is missing; run staging first" in message


def test_missing_orbit_file(inputs) -> None:
    (inputs["orbits"] / "S1A_20161031.EOF").unlink()
    message = refused(inputs, xml_text(inputs))
    assert "component 'secondary': orbit file" in message and "rerun the orbit step" in message


def test_missing_dem_raster(inputs) -> None:
    (inputs["dem"] / "dem.wgs84").unlink()
    assert "DEM raster" in refused(inputs, xml_text(inputs))


def test_missing_dem_sidecar(inputs) -> None:
    (inputs["dem"] / "geocode_dem.wgs84.xml").unlink()
    message = refused(inputs, xml_text(inputs))
    assert "'geocode demfilename': geocode_dem.wgs84.xml is missing" in message


def test_dem_sidecar_without_starting_value(inputs) -> None:
    xml = inputs["dem"] / "dem.wgs84.xml"
    root = ET.parse(xml).getroot()
    coordinate = root.find("component[@name='coordinate2']")
    coordinate.remove(coordinate.find("property[@name='startingvalue']"))
    ET.ElementTree(root).write(xml)
    message = refused(inputs, xml_text(inputs))
    assert "coordinate2 lacks startingvalue" in message and "silently assume start 0" in message


def test_dem_sidecar_without_datum(inputs) -> None:
    xml = inputs["dem"] / "dem.wgs84.xml"
    root = ET.parse(xml).getroot()
    root.remove(root.find("property[@name='reference']"))
    ET.ElementTree(root).write(xml)
    message = refused(inputs, xml_text(inputs))
    assert "no 'reference' datum" in message and "write reference WGS84" in message


def test_duplicate_property(inputs) -> None:
    text = xml_text(inputs).replace(
        '<property name="range looks">19</property>',
        '<property name="range looks">19</property><property name="RANGE LOOKS">5</property>',
    )
    assert "appears twice" in refused(inputs, text)


def test_geocode_list_without_merged_prefix(inputs) -> None:
    message = refused(inputs, xml_text(inputs, geocode_list=("filt_topophase.unw",)))
    assert "lack the 'merged/' prefix" in message


def test_unknown_unwrapper(inputs) -> None:
    message = refused(inputs, xml_text(inputs, unwrapper="snaphu-mcf"))
    assert "'unwrapper name' = 'snaphu-mcf' is not one of" in message


def test_all_problems_reported_together(inputs) -> None:
    text = xml_text(inputs).replace(">[2]<", ">2<").replace(">vv<", ">VV<")
    with pytest.raises(TopsAppXmlError) as err:
        validate_topsapp_xml(text, base_dir=inputs["work"])
    assert len(err.value.problems) == 3  # swaths, and both sensors' polarization
