"""One FlowJo 10 workspace for the whole trial: every sample's realised gates on its exported FCS file, with a
sample group per visit.

Each sample's gates are written by the per-sample FlowJo writer (:func:`cytotrial.gating.flowjo.export_flowjo_workspace`,
flowkit's) from its GatingML file, with the compensation references removed because the exported events are
compensated already; the samples are then gathered into one workspace by hand (flowkit writes one gating strategy,
with one set of transforms, for all samples, while each sample here has its own gates and its batch's transforms).
"""

from __future__ import annotations

import copy
import os
import tempfile
import warnings
from pathlib import Path

import flowkit as fk
from lxml import etree

from ..gating.flowjo import WORKSPACE_DATE, export_flowjo_workspace

GATING_NS = "http://www.isac-net.org/std/Gating-ML/v2.0/gating"
TRANSFORMS_NS = "http://www.isac-net.org/std/Gating-ML/v2.0/transformations"
ALL_SAMPLES = "All Samples"


def uncompensated_gatingml(gatingml: str | os.PathLike, out: str | os.PathLike) -> None:
    """A copy of a GatingML file whose gates read the values as they are (compensation-ref 'uncompensated', no
    spillover matrix): the gates of events that were compensated before export."""
    tree = etree.parse(str(gatingml))
    for tag in ("spectrumMatrix", "spilloverMatrix"):
        for matrix in tree.getroot().findall(f"{{{TRANSFORMS_NS}}}{tag}"):
            tree.getroot().remove(matrix)
    reference = f"{{{GATING_NS}}}compensation-ref"
    for element in tree.getroot().iter():
        if element.get(reference) not in (None, "uncompensated"):
            element.set(reference, "uncompensated")
    tree.write(str(out), xml_declaration=True, encoding="utf-8")


def sample_element(gatingml: str | os.PathLike, fcs: str | os.PathLike, number: int) -> tuple[etree._Element, list]:
    """The workspace <Sample> of one exported file with its realised gates, as sample ``number``; and the gates
    left out (Boolean gates: FlowJo workspaces hold them only in the GatingML file)."""
    sample = fk.Sample(str(fcs), subsample=0)
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / "gates.xml"
        uncompensated_gatingml(gatingml, plain)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            left_out = export_flowjo_workspace(plain, sample, Path(tmp) / "one.wsp")
        root = etree.parse(str(Path(tmp) / "one.wsp")).getroot()
    element = root.find("SampleList/Sample")
    element.find("DataSet").set("uri", f"fcs/{Path(fcs).name}")  # relative to the workspace's folder
    for node in element.iter():
        if node.get("sampleID") is not None:
            node.set("sampleID", str(number))
        for key in (f"{{{GATING_NS}}}id", f"{{{GATING_NS}}}parent_id"):
            if node.get(key, "").startswith("ID"):  # flowkit numbers gates 'ID' + sample + gate: unique per sample
                node.set(key, f"ID{number}_{node.get(key)[2:]}")
    return element, left_out


def _group(groups: etree._Element, name: str, numbers: list[int]) -> None:
    node = etree.SubElement(groups, "GroupNode", name=name, annotation="", owningGroup=name)
    refs = etree.SubElement(etree.SubElement(node, "Group", name=name), "SampleRefs")
    for number in numbers:
        etree.SubElement(refs, "SampleRef", sampleID=str(number))


def write_trial_workspace(samples: list[dict], visits: list[str], path: str | os.PathLike) -> list[str]:
    """Write the trial's FlowJo workspace: ``samples`` are ``{"sample_id", "visit", "gatingml", "fcs"}`` (excluded
    samples left out by the caller), the exported FCS files in the folder ``fcs/`` beside ``path``; groups are
    'All Samples' and one per visit, in ``visits`` order. Returns the gates left out (see :func:`sample_element`).
    """
    root = etree.Element("Workspace", nsmap={"gating": GATING_NS, "transforms": TRANSFORMS_NS,
                                             "data-type": "http://www.isac-net.org/std/Gating-ML/v2.0/datatypes"})
    root.attrib.update({"version": "20.0", "modDate": WORKSPACE_DATE, "flowJoVersion": "10.6.2",
                        "curGroup": ALL_SAMPLES})
    etree.SubElement(root, "Matrices")
    groups = etree.SubElement(root, "Groups")
    sample_list = etree.SubElement(root, "SampleList")
    left_out = set()
    for number, sample in enumerate(samples, start=1):
        element, skipped = sample_element(sample["gatingml"], sample["fcs"], number)
        sample_list.append(copy.deepcopy(element))
        left_out.update(skipped)
    _group(groups, ALL_SAMPLES, list(range(1, len(samples) + 1)))
    for visit in visits:
        members = [n for n, s in enumerate(samples, start=1) if s["visit"] == visit]
        if members:
            _group(groups, visit, members)
    data = etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(f"{path}.part")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return sorted(left_out)
